"""Ulysses-style sequence parallelism for the Fast DiT over torch.distributed (one torchrun job, one replica).

With P ranks (torchrun --nproc_per_node P), every rank holds the whole DiT (weights are replicated: Ulysses
shards activations, not weights) and 1/P of each chunk's tokens. Every per-token part of a block (adaLN
modulation, norms, q/k/v and output projections, the control injection, the cross-attention to the text, the
MLP) runs on the rank's own tokens. Self-attention, the one part that mixes tokens, is bracketed by two
all-to-alls (Jacobs et al., DeepSpeed-Ulysses, arXiv 2309.14509):

    q, k, v (B, L/P, H, hd)  --all-to-all-->  (B, L, H/P, hd)   every token, this rank's heads
    attend over the KV cache and the chunk, RoPE at each token's global position
    out (B, L, H/P * hd)     --all-to-all-->  (B, L/P, H * hd)  this rank's tokens, every head

so rank r attends with heads r*H/P ... (r+1)*H/P - 1 only, and the KV cache, which keeps exactly what
attention sees, holds those heads only: 1/P of the cache per rank. H must be divisible by P (checked, with the
sizes that would work). The head's output is all-gathered, so the predicted latent is whole on every rank and
the sampler runs the same arithmetic everywhere.

Padding: the chunk's L tokens are padded with zeros to a multiple of P, rank r takes tokens
[r*L'/P, (r+1)*L'/P) of the padded L'. Padding tokens are stripped after the first all-to-all (they never
enter attention or the cache: no mask needed) and zero-filled again before the second; their per-token
results are thrown away when the output is gathered. (At the release's 832x480 a chunk has 3 x 30 x 52 = 4680
tokens, which 2, 4 and 8 divide: no padding there.)

The job: rank 0 runs the daemon and receives every input; what the DiT needs of a chunk (its planned camera
motion and intrinsics, W/A/S/D, the start-image latent `y`, the sampler's noise, new prompts' umT5 states,
resets and closes of episodes) is broadcast from rank 0 (`send` for small Python objects, `share` for
tensors). Ranks > 0 run `follow`, which replays those commands on their own world until rank 0 sends "stop".
Noise is drawn on rank 0 only, from the episode's seeded generator, and broadcast: every rank denoises the
same tensors, and rank 0's frames are those of a single process with the same seed. Only rank 0 holds the VAE
and the text encoder; it decodes every chunk.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F

log = logging.getLogger("worldbridge.parallel")
STOP = "stop"
IDLE_TIMEOUT = timedelta(days=365)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_heads(heads: int, size: int) -> None:
    """Ulysses splits the heads over the ranks: heads % size must be 0."""
    if heads % size:
        raise ValueError(f"sequence parallelism over {size} ranks needs a head count divisible by {size}, and "
                         f"this DiT has {heads} heads: use --nproc_per_node "
                         f"{' or '.join(str(d) for d in divisors(heads) if d > 1)}")


@dataclass
class SequenceParallel:
    """This rank's place in the job and the collectives the DiT and the world use (default process group)."""

    rank: int
    size: int
    device: torch.device
    group: Any = None  # the DiT's collectives: None = the default group (gloo on a CPU, nccl on CUDA)
    control: Any = None  # rank 0's commands: a gloo group (CPU sockets, so an idle rank waits off the GPU)

    # ------------------------------------------------------------------------------------- token split

    def span(self, length: int) -> tuple[int, int]:
        """[lo, hi) of this rank's tokens in the chunk's tokens padded to a multiple of size."""
        per = -(-length // self.size)
        return self.rank * per, (self.rank + 1) * per

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) -> this rank's (B, L'/P, ...), zero padding at the end of the sequence."""
        lo, hi = self.span(x.shape[1])
        padded = (hi - lo) * self.size
        if padded != x.shape[1]:
            pad = [0, 0] * (x.dim() - 2) + [0, padded - x.shape[1]]
            x = F.pad(x, pad)
        return x[:, lo:hi]

    def _all_to_all(self, x: torch.Tensor) -> torch.Tensor:
        """Chunk p of dim 0 goes to rank p; chunk p of the result came from rank p."""
        x = x.contiguous()
        out = torch.empty_like(x)
        dist.all_to_all_single(out, x, group=self.group)
        return out

    def to_heads(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """(n, B, L'/P, H, hd) tokens-split -> (n, B, L, H/P, hd) heads-split, padding stripped (n tensors at once)."""
        n, B, local, H, hd = x.shape
        P = self.size
        x = x.view(n, B, local, P, H // P, hd).permute(3, 0, 1, 2, 4, 5)  # (P: heads group, n, B, L'/P, H/P, hd)
        x = self._all_to_all(x)  # (P: source rank = tokens block, n, B, L'/P, H/P, hd)
        return x.permute(1, 2, 0, 3, 4, 5).reshape(n, B, P * local, H // P, hd)[:, :, :length]

    def to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, H/P * hd) heads-split attention output -> (B, L'/P, H * hd) tokens-split."""
        B, length, width = x.shape
        P = self.size
        lo, hi = self.span(length)
        local = hi - lo
        x = F.pad(x, [0, 0, 0, local * P - length]).view(B, P, local, width).permute(1, 0, 2, 3)
        x = self._all_to_all(x)  # (P: source rank = heads group, B, L'/P, H/P * hd)
        return x.permute(1, 2, 0, 3).reshape(B, local, P * width)

    def attention(self, attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, length: int) -> torch.Tensor:
        """Self-attention of tokens-split q, k, v (B, L'/P, H, hd) through `attend` (heads-split, whole
        sequence: (B, L, H/P, hd) each -> (B, L, H/P * hd)); returns (B, L'/P, H * hd)."""
        if q.dtype == k.dtype == v.dtype:  # one all-to-all for the three
            q, k, v = self.to_heads(torch.stack([q, k, v]), length).unbind(0)
        else:
            q, k, v = (self.to_heads(t[None], length)[0] for t in (q, k, v))
        return self.to_tokens(attend(q, k, v))

    def gather(self, x: torch.Tensor, length: int) -> torch.Tensor:
        """This rank's (B, L'/P, C) -> the whole (B, L, C) on every rank."""
        parts = [torch.empty_like(x) for _ in range(self.size)]
        dist.all_gather(parts, x.contiguous(), group=self.group)
        return torch.cat(parts, dim=1)[:, :length]

    # -------------------------------------------------------------------------------- rank 0's inputs

    def send(self, *command: Any) -> None:
        """Rank 0: broadcast a small picklable command (name, args...) to the ranks waiting in `receive`."""
        dist.broadcast_object_list([command], src=0, group=self.control)

    def receive(self) -> tuple:
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def share(self, tensor: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Rank 0's `tensor` (of shape, dtype) on every rank, on this rank's device; ranks > 0 pass None."""
        buf = tensor.to(self.device) if self.rank == 0 else torch.empty(shape, dtype=dtype, device=self.device)
        dist.broadcast(buf, 0, group=self.group)
        return buf

    def agree(self, ok: bool) -> bool:
        """True on every rank when `ok` is true on every rank (a barrier, over the control group)."""
        flag = torch.tensor([int(ok)])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=self.control)
        return bool(flag.item())

    def stop(self) -> None:
        """Rank 0: tell the other ranks (waiting in `follow`) to stop, then leave the job."""
        if dist.is_initialized() and self.rank == 0:
            self.send(STOP)
        self.leave()

    def leave(self) -> None:
        """Leave the job (idempotent)."""
        if dist.is_initialized():
            dist.destroy_process_group()


def torchrun_size() -> int:
    """WORLD_SIZE of the torchrun job this process belongs to (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def join(device: str | torch.device = "cpu") -> SequenceParallel:
    """Join the torchrun job from its environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT): gloo on a
    CPU, nccl on CUDA with this rank on cuda:LOCAL_RANK (a device index in `device` is refused: torchrun's
    local rank chooses it). WORLD_SIZE 1: a SequenceParallel of one rank, no process group."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise ValueError("sequence parallelism runs under torchrun: torchrun --nproc_per_node N -m "
                         "bridge.tools.cli serve --world lingbot-fast:PATH --sequence-parallel")
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(device)
    if size == 1:  # nothing to split: no process group
        return SequenceParallel(0, 1, device)
    if device.type == "cuda":
        if device.index is not None:
            raise ValueError(f"--device {device}: with sequence parallelism give --device cuda; each rank takes "
                             "cuda:LOCAL_RANK")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ValueError(f"--device {device}: sequence parallelism runs on cpu (gloo) or cuda (nccl)")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    # Ranks > 0 wait for rank 0's next command for as long as no client steps an episode: without limit (a
    # year; torchrun reaps them should rank 0 die). The DiT's own collectives keep the default timeout.
    control = dist.new_group(backend="gloo", timeout=IDLE_TIMEOUT)
    return SequenceParallel(rank, size, device, control=control)


def ignore_stop_signals() -> None:
    """Ranks > 0: SIGINT and SIGTERM are rank 0's to act on (see `follow`)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class Follower(Protocol):
    parallel: SequenceParallel

    def replay(self, name: str, *args: Any) -> None: ...


def follow(world: Follower) -> int:
    """Ranks > 0: replay rank 0's commands on `world` until rank 0 sends "stop"; returns the commands run.

    SIGINT and SIGTERM are ignored meanwhile: torchrun passes a stop signal to every rank, and a rank that
    died at once would leave rank 0 waiting in a collective while it stops. Rank 0 stops its daemon and
    then sends "stop"; should rank 0 die instead, the next collective fails here (gloo) and torchrun kills what
    is left after its grace period."""
    ignore_stop_signals()
    sp, done = world.parallel, 0
    while True:
        command = sp.receive()
        if command[0] == STOP:
            log.info("rank %d: stopped by rank 0 after %d commands", sp.rank, done)
            return done
        world.replay(*command)
        done += 1
