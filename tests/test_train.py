"""Data generation, the three training stages, resume, and data-parallel training on 2 CPU processes (gloo),
all on a tiny model and a tiny dataset: the pipeline CI exercises. The default model is trained the same way."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from runtime.data.dataset import Dataset
from runtime.neural.world import NeuralWorld
from runtime.world import Action

ROOT = Path(__file__).resolve().parents[1]


def worldbridge(*args, env=None, timeout=600):
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", *args], capture_output=True, text=True, cwd=ROOT,
                       timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "maze"
    worldbridge("data", "generate", "--episodes", "6", "--frames", "20", "--size", "32", "--out", str(out))
    return out


def config(tmp_path, data, **stages):
    cfg = {
        "model": str(ROOT / "runtime/configs/tiny.yaml"), "data": str(data), "out": str(tmp_path / "run"),
        "holdout": 2, "threads": 1,
        "autoencoder": {"steps": 6, "batch": 4, "lr": 0.001, "warmup": 2, "crop": 16, "log_every": 2},
        "teacher": {"steps": 6, "batch": 2, "warmup": 2, "log_every": 2},
        "student": {"steps": 4, "batch": 2, "warmup": 1, "log_every": 1, "teacher_steps": 3, "rollout": 4},
    }
    for k, v in stages.items():
        cfg[k].update(v)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dataset_format(dataset):
    data = Dataset(dataset)
    assert len(data) == 6 and data.frames == 120 and data.meta["width"] == 32
    ep = data.episode(0)
    assert ep["frames"].shape == (20, 32, 32, 3) and ep["poses"].shape == (20, 4, 4)
    assert not ep["move"][0].any() and ep["move"][1:].any()  # the start frame has no action; then it plays
    positions = ep["poses"][:, [0, 2], 3]
    assert np.linalg.norm(positions[-1] - positions[0]) > 0 or ep["look"].any()


def test_dataset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        Dataset(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a worldbridge-dataset"):
        Dataset(tmp_path)


def logged(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_all_stages_then_serve_and_resume(tmp_path, dataset):
    cfg = config(tmp_path, dataset)
    out = json.loads(worldbridge("train", str(cfg)).stdout.strip().splitlines()[-1])
    model = Path(out["model"])
    run = tmp_path / "run"
    steps = {(r["stage"], r["step"]) for r in logged(run) if "step" in r}
    assert {("autoencoder", 6), ("teacher", 6), ("student", 4)} <= steps
    assert (run / "teacher" / "config.yaml").exists()
    world = NeuralWorld(model)
    world.reset(0, 0, 32, 32)
    frame = world.step({0: Action(move=(0, 1))})[0]
    assert frame.pixels.shape == (32, 32, 3)
    before = len(logged(run))
    worldbridge("train", str(cfg))  # everything is done: resumes, trains nothing more
    assert not [r for r in logged(run)[before:] if "step" in r]
    # more steps in the config: the run continues from where it stopped, not from scratch
    worldbridge("train", str(config(tmp_path, dataset, student={"steps": 6})))
    student_steps = [r["step"] for r in logged(run) if r.get("stage") == "student" and "step" in r]
    assert student_steps[-1] == 6 and 5 in student_steps and student_steps.count(1) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_parallel_two_processes(tmp_path, dataset):
    cfg = config(tmp_path, dataset)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                        "127.0.0.1", "--master_port", str(free_port()), "-m", "bridge.tools.cli", "train", str(cfg),
                        "--until", "teacher"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    records = logged(tmp_path / "run")
    assert ("teacher", 6) in {(x["stage"], x["step"]) for x in records if "step" in x}
    assert len([x for x in records if x.get("stage") == "teacher" and x.get("step") == 6]) == 1  # rank 0 logs
    assert r.stdout.count('"model"') == 1


def test_bad_config_is_a_clear_error(tmp_path, dataset):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": "x", "data": str(dataset), "out": "y", "teachr": {}}))
    r = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "train", str(bad)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "unknown keys ['teachr']" in r.stderr
