"""Evaluate a world model against the maze's ground truth (`worldbridge eval`).

Held-out trajectories are played by the exploring players of runtime/maze/explore.py with seeds training never used;
the maze renders the truth. For each model (and the baselines, in the same run):
- teacher-forced next frame: the context is the true frames, the model makes only the next one;
- open-loop rollouts: from a true start frame, the model runs on its own frames for 16, 64 and 256 frames
  under the same controller input (with and without camera poses);
- copy-last-frame baseline: the last true frame the model was given, repeated;
- stability: a long rollout (10 minutes of frames at runtime.world.FPS by default) whose frame statistics must
  stay within the range of real frames — no collapse to grey, no blow-up into noise.
Scores are PSNR (dB) and SSIM of uint8 RGB frames (runtime/eval/metrics.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.data.dataset import Dataset
from runtime.data.generate import generate
from runtime.eval.gif import side_by_side, write_gif
from runtime.eval.metrics import psnr, ssim
from runtime.maze.world import MazeWorld
from runtime.neural import open_model
from runtime.neural.world import NeuralWorld
from runtime.world import FPS, Action

HORIZONS = (16, 64, 256)
EVAL_SEED = 90_210  # trajectories from players and starts that no training dataset uses (datagen seeds 0..)


@dataclass
class Trajectory:
    frames: np.ndarray  # (T, H, W, 3) uint8 ground truth
    actions: list[Action]  # actions[t] made frame t from frame t-1 (actions[0]: the start)
    poses: np.ndarray  # (T, 4, 4) camera-to-world


def held_out_trajectories(maze: MazeWorld, out: Path, count: int, frames: int, size: int) -> list[Trajectory]:
    """Play `count` fresh trajectories in the maze (cached as a dataset in `out`)."""
    if not (out / "meta.json").exists() or len(Dataset(out)) < count or Dataset(out).meta["width"] != size:
        generate(maze, out, count, frames, size, seed=EVAL_SEED)
    data = Dataset(out)
    result = []
    for k in range(count):
        ep = data.episode(k)
        actions = [Action(tuple(m), tuple(lk), int(b)) for m, lk, b in zip(ep["move"], ep["look"], ep["buttons"])]
        result.append(Trajectory(ep["frames"][:frames], actions[:frames], ep["poses"][:frames].astype(np.float64)))
    return result


def open_loop(world: NeuralWorld, trajs: list[Trajectory], length: int, with_pose: bool) -> list[np.ndarray]:
    """Each trajectory's frames 1..length-1 generated from its true frame 0 and its actions: (length-1, H, W, 3)."""
    for k, tr in enumerate(trajs):
        world.reset(k, k, 0, 0, pose=tr.poses[0] if with_pose else None, image=tr.frames[0])
    out: list[list[np.ndarray]] = [[] for _ in trajs]
    for t in range(1, length):
        actions = {}
        for k, tr in enumerate(trajs):
            a = tr.actions[t]
            actions[k] = Action(a.move, a.look, a.buttons, tr.poses[t] if with_pose else None)
        frames = world.step(actions)
        for k in range(len(trajs)):
            out[k].append(frames[k].pixels)
    for k in range(len(trajs)):
        world.close(k)
    return [np.stack(o) for o in out]


def teacher_forced(world: NeuralWorld, trajs: list[Trajectory], length: int) -> list[np.ndarray]:
    """Frames 1..length-1, each made from the TRUE frames before it: (length-1, H, W, 3) per trajectory."""
    for k, tr in enumerate(trajs):
        world.reset(k, k, 0, 0, image=tr.frames[0])
    out: list[list[np.ndarray]] = [[] for _ in trajs]
    for t in range(1, length):
        frames = world.teacher_forced_step({k: tr.actions[t] for k, tr in enumerate(trajs)},
                                           {k: tr.frames[t] for k, tr in enumerate(trajs)})
        for k in range(len(trajs)):
            out[k].append(frames[k].pixels)
    for k in range(len(trajs)):
        world.close(k)
    return [np.stack(o) for o in out]


def scores(pred: list[np.ndarray], truth: list[np.ndarray], horizon: int) -> dict[str, float]:
    """Mean PSNR / SSIM over the first `horizon` predicted frames of every trajectory, and at frame `horizon`."""
    p = [psnr(pr[i], tr[i]) for pr, tr in zip(pred, truth) for i in range(min(horizon, len(pr)))]
    s = [ssim(pr[i], tr[i]) for pr, tr in zip(pred, truth) for i in range(0, min(horizon, len(pr)), 4)]
    last = [psnr(pr[horizon - 1], tr[horizon - 1]) for pr, tr in zip(pred, truth) if len(pr) >= horizon]
    return {"psnr": round(float(np.mean(p)), 2), "ssim": round(float(np.mean(s)), 4),
            "psnr_at_end": round(float(np.mean(last)), 2) if last else float("nan")}


def stability(world: NeuralWorld, maze: MazeWorld, minutes: float, reference: np.ndarray,
              progress: Callable[[int], None] | None = None) -> dict:
    """Run one episode for `minutes` of frames (FPS a second) under a playing explorer; check every frame's mean,
    spatial contrast and high-frequency energy stay within the range seen in real frames (reference). Collapsed:
    more than 1% of the frames outside that range."""
    from runtime.maze.explore import Player

    def stats(frames: np.ndarray) -> np.ndarray:  # (N, H, W, 3) -> (N, 3): mean, contrast, detail
        f = frames.astype(np.float32).mean(-1)
        lap = np.abs(4 * f[:, 1:-1, 1:-1] - f[:, :-2, 1:-1] - f[:, 2:, 1:-1] - f[:, 1:-1, :-2] - f[:, 1:-1, 2:])
        return np.stack([f.mean((1, 2)), f.std((1, 2)), lap.mean((1, 2))], 1)

    ref = stats(reference)
    lo, hi = ref.min(0) * 0.5, ref.max(0) * 1.5
    total = int(minutes * 60 * FPS)
    maze.reset("stability", EVAL_SEED, reference.shape[2], reference.shape[1])
    player = Player(maze.level.solid, np.random.default_rng(EVAL_SEED))
    pose = maze.pose_of("stability")
    world.reset("stability", 0, 0, 0, image=reference[0])
    outside, per_minute, chunk = 0, [], []
    for i in range(total):
        action = player.act(pose)
        pose = maze.step({"stability": action})["stability"].pose  # the player walks the true maze
        chunk.append(world.step({"stability": action})["stability"].pixels)
        if len(chunk) == FPS * 60 or i == total - 1:
            s = stats(np.stack(chunk))
            outside += int(((s < lo) | (s > hi)).any(1).sum())
            per_minute.append({"mean": round(float(s[:, 0].mean()), 1), "contrast": round(float(s[:, 1].mean()), 1),
                               "detail": round(float(s[:, 2].mean()), 2)})
            chunk = []
        if progress:
            progress(1)
    world.close("stability")
    return {"frames": total, "frames_outside_real_range": outside, "collapsed": outside > 0.01 * total,
            "real_range": {"mean": [round(float(lo[0]), 1), round(float(hi[0]), 1)],
                           "contrast": [round(float(lo[1]), 1), round(float(hi[1]), 1)],
                           "detail": [round(float(lo[2]), 2), round(float(hi[2]), 2)]},
            "per_minute": per_minute}


def evaluate(model: str | Path, teacher: str | Path | None, out: Path, trajectories: int = 8, frames: int = 257,
             stability_minutes: float = 10.0, gifs: int = 3, device: str = "cpu", backend: str = "torch",
             progress: Callable[[str], None] | None = None) -> dict:
    """The whole evaluation; returns the report (also written to out/eval.json by the CLI). backend: what the
    model and the teacher run on (runtime.neural.open_model), float32 throughout."""
    world = open_model(model, device, dtype="float32", backend=backend)
    size = world.config.frame.width
    maze = MazeWorld(level_seed=0, fov_deg=world.fov_deg)
    trajs = held_out_trajectories(maze, out / "held_out", trajectories, frames, size)
    truth = [tr.frames[1:] for tr in trajs]
    copy_open = [np.repeat(tr.frames[:1], frames - 1, 0) for tr in trajs]  # the only true frame it has
    copy_forced = [tr.frames[:-1] for tr in trajs]  # the previous true frame

    def say(what: str) -> None:
        if progress:
            progress(what)

    report: dict = {"model": str(model), "backend": backend, "trajectories": trajectories, "frame_size": size,
                    "teacher_forced": {}, "open_loop": {}}
    say("teacher-forced")
    report["teacher_forced"]["model"] = scores(teacher_forced(world, trajs, frames), truth, frames - 1)
    report["teacher_forced"]["copy_last_frame"] = scores(copy_forced, truth, frames - 1)
    rollouts = {}
    for with_pose in (False, True):
        say(f"open loop{' with poses' if with_pose else ''}")
        rollouts[with_pose] = open_loop(world, trajs, frames, with_pose)
    baselines = {"copy_last_frame": copy_open}
    if teacher:
        say("open loop, many-step teacher")
        many_step = open_model(teacher, device, dtype="float32", backend=backend)
        baselines["teacher"] = open_loop(many_step, trajs, frames, False)
    for horizon in HORIZONS:
        if horizon >= frames:
            continue
        row = {"model": scores(rollouts[False], truth, horizon),
               "model_with_poses": scores(rollouts[True], truth, horizon)}
        row.update({name: scores(pred, truth, horizon) for name, pred in baselines.items()})
        row["gain_over_copy_db"] = round(row["model"]["psnr"] - row["copy_last_frame"]["psnr"], 2)
        report["open_loop"][str(horizon)] = row
    for k in range(min(gifs, trajectories)):
        write_gif(side_by_side(rollouts[False][k][:64], truth[k][:64]), out / f"rollout_{k}.gif", FPS, scale=2)
    if stability_minutes > 0:
        say(f"stability ({stability_minutes:g} min)")
        reference = np.concatenate([tr.frames for tr in trajs])
        report["stability"] = stability(world, maze, stability_minutes, reference)
    return report
