"""Faults around the daemon: clients killed, clients that stop reading, daemons killed and restarted under their
clients, worlds that fail outside step(). The daemon must keep serving everyone else, with bounded memory.

test_daemon.py covers the neighbours: a world step that raises, SIGTERM while streaming, idle expiry, a
replaced session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import zmq

from bridge.client.client import Client, ServerError, SessionClosed
from bridge.client.launch import DaemonProcess
from bridge.protocol import messages as p
from bridge.server.daemon import Daemon, DaemonConfig
from runtime.maze.world import MazeWorld


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def frames(c: Client, n: int) -> list[dict]:
    """n frames, one credit and one input at a time."""
    out = []
    for _ in range(n):
        c.send_input((0.0, 1.0), (2.0, 0.0))
        c.grant(1)
        out.append(c.recv_frame(timeout=10).header)
    return out


# ------------------------------------------------------------------------------- daemon restarts under clients


def test_daemon_killed_and_restarted_under_a_client():
    d = DaemonProcess("maze")
    address = d.address
    c = Client(address, width=32, height=32, timeout=10)
    try:
        assert [h["seq"] for h in frames(c, 5)] == list(range(5))
        d.proc.kill()  # no goodbye: the client only notices silence
        d.proc.wait(10)
        c.send_input((0.0, 1.0))
        c.grant(1)
        with pytest.raises(TimeoutError):
            c.recv_frame(timeout=1.0)
        d = DaemonProcess("maze", bind=address)  # same port, a daemon that never heard of this session
        c.grant(1)  # the DEALER reconnected by itself; the new daemon says the session is unknown
        with pytest.raises(ServerError) as e:
            c.recv_frame(timeout=10)
        assert e.value.session_lost and e.value.code == 409
        welcome = c.reconnect(timeout=30)
        assert welcome["type"] == "welcome" and welcome["session"]
        resumed = frames(c, 5)
        assert [h["seq"] for h in resumed] == list(range(5))  # a new session: frames count from 0 again
        assert resumed[0]["episode"] == 0 and resumed[-1]["input_seq"] == c.seq  # input seq keeps increasing
    finally:
        c.sock.close(0)
        d.stop()


def test_daemon_restarted_cleanly_while_a_client_waits():
    d = DaemonProcess("maze")
    address = d.address
    c = Client(address, width=16, height=16, timeout=10)
    restarted: list[DaemonProcess] = []

    def restart() -> None:
        d.stop()  # SIGTERM: the daemon says bye to every session
        time.sleep(0.5)
        restarted.append(DaemonProcess("maze", bind=address))

    try:
        frames(c, 3)
        threading.Thread(target=restart).start()
        with pytest.raises(SessionClosed):
            while True:
                frames(c, 1)
        c.reconnect(timeout=60)  # retries with backoff while no daemon listens
        assert [h["seq"] for h in frames(c, 3)] == [0, 1, 2]
    finally:
        c.sock.close(0)
        for r in restarted:
            r.stop()


def test_reconnect_gives_up_after_its_timeout():
    with DaemonProcess("maze") as d:
        c = Client(d.address, width=8, height=8)
    # the daemon is gone for good
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        c.reconnect(timeout=1.5)
    assert time.monotonic() - t < 10
    c.sock.close(0)


# ------------------------------------------------------------------------------------------ clients that fail

CLIENT_SCRIPT = textwrap.dedent("""
    import sys
    from bridge.client.client import Client
    c = Client(sys.argv[1], width=64, height=64, name="doomed")
    c.grant(8)
    n = 0
    while True:
        c.send_input((0.0, 1.0))
        c.recv_frame()
        c.grant(1)
        n += 1
        if n == 20:
            print("streaming", flush=True)
""")


def test_client_process_killed_mid_stream():
    with DaemonProcess("maze", "--max-sessions", "2", "--idle-timeout", "2") as d:
        doomed = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, d.address], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert doomed.stdout.readline().strip() == "streaming"
            with Client(d.address, width=16, height=16) as other:
                doomed.kill()  # mid-stream: frames and credits in flight, no bye
                doomed.wait(10)
                with pytest.raises(ServerError) as e:  # its session still holds a slot ...
                    Client(d.address, width=16, height=16)
                assert e.value.code == 503
                deadline = time.monotonic() + 20
                while True:  # ... until it is reaped after the idle timeout; meanwhile `other` is served
                    other.ping()
                    frames(other, 2)
                    try:
                        Client(d.address, width=16, height=16).close()
                        break
                    except ServerError as e:
                        assert e.code == 503 and time.monotonic() < deadline
                    time.sleep(0.3)
        finally:
            doomed.kill()
            doomed.wait()
        assert d.proc.poll() is None  # still serving


def test_a_client_that_stops_reading_builds_no_queue():
    """A client that keeps granting credits and pinging but never reads (and whose own socket holds at most one
    message) must not make the daemon buffer its frames without bound; other sessions go on."""
    with DaemonProcess("maze") as d, Client(d.address, width=16, height=16) as good:
        frames(good, 5)
        hog = zmq.Context.instance().socket(zmq.DEALER)
        hog.setsockopt(zmq.LINGER, 0)
        hog.setsockopt(zmq.RCVHWM, 1)
        hog.setsockopt(zmq.RCVBUF, 4096)
        hog.connect(d.address)
        hog.send(p.pack(p.hello("hog", "opencv", 256, 256, credits=16)))
        try:
            sent, rss0 = 0, None
            t0 = time.monotonic()
            while time.monotonic() < t0 + 7:  # ~1000 frames of 192 KiB granted, none read
                hog.send(p.pack(p.credit(16)), zmq.NOBLOCK)
                hog.send(p.pack(p.ping(0.0)), zmq.NOBLOCK)
                sent += 16
                frames(good, 1)  # the good client is served all along
                if rss0 is None and time.monotonic() > t0 + 1:  # the hog's buffers are warm by now
                    rss0 = rss_mb(d.proc.pid)
                time.sleep(0.02)
            growth = rss_mb(d.proc.pid) - rss0
        finally:
            hog.close(0)
        assert sent > 800
        assert growth < 40, f"daemon RSS grew {growth:.0f} MB for a client that does not read"
        frames(good, 3)


# --------------------------------------------------------------------------------------- worlds that misbehave


class BrokenMaze(MazeWorld):
    """The maze with bugs outside step(), keyed by the requested size so a test picks which session hits one:
    width 23: frame_size raises (at hello); width 17: every reset raises; width 19: step returns garbage;
    every close raises."""

    def frame_size(self, width, height):
        if width == 23:
            raise RuntimeError("injected frame_size fault")
        return super().frame_size(width, height)

    def reset(self, key, seed, width, height, pose=None, image=None):
        if width == 17:
            raise RuntimeError("injected reset fault")
        super().reset(key, seed, width, height, pose, image)

    def step(self, actions):
        out = super().step(actions)
        for f in out.values():
            if f.pixels.shape[1] == 19:
                f.pixels = f.pixels[..., :2]  # a (H, W, 2) image cannot be encoded as rgb8
        return out

    def close(self, key):
        super().close(key)
        raise RuntimeError("injected close fault")


def test_world_bugs_outside_step_hit_only_their_session():
    d = Daemon(BrokenMaze(), DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=32, height=32) as good:
            frames(good, 2)
            with pytest.raises(ServerError) as e:
                Client(d.address, width=23, height=16)
            assert e.value.code == 500
            for width in (17, 19):
                with Client(d.address, width=width, height=16) as bad:
                    bad.send_input()
                    bad.grant(2)
                    with pytest.raises(ServerError) as e:
                        bad.recv_frame(timeout=10)
                    assert e.value.code == 500
                    frames(good, 2)
            for _ in range(3):  # sessions come and go: every close raises
                Client(d.address, width=16, height=16).close()
            assert [h["type"] for h in frames(good, 3)] == ["frame"] * 3
            assert all(t.is_alive() for t in d._threads)
    finally:
        d.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("wb-")]

