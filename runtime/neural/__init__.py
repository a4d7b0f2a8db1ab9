"""The house world model: autoencoder, causal DiT with a KV cache, sampler, checkpoints, NeuralWorld and its
torch / ONNX Runtime backends. `open_model(path)` opens a model directory the way the daemon serves it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.neural.world import NeuralWorld


def open_model(
    path: str | Path, device: str = "cpu", steps: int | None = None, dtype: str = "auto", backend: str = "torch",
    memory: bool = True,
) -> NeuralWorld:
    """A model directory on a backend: "torch" (in `dtype`), "onnx" / "onnx-int8" (ONNX Runtime in float32 or
    with int8 transformer weights, exported next to the model on first use), or "auto". "auto" backend or dtype:
    the fastest measured on this machine (runtime/neural/calibrate.py), never an emulated dtype. memory: False
    leaves a memory model's memory slots empty (NeuralWorld)."""
    from runtime.neural.calibrate import choose
    from runtime.neural.world import NeuralWorld

    if backend == "auto" or dtype == "auto":
        picked = choose(path, backend, dtype, device, steps)
        backend, dtype = picked["backend"], picked["dtype"]
    return NeuralWorld(path, device=device, steps=steps, dtype=dtype, backend=backend, memory=memory)
