"""Regenerate the byte-exact protocol vectors in this folder from bridge/protocol/messages.py and tests/zmtp.py.

    python tests/vectors/generate.py            # writes next to this file
    python tests/vectors/generate.py OUT_DIR    # writes elsewhere (tests compare the two)

index.json lists each vector: its frame files, direction and decoded meaning (bytes as {"$bin": hex}).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgpack
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import zmtp  # noqa: E402

from bridge.protocol import guidance as g  # noqa: E402
from bridge.protocol import messages as p  # noqa: E402
from bridge.protocol.messages import ErrorCode, Limits, ProtocolError  # noqa: E402

PIXELS = bytes(range(4 * 2 * 3))  # a 4x2 rgb8 image: bytes 0..23
POSE = {"p": [1.5, 0.5, -2.0], "q": [0.0, 0.3826834323650898, 0.0, 0.9238795325112867]}
# 1.2: a prompt of 64 bytes of UTF-8 (a str8), non-ASCII up to a 4-byte character
PROMPT = "A sunlit caf\u00e9 terrace in Lyon, \u20ac3 espresso, a dog asleep \U0001f415"

# 1.3: a 4x2 guidance, top row first: flat colours, depths with both kinds of "no surface" (+inf, 0), ids up to
# 65535; sent bottom_up with f16 depth, as a Unity readback would
GUIDANCE = g.GuidanceBuffers(
    colour=(np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10),
    depth=np.array([[0.5, 1.0, 2.5, np.inf], [4.0, 8.0, 0.0, 1.25]], np.float32),
    ids=np.array([[1, 2, 3, 65535], [0, 256, 7, 8]], np.uint16),
)
GUIDANCE_MAP = g.encode(GUIDANCE, depth_format="f16", row_order="bottom_up")
# the 1.3 welcome of a guided world: the default model's buffers, three scales
GUIDED_WELCOME = p.welcome("9f2c01", "guided", 128, 128, "rgb8", "bottom_up", 85, 60.0, ["pose", "guidance", "jpeg"],
                           Limits(), guidance=g.offer(["colour", "depth"], 128, 128, [1, 2, 4]))


def refusal(msg: dict) -> dict:
    """The error the daemon answers `msg` with: its validation's own code, message and ref."""
    try:
        p.parse([p.pack(msg)])
    except ProtocolError as e:
        return p.error(e.code, e.message, e.ref)
    raise AssertionError(f"{msg} is valid")


MESSAGES: dict[str, tuple[str, list[bytes] | dict]] = {
    "hello": ("c2d", p.hello("unity/0.1.0", "unity", 128, 128, "rgb8", "bottom_up", credits=2)),
    "hello_token": ("c2d", p.hello("godot/0.1.0", "godot", 320, 240, "jpeg", credits=16,
                                   capabilities=["pose"], token="s3cret", jpeg_quality=70, seed=-5)),
    "hello_prompt": ("c2d", p.hello("unity/0.1.0", "unity", 256, 256, "rgb8", "bottom_up", credits=2,
                                    capabilities=["pose"], prompt=PROMPT)),
    "input": ("c2d", p.input_msg(7, 12.25, move=(0.0, 1.0), look=(-2.5, 0.75), buttons=1)),
    "input_pose": ("c2d", p.input_msg(4294967296, 1e3, pose=POSE, fov_deg=60.0)),
    "credit": ("c2d", p.credit(3)),
    "reset": ("c2d", p.reset(42, pose=POSE)),
    "reset_prompt": ("c2d", p.reset(3, pose=POSE, prompt="a snowy pine forest at dusk")),
    "reset_image": ("c2d", [p.pack(p.reset(1, image={"width": 4, "height": 2, "format": "rgb8",
                                                    "row_order": "top_down"})), PIXELS]),
    "input_image": ("c2d", [p.pack(p.input_msg(8, 12.5, move=(0.0, 1.0), look=(1.0, 0.0), pose=POSE, fov_deg=60.0,
                                                image={"width": 4, "height": 2, "format": "rgb8",
                                                       "row_order": "top_down"})), PIXELS]),
    "input_guidance": ("c2d", p.input_msg(9, 12.75, move=(0.0, 1.0), pose=POSE, fov_deg=60.0,
                                          guidance=GUIDANCE_MAP)),
    "record_start": ("c2d", p.record_start("level_1")),
    "record_stop": ("c2d", p.record_stop()),
    "ping": ("c2d", p.ping(0.5)),
    "bye": ("c2d", p.bye()),
    "welcome": ("d2c", p.welcome("9f2c01", "lingbot-fast", 128, 128, "rgb8", "bottom_up", 85, 60.0,
                                   ["pose", "start_image", "prompt", "jpeg", "record"], Limits())),
    "welcome_guidance": ("d2c", GUIDED_WELCOME),
    "frame": ("d2c", [p.pack(p.frame(0, 7, 12.25, 1, 4, 2, "rgb8", "top_down", POSE,
                                     {"queue_ms": 0.5, "step_ms": 3.25, "encode_ms": 0.125})), PIXELS]),
    "reset_ok": ("d2c", p.reset_ok(2, 42)),
    "record_ok": ("d2c", p.record_ok("level_1", 128, 128, 36000, 4294967296)),
    "record_done": ("d2c", p.record_done("level_1", "/home/me/recordings/level_1", 300, 3)),
    "pong": ("d2c", p.pong(0.5, 1764000000.25)),
    "bye_reply": ("d2c", p.bye()),
    "error": ("d2c", p.error(ErrorCode.BAD_FIELD, '"seq" is required in input', "input")),
    "error_record": ("d2c", p.error(ErrorCode.RECORD_FULL, "recording level_1 is full", "input")),
    "error_prompt": ("d2c", refusal(p.reset(0, prompt="x" * (p.MAX_PROMPT_BYTES + 1)))),
    # 1.3: f16 depth bytes without "depth_format" (so f32): 16 bytes where 32 were due
    "error_guidance": ("d2c", refusal(p.input_msg(9, 0.0, guidance={
        k: v for k, v in GUIDANCE_MAP.items() if k not in ("depth_format", "colour", "ids")}))),
}

# Every msgpack width the protocol can meet, in one array.
VALUES = [
    0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 18446744073709551615,
    -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9223372036854775808,
    0.0, -1.5, 3.141592653589793, 1e300, True, False, None,
    "", "a" * 31, "b" * 32, "c" * 256, "h\u00e9llo \u20ac \U0001f600",
    b"", b"\x01\x02", bytes(range(256)) * 2, bytes(65536),
    list(range(16)), {f"k{i:02d}": i for i in range(16)}, {"nested": {"x": [1, 2.5]}},
]

ZMTP = {
    "zmtp_greeting": (zmtp.GREETING, "client greeting: ZMTP 3.1, NULL mechanism, as-server 0"),
    "zmtp_ready_dealer": (zmtp.ready("DEALER"), "READY command with Socket-Type DEALER (client sends)"),
    "zmtp_ready_router": (zmtp.ready("ROUTER"), "READY command with Socket-Type ROUTER (daemon sends)"),
    "zmtp_ping": (zmtp.ping(100, b"ab"), "PING, TTL 10 s (100 ds), context 'ab'"),
    "zmtp_pong": (zmtp.pong(b"ab"), "PONG answering zmtp_ping"),
    "zmtp_error": (zmtp.error("bad"), "ERROR command, reason 'bad'"),
    "zmtp_message_hello": (zmtp.message([p.pack(MESSAGES["hello"][1])]), "hello.msgpack as one short frame"),
    "zmtp_message_frame": (zmtp.message(MESSAGES["frame"][1]), "frame: header (MORE) + 24-byte pixel frame"),
    "zmtp_long_frame": (zmtp.message([bytes(range(256)) + bytes(44)]), "one 300-byte frame: LONG flag"),
}


def meaning(obj):
    if isinstance(obj, bytes):
        return {"$bin": obj.hex()}
    if isinstance(obj, dict):
        return {k: meaning(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [meaning(v) for v in obj]
    return obj


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for name, (direction, msg) in MESSAGES.items():
        frames = msg if isinstance(msg, list) else [p.pack(msg)]
        files = [f"{name}.msgpack"] + [f"{name}.payload.bin"] * (len(frames) - 1)
        for f, data in zip(files, frames):
            (out / f).write_bytes(data)
        index.append({"name": name, "kind": "message", "direction": direction, "files": files,
                      "meaning": meaning(msgpack.unpackb(frames[0], raw=False))})
    (out / "msgpack_values.msgpack").write_bytes(msgpack.packb(VALUES, use_bin_type=True))
    index.append({"name": "msgpack_values", "kind": "values", "files": ["msgpack_values.msgpack"],
                  "meaning": meaning(VALUES)})
    for name, (data, what) in ZMTP.items():
        (out / f"{name}.bin").write_bytes(data)
        index.append({"name": name, "kind": "zmtp", "files": [f"{name}.bin"], "meaning": what})
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
