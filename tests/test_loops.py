"""Loop-closure evaluation: the maze (its own ground truth) closes every loop; a world that returns noise when
it comes back to a place it has seen, or one that drifts while the camera stands still, is caught."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pytest

from runtime.eval.loops import loop_closure, make_loops
from runtime.maze.world import MazeWorld
from runtime.world import Action, Frame

SHORT = (6.0,)  # a revisit 6 s apart keeps the test quick; the CLI runs 30 s and 3 min


class Forgetful(MazeWorld):
    """The maze, except that a pose seen more than 16 frames ago comes back as noise."""

    name = "forgetful"

    def reset(self, key: Hashable, seed: int, width: int, height: int, pose=None, image=None) -> None:
        super().reset(key, seed, width, height, pose, image)
        self.seen: dict = getattr(self, "seen", {})
        self.seen[key] = []

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        frames = super().step(actions)
        for key, frame in frames.items():
            past = self.seen[key]
            if any(np.abs(frame.pose - p).max() < 1e-6 for p in past[:-16]):
                rng = np.random.default_rng(len(past))
                frames[key] = Frame(rng.integers(0, 256, frame.pixels.shape, dtype=np.uint8), frame.pose)
            past.append(frame.pose)
        return frames


class Drifting(MazeWorld):
    """The maze, darkening a little every frame."""

    name = "drifting"

    def reset(self, key: Hashable, seed: int, width: int, height: int, pose=None, image=None) -> None:
        super().reset(key, seed, width, height, pose, image)
        self.age: dict = getattr(self, "age", {})
        self.age[key] = 0

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        frames = super().step(actions)
        for key, frame in frames.items():
            self.age[key] += 1
            fade = max(0.0, 1.0 - self.age[key] / 300)
            frames[key] = Frame((frame.pixels * fade).astype(np.uint8), frame.pose)
        return frames


@pytest.fixture(scope="module")
def maze() -> MazeWorld:
    return MazeWorld(level_seed=0)


def test_every_loop_returns_to_its_start(maze):
    loops = make_loops(maze, seed=1000, revisits=SHORT)
    assert [lp.name for lp in loops][:2] == ["spin_360", "out_and_back"] and loops[-1].name == "revisit_6s"
    for lp in loops:
        first, back = lp.actions[0].pose, lp.actions[-1].pose
        assert np.abs(first - back).max() < 1e-6, lp.name
        moved = max(np.abs(a.pose - first).max() for a in lp.actions)
        assert moved > 0.5, f"{lp.name} never leaves its start"


def test_the_maze_closes_its_loops_and_a_forgetful_world_does_not(maze):
    truth = loop_closure(MazeWorld(level_seed=0), maze, starts=2, size=32, revisits=SHORT, still_frames=0)
    assert truth["world"] == "maze" and truth["starts"] == 2
    for name, row in truth["loops"].items():
        assert row["return_vs_first"]["psnr"] > 40, name  # round-off in the closing pose at most
        assert row["return_vs_truth"]["psnr"] == 100.0, name  # the maze is the truth
    forgetful = loop_closure(Forgetful(level_seed=0), maze, starts=2, size=32, revisits=SHORT, still_frames=0)
    for name in ("out_and_back", "revisit_6s"):
        row = forgetful["loops"][name]
        assert row["return_vs_first"]["psnr"] < 15 and row["return_vs_truth"]["psnr"] < 15, name
        assert row["first_vs_truth"]["psnr"] == 100.0  # its first visit was fine


def test_standing_still_measures_drift(maze):
    steady = loop_closure(MazeWorld(level_seed=0), maze, starts=1, size=32, revisits=(), still_frames=120)
    assert steady["still"]["vs_first"]["100"]["psnr"] == 100.0
    drifting = loop_closure(Drifting(level_seed=0), maze, starts=1, size=32, revisits=(), still_frames=120)
    assert drifting["still"]["vs_first"]["100"]["psnr"] < 25
    assert drifting["still"]["vs_truth"]["100"]["psnr"] < 25


def test_eval_loops_command_writes_its_json(tmp_path):
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "eval", "--loops", "--world", "maze", "--starts", "1",
                        "--revisits", "2", "--still-frames", "20", "--size", "24", "--level", "1003",
                        "--style", "varied", "--json", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "loops.json").read_text())
    assert report == json.loads(r.stdout) and set(report["loops"]) >= {"spin_360", "out_and_back", "revisit_2s"}
    assert report["still"]["vs_first"]["20"]["psnr"] == 100.0
    assert (report["level"], report["style"]) == (1003, "varied")  # the truth the trajectories were walked in
    bad = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "eval", "--loops", "--revisits", "soon"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--revisits takes seconds" in bad.stderr


class Echo(MazeWorld):
    """Renders the guidance it is given (its flat colours): a guided world with perfect recall of geometry."""

    name, capabilities = "echo", ("pose", "guidance")

    def step(self, actions: dict[Hashable, Action]) -> dict[Hashable, Frame]:
        frames = super().step(actions)
        return {k: Frame(actions[k].guidance.colour.copy(), f.pose) for k, f in frames.items()}


def test_a_guided_world_gets_the_mazes_guidance_of_each_pose(maze):
    report = loop_closure(Echo(level_seed=0), maze, starts=1, size=32, revisits=SHORT, still_frames=0)
    assert report["guidance"] is True
    for name, row in report["loops"].items():
        assert row["return_vs_first"]["psnr"] > 40, name  # the same pose, the same buffers
        assert row["first_vs_truth"]["psnr"] < 30, name  # flat colours, not the render
