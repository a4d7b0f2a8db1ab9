"""An exploration policy that looks like play, for generating training data in the maze.

A player walks to goals along shortest paths (long loops, corridors, rooms), sometimes runs, and now and then
does what people do: stops, looks around and up/down, strafes, walks into a wall, goes back somewhere seen
before. It observes only what a client observes (the frame's camera pose) plus the level's map for planning.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from runtime.camera import yaw_pitch_from_c2w
from runtime.motion import wrap_degrees
from runtime.world import BUTTON_RUN, Action

TURN_DEG = 7.0  # most a player turns in one 1/16 s tick while walking (~110 deg/s)
INTERLUDES = ("look_around", "strafe", "idle", "bump")  # between stretches of walking to a goal
INTERLUDE_P = (0.35, 0.25, 0.2, 0.2)


def shortest_path(solid: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells from start (exclusive) to goal (inclusive) over free cells, 4-connected; [] if unreachable."""
    n, m = solid.shape
    prev = {start: start}
    queue = deque([start])
    while queue:
        c = queue.popleft()
        if c == goal:
            break
        for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nb = (c[0] + d[0], c[1] + d[1])
            if 0 <= nb[0] < n and 0 <= nb[1] < m and not solid[nb] and nb not in prev:
                prev[nb] = c
                queue.append(nb)
    if goal not in prev:
        return []
    path = [goal]
    while path[-1] != start:
        path.append(prev[path[-1]])
    return path[-2::-1]


@dataclass
class Player:
    """One episode's player. Call act(pose) once per tick with the pose of the last frame."""

    solid: np.ndarray  # (size, size) bool, [i, j] = cell at x in [i, i+1], z in [j, j+1]
    rng: np.random.Generator
    mode: str = "navigate"
    timer: int = 0
    path: list[tuple[int, int]] = field(default_factory=list)
    visited: list[tuple[int, int]] = field(default_factory=list)
    running: bool = False
    sweep: tuple[float, float] = (0.0, 0.0)  # (yaw, pitch) degrees per tick while looking around
    strafe: float = 0.0

    def act(self, c2w: np.ndarray) -> Action:
        x, z = float(c2w[0, 3]), float(c2w[2, 3])
        yaw, pitch = yaw_pitch_from_c2w(c2w)
        cell = (int(math.floor(x)), int(math.floor(z)))
        if self.timer <= 0:
            self._next_mode(cell)
        self.timer -= 1
        level_pitch = float(np.clip(-pitch * 0.15, -3, 3))  # drift back towards the horizon
        if self.mode == "look_around":
            return Action(look=self.sweep)
        if self.mode == "strafe":
            return Action(move=(self.strafe, 0.0), look=(self.rng.normal(0, 1.0), level_pitch))
        if self.mode == "idle":
            return Action(look=(self.rng.normal(0, 0.3), level_pitch))
        if self.mode == "bump":
            return Action(move=(0.0, 1.0), look=(0.0, level_pitch))
        return self._navigate(x, z, yaw, cell, level_pitch)

    def _next_mode(self, cell: tuple[int, int]) -> None:
        if self.mode == "navigate" and self.rng.random() < 0.3:
            self.mode = str(self.rng.choice(INTERLUDES, p=INTERLUDE_P))
            self.timer = int(self.rng.integers(8, 40))
            self.sweep = (float(self.rng.choice([-1, 1]) * self.rng.uniform(2, 6)), float(self.rng.uniform(-2.5, 2.5)))
            self.strafe = float(self.rng.choice([-1.0, 1.0]))
            return
        self.mode = "navigate"
        self.timer = int(self.rng.integers(16, 64))
        if not self.path:
            self._plan(cell)

    def _plan(self, cell: tuple[int, int]) -> None:
        """A new goal: mostly somewhere new and far, sometimes back to a place already seen."""
        if self.visited and self.rng.random() < 0.3:
            goal = self.visited[int(self.rng.integers(len(self.visited)))]
        else:
            free = np.argwhere(~self.solid)
            goal = tuple(int(v) for v in free[int(self.rng.integers(len(free)))])
        self.path = shortest_path(self.solid, cell, goal) if not self.solid[cell] else []
        self.visited.append(goal)
        self.running = self.rng.random() < 0.25

    def _navigate(self, x: float, z: float, yaw: float, cell: tuple[int, int], level_pitch: float) -> Action:
        while self.path and self.path[0] == cell:
            self.path.pop(0)
        if not self.path:
            self._plan(cell)
        if not self.path:  # goal is here already
            return Action(look=(0.0, level_pitch))
        ti, tj = self.path[0]
        want = math.degrees(math.atan2(ti + 0.5 - x, tj + 0.5 - z))  # yaw 0 = +z (north), 90 = +x (east)
        err = float(wrap_degrees(want - yaw))
        turn = float(np.clip(err, -TURN_DEG, TURN_DEG) + self.rng.normal(0, 0.5))
        forward = 1.0 if abs(err) < 25 else 0.25 if abs(err) < 60 else 0.0
        return Action(move=(0.0, forward), look=(turn, level_pitch), buttons=BUTTON_RUN if self.running else 0)
