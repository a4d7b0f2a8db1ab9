"""The ONNX Runtime backend (runtime/neural/onnx.py) makes the frames the torch backend makes: whole episodes,
batched, with and without poses, from start images, past the cache window; exports are reused only when they
were made from the same checkpoint and settings; `serve --backend onnx` serves them over the protocol."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from runtime.camera import c2w_from_yaw_pitch
from runtime.eval.metrics import psnr
from runtime.neural.checkpoint import init_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import Action

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "runtime/configs/tiny.yaml"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny"
    start_frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), np.uint8)
    init_checkpoint(path, TINY, seed=1, start_frames=start_frames)
    return path


def episode(world: NeuralWorld, frames: int) -> list[dict]:
    """Three episodes stepped together: controller only, engine poses, a start image (then teacher forcing)."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    world.reset("walk", seed=3, width=32, height=32)
    world.reset("posed", seed=4, width=32, height=32, pose=c2w_from_yaw_pitch(np.array([1.0, 0.5, 2.0]), 30.0, 5.0))
    world.reset("image", seed=5, width=32, height=32, image=image)
    out = []
    for i in range(frames):
        pose = c2w_from_yaw_pitch(np.array([1.0, 0.5, 2.0 + 0.1 * i]), 30.0 + 3 * i, 5.0)
        actions = {"walk": Action(move=(0.0, 1.0), look=(4.0, -1.0), buttons=i % 2),
                   "posed": Action(move=(0.5, 0.5), pose=pose, fov_deg=70.0), "image": Action(look=(-2.0, 0.0))}
        observed = {"walk": image[:32, :32], "posed": image[8:40, 8:40], "image": image[:32, 16:]} if i == 3 else None
        frames = world.step(actions) if observed is None else world.teacher_forced_step(actions, observed)
        out.append({k: f.pixels for k, f in frames.items()})
    return out


def test_onnx_frames_match_torch_over_whole_episodes(checkpoint: Path, tmp_path: Path) -> None:
    torch_frames = episode(NeuralWorld(checkpoint), 8)  # 8 > sinks + window: the ring buffer has rolled
    onnx_frames = episode(NeuralWorld(checkpoint, backend="onnx", export_dir=tmp_path / "onnx"), 8)
    for want, got in zip(torch_frames, onnx_frames):
        for key in want:
            assert np.abs(want[key].astype(int) - got[key].astype(int)).max() <= 2, key  # fp32 rounding only


def test_int8_stays_close_to_float32(checkpoint: Path, tmp_path: Path) -> None:
    fp32 = episode(NeuralWorld(checkpoint, backend="onnx", export_dir=tmp_path / "fp32"), 6)
    int8_world = NeuralWorld(checkpoint, backend="onnx-int8", export_dir=tmp_path / "int8")
    assert json.loads((tmp_path / "int8/manifest.json").read_text())["quantize"] == "int8"
    int8 = episode(int8_world, 6)
    values = [psnr(a[k], b[k]) for a, b in zip(fp32, int8) for k in a]
    assert np.mean(values) > 25, values  # quantized, not broken (the default model's cost is in the benchmark)
    assert any(not np.array_equal(a[k], b[k]) for a, b in zip(fp32, int8) for k in a)  # it is really int8


def test_an_export_is_reused_only_when_it_matches(checkpoint: Path, tmp_path: Path) -> None:
    export = tmp_path / "onnx"
    NeuralWorld(checkpoint, backend="onnx", export_dir=export)
    made = (export / "step.onnx").stat().st_mtime_ns
    NeuralWorld(checkpoint, backend="onnx", export_dir=export)
    assert (export / "step.onnx").stat().st_mtime_ns == made  # same checkpoint and settings: reused
    NeuralWorld(checkpoint, steps=3, backend="onnx", export_dir=export)
    assert json.loads((export / "manifest.json").read_text())["steps"] == 3  # other settings: exported again


def test_cli_export_then_serve_with_onnx_backend(checkpoint: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    init_checkpoint(model, TINY, seed=2)
    done = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "export-onnx", str(model)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["files"]) == {"step.onnx", "decode.onnx", "encode.onnx", "manifest.json"}
    with DaemonProcess(str(model), "--backend", "onnx") as d, Client(d.address, seed=1) as c:
        c.grant(4)
        for _ in range(4):
            c.send_input(move=(0.0, 1.0))
        frames = [c.recv_frame() for _ in range(4)]
    want = NeuralWorld(model)
    want.reset(0, seed=1, width=32, height=32)
    for frame in frames:
        expected = want.step({0: Action(move=(0.0, 1.0))})[0].pixels
        assert np.abs(frame.image.astype(int) - expected.astype(int)).max() <= 2
    bad = subprocess.run([sys.executable, "-m", "bridge.tools.cli", "serve", "--world", str(model), "--backend", "onnx",
                          "--dtype", "bfloat16"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "torch backend" in bad.stderr
