"""Pose-indexed memory (runtime/neural/memory.py): view-overlap retrieval, a bounded store, the cache's memory
slots, the training clips' memory, and a world that keeps its cost and size bounded however long it runs."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from runtime.camera import c2w_from_yaw_pitch, frustum_overlap
from runtime.eval.bench import cache_and_length
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.dit import DiT, DiTConfig
from runtime.neural.kv_cache import KVCache
from runtime.neural.memory import Memory
from runtime.neural.world import NeuralWorld
from runtime.training.stages import SelfRollouts, memory_frames
from runtime.training.trainer import Episodes
from runtime.world import Action

ROOT = Path(__file__).resolve().parents[1]
EYE = np.array([5.0, -0.5, 5.0])


def cam(yaw: float, at: np.ndarray = EYE) -> np.ndarray:
    return c2w_from_yaw_pitch(at, yaw, 0.0)


def test_frustum_overlap_ranks_views() -> None:
    others = np.stack([cam(0), cam(20), cam(90), cam(180), cam(0, EYE + [0, 0, -2]), cam(180, EYE + [0, 0, 6])])
    score = frustum_overlap(cam(0), others, 60.0)
    assert score[0] == 1.0 and score[0] > score[1] > score[2] and score[3] == 0.0
    assert score[4] == 1.0  # a step behind, looking the same way, sees all of it
    assert score[5] > 0.2  # looking back from ahead sees the near part


def kv(value: float) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((2, 3, 2, 4), value), torch.full((2, 3, 2, 4), -value)


def test_memory_recalls_overlapping_old_frames_only() -> None:
    m = Memory(capacity=8, stride=2)
    for frame, yaw in enumerate([0, 0, 90, 90, 180, 180, 0, 0]):
        m.add(frame, cam(yaw), *kv(frame))
    assert len(m) == 4 and m.frames.tolist() == [0, 2, 4, 6]  # every stride-th frame
    assert m.recall(cam(0), 60.0, now=8, count=2, recent=0) == [0, 3]  # frames 0 and 6, best first
    assert m.recall(cam(0), 60.0, now=8, count=2, recent=3) == [0]  # frame 6 is still in the window
    assert m.recall(cam(270), 60.0, now=8, count=2, recent=0) == []  # nothing seen that way
    assert float(m.k[1][0, 0, 0, 0]) == 2.0  # the keys stored are those offered


def test_memory_finds_the_frame_made_from_here() -> None:
    m = Memory(capacity=8, stride=1)
    z = [torch.full((2, 2, 2), float(i)) for i in range(5)]
    poses = [cam(0), cam(90), cam(0, EYE + [0, 0, 0.05]), cam(2), cam(0, EYE + [0, 0, 1])]
    for frame, (pose, latent) in enumerate(zip(poses, z)):
        m.add(frame, pose, *kv(frame), latent)
    assert m.nearest(cam(0), now=10, recent=0) == 0  # exactly here
    assert m.nearest(cam(0, EYE + [0, 0, 0.06]), now=10, recent=0) == 2  # a step away: the closer one
    assert m.nearest(cam(1.9), now=10, recent=0) == 3
    assert m.nearest(cam(0, EYE + [0, 0, 0.01]), now=10, recent=10) is None  # too recent: a walking camera
    assert m.nearest(cam(0), now=10, recent=10) == 0  # ... but exactly here (an engine holding still) anchors
    assert m.nearest(cam(45), now=10, recent=0) is None and m.nearest(cam(0, EYE + [0, 0, 0.5]), 10, 0) is None
    assert torch.equal(m.latents[2], z[2])


def test_memory_stays_bounded_and_spread_out() -> None:
    m = Memory(capacity=16, stride=1)
    rng = np.random.default_rng(0)
    for frame in range(2000):  # walk to and fro along a line: most new frames repeat a place seen
        m.add(frame, cam(float(rng.uniform(0, 360)), EYE + [0, 0, float(rng.uniform(0, 10))]), *kv(1.0))
    assert len(m) == 16 and m.nbytes == 16 * 2 * 2 * 3 * 2 * 4 * 2  # entries x (k, v) x bf16 bytes
    z = np.sort(m.poses[:, 2, 3])
    assert z[-1] - z[0] > 7  # it kept places across the line, not only the last ones seen
    assert m.frames.min() < 1000  # old frames survive


def test_cache_memory_slots_positions_and_masking() -> None:
    cache = KVCache(layers=2, tokens=3, heads=2, head_dim=4, sinks=2, window=3, capacity=2, memory=2)
    for _ in range(6):
        cache.write([0], *(t[:, None] for t in kv(7.0)))
    past_pos, past_valid, pos = cache.positions([0])
    assert past_pos[0, :4].tolist() == [0, 1, 2, 3] and not past_valid[0, 2:4].any()
    assert past_valid[0, 4:].all() and int(pos[0]) == 2 + 2 + 3  # sinks, memory, full window, then the new frame
    cache.remember(0, [kv(1.0)])
    assert cache.positions([0])[1][0, 2:4].tolist() == [True, False]
    assert float(cache.k[0, 0, 2, 0, 0, 0]) == 1.0 and float(cache.latest(0)[0][0, 0, 0, 0]) == 7.0
    with pytest.raises(ValueError):
        cache.remember(0, [kv(1.0)] * 3)
    cache.reset(0)
    assert not cache.remembered[0].any()


@torch.no_grad()
def test_absent_memory_frames_are_invisible_and_present_ones_matter() -> None:
    torch.manual_seed(0)
    cfg = DiTConfig(patch=1, dim=32, depth=2, heads=2, mlp_ratio=2.0, buttons=1, sinks=1, window=2, memory=2)
    model = DiT(cfg, 4, (2, 2), zero_init=False).eval()
    T = 5  # sink, 2 memory, 2 window
    x, t = torch.randn(1, T, 4, 2, 2), torch.rand(1, T)
    a, r, p = torch.randn(1, T, cfg.action_dim), torch.randn(1, T, 4, 6), torch.ones(1, T, dtype=torch.bool)
    absent = torch.tensor([[True, False, False, True, True]])
    other = x.clone()
    other[:, 1:3] = torch.randn(1, 2, 4, 2, 2)
    out, out_other = model(x, t, a, r, p, None, absent), model(other, t, a, r, p, None, absent)
    assert torch.allclose(out[:, 3:], out_other[:, 3:], atol=1e-6)  # what absent frames hold does not matter
    present = torch.ones(1, T, dtype=torch.bool)
    seen, seen_other = model(x, t, a, r, p, None, present), model(other, t, a, r, p, None, present)
    assert (seen[:, 3:] - seen_other[:, 3:]).abs().max() > 1e-3


def test_training_clips_retrieve_memory_as_the_daemon_does() -> None:
    yaws = [0, 90, 180, 270] * 8  # a spin, four times round
    poses = torch.from_numpy(np.stack([cam(y) for y in yaws])).float()[None]  # (1, 32, 4, 4)
    index, present = memory_frames(poses, poses[:, 28], torch.tensor([24]), 2, 60.0, sinks=2)
    assert present.all() and set(index[0].tolist()) <= {4, 8, 12, 16, 20}  # stride 4, facing yaw 0, before 24
    index, present = memory_frames(poses, poses[:, 5], torch.tensor([2]), 2, 60.0, sinks=2)
    assert not present.any()  # nothing between the sinks and the window yet


def test_student_rollouts_keep_and_recall_memory_as_the_daemon_does() -> None:
    torch.manual_seed(0)
    cfg = DiTConfig(patch=1, dim=32, depth=2, heads=2, mlp_ratio=2.0, buttons=1, sinks=1, window=2, memory=2)
    student, teacher = (DiT(cfg, 4, (2, 2), zero_init=False).eval() for _ in range(2))
    T = 24  # a spin at 30 degrees a frame: frame 13 (yaw 30) sees what frame 0 saw, frames 4 and 8 look away
    poses = torch.from_numpy(np.stack([cam(30.0 * i) for i in range(T)])).float()[None]
    data = Episodes(torch.zeros(1, T, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, T, cfg.action_dim), poses,
                    torch.zeros(1, T, 4), rays=torch.randn(1, T, 4, 6))
    rollouts = SelfRollouts(student, teacher, torch.randn(1, T, 4, 2, 2), data, 2, 20, torch.device("cpu"),
                            torch.float32, 60.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(12):
        rollouts.advance(g, [1.0, 0.5, 0.0])
    assert rollouts.t.tolist() == [13, 13]
    for b in range(2):
        mine, theirs = rollouts.memories[b]
        assert mine.frames.tolist() == theirs.frames.tolist() == [0, 4, 8, 12]  # every 4th frame, as served
        assert rollouts.student_cache.remembered[b].tolist() == [True, False]  # frame 12 is still in the window
        assert torch.equal(rollouts.student_cache.k[:, b, 1], mine.k[0].float())
        assert torch.equal(rollouts.teacher_cache.k[:, b, 1], theirs.k[0].float())  # each model's own keys
        assert not torch.equal(mine.k[0], theirs.k[0])


def memory_model(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "runtime/configs/tiny.yaml").read_text())
    raw["dit"]["memory"] = 2
    (tmp_path / "mem.yaml").write_text(yaml.safe_dump(raw))
    init_checkpoint(tmp_path / "m", tmp_path / "mem.yaml", seed=0)
    return tmp_path / "m"


def test_world_memory_is_bounded_and_changes_revisits(tmp_path: Path) -> None:
    path = memory_model(tmp_path)
    frames = {}
    for use in (True, False):
        world = NeuralWorld(path, memory=use)
        world.reset(0, 1, 32, 32, pose=cam(0))
        spin = [world.step({0: Action(pose=cam(7.5 * (i + 1)))})[0].pixels for i in range(600)]
        frames[use] = spin
        memory = world.memory_of(0)
        if use:
            assert len(memory) == memory.capacity and world.cache.remembered[0].any()
            assert world.episode_bytes(32, 32) > world.cache.nbytes // world.cache.capacity + memory.nbytes - 1
        else:
            assert memory is None
    assert np.array_equal(frames[True][2], frames[False][2])  # nothing old enough to recall yet
    assert not np.array_equal(frames[True][-1], frames[False][-1])  # a revisit sees the frames it recalls


def test_anchoring_redraws_a_remembered_place_from_its_frame(tmp_path: Path) -> None:
    """Standing still: each frame starts from the stored frame of this very pose (noised to the anchor time), from
    the first step on, so it stays near the first frame; without anchoring it is drawn anew. A camera that walks
    on, each step within the anchoring distance, is not pulled back to the frames it just left (the window)."""
    path = memory_model(tmp_path)
    raw = yaml.safe_load((path / "config.yaml").read_text())
    still, walking, stored = {}, {}, None
    window = 3  # runtime/configs/tiny.yaml
    for anchor in (0.0, 0.25):
        raw["sampler"]["anchor"] = anchor
        (path / "config.yaml").write_text(yaml.safe_dump(raw))
        world = NeuralWorld(path)
        world.reset(0, 1, 32, 32, pose=cam(0))
        still[anchor] = [world.step({0: Action(pose=cam(0))})[0].pixels for _ in range(24)]
        if anchor:
            memory = world.memory_of(0)
            stored = world.backend.decode(memory.latents[memory.nearest(cam(0), 25, 0)][None])[0]
        world.reset(1, 1, 32, 32, pose=cam(0))
        walking[anchor] = [world.step({1: Action(pose=cam(0, EYE + [0, 0, 0.06 * t]))})[1].pixels
                           for t in range(1, 4 * window)]
    assert not np.array_equal(still[0.0][0], still[0.25][0])  # anchored at once: the start's own pose
    assert all(np.array_equal(a, b) for a, b in zip(walking[0.0], walking[0.25]))

    def err(image: np.ndarray) -> float:
        return float(np.abs(image.astype(float) - stored).mean())

    assert err(still[0.25][-1]) < 0.5 * err(still[0.0][-1])


def test_bench_times_frames_with_a_full_memory(tmp_path: Path) -> None:
    r = cache_and_length(memory_model(tmp_path), frames=6, long=600)
    assert r["memory_entries"] == 128 and r["memory_bytes_per_episode"] > 0
    assert r["frame_ms_without_memory"] > 0 and "memory_extra_frame_time" in r and "frame_ms_at_600" in r
