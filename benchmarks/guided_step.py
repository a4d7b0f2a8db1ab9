"""One session's frame time in process, for comparison with the daemon's step (`worldbridge bench`): the guided
model with and without guidance, and the default model, bfloat16, the bench's scripted walk; guidance is the
maze's colour and depth of unseen level 1003, rendered before timing (what `worldbridge bench` sends).

    .venv/bin/python benchmarks/guided_step.py --out benchmarks/results/X.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.eval.bench import median_ms, scripted_action  # noqa: E402
from runtime.maze.world import MazeWorld  # noqa: E402
from runtime.neural.world import NeuralWorld  # noqa: E402
from runtime.world import Action  # noqa: E402

MODELS = Path(__file__).resolve().parents[1] / "models"


def frame_ms(world: NeuralWorld, action, frames: int, warmup: int = 20) -> float:
    """Median ms of world.step for one episode walking `action(i)`, after `warmup` frames."""
    world.reset("k", 0, 128, 128)
    i = itertools.count()
    for _ in range(warmup):
        world.step({"k": action(next(i))})
    return median_ms(lambda: world.step({"k": action(next(i))}), frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    maze = MazeWorld(level_seed=1003, style="varied")
    maze.reset("g", 0, 128, 128)
    guides = [maze.renderer.guidance(maze.step({"g": scripted_action(i)})["g"].pose, 128, 128, maze.fov_deg)
              for i in range(32)]

    def guided(i: int) -> Action:
        return replace(scripted_action(i), guidance=guides[i % len(guides)])

    world = NeuralWorld(MODELS / "guided", dtype="bfloat16")
    report = {"guided_with_guidance_ms": frame_ms(world, guided, args.frames),
              "guided_without_guidance_ms": frame_ms(world, scripted_action, args.frames),
              "default_ms": frame_ms(NeuralWorld(MODELS / "default", dtype="bfloat16"), scripted_action, args.frames)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
