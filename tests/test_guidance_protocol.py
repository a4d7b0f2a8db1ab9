"""Protocol 1.3's guidance (docs/protocol.md, section 4c), end to end: a real daemon (ROUTER, both threads) serving
a maze that claims the "guidance" capability and logs every Action it is stepped with, so the tests see exactly
which buffers reached the world for each frame, and that refused inputs reached it not at all."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from bridge.client import Client, GuidanceBuffers
from bridge.protocol import guidance as wire
from bridge.protocol import messages as p
from bridge.server.daemon import Daemon, DaemonConfig
from runtime.guidance import Guidance
from runtime.maze.world import MazeWorld

SIZE = 32  # frame size of every session here; the guided world takes guidance at 32x32 and 16x16
POSE_A = {"p": [1.5, 0.5, 1.5], "q": [0.0, 0.0, 0.0, 1.0]}
POSE_B = {"p": [2.5, 0.5, 1.5], "q": [0.0, 0.7071067811865476, 0.0, 0.7071067811865476]}


class SpyMaze(MazeWorld):
    """The maze, stepping as usual, that logs each episode's Actions; `guided` gives it the capability (reading
    colour and depth, at scales 1 and 2), as a guided neural world would have."""

    def __init__(self, guided: bool = True):
        super().__init__()
        if guided:
            self.capabilities = ("pose", "guidance")
            self.guidance_buffers = ("colour", "depth")
            self.guidance_scales = (1, 2)
        self.actions: dict = {}
        self.lock = threading.Lock()

    def step(self, actions):
        with self.lock:
            for key, action in actions.items():
                self.actions.setdefault(key, []).append(action)
        return super().step(actions)

    def last(self, key=None):
        with self.lock:
            if key is None:
                (key,) = self.actions  # the one session of a test
            return self.actions[key][-1]


def buffers(width: int, height: int, seed: int) -> GuidanceBuffers:
    """Buffers no flip or dtype slip leaves unchanged: random, with both kinds of "no surface" (+inf, 0) and
    depths f16 cannot hold exactly (so an f16 path that kept f32 bytes, or the reverse, shows)."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.1, 30.0, (height, width)).astype(np.float32)
    depth[0, 0], depth[-1, -1], depth[0, -1] = np.inf, 0.0, -1.0
    return GuidanceBuffers(
        colour=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        depth=depth,
        ids=rng.integers(0, 65536, (height, width), dtype=np.uint16),
    )


def world_daemon(world: MazeWorld):
    d = Daemon(world, DaemonConfig("tcp://127.0.0.1:0")).start()
    return d


@pytest.fixture
def world():
    return SpyMaze()


@pytest.fixture
def daemon(world):
    d = world_daemon(world)
    yield d
    d.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("wb-")]


def step(c: Client, world: SpyMaze, key=None, **input_kw):
    """One input, one credit, its frame; returns the Action the world was stepped with for it."""
    seq = c.send_input(**input_kw)
    c.grant(1)
    f = c.recv_frame()
    assert f.header["input_seq"] == seq
    return world.last(key)


def refused(c: Client, guidance, move=(0.0, 1.0), pose=POSE_B) -> dict:
    """Send an input carrying `guidance` as is (a raw map); returns the daemon's error."""
    c.seq += 1
    c.send(p.input_msg(c.seq, 5.0, move=move, pose=pose, guidance=guidance))
    msg, _ = c.recv()
    assert msg["type"] == "error", msg
    return msg


def same(got: Guidance, sent: GuidanceBuffers, depth_format: str = "f32") -> None:
    """What the guided world reads (colour, depth) arrives exactly; ids, which it does not read, not at all."""
    assert got.colour.dtype == np.uint8 and np.array_equal(got.colour, sent.colour)
    want = sent.depth.astype("<f2").astype(np.float32) if depth_format == "f16" else sent.depth
    assert got.depth.dtype == np.float32 and np.array_equal(got.depth, want)
    assert got.ids is None


# ------------------------------------------------------------------------------------------- welcome


def test_welcome_of_a_guided_world_offers_its_buffers_and_sizes(daemon):
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        w = c.welcome
        assert w["minor"] == 3 and "guidance" in w["capabilities"]
        assert w["guidance"] == {"buffers": ["colour", "depth"], "width": SIZE, "height": SIZE, "scales": [1, 2]}
        assert list(w)[-2:] == ["limits", "guidance"]  # the documented key order
        assert c.guidance_offer == w["guidance"]


def test_welcome_offers_the_size_frames_really_have():
    """The offer's size is the world's frame size for this session (the maze raises 8 to its minimum, 16)."""
    d = world_daemon(SpyMaze())
    try:
        with Client(d.address, width=8, height=40) as c:
            assert (c.welcome["width"], c.welcome["height"]) == (16, 40)
            assert (c.guidance_offer["width"], c.guidance_offer["height"]) == (16, 40)
    finally:
        d.stop()


def test_welcome_of_an_unguided_world_has_no_guidance():
    d = world_daemon(SpyMaze(guided=False))
    try:
        with Client(d.address, width=SIZE, height=SIZE) as c:
            assert "guidance" not in c.welcome and "guidance" not in c.welcome["capabilities"]
            assert c.guidance_offer is None
    finally:
        d.stop()


# -------------------------------------------------------------------------------------- good guidance


@pytest.mark.parametrize("depth_format", ["f32", "f16"])
@pytest.mark.parametrize("row_order", ["top_down", "bottom_up"])
@pytest.mark.parametrize("scale", [1, 2])
def test_guidance_reaches_the_world_as_sent(daemon, world, depth_format, row_order, scale):
    sent = buffers(SIZE // scale, SIZE // scale, seed=scale)
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        # bottom_up goes out as a wire map: the client's arrays are top-down, the bytes are not
        g = wire.encode(sent, depth_format=depth_format, row_order=row_order)
        got = step(c, world, pose=POSE_A, guidance=g).guidance
        assert isinstance(got, Guidance) and got.size == (SIZE // scale, SIZE // scale)
        same(got, sent, depth_format)


def test_client_sends_guidance_objects(daemon, world):
    """send_input takes any object with colour/depth/ids (GuidanceBuffers here, runtime's Guidance too)."""
    sent = buffers(SIZE, SIZE, seed=7)
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        same(step(c, world, guidance=sent, depth_format="f16").guidance, sent, "f16")
        g = Guidance(sent.colour[::2, ::2], sent.depth[::2, ::2])
        got = step(c, world, guidance=g).guidance
        assert np.array_equal(got.colour, g.colour) and np.array_equal(got.depth, g.depth)


def test_guidance_is_held_until_newer_and_a_reset_forgets_it(daemon, world):
    a, b = buffers(SIZE, SIZE, seed=1), buffers(SIZE // 2, SIZE // 2, seed=2)
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        assert step(c, world).guidance is None  # no guidance yet: the world dreams
        same(step(c, world, pose=POSE_A, guidance=a).guidance, a)
        for _ in range(3):  # inputs without guidance keep the held one
            same(step(c, world, move=(0.0, 1.0)).guidance, a)
        same(step(c, world, guidance=b).guidance, b)  # newest wins
        same(step(c, world).guidance, b)
        c.reset(seed=3)
        assert step(c, world).guidance is None  # a reset forgets it
        same(step(c, world, guidance=a).guidance, a)  # and guidance comes again


def test_newest_of_several_inputs_wins(daemon, world):
    a, b = buffers(SIZE, SIZE, seed=1), buffers(SIZE, SIZE, seed=2)
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        c.send_input(guidance=a)
        c.send_input(guidance=b)
        c.send_input(move=(0.0, 1.0))  # carries none: b stays
        seq = c.send_input()
        c.grant(1)
        assert c.recv_frame().header["input_seq"] == seq
        same(world.last().guidance, b)


# ----------------------------------------------------------------------------------------- refusals


def good_map(w: int = SIZE, h: int = SIZE, **over) -> dict:
    """A valid w x h map, with keys of `over` replaced (... removes one)."""
    g = wire.encode(buffers(w, h, seed=5))
    return {k: v for k, v in {**g, **over}.items() if v is not ...}


def nan_depth(depth_format: str) -> bytes:
    d = np.full((SIZE, SIZE), 2.0, np.float32)
    d[3, 4] = np.nan
    return d.astype(p.DEPTH_FORMATS[depth_format]).tobytes()


# (case, the guidance map, the field the error must name)
BAD = [
    ("not a map", [1, 2], "guidance"),
    ("bin instead of a map", b"\x00" * 8, "guidance"),
    ("width not offered", good_map(24, 24), "guidance.width"),
    ("height not offered", good_map(SIZE, 16), "guidance.height"),
    ("width over max_width", good_map(width=5000), "guidance.width"),
    ("width missing", good_map(width=...), "guidance.width"),
    ("height a float", good_map(height=32.0), "guidance.height"),
    ("colour missing", good_map(colour=...), "guidance.colour"),
    ("depth missing", good_map(depth=..., depth_format=...), "guidance.depth"),
    ("colour a str", good_map(colour="abc"), "guidance.colour"),
    ("colour short", good_map(colour=bytes(SIZE * SIZE * 3 - 1)), "guidance.colour"),
    ("depth f16 bytes said to be f32", good_map(depth=bytes(SIZE * SIZE * 2)), "guidance.depth"),
    ("depth f32 bytes said to be f16", good_map(depth_format="f16"), "guidance.depth"),
    ("ids (not read) too long", good_map(ids=bytes(SIZE * SIZE * 2 + 2)), "guidance.ids"),
    ("ids (not read) a list", good_map(ids=[1, 2]), "guidance.ids"),
    ("depth_format unknown", good_map(depth_format="f64"), "guidance.depth_format"),
    ("row_order unknown", good_map(row_order="left_right"), "guidance.row_order"),
    ("depth NaN f32", good_map(depth=nan_depth("f32")), "guidance.depth"),
    ("depth NaN f16", good_map(depth=nan_depth("f16"), depth_format="f16"), "guidance.depth"),
]


@pytest.mark.parametrize("case,g,field", BAD, ids=[b[0] for b in BAD])
def test_bad_guidance_is_422_naming_its_field_and_the_input_is_not_applied(daemon, world, case, g, field):
    held = buffers(SIZE, SIZE, seed=9)
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        before = step(c, world, move=(0.0, 0.0), pose=POSE_A, guidance=held)
        good_seq = c.seq
        err = refused(c, g, move=(1.0, 1.0), pose=POSE_B)
        assert (err["code"], err["ref"]) == (422, "input")
        assert f'"{field}"' in err["message"], err["message"]
        c.grant(1)  # the session goes on, and the refused input left no trace: not its seq, move, pose, guidance
        f = c.recv_frame()
        assert f.header["input_seq"] == good_seq
        after = world.last()
        assert after.move == (0.0, 0.0) and np.array_equal(after.pose, before.pose)
        same(after.guidance, held)


def test_byte_count_errors_give_the_expected_count(daemon):
    with Client(daemon.address, width=SIZE, height=SIZE) as c:
        err = refused(c, good_map(depth=bytes(10)))
        assert err["message"] == f'"guidance.depth" is 10 bytes, expected {SIZE * SIZE * 4} ({SIZE}x{SIZE} f32)'
        err = refused(c, good_map(24, 24))
        assert "32x32, 16x16" in err["message"]  # what this world takes


def test_an_unguided_world_ignores_guidance_but_still_checks_it():
    world = SpyMaze(guided=False)
    d = world_daemon(world)
    try:
        with Client(d.address, width=SIZE, height=SIZE) as c:
            odd = buffers(7, 5, seed=3)  # any size within the limits, any buffers
            assert step(c, world, guidance=GuidanceBuffers(ids=odd.ids)).guidance is None
            assert step(c, world, pose=POSE_A, guidance=odd).guidance is None
            good_seq = c.seq
            for g, field in [(good_map(7, 5, colour=bytes(3)), "guidance.colour"),
                             (good_map(depth=nan_depth("f32")), "guidance.depth"),
                             (good_map(width=2000), "guidance.width"), ("x", "guidance")]:
                err = refused(c, g, move=(1.0, 0.0))
                assert err["code"] == 422 and f'"{field}"' in err["message"], err
            c.grant(1)
            assert c.recv_frame().header["input_seq"] == good_seq
            assert world.last().move == (0.0, 0.0)
    finally:
        d.stop()


def test_one_clients_bad_guidance_never_reaches_another_session(daemon, world):
    ga, gb = buffers(SIZE, SIZE, seed=11), buffers(SIZE // 2, SIZE // 2, seed=12)
    with Client(daemon.address, width=SIZE, height=SIZE, name="a") as a:
        same(step(a, world, guidance=ga).guidance, ga)
        (key_a,) = world.actions
        with Client(daemon.address, width=SIZE, height=SIZE, name="b") as b:
            b.send_input(guidance=gb)
            b.grant(1)
            b.recv_frame()
            (key_b,) = set(world.actions) - {key_a}
            same(world.last(key_b).guidance, gb)
            for g, _, _ in BAD:
                assert refused(a, g)["code"] == 422
            assert not b.sock.poll(200), "b heard of a's errors"
            same(step(b, world, key=key_b, move=(0.0, 1.0)).guidance, gb)  # b's own guidance, untouched
            same(step(a, world, key=key_a).guidance, ga)  # and a's held one too
            a.reset()  # a's reset forgets a's guidance only
            assert step(a, world, key=key_a).guidance is None
            same(step(b, world, key=key_b).guidance, gb)


# ------------------------------------------------------------------------------------- wire functions


def test_encode_decode_round_trip_and_refusals():
    sent = buffers(6, 4, seed=1)
    for depth_format in ("f32", "f16"):
        for row_order in ("top_down", "bottom_up"):
            g = wire.encode(sent, depth_format=depth_format, row_order=row_order)
            assert list(g) == ["width", "height", "row_order", "colour", "depth", "depth_format", "ids"]
            spec = p.parse([p.pack(p.input_msg(1, 0.0, guidance=g))])[0]["guidance"]
            got = wire.decode(spec)
            assert np.array_equal(got.colour, sent.colour) and np.array_equal(got.ids, sent.ids)
            want = sent.depth.astype("<f2").astype(np.float32) if depth_format == "f16" else sent.depth
            assert np.array_equal(got.depth, want)
    flipped = wire.encode(sent, row_order="bottom_up")
    assert flipped["ids"][:12] == sent.ids[-1].astype("<u2").tobytes()  # the bottom row goes first
    assert wire.allowed_sizes(wire.offer(["depth"], 33, 17, [1, 2, 4, 64])) == [(33, 17), (16, 8), (8, 4)]
    with pytest.raises(ValueError):
        wire.encode(colour=np.zeros((4, 6), np.uint8))  # no channel axis
    with pytest.raises(ValueError):
        wire.encode(colour=np.zeros((4, 6, 3), np.uint8), depth=np.zeros((4, 5)))
    with pytest.raises(ValueError):
        wire.encode(ids=np.full((2, 2), 70000))
    with pytest.raises(ValueError):
        wire.encode()
    assert math.isinf(wire.decode(p.parse([p.pack(p.input_msg(1, 0.0, guidance=wire.encode(
        depth=np.full((1, 1), 1e6), depth_format="f16")))])[0]["guidance"]).depth[0, 0])  # f16 overflow: no surface
