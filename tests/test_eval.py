"""`worldbridge eval` end to end on a tiny random model: every metric present, baselines computed in the same
run, teacher forcing really uses the true frames, GIFs written; the stability check flags a world that collapses
(to grey, into noise) and passes one that keeps showing real frames."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.eval.evaluate import EVAL_SEED, held_out_trajectories, stability
from runtime.eval.metrics import psnr, ssim
from runtime.maze.world import MazeWorld
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import FPS, Action

ROOT = Path(__file__).resolve().parents[1]


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == 100.0 and abs(ssim(a, a) - 1) < 1e-9
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < psnr(a, b) < 30 and abs(ssim(a, rng.integers(0, 256, a.shape, dtype=np.uint8))) < 0.1
    # any value range through `peak`: the same images in [-1, 1] score the same
    assert abs(psnr(a / 127.5 - 1, b / 127.5 - 1, peak=2.0) - psnr(a, b)) < 1e-9
    assert psnr(a / 127.5 - 1, a / 127.5 - 1, peak=2.0) == 100.0
    c = a.copy()
    c.flat[0] ^= 1  # one pixel one level off: finite, and never above the score of identical images
    assert 60 < psnr(a, c) < 100.0 and psnr(np.zeros((1024, 1024, 3)), np.full((1024, 1024, 3), 1e-4)) == 100.0


class Replay:
    """A world that answers with the true maze's frames for the same walk (so it is as stable as the truth),
    or, after `after` frames, with `broken` frames: a flat grey picture or noise."""

    def __init__(self, size: int, after: int | None = None, broken: str = "grey"):
        self.maze, self.size, self.after, self.broken = MazeWorld(level_seed=0), size, after, broken
        self.rng = np.random.default_rng(0)

    def reset(self, key, seed, width, height, pose=None, image=None):
        self.maze.reset(key, EVAL_SEED, self.size, self.size)  # where stability() starts its true maze
        self.t = 0

    def step(self, actions):
        frames = self.maze.step(actions)
        self.t += 1
        if self.after is not None and self.t > self.after:
            for f in frames.values():
                f.pixels = (np.full_like(f.pixels, 128) if self.broken == "grey"
                            else self.rng.integers(0, 256, f.pixels.shape, dtype=np.uint8))
        return frames

    def close(self, key):
        self.maze.close(key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> np.ndarray:
    trajs = held_out_trajectories(MazeWorld(level_seed=0), tmp_path_factory.mktemp("held_out"), 2, 20, 32)
    return np.concatenate([tr.frames for tr in trajs])


def test_stability_passes_a_world_that_shows_real_frames(reference):
    report = stability(Replay(32), MazeWorld(level_seed=0), 0.1, reference)
    assert report["frames"] == 96 and report["frames_outside_real_range"] == 0 and report["collapsed"] is False


@pytest.mark.parametrize("broken", ["grey", "noise"])
def test_stability_flags_a_world_that_collapses(reference, broken):
    report = stability(Replay(32, after=30, broken=broken), MazeWorld(level_seed=0), 0.1, reference)
    assert report["frames_outside_real_range"] == 96 - 30 and report["collapsed"] is True  # every broken frame


def test_teacher_forcing_puts_true_frames_in_context(tmp_path):
    init_checkpoint(tmp_path / "m", ROOT / "runtime/configs/tiny.yaml")
    world = NeuralWorld(tmp_path / "m")
    rng = np.random.default_rng(1)
    truth = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    out = []
    for observed in (None, truth):
        world.reset(0, 5, 32, 32, image=truth[0])
        act = {0: Action(move=(0, 1))}
        frames = [(world.step(act) if observed is None else world.teacher_forced_step(act, {0: observed[i]}))[0].pixels
                  for i in range(1, 3)]
        out.append(frames)
    np.testing.assert_array_equal(out[0][0], out[1][0])  # same start, same noise: same first frame
    assert not np.array_equal(out[0][1], out[1][1])  # different context for the second


def test_eval_command(tmp_path):
    init_checkpoint(tmp_path / "model", ROOT / "runtime/configs/tiny.yaml")
    init_checkpoint(tmp_path / "teacher", ROOT / "runtime/configs/tiny.yaml", seed=1)
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "eval", "--world", str(tmp_path / "model"),
                        "--trajectories", "2", "--frames", "20", "--stability-minutes", "0.05", "--gifs", "1",
                        "--out", str(tmp_path / "eval"), "--json"], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    row = report["open_loop"]["16"]
    assert {"model", "model_with_poses", "copy_last_frame", "teacher", "gain_over_copy_db"} <= set(row)
    assert row["gain_over_copy_db"] == round(row["model"]["psnr"] - row["copy_last_frame"]["psnr"], 2)
    assert set(report["teacher_forced"]) == {"model", "copy_last_frame"}
    st = report["stability"]
    assert st["frames"] == 48 and 0 <= st["frames_outside_real_range"] <= 48
    assert st["collapsed"] is (st["frames_outside_real_range"] > 0.01 * 48)  # the rule, as reported
    assert (tmp_path / "eval" / "eval.json").exists()
    with Image.open(tmp_path / "eval" / "rollout_0.gif") as gif:  # model | truth, pixels doubled, 19 frames
        assert gif.size == (2 * (2 * 32 + 4), 2 * 32)
        assert abs(gif.info["duration"] - 1000 / FPS) < 10  # GIF: 10 ms units
