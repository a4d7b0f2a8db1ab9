"""Wire protocol v1: message schemas, msgpack encoding and validation (docs/protocol.md is the spec).

A message is one or two ZeroMQ frames: a msgpack map with a "type" key, then, for messages that carry pixels
(frame, reset or input with an image), the raw pixel bytes. Every check a client's message can fail raises
ProtocolError with a stable numeric code; the daemon turns it into an "error" reply for that client only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

import msgpack
import numpy as np

from bridge.protocol.poses import ENGINES

# 1.1: recording (record_start / record_stop, input with an image); 1.2: prompt; 1.3: guidance buffers
MAJOR, MINOR = 1, 3
MAX_PROMPT_BYTES = 2000  # a prompt (hello, reset) is at most this many bytes as UTF-8
FORMATS = ("rgb8", "rgba8", "jpeg")
ROW_ORDERS = ("top_down", "bottom_up")
# 1.3: an input's guidance buffers (section 4c), in the order of the map's keys, and the depth encodings
GUIDANCE_BUFFERS = ("colour", "depth", "ids")
DEPTH_FORMATS = {"f32": "<f4", "f16": "<f2"}  # little-endian IEEE 754
CLIENT_TYPES = ("hello", "input", "credit", "reset", "ping", "bye", "record_start", "record_stop")


class ErrorCode(IntEnum):
    MALFORMED = 400  # not msgpack, not a map, no string "type", wrong number of frames
    UNAUTHORIZED = 401  # missing or wrong token
    RECORD_DISABLED = 403  # recording asked of a daemon without a recording directory
    UNKNOWN_TYPE = 404  # "type" names no message of this protocol
    EXPIRED = 408  # session reaped after the idle timeout
    NO_SESSION = 409  # a message other than hello before the handshake
    RECORD_STATE = 412  # record_start while recording, record_stop or an input image while not recording
    TOO_LARGE = 413  # message over max_message_bytes
    BAD_FIELD = 422  # missing, wrong type, out of range, NaN/inf
    VERSION = 426  # incompatible protocol major version
    RECORD_BUSY = 429  # the recording writer is behind: this input's image was not recorded
    WORLD_ERROR = 500  # the world failed while stepping this session
    UNAVAILABLE = 503  # max sessions reached, the daemon is shutting down, or the world lost this session's host
    RECORD_FULL = 507  # the recording reached its frame or byte limit: later images are not recorded


class ProtocolError(Exception):
    def __init__(self, code: ErrorCode, message: str, ref: str = ""):
        super().__init__(f"{code.name.lower()} ({int(code)}): {message}")
        self.code, self.message, self.ref = code, message, ref


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 4 << 20
    max_sessions: int = 32
    idle_timeout_s: float = 60.0
    max_credits: int = 16
    max_width: int = 1024
    max_height: int = 1024


# ---------------------------------------------------------------------------------------------- encoding


def pack(msg: dict[str, Any]) -> bytes:
    """Encode one message map. Keys keep their order; ints use the smallest encoding, floats are float64."""
    return msgpack.packb(msg, use_bin_type=True)


def unpack(data: bytes, limits: Limits = Limits()) -> dict[str, Any]:
    """Decode one message map; raises ProtocolError (MALFORMED, TOO_LARGE)."""
    if len(data) > limits.max_message_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"message is {len(data)} bytes, limit {limits.max_message_bytes}")
    try:
        # Bound every container so a hostile length prefix cannot make the decoder allocate.
        msg = msgpack.unpackb(
            data, raw=False, strict_map_key=True,
            max_array_len=4096, max_map_len=256, max_str_len=1 << 16, max_bin_len=limits.max_message_bytes,
        )
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise ProtocolError(ErrorCode.MALFORMED, f"not a msgpack message: {e.__class__.__name__}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(ErrorCode.MALFORMED, f"message must be a map, got {type(msg).__name__}")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.MALFORMED, 'message has no string "type"')
    return msg


# -------------------------------------------------------------------------------------------- validation
# Each client message type maps field -> (kind, required, default). Unknown fields are ignored so that minor
# versions can add fields; everything listed is checked.

_POSE = "pose"
_SCHEMAS: dict[str, dict[str, tuple[str, bool, Any]]] = {
    "hello": {
        "major": ("int", True, None),
        "minor": ("int", True, None),
        "client": ("name", True, None),
        "engine": (ENGINES, True, None),
        "width": ("width", True, None),
        "height": ("height", True, None),
        "format": (FORMATS, True, None),
        "row_order": (ROW_ORDERS, False, "top_down"),
        "credits": ("credits0", False, 0),
        "capabilities": ("strlist", False, []),
        "token": ("str", False, ""),
        "jpeg_quality": ("quality", False, 85),
        "seed": ("int", False, 0),
        "prompt": ("prompt", False, ""),  # 1.2: the scene in text ("prompt" worlds); empty: keep the default
    },
    "input": {
        "seq": ("uint", True, None),
        "t": ("float", False, 0.0),
        "move": ("vec2", False, [0.0, 0.0]),
        "look": ("vec2", False, [0.0, 0.0]),
        "buttons": ("uint32", False, 0),
        "pose": (_POSE, False, None),
        "fov_deg": ("fov", False, None),
        "image": ("image", False, None),  # 1.1: the engine's own frame, recorded while recording
        "guidance": ("guidance", False, None),  # 1.3: the engine's buffers of this camera (section 4c)
    },
    "credit": {"n": ("credits", True, None)},
    "reset": {
        "seed": ("int", False, 0),
        "pose": (_POSE, False, None),
        "image": ("image", False, None),
        "prompt": ("prompt", False, ""),  # 1.2: empty keeps the session's prompt
    },
    "ping": {"t": ("float", False, 0.0)},
    "bye": {},
    # the name is only a wish: the daemon sanitizes it and picks the directory itself
    "record_start": {"name": ("str", False, "")},
    "record_stop": {},
}



def _check(kind: Any, name: str, v: Any, limits: Limits) -> Any:
    def bad(why: str) -> ProtocolError:
        return ProtocolError(ErrorCode.BAD_FIELD, f'"{name}" {why}')

    def num(x: Any, what: str) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise bad(f"must be a number, got {type(x).__name__}")
        x = float(x)
        if not math.isfinite(x):
            raise bad(f"must be finite, got {x}")
        return x

    def integer(x: Any, lo: int, hi: int) -> int:
        if isinstance(x, bool) or not isinstance(x, int):
            raise bad(f"must be an integer, got {type(x).__name__}")
        if not lo <= x <= hi:
            raise bad(f"must be in [{lo}, {hi}], got {x}")
        return x

    if isinstance(kind, tuple):  # enum of strings
        if v not in kind:
            raise bad(f"must be one of {', '.join(kind)}; got {v!r}")
        return v
    if kind == "int":
        return integer(v, -(1 << 63), (1 << 63) - 1)
    if kind == "uint":
        return integer(v, 0, (1 << 63) - 1)
    if kind == "uint32":
        return integer(v, 0, (1 << 32) - 1)
    if kind == "width":
        return integer(v, 1, limits.max_width)
    if kind == "height":
        return integer(v, 1, limits.max_height)
    if kind == "credits":
        return integer(v, 1, limits.max_credits)
    if kind == "credits0":
        return integer(v, 0, limits.max_credits)
    if kind == "quality":
        return integer(v, 1, 100)
    if kind == "float":
        return num(v, name)
    if kind == "fov":
        f = num(v, name)
        if not 1.0 <= f <= 170.0:
            raise bad(f"must be in [1, 170] degrees, got {f}")
        return f
    if kind == "str":
        if not isinstance(v, str) or len(v) > 1024:
            raise bad("must be a string of at most 1024 characters")
        return v
    if kind == "prompt":
        if not isinstance(v, str) or len(v.encode()) > MAX_PROMPT_BYTES:
            raise bad(f"must be a string of at most {MAX_PROMPT_BYTES} bytes as UTF-8")
        return v
    if kind == "name":
        if not isinstance(v, str) or not 0 < len(v) <= 64:
            raise bad("must be a string of 1 to 64 characters")
        return v
    if kind == "strlist":
        if not isinstance(v, list) or len(v) > 64 or not all(isinstance(s, str) and len(s) <= 64 for s in v):
            raise bad("must be a list of at most 64 short strings")
        return v
    if kind == "vec2":
        if not isinstance(v, list) or len(v) != 2:
            raise bad("must be an array of 2 numbers")
        return [num(x, name) for x in v]
    if kind == _POSE:
        if not isinstance(v, dict):
            raise bad('must be a map {"p": [x, y, z], "q": [x, y, z, w]}')
        p, q = v.get("p"), v.get("q")
        if not (isinstance(p, list) and len(p) == 3 and isinstance(q, list) and len(q) == 4):
            raise bad('must be a map {"p": [x, y, z], "q": [x, y, z, w]}')
        p, q = [num(x, name) for x in p], [num(x, name) for x in q]
        n = math.sqrt(sum(x * x for x in q))
        if not 0.5 < n < 2.0:
            raise bad(f"quaternion must be (close to) unit length, got norm {n:.3g}")
        return {"p": p, "q": q}
    if kind == "image":
        if not isinstance(v, dict):
            raise bad('must be a map {"width", "height", "format", "row_order"}')
        return {
            "width": _check("width", "image.width", v.get("width"), limits),
            "height": _check("height", "image.height", v.get("height"), limits),
            "format": _check(FORMATS, "image.format", v.get("format"), limits),
            "row_order": _check(ROW_ORDERS, "image.row_order", v.get("row_order", "top_down"), limits),
        }
    if kind == "guidance":
        return _check_guidance(v, limits)
    raise AssertionError(f"unknown schema kind {kind}")


def _check_guidance(v: Any, limits: Limits) -> dict[str, Any]:
    """1.3: everything about a guidance map the wire alone decides (sizes against the limits, enums, byte
    counts, NaN depth); what the world takes (its sizes, its buffers) is checked by the daemon
    (bridge/protocol/guidance.py). Returns the map with defaults filled in and absent buffers as None."""
    if not isinstance(v, dict):
        raise ProtocolError(ErrorCode.BAD_FIELD, '"guidance" must be a map {"width", "height", "colour", ...}')
    g = {
        "width": _check("width", "guidance.width", v.get("width"), limits),
        "height": _check("height", "guidance.height", v.get("height"), limits),
        "row_order": _check(ROW_ORDERS, "guidance.row_order", _or(v.get("row_order"), "top_down"), limits),
        "colour": None,
        "depth": None,
        "depth_format": _check(tuple(DEPTH_FORMATS), "guidance.depth_format", _or(v.get("depth_format"), "f32"),
                               limits),
        "ids": None,
    }
    w, h = g["width"], g["height"]
    depth_bytes = np.dtype(DEPTH_FORMATS[g["depth_format"]]).itemsize
    sizes = {"colour": (3, "rgb8"), "depth": (depth_bytes, g["depth_format"]), "ids": (2, "u16")}
    for name in GUIDANCE_BUFFERS:
        data = v.get(name)
        if data is None:
            continue
        per_pixel, what = sizes[name]
        if not isinstance(data, bytes):
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"guidance.{name}" must be bin, got {type(data).__name__}')
        if len(data) != w * h * per_pixel:
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"guidance.{name}" is {len(data)} bytes, expected '
                                f"{w * h * per_pixel} ({w}x{h} {what})")
        g[name] = data
    # NaN is no distance at all (an engine bug): refuse it rather than guess; +inf and <= 0 mean "no surface"
    if g["depth"] is not None and np.isnan(np.frombuffer(g["depth"], DEPTH_FORMATS[g["depth_format"]])).any():
        raise ProtocolError(ErrorCode.BAD_FIELD, '"guidance.depth" holds NaN (send +inf where there is no surface)')
    return g


def _or(v: Any, default: Any) -> Any:
    """nil means the default, inside maps too."""
    return default if v is None else v


def parse(frames: list[bytes], limits: Limits = Limits()) -> tuple[dict[str, Any], bytes | None]:
    """Decode and validate one client message (its ZeroMQ frames, routing id removed).

    Returns (message with defaults filled in, payload frame or None). Raises ProtocolError.
    """
    if not 1 <= len(frames) <= 2:
        raise ProtocolError(ErrorCode.MALFORMED, f"a message is 1 or 2 frames, got {len(frames)}")
    size = sum(len(f) for f in frames)
    if size > limits.max_message_bytes:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"message is {size} bytes, limit {limits.max_message_bytes}")
    raw = unpack(frames[0], limits)
    kind = raw["type"]
    schema = _SCHEMAS.get(kind)
    if schema is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}", kind[:64])
    try:
        msg: dict[str, Any] = {"type": kind}
        for field, (fkind, required, default) in schema.items():
            if field in raw and raw[field] is not None:
                msg[field] = _check(fkind, field, raw[field], limits)
            elif required:
                raise ProtocolError(ErrorCode.BAD_FIELD, f'"{field}" is required in {kind}')
            else:
                msg[field] = default
        payload = frames[1] if len(frames) == 2 else None
        _check_payload(msg, payload)
    except ProtocolError as e:
        e.ref = kind
        raise
    return msg, payload


def _check_payload(msg: dict[str, Any], payload: bytes | None) -> None:
    image = msg.get("image")
    if image is None:
        if payload is not None:
            raise ProtocolError(ErrorCode.MALFORMED, f"{msg['type']} takes no second frame")
        return
    if payload is None:
        raise ProtocolError(ErrorCode.MALFORMED, '"image" needs the pixels as a second frame')
    channels = {"rgb8": 3, "rgba8": 4}.get(image["format"])
    if channels is not None and len(payload) != image["width"] * image["height"] * channels:
        raise ProtocolError(
            ErrorCode.BAD_FIELD,
            f'"image" is {image["width"]}x{image["height"]} {image["format"]}: expected '
            f"{image['width'] * image['height'] * channels} bytes, got {len(payload)}",
        )


# ------------------------------------------------------------------------------------ message builders
# Key order here is the documented order; all clients write keys in the same order so the byte vectors in
# tests/vectors/ hold for every implementation.


def hello(
    client: str, engine: str, width: int, height: int, format: str = "rgb8", row_order: str = "top_down",
    credits: int = 0, capabilities: list[str] | None = None, token: str = "", jpeg_quality: int = 85,
    seed: int = 0, prompt: str = "",
) -> dict[str, Any]:
    msg = {
        "type": "hello", "major": MAJOR, "minor": MINOR, "client": client, "engine": engine,
        "width": width, "height": height, "format": format, "row_order": row_order, "credits": credits,
        "capabilities": capabilities or [], "jpeg_quality": jpeg_quality, "seed": seed,
    }
    if token:
        msg["token"] = token
    if prompt:
        msg["prompt"] = prompt
    return msg


def input_msg(
    seq: int, t: float, move=(0.0, 0.0), look=(0.0, 0.0), buttons: int = 0,
    pose: dict[str, list[float]] | None = None, fov_deg: float | None = None, image: dict | None = None,
    guidance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`guidance` (1.3): a wire map as bridge.protocol.guidance.encode makes it; it is the input's last key."""
    msg = {
        "type": "input", "seq": seq, "t": float(t), "move": [float(x) for x in move],
        "look": [float(x) for x in look], "buttons": buttons,
    }
    if pose is not None:
        msg["pose"] = {"p": [float(x) for x in pose["p"]], "q": [float(x) for x in pose["q"]]}
    if fov_deg is not None:
        msg["fov_deg"] = float(fov_deg)
    if image is not None:
        msg["image"] = image
    if guidance is not None:
        msg["guidance"] = guidance
    return msg


def credit(n: int) -> dict[str, Any]:
    return {"type": "credit", "n": n}


def reset(seed: int = 0, pose: dict | None = None, image: dict | None = None, prompt: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "reset", "seed": seed}
    if pose is not None:
        msg["pose"] = pose
    if image is not None:
        msg["image"] = image
    if prompt:
        msg["prompt"] = prompt
    return msg


def record_start(name: str = "") -> dict[str, Any]:
    msg = {"type": "record_start"}
    if name:
        msg["name"] = name
    return msg


def record_stop() -> dict[str, Any]:
    return {"type": "record_stop"}


def ping(t: float) -> dict[str, Any]:
    return {"type": "ping", "t": float(t)}


def bye() -> dict[str, Any]:
    return {"type": "bye"}


def welcome(
    session: str, world: str, width: int, height: int, format: str, row_order: str, jpeg_quality: int,
    fov_deg: float, capabilities: list[str], limits: Limits, guidance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`guidance` (1.3, guided worlds only): bridge.protocol.guidance.offer's map, the key after `limits`."""
    msg = {
        "type": "welcome", "major": MAJOR, "minor": MINOR, "session": session, "world": world,
        "width": width, "height": height, "format": format, "row_order": row_order,
        "jpeg_quality": jpeg_quality, "fov_deg": float(fov_deg), "capabilities": list(capabilities),
        "limits": {k: (float(v) if isinstance(v, float) else v) for k, v in asdict(limits).items()},
    }
    if guidance is not None:
        msg["guidance"] = guidance
    return msg


def frame(
    seq: int, input_seq: int, input_t: float, episode: int, width: int, height: int, format: str,
    row_order: str, pose: dict[str, list[float]], timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "type": "frame", "seq": seq, "input_seq": input_seq, "input_t": float(input_t), "episode": episode,
        "width": width, "height": height, "format": format, "row_order": row_order,
        "pose": {"p": [float(x) for x in pose["p"]], "q": [float(x) for x in pose["q"]]},
        "timings": {k: float(v) for k, v in timings.items()},
    }


def reset_ok(episode: int, seed: int) -> dict[str, Any]:
    return {"type": "reset_ok", "episode": episode, "seed": seed}


def record_ok(name: str, width: int, height: int, max_frames: int, max_bytes: int) -> dict[str, Any]:
    return {"type": "record_ok", "name": name, "width": width, "height": height, "max_frames": max_frames,
            "max_bytes": max_bytes}


def record_done(name: str, path: str, frames: int, episodes: int) -> dict[str, Any]:
    return {"type": "record_done", "name": name, "path": path, "frames": frames, "episodes": episodes}


def pong(t: float, server_time: float) -> dict[str, Any]:
    return {"type": "pong", "t": float(t), "server_time": float(server_time)}


def error(code: ErrorCode, message: str, ref: str = "") -> dict[str, Any]:
    return {"type": "error", "code": int(code), "name": code.name.lower(), "message": message, "ref": ref}
