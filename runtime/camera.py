"""Camera math in the canonical convention (OpenCV camera-to-world, world x east, y down, z north)."""

from __future__ import annotations

import math

import numpy as np


def c2w_from_yaw_pitch(position: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(4, 4) camera-to-world for a camera at `position` turned `yaw_deg` to the right of north and tilted
    `pitch_deg` up. Yaw 0, pitch 0 looks along +z with the image's down along +y."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    cy, sy, cp, sp = math.cos(y), math.sin(y), math.cos(p), math.sin(p)
    right = np.array([cy, 0.0, -sy])
    forward = np.array([sy * cp, -sp, cy * cp])
    down = np.cross(forward, right)  # OpenCV is right-handed: z x x = y
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, down, forward, position
    return m


def yaw_pitch_from_c2w(c2w: np.ndarray) -> tuple[float, float]:
    """Inverse of c2w_from_yaw_pitch for the forward axis (roll is dropped)."""
    f = c2w[:3, 2]
    yaw = math.degrees(math.atan2(f[0], f[2]))
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, -f[1]))))
    return yaw, pitch


def intrinsics(width: int, height: int, fov_deg: float) -> tuple[float, float, float, float]:
    """Pinhole (fx, fy, cx, cy) in pixels for a vertical field of view; square pixels."""
    fy = 0.5 * height / math.tan(math.radians(fov_deg) / 2)
    return fy, fy, width / 2, height / 2


def checked_pose(pose: np.ndarray) -> np.ndarray:
    """A copy of `pose` as (4, 4) float64; ValueError unless it is a finite (4, 4) camera-to-world."""
    m = np.array(pose, dtype=np.float64)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise ValueError(f"a pose must be a finite (4, 4) camera-to-world, got shape {m.shape}")
    return m


# Points of a camera's view that frustum_overlap projects into other cameras: a 6x6 grid of directions across the
# image at three distances (world units), so near and far overlap both count.
_OVERLAP_GRID = 6
_OVERLAP_DEPTHS = (1.0, 2.5, 5.0)


def frustum_overlap(query: np.ndarray, others: np.ndarray, fov_deg: float, aspect: float = 1.0) -> np.ndarray:
    """How much of what camera `query` (4, 4) sees, camera by camera of `others` (E, 4, 4) also sees: the share
    of sample points of the query's view (a grid of its pixels at a few distances, module constants) that land
    in front of each other camera and inside its image. (E,) float in [0, 1]; walls are ignored, so it is an
    upper bound that ranks views by how they overlap (WorldMem / Context-as-Memory retrieve by such a score)."""
    t = math.tan(math.radians(fov_deg) / 2)
    s = (np.arange(_OVERLAP_GRID) + 0.5) / _OVERLAP_GRID * 2 - 1  # (-1, 1) across the image
    u, v = np.meshgrid(s * t * aspect, s * t, indexing="xy")
    dirs = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1)  # (P, 3) camera space, z forward
    pts = np.concatenate([dirs * d for d in _OVERLAP_DEPTHS])  # (Q, 3)
    world = pts @ query[:3, :3].T + query[:3, 3]  # (Q, 3)
    rot, origin = others[:, :3, :3], others[:, :3, 3]  # (E, 3, 3), (E, 3)
    local = (world[None] - origin[:, None]) @ rot  # (E, Q, 3): R^T (p - o), row by row
    z = local[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = local[..., 0] / (z * t * aspect), local[..., 1] / (z * t)
    inside = (z > 0.1) & (np.abs(x) <= 1) & (np.abs(y) <= 1)
    return inside.mean(1)
