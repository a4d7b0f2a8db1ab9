"""Generate a training dataset by letting exploring players (runtime/maze/explore.py) walk the maze.

Episodes are simulated in batches through the maze's World interface (one batched render per tick and level)
and written in the dataset format of runtime/data/dataset.py. One level (the world's) by default; with `levels`
the episodes are split evenly, in order, over several level seeds, all in one style, and each episode's meta
entry names its level and style. With `guidance` every frame also stores the guidance buffers of
runtime/maze/render.py: the level's flat colour (uint8), ids (uint16) and depth (float32, or float16 to halve its
size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from runtime.data.dataset import FIELDS, DatasetWriter
from runtime.maze.explore import Player
from runtime.maze.level import STYLES
from runtime.maze.render import GUIDANCE_NAMES
from runtime.maze.world import MazeWorld, clamp_fov
from runtime.world import IDLE

DEPTH_DTYPES = ("float32", "float16")


def level_of_episode(k: int, episodes: int, levels: Sequence[int]) -> int:
    """The level seed episode k of `episodes` plays: an even split in order (levels[0] first)."""
    return levels[k * len(levels) // episodes]


def generate(
    world: MazeWorld, out: Path, episodes: int, frames: int, size: int = 128, seed: int = 0, batch: int = 16,
    progress: Callable[[int], None] | None = None, *, levels: Sequence[int] | None = None,
    style: str | None = None, guidance: bool = False, depth_dtype: str = "float32",
) -> Path:
    """Write `episodes` episodes of `frames` frames each at size x size into `out`; returns `out`.

    levels: maze level seeds to spread the episodes over (episode k plays level_of_episode(k, ...); every level
        gets at least one episode); None: the world's level alone. Other levels are built like `world` (its
        fov and level size). Episode k's spawn and player are seeded by (seed, k) whatever its level.
    style: the levels' look (runtime/maze/level.py STYLES); None: the world's level's style.
    guidance: also store `colour`, `ids` and `depth` per frame (runtime/maze/render.py guidance), depth in
        `depth_dtype`.
    The meta gets "levels", "style" and per-episode "level"/"style" when levels or a style are given or the style
    is not "default", and "guidance" with guidance; the plain call writes exactly what it always has.
    """
    style = world.level.style if style is None else style
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if depth_dtype not in DEPTH_DTYPES:
        raise ValueError(f"depth_dtype must be one of {', '.join(DEPTH_DTYPES)}, got {depth_dtype!r}")
    seeds = [world.level.seed] if levels is None else [int(s) for s in levels]
    if not seeds:
        raise ValueError("levels is empty")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"levels repeats a seed: {seeds}")
    if levels is not None and len(seeds) > episodes:
        raise ValueError(f"{len(seeds)} levels but {episodes} episodes: every level needs at least one episode")
    annotate = levels is not None or style != "default"

    extra: dict = {}
    if annotate:
        extra.update(levels=seeds, style=style)
    if guidance:
        extra["guidance"] = {"ids": "uint16", "depth": depth_dtype, "names": list(GUIDANCE_NAMES),
                             "colour": "stored"}
    name = f"maze:{seeds[0]}" if len(seeds) == 1 else "maze"
    writer = DatasetWriter(out, name, size, size, world.fps, world.fov_deg, extra=extra)

    worlds: dict[int, MazeWorld] = {}  # the levels of the current batch (the split is in order: no revisits)

    def world_of(level: int) -> MazeWorld:
        if level not in worlds:
            same = level == world.level.seed and style == world.level.style
            worlds[level] = world if same else MazeWorld(level, world.fov_deg, world.level.size, style)
        return worlds[level]

    fields = list(FIELDS) + (["colour", "ids", "depth"] if guidance else [])
    for first in range(0, episodes, batch):
        keys = list(range(first, min(first + batch, episodes)))
        level = {k: level_of_episode(k, episodes, seeds) for k in keys}
        for old in set(worlds) - set(level.values()):
            del worlds[old]  # its episodes are all written
        groups: dict[int, list[int]] = {}
        for k in keys:
            groups.setdefault(level[k], []).append(k)
        wk = {k: world_of(level[k]) for k in keys}
        players = {k: Player(wk[k].level.solid, np.random.default_rng([seed, k])) for k in keys}
        for k in keys:
            wk[k].reset(k, seed * 1_000_003 + k, size, size)
        log = {k: {f: [] for f in fields} for k in keys}
        actions = dict.fromkeys(keys, IDLE)  # the start frame
        for _ in range(frames):
            results = {}
            for lv, ks in groups.items():
                results.update(worlds[lv].step({k: actions[k] for k in ks}))
            for k in keys:
                a, f, ep = actions[k], results[k], log[k]
                ep["frames"].append(f.pixels)
                ep["move"].append(a.move)
                ep["look"].append(a.look)
                ep["buttons"].append(a.buttons)
                ep["poses"].append(f.pose)
                ep["fov_deg"].append(a.fov_deg or world.fov_deg)
                if guidance:  # the same pose, size and fov MazeWorld rendered the frame with
                    h, w = f.pixels.shape[:2]
                    g = wk[k].renderer.guidance(f.pose, w, h, clamp_fov(a.fov_deg, wk[k].fov_deg))
                    ep["colour"].append(g.colour)
                    ep["ids"].append(g.ids)
                    ep["depth"].append(g.depth.astype(depth_dtype))
            actions = {k: players[k].act(results[k].pose) for k in keys}
            if progress:
                progress(len(keys))
        for k in keys:
            info = {"level": level[k], "style": style} if annotate else {}
            writer.add({f: np.asarray(v) for f, v in log[k].items()}, **info)
            wk[k].close(k)
    return Path(out)
