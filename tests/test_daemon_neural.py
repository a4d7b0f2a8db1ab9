"""The daemon serving a neural world (a small randomly initialised checkpoint) to clients over the protocol."""

import threading
from pathlib import Path

import numpy as np
import pytest
from lockstep import lockstep

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from bridge.server.daemon import Daemon, DaemonConfig
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    init_checkpoint(path, ROOT / "runtime/configs/tiny.yaml")
    return path


@pytest.fixture(scope="module")
def neural_daemon(checkpoint):
    with DaemonProcess(str(checkpoint)) as d:
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


class BatchSpy(NeuralWorld):
    """The neural world, recording how many episodes each step carried; every step waits for `gate`."""

    def __init__(self, path):
        super().__init__(path)
        self.batches: list[int] = []
        self.gate = threading.Event()

    def step(self, actions):
        assert self.gate.wait(30), "the test never opened the gate"
        self.batches.append(len(actions))
        return super().step(actions)


def test_two_streaming_sessions_are_stepped_in_one_batch(checkpoint):
    """Two clients streaming at once through one daemon share world.step calls, and each gets the frames its
    episode makes alone. Constant inputs (no look deltas to accumulate) make every step's action the same
    whichever input a frame answers, so the streamed frames can be compared with lockstepped ones."""
    n, plans = 6, {"a": (5, (0.0, 1.0)), "b": (6, (1.0, 0.0))}  # name: (seed, move)
    world = BatchSpy(checkpoint)
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        ready, streamed, errors = threading.Barrier(len(plans) + 1, timeout=60), {}, []

        def stream(name):
            seed, move = plans[name]
            try:
                with Client(d.address, seed=seed, timeout=60) as c:
                    c.send_input(move)
                    c.grant(2)  # two credits ahead, then one per frame received
                    c.ping()  # the daemon holds both credits; no frame yet: the world's first step waits at the gate
                    ready.wait()
                    frames = []
                    for i in range(n):
                        frames.append(c.recv_frame())
                        if i < n - 2:
                            c.send_input(move)
                            c.grant(1)
                    streamed[name] = frames
            except BaseException as e:
                errors.append(e)
                ready.abort()

        threads = [threading.Thread(target=stream, args=(name,)) for name in plans]
        for t in threads:
            t.start()
        ready.wait()  # both sessions hold credits while the stepper is held: its next step must take both
        world.gate.set()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert world.batches.count(2) >= 1, world.batches  # at least one step carried both episodes
        assert sum(world.batches) == len(plans) * n  # and every frame came from exactly one episode's slot

        batched, world.batches = world.batches, []
        alone = {}
        for name, (seed, move) in plans.items():  # the same episodes again, one session at a time
            with Client(d.address, seed=seed, timeout=60) as c:
                alone[name] = lockstep(c, n, move=move)
        assert world.batches == [1] * (len(plans) * n)
    finally:
        world.gate.set()  # never leave the stepper held, even when the test failed early
        d.stop()
    assert batched.count(2) >= 1
    for name in plans:
        assert [f.header["seq"] for f in streamed[name]] == list(range(n))
        for i, (x, y) in enumerate(zip(streamed[name], alone[name])):
            diff = np.abs(x.image.astype(int) - y.image.astype(int))
            assert diff.max() <= 1, f"session {name}, frame {i}"  # as test_neural_determinism: rounding at most
    assert not np.array_equal(streamed["a"][-1].image, streamed["b"][-1].image)  # two episodes, not one twice


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
