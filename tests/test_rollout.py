"""`worldbridge rollout` and `worldbridge export-lingbot`: action scripts, LingBot-World action directories, a
dataset episode exported and rolled back out through a real maze daemon, and the one-line user errors."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge.tools import action_script
from bridge.tools.connect import open_world
from bridge.tools.errors import UserError
from bridge.tools.rollout import play_script
from runtime.camera import yaw_pitch_from_c2w
from runtime.data.dataset import Dataset
from runtime.data.generate import generate
from runtime.eval.metrics import psnr
from runtime.lingbot import directory as lingbot
from runtime.maze.world import MazeWorld

ROOT = Path(__file__).resolve().parents[1]


def worldbridge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_yaml_steps_compile_to_frames():
    s = action_script.parse({"seed": 3, "fov_deg": 70, "steps": [
        {"wait": 0.5}, {"walk": "forward", "seconds": 1, "run": True}, {"turn": "left", "degrees": 45},
        {"look": "up", "degrees": 30, "frames": 3}, {"strafe": "right", "walk": "back", "frames": 2, "speed": 0.5},
    ]})
    a = s.actions
    assert s.seed == 3 and len(a) == 1 + 8 + 16 + 8 + 3 + 2  # start frame + each step at 16 frames per second
    assert a[0].move == (0.0, 0.0) and a[0].look == (0.0, 0.0)  # frame 0: the start, no input
    assert a[9].move == (0.0, 1.0) and a[9].buttons == 1
    assert math.isclose(sum(x.look[0] for x in a[25:33]), -45.0)  # 45 degrees at 90 deg/s: 8 frames
    assert a[33].look == (0.0, 10.0)
    assert a[-1].move == (0.5, -0.5) and all(x.fov_deg == 70 for x in a)


def test_the_shipped_example_parses():
    s = action_script.load(ROOT / "examples" / "walk_loop.yaml")
    assert s.kind == "yaml" and len(s.actions) > 100 and not s.has_poses


@pytest.mark.parametrize("steps, message", [
    ([{"walk": "forward"}], "step 1 ({walk: forward}): say how long"),
    ([{"wait": 1}, {"walk": "sideways", "seconds": 1}], "step 2"),
    ([{"turn": "left"}], "turn needs degrees"),
    ([{"jump": True}], "unknown key(s) jump"),
    ([{"wait": 1, "walk": "forward"}], "wait cannot be combined"),
    ([{"turn": "left", "look": "up", "degrees": 5}], "one of turn or look"),
    ([{"walk": "forward", "seconds": -1}], "seconds must be a number >= 0"),
    ([], "expected a list of steps"),
])
def test_bad_yaml_steps_say_where(steps, message):
    with pytest.raises(UserError, match=None) as e:
        action_script.parse({"steps": steps}, "walk.yaml")
    assert message in str(e.value) and str(e.value).startswith("walk.yaml")


def test_bad_lingbot_directories(tmp_path):
    with pytest.raises(UserError, match="no poses.npy"):
        action_script.load(tmp_path)
    np.save(tmp_path / "poses.npy", np.tile(np.eye(4, dtype=np.float32), (5, 1, 1)))
    np.save(tmp_path / "intrinsics.npy", np.ones((4, 4), np.float32))
    with pytest.raises(UserError, match=r"expected shape \(5, 4\)"):
        action_script.load(tmp_path)


def test_yaml_turns_and_walks_in_the_world(maze_daemon):
    s = action_script.parse({"seed": 5, "steps": [{"turn": "right", "degrees": 90}, {"look": "up", "degrees": 20}]})
    with open_world(address=maze_daemon.address, width=32, height=32, seed=s.seed) as conn:
        run = play_script(conn, s)
    assert len(run.frames) == len(s.actions) and run.frames[0].shape == (32, 32, 3)
    yaw0, pitch0 = yaw_pitch_from_c2w(run.poses[0])
    yaw1, pitch1 = yaw_pitch_from_c2w(run.poses[-1])
    assert math.isclose((yaw1 - yaw0) % 360, 90, abs_tol=1e-6) and math.isclose(pitch1 - pitch0, 20, abs_tol=1e-6)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    generate(MazeWorld(), out, episodes=2, frames=32, size=48, seed=11)
    return out


def test_export_then_rollout_reproduces_the_episode(dataset, tmp_path):
    lb = tmp_path / "lingbot"
    r = worldbridge("export-lingbot", "--data", str(dataset), "--episode", "1", "--out", str(lb))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == 32
    poses, lens, wasd = (np.load(lb / f) for f in ("poses.npy", "intrinsics.npy", "action.npy"))
    assert poses.shape == (32, 4, 4) and poses.dtype == np.float32 and lens.shape == (32, 4) and wasd.shape == (32, 4)
    ep = Dataset(dataset).episode(1)
    assert np.allclose(lens[:, 2:], 24.0) and np.allclose(lingbot.ActionDir(poses, lens).fov_deg(), ep["fov_deg"])
    assert wasd[:, 0].sum() > 0  # the explorer walks forward (W) some of the time
    with Image.open(lb / "image.jpg") as im:
        assert im.size == (48, 48)

    frames = tmp_path / "frames"
    r = worldbridge("rollout", "--world", "maze", "--actions", str(lb), "--out", str(frames), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["script"] == "lingbot" and report["frames"] == 32 and report["width"] == 48
    got = [np.asarray(Image.open(frames / f"frame_{t:06d}.png")) for t in range(32)]
    scores = [psnr(g, want) for g, want in zip(got, ep["frames"])]
    # poses travel as float32 files and quaternions: a few edge pixels may flip, nothing more
    assert min(scores) > 35 and np.median(scores) > 60, scores


def test_rollout_compare_gif_and_report(tmp_path):
    out = tmp_path / "walk.gif"
    r = worldbridge("rollout", "--world", "maze", "--actions", "examples/walk_loop.yaml", "--out", str(out),
                    "--compare", "maze", "--width", "32", "--height", "24", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    n = len(action_script.load(ROOT / "examples/walk_loop.yaml").actions)
    assert report["frames"] == n and report["compare"]["world"] == "maze"
    assert report["compare"]["psnr"] == [100.0] * n  # the maze is deterministic: identical to itself
    assert json.loads((tmp_path / "walk.json").read_text()) == report
    with Image.open(out) as im:  # Pillow merges identical consecutive frames (the waits) into longer ones
        durations = []
        for t in range(im.n_frames):
            im.seek(t)
            durations.append(im.info["duration"])
        assert abs(sum(durations) - 62 * n) < 0.05 * 62 * n and im.size == (2 * 32 + 4, 24)  # GIF: 10 ms units


@pytest.mark.parametrize("args, message", [
    (["--world", "maze", "--actions", "no/such.yaml", "--out", "x.gif"], "no such file or directory"),
    (["--world", "maze", "--actions", "README.md", "--out", "x.gif"], "expected a .yaml action script"),
    (["--world", "maze", "--actions", "examples/walk_loop.yaml", "--out", "x.avi"], "can write .gif, .mp4"),
    (["--world", "nowhere", "--actions", "examples/walk_loop.yaml", "--out", "OUT/x.gif"],
     "could not start a daemon for --world nowhere: --world nowhere: not 'maze'"),
])
def test_rollout_user_errors_are_one_line(args, message, tmp_path):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    r = worldbridge("rollout", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("worldbridge: error: ") and message in r.stderr


def test_mp4_needs_ffmpeg(tmp_path):
    out = tmp_path / "walk.mp4"
    r = worldbridge("rollout", "--world", "maze", "--actions", "examples/walk_loop.yaml", "--out", str(out),
                    "--width", "32", "--height", "32")
    if shutil.which("ffmpeg"):
        assert r.returncode == 0 and out.stat().st_size > 0, r.stderr
    else:
        assert r.returncode == 2 and "needs the ffmpeg program" in r.stderr and not out.exists()


def test_export_user_errors(dataset, tmp_path):
    r = worldbridge("export-lingbot", "--data", str(dataset), "--episode", "7", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "has episodes 0..1, not 7" in r.stderr
    r = worldbridge("export-lingbot", "--data", str(tmp_path), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "no meta.json" in r.stderr and "Traceback" not in r.stderr


def test_help_has_examples():
    for cmd in ("play", "rollout", "export-lingbot"):
        r = worldbridge(cmd, "--help")
        assert r.returncode == 0 and "examples:" in r.stdout
