"""Guidance buffers: what the engine knows about the view a frame is rendered from, for worlds that render it.

The engine owns the state (geometry, camera) and sends, with an input, cheap buffers of its current camera; a
guided world (a model trained with them, runtime/neural/) renders the final look from them. The maze renders
the same buffers as ground truth (runtime/maze/render.py). On the wire they are protocol 1.3's `guidance`
(docs/protocol.md, section 4c); bridge/server/ converts them to this type.

    colour  (H, W, 3) uint8   a cheap colour render: flat colour per material, unlit, no fog
    depth   (H, W) float32    distance from the eye along the pixel's ray, in world units (metres); inf (or any
                              value <= 0) where there is no surface (sky)
    ids     (H, W) uint16     semantic / material id per pixel (the world's own table; the maze's: render.py)

A buffer may be absent (None); a guided world says which ones it reads (World.guidance_buffers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUFFERS = ("colour", "depth", "ids")
DEPTH_SCALE = 4.0  # world units over which the model's nearness feature exp(-depth / DEPTH_SCALE) falls by e
FEATURES = 5  # channels of `features`: colour (3), nearness (1), present (1)


@dataclass(frozen=True)
class Guidance:
    """Guidance buffers of one view (shapes above), or of B views with a leading B axis."""

    colour: np.ndarray | None = None
    depth: np.ndarray | None = None
    ids: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the buffers that are present."""
        shapes = [b.shape[-2:] for b in (self.depth, self.ids) if b is not None]
        if self.colour is not None:
            shapes.append(self.colour.shape[-3:-1])
        if not shapes:
            raise ValueError("guidance has no buffers")
        return int(shapes[0][1]), int(shapes[0][0])


def nearness(depth: np.ndarray) -> np.ndarray:
    """depth (...) -> exp(-depth / DEPTH_SCALE) in [0, 1] float32: 1 at the eye, 0 far away and where there is
    no surface (inf, <= 0, NaN), so the model sees a bounded number whatever the engine's far plane."""
    d = np.asarray(depth, dtype=np.float32)
    near = np.exp(-np.where(np.isfinite(d) & (d > 0), d, np.inf) / DEPTH_SCALE)
    return near.astype(np.float32)


def features(g: Guidance | None, width: int, height: int) -> np.ndarray:
    """The model's view of a guidance of one view, or of B views: (..., FEATURES, height, width) float32 with
    channels colour in [-1, 1] (3), nearness in [-1, 1] (1) and present (1: 1 where guidance was given).
    Buffers of a fraction of the size are repeated up (nearest). None, or a guidance without colour or depth,
    gives all zeros (no guidance) for one view."""
    if g is None or g.colour is None or g.depth is None:
        return np.zeros((FEATURES, height, width), np.float32)
    colour = resize(np.asarray(g.colour, np.uint8), width, height, 3)  # (..., H, W, 3)
    depth = resize(np.asarray(g.depth, np.float32), width, height, 2)  # (..., H, W)
    out = np.empty(depth.shape[:-2] + (FEATURES, height, width), np.float32)
    out[..., :3, :, :] = np.moveaxis(colour, -1, -3) / 127.5 - 1.0
    out[..., 3, :, :] = nearness(depth) * 2.0 - 1.0
    out[..., 4, :, :] = 1.0
    return out


def resize(buf: np.ndarray, width: int, height: int, axis: int) -> np.ndarray:
    """Nearest-neighbour resize of a buffer whose rows and columns are the axes -axis and -axis + 1 (colour: 3,
    depth and ids: 2): ids and depth must not be blended across edges, and the sizes the protocol allows are
    integer fractions (each pixel is repeated). Shared by the model's features and the daemon's recorder."""
    h, w = buf.shape[-axis], buf.shape[-axis + 1]
    if (h, w) == (height, width):
        return buf
    rows = (np.arange(height) * h) // height
    cols = (np.arange(width) * w) // width
    return np.take(np.take(buf, rows, axis=buf.ndim - axis), cols, axis=buf.ndim - axis + 1)
