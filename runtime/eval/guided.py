"""Guided rendering scored against the truth on levels a model never saw (`worldbridge eval --guided`).

The engine owns the state: each held-out maze level (seeds training never used, style "varied": its own
layout, palette, light, sky and fog) is walked by an exploring player; the maze renders the truth frames and
the guidance buffers of the same cameras (runtime/maze/render.py). The model gets the first true frame, then
every frame the controller input, the engine pose and the guidance; it never sees another true frame
(teacher-free). Scored, in one run:

- guided rollouts over `frames` frames: PSNR / SSIM vs the truth (mean, and per quarter of the rollout, so a
  decline shows), and temporal flicker: the mean absolute frame-to-frame change of the model's frames next to
  the truth's, and the mean absolute error of that change (0 when the model changes exactly as the truth);
- the same trajectories without guidance (the model dreams from actions and poses), a baseline world without
  guidance (the default model) and the copy-last-frame baseline, on the same unseen levels;
- a long guided run (10 minutes of frames at 16 FPS by default) on one unseen level: PSNR per minute, and the
  change from the first minute to the last (no decline: >= 0 up to noise).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.data.dataset import Dataset
from runtime.data.generate import generate
from runtime.eval.metrics import psnr, ssim
from runtime.guidance import Guidance
from runtime.maze.explore import Player
from runtime.maze.world import MazeWorld
from runtime.world import FPS, Action, World

EVAL_SEED = 424_242  # explorer seeds no training dataset uses
HELD_OUT_LEVELS = tuple(range(1000, 1008))  # the guided default model trained on levels 1-256


@dataclass
class GuidedTrajectory:
    frames: np.ndarray  # (T, H, W, 3) uint8 truth
    actions: list[Action]  # actions[t] made frame t (pose and guidance included)


def trajectories(out: Path, levels: Sequence[int], frames: int, size: int, fov_deg: float) -> list[GuidedTrajectory]:
    """One trajectory per level (style varied) with its guidance, generated once into the dataset `out`."""
    wanted = {"levels": list(levels), "width": size, "frames": len(levels) * frames, "colour": "stored"}

    def cached() -> dict:
        meta = Dataset(out).meta
        return {"levels": meta.get("levels"), "width": meta["width"], "frames": Dataset(out).frames,
                "colour": meta.get("guidance", {}).get("colour")}

    if not (out / "meta.json").exists() or cached() != wanted:
        shutil.rmtree(out, ignore_errors=True)
        maze = MazeWorld(level_seed=levels[0], fov_deg=fov_deg, style="varied")
        generate(maze, out, len(levels), frames, size, seed=EVAL_SEED, levels=levels, style="varied", guidance=True)
    data = Dataset(out)
    result = []
    for k in range(len(levels)):
        ep, g = data.episode(k), data.guidance(k)
        rows = zip(ep["move"], ep["look"], ep["buttons"], ep["poses"], ep["fov_deg"])
        actions = [Action(tuple(m), tuple(lk), int(b), p.astype(np.float64), float(f),
                          Guidance(g.colour[t], g.depth[t], g.ids[t])) for t, (m, lk, b, p, f) in enumerate(rows)]
        result.append(GuidedTrajectory(ep["frames"][:frames], actions[:frames]))
    return result


def rollout(world: World, trajs: list[GuidedTrajectory], guided: bool) -> list[np.ndarray]:
    """Frames 1..T-1 of every trajectory from its true frame 0 (all episodes in one batch): (T-1, H, W, 3) each."""
    for k, tr in enumerate(trajs):
        world.reset(k, k, tr.frames.shape[2], tr.frames.shape[1], pose=tr.actions[0].pose, image=tr.frames[0])
    out: list[list[np.ndarray]] = [[] for _ in trajs]
    for t in range(1, len(trajs[0].actions)):
        step = {}
        for k, tr in enumerate(trajs):
            a = tr.actions[t]
            step[k] = Action(a.move, a.look, a.buttons, a.pose, a.fov_deg, a.guidance if guided else None)
        frames = world.step(step)
        for k in range(len(trajs)):
            out[k].append(frames[k].pixels)
    for k in range(len(trajs)):
        world.close(k)
    return [np.stack(o) for o in out]


def flicker(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Frame-to-frame change of (T, H, W, 3) frames: the model's and the truth's mean |f_t - f_t-1| (0..255) and
    the mean absolute error between the two changes."""
    dp = np.diff(pred.astype(np.float32), axis=0)
    dt = np.diff(truth.astype(np.float32), axis=0)
    return {"model": float(np.abs(dp).mean()), "truth": float(np.abs(dt).mean()),
            "error": float(np.abs(dp - dt).mean())}


def scores(pred: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    """PSNR / SSIM over all frames and per quarter of the rollout, and flicker, averaged over trajectories."""
    n = len(truth[0])
    quarters = [(q * n // 4, (q + 1) * n // 4) for q in range(4)]
    per_frame = np.array([[psnr(p[i], t[i]) for i in range(n)] for p, t in zip(pred, truth)])  # (K, n)
    s = [ssim(p[i], t[i]) for p, t in zip(pred, truth) for i in range(0, n, 4)]
    f = [flicker(p, t) for p, t in zip(pred, truth)]
    return {
        "psnr": round(float(per_frame.mean()), 2),
        "ssim": round(float(np.mean(s)), 4),
        "psnr_by_quarter": [round(float(per_frame[:, a:b].mean()), 2) for a, b in quarters],
        "flicker": {k: round(float(np.mean([x[k] for x in f])), 2) for k in ("model", "truth", "error")},
    }


def long_run(world: World, level: int, minutes: float, size: int, fov_deg: float,
             progress: Callable[[int], None] | None = None) -> dict:
    """One guided episode of `minutes` on an unseen level under an exploring player: PSNR vs the truth per minute."""
    maze = MazeWorld(level_seed=level, fov_deg=fov_deg, style="varied")
    maze.reset("long", EVAL_SEED, size, size)
    player = Player(maze.level.solid, np.random.default_rng(EVAL_SEED))
    pose = maze.pose_of("long")
    first = maze.renderer.render(pose, size, size, fov_deg)
    world.reset("long", 0, size, size, pose=pose, image=first)
    total, per_minute, chunk = int(minutes * 60 * FPS), [], []
    for i in range(total):
        action = player.act(pose)
        frame = maze.step({"long": action})["long"]
        pose = frame.pose
        g = maze.renderer.guidance(pose, size, size, fov_deg)
        made = world.step({"long": Action(action.move, action.look, action.buttons, pose, None, g)})["long"]
        chunk.append(psnr(made.pixels, frame.pixels))
        if len(chunk) == FPS * 60 or i == total - 1:
            per_minute.append(round(float(np.mean(chunk)), 2))
            chunk = []
        if progress:
            progress(1)
    world.close("long")
    maze.close("long")
    return {"level": level, "frames": total, "psnr_per_minute": per_minute,
            "psnr_first_to_last_minute_db": round(per_minute[-1] - per_minute[0], 2)}


def evaluate_guided(world: World, out: Path, levels: Sequence[int] = HELD_OUT_LEVELS, frames: int = 257,
                    minutes: float = 10.0, progress: Callable[[str], None] | None = None,
                    baseline: World | None = None) -> dict:
    """The whole guided evaluation of a world with the "guidance" capability; returns the report. baseline: a
    world scored on the same trajectories from actions and poses alone (the default model)."""
    if "guidance" not in world.capabilities:
        raise ValueError(f"{world.name} does not render from guidance (no 'guidance' capability)")
    size, _ = world.frame_size(128, 128)
    trajs = trajectories(out / "held_out_guided", levels, frames, size, world.fov_deg)
    truth = [tr.frames[1:] for tr in trajs]

    def say(what: str) -> None:
        if progress:
            progress(what)

    report: dict = {"world": world.name, "levels": list(levels), "style": "varied", "frames": frames,
                    "frame_size": size}
    say("guided rollouts")
    report["guided"] = scores(rollout(world, trajs, guided=True), truth)
    say("rollouts without guidance")
    report["without_guidance"] = scores(rollout(world, trajs, guided=False), truth)
    if baseline is not None:
        say(f"baseline {baseline.name}")
        report["baseline"] = {"world": baseline.name, **scores(rollout(baseline, trajs, guided=False), truth)}
    report["copy_last_frame"] = scores([np.repeat(tr.frames[:1], frames - 1, 0) for tr in trajs], truth)
    if minutes > 0:
        say(f"long guided run ({minutes:g} min)")
        report["long_run"] = long_run(world, levels[0], minutes, size, world.fov_deg)
    return report
