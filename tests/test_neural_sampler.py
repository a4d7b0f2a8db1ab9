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


def test_rows_that_begin_part_way_take_only_the_steps_from_there() -> None:
    x0, eps = torch.randn(3, 4, 3, 3), torch.randn(3, 4, 3, 3)
    start = eps.clone()
    start[1] = 0.5 * x0[1] + 0.5 * eps[1]  # row 1 is already at t = 0.5 on the same path
    calls = []

    def velocity(rows: slice):
        def v(x: torch.Tensor, t: float) -> torch.Tensor:
            calls.append(t)
            return (eps - x0)[rows]
        return v

    out = sample(velocity(slice(None)), start, timesteps(4), begin=torch.tensor([1.0, 0.5, 1.0]))
    assert torch.allclose(out, x0, atol=1e-6) and calls == [1.0, 0.75, 0.5, 0.25]
    calls.clear()
    out = sample(velocity(slice(1, 2)), start[1:2], timesteps(4), begin=torch.tensor([0.5]))
    assert torch.allclose(out, x0[1:2], atol=1e-6) and calls == [0.5, 0.25]  # steps that move no row: skipped
    wrong = sample(velocity(slice(1, 2)), start[1:2], timesteps(4))  # from 1.0: two steps too many
    assert not torch.allclose(wrong, x0[1:2], atol=1e-3)
