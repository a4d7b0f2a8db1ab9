"""Per-frame cost of a neural world, in process (no sockets): by backend, over episode length, cache vs none.

All figures are medians in milliseconds over real frames of a scripted walk (runtime.world.Action), measured on
whatever threads torch / ONNX Runtime are given. `bridge/tools/bench.py` adds the daemon's end-to-end figures.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from runtime.eval.metrics import psnr
from runtime.neural import open_model
from runtime.neural.generate import commit, generate_cached, generate_recompute
from runtime.neural.world import NeuralWorld
from runtime.world import Action

# name -> how runtime.neural.open_model runs the model
VARIANTS: dict[str, dict[str, str]] = {
    "torch-fp32": {"backend": "torch", "dtype": "float32"},
    "torch-bf16": {"backend": "torch", "dtype": "bfloat16"},
    "onnx-fp32": {"backend": "onnx"},
    "onnx-int8": {"backend": "onnx-int8"},
}


def scripted_action(i: int) -> Action:
    """Walk, turn, strafe and look around, so every frame does real work (the same walk for every variant)."""
    phase = (i // 40) % 4
    move = [(0.0, 1.0), (0.5, 0.5), (-1.0, 0.0), (0.0, -0.5)][phase]
    return Action(move=move, look=(3.0 if phase % 2 else -2.0, math.sin(i / 15.0)))


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def rollout(world: NeuralWorld, frames: int, seed: int = 0) -> tuple[list[np.ndarray], list[float]]:
    """`frames` frames of the scripted walk from a fresh episode: the frames and each step's milliseconds."""
    world.reset("bench", seed=seed, width=0, height=0)
    pixels, ms = [], []
    for i in range(frames):
        start = time.perf_counter()
        pixels.append(world.step({"bench": scripted_action(i)})["bench"].pixels)
        ms.append((time.perf_counter() - start) * 1000)
    return pixels, ms


def _rollout_with(name: str, model: Path, frames: int) -> tuple[list[np.ndarray], list[float]]:
    return rollout(open_model(model, **VARIANTS[name]), frames)


def compare_backends(model: Path, variants: list[str], frames: int = 60, warmup: int = 10) -> dict[str, dict]:
    """Step time of each variant (median over frames warmup..frames of the walk) and the quality cost: mean
    PSNR of its frames against torch-fp32's frames of the same walk (same seed, same inputs, open loop, so
    differences compound as they would in play). Each variant runs alone in a fresh process, as a daemon
    would: thread pools one runtime leaves spinning would otherwise slow the next one down."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown backends {sorted(unknown)}; choose from {list(VARIANTS)}")
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        reference, _ = pool.apply(_rollout_with, ("torch-fp32", model, frames))
        runs = {name: pool.apply(_rollout_with, (name, model, frames)) for name in variants}
    results: dict[str, dict] = {}
    for name, (pixels, ms) in runs.items():
        step = statistics.median(ms[warmup:])
        results[name] = {"frame_ms": round(step, 2), "fps": round(1000 / step, 1),
                         "psnr_vs_fp32_db": round(statistics.mean(psnr(a, b) for a, b in zip(pixels, reference)), 2)}
    if "torch-fp32" in results:
        base = results["torch-fp32"]["frame_ms"]
        for r in results.values():
            r["speedup_vs_torch_fp32"] = round(base / r["frame_ms"], 2)
    return results


def cache_and_length(model: Path, dtype: str = "float32", frames: int = 20, long: int = 2000,
                     context: int = 16) -> dict[str, float]:
    """Torch backend: frame time around frame 50 and around frame `long` (the cache keeps it bounded), and the
    transformer's share of a frame with the KV cache vs recomputing over `context` earlier frames each step.
    A model with memory: its store is filled by real frames before frame `long` is timed, and the same frames
    are timed with its memory slots empty (frame_ms_without_memory: what retrieval and the memory keys cost)."""
    world = NeuralWorld(model, dtype=dtype)
    world.reset("bench", seed=0, width=0, height=0)
    walk = {"bench": scripted_action(0)}
    while world.cache.length[0] < 51 - frames:  # warm up on real frames; then measure frames ..50
        world.step(walk)
    result = {"frame_ms_at_50": median_ms(lambda: world.step(walk), frames)}
    dit, cache, cfg = world.dit, world.cache, world.config
    latent_shape = (1, cfg.autoencoder.latent_channels, *cfg.latent_size)
    action = torch.zeros(1, cfg.dit.action_dim)
    rays, no_pose = torch.zeros(1, dit.tokens, 6), torch.zeros(1, dtype=torch.bool)
    history = torch.randn(1, context, *latent_shape[1:])
    clip = (action.expand(context + 1, -1)[None], rays.expand(context + 1, -1, -1)[None],
            no_pose.expand(context + 1)[None])
    autocast = torch.autocast("cpu", dtype=world.dtype, enabled=world.dtype != torch.float32)
    with torch.inference_mode(), autocast:
        result["model_ms_cached"] = median_ms(
            lambda: generate_cached(dit, cache, [0], torch.randn(latent_shape), action, rays, no_pose, world.schedule),
            frames,
        )
        result["model_ms_recompute"] = median_ms(
            lambda: generate_recompute(dit, history, torch.randn(latent_shape), *clip, world.schedule),
            max(3, frames // 4),
        )
    memory = world.memory_of("bench")
    while memory is not None and len(memory) < memory.capacity and cache.length[0] < long + 1 - frames:
        world.step(walk)  # the store fills with real frames (one per stride)
    with torch.inference_mode(), autocast:
        while cache.length[0] < long + 1 - frames:  # cheap frames: the cache pass alone writes each one
            commit(dit, cache, [0], torch.randn(latent_shape), action, rays, no_pose)
    result[f"frame_ms_at_{long}"] = median_ms(lambda: world.step(walk), frames)
    if memory is not None:
        result["memory_entries"] = len(memory)
        result["memory_bytes_per_episode"] = memory.nbytes
        plain = NeuralWorld(model, dtype=dtype, memory=False)
        plain.reset("bench", seed=0, width=0, height=0)
        for _ in range(51 - frames):
            plain.step(walk)
        result["frame_ms_without_memory"] = median_ms(lambda: plain.step(walk), frames)
        result["memory_extra_frame_time"] = round(result[f"frame_ms_at_{long}"] / result["frame_ms_without_memory"]
                                                  - 1, 3)
    result[f"ratio_{long}_vs_50"] = round(result[f"frame_ms_at_{long}"] / result["frame_ms_at_50"], 3)
    result["cached_speedup"] = round(result["model_ms_recompute"] / result["model_ms_cached"], 2)
    result["recompute_context_frames"] = context
    result["kv_cache_bytes_per_episode"] = cache.nbytes // cache.capacity
    return result
