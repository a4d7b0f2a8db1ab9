"""`worldbridge bench`: every performance figure of a world, measured side by side in one run.

- model (neural worlds, in process; runtime/eval/bench.py): frame time and quality cost by backend, frame time
  at frame 50 vs 2000, KV cache vs full recomputation;
- stream: a daemon in its own process driven through the real protocol on loopback, credits kept 4 ahead, one
  input per received frame -> sustained fps and input-to-frame latency;
- lockstep: one credit at a time -> round trip minus the world's step = the daemon's own cost per frame
  (protocol, encode, transport both ways);
- sessions: 1, 2, 4 clients streaming at once -> aggregate fps (one model step serves them all, batched);
- the daemon's peak resident memory;
- the machine: CPU model, threads, torch's kernel level and the instruction sets that matter (runtime/machine.py).
A world that offers guidance (protocol 1.3) gets it with every input, as an engine would send it: the colour and
depth buffers of a walk through an unseen maze level at the offered full size, with the camera pose (encoding,
transport, decoding and the model's guidance paths, position features included, are all in the figures).
Run it under ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 to see an AVX-512 machine's AVX2 kernels (an
approximation of an AVX2-only CPU, not a substitute: the report says the cap was set).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bridge.client.client import Client
from bridge.client.launch import DaemonProcess
from bridge.protocol import guidance as protocol_guidance
from bridge.server.worlds import model_path
from bridge.tools.rollout import wire_pose
from runtime.eval.bench import scripted_action
from runtime.machine import describe


def _pcts(xs: list[float]) -> dict[str, float]:
    a = np.asarray([x for x in xs if not math.isnan(x)])
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (50, 95, 99)}


GUIDANCE_FRAMES = 32  # distinct guidance frames a bench cycles through


def guidance_frames(offer: dict | None) -> list:
    """Guidance an engine would send for the offered full size, with the camera pose it was rendered from: (colour
    and depth, wire pose) of a scripted walk through an unseen maze level; [] when the world takes none."""
    if not offer:
        return []
    from runtime.maze.world import MazeWorld

    maze = MazeWorld(level_seed=1003, style="varied")
    w, h = offer["width"], offer["height"]
    maze.reset("bench", 0, w, h)
    out = []
    for i in range(GUIDANCE_FRAMES):
        pose = maze.step({"bench": scripted_action(i)})["bench"].pose
        g = maze.renderer.guidance(pose, w, h, maze.fov_deg)
        out.append((protocol_guidance.encode(colour=g.colour, depth=g.depth), wire_pose(pose)))
    return out


def _send(c: Client, i: int, guidance: list) -> None:
    a = scripted_action(i)
    g, pose = guidance[i % len(guidance)] if guidance else (None, None)
    c.send_input(a.move, a.look, pose=pose, guidance=g)


def drive(address: str, frames: int, width: int, height: int, fmt: str, progress=None) -> dict:
    """The stream and lockstep phases on one session."""
    with Client(address, width=width, height=height, format=fmt, name="bench") as c:
        guidance = guidance_frames(c.guidance_offer)
        c.grant(4)
        for i in range(20):  # warm-up
            _send(c, i, guidance)
            c.recv_frame()
            c.grant(1)
        latencies, steps = [], []
        t0 = time.perf_counter()
        for i in range(frames):
            _send(c, i, guidance)
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
            _send(c, i, guidance)
            c.grant(1)
            f = c.recv_frame()
            rtt = (time.perf_counter() - t) * 1e3
            overhead.append(rtt - f.header["timings"]["step_ms"])
            encode.append(f.header["timings"]["encode_ms"])
        w = c.welcome
    return {
        "world": w["world"], "width": w["width"], "height": w["height"], "format": w["format"], "frames": frames,
        "sessions": 1, "guidance": bool(guidance), "fps": round(frames / elapsed, 2), "latency_ms": _pcts(latencies),
        "step_ms": _pcts(steps), "encode_ms": _pcts(encode), "daemon_overhead_ms": _pcts(overhead),
    }


def concurrent(address: str, sessions: int, frames: int, width: int, height: int, fmt: str) -> dict:
    """`sessions` clients streaming `frames` frames each at once: aggregate fps and everyone's latency."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    start = threading.Barrier(sessions + 1)

    def client(k: int) -> None:
        try:
            with Client(address, width=width, height=height, format=fmt, name=f"bench-{k}", seed=k) as c:
                guidance = guidance_frames(c.guidance_offer)
                c.grant(4)
                start.wait()
                for i in range(frames + 4):
                    _send(c, i, guidance)
                    f = c.recv_frame()
                    if i < frames:
                        c.grant(1)
                    if i >= 4:  # the first frames of each client wait for the others to connect
                        latencies.append(f.latency_ms)
        except BaseException as e:  # reported, not swallowed
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(sessions)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return {"sessions": sessions, "aggregate_fps": round(sessions * (frames + 4) / elapsed, 2),
            "per_session_fps": round((frames + 4) / elapsed, 2), "latency_ms": _pcts(latencies)}


def peak_rss_mib(pid: int) -> float:
    """High-water mark of a process's resident memory (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def model_dir(world: str) -> Path | None:
    """The checkpoint directory behind a --world argument, if it is a neural world."""
    path = model_path(world)
    return path if (path / "config.yaml").is_file() else None


def run(
    world: str,
    frames: int,
    width: int,
    height: int,
    fmt: str,
    serve_args: list[str],
    progress: Callable[[int], None] | None = None,
    sessions: Sequence[int] = (1, 2, 4),
    backends: Sequence[str] = (),
    long: int = 2000,
) -> dict:
    """The whole report; `backends` (runtime.eval.bench.VARIANTS) and `long` only for neural worlds."""
    report: dict = {"machine": describe()}  # figures differ by CPU class: every run says which it ran on
    model = model_dir(world)
    if model is not None and backends:
        from runtime.eval.bench import cache_and_length, compare_backends

        report["backends"] = compare_backends(model, list(backends))
        report["cache"] = cache_and_length(model, long=long)
    with DaemonProcess(world, *serve_args) as d:
        report.update(drive(d.address, frames, width, height, fmt, progress))
        per_session = max(20, frames // 4)
        report["concurrent"] = [concurrent(d.address, n, per_session, width, height, fmt) for n in sessions]
        report["daemon_peak_rss_mib"] = peak_rss_mib(d.proc.pid)
    report["serve_args"] = list(serve_args)
    return report


def table(r: dict) -> str:
    """The report as a few human-readable lines."""
    lat, ovh = r["latency_ms"], r["daemon_overhead_ms"]
    m = r["machine"]
    cap = "".join(f", {k}={v}" for k, v in m["isa_cap"].items())
    lines = [
        f"{r['world']} {r['width']}x{r['height']} {r['format']}{' with guidance' if r['guidance'] else ''} "
        f"({' '.join(r['serve_args'])})",
        f"  on {m['cpu']}, {m['torch_threads']} threads, torch kernels {m['torch_cpu_capability']}{cap}, "
        f"native bf16: {'yes' if m['native_bf16'] else 'no'}",
        f"  stream: {r['fps']} fps, input-to-frame p50 {lat['p50']} / p95 {lat['p95']} / p99 {lat['p99']} ms, "
        f"step p50 {r['step_ms']['p50']} ms, daemon overhead p50 {ovh['p50']} ms, "
        f"peak RSS {r['daemon_peak_rss_mib']} MiB",
    ]
    for c in r["concurrent"]:
        lines.append(f"  {c['sessions']} sessions: {c['aggregate_fps']} fps in all, "
                     f"latency p50 {c['latency_ms']['p50']} / p99 {c['latency_ms']['p99']} ms")
    for name, b in r.get("backends", {}).items():
        speedup = f", {b['speedup_vs_torch_fp32']}x torch-fp32" if "speedup_vs_torch_fp32" in b else ""
        lines.append(f"  {name:>10}: {b['frame_ms']} ms/frame ({b['fps']} fps){speedup}, "
                     f"PSNR vs fp32 frames {b['psnr_vs_fp32_db']} dB")
    if "cache" in r:
        c = r["cache"]
        at_long = next(k for k in c if k.startswith("frame_ms_at_") and k != "frame_ms_at_50")
        lines.append(f"  frame at 50: {c['frame_ms_at_50']} ms, {at_long[len('frame_ms_at_'):]}: {c[at_long]} ms; "
                     f"KV cache {c['cached_speedup']}x faster than recomputing {c['recompute_context_frames']} "
                     "frames")
    return "\n".join(lines)
