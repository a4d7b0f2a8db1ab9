"""Engine camera poses <-> the canonical convention. The only place where coordinate conventions meet.

Canonical (docs/protocol.md, "Coordinates"): OpenCV camera-to-world, camera x right / y down / z forward, in a
right-handed world with x east, y down, z north. Both engines' "forward at identity" maps to +z and their up to
-y, so one scene built in either engine lands in the same canonical place.

- unity:  left-handed, Y up, camera looks +Z.   world (x, y, z) -> (x, -y, z);  camera axes the same flip.
- godot:  right-handed, Y up, camera looks -Z.  world (x, y, z) -> (x, -y, -z); camera axes the same flip.
- opencv: already canonical.

With W the world flip and C the camera-axis flip (both diagonal, their own inverses):
    c2w_canonical = W @ c2w_engine @ C,   c2w_engine = W @ c2w_canonical @ C.
"""

from __future__ import annotations

import numpy as np

ENGINES = ("unity", "godot", "opencv")

_FLIPS = {
    "unity": (np.diag([1.0, -1.0, 1.0]), np.diag([1.0, -1.0, 1.0])),
    "godot": (np.diag([1.0, -1.0, -1.0]), np.diag([1.0, -1.0, -1.0])),
    "opencv": (np.eye(3), np.eye(3)),
}


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(x, y, z, w) unit quaternion -> (3, 3) rotation. Hamilton convention, as Unity and Godot use."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (x, y, z, w) unit quaternion with w >= 0."""
    t = np.trace(m)
    if t > 0:
        s = 2.0 * np.sqrt(1.0 + t)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def to_canonical(engine: str, position, quaternion) -> np.ndarray:
    """Engine pose (position xyz, rotation quaternion xyzw) -> (4, 4) canonical camera-to-world."""
    world, cam = _FLIPS[engine]
    m = np.eye(4)
    m[:3, :3] = world @ quat_to_matrix(quaternion) @ cam
    m[:3, 3] = world @ np.asarray(position, dtype=np.float64)
    return m


def from_canonical(engine: str, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) canonical camera-to-world -> engine (position xyz, quaternion xyzw)."""
    world, cam = _FLIPS[engine]
    return world @ c2w[:3, 3], matrix_to_quat(world @ c2w[:3, :3] @ cam)
