"""Where a guided model's error is: per surface kind (sky, floor, walls) and how much of it is one wrong colour
per kind and frame, on unseen levels walked as `worldbridge eval --guided` walks them. Prints JSON.

    .venv/bin/python benchmarks/guided_errors.py --world guided
    .venv/bin/python benchmarks/guided_errors.py --world runs/guided/model --levels 1000-1003 --frames 65
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.server.worlds import load_world  # noqa: E402
from runtime.eval.guided import rollout, trajectories  # noqa: E402
from runtime.maze.render import FLOOR_IDS, ID_MATERIAL0, ID_SKY  # noqa: E402


def psnr_of(mse: float) -> float:
    return round(float(10 * np.log10(255.0**2 / mse)), 2)


def breakdown(pred: np.ndarray, truth: np.ndarray, ids: np.ndarray) -> dict:
    """pred, truth (N, H, W, 3) uint8 and ids (N, H, W): PSNR overall and per kind, each kind's share of the
    squared error and its mean error (RGB levels), and the share of the squared error that is one constant colour
    per kind and frame."""
    err = pred.astype(np.float32) - truth.astype(np.float32)
    total = float((err**2).sum())
    floor = np.isin(ids, FLOOR_IDS)
    kinds = {"sky": ids == ID_SKY, "floor": floor, "walls": (ids >= ID_MATERIAL0) & ~floor}
    report: dict = {"psnr": psnr_of(total / err.size), "kinds": {}}
    constant = 0.0
    for name, mask in kinds.items():
        e = err[mask]
        report["kinds"][name] = {
            "pixels": round(float(mask.mean()), 3), "error_share": round(float((e**2).sum() / total), 3),
            "psnr": psnr_of(float((e**2).mean())), "mean_error_rgb": e.mean(0).round(1).tolist(),
        }
        for i in range(len(err)):
            ei = err[i][mask[i]]
            if len(ei):
                constant += float((ei.mean(0) ** 2).sum()) * len(ei)
    report["constant_colour_share"] = round(constant / total, 3)
    return report


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--world", default="guided")
parser.add_argument("--levels", default="1000-1003", help="held-out level seeds A-B")
parser.add_argument("--frames", type=int, default=65, help="frames per walk (start + rollout)")
parser.add_argument("--steps", type=int, help="denoising steps (default: the model's)")
args = parser.parse_args()
a, _, b = args.levels.partition("-")
levels = list(range(int(a), int(b or a) + 1))
world = load_world(args.world, steps=args.steps)
with tempfile.TemporaryDirectory() as tmp:
    trajs = trajectories(Path(tmp), levels, args.frames, 128, world.fov_deg)
made = rollout(world, trajs, guided=True)  # made[k][t - 1] is frame t of walk k
walks = [(m, tr.frames[1:], np.stack([x.guidance.ids for x in tr.actions[1:]])) for m, tr in zip(made, trajs)]
half = len(made[0]) // 2


def joined(start: int) -> list[np.ndarray]:
    """pred, truth, ids of every walk from frame `start` on, concatenated."""
    return [np.concatenate([w[k][start:] for w in walks]) for k in range(3)]


out = {"world": args.world, "levels": levels, "frames": args.frames, "steps": len(world.schedule) - 1,
       "all": breakdown(*joined(0)), "second_half": breakdown(*joined(half))}
print(json.dumps(out))
