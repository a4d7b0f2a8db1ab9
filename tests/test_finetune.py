"""The level-preview workflow of docs/finetune.md, end to end at toy scale: record a level over the protocol,
fine-tune a trained model on the recording with `worldbridge train --data REC --init MODEL`, serve the result
and step it. Tiny model and few steps: this checks that the pieces fit, not what the model learns."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from bridge.protocol import poses
from bridge.server.daemon import Daemon, DaemonConfig
from bridge.server.recorder import RecordConfig
from runtime.data.dataset import Dataset
from runtime.maze.explore import Player
from runtime.maze.world import MazeWorld
from runtime.world import IDLE

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # runtime/configs/tiny.yaml


def worldbridge(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def tiny_config(tmp_path: Path, name: str, data: Path, **stages) -> Path:
    cfg = {"model": str(ROOT / "runtime/configs/tiny.yaml"), "data": str(data), "out": str(tmp_path / name),
           "holdout": 1, "threads": 1,
           "autoencoder": {"steps": 4, "batch": 4, "lr": 0.001, "warmup": 1, "crop": 16, "log_every": 2},
           "teacher": {"steps": 4, "batch": 2, "warmup": 1, "log_every": 2},
           "student": {"steps": 2, "batch": 2, "warmup": 1, "log_every": 1, "teacher_steps": 2, "rollout": 3}}
    for k, v in stages.items():
        cfg[k].update(v)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def record_level(address: str, frames: int) -> dict:
    """What an engine does while recording: play, render its own frame, send it with the input and pose."""
    engine = MazeWorld(level_seed=5)  # another level than the one the base model saw
    engine.reset(0, 1, SIZE, SIZE)
    player = Player(engine.level.solid, np.random.default_rng(0))
    action = IDLE
    with Client(address, width=SIZE, height=SIZE, engine="godot") as c:
        c.start_recording("my level")
        for _ in range(frames):
            frame = engine.step({0: action})[0]
            p, q = poses.from_canonical("godot", frame.pose)
            c.send_input(action.move, action.look, action.buttons, pose={"p": p.tolist(), "q": q.tolist()},
                         image=frame.pixels)
            action = player.act(frame.pose)
        return c.stop_recording()


def test_record_finetune_serve(tmp_path):
    base_data = tmp_path / "maze"
    worldbridge("data", "generate", "--episodes", "3", "--frames", "12", "--size", str(SIZE), "--out", str(base_data))
    base = json.loads(worldbridge("train", str(tiny_config(tmp_path, "base", base_data)),
                                  "--until", "teacher").stdout.strip().splitlines()[-1])["model"]

    daemon = Daemon(MazeWorld(), DaemonConfig("tcp://127.0.0.1:0",
                                              record=RecordConfig(tmp_path / "recordings", episode_frames=12)))
    daemon.start()
    try:
        done = record_level(daemon.address, 40)
    finally:
        daemon.stop()
    recording = Path(done["path"])
    assert recording == (tmp_path / "recordings" / "mylevel").resolve() and done["frames"] == 40
    assert [e["frames"] for e in Dataset(recording).meta["episodes"]] == [12, 12, 12, 12]

    out = json.loads(worldbridge("train", str(tiny_config(tmp_path, "unused", tmp_path / "nowhere")),
                                 "--data", str(recording), "--init", base, "--out", str(tmp_path / "mylevel"))
                     .stdout.strip().splitlines()[-1])
    model = Path(out["model"])
    log = [json.loads(line) for line in (tmp_path / "mylevel" / "log.jsonl").read_text().splitlines()]
    stages = {r["stage"] for r in log if "step" in r}
    assert stages == {"teacher", "student"}  # --init keeps the trained autoencoder

    with DaemonProcess(str(model)) as served, Client(served.address, width=SIZE, height=SIZE) as c:
        c.send_input(move=(0.0, 1.0))
        c.grant(3)
        shots = [c.recv_frame(timeout=60).image for _ in range(3)]
    assert all(s.shape == (SIZE, SIZE, 3) for s in shots)
