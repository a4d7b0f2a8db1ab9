"""Loop closure: when the camera comes back to where it was, does the world show the same place?

Trajectories that return to their start (WorldMem / Context-as-Memory style revisits), walked in the maze so
the ground truth exists for every frame:
- spin_360: turn once around in place;
- out_and_back: walk ahead along the maze, then retrace the same poses back;
- square: four sides and four right-angle turns in the open;
- revisit_30s / revisit_180s: explore the level for half the time, then retrace the path, so the start is
  seen again 30 s / 3 min after it was first seen;
- still: stand still for 2,000 frames (drift).

Any World can be scored (the maze, the house model, `lingbot-fast:PATH`): each frame gives the engine pose
(Action.pose) and the controller input that moves there, as an engine would; a world with the "guidance"
capability also gets the maze's guidance buffers of that pose. The score of a loop is the PSNR of
the world's frame at the return against its own frame at the first visit (consistency), and against the truth
at the return (fidelity). A world that forgets scores low on the first even where its frames look plausible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from runtime.eval.metrics import psnr, ssim
from runtime.maze.explore import Player
from runtime.maze.world import MazeWorld
from runtime.world import FPS, Action, World

SPIN_DEG = 7.5  # per frame: a full turn in 48 frames (3 s)
STILL_AT = (100, 500, 1000, 2000)  # frames at which standing still is scored against the first frame


@dataclass
class Loop:
    """A trajectory whose last frame is the first one's place again: poses[-1] == poses[0] (up to round-off)."""

    name: str
    actions: list[Action]  # (T,) controller input that moves the camera to poses[t]; pose set too
    seconds_apart: float  # time between the first visit and the return


def _walk(maze: MazeWorld, key: int, actions: list[Action]) -> list[Action]:
    """Run controller actions in the maze; each returned Action also carries the pose it reached."""
    out = []
    for a in actions:
        pose = maze.step({key: a})[key].pose
        out.append(Action(move=a.move, look=a.look, buttons=a.buttons, pose=pose))
    return out


def _retrace(out: list[Action], start: np.ndarray) -> list[Action]:
    """The way back over the same poses, newest first, ending at `start`; the input is the outward one undone."""
    poses = [a.pose for a in out[:-1]][::-1] + [start]
    return [Action(move=(-a.move[0], -a.move[1]), look=(-a.look[0], -a.look[1]), buttons=a.buttons, pose=p)
            for a, p in zip(out[::-1], poses)]


def _closed(actions: list[Action], start: np.ndarray) -> bool:
    return float(np.abs(actions[-1].pose - start).max()) < 1e-6


def make_loops(maze: MazeWorld, seed: int, revisits: tuple[float, ...] = (30.0, 180.0)) -> list[Loop]:
    """The loops from one start in `maze` (its spawn for `seed`), each starting with a still frame at the start."""
    key = ("loop", seed)

    def begin(s: int) -> np.ndarray:
        maze.reset(key, s, 16, 16)
        return maze.pose_of(key)

    start = begin(seed)
    hold = [Action(pose=start)]  # the first visit: the world's own frame of the start
    loops = [Loop("spin_360", hold + _walk(maze, key, [Action(look=(SPIN_DEG, 0.0))] * round(360 / SPIN_DEG)),
                  360 / SPIN_DEG / FPS)]
    begin(seed)
    out = _walk(maze, key, [Action(move=(0.0, 1.0))] * 24)
    loops.append(Loop("out_and_back", hold + out + _retrace(out, start), 2 * len(out) / FPS))
    # a square needs open floor: try this start's four headings before giving up on it
    side = [Action(move=(0.0, 1.0))] * 10 + [Action(look=(15.0, 0.0))] * 6
    for turn in range(4):
        begin(seed)
        lead = _walk(maze, key, [Action(look=(90.0, 0.0))] * turn)
        square = _walk(maze, key, side * 4)
        if _closed(square, lead[-1].pose if lead else start):
            loops.append(Loop("square", [Action(pose=square[-1].pose)] + square, len(square) / FPS))
            break
    for seconds in revisits:
        begin(seed)
        player, out = Player(maze.level.solid, np.random.default_rng([seed, int(seconds)])), []
        for _ in range(round(seconds * FPS / 2)):
            a = player.act(out[-1].pose if out else start)
            out += _walk(maze, key, [a])
        loops.append(Loop(f"revisit_{seconds:g}s", hold + out + _retrace(out, start), seconds))
    maze.close(key)
    return loops


def _reset(world: World, key: object, seed: int, size: int, pose: np.ndarray, image: np.ndarray) -> None:
    start_image = image if "start_image" in world.capabilities else None
    world.reset(key, seed, size, size, pose=pose, image=start_image)


def _score(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"psnr": psnr(a, b), "ssim": ssim(a, b)}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 3 if k == "ssim" else 2) for k in rows[0]}


def loop_closure(
    world: World,
    truth: MazeWorld,
    starts: int = 4,
    size: int = 128,
    revisits: tuple[float, ...] = (30.0, 180.0),
    still_frames: int = 2000,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Score `world` on every loop from `starts` starts in `truth`'s level, all starts stepped as one batch.

    Per loop: return_vs_first (the world against itself), return_vs_truth, first_vs_truth, and the truth's own
    return_vs_first (how exactly the trajectory closes: ~100 dB). still: the frame after t frames of standing
    still against the first (drift), and against the truth."""
    say = progress or (lambda _: None)
    per_start = [make_loops(truth, 1000 + s, revisits) for s in range(starts)]
    report: dict = {"world": world.name, "level": truth.level.seed, "style": truth.level.style, "size": size,
                    "starts": starts, "guidance": "guidance" in world.capabilities, "loops": {}}
    names = list(dict.fromkeys(lp.name for loops in per_start for lp in loops))  # a square needs open floor
    for name in names:
        runs = [next((lp for lp in loops if lp.name == name), None) for loops in per_start]
        runs = [(s, lp) for s, lp in enumerate(runs) if lp is not None]
        say(f"{name}: {len(runs[0][1].actions)} frames x {len(runs)} starts")
        rows = _run(world, truth, runs, size)
        report["loops"][name] = {"frames": len(runs[0][1].actions), "seconds_apart": runs[0][1].seconds_apart,
                                 "starts": len(runs), **rows}
    if still_frames:
        say(f"still: {still_frames} frames x {starts} starts")
        report["still"] = _still(world, truth, per_start, size, still_frames)
    return report


def _first_and_return(world: World, truth: MazeWorld, runs: list[tuple[int, Loop]], size: int,
                      keep: set[int]) -> tuple[dict[int, list[np.ndarray]], dict[int, list[np.ndarray]]]:
    """Step every run's actions; the world's and the truth's frames at the indices in `keep`, per index."""
    keys = [("lc", s) for s, _ in runs]
    for (s, lp), key in zip(runs, keys):
        truth.reset(key, s, size, size, pose=lp.actions[0].pose)
        image = truth.step({key: lp.actions[0]})[key].pixels
        _reset(world, key, s, size, lp.actions[0].pose, image)
    got: dict[int, list[np.ndarray]] = {i: [] for i in keep}
    want: dict[int, list[np.ndarray]] = {i: [] for i in keep}
    length = max(len(lp.actions) for _, lp in runs)
    guided = "guidance" in world.capabilities
    for t in range(length):
        live = {key: lp.actions[min(t, len(lp.actions) - 1)] for (_, lp), key in zip(runs, keys)}
        if guided:  # the engine's buffers of the same camera
            live = {k: replace(a, guidance=truth.renderer.guidance(a.pose, size, size, truth.fov_deg))
                    for k, a in live.items()}
        frames = world.step(live)
        if t in keep:
            got[t] = [frames[k].pixels for k in keys]
            want[t] = [f.pixels for f in truth.step({k: live[k] for k in keys}).values()]
    for key in keys:
        world.close(key)
        truth.close(key)
    return got, want


def _run(world: World, truth: MazeWorld, runs: list[tuple[int, Loop]], size: int) -> dict:
    last = len(runs[0][1].actions) - 1
    assert all(len(lp.actions) - 1 == last for _, lp in runs), "runs of one loop have the same length"
    got, want = _first_and_return(world, truth, runs, size, {0, last})
    rows = range(len(runs))
    return {
        "return_vs_first": _mean([_score(got[last][i], got[0][i]) for i in rows]),
        "return_vs_truth": _mean([_score(got[last][i], want[last][i]) for i in rows]),
        "first_vs_truth": _mean([_score(got[0][i], want[0][i]) for i in rows]),
        "truth_return_vs_first": _mean([_score(want[last][i], want[0][i]) for i in rows]),
    }


def _still(world: World, truth: MazeWorld, per_start: list[list[Loop]], size: int, frames: int) -> dict:
    runs = [(s, Loop("still", [loops[0].actions[0]] + [Action(pose=loops[0].actions[0].pose)] * frames, 0.0))
            for s, loops in enumerate(per_start)]
    at = [t for t in STILL_AT if t <= frames] or [frames]
    got, want = _first_and_return(world, truth, runs, size, {0, *at})
    rows = range(len(runs))
    return {"frames": frames,
            "vs_first": {str(t): _mean([_score(got[t][i], got[0][i]) for i in rows]) for t in at},
            "vs_truth": {str(t): _mean([_score(got[t][i], want[t][i]) for i in rows]) for t in at}}

