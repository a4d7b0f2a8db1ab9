"""`worldbridge bench`: start a daemon, drive it through the real protocol on loopback, report JSON.

Phases, all in one run:
- stream: credits kept 4 ahead, one input per received frame -> sustained fps and input-to-frame latency;
- lockstep: one credit at a time -> round trip minus the world's step = the daemon's own cost per frame
  (protocol, encode, transport both ways).
"""

from __future__ import annotations

import math
import time

import numpy as np

from bridge.client import Client
from bridge.launch import DaemonProcess


def _pcts(xs: list[float]) -> dict[str, float]:
    a = np.asarray([x for x in xs if not math.isnan(x)])
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)}


def scripted_input(i: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """A scripted player: walk, turn, strafe, look around (so the world does real work)."""
    phase = (i // 40) % 4
    move = [(0.0, 1.0), (0.5, 0.5), (-1.0, 0.0), (0.0, -0.5)][phase]
    return move, (3.0 if phase % 2 else -2.0, math.sin(i / 15.0))


def drive(address: str, frames: int, width: int, height: int, fmt: str, progress=None) -> dict:
    with Client(address, width=width, height=height, format=fmt, name="bench") as c:
        c.grant(4)
        for i in range(20):  # warm-up
            c.send_input(*scripted_input(i))
            c.recv_frame()
            c.grant(1)
        latencies, steps = [], []
        t0 = time.perf_counter()
        for i in range(frames):
            c.send_input(*scripted_input(i))
            f = c.recv_frame()
            c.grant(1)
            latencies.append(f.latency_ms)
            steps.append(f.header["timings"]["step_ms"])
            if progress:
                progress(1)
        elapsed = time.perf_counter() - t0
        for _ in range(4):  # drain the credits still granted
            c.recv_frame()
        overhead, encode = [], []
        for i in range(min(frames, 200)):
            t = time.perf_counter()
            c.send_input(*scripted_input(i))
            c.grant(1)
            f = c.recv_frame()
            rtt = (time.perf_counter() - t) * 1e3
            overhead.append(rtt - f.header["timings"]["step_ms"])
            encode.append(f.header["timings"]["encode_ms"])
        w = c.welcome
    return {
        "world": w["world"], "width": w["width"], "height": w["height"], "format": w["format"], "frames": frames,
        "sessions": 1, "fps": round(frames / elapsed, 2), "latency_ms": _pcts(latencies),
        "step_ms": _pcts(steps), "encode_ms": _pcts(encode), "daemon_overhead_ms": _pcts(overhead),
    }


def run(world: str, frames: int, width: int, height: int, fmt: str, serve_args: list[str], progress=None) -> dict:
    with DaemonProcess(world, *serve_args) as d:
        return drive(d.address, frames, width, height, fmt, progress)
