"""Per-frame cost of the neural world (runtime/neural_world.py) on this machine; prints JSON.

A randomly initialised model with the given architecture (default: runtime/configs/default.yaml) is written to
a temporary directory and served by NeuralWorld. For each compute dtype it measures (median milliseconds):
- frame_ms_at_50: real frames (all denoising steps + the clean cache pass + decode + conversions) around
  frame 50 of an episode, through NeuralWorld.step, with the KV cache;
- model_ms_cached vs model_ms_recompute: the transformer's share of one frame with the cache (denoising steps +
  cache pass) vs full recomputation over `--context` earlier frames at every step (no cache, as Oasis does);
  frame_ms_recompute adds the decode to the latter for an end-to-end comparison with frame_ms_at_50;
- frame_ms_at_2000: real frames again, the last of them frame 2000 (`--long`), after driving the episode
  there with cheap frames (the clean cache pass alone): cost must not grow with episode length.

    .venv/bin/python benchmarks/neural_step.py [--dtypes float32,bfloat16] [--frames 20] [--long 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from runtime.neural_world import NeuralWorld, commit, generate_cached, generate_recompute, init_checkpoint
from runtime.world import Action

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "default.yaml"


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def measure(checkpoint: Path, dtype: str, frames: int, long: int, context: int) -> dict[str, float]:
    """The numbers of the module docstring for one compute dtype, on the CPU."""
    world = NeuralWorld(checkpoint, dtype=dtype)
    world.reset("bench", seed=0, width=0, height=0)
    walk = {"bench": Action(move=(0.0, 1.0), look=(2.0, 0.0))}
    while world.cache.length[0] < 51 - frames:  # warm up on real frames; then measure frames ..50
        world.step(walk)
    result = {"frame_ms_at_50": median_ms(lambda: world.step(walk), frames)}

    dit, cache = world.dit, world.cache
    cfg = world.config
    latent_shape = (1, cfg.autoencoder.latent_channels, *cfg.latent_size)
    action = torch.zeros(1, cfg.dit.action_dim)
    rays, no_pose = torch.zeros(1, dit.tokens, 6), torch.zeros(1, dtype=torch.bool)
    history = torch.randn(1, context, *latent_shape[1:])
    autocast = torch.autocast("cpu", dtype=world.dtype, enabled=world.dtype != torch.float32)
    with torch.inference_mode(), autocast:
        result["model_ms_cached"] = median_ms(
            lambda: generate_cached(dit, cache, [0], torch.randn(latent_shape), action, rays, no_pose, world.schedule),
            frames,
        )
        result["decode_ms"] = median_ms(
            lambda: world.autoencoder.decode(torch.randn(latent_shape).contiguous(memory_format=torch.channels_last)),
            frames,
        )
        clip_action, clip_rays = action.expand(context + 1, -1)[None], rays.expand(context + 1, -1, -1)[None]
        clip_no_pose = no_pose.expand(context + 1)[None]

        def recompute() -> torch.Tensor:
            noise = torch.randn(latent_shape)
            return generate_recompute(dit, history, noise, clip_action, clip_rays, clip_no_pose, world.schedule)

        result["model_ms_recompute"] = median_ms(recompute, max(3, frames // 4))
        result["frame_ms_recompute"] = round(result["model_ms_recompute"] + result["decode_ms"], 2)
        while cache.length[0] < long + 1 - frames:  # cheap frames: the cache pass alone writes each one
            commit(dit, cache, [0], torch.randn(latent_shape), action, rays, no_pose)
    result[f"frame_ms_at_{long}"] = median_ms(lambda: world.step(walk), frames)
    result["last_frame_measured"] = int(cache.length[0]) - 1  # the start frame is frame 0
    result[f"ratio_{long}_vs_50"] = round(result[f"frame_ms_at_{long}"] / result["frame_ms_at_50"], 3)
    result["model_speedup_cached"] = round(result["model_ms_recompute"] / result["model_ms_cached"], 2)
    result["frame_speedup_cached"] = round(result["frame_ms_recompute"] / result["frame_ms_at_50"], 2)
    result["fps_cached"] = round(1000 / result["frame_ms_at_50"], 1)
    result["kv_cache_bytes_per_episode"] = cache.nbytes // cache.capacity
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="architecture (a config.yaml)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated compute dtypes")
    parser.add_argument("--frames", type=int, default=20, help="frames measured per number")
    parser.add_argument("--long", type=int, default=2000, help="episode length for the long-episode measurement")
    parser.add_argument("--context", type=int, default=16, help="earlier frames the recomputation runs over")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "model"
        cfg = init_checkpoint(checkpoint, args.config)
        world = NeuralWorld(checkpoint)
        report: dict[str, object] = {
            "config": str(args.config),
            "frame": [cfg.frame.width, cfg.frame.height],
            "latent": [cfg.autoencoder.latent_channels, *cfg.latent_size],
            "tokens_per_frame": world.dit.tokens,
            "dit_params": sum(p.numel() for p in world.dit.parameters()),
            "encoder_params": sum(p.numel() for p in world.autoencoder.encoder.parameters()),
            "decoder_params": sum(p.numel() for p in world.autoencoder.decoder.parameters()),
            "steps": cfg.sampler.steps,
            "cache_frames": {"sinks": cfg.dit.sinks, "window": cfg.dit.window},
            "recompute_context_frames": args.context,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        }
        for dtype in args.dtypes.split(","):
            report[dtype] = measure(checkpoint, dtype, args.frames, args.long, args.context)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
