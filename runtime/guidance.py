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

A model reads them as `features` (colour, nearness, present). A decoder may also read `position`: where each
pixel's surface is in the world, from the depth and the engine's camera pose, as sines and cosines of the world
coordinates at a few frequencies (the phase of every texture that is fixed to the world: brick courses, tiles)
and the surface normal (for the sky: the ray's direction). They are filtered to the pixel's footprint (a
Gaussian of the footprint's width damps each frequency), so far surfaces get smooth features instead of aliased
ones, as a mip-mapped texture would.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from runtime.camera import intrinsics

BUFFERS = ("colour", "depth", "ids")
DEPTH_SCALE = 4.0  # world units over which the model's nearness feature exp(-depth / DEPTH_SCALE) falls by e
FEATURES = 5  # channels of `features`: colour (3), nearness (1), present (1)
POSITION_FREQS = (1.0, 2.0, 4.0, 8.0, 16.0)  # cycles per world unit, doubling (the maze's cell; bricks 4 x 8 a face)
POSITION = 3 + 6 * len(POSITION_FREQS)  # channels of `position`: normal (3), sin and cos of x, y, z per frequency


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


def position(depth: np.ndarray | None, c2w: np.ndarray | None, fov_deg: float, width: int, height: int,
             crop: tuple[int, int, int] | None = None) -> np.ndarray:
    """(POSITION, height, width) float32 position features of one view from its depth (H, W) (any integer
    fraction of the size: repeated up) and (4, 4) camera-to-world (OpenCV axes, the protocol's canonical world):
    the surface normal facing the eye (3), then for each of x, y, z and each frequency k of POSITION_FREQS
    sin(2 pi k c) and cos(2 pi k c), times exp(-2 (pi k s)^2) for a pixel footprint of s world units on the
    surface. Where there is no surface (sky) the first three are the ray's direction instead (what a sky looks
    like depends on it) and the rest zero; all zeros for a view without depth or pose. crop (top, left, size):
    only that square window of the view, (POSITION, size, size) (training crops)."""
    r0, c0, size = crop or (0, 0, 0)
    r1, c1 = (r0 + size, c0 + size) if crop else (height, width)
    out = np.zeros((POSITION, r1 - r0, c1 - c0), np.float32)
    if depth is None or c2w is None:
        return out
    d = resize(np.asarray(depth, np.float32), width, height, 2)[r0:r1, c0:c1]
    hit = np.isfinite(d) & (d > 0)
    d = np.where(hit, d, np.float32(0.0))
    c2w = np.asarray(c2w, np.float64)
    ray = _rays(width, height, fov_deg, r0, r1, c0, c1) @ c2w[:3, :3].T.astype(np.float32)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)  # (h, w, 3) unit, world axes
    local = ray * d[..., None]  # (h, w, 3) from the eye; the eye's own place enters the phase in float64 below
    normal = np.cross(np.gradient(local, axis=1), np.gradient(local, axis=0))
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), np.float32(1e-12))
    facing = np.sum(normal * ray, -1)
    normal *= -np.sign(facing + np.float32(1e-12))[..., None]  # towards the eye
    fy = intrinsics(width, height, fov_deg)[1]
    footprint = d / np.float32(fy) / np.maximum(np.abs(facing), np.float32(0.1))  # (h, w) world units
    out[:3] = np.moveaxis(normal, -1, 0)
    # sin and cos at the lowest frequency from the fractional world coordinate (float64: engines' worlds are
    # large), the others by doubling the angle (the frequencies are successive powers of two)
    frac = (np.moveaxis(local, -1, 0) + (c2w[:3, 3] % 1.0)[:, None, None]) % 1.0  # (3, h, w)
    angle = (2.0 * np.pi * POSITION_FREQS[0] * frac).astype(np.float32)
    sin, cos = np.sin(angle), np.cos(angle)
    for i, f in enumerate(POSITION_FREQS):
        if i:
            sin, cos = 2 * sin * cos, 1 - 2 * sin * sin
        damp = np.exp(np.float32(-2.0 * (np.pi * f) ** 2) * footprint * footprint)
        out[3 + 6 * i : 9 + 6 * i : 2], out[4 + 6 * i : 9 + 6 * i : 2] = sin * damp, cos * damp
    out *= hit
    out[:3] += np.moveaxis(ray, -1, 0) * ~hit
    return out


@functools.lru_cache(maxsize=16)
def _rays(width: int, height: int, fov_deg: float, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """(r1 - r0, c1 - c0, 3) float32 camera-space directions (z = 1) of a window of a view's pixel centres."""
    fx, fy, cx, cy = intrinsics(width, height, fov_deg)
    v, u = np.mgrid[r0:r1, c0:c1] + 0.5
    return np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1).astype(np.float32)


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
