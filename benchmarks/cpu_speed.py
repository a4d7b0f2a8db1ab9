"""Speed levers for plain CPUs, each with its quality cost, in one run: denoising steps x backend.

For every option: the model's median frame time in process (ms), and open-loop PSNR over 16 and 64 frames of
held-out maze walks against the ground truth and against the shipped setting's own frames (4 steps, torch
float32). The machine record says which CPU and ISA it ran on; to approximate an AVX2-only CPU on an AVX-512
one, cap the kernels (torch and oneDNN honour these; ONNX Runtime does not, so its rows stay AVX-512):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/cpu_speed.py --out X.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from runtime.eval.bench import scripted_action  # noqa: E402
from runtime.eval.evaluate import held_out_trajectories, open_loop  # noqa: E402
from runtime.eval.metrics import psnr  # noqa: E402
from runtime.machine import describe, native_bf16  # noqa: E402
from runtime.maze.world import MazeWorld  # noqa: E402
from runtime.neural.world import NeuralWorld  # noqa: E402


def frame_ms(world: NeuralWorld, frames: int) -> float:
    world.reset("t", seed=0, width=0, height=0)
    times = []
    for i in range(frames):
        start = time.perf_counter()
        world.step({"t": scripted_action(i)})
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times[frames // 4:]), 2)


def mean_psnr(a: list[np.ndarray], b: list[np.ndarray], horizon: int) -> float:
    return round(float(np.mean([psnr(x[i], y[i]) for x, y in zip(a, b) for i in range(horizon)])), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--steps", default="4,2,1")
    parser.add_argument("--trajectories", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60, help="timed frames per option")
    parser.add_argument("--out")
    args = parser.parse_args()
    options = [("torch", "float32"), ("onnx-int8", "float32")] + ([("torch", "bfloat16")] if native_bf16() else [])
    work = Path(tempfile.mkdtemp(prefix="cpu_speed-"))
    trajs = held_out_trajectories(MazeWorld(0), work / "trajectories", args.trajectories, 65, 128)
    truth = [tr.frames[1:] for tr in trajs]
    rows, reference = [], None
    for steps in (int(s) for s in args.steps.split(",")):
        for backend, dtype in options:
            world = NeuralWorld(args.model, steps=steps, dtype=dtype, backend=backend,
                                export_dir=work / f"onnx-{steps}" if backend != "torch" else None)
            ms = frame_ms(world, args.frames)
            pred = open_loop(world, trajs, 65, with_pose=False)
            if reference is None:
                reference = pred  # the shipped setting: 4 steps, torch float32
            rows.append({"steps": steps, "backend": backend, "dtype": dtype, "frame_ms": ms,
                         "fps": round(1000 / ms, 1),
                         "psnr_vs_truth_16": mean_psnr(pred, truth, 16), "psnr_vs_truth_64": mean_psnr(pred, truth, 64),
                         "psnr_vs_shipped_16": mean_psnr(pred, reference, 16)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"machine": describe(), "model": args.model, "options": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
