"""Chunk latency of LingBot-World-Fast with Ulysses sequence parallelism, one torchrun job per rank count;
prints one JSON object (and writes it to --out).

    .venv/bin/python benchmarks/lingbot_parallel.py --random --ranks 1,2                     # CPU, gloo
    .venv/bin/python benchmarks/lingbot_parallel.py PATH --device cuda --dtype bfloat16 --ranks 1,2,4,8   # NCCL

PATH is the downloaded release (docs/lingbot.md); --random writes a random checkpoint (benchmarks/
lingbot_chunk.py's writer) of --dim/--layers/--ffn-dim/--heads, by default a small one a CPU runs in seconds
a chunk. Every rank count runs as its own `python -m torch.distributed.run --nproc_per_node P` job (P = 1 too:
the plain one-process path) with --threads OpenMP threads per rank (default: this machine's cores / P). Per
job: the first chunk and the median/max of the others in ms (the whole chunk: 4 denoising passes, the cache
pass and rank 0's VAE encode/decode), the median of the DiT's share alone (the 4 denoising passes and the cache
pass, what the ranks split; --random's VAE is a narrow one, but the VAE still dominates a CPU chunk at small
DiT sizes), the KV cache's bytes on rank 0 once sinks + window chunks are written, and on
CUDA rank 0's peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_rank(args: argparse.Namespace) -> None:
    """Inside the torchrun job: every rank opens its share; rank 0 times the chunks and prints the result."""
    import torch

    from runtime.lingbot.fast.world import open_parallel
    from runtime.world import Action

    overrides = {k: v for k, v in (("width", args.width), ("height", args.height), ("window", args.window),
                                   ("sinks", args.sinks)) if v is not None}
    world = open_parallel(args.path, device=args.device, dtype=args.dtype, **overrides)
    if world is None:  # a rank > 0: it followed rank 0 until the end
        return
    cuda = world.device.type == "cuda"
    dit_ms = [0.0]

    def timed(work):  # the DiT's share of a chunk: the 4 denoising passes (sample) and the cache pass (commit)
        def run(*a):
            if cuda:
                torch.cuda.synchronize()
            started = time.perf_counter()
            out = work(*a)
            if cuda:
                torch.cuda.synchronize()
            dit_ms[-1] += (time.perf_counter() - started) * 1e3
            return out
        return run

    world.sample, world.commit = timed(world.sample), timed(world.commit)
    world.reset("bench", 0, world.options.width, world.options.height)
    episode, chunk_ms = world._episodes["bench"], []
    while len(chunk_ms) < args.chunks:
        made = episode.chunks
        world.step({"bench": Action(move=(0.0, 1.0), look=(1.0, 0.0))})
        if episode.chunks > made:
            chunk_ms.append(world.last_chunk_ms)
            dit_ms.append(0.0)
    dit_ms = dit_ms[:-1]
    ranks = 1 if world.parallel is None else world.parallel.size
    rest, dit_rest = chunk_ms[1:] or chunk_ms, dit_ms[1:] or dit_ms
    result = {
        "ranks": ranks, "threads_per_rank": torch.get_num_threads(), "first_chunk_ms": round(chunk_ms[0], 1),
        "chunk_ms_median": round(statistics.median(rest), 1), "chunk_ms_max": round(max(rest), 1),
        "chunk_ms": [round(x, 1) for x in chunk_ms], "dit_ms_median": round(statistics.median(dit_rest), 1),
        "dit_ms": [round(x, 1) for x in dit_ms], "kv_cache_bytes_rank0": episode.cache.nbytes,
        "episode_bytes": world.episode_bytes(world.options.width, world.options.height),
        "peak_gpu_bytes_rank0": torch.cuda.max_memory_allocated() if cuda else None,
    }
    world.shutdown()
    print("RESULT " + json.dumps(result), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?")
    parser.add_argument("--random", action="store_true", help="write and time a random checkpoint instead")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--ffn-dim", type=int, default=1536)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--ranks", default="1,2", help="rank counts to time, comma-separated")
    parser.add_argument("--threads", type=int, help="OpenMP threads per rank (default: cores / ranks)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--chunks", type=int, default=6)
    parser.add_argument("--width", type=int, help="default: 256 with --random, else the checkpoint's")
    parser.add_argument("--height", type=int, help="default: 128 with --random")
    parser.add_argument("--window", type=int)
    parser.add_argument("--sinks", type=int)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--rank-run", action="store_true", help=argparse.SUPPRESS)  # internal: inside torchrun
    args = parser.parse_args()
    if args.rank_run:
        run_rank(args)
        return
    if args.random:
        from runtime.lingbot.fast.config import FastDiTConfig
        from runtime.lingbot.fast.tiny import write_random_checkpoint

        cfg = FastDiTConfig(dim=args.dim, num_layers=args.layers, ffn_dim=args.ffn_dim, num_heads=args.heads,
                            text_dim=256)
        args.path = str(write_random_checkpoint(tempfile.mkdtemp(prefix="lingbot-sp-"), cfg, vae_width=8))
        args.width, args.height = args.width or 256, args.height or 128
    if not args.path:
        parser.error("give the release PATH or --random")
    results = []
    for ranks in (int(r) for r in args.ranks.split(",")):
        threads = args.threads or max(1, (os.cpu_count() or 1) // ranks)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), __file__, args.path, "--rank-run", "--device",
               args.device, "--dtype", args.dtype, "--chunks", str(args.chunks)]
        for flag, value in (("--width", args.width), ("--height", args.height), ("--window", args.window),
                            ("--sinks", args.sinks)):
            if value is not None:
                cmd += [flag, str(value)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode or not lines:
            results.append({"ranks": ranks, "error": (done.stderr or done.stdout).strip().splitlines()[-3:]})
        else:
            results.append(json.loads(lines[-1][len("RESULT "):]))
    report = {
        "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "device": args.device,
        "dtype": args.dtype, "checkpoint": "random" if args.random else args.path,
        "dit": {"dim": args.dim, "layers": args.layers, "ffn_dim": args.ffn_dim, "heads": args.heads}
        if args.random else None, "frame": [args.width, args.height], "chunks": args.chunks, "results": results,
    }
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
