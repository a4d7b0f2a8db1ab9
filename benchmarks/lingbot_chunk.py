"""Load time, chunk latency, sustained FPS and peak memory of the LingBot-World-Fast world, per serving option;
prints one JSON object.

    .venv/bin/python benchmarks/lingbot_chunk.py PATH --device cuda --dtype bfloat16 --chunks 8
    .venv/bin/python benchmarks/lingbot_chunk.py --tiny                      # a tiny random checkpoint, any machine
    .venv/bin/python benchmarks/lingbot_chunk.py --random --out /tmp/lbf     # the release's sizes, random weights
    .venv/bin/python benchmarks/lingbot_chunk.py --memory-table              # computed memory per option, no run

PATH is the downloaded release (docs/lingbot.md). --random writes a random checkpoint of the release's sizes
(18.5B DiT, 37 GB in bf16: needs the disk, and a GPU to be quick; --dim/--layers/--ffn-dim/--heads shrink it)
and times that: the speed of real-size weights, not real frames. --configs picks the options to compare, each
a name or names joined by "+": plain, int8, fp8 (quantize), overlap (decode during the cache pass), compile
(torch.compile default), graphs (compile reduce-overhead, CUDA). Each runs in its own process, so its load time
and peak memory are its own.

Per config: the load time, the first chunk (it also encodes the start image) and the median/max of the others
in ms, the frames per second the chunks would sustain (12 frames per chunk; the buffered steps take
microseconds), the DiT's weight bytes, the KV cache's bytes once sinks + window chunks are written, peak GPU
memory (torch.cuda.max_memory_allocated: after loading and overall) and the process's peak resident host
memory (VmHWM, with its resident size before loading for reference).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "plain": {},
    "int8": {"quantize": "int8"},
    "fp8": {"quantize": "fp8"},
    "overlap": {"overlap": True},
    "compile": {"compile": "default"},
    "graphs": {"compile": "reduce-overhead"},
}
DEFAULT_CONFIGS = "plain,int8,fp8,overlap,int8+overlap"
GB = 1e9


def options_of(config: str) -> dict:
    out: dict = {}
    for part in config.split("+"):
        if part not in CONFIGS:
            raise SystemExit(f"unknown config {part!r}; known: {', '.join(CONFIGS)} (joined with +)")
        out.update(CONFIGS[part])
    return out


def host_status(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run_one(args: argparse.Namespace) -> dict:
    """Time one config in this process."""
    import torch

    from runtime.lingbot.fast.quant import weight_bytes
    from runtime.lingbot.fast.world import LingBotWorld
    from runtime.world import Action

    cuda = args.device.startswith("cuda")
    overrides = {k: v for k, v in (("width", args.width), ("height", args.height), ("window", args.window),
                                   ("sinks", args.sinks)) if v is not None}
    overrides.update(options_of(args.run_one))
    host_before = host_status("VmRSS")
    started = time.perf_counter()
    world = LingBotWorld(args.path, device=args.device, dtype=args.dtype, **overrides)
    if cuda:
        torch.cuda.synchronize()
    load_s = time.perf_counter() - started
    gpu_after_load = torch.cuda.max_memory_allocated() if cuda else None
    world.reset("bench", 0, world.options.width, world.options.height)
    chunk_ms, frames = [], 0
    episode = world._episodes["bench"]
    while len(chunk_ms) < args.chunks:
        made = episode.chunks
        world.step({"bench": Action(move=(0.0, 1.0), look=(1.0, 0.0))})
        frames += 1
        if episode.chunks > made:  # this step made a chunk (its pixels were copied to the host: synchronised)
            chunk_ms.append(world.last_chunk_ms)
    rest = chunk_ms[1:] or chunk_ms
    return {
        "config": args.run_one, "options": overrides, "load_s": round(load_s, 2),
        "first_chunk_ms": round(chunk_ms[0], 1), "chunk_ms_median": round(statistics.median(rest), 1),
        "chunk_ms_max": round(max(rest), 1), "sustained_fps": round(12 / (statistics.median(rest) / 1e3), 2),
        "frames": frames, "dit_weight_bytes": weight_bytes(world.dit), "kv_cache_bytes": episode.cache.nbytes,
        "peak_gpu_bytes_after_load": gpu_after_load,
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "host_rss_bytes_before_load": host_before, "peak_host_rss_bytes": host_status("VmHWM"),
    }


def memory_table(width: int = 832, height: int = 480) -> dict:
    """GPU memory per option, computed from the parameter counts of the release's architecture and the cache
    sizes (not measured). Activations and the VAE decode are a rough allowance, stated as such."""
    import torch

    from runtime.lingbot.fast.config import CHUNK_FRAMES, FastDiTConfig
    from runtime.lingbot.fast.dit import WanFastDiT
    from runtime.lingbot.fast.quant import quantized_linears

    cfg = FastDiTConfig()
    with torch.device("meta"):
        dit = WanFastDiT(cfg)
    total = sum(p.numel() for p in dit.parameters())
    covered = [dit.get_submodule(n) for n in quantized_linears(dit)]
    q_weights = sum(m.weight.numel() for m in covered)
    q_channels = sum(m.out_features for m in covered)
    bf16 = 2
    weights = {"plain bf16": total * bf16,
               "int8": q_weights * 1 + q_channels * 4 + (total - q_weights) * bf16}
    weights["fp8"] = weights["int8"]
    tokens = CHUNK_FRAMES * (height // 16) * (width // 16)
    per_chunk = cfg.num_layers * 2 * tokens * cfg.dim * bf16
    text_kv = cfg.num_layers * 2 * cfg.text_len * cfg.dim * bf16
    allowance = 6 * GB  # activations of one forward (~1 GB) + the VAE decode of a 12-frame chunk (a few GB)
    rows = []
    for option, w in weights.items():
        fixed = w + 4 * text_kv + allowance  # the world keeps up to 4 prompts' text keys/values
        row = {"option": option, "weights_gb": round(w / GB, 1), "fixed_gb": round(fixed / GB, 1),
               "default_total_gb": round((fixed + 4 * per_chunk) / GB, 1), "max_cache_chunks": {},
               "fits_default": {}}
        for gpu in (24, 48, 80):  # chunks of cache that fit besides the rest; the default needs 4 (1 + 3)
            chunks = max(0, math.floor((gpu * GB - fixed) / per_chunk))
            row["max_cache_chunks"][f"{gpu}GB"] = chunks
            row["fits_default"][f"{gpu}GB"] = chunks >= 4
        rows.append(row)
    return {
        "computed_not_measured": True, "frame": [width, height],
        "dit_parameters": total, "quantized_parameters": q_weights,
        "kv_cache_per_chunk_gb": round(per_chunk / GB, 2), "text_kv_per_prompt_gb": round(text_kv / GB, 2),
        "activation_and_vae_allowance_gb": allowance / GB,
        "default_cache_gb": round(4 * per_chunk / GB, 1),
        "official_81_frames_cache_gb": round(7 * per_chunk / GB, 1), "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?")
    parser.add_argument("--tiny", action="store_true", help="write and time a tiny random checkpoint instead")
    parser.add_argument("--random", action="store_true", help="write and time a random checkpoint of the "
                        "release's sizes (or --dim/--layers/...) instead")
    parser.add_argument("--out", type=Path, help="where --random writes (default: a temporary folder); reused "
                        "when it already holds a checkpoint")
    parser.add_argument("--dim", type=int)
    parser.add_argument("--layers", type=int)
    parser.add_argument("--ffn-dim", type=int)
    parser.add_argument("--heads", type=int)
    parser.add_argument("--memory-table", action="store_true", help="print the computed memory table and exit")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated (default {DEFAULT_CONFIGS})")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--window", type=int, default=None, help="chunks in the sliding window")
    parser.add_argument("--sinks", type=int, default=None)
    parser.add_argument("--run-one", help=argparse.SUPPRESS)  # internal: time one config in this process
    args = parser.parse_args()
    if args.memory_table:
        print(json.dumps(memory_table(), indent=1))
        return
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    if args.run_one:
        print(json.dumps(run_one(args)))
        return
    if not args.path and not args.tiny and not args.random:
        parser.error("give the release PATH, --tiny or --random")
    written_s = None
    if args.tiny:
        from runtime.lingbot.fast.tiny import write_tiny_checkpoint

        args.path = str(write_tiny_checkpoint(tempfile.mkdtemp(prefix="lingbot-tiny-")))
        args.width, args.height = args.width or 64, args.height or 32
    elif args.random:
        from runtime.lingbot.fast.config import FastDiTConfig, find_dit_dir
        from runtime.lingbot.fast.tiny import write_random_checkpoint

        out = args.out or Path(tempfile.mkdtemp(prefix="lingbot-random-"))
        try:
            find_dit_dir(out)
        except FileNotFoundError:
            sizes = {k: v for k, v in (("dim", args.dim), ("num_layers", args.layers), ("ffn_dim", args.ffn_dim),
                                       ("num_heads", args.heads)) if v is not None}
            started = time.perf_counter()
            write_random_checkpoint(out, FastDiTConfig(**sizes), device="cuda" if torch.cuda.is_available()
                                    else "cpu")
            written_s = round(time.perf_counter() - started, 1)
        args.path = str(out)
    results = []
    for config in args.configs.split(","):
        options_of(config)  # refuse unknown names before any run
    for config in args.configs.split(","):
        cmd = [sys.executable, __file__, args.path, "--run-one", config, "--device", args.device, "--dtype",
               args.dtype, "--chunks", str(args.chunks)]
        for flag, value in (("--width", args.width), ("--height", args.height), ("--window", args.window),
                            ("--sinks", args.sinks)):
            if value is not None:
                cmd += [flag, str(value)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            results.append({"config": config, "error": done.stderr.strip().splitlines()[-1:]})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cuda = args.device.startswith("cuda")
    print(json.dumps({
        "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
        "dtype": args.dtype, "checkpoint": "tiny" if args.tiny else ("random" if args.random else args.path),
        "checkpoint_written_s": written_s, "chunks": args.chunks, "results": results,
    }, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
