"""Ulysses sequence parallelism for LingBot-World-Fast (runtime/lingbot/fast/parallel.py) on 2 real gloo
processes: the DiT's chunks (padded or not, also after the KV cache window rolled) and a whole LingBotWorld's
frames equal one process's, each rank's cache is half of one process's, a head count 2 does not divide is a
clear error, and `torchrun ... serve --sequence-parallel` serves a client the single-process daemon's frames and
stops with all of its processes.

Tolerance: float32 everywhere. The two paths do the same arithmetic in a different grouping (matmuls over 1/P
of the rows, attention over H/P heads at a time), so latents agree to float32 round-off: atol 1e-4, rtol 1e-4
on latents of magnitude ~1 (measured: ~1e-6), frames within 1 level of 255 (measured: identical)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from lingbot_tiny import tiny_dit, tiny_release
from lockstep import lockstep

from bridge.client.client import Client
from bridge.client.launch import READY_PREFIX, DaemonProcess
from runtime.lingbot.fast.config import CHUNK_FRAMES, fast_schedule
from runtime.lingbot.fast.control import control_tokens, relative_motion
from runtime.lingbot.fast.dit import ChunkCache, ChunkInputs, WanFastDiT
from runtime.lingbot.fast.parallel import SequenceParallel
from runtime.lingbot.fast.tiny import tiny_config, write_tiny_checkpoint
from runtime.world import Action

ROOT = Path(__file__).resolve().parents[1]
ATOL = RTOL = 1e-4
# latent (h, w) of a chunk: 3 x 2 x 4 = 24 tokens, 12 per rank; 3 x 3 x 5 = 45 tokens, padded to 46
SIZES = {"plain": (4, 8), "padded": (6, 10)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@torch.inference_mode()
def run_chunks(model: WanFastDiT, h: int, w: int, chunks: int = 4) -> tuple[torch.Tensor, ChunkCache]:
    """`chunks` chunks through the Fast sampler and the cache (1 sink, window 1: chunk 3 no longer sees chunk 1),
    every input drawn from a fixed seed, so every process makes the same ones."""
    g = torch.Generator().manual_seed(1)
    frames, n = chunks * CHUNK_FRAMES, (h // 2) * (w // 2)
    y = torch.randn(1, 20, frames, h, w, generator=g)
    motion = relative_motion(None, np.repeat(np.eye(4)[None], frames, 0))
    motion[:, :3, 3] = torch.randn(frames, 3, generator=g).numpy()
    K = np.tile([[40.0, 40.0, 8.0 * w / 2, 8.0 * h / 2]], (frames, 1))
    control = model.embed_control(control_tokens(motion, K, 8 * h, 8 * w))
    cross = model.embed_text(torch.randn(1, 5, model.cfg.text_dim, generator=g))
    cache, out = ChunkCache(1, 1), []
    for c in range(chunks):
        f = slice(c * CHUNK_FRAMES, (c + 1) * CHUNK_FRAMES)
        inputs = ChunkInputs(y[:, :, f], control[:, c * CHUNK_FRAMES * n:(c + 1) * CHUNK_FRAMES * n], cross)
        x = torch.randn(1, 16, CHUNK_FRAMES, h, w, generator=g)
        for t, sigma, _ in fast_schedule(10.0):
            x0 = x - sigma * model.forward_chunk(x, t, inputs, cache)
            x = (1 - sigma / 2) * x0 + sigma / 2 * torch.randn(x.shape, generator=g)
        model.forward_chunk(x0, 0.0, inputs, cache, record=True)
        cache.commit()
        out.append(x0)
    return torch.cat(out, dim=2), cache


def join_gloo(rank: int, port: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))


def dit_rank(rank: int, port: int, out: str) -> None:
    from runtime.lingbot.fast.parallel import join

    join_gloo(rank, port)
    sp = join("cpu")
    model = tiny_dit()
    model.set_parallel(sp)
    result = {}
    for name, (h, w) in SIZES.items():
        latents, cache = run_chunks(model, h, w)
        result[name] = {"latents": latents, "cache_bytes": cache.nbytes, "cache_heads": cache.k.shape[3],
                        "visible": [c for _, c in cache.slots()]}
    torch.save(result, Path(out) / f"rank{rank}.pt")
    sp.leave()


def test_dit_chunks_on_two_ranks_equal_one_process_and_halve_the_cache(tmp_path):
    mp.spawn(dit_rank, args=(free_port(), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    model = tiny_dit()
    for name, (h, w) in SIZES.items():
        single, cache = run_chunks(model, h, w)
        assert [c for _, c in cache.slots()] == [0, 3]  # the window rolled: chunk 1 is out
        for r in ranks:
            torch.testing.assert_close(r[name]["latents"], single, atol=ATOL, rtol=RTOL)
            assert r[name]["cache_bytes"] * 2 == cache.nbytes  # the cache per rank is half
            assert r[name]["cache_heads"] * 2 == cache.k.shape[3] == model.cfg.num_heads
            assert r[name]["visible"] == [0, 3]
        torch.testing.assert_close(ranks[0][name]["latents"], ranks[1][name]["latents"], atol=0, rtol=0)


def test_a_head_count_the_ranks_do_not_divide_is_a_clear_error(tmp_path):
    cfg = tiny_config()
    three = type(cfg)(**{**cfg.__dict__, "dim": 96, "num_heads": 3, "ffn_dim": 96})
    two_ranks = SequenceParallel(rank=0, size=2, device=torch.device("cpu"))  # the check needs no process group
    message = "sequence parallelism over 2 ranks needs a head count divisible by 2, and this DiT has 3 heads"
    with pytest.raises(ValueError, match=message):
        WanFastDiT(three).set_parallel(two_ranks)
    from runtime.lingbot.fast.world import LingBotWorld

    path = write_tiny_checkpoint(tmp_path / "three", config=three)
    with pytest.raises(ValueError, match=message + ": use --nproc_per_node 3"):
        LingBotWorld(path, parallel=two_ranks)  # before any weight is loaded


def drive(world, log: list) -> None:
    """Two episodes through a LingBotWorld: resets, a prompt change, a close, engine poses; the window (1 sink
    + 1 chunk) rolls at episode a's chunk 3 (frame 33)."""
    world.reset("a", 5, 64, 32)
    world.reset("b", 6, 64, 32)
    for k in range(34):
        actions = {"a": Action(move=(0.3, 1.0), look=(2.0, 0.0))}
        if k < 10:
            pose = np.eye(4)
            pose[:3, 3] = [0.0, -1.5, 0.1 * k]
            actions["b"] = Action(pose=pose)
        if k == 12:
            world.set_prompt("a", "a red castle at night")
        if k == 10:
            world.close("b")
        for key, frame in world.step(actions).items():
            log.append((key, k, frame.pixels))
    world.reset("a", 5, 64, 32)  # same seed again: the same first chunk
    log.append(("a", 0, world.step({"a": Action(move=(0.3, 1.0), look=(2.0, 0.0))})["a"].pixels))


def world_rank(rank: int, port: int, path: str, out: str) -> None:
    from runtime.lingbot.fast.world import open_parallel

    join_gloo(rank, port)
    world = open_parallel(path, dtype="float32")
    if rank == 0:
        log: list = []
        drive(world, log)
        world.shutdown()
        torch.save(log, Path(out) / "frames.pt")
    else:
        assert world is None  # followed rank 0 until its shutdown


def test_a_lingbot_world_on_two_ranks_makes_one_process_frames(tmp_path):
    path = tiny_release(tmp_path / "release", sinks=1, window=1)
    mp.spawn(world_rank, args=(free_port(), str(path), str(tmp_path)), nprocs=2)
    parallel = torch.load(tmp_path / "frames.pt", weights_only=False)
    from runtime.lingbot.fast.world import LingBotWorld

    single: list = []
    drive(LingBotWorld(path, dtype="float32"), single)
    assert len(parallel) == len(single) == 34 + 10 + 1
    for (key, k, x), (key2, k2, y) in zip(parallel, single):
        assert (key, k) == (key2, k2)
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 1, (key, k)
    assert len({x.tobytes() for _, _, x in parallel}) > 30  # video, not a still


# ------------------------------------------------------------------------------------ torchrun + the daemon


def frames_of(address: str, n: int = 22) -> list[np.ndarray]:
    with Client(address, seed=11) as c:
        return [f.image for f in lockstep(c, n, timeout=60, move=(0.0, 1.0), look=(3.0, 0.0))]


class Torchrun:
    """`torchrun --nproc_per_node 2 -m bridge.tools.cli serve --sequence-parallel` on the tiny release."""

    def __init__(self, path: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "bridge.tools.cli", "serve", "--world",
               f"lingbot-fast:{path}", "--bind", "tcp://127.0.0.1:0", "--dtype", "float32", "--sequence-parallel"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                     env=env)
        self.lines: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if line.startswith(READY_PREFIX):
                    ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        assert ready.wait(120) and self.proc.poll() is None, self.log
        self.address = next(x for x in self.lines if x.startswith(READY_PREFIX)).split(" on ", 1)[1].strip()
        self.ranks = {}  # rank -> pid
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                rank = next(int(v[5:]) for v in environ if v.startswith(b"RANK="))
                self.ranks[rank] = int(pid)
        assert sorted(self.ranks) == [0, 1], self.log

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait(self) -> int:
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.pump.join(10)  # every line read

    def gone(self) -> bool:
        """Every rank has exited (and been reaped by torchrun)."""
        time.sleep(0.2)
        return not any(Path(f"/proc/{pid}").exists() for pid in self.ranks.values())


def test_torchrun_serves_one_process_frames_and_stops_cleanly(tmp_path):
    path = tiny_release(tmp_path / "release")
    job = Torchrun(path)
    try:
        parallel = frames_of(job.address)
        with DaemonProcess(f"lingbot-fast:{path}", "--dtype", "float32") as single_daemon:
            single = frames_of(single_daemon.address)
        assert len(parallel) == len(single) == 22
        for x, y in zip(parallel, single):
            assert np.abs(x.astype(int) - y.astype(int)).max() <= 1
        os.kill(job.ranks[0], signal.SIGTERM)  # the daemon stops, then tells rank 1 to
    finally:
        rc = job.wait()
    assert rc == 0, job.log  # torchrun: every rank exited with 0
    assert job.gone(), job.log
    assert re.search(r"rank 1: stopped by rank 0 after \d+ commands", job.log), job.log
    assert "stopped after forwarding" in job.log and "Traceback" not in job.log, job.log


def test_a_stop_signal_to_torchrun_stops_every_rank(tmp_path):
    # Ctrl-C / SIGTERM to torchrun itself: it passes the signal to both ranks; rank 1 ignores it and waits for
    # rank 0, whose daemon stops and sends "stop". torchrun then exits 1 reporting the signal it got (its own way).
    job = Torchrun(tiny_release(tmp_path / "release"))
    job.proc.send_signal(signal.SIGTERM)
    job.wait()
    assert job.gone(), job.log
    before = job.log.split("death signal")[1]  # what the ranks logged once torchrun passed the signal on
    assert "stopped after forwarding" in before and "rank 1: stopped by rank 0" in before, job.log
    assert "Traceback" not in job.log.split("death signal")[0], job.log


def test_serve_asks_for_the_flag_under_torchrun_and_torchrun_for_the_flag(tmp_path, monkeypatch, capsys):
    from bridge.tools.cli import main

    world = f"lingbot-fast:{tmp_path}"
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["serve", "--world", world, "--sequence-parallel"]) == 2
    assert "sequence parallelism runs under torchrun: torchrun --nproc_per_node N" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["serve", "--world", world]) == 2
    assert "started as 2 processes (torchrun): add --sequence-parallel" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    assert main(["serve", "--world", "maze", "--sequence-parallel"]) == 2
    assert "splits lingbot-fast:PATH worlds only" in capsys.readouterr().err
