"""Replicas: aggregate fps and input-to-frame latency of N sessions served by 1 or 2 Ray replicas of a world
behind one daemon (`worldbridge serve --replicas R`), next to the same world in the daemon's own process.

    .venv/bin/python benchmarks/replicas.py --json > benchmarks/results/replicas_cpu.json
    .venv/bin/python benchmarks/replicas.py --world default --sessions 1,2,4 --frames 120 --json

Each configuration is a fresh `worldbridge serve` in its own process (with --replicas it starts its own local
Ray instance; --ray-address joins a running one); the sessions are `worldbridge bench`'s streaming clients
(bridge/tools/bench.py: credits kept 4 ahead, one input per received frame, all sessions at once), so the
numbers compare with benchmarks/results/*.json. Latency is input-to-frame on the client's clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one compute thread per process, daemon and replicas alike
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.client.launch import DaemonProcess  # noqa: E402
from bridge.tools.bench import concurrent, peak_rss_mib  # noqa: E402
from runtime.machine import describe  # noqa: E402


def measure(world: str, replicas: int, sessions: list[int], frames: int, size: int, extra: list[str]) -> list[dict]:
    args = ["--max-sessions", str(max(sessions) + 1), *extra]
    if replicas:
        args += ["--replicas", str(replicas)]
    started = time.perf_counter()
    with DaemonProcess(world, *args, timeout=600) as d:
        ready_s = time.perf_counter() - started
        concurrent(d.address, 1, 20, size, size, "rgb8")  # warm-up: first frames, first placements
        rows = []
        for n in sessions:
            r = concurrent(d.address, n, frames, size, size, "rgb8")
            rows.append({"replicas": replicas, "where": "ray actors" if replicas else "in the daemon's process",
                         **r, "start_s": round(ready_s, 1)})
            print(f"replicas {replicas} sessions {n}: {r['aggregate_fps']} fps, p99 {r['latency_ms']['p99']} ms",
                  file=sys.stderr, flush=True)
        rows[-1]["front_peak_rss_mib"] = peak_rss_mib(d.proc.pid)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", default="maze")
    p.add_argument("--replicas", default="0,1,2", help="replica counts to measure (0: the world in process)")
    p.add_argument("--sessions", default="1,2,4,8")
    p.add_argument("--frames", type=int, default=300, help="frames each session streams")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--ray-address", help="a running Ray cluster to place the replicas on")
    p.add_argument("--serve-arg", action="append", default=[], help="passed to worldbridge serve (repeatable)")
    p.add_argument("--json", action="store_true", help="only the JSON on stdout")
    a = p.parse_args()
    sessions = [int(n) for n in a.sessions.split(",") if n]
    extra = [*a.serve_arg, *(["--ray-address", a.ray_address] if a.ray_address else [])]
    runs, load_before = [], os.getloadavg()
    for r in (int(n) for n in a.replicas.split(",") if n):
        runs += measure(a.world, r, sessions, a.frames, a.size, extra if r else list(a.serve_arg))
    import ray
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    report = {"machine": describe(), "gpu": gpu, "ray": ray.__version__, "world": a.world,
              "width": a.size, "height": a.size, "format": "rgb8", "frames_per_session": a.frames,
              "omp_num_threads": os.environ["OMP_NUM_THREADS"],
              # the machine's 1-minute load average before and after: other work on it shifts every figure
              "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)], "runs": runs}
    print(json.dumps(report, indent=None if a.json else 1))


if __name__ == "__main__":
    main()
