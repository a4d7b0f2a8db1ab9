"""Latency per chunk and memory of the LingBot-World-Fast world; prints one JSON object.

    .venv/bin/python benchmarks/lingbot_chunk.py PATH --device cuda --dtype bfloat16 --chunks 8
    .venv/bin/python benchmarks/lingbot_chunk.py --tiny            # a tiny random checkpoint, any machine

PATH is the downloaded release (docs/lingbot.md). One episode walks forward; every chunk (4 denoising steps,
the cache pass, the VAE decode of 9 or 12 frames) is timed on its own, with CUDA synchronised. Reported: the
load time, the first chunk (it also encodes the start image) and the median/max of the others in ms, the
frames per second the chunks would sustain (12 frames per chunk), peak GPU memory (torch.cuda.max_memory_
allocated) and the KV cache's bytes, which stay fixed once sinks + window chunks are written.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time

import torch

from runtime.lingbot.fast.world import LingBotWorld
from runtime.world import Action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?")
    parser.add_argument("--tiny", action="store_true", help="write and time a tiny random checkpoint instead")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16" if torch.cuda.is_available() else "float32")
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--window", type=int, default=None, help="chunks in the sliding window")
    parser.add_argument("--sinks", type=int, default=None)
    args = parser.parse_args()
    if not args.path and not args.tiny:
        parser.error("give the release PATH or --tiny")
    path = args.path
    if args.tiny:
        from runtime.lingbot.fast.tiny import write_tiny_checkpoint

        path = write_tiny_checkpoint(tempfile.mkdtemp(prefix="lingbot-tiny-"))
        args.width, args.height = args.width or 64, args.height or 32
    overrides = {k: v for k, v in (("width", args.width), ("height", args.height), ("window", args.window),
                                   ("sinks", args.sinks)) if v is not None}
    cuda = args.device.startswith("cuda")
    started = time.perf_counter()
    world = LingBotWorld(path, device=args.device, dtype=args.dtype, **overrides)
    load_s = time.perf_counter() - started
    world.reset("bench", 0, world.options.width, world.options.height)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    chunk_ms, frames = [], 0
    episode = world._episodes["bench"]
    while len(chunk_ms) < args.chunks:
        made = episode.chunks
        world.step({"bench": Action(move=(0.0, 1.0), look=(1.0, 0.0))})
        frames += 1
        if episode.chunks > made:  # this step made a chunk (its pixels were copied to the host: synchronised)
            chunk_ms.append(world.last_chunk_ms)
    rest = chunk_ms[1:] or chunk_ms
    result = {
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "dtype": args.dtype, "size": [world.options.width, world.options.height],
        "dit": {"dim": world.config.dim, "layers": world.config.num_layers, "control": world.config.control_dim},
        "sinks": world.options.sinks, "window": world.options.window, "chunks": args.chunks, "frames": frames,
        "load_s": round(load_s, 2), "first_chunk_ms": round(chunk_ms[0], 1),
        "chunk_ms_median": round(statistics.median(rest), 1), "chunk_ms_max": round(max(rest), 1),
        "sustained_fps": round(12 / (statistics.median(rest) / 1e3), 2),
        "kv_cache_bytes": world._episodes["bench"].cache.nbytes,
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if cuda else None,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
