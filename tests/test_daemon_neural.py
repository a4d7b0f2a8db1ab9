"""The daemon serving a neural world (a small randomly initialised checkpoint) to clients over the protocol."""

from pathlib import Path

import numpy as np
import pytest
from lockstep import lockstep

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from runtime.neural.checkpoint import init_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def neural_daemon(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    init_checkpoint(path, ROOT / "runtime/configs/tiny.yaml")
    with DaemonProcess(str(path)) as d:
        yield d


def test_serves_frames_at_the_models_size(neural_daemon):
    with Client(neural_daemon.address, width=640, height=480, seed=3) as c:
        w = c.welcome
        assert (w["world"], w["width"], w["height"]) == ("tiny", 32, 32)  # native size, whatever was asked
        assert "start_image" in w["capabilities"]
        frames = lockstep(c, 12, move=(0.0, 1.0), look=(3.0, 0.0))
        assert all(f.image.shape == (32, 32, 3) for f in frames)
        assert len({f.image.tobytes() for f in frames}) > 1  # it moves
        moved = np.asarray(frames[-1].header["pose"]["p"]) - np.asarray(frames[0].header["pose"]["p"])
        assert np.linalg.norm(moved) > 0.5  # dead-reckoned walk: 11 ticks at 1.5 units/s


def test_two_sessions_are_batched_and_reproducible(neural_daemon):
    with Client(neural_daemon.address, seed=5) as a, Client(neural_daemon.address, seed=5) as b:
        fa = lockstep(a, 4, move=(0.0, 1.0))
        fb = lockstep(b, 4, move=(0.0, 1.0))
        for x, y in zip(fa, fb):
            np.testing.assert_array_equal(x.image, y.image)  # same seed and inputs, same frames


def test_reset_from_a_start_image(neural_daemon):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    with Client(neural_daemon.address, seed=1) as c:
        lockstep(c, 2)
        ok = c.reset(seed=1, image=image)
        first = lockstep(c, 1)[0]
        c.reset(seed=1, image=image)
        again = lockstep(c, 1)[0]
        c.reset(seed=1, image=255 - image)
        other = lockstep(c, 1)[0]
    assert ok["episode"] == 1 and first.header["episode"] == 1
    np.testing.assert_array_equal(first.image, again.image)
    assert not np.array_equal(first.image, other.image)  # the image really entered the context


def test_engine_pose_is_echoed(neural_daemon):
    pose = {"p": [1.0, 0.5, -2.0], "q": [0.0, 0.0, 0.0, 1.0]}
    with Client(neural_daemon.address, engine="godot") as c:
        f = lockstep(c, 1, pose=pose)[0]
        np.testing.assert_allclose(f.header["pose"]["p"], pose["p"], atol=1e-9)
