"""KV-cached generation equals full recomputation: the cache (runtime/neural/kv_cache.py) and DiT.step must show each
frame exactly what DiT.forward's sink/window mask shows it, also long after the window has rolled over."""

import pytest
import torch

from runtime.neural.dit import DiT, DiTConfig
from runtime.neural.generate import generate_cached, generate_recompute
from runtime.neural.kv_cache import KVCache
from runtime.neural.sampler import timesteps

C, LATENT = 4, (2, 4)  # latent channels and size: 8 tokens per frame with patch 1


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture
def model() -> DiT:
    torch.manual_seed(0)
    cfg = DiTConfig(patch=1, dim=32, depth=3, heads=2, mlp_ratio=2.0, buttons=1, sinks=2, window=3)
    return DiT(cfg, C, LATENT, zero_init=False).eval()


def conditions(frames: int, model: DiT, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random actions (frames, A), rays (frames, N, 6) and has_pose (frames,), poses on about half the frames."""
    g = torch.Generator().manual_seed(seed)
    action = torch.randn(frames, model.cfg.action_dim, generator=g) * 5
    rays = torch.randn(frames, model.tokens, 6, generator=g)
    return action, rays, torch.rand(frames, generator=g) > 0.5


def make_cache(model: DiT, capacity: int) -> KVCache:
    cfg = model.cfg
    return KVCache(cfg.depth, model.tokens, cfg.heads, model.head_dim, cfg.sinks, cfg.window, capacity=capacity)


@torch.no_grad()
def test_cached_generation_matches_recomputation_after_the_window_rolls(model: DiT) -> None:
    frames, schedule = 20, timesteps(3)  # window 3 + 2 sinks: the window rolls over five times
    action, rays, has_pose = conditions(frames, model, seed=1)
    noise = torch.randn(frames, 1, C, *LATENT, generator=torch.Generator().manual_seed(2))
    cache = make_cache(model, capacity=1)
    history = torch.zeros(1, 0, C, *LATENT)
    for i in range(frames):
        now = (action[i : i + 1], rays[i : i + 1], has_pose[i : i + 1])  # this frame's conditions, batch of 1
        so_far = (action[None, : i + 1], rays[None, : i + 1], has_pose[None, : i + 1])  # every frame's until now
        cached = generate_cached(model, cache, [0], noise[i], *now, schedule)
        full = generate_recompute(model, history, noise[i], *so_far, schedule)
        assert relative_error(cached, full) < 1e-4, f"frame {i}"
        history = torch.cat([history, full[:, None]], dim=1)
    # The context matters: the same noise and conditions after a different history give another frame.
    other = generate_recompute(model, history[:, :-1].flip(1), noise[-1], *so_far, schedule)
    assert relative_error(other, full) > 1e-2


@torch.no_grad()
def test_episodes_of_different_lengths_share_a_batch(model: DiT) -> None:
    """Slot 1 restarts at frame 9 while slot 0 runs on: per-episode lengths, masks and positions in one batch."""
    frames, restart, schedule = 16, 9, timesteps(2)
    cache = make_cache(model, capacity=2)
    conds = [conditions(frames, model, seed=s) for s in (3, 4)]
    noise = torch.randn(frames, 2, C, *LATENT, generator=torch.Generator().manual_seed(5))
    histories = [torch.zeros(1, 0, C, *LATENT), torch.zeros(1, 0, C, *LATENT)]
    starts = [0, 0]
    for i in range(frames):
        if i == restart:
            cache.reset(1)
            histories[1], starts[1] = histories[1][:, :0], i
        action, rays, has_pose = (torch.stack([c[j][i] for c in conds]) for j in range(3))
        cached = generate_cached(model, cache, [0, 1], noise[i], action, rays, has_pose, schedule)
        for e in range(2):
            a, r, p = (c[starts[e] : i + 1][None] for c in conds[e])
            full = generate_recompute(model, histories[e], noise[i, e : e + 1], a, r, p, schedule)
            assert relative_error(cached[e : e + 1], full) < 1e-4, f"frame {i}, episode {e}"
            histories[e] = torch.cat([histories[e], full[:, None]], dim=1)


def test_positions_follow_the_slots() -> None:
    """Sinks at 0..S-1, window frames next in time order, the new frame last: never beyond S + W."""
    cache = KVCache(layers=1, tokens=1, heads=1, head_dim=2, sinks=2, window=3)
    one = torch.ones(1, 1, 1, 1, 2)
    expected_pos = [0, 1, 2, 3, 4, 5, 5, 5]
    for n, pos_now in enumerate(expected_pos):
        past_pos, past_valid, pos = cache.positions([0])
        assert pos.item() == pos_now and past_valid.sum().item() == min(n, 5)
        visible = sorted(past_pos[0][past_valid[0]].tolist())
        assert visible == list(range(min(n, 5)))  # contiguous: a rolled window looks like a fresh one
        cache.write([0], one * n, one * n)
    # After frames 0..7: the sinks hold frames 0 and 1, the ring frames 5, 6, 7 (written over 2, 3, 4).
    past_pos, _, _ = cache.positions([0])
    by_position = {p: cache.k[0, 0, slot, 0, 0, 0].item() for slot, p in enumerate(past_pos[0].tolist())}
    assert by_position == {0: 0, 1: 1, 2: 5, 3: 6, 4: 7}
