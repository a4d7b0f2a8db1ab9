"""--backend auto / --dtype auto: the fastest way to run a model, measured on this machine, remembered.

Candidates are the backends whose quality cost is known and small (benchmarks/results: bfloat16 ~50 dB and ONNX
int8 ~46 dB PSNR against float32 frames): torch float32, torch bfloat16 only where the CPU has it natively
(emulated bfloat16 runs ~4x slower than float32 on AVX2-only CPUs), ONNX Runtime float32 and int8. Each runs
a short walk in this process; the median frame time decides. The choice is cached per machine (CPU, ISA cap,
threads, library versions) and model bytes in $WORLDBRIDGE_CACHE or ~/.cache/worldbridge/calibration.json,
so only the first start pays (a few seconds; an ONNX export the first time, too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch

from runtime.machine import describe, native_bf16
from runtime.neural.checkpoint import checkpoint_sha256, read_config
from runtime.world import Action

log = logging.getLogger(__name__)

WALK = Action(move=(0.3, 1.0), look=(2.0, 0.5))


def candidates(backend: str, dtype: str, device: str, torch_only: bool = False) -> list[tuple[str, str]]:
    """(backend, dtype) pairs worth measuring for an --backend / --dtype request; torch_only: a model the ONNX
    backend cannot run (guidance, memory)."""
    if str(device).startswith("cuda"):
        return [("torch", "bfloat16" if dtype == "auto" else dtype)]  # no calibration: bf16 is native there
    torch_dtypes = ["float32", "bfloat16"] if native_bf16() else ["float32"]
    if backend == "torch" or (backend == "auto" and torch_only):
        return [("torch", d) for d in (torch_dtypes if dtype == "auto" else [dtype])]
    if backend != "auto":
        return [(backend, "float32")]
    return [("torch", d) for d in torch_dtypes] + [("onnx", "float32"), ("onnx-int8", "float32")]


def cache_file() -> Path:
    root = os.environ.get("WORLDBRIDGE_CACHE") or Path.home() / ".cache" / "worldbridge"
    return Path(root) / "calibration.json"


def _key(path: Path, steps: int | None, options: list[tuple[str, str]]) -> str:
    what = [describe(), steps, options, checkpoint_sha256(path)]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _table(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def frame_ms(path: Path, backend: str, dtype: str, steps: int | None, frames: int = 16) -> float:
    """Median milliseconds per frame of a short walk (the first frames warm up and are not counted)."""
    from runtime.neural.world import NeuralWorld

    world = NeuralWorld(path, steps=steps, dtype=dtype, backend=backend)
    world.reset("calibrate", seed=0, width=0, height=0)
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        world.step({"calibrate": WALK})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[frames // 4:])


def choose(path: str | Path, backend: str, dtype: str, device: str = "cpu", steps: int | None = None) -> dict:
    """{"backend", "dtype", "measured_ms": {name: ms}} for serving `path`; measured once per machine and model."""
    dit = read_config(Path(path) / "config.yaml").dit
    path, options = Path(path), candidates(backend, dtype, device, torch_only=bool(dit.guidance or dit.memory))
    if len(options) == 1:
        return {"backend": options[0][0], "dtype": options[0][1], "measured_ms": {}}
    file, key = cache_file(), _key(path, steps, options)
    cached = _table(file).get(key)
    if cached:
        return cached
    log.warning("calibrating %s: timing %s on this machine (once)", path, ", ".join(f"{b}/{d}" for b, d in options))
    with torch.random.fork_rng():
        measured = {f"{b}/{d}": round(frame_ms(path, b, d, steps), 2) for b, d in options}
    best = min(measured, key=measured.__getitem__)
    choice = {"backend": best.split("/")[0], "dtype": best.split("/")[1], "measured_ms": measured}
    table = _table(file)  # read again: another daemon may have calibrated meanwhile
    table[key] = choice
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1))
    tmp.replace(file)  # atomic: two daemons starting at once never read half a file
    return choice
