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
