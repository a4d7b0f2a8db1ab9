"""Frames from the causal transformer, batched over episodes: with the KV cache (serving, training rollouts) and
without it (the reference the cache is tested against).

A frame is a few flow-matching steps (runtime/neural/sampler.py) against the episodes' cache, then one more pass
at t = 0 over the finished latent whose keys and values enter the cache (as LingBot-World-Fast does).
"""

from __future__ import annotations

import torch

from runtime.neural.dit import DiT, FrameContext
from runtime.neural.kv_cache import KVCache
from runtime.neural.sampler import sample


def commit(
    dit: DiT,
    cache: KVCache,
    slots: list[int],
    latent: torch.Tensor,
    action: torch.Tensor,
    rays: torch.Tensor,
    has_pose: torch.Tensor,
    guide: torch.Tensor | None = None,
) -> None:
    """Write finished frames (b, C, h, w) into the cache: one pass at t = 0 over the clean latents."""
    context = dit.frame_context(action, rays, has_pose, *cache.view(slots), *cache.positions(slots), guide)
    _commit(dit, cache, slots, latent, context)


def _commit(dit: DiT, cache: KVCache, slots: list[int], latent: torch.Tensor, context: FrameContext) -> None:
    _, k, v = dit.denoise(latent, latent.new_zeros(len(slots)), context)
    cache.write(slots, k, v)


def generate_cached(
    dit: DiT,
    cache: KVCache,
    slots: list[int],
    noise: torch.Tensor,
    action: torch.Tensor,
    rays: torch.Tensor,
    has_pose: torch.Tensor,
    schedule: list[float],
    observed: torch.Tensor | None = None,
    guide: torch.Tensor | None = None,
    begin: torch.Tensor | None = None,
) -> torch.Tensor:
    """The next frame of each episode in `slots`, batched: denoise `noise` (b, C, h, w) along `schedule`
    with the cache as context, commit the result to the cache and return it (b, C, h, w).
    action (b, A), rays (b, N, 6), has_pose (b,): the conditions of the frame being made. `observed`
    (b, C, h, w): latents of the frames that truly came next, committed instead (teacher forcing). `guide`
    (b, G, gh, gw): pooled guidance features of the frames being made (guided models). `begin` (b,): rows
    whose `noise` is already part-way denoised, at that time (sampler.sample)."""
    context = dit.frame_context(action, rays, has_pose, *cache.view(slots), *cache.positions(slots), guide)

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        return dit.denoise(x, x.new_full((len(slots),), t), context)[0]

    latent = sample(velocity, noise, schedule, begin)
    # the cache is unchanged since the context was made
    _commit(dit, cache, slots, latent if observed is None else observed, context)
    return latent


def generate_recompute(
    dit: DiT,
    history: torch.Tensor,
    noise: torch.Tensor,
    action: torch.Tensor,
    rays: torch.Tensor,
    has_pose: torch.Tensor,
    schedule: list[float],
    guide: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference without a cache: every denoising step reruns the transformer over the whole history.

    history: (B, T, C, h, w) clean latents of all earlier frames of the episodes; noise (B, C, h, w);
    action (B, T+1, A), rays (B, T+1, N, 6), has_pose (B, T+1), guide (B, T+1, G, gh, gw) or None: conditions
    of the history and the new frame.
    Returns the new frame (B, C, h, w). generate_cached must give the same result (tests/test_neural_cache.py).
    """
    B, T = history.shape[:2]

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        clip = torch.cat([history, x[:, None]], dim=1)  # (B, T+1, C, h, w)
        times = torch.cat([x.new_zeros(B, T), x.new_full((B, 1), t)], dim=1)  # history is clean
        return dit(clip, times, action, rays, has_pose, guide)[:, -1]

    return sample(velocity, noise, schedule)
