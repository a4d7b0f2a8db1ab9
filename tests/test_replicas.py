"""Replicas behind one daemon (bridge/server/replicas.py): a real local Ray instance, maze replicas as Ray
actors, the real daemon in this process and real clients over TCP. Placement by free memory, affinity, the
same frames as one in-process maze daemon, and a killed replica that ends only its own sessions."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lingbot_tiny import HEIGHT, WIDTH, tiny_release
from lockstep import lockstep

from bridge.client.client import Client, ServerError
from bridge.client.launch import DaemonProcess
from bridge.protocol.messages import ErrorCode
from bridge.server.daemon import Daemon, DaemonConfig
from bridge.server.replicas import ReplicaPool
from bridge.server.worlds import load_world
from runtime.maze.world import MazeWorld
from runtime.world import IDLE

SIZE = 32
EPISODE = SIZE * SIZE * 3  # what a maze episode counts for (World.episode_bytes)


@pytest.fixture(scope="module")
def ray():
    """One local Ray instance for the module: 2 CPUs, no dashboard, a small object store; shut down after."""
    ray = pytest.importorskip("ray", reason="needs pip install 'worldbridge[cluster]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=96 << 20)
    yield ray
    ray.shutdown()


def serve(pool):
    return Daemon(pool, DaemonConfig("tcp://127.0.0.1:0")).start()


@pytest.fixture(scope="module")
def two(ray):
    """Two maze replicas (half a CPU each, so a test's own pool fits beside them) behind one daemon."""
    pool = ReplicaPool("maze", 2, cpus=0.5)
    daemon = serve(pool)
    yield pool, daemon
    daemon.stop()
    pool.shutdown()


def replica_of(pool, daemon, client) -> int:
    """The replica hosting `client`'s episode (its session placed at its first step)."""
    sid = client.welcome["session"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with daemon._lock:
            identity = next((i for i, s in daemon._sessions.items() if s.sid == sid), None)
        index = pool.replica_of(identity)
        if index is not None:
            return index
        time.sleep(0.01)
    raise AssertionError(f"session {sid} was never placed")


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def started(c: Client) -> Client:
    """A client with one frame made: its episode is placed."""
    lockstep(c, 1, move=(0.0, 1.0))
    return c


def ray_processes() -> set[int]:
    """Pids of Ray's own daemons on this machine (raylet, GCS server)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and (b"raylet" in cmd or b"gcs_server" in cmd):
            found.add(int(proc.name))
    return found


def test_serve_replicas_from_the_command_line():
    """`serve --replicas 2` (its own local Ray): two sessions stream; SIGTERM stops the replicas and Ray too."""
    before = ray_processes()
    with DaemonProcess("maze", "--replicas", "2") as d:
        with Client(d.address, width=SIZE, height=SIZE) as a, Client(d.address, width=SIZE, height=SIZE) as b:
            assert a.welcome["world"] == "maze"
            assert [len(lockstep(c, 3, move=(0.0, 1.0))) for c in (a, b)] == [3, 3]
        assert d.stop(30) == 0
    deadline = time.monotonic() + 20
    while ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_processes() - before, "serve left Ray processes behind"
    for args, message in ((["--world", "maze", "--ray-address", "auto"], "go with --replicas"),
                          (["--world", "/no/such/dir", "--replicas", "1"], "a replica did not start: ValueError")):
        r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "serve", *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_without_ray_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    with pytest.raises(RuntimeError, match=r"pip install 'worldbridge\[cluster\]'"):
        ReplicaPool("maze", 2)


def test_sessions_spread_over_replicas_and_stay_on_theirs(two):
    pool, daemon = two
    with Client(daemon.address, width=SIZE, height=SIZE) as a, Client(daemon.address, width=SIZE, height=SIZE) as b:
        where = [replica_of(pool, daemon, started(c)) for c in (a, b)]
        assert sorted(where) == [0, 1]  # the second went to the replica with more free memory
        assert [r["episodes"] for r in pool.status()] == [1, 1]
        for seed in (5, 6):
            a.reset(seed)
            lockstep(a, 2, move=(0.0, 1.0))
            assert replica_of(pool, daemon, a) == where[0]  # affinity: a reset stays where it was
        assert [r["used_bytes"] for r in pool.status()] == [EPISODE, EPISODE]
    wait_until(lambda: not any(r["episodes"] for r in pool.status()))  # bye: the episodes close, memory frees
    assert [(r["episodes"], r["used_bytes"]) for r in pool.status()] == [(0, 0), (0, 0)]


def test_same_frames_as_one_daemon(two):
    pool, daemon = two
    single = serve(MazeWorld())
    try:
        def play(address):
            with Client(address, width=SIZE, height=SIZE, seed=3) as a, \
                    Client(address, width=SIZE, height=SIZE, seed=7) as b:
                frames = []
                for c, look in ((a, 4.0), (b, -3.0)):
                    frames += lockstep(c, 12, move=(0.3, 1.0), look=(look, 0.5))
                a.reset(11)
                frames += lockstep(a, 6, move=(-1.0, 0.2), look=(2.0, 0.0))
                return frames

        ours, theirs = play(daemon.address), play(single.address)
    finally:
        single.stop()
    assert len(ours) == len(theirs) == 30
    for f, g in zip(ours, theirs):
        assert (f.header["seq"], f.header["episode"]) == (g.header["seq"], g.header["episode"])
        assert np.array_equal(f.image, g.image)
        assert f.header["pose"] == g.header["pose"]
    assert not np.array_equal(ours[0].image, ours[12].image)  # two episodes, not one frame twice


def test_placement_follows_free_memory(ray):
    """Budgets of 3 and 1 episodes: most free memory first, fewer episodes on a tie, then no room: 503."""
    pool = ReplicaPool("maze", 2, memory_bytes=[3 * EPISODE, EPISODE], cpus=0.5)
    daemon = serve(pool)
    clients = []
    try:
        for _ in range(4):
            clients.append(started(Client(daemon.address, width=SIZE, height=SIZE)))
        where = [replica_of(pool, daemon, c) for c in clients]
        assert where == [0, 0, 1, 0]  # free 3:1, 2:1, then 1:1 (a tie: the emptier), then 1:0
        with Client(daemon.address, width=SIZE, height=SIZE) as full:
            full.grant(1)
            with pytest.raises(ServerError) as e:
                full.recv_frame()
            assert e.value.code == ErrorCode.UNAVAILABLE and "no replica has room" in e.value.message
        clients.pop(0).close()  # its memory comes back: the next session fits again
        wait_until(lambda: pool.status()[0]["episodes"] == 2)
        clients.append(started(Client(daemon.address, width=SIZE, height=SIZE)))
        assert replica_of(pool, daemon, clients[-1]) == 0
    finally:
        for c in clients:
            c.close()
        daemon.stop()
        pool.shutdown()


def test_a_killed_replica_ends_only_its_sessions(ray):
    pool = ReplicaPool("maze", 2, cpus=0.5)
    daemon = serve(pool)
    try:
        with Client(daemon.address, width=SIZE, height=SIZE) as a, \
                Client(daemon.address, width=SIZE, height=SIZE) as b:
            doomed, survivor = (replica_of(pool, daemon, started(c)) for c in (a, b))
            assert {doomed, survivor} == {0, 1}
            ray.kill(pool.actor(doomed))
            with pytest.raises(ServerError) as e:  # a may still get a frame made before the kill landed
                for _ in range(20):
                    lockstep(a, 1, timeout=10, move=(0.0, 1.0))
            assert e.value.code == ErrorCode.UNAVAILABLE and e.value.session_lost
            assert "world host lost" in e.value.message and f"replica {doomed}" in e.value.message
            frames = lockstep(b, 20, move=(0.0, 1.0), look=(3.0, 0.0))  # the other session streams on
            assert [f.header["seq"] for f in frames] == list(range(1, 21))
            with pytest.raises(ServerError) as e:
                a.ping()  # a's session is gone from the daemon
            assert e.value.code == ErrorCode.NO_SESSION
            a.reconnect()
            assert len(lockstep(a, 3, move=(0.0, 1.0))) == 3  # hello again: a new session, on the survivor
            assert replica_of(pool, daemon, a) == survivor
            with Client(daemon.address, width=SIZE, height=SIZE) as c:
                assert replica_of(pool, daemon, started(c)) == survivor
                status = pool.status()
            assert "is gone" in status[doomed]["lost"] and not status[survivor]["lost"]
            assert (status[doomed]["episodes"], status[survivor]["episodes"]) == (0, 3)

            ray.kill(pool.actor(survivor))  # the last one: the front stays up and says why
            with pytest.raises(ServerError) as e:
                for _ in range(20):
                    lockstep(b, 1, timeout=10)
            assert e.value.code == ErrorCode.UNAVAILABLE
            with Client(daemon.address, width=SIZE, height=SIZE) as late:
                late.grant(1)
                with pytest.raises(ServerError) as e:
                    late.recv_frame()
                assert e.value.code == ErrorCode.UNAVAILABLE and "all 2 replicas are lost" in e.value.message
    finally:
        daemon.stop()
        pool.shutdown()


def test_what_placement_counts_is_what_an_episode_holds(tmp_path):
    """World.episode_bytes, which placement adds up: a LingBot episode's full KV cache, to the byte; one KV-cache
    slot of the default model (docs/scaling.md: 4 MiB in float32)."""
    world = load_world(f"lingbot-fast:{tiny_release(tmp_path, sinks=1, window=2)}", dtype="float32")
    world.reset("a", 0, WIDTH, HEIGHT)
    for _ in range(9 + 3 * 12):  # 4 chunks: the sink, the 2-chunk ring, and one more written over its oldest
        world.step({"a": IDLE})
    cache = world._episodes["a"].cache
    assert cache.chunks == 4 and cache.k.nbytes + cache.v.nbytes == world.episode_bytes(WIDTH, HEIGHT)
    assert load_world("default", dtype="float32").episode_bytes(128, 128) == 4 << 20
