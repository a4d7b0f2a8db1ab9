"""The maze's layout: which cells are wall, where the rooms and landmarks are, all from one level seed.

A level is a size x size grid of unit cells. Cell (i, j) covers x in [i, i+1], z in [j, j+1] of the canonical world
(x east, z north, y down); a wall cell is a solid block spanning y in [-1, 0]. The outer ring is always wall.

Generation: a recursive-backtracker maze on the odd lattice (long winding corridors), a few rectangular rooms
(the larger ones get a free-standing pillar), then extra openings whose two sides were far apart in the maze,
so the level has long loops rather than a tree. Landmarks are wall cells with a unique material, spread out by
farthest-point sampling so every region has something recognisable.

A level also names its look (`style`): "default" is the one look every level had so far (the shipped model was
trained on it), "varied" asks the renderer for palette, fog and sun drawn from the seed (runtime/maze/render.py,
MazeLook). The style never changes the layout: MazeLevel(s, n, "varied") has the same cells as MazeLevel(s, n).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

N_BRICK = 8  # materials 0..N_BRICK-1: brick walls with different tints and layouts
LANDMARK_KINDS = ("red_banner", "blue_door", "gold_panel", "green_vines", "purple_mosaic", "orange_lamp")
FREE = -1  # material of a free cell
STYLES = ("default", "varied")  # how a level looks; see MazeLevel.style

_DIRS = ((1, 0), (-1, 0), (0, 1), (0, -1))


@dataclass(frozen=True)
class Landmark:
    kind: str
    cell: tuple[int, int]  # (i, j): the wall cell that carries it
    material: int


@dataclass(frozen=True)
class Room:
    lo: tuple[int, int]  # first cell (i, j)
    hi: tuple[int, int]  # last cell (i, j), inclusive
    style: int  # floor style index


class MazeLevel:
    """One procedural level. Everything is a deterministic function of (seed, size).

    size: cells per side. The corridor lattice sits on odd indices, so odd sizes use every cell; an even size
    leaves a double wall along the east and north edges (harmless, just unused).

    solid (size, size) bool and material (size, size) int16 (FREE, a brick tint < N_BRICK, or a landmark's
    N_BRICK + index into LANDMARK_KINDS) are indexed [i, j] = [x, z]; room_id gives each floor cell's room or -1.

    style: one of STYLES. "default" renders exactly as levels always have; "varied" varies textures' palette, fog
    and sun per seed. Layout is the same for both.
    """

    def __init__(self, seed: int = 0, size: int = 17, style: str = "default") -> None:
        if size < 7:
            raise ValueError(f"maze size must be at least 7, got {size}")
        if style not in STYLES:
            raise ValueError(f"maze style must be one of {STYLES}, got {style!r}")
        self.seed = int(seed)
        self.size = int(size)
        self.style = style
        rng = np.random.default_rng([self.seed % 2**64, self.size, 0x6D617A65])  # any int seed, negatives too
        solid = np.ones((size, size), dtype=bool)  # [i, j] = [x, z]
        _carve_maze(solid, rng)
        self.rooms = _carve_rooms(solid, rng)
        _open_loops(solid, rng, count=max(3, round(size * size / 32)), min_detour=max(8, size // 2))
        _keep_reachable(solid)
        self.solid = solid
        self.material = np.where(solid, rng.integers(0, N_BRICK, (size, size)), FREE).astype(np.int16)
        # One of each kind at most: a landmark seen twice would say two places are one.
        count = min(len(LANDMARK_KINDS), max(4, round(size * size / 42)))
        self.landmarks = _place_landmarks(solid, self.rooms, rng, count)
        for lm in self.landmarks:
            self.material[lm.cell] = lm.material
        self.room_id = np.full((size, size), -1, dtype=np.int16)  # which room a floor cell belongs to
        for k, room in enumerate(self.rooms):
            self.room_id[room.lo[0] : room.hi[0] + 1, room.lo[1] : room.hi[1] + 1] = k
        self.room_id[solid] = -1

    @property
    def free_cells(self) -> np.ndarray:
        """(F, 2) int (i, j) of every walkable cell, in row-major order."""
        return np.argwhere(~self.solid)

    def is_free(self, x: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
        """Whether world points (x, z) lie in a free cell (outside the grid counts as wall)."""
        x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
        i, j = np.floor(x).astype(np.int64), np.floor(z).astype(np.int64)
        inside = (i >= 0) & (i < self.size) & (j >= 0) & (j < self.size)
        return inside & ~self.solid[np.clip(i, 0, self.size - 1), np.clip(j, 0, self.size - 1)]

    def ascii(self) -> str:
        """Top-down map, north up: '#' wall, '.' floor, letters for landmarks (A = first kind)."""
        rows = []
        for j in range(self.size - 1, -1, -1):
            row = []
            for i in range(self.size):
                m = int(self.material[i, j])
                row.append("." if m == FREE else "#" if m < N_BRICK else chr(ord("A") + m - N_BRICK))
            rows.append("".join(row))
        return "\n".join(rows)


def _carve_maze(solid: np.ndarray, rng: np.random.Generator) -> None:
    """Recursive backtracker on the odd lattice: long corridors with few short dead ends."""
    n = solid.shape[0]
    nodes = range(1, n - 1, 2)
    start = (int(rng.choice(list(nodes))), int(rng.choice(list(nodes))))
    solid[start] = False
    stack = [start]
    while stack:
        i, j = stack[-1]
        options = [
            (i + 2 * di, j + 2 * dj, di, dj)
            for di, dj in _DIRS
            if 1 <= i + 2 * di <= n - 2 and 1 <= j + 2 * dj <= n - 2 and solid[i + 2 * di, j + 2 * dj]
        ]
        if not options:
            stack.pop()
            continue
        ni, nj, di, dj = options[int(rng.integers(len(options)))]
        solid[i + di, j + dj] = False
        solid[ni, nj] = False
        stack.append((ni, nj))


def _carve_rooms(solid: np.ndarray, rng: np.random.Generator) -> list[Room]:
    """A few rooms aligned to the lattice (so they cut through corridors); 5-wide ones get a centre pillar."""
    n = solid.shape[0]
    want = max(2, round(n * n / 80))
    rooms: list[Room] = []
    taken = np.zeros_like(solid)
    for _ in range(60):
        if len(rooms) == want:
            break
        w, d = int(rng.choice([3, 5])), int(rng.choice([3, 5]))
        if w + 2 > n - 1 or d + 2 > n - 1:
            continue
        i0 = 1 + 2 * int(rng.integers(0, (n - 2 - w) // 2 + 1))
        j0 = 1 + 2 * int(rng.integers(0, (n - 2 - d) // 2 + 1))
        if i0 + w > n - 1 or j0 + d > n - 1 or taken[i0 - 1 : i0 + w + 1, j0 - 1 : j0 + d + 1].any():
            continue
        taken[i0 : i0 + w, j0 : j0 + d] = True
        solid[i0 : i0 + w, j0 : j0 + d] = False
        if w == 5 and d == 5:
            solid[i0 + 2, j0 + 2] = True  # pillar: a landmark candidate you can walk around
        rooms.append(Room((i0, j0), (i0 + w - 1, j0 + d - 1), style=len(rooms) % 3))
    return rooms


def _bfs(solid: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Steps from `start` to every free cell (-1 where unreachable)."""
    n = solid.shape[0]
    dist = np.full(solid.shape, -1, dtype=np.int32)
    dist[start] = 0
    queue = deque([start])
    while queue:
        i, j = queue.popleft()
        for di, dj in _DIRS:
            a, b = i + di, j + dj
            if 0 <= a < n and 0 <= b < n and not solid[a, b] and dist[a, b] < 0:
                dist[a, b] = dist[i, j] + 1
                queue.append((a, b))
    return dist


def _open_loops(solid: np.ndarray, rng: np.random.Generator, count: int, min_detour: int) -> None:
    """Remove separating walls whose two sides are at least `min_detour` steps apart: long loops, not shortcuts
    next to each other."""
    n = solid.shape[0]
    candidates = []
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            if not solid[i, j]:
                continue
            if not solid[i - 1, j] and not solid[i + 1, j] and solid[i, j - 1] and solid[i, j + 1]:
                candidates.append(((i - 1, j), (i + 1, j), (i, j)))
            elif not solid[i, j - 1] and not solid[i, j + 1] and solid[i - 1, j] and solid[i + 1, j]:
                candidates.append(((i, j - 1), (i, j + 1), (i, j)))
    opened = 0
    for k in rng.permutation(len(candidates)):
        a, b, cell = candidates[k]
        if opened == count:
            break
        if not solid[cell]:
            continue
        d = _bfs(solid, a)[b]
        if d < 0 or d >= min_detour:
            solid[cell] = False
            opened += 1


def _keep_reachable(solid: np.ndarray) -> None:
    """Fill any free pocket not connected to the main region, so every free cell can be walked to."""
    free = np.argwhere(~solid)
    dist = _bfs(solid, (int(free[0, 0]), int(free[0, 1])))
    solid[(dist < 0) & ~solid] = True


def _place_landmarks(solid: np.ndarray, rooms: list[Room], rng: np.random.Generator, count: int) -> list[Landmark]:
    """Farthest-point sampling over visible wall cells; room pillars first because they are seen from all sides."""
    pad = np.pad(~solid, 1)
    free_nbrs = pad[2:, 1:-1].astype(int) + pad[:-2, 1:-1] + pad[1:-1, 2:] + pad[1:-1, :-2]
    visible = np.argwhere(solid & (free_nbrs > 0))
    pillars = [(r.lo[0] + 2, r.lo[1] + 2) for r in rooms if solid[r.lo[0] + 2, r.lo[1] + 2]]
    chosen: list[tuple[int, int]] = pillars[:count]
    if not chosen:
        chosen.append(tuple(int(v) for v in visible[rng.integers(len(visible))]))
    pts = visible.astype(np.float64)
    while len(chosen) < min(count, len(visible)):
        d = np.min(np.linalg.norm(pts[:, None, :] - np.array(chosen, dtype=np.float64)[None], axis=-1), axis=1)
        # A little noise so equal-distance ties break by seed, not by scan order.
        best = int(np.argmax(d + rng.uniform(0, 0.5, len(d))))
        chosen.append((int(visible[best, 0]), int(visible[best, 1])))
    kinds = rng.permutation(len(LANDMARK_KINDS))
    out = []
    for k, cell in enumerate(chosen):
        kind = int(kinds[k % len(kinds)])
        out.append(Landmark(LANDMARK_KINDS[kind], cell, N_BRICK + kind))
    return out
