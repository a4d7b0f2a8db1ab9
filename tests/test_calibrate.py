"""--backend auto / --dtype auto: measured on this machine, the fastest wins, never an emulated dtype, cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import machine
from runtime.neural import calibrate, open_model
from runtime.neural.checkpoint import init_checkpoint

TINY = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibrate") / "tiny"
    init_checkpoint(path, TINY)
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WORLDBRIDGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "calibration.json"


def test_emulated_bfloat16_is_never_a_candidate(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # as on an AVX2-only CPU
    assert not machine.native_bf16()
    assert calibrate.candidates("torch", "auto", "cpu") == [("torch", "float32")]
    assert ("torch", "bfloat16") not in calibrate.candidates("auto", "auto", "cpu")
    assert calibrate.candidates("auto", "auto", "cuda") == [("torch", "bfloat16")]


def test_the_fastest_measured_wins_and_is_remembered(model, cache, monkeypatch):
    monkeypatch.setattr(machine, "native_bf16", lambda: True)
    monkeypatch.setattr(calibrate, "native_bf16", lambda: True)
    fake = {("torch", "float32"): 30.0, ("torch", "bfloat16"): 20.0, ("onnx", "float32"): 25.0,
            ("onnx-int8", "float32"): 12.0}
    monkeypatch.setattr(calibrate, "frame_ms", lambda path, b, d, steps: fake[(b, d)])
    picked = calibrate.choose(model, "auto", "auto")
    assert (picked["backend"], picked["dtype"]) == ("onnx-int8", "float32") and len(picked["measured_ms"]) == 4
    assert calibrate.choose(model, "torch", "auto")["dtype"] == "bfloat16"
    assert cache.is_file()

    def fail(*args):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(calibrate, "frame_ms", fail)
    assert calibrate.choose(model, "auto", "auto") == picked


def test_open_model_auto_measures_for_real(model, cache):
    world = open_model(model, dtype="auto", backend="torch")
    measured = calibrate.choose(model, "torch", "auto")["measured_ms"]
    assert set(measured) == ({"torch/float32", "torch/bfloat16"} if machine.native_bf16() else set())
    assert all(ms > 0 for ms in measured.values())
    want = min(measured, key=measured.get).split("/")[1] if measured else "float32"
    assert str(world.dtype) == f"torch.{want}"
