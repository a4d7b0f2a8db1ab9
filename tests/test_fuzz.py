"""Property-based tests of the daemon's front door: whatever a client sends, it gets the documented error code,
other sessions see nothing, and the daemon goes on serving with bounded state.

The oracle below is written from docs/protocol.md (field kinds and ranges), not from bridge/protocol/messages.py, so a
validation slip in the implementation shows up as a wrong or missing error code. Every example runs over a
real ROUTER/DEALER pair against one in-process maze daemon shared by the module.
"""

from __future__ import annotations

import io
import itertools
import math
import threading
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bridge.client.client import Client
from bridge.protocol import messages as p
from bridge.protocol.messages import Limits
from bridge.server.daemon import Daemon, DaemonConfig
from runtime.maze.world import MazeWorld

LIMITS = Limits(max_message_bytes=64 << 10, max_sessions=8, idle_timeout_s=600.0)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
I64, U64 = 1 << 63, 1 << 64

# --------------------------------------------------------------------------------- the documented schema
# kind -> (valid strategy, invalid strategy). "number" accepts any int or float encoding, but not NaN/inf;
# nil means "use the default", so it is valid for optional fields and a 422 for required ones.

anyint = st.integers(-I64, U64 - 1)  # every int msgpack can encode
finite = st.floats(allow_nan=False, allow_infinity=False) | anyint
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])
junk = st.booleans() | st.text(max_size=8) | st.binary(max_size=8) | st.lists(anyint, max_size=3) | \
    st.dictionaries(st.text(max_size=4), anyint, max_size=2)


def ints(lo: int, hi: int):
    """Valid: [lo, hi]. Invalid: just outside, far outside (any encodable int), floats, junk."""
    outside = [x for x in (lo - 1, hi + 1, -I64, U64 - 1) if not lo <= x <= hi and -I64 <= x < U64]
    invalid = st.sampled_from(outside) | st.integers(-I64, U64 - 1).filter(lambda x: not lo <= x <= hi) | \
        st.floats() | junk
    return st.integers(lo, hi), invalid


def enum(*names: str):
    return st.sampled_from(names), st.text(max_size=12).filter(lambda s: s not in names) | anyint | junk


def unit_quaternion():
    return st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(
        lambda q: math.fsum(x * x for x in q) > 0.01).map(lambda q: [x / math.sqrt(sum(y * y for y in q)) for x in q])


def pose():
    valid = st.fixed_dictionaries({"p": st.lists(finite, min_size=3, max_size=3), "q": unit_quaternion()})
    invalid = st.one_of(
        junk,
        st.fixed_dictionaries({"p": st.lists(finite, min_size=0, max_size=2), "q": unit_quaternion()}),
        st.fixed_dictionaries({"p": st.lists(finite, min_size=3, max_size=3),
                               "q": st.sampled_from([[0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])}),
        st.fixed_dictionaries({"p": st.tuples(finite, not_finite, finite).map(list), "q": unit_quaternion()}),
        st.fixed_dictionaries({"q": unit_quaternion()}),
    )
    return valid, invalid


def number():
    return finite, not_finite | junk


def vec2():
    valid = st.lists(finite, min_size=2, max_size=2)
    invalid = st.lists(finite, max_size=5).filter(lambda v: len(v) != 2) | \
        st.tuples(finite, not_finite).map(list) | st.tuples(finite, junk).map(list) | finite
    return valid, invalid


def fov():
    return st.floats(1.0, 170.0) | st.integers(1, 170), \
        st.floats(-1e9, 0.999) | st.floats(170.001, 1e9) | not_finite | junk


def name():
    return st.text(min_size=1, max_size=64), st.just("") | st.text(min_size=65, max_size=80) | anyint | \
        st.binary(max_size=4)


def prompt():
    """1.2: a str of at most 2000 bytes as UTF-8 (a character is 1 to 4 bytes)."""
    too_long = st.text(min_size=2001, max_size=2100) | st.text(min_size=501, max_size=600).map(lambda t: t * 4)
    return st.text(max_size=200) | st.text(st.characters(min_codepoint=0x10000), min_size=500, max_size=500), \
        too_long.filter(lambda t: len(t.encode()) > 2000) | anyint | st.binary(max_size=8) | \
        st.lists(st.text(max_size=4), max_size=2) | st.booleans()


def guidance():
    """1.3: a map of inline buffers (section 4c). The fuzz daemon's maze has no "guidance" capability, so any
    size within the limits and any subset of buffers is valid; byte counts, enums and NaN depth are checked."""
    sizes = st.tuples(st.integers(1, 8), st.integers(1, 8))
    depth_value = st.floats(width=32, allow_nan=False) | st.sampled_from([math.inf, -math.inf, 0.0])

    @st.composite
    def valid(draw) -> dict[str, Any]:
        w, h = draw(sizes)
        fmt = draw(st.sampled_from(["f32", "f16"]))
        g: dict[str, Any] = {"width": w, "height": h}
        if draw(st.booleans()):
            g["row_order"] = draw(st.sampled_from(["top_down", "bottom_up"]))
        if draw(st.booleans()):
            g["colour"] = draw(st.binary(min_size=w * h * 3, max_size=w * h * 3))
        if draw(st.booleans()):
            values = draw(st.lists(depth_value, min_size=w * h, max_size=w * h))
            dtype = {"f32": "<f4", "f16": "<f2"}[fmt]
            with np.errstate(over="ignore"):
                g["depth"], g["depth_format"] = np.array(values, np.float32).astype(dtype).tobytes(), fmt
        if draw(st.booleans()):
            g["ids"] = draw(st.binary(min_size=w * h * 2, max_size=w * h * 2))
        return g

    @st.composite
    def broken(draw) -> dict[str, Any]:
        g = draw(valid())
        w, h = g["width"], g["height"]
        how = draw(st.sampled_from(["size", "bytes", "bin", "format", "row_order", "nan"]))
        if how == "size":
            g[draw(st.sampled_from(["width", "height"]))] = draw(SIZE_INVALID)
        elif how == "bytes":  # a buffer one pixel short or long
            name, per = draw(st.sampled_from([("colour", 3), ("ids", 2), ("depth", 4)]))
            if name == "depth":
                g.pop("depth_format", None)  # so f32: 4 bytes a pixel
            g[name] = bytes(w * h * per + draw(st.sampled_from([-per, per, 1])))
        elif how == "bin":
            g[draw(st.sampled_from(["colour", "depth", "ids"]))] = draw(st.text(max_size=4) | anyint)
        elif how == "format":
            g["depth_format"] = draw(enum("f32", "f16")[1].filter(lambda v: v is not None))
        elif how == "row_order":
            g["row_order"] = draw(enum("top_down", "bottom_up")[1].filter(lambda v: v is not None))
        else:
            g["depth"], g["depth_format"] = np.full(w * h, np.nan, "<f2").tobytes(), "f16"
        return g

    return valid(), junk | broken()


def strlist():
    return st.lists(st.text(max_size=16), max_size=8), st.lists(anyint, min_size=1, max_size=3) | \
        st.text(max_size=4) | anyint


# field -> (valid, invalid, required)
SCHEMA: dict[str, dict[str, tuple[Any, Any, bool]]] = {
    "hello": {
        "major": (st.just(p.MAJOR), ints(-I64, I64 - 1)[1], True),
        "minor": (*ints(-I64, I64 - 1), True),
        "client": (*name(), True),
        "engine": (*enum("unity", "godot", "opencv"), True),
        "width": (*ints(1, 64), True),  # valid sizes kept small so the fuzzer does not render 1024^2 frames
        "height": (*ints(1, 64), True),
        "format": (*enum("rgb8", "rgba8", "jpeg"), True),
        "row_order": (*enum("top_down", "bottom_up"), False),
        "credits": (*ints(0, LIMITS.max_credits), False),
        "capabilities": (*strlist(), False),
        "jpeg_quality": (*ints(1, 100), False),
        "seed": (*ints(-I64, I64 - 1), False),
        "prompt": (*prompt(), False),
    },
    "input": {
        "seq": (*ints(0, I64 - 1), True),
        "t": (*number(), False),
        "move": (*vec2(), False),
        "look": (*vec2(), False),
        "buttons": (*ints(0, (1 << 32) - 1), False),
        "pose": (*pose(), False),
        "fov_deg": (*fov(), False),
        "guidance": (*guidance(), False),
    },
    "credit": {"n": (*ints(1, LIMITS.max_credits), True)},
    "reset": {"seed": (*ints(-I64, I64 - 1), False), "pose": (*pose(), False), "prompt": (*prompt(), False)},
    "ping": {"t": (*number(), False)},
    "bye": {},
    # 1.1; this daemon has no recording directory, so valid ones get 403
    "record_start": {"name": (st.text(max_size=80), st.text(min_size=1025, max_size=1100) | anyint | junk.filter(
        lambda v: not isinstance(v, str)), False)},
    "record_stop": {},
}
# widths in the schema above are the fuzzer's valid choice; these are the documented limits
SIZE_INVALID = ints(1, LIMITS.max_width)[1]
KNOWN_KEYS = {k for schema in p._SCHEMAS.values() for k in schema} | {"type"}  # also keys of newer minors


@st.composite
def valid_message(draw, kind: str | None = None) -> dict[str, Any]:
    kind = kind or draw(st.sampled_from(sorted(SCHEMA)))
    msg: dict[str, Any] = {"type": kind}
    for field, (valid, _, required) in SCHEMA[kind].items():
        if required or draw(st.booleans()):
            msg[field] = draw(valid)
        elif draw(st.integers(0, 9)) == 0:
            msg[field] = None  # nil: the default
    return msg


@st.composite
def message_with_bad_field(draw) -> tuple[dict[str, Any], str]:
    kind = draw(st.sampled_from([k for k in SCHEMA if SCHEMA[k]]))
    msg = draw(valid_message(kind))
    field = draw(st.sampled_from(sorted(SCHEMA[kind])))
    invalid = SIZE_INVALID if field in ("width", "height") else SCHEMA[kind][field][1]
    mutation = draw(st.sampled_from(["wrong", "missing", "nil"] if SCHEMA[kind][field][2] else ["wrong"]))
    if mutation == "wrong":
        msg[field] = draw(invalid)
    elif mutation == "missing":
        msg.pop(field, None)
    else:
        msg[field] = None
    return msg, field


# ------------------------------------------------------------------------------------------ the harness


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(MazeWorld(), DaemonConfig("tcp://127.0.0.1:0", LIMITS)).start()
    yield d
    d.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("wb-")]


@pytest.fixture(scope="module")
def bystander(daemon):
    """A session that never misbehaves: it must never hear of anyone else's mistakes."""
    c = Client(daemon.address, width=16, height=16, name="bystander")
    yield c
    c.close()


@pytest.fixture(autouse=True)
def nobody_else_noticed(daemon, bystander):
    yield
    assert not bystander.sock.poll(0), "the bystander received something"
    seq = bystander.seq
    bystander.send_input((0.0, 1.0))
    bystander.grant(1)
    f = bystander.recv_frame(timeout=10)
    assert f.header["input_seq"] == seq + 1
    assert all(t.is_alive() for t in daemon._threads), "a daemon thread died"
    assert len(daemon._sessions) <= 3  # bystander + the probes: nothing leaks


_sentinels = itertools.count()


class Probe:
    """A raw DEALER: sends arbitrary frames and collects exactly the daemon's direct replies to them."""

    def __init__(self, address: str):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(address)

    def exchange(self, frames: list[bytes]) -> list[dict[str, Any]]:
        """Send one message, then a sentinel of an unknown type (always answered with 404, session or not).
        Replies before the sentinel's are the message's; frames and reset_ok (made later by the stepper) are
        skipped."""
        sentinel = f"sentinel-{next(_sentinels)}"
        self.sock.send_multipart(frames)
        self.sock.send(p.pack({"type": sentinel}))
        replies = []
        while True:
            assert self.sock.poll(10_000), f"no answer to {frames!r:.200}"
            msg = msgpack.unpackb(self.sock.recv_multipart()[0])
            if msg.get("type") == "error" and msg.get("ref") == sentinel:
                assert msg["code"] == 404
                return replies
            if msg.get("type") not in ("frame", "reset_ok") and not str(msg.get("ref", "")).startswith("sentinel-"):
                replies.append(msg)

    def handshake(self) -> None:
        replies = self.exchange([p.pack(p.hello("fuzz", "opencv", 8, 8))])
        assert [r["type"] for r in replies] == ["welcome"]

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture(scope="module")
def probe(daemon):
    pr = Probe(daemon.address)
    yield pr
    pr.close()


@pytest.fixture(scope="module")
def stranger(daemon):
    """A connection that never says hello."""
    pr = Probe(daemon.address)
    yield pr
    pr.close()


def codes(replies: list[dict[str, Any]]) -> list[int]:
    assert all(r["type"] == "error" for r in replies), replies
    return [r["code"] for r in replies]


def expected_replies(msg: dict[str, Any]) -> list[str | int]:
    """What a handshaken session gets back directly for a valid message."""
    if msg["type"] == "hello":
        return ["welcome"] if msg["major"] == p.MAJOR else [426]
    return {"ping": ["pong"], "bye": ["bye"], "record_start": [403], "record_stop": [403]}.get(msg["type"], [])


def summary(replies: list[dict[str, Any]]) -> list[str | int]:
    return [r["code"] if r["type"] == "error" else r["type"] for r in replies]


# ------------------------------------------------------------------------------------------------ tests


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=3))
def test_random_bytes(probe, frames):
    probe.handshake()
    replies = probe.exchange(frames)
    # Independent oracle: msgpack itself says whether the first frame is a message at all.
    try:
        decoded = msgpack.unpackb(frames[0], strict_map_key=True)
    except Exception:
        decoded = None
    if len(frames) == 3 or not isinstance(decoded, dict) or not isinstance(decoded.get("type"), str):
        assert codes(replies) == [400]
    elif decoded["type"] not in p.CLIENT_TYPES:
        assert codes(replies) == [404]
    else:
        assert len(replies) <= 1  # a real message by chance: at most one answer


@FUZZ
@given(valid_message(), st.data())
def test_truncated_or_padded_msgpack_is_malformed(probe, msg, data):
    raw = p.pack(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    probe.handshake()
    assert codes(probe.exchange([raw[:cut]])) == [400]
    assert codes(probe.exchange([raw + data.draw(st.binary(min_size=1, max_size=8))])) == [400]


@FUZZ
@given(valid_message(), st.dictionaries(st.text(max_size=12).filter(lambda k: k not in KNOWN_KEYS),
                                        st.none() | anyint | st.text(max_size=8) | st.lists(st.floats()),
                                        max_size=4))
def test_valid_messages_with_extra_keys_are_served(probe, msg, extra):
    probe.handshake()
    assert summary(probe.exchange([p.pack({**msg, **extra})])) == expected_replies(msg)


@FUZZ
@given(message_with_bad_field())
def test_bad_fields_are_422_and_the_session_survives(probe, case):
    msg, field = case
    probe.handshake()
    replies = probe.exchange([p.pack(msg)])
    assert codes(replies) == [422], (field, msg)
    assert replies[0]["ref"] == msg["type"] and f'"{field}' in replies[0]["message"]
    assert summary(probe.exchange([p.pack(p.ping(1.0))])) == ["pong"]  # still a session


@FUZZ
@given(st.text(max_size=40).filter(lambda t: t not in p.CLIENT_TYPES and not t.startswith("sentinel-")) |
       anyint | st.none() | st.binary(max_size=4), st.booleans())
def test_unknown_types(probe, kind, handshaken):
    if handshaken:
        probe.handshake()
    replies = probe.exchange([p.pack({"type": kind})])
    assert codes(replies) == ([404] if isinstance(kind, str) else [400])


@FUZZ
@given(valid_message().filter(lambda m: m["type"] != "hello"))
def test_anything_before_the_handshake_is_409(stranger, msg):
    replies = stranger.exchange([p.pack(msg)])
    assert codes(replies) == [409]
    assert replies[0]["ref"] == msg["type"]


@FUZZ
@given(st.lists(st.integers(0, I64 - 1), min_size=1, max_size=6))
def test_sequence_numbers_may_jump_anywhere(probe, seqs):
    probe.handshake()
    for seq in seqs:
        assert probe.exchange([p.pack(p.input_msg(seq, 0.0, (0.0, 1.0)))]) == []
    probe.sock.send(p.pack(p.credit(1)))
    assert probe.sock.poll(10_000)
    header = msgpack.unpackb(probe.sock.recv_multipart()[0])
    assert header["type"] == "frame" and header["input_seq"] == seqs[-1]



def jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, format="JPEG")
    return buf.getvalue()


@FUZZ
@given(st.sampled_from(["rgb8", "rgba8", "jpeg"]), st.integers(1, 24), st.integers(1, 24),
       st.sampled_from(["exact", "short", "long", "other size", "junk"]), st.binary(max_size=64))
def test_reset_start_images(probe, fmt, width, height, variant, junk_bytes):
    """A start image's pixels must match its spec exactly: raw sizes to the byte, a JPEG to the pixel."""
    spec = {"width": width, "height": height, "format": fmt, "row_order": "top_down"}
    if fmt == "jpeg":
        payload = {"exact": jpeg(width, height), "other size": jpeg(width + 1, height)}.get(variant, junk_bytes)
    else:
        n = width * height * (3 if fmt == "rgb8" else 4)
        payload = b"\x80" * (n + {"short": -1, "long": 1, "other size": width}.get(variant, 0))
        if variant == "junk":
            payload = junk_bytes if len(junk_bytes) != n else junk_bytes + b"\0"
    probe.handshake()
    replies = probe.exchange([p.pack(p.reset(3, image=spec)), payload])
    assert codes(replies) == ([] if variant == "exact" else [422])

ABSURD = [
    # (what, frames, code)
    ("a 100000x100000 frame", [p.pack(p.hello("x", "unity", 100_000, 100_000))], 422),
    ("a 2^64-1 credit", [p.pack({"type": "credit", "n": U64 - 1})], 422),
    ("bin32 claiming 4 GiB", [b"\x82\xa4type\xa4ping\xa1t\xc6\xff\xff\xff\xff"], 400),
    ("array32 claiming 4G items", [b"\x82\xa4type\xa4ping\xa1t\xdd\xff\xff\xff\xff"], 400),
    ("map32 claiming 4G pairs", [b"\xdf\xff\xff\xff\xff"], 400),
    ("str32 claiming 4 GiB", [b"\x81\xa4type\xdb\xff\xff\xff\xff"], 400),
    ("nesting 10000 deep", [b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * 10_000 + b"\xc0"], 400),
    ("a 64-bit seq", [p.pack({"type": "input", "seq": I64})], 422),
    ("a rgb8 start image 10 GB by spec", [p.pack(p.reset(0, image={"width": 100_000, "height": 100_000,
                                                                    "format": "rgb8"})), b"\0" * 12], 422),
    ("an image whose pixels do not match", [p.pack(p.reset(0, image={"width": 8, "height": 8, "format": "rgb8"})),
                                            b"\0" * 191], 422),
    ("a start image with no pixels", [p.pack(p.reset(0, image={"width": 8, "height": 8, "format": "rgb8"}))], 400),
    ("pixels nobody asked for", [p.pack(p.ping(0.0)), b"\0" * 12], 400),
    ("one byte over max_message_bytes", [p.pack({**p.ping(0.0), "pad": b"\0" * LIMITS.max_message_bytes})], 413),
    ("look of 1e308 degrees", [p.pack(p.input_msg(1, 0.0, look=(1e308, -1e308)))], None),
    ("a pose at 1e300", [p.pack(p.input_msg(2, 0.0, pose={"p": [1e300, -1e300, 1e300], "q": [0, 0, 0, 1]}))], None),
    ("time at -1e308", [p.pack(p.input_msg(3, -1e308))], None),
]


@pytest.mark.parametrize("what,frames,code", ABSURD, ids=[a[0] for a in ABSURD])
def test_absurd_messages(probe, what, frames, code):
    probe.handshake()
    replies = probe.exchange(frames)
    assert codes(replies) == ([] if code is None else [code])
    if code is None:  # accepted: the world must cope with the numbers, twice over
        probe.exchange(frames)
        probe.sock.send(p.pack(p.credit(2)))
        for _ in range(2):
            assert probe.sock.poll(10_000)
            assert msgpack.unpackb(probe.sock.recv_multipart()[0])["type"] == "frame"


def test_a_frame_over_the_socket_limit_drops_the_connection(daemon):
    """ZMQ_MAXMSGSIZE: a frame over twice max_message_bytes never reaches the decoder; the peer is cut off
    (its DEALER reconnects under a new identity, so the session is gone: 409)."""
    pr = Probe(daemon.address)
    try:
        pr.handshake()
        pr.sock.send(b"\0" * (2 * LIMITS.max_message_bytes + 1))
        pr.sock.send(p.pack(p.ping(1.0)))  # may be lost with the connection: only its absence is certain
        replies = []
        while pr.sock.poll(1500):
            replies.append(msgpack.unpackb(pr.sock.recv_multipart()[0]))
        assert not any(r.get("code") == 413 for r in replies)  # never decoded
        assert codes(pr.exchange([p.pack(p.ping(2.0))])) == [409]
    finally:
        pr.close()
