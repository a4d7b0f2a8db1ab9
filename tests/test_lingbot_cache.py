"""LingBot-World-Fast's chunked generation with the KV cache equals computing the whole sequence at once with
the same noise (block-causal mask with the same sinks and window), also after the window has rolled; the
cache stays a fixed size and positions keep working past Wan's 1024-entry RoPE table."""

import numpy as np
import pytest
import torch
from lingbot_tiny import tiny_dit

from runtime.lingbot.fast.config import CHUNK_FRAMES, DEFAULT_SHIFT, cache_chunks, fast_schedule
from runtime.lingbot.fast.control import control_tokens, relative_motion
from runtime.lingbot.fast.dit import ChunkCache, ChunkInputs, rope_angles

H, W = 4, 8  # latent size; 8 tokens per latent frame
TOKENS = (H // 2) * (W // 2)


@pytest.fixture(scope="module")
def dit():
    return tiny_dit()


def conditions(model, chunks, seed=1):
    g = torch.Generator().manual_seed(seed)
    frames = chunks * CHUNK_FRAMES
    y = torch.randn(1, 20, frames, H, W, generator=g)
    motion = relative_motion(None, torch.eye(4).repeat(frames, 1, 1).numpy() + 0.0)
    motion[:, :3, 3] = torch.randn(frames, 3, generator=g).numpy()
    K = torch.tensor([[40.0, 40.0, 32.0, 16.0]]).repeat(frames, 1).numpy()
    control = model.embed_control(control_tokens(motion, K, 8 * H, 8 * W))  # (1, frames*TOKENS, D)
    cross = model.embed_text(torch.randn(1, 5, model.cfg.text_dim, generator=g))
    noise = [[torch.randn(1, 16, CHUNK_FRAMES, H, W, generator=g) for _ in range(4)] for _ in range(chunks)]
    return y, control, cross, noise


def sample(flow_fn, noise, schedule):
    """The Fast sampler with given noise: x0 = x - sigma * flow, re-noised to the next sigma."""
    x = noise[0]
    for i, (t, sigma, _) in enumerate(schedule):
        x0 = x - sigma * flow_fn(x, t)
        if i + 1 < len(schedule):
            nxt = schedule[i + 1][2]
            x = (1 - nxt) * x0 + nxt * noise[i + 1]
    return x0


def chunked(model, chunks, sinks, window, positions="absolute"):
    y, control, cross, noise = conditions(model, chunks)
    cache, out = ChunkCache(sinks, window, positions), []
    schedule = fast_schedule(5.0)
    for c in range(chunks):
        f = slice(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
        inputs = ChunkInputs(y[:, :, f], control[:, c * CHUNK_FRAMES * TOKENS:(c + 1) * CHUNK_FRAMES * TOKENS], cross)
        x0 = sample(lambda x, t, inputs=inputs: model.forward_chunk(x, t, inputs, cache), noise[c], schedule)
        model.forward_chunk(x0, 0.0, inputs, cache, record=True)
        cache.commit()
        out.append(x0)
    return torch.cat(out, dim=2), cache


def full_sequence(model, chunks, sinks, window):
    """Every denoising step reruns the whole sequence so far (clean history at t = 0, the new chunk at t)."""
    y, control, cross, noise = conditions(model, chunks)
    history = torch.zeros(1, 16, 0, H, W)
    schedule = fast_schedule(5.0)
    for c in range(chunks):
        n = (c + 1) * CHUNK_FRAMES

        def flow(x, t, c=c, n=n, history=history):
            seq = torch.cat([history, x], dim=2)
            times = torch.tensor([[0.0] * (c * CHUNK_FRAMES) + [t] * CHUNK_FRAMES])
            out = model.forward_full(seq, y[:, :, :n], times, control[:, :n * TOKENS], cross, sinks, window)
            return out[:, :, -CHUNK_FRAMES:]

        history = torch.cat([history, sample(flow, noise[c], schedule)], dim=2)
    return history


@torch.inference_mode()
def test_cached_chunks_equal_the_full_sequence_also_after_the_window_rolls(dit):
    # 1 sink + a window of 1 chunk: chunk 2 sees chunks 0 and 1, chunk 3 only 0 and 2 (chunk 1 rolled out)
    cached, cache = chunked(dit, 4, sinks=1, window=1)
    full = full_sequence(dit, 4, sinks=1, window=1)
    assert cache.chunks == 4 and [c for _, c in cache.slots()] == [0, 3]
    torch.testing.assert_close(cached, full, atol=2e-4, rtol=1e-4)
    unbounded = full_sequence(dit, 4, sinks=1, window=8)  # the window really cut something off
    assert not torch.allclose(cached[:, :, -3:], unbounded[:, :, -3:], atol=1e-3)
    torch.testing.assert_close(cached[:, :, :6], unbounded[:, :, :6], atol=2e-4, rtol=1e-4)  # before it rolled


@torch.inference_mode()
def test_cache_memory_is_fixed_and_rolling_positions_stay_bounded(dit):
    _, cache = chunked(dit, 3, sinks=1, window=1, positions="rolling")
    size = cache.nbytes
    for _ in range(40):  # keep committing: the cache only overwrites its ring
        cache.pending = [(torch.zeros(1, CHUNK_FRAMES * TOKENS, 2, 32), torch.zeros(1, CHUNK_FRAMES * TOKENS, 2, 32))
                         for _ in dit.blocks]
        cache.commit()
    past, own = cache.frame_positions(CHUNK_FRAMES)
    assert cache.nbytes == size and cache.chunks == 43
    assert int(own.max()) < (1 + 1 + 1) * CHUNK_FRAMES and past.tolist() == list(range(6))


def test_the_fast_schedule():
    # shift 5: timesteps 999, 957, 899, 702; x0 uses the first sigma sharing the timestep, re-noising the second
    steps = fast_schedule(5.0)
    assert [t for t, _, _ in steps] == [999.0, 957.0, 899.0, 702.0]
    assert steps[2][1] == pytest.approx(0.8998038, abs=1e-6) and steps[2][2] == pytest.approx(0.8994113, abs=1e-6)
    assert steps[3][1] == steps[3][2] == pytest.approx(0.7024067, abs=1e-6)


def test_rope_positions_continue_past_the_table():
    # Wan precomputes 1024 positions; the formula must give the same angles there and keep going beyond
    head_dim = 128
    angles = rope_angles(head_dim, torch.tensor([3, 1023, 5000]), 1, 1)  # (3, 64)
    c = head_dim // 2
    cf = c - 2 * (c // 3)
    freqs = 1.0 / torch.pow(10000.0, torch.arange(0, 2 * cf, 2, dtype=torch.float64) / (2 * cf))
    torch.testing.assert_close(angles[:, :cf], torch.outer(torch.tensor([3.0, 1023.0, 5000.0], dtype=torch.float64),
                                                           freqs))
    assert torch.all(angles[:, cf:] == 0)  # row 0, column 0


@torch.inference_mode()
def test_absolute_positions_far_into_an_episode(dit):
    # The same two chunks at chunk indices 0, 1 and at 499, 500 (latent frame 1500, past the official table):
    # RoPE depends on distances only, so the prediction must be the same and finite.
    y, control, cross, noise = conditions(dit, 2)
    inputs = ChunkInputs(y[:, :, :3], control[:, :3 * TOKENS], cross)
    early, late = ChunkCache(0, 1), ChunkCache(0, 1)
    for cache in (early, late):
        dit.forward_chunk(noise[0][0], 0.0, inputs, cache, record=True)
        cache.commit()
    late.chunks = 500  # as if 499 chunks had come before: the window's one chunk is number 499
    assert late.frame_positions(CHUNK_FRAMES)[1].tolist() == [1500, 1501, 1502]
    late_out = dit.forward_chunk(noise[1][0], 900.0, inputs, late)
    early_out = dit.forward_chunk(noise[1][0], 900.0, inputs, early)
    assert torch.isfinite(late_out).all()
    torch.testing.assert_close(late_out, early_out, atol=2e-4, rtol=1e-4)


def test_the_fast_schedule_at_the_default_shift():
    # generate_fast.py runs the task config's sample_shift, 10.0: timesteps 999, 978, 947, 825
    from runtime.lingbot.fast.world import LingBotOptions

    assert DEFAULT_SHIFT == 10.0 and LingBotOptions().shift == DEFAULT_SHIFT
    steps = fast_schedule(DEFAULT_SHIFT)
    assert [t for t, _, _ in steps] == [999.0, 978.0, 947.0, 825.0]
    base = np.linspace(0.999, 0.0, 1001)[:-1]
    for (t, sigma, renoise), i in zip(steps, (0, 179, 358, 679)):  # shifted sigma = 10 s / (1 + 9 s)
        assert int(1000 * (10 * base[i] / (1 + 9 * base[i]))) == t
        assert int(1000 * sigma) == int(1000 * renoise) == t and renoise <= sigma  # neighbours of one timestep


def official_visible(chunks, local_attn_size, sink_size, chunk=CHUNK_FRAMES):
    """A frame-level model of WanModelFast's rolling self-attention cache (written from its description: a
    cache of local_attn_size latent frames, the new chunk written into it before attending, the first sink_size
    frames pinned when older frames are evicted; -1: the cache holds the whole video). The earlier chunks the
    new chunk attends to, for each chunk."""
    cache, seen = [], []
    for c in range(chunks):
        new = list(range(c * chunk, (c + 1) * chunk))
        if local_attn_size != -1 and len(cache) + chunk > local_attn_size:
            evict = len(cache) + chunk - local_attn_size
            cache = cache[:sink_size] + cache[sink_size + evict:]
        cache += new
        past = [f for f in cache if f not in new]
        assert len(past) % chunk == 0 and all(past[i] // chunk == past[i + chunk - 1] // chunk
                                              for i in range(0, len(past), chunk))  # whole chunks only
        seen.append(sorted({f // chunk for f in past}))
    return seen


def ours_visible(chunks, sinks, window):
    cache, seen = ChunkCache(sinks, window), []
    for _ in range(chunks):
        seen.append([c for _, c in cache.slots()])
        cache.chunks += 1  # slots() depends on the count only
    return seen


@pytest.mark.parametrize("local, sink", [(15, 3), (12, 0), (9, 3), (21, 6), (-1, 0), (-1, 3)])
def test_official_cache_sizes_translate_to_the_same_visible_chunks(local, sink):
    sinks, window = cache_chunks(local, sink)
    assert ours_visible(12, sinks, window) == official_visible(12, local, sink)


def test_cache_translation_and_where_the_default_window_departs_from_the_official_default():
    assert cache_chunks(15, 3) == (1, 3)  # the project's default
    assert cache_chunks(-1) == (0, None) and cache_chunks(12) == (0, 3)
    for local, sink in ((16, 3), (15, 4), (6, 3), (3, 0)):
        with pytest.raises(ValueError):
            cache_chunks(local, sink)
    ours, official = ours_visible(10, 1, 3), official_visible(10, -1, 0)
    assert ours[:5] == official[:5]  # chunks 0-4 see all their history either way
    assert ours[5] == [0, 2, 3, 4] and official[5] == [0, 1, 2, 3, 4]  # chunk 5 on: chunk 1 rolled out here


def test_options_take_the_official_spelling(tmp_path):
    from runtime.lingbot.fast.world import read_options

    opts = read_options(tmp_path, local_attn_size=15, sink_size=3)
    assert (opts.sinks, opts.window) == (1, 3)
    opts = read_options(tmp_path, local_attn_size=-1)
    assert (opts.sinks, opts.window) == (0, -1)
    assert read_options(tmp_path).sinks == 1 and read_options(tmp_path).window == 3
    with pytest.raises(ValueError, match="not both"):
        read_options(tmp_path, local_attn_size=15, sink_size=3, window=2)
    with pytest.raises(ValueError, match="multiple of 3"):
        read_options(tmp_path, local_attn_size=14, sink_size=3)
    with pytest.raises(ValueError, match="window"):
        read_options(tmp_path, window=0)


@torch.inference_mode()
def test_unbounded_cache_equals_the_full_sequence_and_grows(dit):
    # window None (local_attn_size -1): every chunk sees all of its history, as the official default does
    cached, cache = chunked(dit, 5, sinks=0, window=None)
    full = full_sequence(dit, 5, sinks=0, window=None)
    torch.testing.assert_close(cached, full, atol=2e-4, rtol=1e-4)
    assert [c for _, c in cache.slots()] == [0, 1, 2, 3, 4] and cache.k.shape[1] == 8  # doubled from 4
    torch.testing.assert_close(full, full_sequence(dit, 5, sinks=1, window=8), atol=1e-6, rtol=1e-6)
