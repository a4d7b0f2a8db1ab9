"""Flow-matching sampler for the world model: a few deterministic Euler steps per frame.

Convention (rectified flow, as Wan2.x and LingBot-World use): x_t = (1 - t) * x0 + t * eps for t in [0, 1],
t = 1 pure noise. The network predicts the velocity v = dx_t/dt = eps - x0, so x0 = x_t - t * v at any t,
and the Euler step x_{t'} = x_t + (t' - t) * v with t' = 0 lands on the model's x0 estimate: one step is
already a complete sample, more steps refine it. Velocity (not x0) is what a flow-matching teacher predicts,
so a distilled few-step student can start from the teacher's weights and keep its parameterisation.

The schedule is `steps` times between 1 and 0, optionally shifted towards high noise as Wan does
(t' = shift * t / (1 + (shift - 1) * t)). All randomness is the initial noise, drawn per episode from the
episode's own torch.Generator, so an episode's frames depend on its seed and inputs only, never on which
other episodes share the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class SamplerConfig:
    """Sampling settings (the `sampler:` section of a checkpoint's config.yaml)."""

    steps: int = 4  # denoising steps per frame, 1-4 for a distilled model
    shift: float = 1.0  # timestep shift; > 1 spends more of the steps at high noise
    # memory models: a frame made where a remembered frame was made (runtime/neural/memory.py, Memory.nearest)
    # starts from that frame's latent noised to this time instead of from noise (0: never)
    anchor: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or not self.shift > 0:
            raise ValueError(f"sampler needs steps >= 1 and shift > 0, got {self.steps} and {self.shift}")
        if not 0.0 <= self.anchor < 1.0:
            raise ValueError(f"sampler anchor must be in [0, 1), got {self.anchor}")


def timesteps(steps: int, shift: float = 1.0) -> list[float]:
    """The steps + 1 times from 1 (noise) down to 0 (clean), e.g. steps=4, shift=1 -> [1, .75, .5, .25, 0]."""
    ts = [1 - i / steps for i in range(steps + 1)]
    return [shift * t / (1 + (shift - 1) * t) for t in ts]


def sample(
    velocity: Callable[[torch.Tensor, float], torch.Tensor], noise: torch.Tensor, schedule: list[float],
    begin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Integrate dx/dt = velocity(x, t) from schedule[0] to schedule[-1] with Euler steps; returns x at the end.
    noise: (B, C, h, w), the sample at t = schedule[0]. begin: (B,) where rows start part-way: row b holds the
    sample at time begin[b] (one of the schedule's times) and only the steps from there move it; steps that
    move no row are skipped."""
    x = noise
    for t, t_next in zip(schedule[:-1], schedule[1:]):
        moving = None if begin is None else (begin >= t - 1e-6)
        if moving is not None and not moving.any():
            continue
        dx = (t_next - t) * velocity(x, t).to(x.dtype)
        x = x + (dx if moving is None else dx * moving.to(dx.dtype)[:, None, None, None])
    return x


def episode_noise(generators: list[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(b, *shape) standard normal noise, row i drawn from generators[i] (on the CPU, so the numbers are the
    same on every device)."""
    return torch.stack([torch.randn(shape, generator=g) for g in generators]).to(device)
