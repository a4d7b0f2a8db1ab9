"""A tiny LingBot-World-Fast checkpoint in the released layout, served by a real daemon to real clients:
frames arrive chunk by chunk (9, then 12 per chunk), seeded sessions reproduce, the start image and engine
poses reach the model."""

import numpy as np
import pytest
from lingbot_tiny import HEIGHT, WIDTH, tiny_release
from lockstep import lockstep

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess


@pytest.fixture(scope="module")
def lingbot_daemon(tmp_path_factory):
    path = tiny_release(tmp_path_factory.mktemp("lingbot") / "release")
    with DaemonProcess(f"lingbot-fast:{path}", "--max-sessions", "4") as d:
        yield d


def test_frames_arrive_chunk_by_chunk(lingbot_daemon):
    with Client(lingbot_daemon.address, width=640, height=480, seed=3) as c:
        w = c.welcome
        assert (w["world"], w["width"], w["height"]) == ("lingbot-fast", WIDTH, HEIGHT)
        assert {"pose", "start_image"} <= set(w["capabilities"])
        frames = lockstep(c, 9 + 12 + 1, timeout=60, move=(0.0, 1.0), look=(2.0, 0.0))
    assert all(f.image.shape == (HEIGHT, WIDTH, 3) for f in frames)
    assert len({f.image.tobytes() for f in frames}) > 10  # a video, not a still
    step_ms = [f.header["timings"]["step_ms"] for f in frames]
    buffered = np.median(step_ms[1:9] + step_ms[10:21])
    for chunk_start in (0, 9, 21):  # the steps that generated a chunk carry its whole cost
        assert step_ms[chunk_start] > 20 * buffered, step_ms
    moved = np.asarray(frames[-1].header["pose"]["p"]) - np.asarray(frames[0].header["pose"]["p"])
    assert np.linalg.norm(moved) > 1.0  # dead-reckoned walk: 21 frames at 1.5 units/s


def test_seeded_sessions_reproduce(lingbot_daemon):
    with Client(lingbot_daemon.address, seed=7) as a, Client(lingbot_daemon.address, seed=7) as b:
        fa = lockstep(a, 10, timeout=60, move=(0.0, 1.0))
        fb = lockstep(b, 10, timeout=60, move=(0.0, 1.0))
    for x, y in zip(fa, fb):
        np.testing.assert_array_equal(x.image, y.image)


def test_start_image_conditions_the_chunk(lingbot_daemon):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 96, 3), dtype=np.uint8)
    with Client(lingbot_daemon.address, seed=1) as c:
        ok = c.reset(seed=1, image=image)
        first = lockstep(c, 3, timeout=60)
        c.reset(seed=1, image=image)
        again = lockstep(c, 3, timeout=60)
        c.reset(seed=1, image=255 - image)
        other = lockstep(c, 3, timeout=60)
    assert ok["episode"] == 1
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x.image, y.image)
    assert not np.array_equal(first[0].image, other[0].image)


def test_engine_poses_drive_the_camera(lingbot_daemon):
    # Godot camera: still for 8 frames, then 0.1 units per frame along its -Z. The first chunk (frames 0-8) was
    # planned at rest; the second is planned at frame 9 from the engine's last motion, so its frames carry the
    # engine's own poses as long as the engine keeps that motion.
    def pose(k):
        return {"p": [1.0, 0.5, -2.0 - 0.1 * max(0, k - 7)], "q": [0.0, 0.0, 0.0, 1.0]}

    with Client(lingbot_daemon.address, engine="godot", seed=2) as c:
        frames = []
        for k in range(14):
            frames.extend(lockstep(c, 1, timeout=60, pose=pose(k)))
    np.testing.assert_allclose(frames[0].header["pose"]["p"], pose(0)["p"], atol=1e-9)
    for k in range(9, 14):
        np.testing.assert_allclose(frames[k].header["pose"]["p"], pose(k)["p"], atol=1e-9)
        np.testing.assert_allclose(frames[k].header["pose"]["q"], [0, 0, 0, 1], atol=1e-9)
