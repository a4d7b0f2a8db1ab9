"""`worldbridge eval` end to end on a tiny random model: every metric present, baselines computed in the same
run, teacher forcing really uses the true frames, GIFs written."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from runtime.eval.evaluate import psnr, ssim
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import Action

ROOT = Path(__file__).resolve().parents[1]


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr(a, a) == 100.0 and abs(ssim(a, a) - 1) < 1e-9
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 25 < psnr(a, b) < 30 and abs(ssim(a, rng.integers(0, 256, a.shape, dtype=np.uint8))) < 0.1


def test_teacher_forcing_puts_true_frames_in_context(tmp_path):
    init_checkpoint(tmp_path / "m", ROOT / "runtime/configs/tiny.yaml")
    world = NeuralWorld(tmp_path / "m")
    rng = np.random.default_rng(1)
    truth = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    out = []
    for observed in (None, truth):
        world.reset(0, 5, 32, 32, image=truth[0])
        frames = [world.step({0: Action(move=(0, 1))}, None if observed is None else {0: observed[i]})[0].pixels
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
    assert report["stability"]["frames"] == 48 and report["stability"]["collapsed"] in (True, False)
    assert (tmp_path / "eval" / "rollout_0.gif").exists() and (tmp_path / "eval" / "eval.json").exists()
