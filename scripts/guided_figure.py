"""The guided model's picture (docs/images/guided_rollout.png): unseen levels as rows, frames of a teacher-free
guided walk as columns, each cell the engine's guidance | the model | the truth, as `eval --guided` walks them.

    .venv/bin/python scripts/guided_figure.py --world guided --out docs/images/guided_rollout.png
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.server.worlds import load_world  # noqa: E402
from runtime.eval.guided import rollout, trajectories  # noqa: E402


def join(images: list[np.ndarray], gap: int, axis: int) -> np.ndarray:
    """Images side by side (axis 1) or stacked (axis 0) with white strips of `gap` pixels between them."""
    shape = list(images[0].shape)
    shape[axis] = gap
    strip = np.full(shape, 255, np.uint8)
    return np.concatenate([x for image in images for x in (strip, image)][1:], axis)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--world", default="guided", help="a guided model: 'guided' or a model directory")
parser.add_argument("--levels", default="1000,1002,1005", help="held-out level seeds, one row each")
parser.add_argument("--frames", default="8,64,256", help="frames of the walk shown, one column each")
parser.add_argument("--out", type=Path, default=Path("docs/images/guided_rollout.png"))
args = parser.parse_args()

levels = [int(v) for v in args.levels.split(",")]
shown = [int(v) for v in args.frames.split(",")]
world = load_world(args.world)
with tempfile.TemporaryDirectory() as tmp:
    trajs = trajectories(Path(tmp), levels, max(shown) + 1, 128, world.fov_deg)
made = rollout(world, trajs, guided=True)  # made[k][t - 1] is frame t

rows = [join([join([tr.actions[t].guidance.colour, frames[t - 1], tr.frames[t]], 2, 1) for t in shown], 8, 1)
        for tr, frames in zip(trajs, made)]
image = join(rows, 8, 0)
args.out.parent.mkdir(parents=True, exist_ok=True)
Image.fromarray(image).save(args.out, optimize=True)
print(args.out, image.shape)
