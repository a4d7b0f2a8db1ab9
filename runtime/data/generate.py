"""Generate a training dataset by letting exploring players (runtime/maze/explore.py) walk the maze.

Episodes are simulated in batches through the maze's World interface (one batched render per tick) and
written in the dataset format of runtime/data/dataset.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from runtime.data.dataset import DatasetWriter
from runtime.maze.explore import Player
from runtime.maze.world import MazeWorld
from runtime.world import IDLE


def generate(
    world: MazeWorld, out: Path, episodes: int, frames: int, size: int = 128, seed: int = 0, batch: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write `episodes` episodes of `frames` frames each at size x size into `out`; returns `out`."""
    writer = DatasetWriter(out, f"maze:{world.level.seed}", size, size, world.fps, world.fov_deg)
    for first in range(0, episodes, batch):
        keys = list(range(first, min(first + batch, episodes)))
        players = {k: Player(world.level.solid, np.random.default_rng([seed, k])) for k in keys}
        for k in keys:
            world.reset(k, seed * 1_000_003 + k, size, size)
        log = {k: {"frames": [], "move": [], "look": [], "buttons": [], "poses": [], "fov_deg": []} for k in keys}
        actions = dict.fromkeys(keys, IDLE)  # the start frame
        for _ in range(frames):
            results = world.step(actions)
            for k in keys:
                a, f, ep = actions[k], results[k], log[k]
                ep["frames"].append(f.pixels)
                ep["move"].append(a.move)
                ep["look"].append(a.look)
                ep["buttons"].append(a.buttons)
                ep["poses"].append(f.pose)
                ep["fov_deg"].append(a.fov_deg or world.fov_deg)
            actions = {k: players[k].act(results[k].pose) for k in keys}
            if progress:
                progress(len(keys))
        for k in keys:
            writer.add({name: np.asarray(v) for name, v in log[k].items()})
            world.close(k)
    return Path(out)
