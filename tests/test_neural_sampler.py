"""Flow-matching sampler (runtime/neural/sampler.py): schedules, and exactness for a perfect velocity field."""

import pytest
import torch

from runtime.neural.sampler import episode_noise, sample, timesteps


def test_schedules() -> None:
    assert timesteps(4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert timesteps(1) == [1.0, 0.0]
    shifted = timesteps(4, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0 and shifted[2] == pytest.approx(0.75)  # more time at high noise
    assert all(a > b for a, b in zip(shifted, shifted[1:]))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_true_velocity_recovers_the_clean_sample_in_any_number_of_steps(steps: int) -> None:
    """x_t = (1 - t) x0 + t eps has velocity eps - x0 everywhere along the path, so Euler is exact."""
    x0, eps = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    out = sample(lambda x, t: eps - x0, eps, timesteps(steps, shift=2.0))
    assert torch.allclose(out, x0, atol=1e-6)


def test_episode_noise_depends_only_on_each_generator() -> None:
    def gen(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    together = episode_noise([gen(1), gen(2)], (4, 2, 2), torch.device("cpu"))
    assert torch.equal(together[1], episode_noise([gen(2)], (4, 2, 2), torch.device("cpu"))[0])
    assert not torch.equal(together[0], together[1])
