"""Protocol 1.2's prompt, end to end: a real daemon (ROUTER, both threads) serving a maze that takes prompts.

The world below stamps the prompt each episode has into the first pixel of its frames, and logs every reset and
set_prompt it receives, so the tests see from the client side which prompt made each frame, and from the world
side that each set_prompt came right after its own episode's reset, on the stepping thread.
"""

from __future__ import annotations

import hashlib
import threading

import msgpack
import pytest
import zmq

from bridge.client.client import Client, ServerError
from bridge.protocol import messages as p
from bridge.server.daemon import Daemon, DaemonConfig
from runtime.maze.world import MazeWorld

DEFAULT = "a brick maze"  # the world's own prompt, which every reset restores
FAIL = "make set_prompt fail"
TOO_LONG = "\u00e9" * (p.MAX_PROMPT_BYTES // 2 + 1)  # 1001 characters, 2002 bytes as UTF-8


def stamp(prompt: str) -> list[int]:
    return list(hashlib.sha1(prompt.encode()).digest()[:3])


class PromptMaze(MazeWorld):
    """The maze, with the "prompt" capability: an episode's frames carry its prompt's stamp in pixel (0, 0).

    A reset forgets the episode's prompt (back to DEFAULT), as a world may: keeping a session's prompt across its
    resets is the daemon's job. Button bit 31 makes a step fail (for the daemon's own recovery reset)."""

    capabilities = ("pose", "prompt")

    def __init__(self):
        super().__init__()
        self.prompts: dict = {}
        self.log: list[tuple] = []  # ("reset", key, seed) / ("prompt", key, prompt), in call order
        self.threads: set[str] = set()

    def reset(self, key, seed, width, height, pose=None, image=None):
        super().reset(key, seed, width, height, pose, image)
        self.prompts[key] = DEFAULT
        self.log.append(("reset", key, seed))
        self.threads.add(threading.current_thread().name)

    def set_prompt(self, key, prompt):
        self.threads.add(threading.current_thread().name)
        if prompt == FAIL:
            raise RuntimeError("the text encoder is out of memory")
        self.log.append(("prompt", key, prompt))
        self.prompts[key] = prompt

    def step(self, actions):
        if any(a.buttons & (1 << 31) for a in actions.values()):
            raise RuntimeError("injected fault")
        frames = super().step(actions)
        for key, frame in frames.items():
            frame.pixels = frame.pixels.copy()
            frame.pixels[0, 0] = stamp(self.prompts[key])
        return frames

    def calls(self, key) -> list[tuple]:
        return [(kind, arg) for kind, k, arg in self.log if k == key]


class RecordingMaze(MazeWorld):
    """A world without the "prompt" capability that would notice a set_prompt."""

    def __init__(self):
        super().__init__()
        self.prompted: list = []

    def set_prompt(self, key, prompt):
        self.prompted.append((key, prompt))


@pytest.fixture
def world():
    return PromptMaze()


@pytest.fixture
def daemon(world):
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    yield d
    d.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("wb-")]


def frames(c: Client, n: int, episode: int | None = None) -> list:
    """Grant and receive n frames (of `episode` when given, skipping older ones still in flight)."""
    out = []
    while len(out) < n:
        c.send_input(move=(0.0, 0.5))
        c.grant(1)
        f = c.recv_frame()
        if episode is None or f.header["episode"] == episode:
            out.append(f)
    return out


def stamps(fs: list) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in f.image[0, 0]) for f in fs}


def only_key(world: PromptMaze, known: set) -> bytes:
    (key,) = {k for _, k, _ in world.log} - known
    return key


def test_hello_and_reset_prompts_reach_the_world_for_their_episode(daemon, world):
    with Client(daemon.address, width=32, height=32, prompt="a sunlit caf\u00e9 \U0001f415") as c:
        assert c.welcome["minor"] == p.MINOR and "prompt" in c.welcome["capabilities"]
        assert stamps(frames(c, 3)) == {tuple(stamp("a sunlit caf\u00e9 \U0001f415"))}
        key = only_key(world, set())
        assert world.calls(key) == [("reset", 0), ("prompt", "a sunlit caf\u00e9 \U0001f415")]

        ok = c.reset(5, prompt="a snowy pine forest")
        assert ok == {"type": "reset_ok", "episode": 1, "seed": 5}
        # set right after the episode's reset, before reset_ok: every frame of episode 1 has it
        assert world.calls(key)[2:] == [("reset", 5), ("prompt", "a snowy pine forest")]
        assert stamps(frames(c, 3, episode=1)) == {tuple(stamp("a snowy pine forest"))}

        # no prompt: the session's stays, although this world forgot it on reset
        assert c.reset(6)["episode"] == 2
        assert world.calls(key)[4:] == [("reset", 6), ("prompt", "a snowy pine forest")]
        assert stamps(frames(c, 3, episode=2)) == {tuple(stamp("a snowy pine forest"))}
        assert world.threads == {"wb-step"}  # the world is touched from the stepping thread only


def test_without_a_prompt_the_world_keeps_its_default(daemon, world):
    with Client(daemon.address, width=32, height=32) as c:
        assert stamps(frames(c, 2)) == {tuple(stamp(DEFAULT))}
        key = only_key(world, set())
        c.send(p.reset(1, prompt=""))  # "" and nil mean "no change", as absent
        c.expect("reset_ok")
        c.send({"type": "reset", "seed": 2, "prompt": None})
        c.expect("reset_ok")
        assert world.calls(key) == [("reset", 0), ("reset", 1), ("reset", 2)]
        assert stamps(frames(c, 2, episode=2)) == {tuple(stamp(DEFAULT))}


@pytest.mark.parametrize("bad", [TOO_LONG, "x" * (p.MAX_PROMPT_BYTES + 1), 7, b"bytes", ["a"], {"p": 1}, True])
def test_a_bad_prompt_is_422_and_the_session_and_episode_survive(daemon, world, bad):
    with Client(daemon.address, width=32, height=32, prompt="a desert canyon") as c:
        frames(c, 1)
        key = only_key(world, set())
        before = list(world.calls(key))
        c.send({"type": "reset", "seed": 9, "prompt": bad})
        with pytest.raises(ServerError) as e:
            c.expect("reset_ok")
        assert e.value.code == 422 and e.value.name == "bad_field"
        assert e.value.message.startswith('"prompt"')
        assert c.ping() > 0  # still a session
        fs = frames(c, 3)
        assert {f.header["episode"] for f in fs} == {0}  # the refused reset started nothing
        assert stamps(fs) == {tuple(stamp("a desert canyon"))}
        assert world.calls(key) == before


def test_the_limit_is_bytes_of_utf8():
    exactly = "\U0001f415" * (p.MAX_PROMPT_BYTES // 4)  # 500 characters, 2000 bytes
    assert p.parse([p.pack(p.reset(0, prompt=exactly))])[0]["prompt"] == exactly
    assert p.parse([p.pack(p.hello("c", "godot", 8, 8, prompt="x" * p.MAX_PROMPT_BYTES))])[0]["prompt"]
    for msg in (p.reset(0, prompt=exactly + "x"), p.hello("c", "godot", 8, 8, prompt=TOO_LONG)):
        with pytest.raises(p.ProtocolError) as e:
            p.parse([p.pack(msg)])
        assert e.value.code == p.ErrorCode.BAD_FIELD and e.value.ref == msg["type"]
        assert e.value.message == f'"prompt" must be a string of at most {p.MAX_PROMPT_BYTES} bytes as UTF-8'
    # 1.0 and 1.1 clients never send one: the default is "no prompt"
    assert p.parse([p.pack({**p.hello("c", "godot", 8, 8), "minor": 1})])[0]["prompt"] == ""
    assert p.parse([p.pack({"type": "reset"})])[0]["prompt"] == ""


def test_a_bad_prompt_in_hello_opens_no_session_and_keeps_an_existing_one(daemon, world):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(daemon.address)

    def exchange(msg: dict) -> dict:
        sock.send(p.pack(msg))
        assert sock.poll(10_000)
        return msgpack.unpackb(sock.recv_multipart()[0])

    try:
        reply = exchange(p.hello("raw", "opencv", 16, 16, prompt=TOO_LONG))
        assert (reply["code"], reply["ref"]) == (422, "hello") and reply["message"].startswith('"prompt"')
        assert exchange(p.ping(1.0))["code"] == 409  # no session
        assert exchange(p.hello("raw", "opencv", 16, 16, prompt="a quiet library"))["type"] == "welcome"
        reply = exchange({**p.hello("raw", "opencv", 16, 16), "prompt": 3})
        assert (reply["code"], reply["ref"]) == (422, "hello")
        assert exchange(p.ping(1.0))["type"] == "pong"  # the session it had goes on
        sock.send(p.pack(p.credit(1)))
        assert sock.poll(10_000)
        header, pixels = sock.recv_multipart()
        assert msgpack.unpackb(header)["episode"] == 0 and list(pixels[:3]) == stamp("a quiet library")
        key = only_key(world, set())
        assert world.calls(key) == [("reset", 0), ("prompt", "a quiet library")]
    finally:
        sock.close(0)


def test_a_prompt_belongs_to_its_session(daemon, world):
    with Client(daemon.address, width=32, height=32, prompt="a harbour at dawn") as a:
        frames(a, 1)
        key_a = only_key(world, set())
        b = Client(daemon.address, width=32, height=32, prompt="a volcano")
        frames(b, 1)
        key_b = only_key(world, {key_a})
        c = Client(daemon.address, width=32, height=32)
        frames(c, 1)
        key_c = only_key(world, {key_a, key_b})
        with b, c:
            a.reset(1, prompt="a harbour at night")
            a.send({"type": "reset", "seed": 2, "prompt": TOO_LONG})
            with pytest.raises(ServerError):
                a.expect("reset_ok")
            a.reset(3)
            for _ in range(3):  # a's changes while b and c stream
                assert stamps(frames(b, 2)) == {tuple(stamp("a volcano"))}
                assert stamps(frames(c, 2)) == {tuple(stamp(DEFAULT))}
            assert stamps(frames(a, 2, episode=2)) == {tuple(stamp("a harbour at night"))}
            assert world.calls(key_b) == [("reset", 0), ("prompt", "a volcano")]
            assert world.calls(key_c) == [("reset", 0)]
            assert world.calls(key_a) == [("reset", 0), ("prompt", "a harbour at dawn"), ("reset", 1),
                                          ("prompt", "a harbour at night"), ("reset", 3),
                                          ("prompt", "a harbour at night")]
            assert not b.sock.poll(0) and not c.sock.poll(0)  # nobody else heard of a's 422


def test_the_daemons_own_reset_keeps_the_prompt(daemon, world):
    """A step that fails resets the episode (error 500, then reset_ok): the session's prompt is set again."""
    with Client(daemon.address, width=32, height=32, prompt="a sunken ship") as c:
        frames(c, 1)
        key = only_key(world, set())
        c.send_input(buttons=1 << 31)
        c.grant(1)
        with pytest.raises(ServerError) as e:
            c.recv_frame()
        assert e.value.code == 500
        assert c.expect("reset_ok")["episode"] == 1
        assert world.calls(key)[-2:] == [("reset", 0), ("prompt", "a sunken ship")]
        c.send_input(buttons=0)
        assert stamps(frames(c, 2, episode=1)) == {tuple(stamp("a sunken ship"))}


def test_a_world_failing_to_set_the_prompt_is_500_and_the_episode_goes_on(daemon, world):
    with Client(daemon.address, width=32, height=32, prompt="a castle") as c:
        frames(c, 1)
        c.send(p.reset(4, prompt=FAIL))
        with pytest.raises(ServerError) as e:
            c.expect("reset_ok")
        assert e.value.code == 500 and "prompt failed" in e.value.message
        assert c.expect("reset_ok") == {"type": "reset_ok", "episode": 1, "seed": 4}
        # the reset happened; its prompt could not be set, so the world's (here: its default) is in force
        assert stamps(frames(c, 2, episode=1)) == {tuple(stamp(DEFAULT))}
        assert c.ping() > 0


def test_reconnect_sends_the_newest_prompt(daemon, world):
    with Client(daemon.address, width=32, height=32, prompt="a meadow") as c:
        frames(c, 1)
        c.reset(1, prompt="a meadow in winter")
        c.reconnect()
        assert stamps(frames(c, 2)) == {tuple(stamp("a meadow in winter"))}
        assert c.hello["prompt"] == "a meadow in winter" and list(c.hello)[-1] == "prompt"


def test_a_world_without_the_capability_ignores_prompts():
    world = RecordingMaze()
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    try:
        with Client(d.address, width=32, height=32, prompt="a jungle") as c:
            assert "prompt" not in c.welcome["capabilities"]
            frames(c, 2)
            assert c.reset(1, prompt="a city")["episode"] == 1
            frames(c, 2, episode=1)
            c.send(p.reset(2, prompt=TOO_LONG))  # still validated
            with pytest.raises(ServerError) as e:
                c.expect("reset_ok")
            assert e.value.code == 422
        assert world.prompted == []
    finally:
        d.stop()
