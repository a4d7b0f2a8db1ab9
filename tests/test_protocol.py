"""Protocol v1 encoding and validation: every builder round-trips, every bad field has its code."""

import math

import msgpack
import pytest

from bridge.protocol import messages as p
from bridge.protocol.messages import ErrorCode, Limits, ProtocolError

POSE = {"p": [1.0, 2.0, 3.0], "q": [0.0, 0.0, 0.0, 1.0]}


def parse(msg, payload=None, limits=Limits()):
    return p.parse([p.pack(msg)] + ([payload] if payload is not None else []), limits)


def code_of(msg, payload=None, **kw):
    with pytest.raises(ProtocolError) as e:
        parse(msg, payload, **kw) if isinstance(msg, dict) else p.parse(msg)
    return e.value.code


@pytest.mark.parametrize(
    "msg",
    [
        p.hello("t", "unity", 128, 96, "jpeg", "bottom_up", 3, ["pose"], "tok", 50, 7),
        p.input_msg(5, 1.25, (0.5, -1), (3, -2), 1, POSE, 75.0),
        p.input_msg(0, 0),
        p.credit(4),
        p.reset(9, POSE),
        p.ping(2.5),
        p.bye(),
    ],
)
def test_client_messages_round_trip(msg):
    parsed, payload = parse(msg)
    assert payload is None
    assert {k: parsed[k] for k in msg} == msg


def test_defaults_filled():
    msg, _ = parse({"type": "input", "seq": 1})
    assert msg == {"type": "input", "seq": 1, "t": 0.0, "move": [0.0, 0.0], "look": [0.0, 0.0], "buttons": 0,
                   "pose": None, "fov_deg": None, "image": None, "guidance": None}


def test_integers_accepted_where_numbers_expected():
    msg, _ = parse({"type": "input", "seq": 1, "t": 3, "move": [0, 1], "look": [-1, 0]})
    assert msg["t"] == 3.0 and msg["move"] == [0.0, 1.0]


def test_unknown_keys_ignored():
    msg, _ = parse({**p.ping(1.0), "future_field": [1, 2]})
    assert "future_field" not in msg


def test_reset_with_image_payload():
    spec = {"width": 2, "height": 2, "format": "rgb8", "row_order": "top_down"}
    msg, payload = parse(p.reset(1, image=spec), bytes(12))
    assert msg["image"] == spec and payload == bytes(12)
    assert code_of(p.reset(1, image=spec), bytes(11)) == ErrorCode.BAD_FIELD
    assert code_of(p.reset(1, image=spec)) == ErrorCode.MALFORMED  # pixels missing
    assert code_of(p.ping(1.0), b"x") == ErrorCode.MALFORMED  # payload where none belongs


@pytest.mark.parametrize(
    "frames",
    [[b""], [b"\xc1"], [b"\x92\x01\x02"], [msgpack.packb({"kind": "hello"})], [msgpack.packb({"type": 5})],
     [b"\x81\xa4type\xa4ping", b"", b""], [], [b"\xdf\xff\xff\xff\xff"], [b"\xdd\xff\xff\xff\xff"],
     [b"\xc6\x7f\xff\xff\xff"], [msgpack.packb({1: "a"})]],
)
def test_malformed(frames):
    assert code_of(frames) == ErrorCode.MALFORMED


def test_unknown_type_and_ref():
    with pytest.raises(ProtocolError) as e:
        parse({"type": "teleport"})
    assert e.value.code == ErrorCode.UNKNOWN_TYPE and e.value.ref == "teleport"


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "input"},
        {"type": "input", "seq": -1},
        {"type": "input", "seq": 1.5},
        {"type": "input", "seq": True},
        {"type": "input", "seq": 1, "move": [0]},
        {"type": "input", "seq": 1, "move": [0, math.nan]},
        {"type": "input", "seq": 1, "look": [math.inf, 0]},
        {"type": "input", "seq": 1, "t": "now"},
        {"type": "input", "seq": 1, "buttons": 1 << 32},
        {"type": "input", "seq": 1, "pose": {"p": [0, 0, 0]}},
        {"type": "input", "seq": 1, "pose": {"p": [0, 0, 0], "q": [0, 0, 0, 0]}},
        {"type": "input", "seq": 1, "pose": [1, 2, 3]},
        {"type": "input", "seq": 1, "fov_deg": 0},
        {"type": "credit", "n": 0},
        {"type": "credit", "n": 17},
        {"type": "credit"},
        {**p.hello("x", "unity", 100000, 100000)},
        {**p.hello("x", "unreal", 64, 64)},
        {**p.hello("x", "unity", 64, 64, "png")},
        {**p.hello("", "unity", 64, 64)},
        {**p.hello("x" * 65, "unity", 64, 64)},
        {**p.hello("x", "unity", 0, 64)},
        {**p.hello("x", "unity", 64, 64), "jpeg_quality": 0},
        {"type": "hello", "major": 1},
        {"type": "reset", "seed": 2**63},
        {"type": "reset", "image": {"width": 2, "height": 2, "format": "bmp"}},
    ],
)
def test_bad_fields(msg):
    with pytest.raises(ProtocolError) as e:
        parse(msg)
    assert e.value.code == ErrorCode.BAD_FIELD
    assert e.value.ref == msg["type"] and e.value.message


def test_too_large():
    limits = Limits(max_message_bytes=1000)
    with pytest.raises(ProtocolError) as e:
        p.parse([p.pack({"type": "ping", "pad": "x" * 2000})], limits)
    assert e.value.code == ErrorCode.TOO_LARGE


def test_integer_encoding_is_smallest():
    assert p.pack({"n": 1}) == b"\x81\xa1n\x01"
    assert p.pack({"n": 200}) == b"\x81\xa1n\xcc\xc8"
    assert p.pack({"n": -33}) == b"\x81\xa1n\xd0\xdf"
    assert p.pack({"x": 1.0}) == b"\x81\xa1x\xcb" + bytes.fromhex("3ff0000000000000")


def test_error_message_shape():
    e = p.error(ErrorCode.WORLD_ERROR, "boom", "input")
    assert e == {"type": "error", "code": 500, "name": "world_error", "message": "boom", "ref": "input"}
