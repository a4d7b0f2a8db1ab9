"""Protocol 1.3 guidance buffers (docs/protocol.md, section 4c): the wire map <-> plain numpy arrays, both ways.

An input may carry a `guidance` map of inline `bin` buffers (colour rgb8, depth f32/f16, ids uint16, little-endian,
rows in `row_order`). messages.parse checks what the wire alone decides (sizes within the limits, enums, byte
counts, NaN depth); `decode` checks what the world takes (the sizes and buffers its welcome offered) and returns
top-down arrays. This room imports no runtime: bridge/server turns GuidanceBuffers into runtime.guidance.Guidance
(same field names, so either works wherever a client takes guidance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bridge.protocol.messages import DEPTH_FORMATS, GUIDANCE_BUFFERS, ROW_ORDERS, ErrorCode, ProtocolError


@dataclass(frozen=True)
class GuidanceBuffers:
    """Buffers of one view, top row first; any may be None."""

    colour: np.ndarray | None = None  # (H, W, 3) uint8
    depth: np.ndarray | None = None  # (H, W) float32; +inf or <= 0 where there is no surface
    ids: np.ndarray | None = None  # (H, W) uint16


def offer(buffers: tuple[str, ...] | list[str], width: int, height: int,
          scales: tuple[int, ...] | list[int]) -> dict[str, Any]:
    """The welcome's `guidance` map of a guided world: the buffers it reads, its full size, the fractions it takes."""
    return {"buffers": [b for b in GUIDANCE_BUFFERS if b in buffers], "width": int(width), "height": int(height),
            "scales": [int(s) for s in scales]}


def allowed_sizes(offered: dict[str, Any]) -> list[tuple[int, int]]:
    """(width, height) of each scale a welcome's guidance map offers, rounded down; sizes of 0 are left out."""
    sizes = [(offered["width"] // s, offered["height"] // s) for s in offered["scales"] if s >= 1]
    return list(dict.fromkeys(wh for wh in sizes if wh[0] >= 1 and wh[1] >= 1))


def _refuse(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FIELD, message, "input")


def decode(spec: dict[str, Any], offered: dict[str, Any] | None = None) -> GuidanceBuffers:
    """A parsed input's `guidance` (messages.parse's map) -> top-down arrays, checked against the world.

    offered: the welcome's guidance map (None: a world without the capability, which takes any size within the
    limits and needs no buffer). Buffers the world does not read are decoded too (they are checked) and
    returned; the caller drops them. Raises ProtocolError 422 (ref "input") naming the field."""
    w, h = spec["width"], spec["height"]
    if offered is not None:
        sizes = allowed_sizes(offered)
        if (w, h) not in sizes:
            heights = [sh for sw, sh in sizes if sw == w]
            listed = ", ".join(f"{sw}x{sh}" for sw, sh in sizes)
            field = "guidance.height" if heights else "guidance.width"  # the width fits some scale: the height is off
            raise _refuse(f'"{field}" is not an allowed size: {w}x{h}, this world takes {listed}')
        for name in offered["buffers"]:
            if spec.get(name) is None:
                raise _refuse(f'"guidance.{name}" is required: this world reads {", ".join(offered["buffers"])}')
    flip = spec["row_order"] == "bottom_up"

    def rows(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[::-1] if flip else a)  # a copy either way: the message's bytes are freed

    colour = depth = ids = None
    if spec.get("colour") is not None:
        colour = rows(np.frombuffer(spec["colour"], np.uint8).reshape(h, w, 3))
    if spec.get("depth") is not None:
        raw = np.frombuffer(spec["depth"], DEPTH_FORMATS[spec["depth_format"]]).reshape(h, w)
        if np.isnan(raw).any():  # parse refuses it already; a hand-made spec must not slip through either
            raise _refuse('"guidance.depth" holds NaN (send +inf where there is no surface)')
        depth = rows(raw.astype(np.float32))  # f16 -> f32 is exact, +inf stays +inf
    if spec.get("ids") is not None:
        ids = rows(np.frombuffer(spec["ids"], "<u2").reshape(h, w).astype(np.uint16))
    return GuidanceBuffers(colour, depth, ids)


def encode(
    guidance: Any = None, *, colour: np.ndarray | None = None, depth: np.ndarray | None = None,
    ids: np.ndarray | None = None, depth_format: str = "f32", row_order: str = "top_down",
) -> dict[str, Any]:
    """Top-down arrays -> an input's `guidance` map, keys in the documented order.

    guidance: any object with colour/depth/ids attributes (GuidanceBuffers, runtime.guidance.Guidance); or give
    the arrays as keywords. colour (H, W, 3) uint8, depth (H, W) in world units (stored as `depth_format`: f32,
    or f16, where distances over 65504 become +inf, no surface), ids (H, W) uint16. All the same size; at least
    one. Raises ValueError on shapes or options the protocol cannot carry."""
    if guidance is not None:
        colour, depth, ids = guidance.colour, guidance.depth, guidance.ids
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth_format must be one of {', '.join(DEPTH_FORMATS)}, not {depth_format!r}")
    if row_order not in ROW_ORDERS:
        raise ValueError(f"row_order must be one of {', '.join(ROW_ORDERS)}, not {row_order!r}")
    arrays = {"colour": colour, "depth": depth, "ids": ids}
    shapes = {}
    for name, a in arrays.items():
        if a is None:
            continue
        a = np.asarray(a)
        want = 3 if name == "colour" else 2
        if a.ndim != want or (name == "colour" and a.shape[2] != 3):
            raise ValueError(f"guidance {name} must be {'(H, W, 3)' if name == 'colour' else '(H, W)'}, "
                             f"got shape {a.shape}")
        shapes[name] = a.shape[:2]
    if not shapes:
        raise ValueError("guidance needs at least one of colour, depth, ids")
    if len(set(shapes.values())) != 1:
        raise ValueError(f"guidance buffers differ in size: {shapes}")
    h, w = next(iter(shapes.values()))

    def wire(a: Any, dtype: str) -> bytes:
        a = np.asarray(a)
        if dtype == "|u1" or dtype == "<u2":  # ids and colour must fit, not wrap silently
            info = np.iinfo(dtype)
            if a.size and (a.min() < info.min or a.max() > info.max):
                raise ValueError(f"guidance values out of range for {np.dtype(dtype).name}")
        a = a.astype(dtype)
        return (a[::-1] if row_order == "bottom_up" else a).tobytes()

    msg: dict[str, Any] = {"width": int(w), "height": int(h), "row_order": row_order}
    if colour is not None:
        msg["colour"] = wire(colour, "|u1")
    if depth is not None:
        with np.errstate(over="ignore"):  # f16: far beyond 65504 is +inf, which means no surface anyway
            msg["depth"] = wire(depth, DEPTH_FORMATS[depth_format])
        msg["depth_format"] = depth_format
    if ids is not None:
        msg["ids"] = wire(ids, "<u2")
    return msg
