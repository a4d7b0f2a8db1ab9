"""How a player moves: the one kinematics behind the maze's collisions and the models' dead reckoning.

One controller tick turns by `look` (yaw right, pitch up, pitch clamped), then walks along the new heading by
`move` (strafe right, forward), each clipped to [-1, 1] and the pair to unit length, at WALK_SPEED (times
RUN_FACTOR with BUTTON_RUN). The maze resolves the displacement against its walls
(runtime/maze/world.py); a model has no map to collide with and applies it as it is (`walk`).
"""

from __future__ import annotations

import numpy as np

from runtime.camera import c2w_from_yaw_pitch, yaw_pitch_from_c2w
from runtime.world import BUTTON_RUN, FPS, Action

TICK = 1.0 / FPS  # seconds per step
WALK_SPEED = 1.5  # units per second, forward and strafe alike
RUN_FACTOR = 2.0
EYE_Y = -0.5  # eye height 0.5 above the floor (y points down)
PITCH_LIMIT = 60.0  # degrees


def wrap_degrees(deg: np.ndarray) -> np.ndarray:
    """Angles into [-180, 180)."""
    return (np.asarray(deg, dtype=np.float64) + 180.0) % 360.0 - 180.0


def turn_and_walk(
    yaw: np.ndarray, pitch: np.ndarray, move: np.ndarray, look: np.ndarray, buttons: np.ndarray, dt: float = TICK
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One tick for a batch: yaw, pitch (B,) degrees; move, look (B, 2); buttons (B,) bitmasks.
    Returns the new (yaw, pitch) and the wanted displacement (dx, dz), each (B,). NaN input counts as 0."""
    move = np.clip(np.asarray(move, dtype=np.float64).reshape(-1, 2), -1.0, 1.0)
    look = np.asarray(look, dtype=np.float64).reshape(-1, 2)
    move = np.nan_to_num(move) / np.maximum(1.0, np.linalg.norm(np.nan_to_num(move), axis=1, keepdims=True))
    look = np.nan_to_num(look)
    yaw = wrap_degrees(yaw + look[:, 0])
    pitch = np.clip(pitch + look[:, 1], -PITCH_LIMIT, PITCH_LIMIT)
    run = (np.asarray(buttons, dtype=np.int64).reshape(-1) & BUTTON_RUN) != 0
    dist = WALK_SPEED * dt * np.where(run, RUN_FACTOR, 1.0)
    r = np.radians(yaw)
    fwd_x, fwd_z = np.sin(r), np.cos(r)  # right is (cos, -sin)
    dx = dist * (move[:, 0] * fwd_z + move[:, 1] * fwd_x)
    dz = dist * (-move[:, 0] * fwd_x + move[:, 1] * fwd_z)
    return yaw, pitch, dx, dz


def walk(c2w: np.ndarray, action: Action) -> np.ndarray:
    """Dead reckoning: the (4, 4) camera-to-world after one tick of `action` from `c2w`, with no walls."""
    yaw, pitch = yaw_pitch_from_c2w(c2w)
    yaw, pitch, dx, dz = turn_and_walk(np.array([yaw]), np.array([pitch]), action.move, action.look, action.buttons)
    position = c2w[:3, 3] + np.array([dx[0], 0.0, dz[0]])
    return c2w_from_yaw_pitch(position, float(yaw[0]), float(pitch[0]))


def standing_pose() -> np.ndarray:
    """Where an episode without a start pose begins: eye height over the origin, facing north, level."""
    return c2w_from_yaw_pitch(np.array([0.0, EYE_Y, 0.0]), 0.0, 0.0)
