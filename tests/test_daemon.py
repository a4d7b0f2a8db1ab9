"""The daemon over real sockets: sessions, credits, newest-input-wins, resets, errors, limits, shutdown."""

import signal
import threading
import time

import numpy as np
import pytest
import zmq
from lockstep import lockstep

from bridge.client.client import Client, ServerError
from bridge.client.launch import DaemonProcess
from bridge.protocol import messages as p
from bridge.server.daemon import Daemon, DaemonConfig, check_bind
from runtime.maze.world import MazeWorld
from runtime.world import EpisodesLost


def stream(c: Client, n: int, move=(0.0, 1.0), look=(4.0, 0.0)):
    """Real-time use: two credits ahead, one input per frame (frames need not wait for inputs)."""
    frames = []
    c.send_input(move, look)
    c.grant(2)
    for _ in range(n):
        frames.append(c.recv_frame())
        c.send_input(move, look)
        c.grant(1)
    for _ in range(2):  # drain, so the session holds no credit afterwards
        c.recv_frame()
    return frames


def walk(c: Client, n: int) -> list:
    return lockstep(c, n, move=(0.0, 1.0), look=(4.0, 0.0))


def test_handshake(maze_daemon):
    with Client(maze_daemon.address, width=96, height=64, engine="unity", row_order="bottom_up") as c:
        w = c.welcome
        assert (w["world"], w["width"], w["height"], w["format"], w["row_order"]) == ("maze", 96, 64, "rgb8",
                                                                                     "bottom_up")
        assert w["major"] == p.MAJOR and w["limits"]["max_sessions"] == 8 and "pose" in w["capabilities"]


def test_two_clients_concurrently(maze_daemon):
    results = {}

    def run(seed):
        with Client(maze_daemon.address, width=64, height=64, seed=seed) as c:
            results[seed] = stream(c, 60)

    threads = [threading.Thread(target=run, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = results[1], results[2]
    assert [f.header["seq"] for f in a] == list(range(60))
    assert all(f.header["input_seq"] >= 1 and f.image.shape == (64, 64, 3) for f in a + b)
    assert not np.array_equal(a[-1].image, b[-1].image)  # separate episodes, separate worlds
    assert all(f.latency_ms > 0 for f in a)


def test_credits_are_honoured(maze_daemon):
    with Client(maze_daemon.address, width=32, height=32) as c:
        c.send_input((0, 1))
        c.grant(3)
        for _ in range(3):
            c.recv_frame()
        with pytest.raises(TimeoutError):
            c.recv_frame(timeout=0.5)  # no credit, no frame
        c.grant(2)
        assert [c.recv_frame().header["seq"] for _ in range(2)] == [3, 4]
        with pytest.raises(TimeoutError):
            c.recv_frame(timeout=0.3)


class GatedMaze(MazeWorld):
    """The maze, with a step that waits for a gate: lets a test hold the stepping thread still."""

    def __init__(self):
        super().__init__()
        self.gate, self.entered = threading.Event(), threading.Event()

    def step(self, actions):
        self.entered.set()
        self.gate.wait(10)
        return super().step(actions)


def test_outstanding_credits_are_capped():
    world = GatedMaze()
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=16, height=16) as c:
            c.grant(1)
            assert world.entered.wait(10)  # one frame in flight, the stepper held
            for _ in range(5):
                c.grant(16)
            c.ping()  # all five credit messages have been handled
            world.gate.set()
            got = 0
            with pytest.raises(TimeoutError):
                while True:
                    c.recv_frame(timeout=1.0)
                    got += 1
            assert got == 1 + d.limits.max_credits
    finally:
        d.stop()


def test_newest_input_wins_and_look_deltas_add_up(maze_daemon):
    with Client(maze_daemon.address, width=32, height=32, engine="opencv") as c:
        for _ in range(5):  # five inputs arrive before any step: the frame answers the last
            c.send_input((0.0, 0.0), (10.0, 0.0))
        time.sleep(0.2)
        c.grant(1)
        f = c.recv_frame()
        assert f.header["input_seq"] == 5
        q = f.header["pose"]["q"]  # opencv pose: a pure yaw of 50 degrees to the right
        from bridge.protocol.poses import quat_to_matrix
        fwd = quat_to_matrix(q)[:, 2]
        c.reset(seed=0)  # the same start again; yaw once by 10
        c.send_input((0.0, 0.0), (10.0, 0.0))
        c.grant(1)
        fwd10 = quat_to_matrix(c.recv_frame().header["pose"]["q"])[:, 2]
        angle = np.degrees(np.arccos(np.clip(fwd @ fwd10, -1, 1)))
        assert angle == pytest.approx(40.0, abs=0.5)


def test_reset_reproduces_frames(maze_daemon):
    with Client(maze_daemon.address, width=48, height=48) as c:
        ok = c.reset(seed=7)
        first = walk(c, 10)
        ok2 = c.reset(seed=7)
        again = walk(c, 10)
        assert ok2["episode"] == ok["episode"] + 1 == again[0].header["episode"]
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a.image, b.image)
        c.reset(seed=8)
        other = walk(c, 1)
        assert not np.array_equal(other[0].image, first[0].image)


def test_formats_agree(maze_daemon):
    images = {}
    for fmt, order in (("rgb8", "top_down"), ("rgb8", "bottom_up"), ("rgba8", "top_down"), ("jpeg", "top_down")):
        with Client(maze_daemon.address, width=64, height=48, format=fmt, row_order=order, seed=3) as c:
            c.grant(1)
            images[fmt, order] = c.recv_frame().image  # the client flips bottom_up back
    base = images["rgb8", "top_down"]
    np.testing.assert_array_equal(images["rgb8", "bottom_up"], base)
    np.testing.assert_array_equal(images["rgba8", "top_down"][..., :3], base)
    assert (images["rgba8", "top_down"][..., 3] == 255).all()
    mse = np.mean((images["jpeg", "top_down"].astype(float) - base) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 25


def test_engine_pose_drives_the_camera(maze_daemon):
    pose = {"p": [2.5, 0.5, 3.5], "q": [0.0, 0.38268343236, 0.0, 0.92387953251]}  # Unity: 45 deg right
    with Client(maze_daemon.address, width=32, height=32, engine="unity") as c:
        c.send_input(pose=pose)
        c.grant(1)
        f = c.recv_frame()
        np.testing.assert_allclose(f.header["pose"]["p"], pose["p"], atol=1e-6)
        np.testing.assert_allclose(f.header["pose"]["q"], pose["q"], atol=1e-6)


def test_bad_messages_get_codes_and_the_session_survives(maze_daemon):
    with Client(maze_daemon.address, width=32, height=32) as c, Client(maze_daemon.address, width=32,
                                                                          height=32) as other:
        other.grant(2)
        c.sock.send(b"\xc1\x00garbage")
        with pytest.raises(ServerError) as e:
            c.recv_frame()
        assert e.value.code == 400
        for bad, code in (({"type": "warp"}, 404), ({"type": "credit", "n": 0}, 422),
                          ({"type": "input", "seq": 1, "move": [float("nan"), 0]}, 422),
                          ({**p.ping(1.0), "pad": "x" * (5 << 20)}, 413)):
            c.send(bad)
            with pytest.raises(ServerError) as e:
                c.recv_frame()
            assert e.value.code == code, bad["type"]
        assert len(stream(c, 5)) == 5  # still served
        assert [other.recv_frame().header["seq"] for _ in range(2)] == [0, 1]  # never saw any of it


def test_before_hello_and_after_bye(maze_daemon):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.connect(maze_daemon.address)
    s.send(p.pack(p.credit(1)))
    assert s.poll(5000)
    assert p.unpack(s.recv())["code"] == 409
    s.send(p.pack({**p.hello("x", "unity", 8, 8), "major": 2}))
    assert s.poll(5000)
    assert p.unpack(s.recv())["code"] == 426
    s.close(0)
    with Client(maze_daemon.address, width=16, height=16) as c:
        c.send(p.bye())
        assert c.expect("bye") == {"type": "bye"}
        c.grant(1)
        with pytest.raises(ServerError) as e:
            c.recv_frame()
        assert e.value.code == 409


def test_max_sessions_and_idle_expiry():
    with DaemonProcess("maze", "--max-sessions", "2", "--idle-timeout", "1") as d:
        a, b = Client(d.address, width=16, height=16), Client(d.address, width=16, height=16)
        with pytest.raises(ServerError) as e:
            Client(d.address, width=16, height=16)
        assert e.value.code == 503
        time.sleep(2.5)  # both idle past the timeout: reaped, told so
        assert a.expect("error", timeout=5)["code"] == 408
        assert b.expect("error", timeout=5)["code"] == 408
        with Client(d.address, width=16, height=16) as c:  # room again
            c.grant(1)
            c.recv_frame()
        a.sock.close(0)
        b.sock.close(0)


def test_token_required_when_configured():
    with DaemonProcess("maze", "--token", "s3cret") as d:
        with pytest.raises(ServerError) as e:
            Client(d.address, width=16, height=16, token="wrong")
        assert e.value.code == 401
        with Client(d.address, width=16, height=16, token="s3cret") as c:
            c.grant(1)
            c.recv_frame()


def test_non_loopback_bind_needs_a_token():
    for bind in ("tcp://0.0.0.0:5557", "tcp://*:5557", "tcp://192.168.1.4:5557"):
        with pytest.raises(ValueError, match="loopback"):
            check_bind(bind, "")
        check_bind(bind, "token")
    for bind in ("tcp://127.0.0.1:5557", "tcp://localhost:1", "tcp://[::1]:9", "ipc:///tmp/x"):
        check_bind(bind, "")


class FaultyMaze(MazeWorld):
    """The maze, except that button bit 31 makes its step raise (a model bug, an OOM, ...)."""

    def step(self, actions):
        if any(a.buttons & (1 << 31) for a in actions.values()):
            raise RuntimeError("injected fault")
        return super().step(actions)


def test_world_failure_hits_only_that_session():
    d = Daemon(FaultyMaze(), DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=32, height=32) as bad, Client(d.address, width=32, height=32) as good:
            good.grant(16)
            bad.send_input(buttons=1 << 31)
            bad.grant(1)
            with pytest.raises(ServerError) as e:
                bad.recv_frame()
            assert e.value.code == 500
            assert bad.expect("reset_ok")["episode"] == 1  # it was reset for a fresh start
            bad.send_input(buttons=0)
            bad.grant(1)
            assert bad.recv_frame().header["episode"] == 1
            assert [good.recv_frame().header["seq"] for _ in range(16)] == list(range(16))
    finally:
        d.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("wb-")]


def test_sigterm_while_streaming_exits_cleanly():
    d = DaemonProcess("maze")
    c = Client(d.address, width=64, height=64)
    c.grant(16)
    for _ in range(3):
        c.send_input((0, 1))
        c.recv_frame()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert c.expect("bye", timeout=5) == {"type": "bye"}  # the daemon said goodbye
    c.sock.close(0)
    assert any("stopped after forwarding" in line for line in d.log)


def test_frames_of_a_replaced_session_are_never_delivered():
    world = GatedMaze()
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=16, height=16) as c:
            c.grant(1)
            assert world.entered.wait(10)  # the old session's frame is being made
            c.send(p.hello("again", "opencv", 16, 16))
            assert c.expect("welcome")["type"] == "welcome"
            world.gate.set()
            with pytest.raises(TimeoutError):
                c.recv_frame(timeout=1.0)  # the new session has no credit: nothing may arrive
    finally:
        d.stop()


class LosingMaze(MazeWorld):
    """The maze, except that button bit 30 loses that episode's host (EpisodesLost), as a dead replica does."""

    def step(self, actions):
        lost = {k: "host 1 is gone" for k, a in actions.items() if a.buttons & (1 << 30)}
        rest = {k: a for k, a in actions.items() if k not in lost}
        frames = super().step(rest) if rest else {}
        if lost:
            raise EpisodesLost(frames, lost)
        return frames


def test_a_lost_episode_ends_only_its_session():
    d = Daemon(LosingMaze(), DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=32, height=32) as lost, Client(d.address, width=32, height=32) as good:
            lockstep(good, 1, move=(0.0, 1.0))
            lost.send_input(buttons=1 << 30)
            good.send_input((0.0, 1.0))
            lost.grant(2)
            good.grant(1)
            with pytest.raises(ServerError) as e:
                lost.recv_frame()
            assert e.value.code == p.ErrorCode.UNAVAILABLE and e.value.session_lost
            assert "world host lost: host 1 is gone" in e.value.message
            assert good.recv_frame().header["seq"] == 1  # the same step's other frame came
            with pytest.raises(ServerError) as e:
                lost.ping()
            assert e.value.code == p.ErrorCode.NO_SESSION  # the session is gone, not just told
            lost.reconnect()
            assert len(lockstep(lost, 2)) == 2  # hello again: a new session
            assert [f.header["seq"] for f in lockstep(good, 5)] == list(range(2, 7))
    finally:
        d.stop()
