"""Throughput of the maze's ground-truth renderer on one CPU core; prints one JSON object.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/maze_render.py
    .venv/bin/python benchmarks/maze_render.py --views 128 --repeats 9 --level-seed 3

Each measurement renders the same set of random walkable poses (eye height, any yaw, pitch within +-20 degrees,
fov 60) several times and reports the median pass: single-view frames/s at 128x128, frames/s per view when
rendering batches of 8 at 128x128, and single-view frames/s at 256x256. The process pins itself to one core and
keeps BLAS/OpenMP to one thread (the renderer is plain numpy, so this only removes noise).
"""

from __future__ import annotations

import argparse
import json
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from runtime.camera import c2w_from_yaw_pitch  # noqa: E402
from runtime.maze.level import MazeLevel  # noqa: E402
from runtime.maze.render import MazeRenderer  # noqa: E402


def random_poses(level: MazeLevel, count: int, seed: int) -> np.ndarray:
    """(count, 4, 4) eye-height poses in free cells, any yaw, mild pitch: what play and training data look like."""
    rng = np.random.default_rng(seed)
    cells = level.free_cells[rng.integers(len(level.free_cells), size=count)]
    poses = []
    for i, j in cells:
        pos = np.array([i + rng.uniform(0.25, 0.75), -0.5, j + rng.uniform(0.25, 0.75)])
        poses.append(c2w_from_yaw_pitch(pos, rng.uniform(-180, 180), rng.uniform(-20, 20)))
    return np.stack(poses)


def median_fps(render_pass, frames: int, repeats: int) -> float:
    """Frames per second of the median of `repeats` timed passes (after one warm-up pass)."""
    render_pass()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        render_pass()
        times.append(time.perf_counter() - t)
    return frames / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--level-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=17, help="level size in cells (default 17)")
    p.add_argument("--views", type=int, default=64, help="poses per timed pass (a multiple of 8)")
    p.add_argument("--repeats", type=int, default=7, help="timed passes; the median is reported")
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU core")
    args = p.parse_args()

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    t = time.perf_counter()
    level = MazeLevel(args.level_seed, args.size)
    renderer = MazeRenderer(level)
    build_s = time.perf_counter() - t
    poses = random_poses(level, args.views - args.views % 8 or 8, seed=args.level_seed + 1)
    n = len(poses)

    def single(size: int):
        return lambda: [renderer.render(c, size, size, 60.0) for c in poses]

    def batched():
        for k in range(0, n, 8):
            renderer.render_batch(poses[k : k + 8], 128, 128, 60.0)

    result = {
        "fps_128_single": round(median_fps(single(128), n, args.repeats), 1),
        "fps_128_batch8_per_view": round(median_fps(batched, n, args.repeats), 1),
        "fps_256_single": round(median_fps(single(256), n, args.repeats), 1),
        "level_seed": args.level_seed,
        "size": args.size,
        "views": n,
        "repeats": args.repeats,
        "level_build_s": round(build_s, 3),
        "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
