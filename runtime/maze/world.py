"""The procedural maze as a World: player kinematics, episodes, and ground-truth frames.

The maze is the first world the daemon serves, the simulator that makes training data for the neural world
model, and the ground truth that model is judged against. Layout lives in runtime/maze/level.py, pixels in
runtime/maze/render.py; this module moves players.

The kinematics are a pure function on batches of numpy arrays (`step_kinematics`), so data generation can
advance thousands of episodes at once and MazeWorld is a thin per-session wrapper around the same function.
The player is a square of half-size PLAYER_RADIUS (a circle's bounding box) that collides with wall cells one
axis at a time, which makes it slide along walls; its centre is never closer than the radius to any wall.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from runtime.camera import c2w_from_yaw_pitch, checked_pose, yaw_pitch_from_c2w
from runtime.maze.level import MazeLevel
from runtime.maze.render import MazeRenderer
from runtime.motion import EYE_Y, TICK, turn_and_walk, wrap_degrees
from runtime.world import Action, Frame, World

PLAYER_RADIUS = 0.2
MIN_SIDE, MAX_SIDE = 16, 1024  # frame size bounds, pixels per side
MIN_FOV, MAX_FOV = 5.0, 170.0
_EPS = 1e-6  # gap kept between the player's box and a wall face


@dataclass
class PlayerState:
    """A batch of players; every field is (B,) float64. Position is the eye; yaw turns right from north (+z),
    pitch looks up."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    yaw: np.ndarray  # degrees in [-180, 180)
    pitch: np.ndarray  # degrees

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int | slice | np.ndarray) -> PlayerState:
        return PlayerState(*(np.atleast_1d(a[idx]).copy() for a in (self.x, self.y, self.z, self.yaw, self.pitch)))

    @classmethod
    def concat(cls, states: Sequence[PlayerState]) -> PlayerState:
        return cls(*(np.concatenate([getattr(s, f) for s in states]) for f in ("x", "y", "z", "yaw", "pitch")))

    @classmethod
    def from_c2w(cls, c2w: np.ndarray) -> PlayerState:
        """From (B, 4, 4) or (4, 4) camera-to-world; roll is dropped."""
        c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)
        yp = np.array([yaw_pitch_from_c2w(m) for m in c2w]).reshape(-1, 2)
        t = c2w[:, :3, 3]
        return cls(t[:, 0].copy(), t[:, 1].copy(), t[:, 2].copy(), wrap_degrees(yp[:, 0]), yp[:, 1].copy())

    def c2w(self) -> np.ndarray:
        """(B, 4, 4) camera-to-world, the batched twin of runtime.camera.c2w_from_yaw_pitch (equal to within
        float rounding; MazeWorld itself calls c2w_from_yaw_pitch so its frames match it bit for bit)."""
        y, p = np.radians(self.yaw), np.radians(self.pitch)
        cy, sy, cp, sp = np.cos(y), np.sin(y), np.cos(p), np.sin(p)
        zero = np.zeros_like(cy)
        right = np.stack([cy, zero, -sy], axis=-1)  # (B, 3)
        forward = np.stack([sy * cp, -sp, cy * cp], axis=-1)
        down = np.cross(forward, right)
        m = np.tile(np.eye(4), (len(self), 1, 1))
        m[:, :3, 0], m[:, :3, 1], m[:, :3, 2] = right, down, forward
        m[:, :3, 3] = np.stack([self.x, self.y, self.z], axis=-1)
        return m


def _solid_at(solid: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Cell lookup where everything outside the grid is wall."""
    n = solid.shape[0]
    inside = (i >= 0) & (i < n) & (j >= 0) & (j < n)
    return ~inside | solid[np.clip(i, 0, n - 1), np.clip(j, 0, n - 1)]


def _move_axis(a: np.ndarray, b: np.ndarray, da: np.ndarray, solid_ab: np.ndarray, radius: float) -> np.ndarray:
    """Move coordinate `a` by `da` (|da| < 1 - 2 * radius) with `b` fixed; `solid_ab` is indexed [a cell, b cell].

    The box's leading edge may not enter a new solid cell: it stops just short of that cell's face. A box that
    already overlaps a wall (placed there by a pose) may move, so it can walk out, but cannot enter another."""
    sgn = np.sign(da)
    lead_old = np.floor(a + sgn * radius).astype(np.int64)
    new = a + da
    cell = np.floor(new + sgn * radius).astype(np.int64)
    b0 = np.floor(b - radius + _EPS).astype(np.int64)
    b1 = np.floor(b + radius - _EPS).astype(np.int64)
    blocked = (_solid_at(solid_ab, cell, b0) | _solid_at(solid_ab, cell, b1)) & (cell != lead_old) & (da != 0)
    stop = np.where(sgn > 0, cell - radius - _EPS, cell + 1 + radius + _EPS)
    return np.where(blocked, stop, new)


def move_with_collision(
    x: np.ndarray, z: np.ndarray, dx: np.ndarray, dz: np.ndarray, solid: np.ndarray, radius: float = PLAYER_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """Displace (B,) positions by (dx, dz), sliding along walls: x first, then z from the new x. Moves longer than
    a cell allows are split into sub-steps, counted per player so no player's result depends on the others."""
    x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
    dx, dz = np.asarray(dx, dtype=np.float64), np.asarray(dz, dtype=np.float64)
    steps = np.maximum(1, np.ceil(np.maximum(np.abs(dx), np.abs(dz)) / (0.5 - radius)))  # (B,)
    for k in range(int(steps.max(initial=1))):
        live = k < steps
        x = _move_axis(x, z, np.where(live, dx / steps, 0.0), solid, radius)
        z = _move_axis(z, x, np.where(live, dz / steps, 0.0), solid.T, radius)
    return x, z


def step_kinematics(
    state: PlayerState,
    move: np.ndarray,
    look: np.ndarray,
    buttons: np.ndarray,
    solid: np.ndarray,
    dt: float = TICK,
) -> PlayerState:
    """One controller tick for a batch (runtime/motion.py: turn, then walk), the walk resolved against the walls.
    move, look: (B, 2); buttons: (B,). Pure: returns a new state."""
    yaw, pitch, dx, dz = turn_and_walk(state.yaw, state.pitch, move, look, buttons, dt)
    x, z = move_with_collision(state.x, state.z, dx, dz, solid)
    return PlayerState(x, state.y.copy(), z, yaw, pitch)


def stack_actions(actions: Sequence[Action]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(move (B, 2), look (B, 2), buttons (B,)) arrays for step_kinematics from a list of Actions."""
    move = np.array([a.move for a in actions], dtype=np.float64).reshape(-1, 2)
    look = np.array([a.look for a in actions], dtype=np.float64).reshape(-1, 2)
    return move, look, np.array([a.buttons for a in actions], dtype=np.int64)


def spawn(level: MazeLevel, seed: int) -> PlayerState:
    """Start of an episode from its seed: a random free cell, jittered inside it, facing roughly down one of
    its open directions (a start facing a wall point-blank teaches nothing)."""
    rng = np.random.default_rng(int(seed) % 2**64)  # negative seeds are seeds too
    cells = level.free_cells
    i, j = (int(v) for v in cells[rng.integers(len(cells))])
    open_dirs = [(di, dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)) if level.is_free(i + di + 0.5, j + dj + 0.5)]
    di, dj = open_dirs[rng.integers(len(open_dirs))] if open_dirs else (0, 1)
    yaw = math.degrees(math.atan2(di, dj)) + rng.uniform(-25.0, 25.0)
    jitter = 0.5 - PLAYER_RADIUS - 0.05
    x, z = i + 0.5 + rng.uniform(-jitter, jitter), j + 0.5 + rng.uniform(-jitter, jitter)
    a = np.array
    return PlayerState(a([x]), a([EYE_Y]), a([z]), wrap_degrees(a([yaw])), a([0.0]))


def spawn_batch(level: MazeLevel, seeds: Sequence[int]) -> PlayerState:
    """spawn for many seeds at once (B = len(seeds))."""
    return PlayerState.concat([spawn(level, s) for s in seeds])


def clamp_fov(fov_deg: float | None, default: float) -> float:
    """A requested vertical fov clamped to what renders sensibly; `default` when None or not finite."""
    if fov_deg is None or not math.isfinite(fov_deg):
        return default
    return min(MAX_FOV, max(MIN_FOV, float(fov_deg)))


@dataclass
class _Episode:
    state: PlayerState  # B = 1
    width: int
    height: int
    c2w: np.ndarray  # (4, 4) pose of the latest frame (or the start)


class MazeWorld(World):
    """Many episodes in one procedural level. Same level seed, episode seed and actions -> identical frames.

    Controller steps run step_kinematics at TICK seconds per step. An Action with a pose places the camera there
    exactly (no collision, roll kept for that frame); the player then continues from its position, height, yaw
    and pitch when later steps have no pose. Action.fov_deg overrides fov_deg for that step (clamped to
    MIN_FOV..MAX_FOV). Frames of the same size and fov are rendered in one render_batch call.

    style: the level's look (runtime/maze/level.py STYLES): "default" is the look the shipped model knows,
    "varied" draws palette, fog and sun from the level seed. The layout is the same either way.
    """

    name = "maze"

    def __init__(self, level_seed: int = 0, fov_deg: float = 60.0, size: int = 17, style: str = "default") -> None:
        self.level = MazeLevel(level_seed, size, style)
        self.renderer = MazeRenderer(self.level)
        self.fov_deg = clamp_fov(fov_deg, 60.0)
        self._episodes: dict[Hashable, _Episode] = {}

    def frame_size(self, width: int, height: int) -> tuple[int, int]:
        return min(MAX_SIDE, max(MIN_SIDE, int(width))), min(MAX_SIDE, max(MIN_SIDE, int(height)))

    def reset(
        self,
        key: Hashable,
        seed: int,
        width: int,
        height: int,
        pose: np.ndarray | None = None,
        image: np.ndarray | None = None,  # the maze is its own ground truth; a start image changes nothing
    ) -> None:
        w, h = self.frame_size(width, height)
        if pose is not None:
            c2w = checked_pose(pose)
            state = PlayerState.from_c2w(c2w)
        else:
            state = spawn(self.level, seed)
            c2w = _c2w_of(state)
        self._episodes[key] = _Episode(state, w, h, c2w)

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        missing = [k for k in actions if k not in self._episodes]
        if missing:
            raise KeyError(f"step for episodes that were never reset: {missing!r}")
        # Check every pose before changing any episode, so a bad one leaves the world as it was.
        poses = {k: checked_pose(a.pose) for k, a in actions.items() if a.pose is not None}
        driven = [k for k, a in actions.items() if a.pose is None]
        if driven:
            eps = [self._episodes[k] for k in driven]
            acts = [actions[k] for k in driven]
            new = step_kinematics(PlayerState.concat([e.state for e in eps]), *stack_actions(acts), self.level.solid)
            for b, e in enumerate(eps):
                e.state = new[b]
                e.c2w = _c2w_of(e.state)
        for k, pose in poses.items():  # the engine owns the camera: no collision, controller continues from here
            e = self._episodes[k]
            e.c2w = pose
            e.state = PlayerState.from_c2w(pose)
        # One render_batch per (size, fov) group.
        groups: dict[tuple[int, int, float], list[Hashable]] = {}
        for k, a in actions.items():
            e = self._episodes[k]
            groups.setdefault((e.width, e.height, clamp_fov(a.fov_deg, self.fov_deg)), []).append(k)
        frames: dict[Hashable, Frame] = {}
        for (w, h, fov), keys in groups.items():
            poses = np.stack([self._episodes[k].c2w for k in keys])
            pixels = self.renderer.render_batch(poses, w, h, fov)
            for b, k in enumerate(keys):
                frames[k] = Frame(pixels[b], poses[b].copy())
        return {k: frames[k] for k in actions}

    def close(self, key: Hashable) -> None:
        self._episodes.pop(key, None)

    def pose_of(self, key: Hashable) -> np.ndarray:
        """(4, 4) camera-to-world of the episode's latest frame (its start pose before the first step)."""
        return self._episodes[key].c2w.copy()

    def state_of(self, key: Hashable) -> PlayerState:
        """The episode's player state (B = 1), e.g. to continue it with step_kinematics."""
        return self._episodes[key].state[0:1]  # a copy: changing it does not move the player

    def render(self, c2w: np.ndarray, width: int, height: int, fov_deg: float | None = None) -> np.ndarray:
        """Ground truth for any pose, outside any episode: (H, W, 3) uint8."""
        return self.renderer.render(c2w, width, height, clamp_fov(fov_deg, self.fov_deg))


def _c2w_of(state: PlayerState) -> np.ndarray:
    """(4, 4) pose of a one-player state, through runtime.camera so frames match it exactly."""
    pos = np.array([state.x[0], state.y[0], state.z[0]])
    return c2w_from_yaw_pitch(pos, float(state.yaw[0]), float(state.pitch[0]))
