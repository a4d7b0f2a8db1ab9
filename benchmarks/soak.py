"""Soak test: many clients against one daemon for minutes; prints what was served, every error, the daemon's
memory at start and end, and the worst input-to-frame latency.

    .venv/bin/python benchmarks/soak.py --clients 8 --seconds 600 --json      # the 10-minute soak
    .venv/bin/python benchmarks/soak.py --clients 8 --seconds 60 --json       # what CI runs (tests/test_soak.py)

Each client behaves like an engine that a person keeps using: at a game's pace it sends one input and one
credit per frame (so the latency measured is the daemon's, not a queue of the client's), pings, resets its
episode, now and then sends a bad message and checks the documented error code, and every few hundred frames
says bye and opens a new session (a scene reload), in a random pixel format, row order and engine convention.
Anything unexpected (an exception, a wrong code, a timeout) counts as an error. The daemon runs in its own
process; its RSS is read from /proc once a second, and "start" is taken after a warm-up, when every client has
connected and the daemon has allocated what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.client.client import Client, ServerError  # noqa: E402
from bridge.client.launch import DaemonProcess  # noqa: E402
from bridge.protocol import messages as protocol  # noqa: E402

# bad messages a client sends on purpose, and the code each must get
BAD = [
    ({"type": "warp"}, 404),
    ({"type": "credit", "n": 0}, 422),
    ({"type": "input", "seq": 1, "move": [float("nan"), 0.0]}, 422),
    ({"type": "input", "seq": -5}, 422),
    ({"type": "hello", "major": 1}, 422),
]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


class Player(threading.Thread):
    """One client: sessions one after another until the deadline."""

    def __init__(self, address: str, index: int, deadline: float, fps: float, size: int):
        super().__init__(name=f"soak-{index}", daemon=True)
        self.address, self.deadline, self.fps, self.size = address, deadline, fps, size
        self.rng = random.Random(index)
        self.frames = self.sessions = self.bad_answered = 0
        self.errors: list[str] = []
        self.latencies: list[float] = []

    def run(self) -> None:
        while time.monotonic() < self.deadline and len(self.errors) < 20:
            try:
                self.session()
            except Exception as e:  # anything unexpected is a finding, and the player starts over
                self.errors.append(f"{type(e).__name__}: {e}")
                time.sleep(0.5)

    def session(self) -> None:
        rng = self.rng
        fmt = rng.choice(["rgb8", "rgba8", "jpeg"])
        with Client(self.address, width=self.size, height=self.size, format=fmt, name=self.name,
                    engine=rng.choice(["unity", "godot", "opencv"]), seed=rng.randrange(1 << 31),
                    row_order=rng.choice(["top_down", "bottom_up"]), timeout=20) as c:
            self.sessions += 1
            period = 1.0 / self.fps if self.fps > 0 else 0.0
            for i in range(rng.randrange(100, 600)):
                if time.monotonic() >= self.deadline:
                    break
                t = time.monotonic()
                phase = (i // 50) % 4
                c.send_input([(0.0, 1.0), (0.5, 0.5), (-1.0, 0.0), (0.0, -0.5)][phase], (rng.uniform(-4, 4), 0.0),
                             buttons=rng.randrange(2))
                c.grant(1)  # one frame per input, as a game loop at its own pace: latency is the daemon's
                f = c.recv_frame()
                if f.image.shape[:2] != (self.size, self.size) or f.header["input_seq"] != c.seq:
                    raise AssertionError(f"frame {f.header} of shape {f.image.shape} for input {c.seq}")
                self.frames += 1
                self.latencies.append(f.latency_ms)
                if rng.random() < 0.01:
                    c.send(protocol.ping(time.monotonic()))
                    self.await_reply(c, "pong")
                if rng.random() < 0.005:
                    self.bad_message(c)
                if rng.random() < 0.003:
                    c.send(protocol.reset(rng.randrange(1000)))
                    self.await_reply(c, "reset_ok")
                if period:
                    time.sleep(max(0.0, period - (time.monotonic() - t)))

    @staticmethod
    def await_reply(c: Client, kind: str) -> dict:
        """The next message, which must be of `kind` (no frame is outstanding between frames)."""
        msg, _ = c.recv()
        if msg["type"] == "error" and kind != "error":
            raise ServerError(msg)
        if msg["type"] != kind:
            raise AssertionError(f"expected {kind}, got {msg['type']}")
        return msg

    def bad_message(self, c: Client) -> None:
        msg, code = self.rng.choice(BAD)
        c.send(msg)
        reply = self.await_reply(c, "error")
        if reply["code"] != code:
            raise AssertionError(f"{msg} got {reply['code']}, expected {code}")
        self.bad_answered += 1


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q / 100 * len(xs)))], 2)


def soak(world: str, clients: int, seconds: float, fps: float, size: int, warmup: float | None = None) -> dict:
    warmup = min(10.0, seconds / 6) if warmup is None else warmup
    with DaemonProcess(world, "--max-sessions", str(clients + 4)) as d:
        t0 = time.monotonic()
        players = [Player(d.address, i, t0 + seconds, fps, size) for i in range(clients)]
        for pl in players:
            pl.start()
        samples: list[tuple[float, float]] = []
        while any(pl.is_alive() for pl in players):
            samples.append((time.monotonic() - t0, rss_mb(d.proc.pid)))
            time.sleep(1.0)
        for pl in players:
            pl.join()
        alive = d.proc.poll() is None
        code = d.stop()
    start = next((r for t, r in samples if t >= warmup), samples[-1][1])
    end = samples[-1][1]
    latencies = [x for pl in players for x in pl.latencies]
    errors = [e for pl in players for e in pl.errors]
    frames = sum(pl.frames for pl in players)
    return {
        "world": world, "clients": clients, "seconds": seconds, "fps_per_client": fps, "size": size,
        "frames": frames, "frames_per_s": round(frames / seconds, 1),
        "frames_per_client": [pl.frames for pl in players],
        "sessions": sum(pl.sessions for pl in players), "bad_messages_answered": sum(pl.bad_answered for pl in players),
        "errors": len(errors), "error_samples": errors[:10],
        "rss_mb": {"warmup_s": warmup, "start": round(start, 1), "end": round(end, 1),
                   "max": round(max(r for _, r in samples), 1), "growth_pct": round(100 * (end - start) / start, 2)},
        "latency_ms": {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "max": round(max(latencies), 2)
                       if latencies else float("nan")},
        "daemon_alive_at_end": alive, "daemon_exit_code": code,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="maze")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second per client (0: as fast as served)")
    ap.add_argument("--size", type=int, default=64, help="frame width and height")
    ap.add_argument("--warmup", type=float, help="seconds before the start RSS is taken (default min(10, 1/6))")
    ap.add_argument("--json", action="store_true", help="one line of JSON (default: indented)")
    args = ap.parse_args()
    result = soak(args.world, args.clients, args.seconds, args.fps, args.size, args.warmup)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
