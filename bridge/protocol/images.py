"""Pixel payloads on the wire: rgb8 / rgba8 rows (top_down or bottom_up) and JPEG, both ways.

Frames go out as the client asked at the handshake; images come in with a reset (a start image) or an input
(a recorded engine frame), described by an "image" map {format, width, height, row_order}.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from bridge.protocol.messages import ErrorCode, ProtocolError


def encode(pixels: np.ndarray, format: str, row_order: str, jpeg_quality: int) -> bytes | memoryview:
    """(H, W, 3) uint8 top-down RGB -> the bytes of `format` (no copy when none is needed)."""
    if format == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=jpeg_quality)
        return buf.getvalue()
    if row_order == "bottom_up":
        pixels = pixels[::-1]
    if format == "rgba8":
        out = np.empty(pixels.shape[:2] + (4,), np.uint8)
        out[..., :3], out[..., 3] = pixels, 255
        pixels = out
    return memoryview(np.ascontiguousarray(pixels)).cast("B")


def _open_jpeg(spec: dict[str, Any], data: bytes, ref: str) -> Image.Image:
    """Only the JPEG parser, and the size checked from the header before any pixel is decoded: a few megabytes
    of JPEG can declare 12000x12000 pixels (430 MB decoded)."""
    try:
        jpeg = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Exception as e:
        raise ProtocolError(ErrorCode.BAD_FIELD, f'"image" is not a readable JPEG: {e}', ref) from None
    if jpeg.size != (spec["width"], spec["height"]):
        raise ProtocolError(
            ErrorCode.BAD_FIELD,
            f'"image" says {spec["width"]}x{spec["height"]} but the JPEG is {jpeg.size[0]}x{jpeg.size[1]}',
            ref,
        )
    return jpeg


def check_jpeg(spec: dict[str, Any], data: bytes, ref: str = "input") -> None:
    """Read only the JPEG's header (cheap): a readable JPEG of the size `spec` says, else ProtocolError."""
    _open_jpeg(spec, data, ref)


def decode(spec: dict[str, Any], data: bytes, ref: str = "reset") -> np.ndarray:
    """An image payload -> (H, W, 3) uint8, top row first. Raises ProtocolError on bad pixels."""
    if spec["format"] == "jpeg":
        jpeg = _open_jpeg(spec, data, ref)
        try:
            img = np.asarray(jpeg.convert("RGB"))
        except Exception as e:
            raise ProtocolError(ErrorCode.BAD_FIELD, f'"image" is not a readable JPEG: {e}', ref) from None
    else:
        channels = 3 if spec["format"] == "rgb8" else 4
        img = np.frombuffer(data, np.uint8).reshape(spec["height"], spec["width"], channels)[..., :3]
        if spec["row_order"] == "bottom_up":
            img = img[::-1]
    return np.ascontiguousarray(img)
