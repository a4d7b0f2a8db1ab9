"""The machinery every training stage shares (runtime/training/stages.py has the stages and run(), which chains
them; runtime/training/config.py the settings): where and how this process trains (Context: device, autocast,
DDP rank, the run directory, the log), the resumable optimisation loop (Trainer), the training data in memory
(Episodes) and the servable checkpoint a stage leaves behind (save_model).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from runtime.camera import intrinsics
from runtime.data.dataset import Dataset
from runtime.guidance import FEATURES, Guidance, features, position
from runtime.neural.autoencoder import Autoencoder
from runtime.neural.checkpoint import ModelConfig, save_checkpoint
from runtime.neural.dit import DiT, plucker_rays
from runtime.precision import torch_dtype
from runtime.training.config import STAGES, StageConfig, TrainConfig

# ------------------------------------------------------------------------------------------ infrastructure


@dataclass
class Context:
    """Where and how this process trains: device, autocast, its rank among DDP processes, the run dir."""

    cfg: TrainConfig
    device: torch.device
    rank: int
    world_size: int
    out: Path
    log: Callable[[dict[str, Any]], None]

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = torch_dtype(self.cfg.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def sync(self, module: nn.Module, what: str) -> None:
        """Across DDP processes: 'params' broadcasts rank 0's weights, 'grads' averages the gradients. By hand
        rather than with DistributedDataParallel, because the student trains through DiT.step, not forward."""
        if self.world_size == 1:
            return
        for p in module.parameters():
            if what == "params":
                dist.broadcast(p.data, 0)
            elif p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world_size

    def generator(self, stage: str, step: int) -> torch.Generator:
        """Batch sampling differs per rank and per step, and is the same again after a resume."""
        key = [self.cfg.seed, STAGES.index(stage), self.rank, step]
        return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def make_context(cfg: TrainConfig) -> Context:
    """This process's Context: DDP set up from torchrun's environment, torch threads, the run directory."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = torch.device(cfg.device)
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # adaLN-Zero starts from zero weights: the tiny gradients of the first steps are denormal floats, which
    # are ~10x slower on CPUs (6.4 s/step instead of 1 here) and carry no useful precision.
    torch.set_flush_denormal(True)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / "log.jsonl"

    def log(record: dict[str, Any]) -> None:
        if rank == 0:
            with log_file.open("a") as f:
                f.write(json.dumps({"time": round(time.time(), 1), **record}) + "\n")

    return Context(cfg, device, rank, world_size, out, log)


def lr_at(stage: StageConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 10%."""
    if step < stage.warmup:
        return stage.lr * (step + 1) / stage.warmup
    progress = (step - stage.warmup) / max(1, stage.steps - stage.warmup)
    return stage.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


class Trainer:
    """The loop every stage shares: resume, LR schedule, gradient step, logging, periodic state saves."""

    def __init__(self, ctx: Context, name: str, stage: StageConfig, module: nn.Module):
        self.ctx, self.name, self.stage, self.module = ctx, name, stage, module
        self.opt = torch.optim.AdamW(module.parameters(), lr=stage.lr, weight_decay=0.0, betas=(0.9, 0.99))
        self.path = ctx.out / f"{name}.pt"
        self.step = 0
        if self.path.exists():
            state = torch.load(self.path, map_location=ctx.device, weights_only=True)
            module.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.step = state["step"]
        ctx.sync(module, "params")

    @property
    def done(self) -> bool:
        return self.step >= self.stage.steps

    def run(
        self,
        loss_fn: Callable[[torch.Generator], dict[str, torch.Tensor]],
        progress: Callable[[str, int, int, dict], None] | None = None,
    ) -> None:
        self.module.train()
        started, seen = time.time(), 0
        while not self.done:
            for group in self.opt.param_groups:
                group["lr"] = lr_at(self.stage, self.step)
            with self.ctx.autocast():
                losses = loss_fn(self.ctx.generator(self.name, self.step))
            self.opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            self.ctx.sync(self.module, "grads")
            grad = nn.utils.clip_grad_norm_(self.module.parameters(), 1.0)
            self.opt.step()
            self.step += 1
            seen += 1
            if self.step % self.stage.log_every == 0 or self.done:
                record = {k: round(float(v.detach()), 5) for k, v in losses.items()}
                record.update(
                    stage=self.name,
                    step=self.step,
                    lr=lr_at(self.stage, self.step - 1),
                    grad=round(float(grad), 3),
                    s_per_step=round((time.time() - started) / seen, 3),
                )
                self.ctx.log(record)
                if progress:
                    progress(self.name, self.step, self.stage.steps, record)
            if self.step % self.stage.save_every == 0 or self.done:
                self.save()

    def save(self) -> None:
        if self.ctx.main:
            tmp = self.path.with_suffix(".tmp")
            torch.save({"model": self.module.state_dict(), "opt": self.opt.state_dict(), "step": self.step}, tmp)
            tmp.replace(self.path)


# --------------------------------------------------------------------------------------------------- data


@dataclass
class Episodes:
    """Training episodes in memory: frames (E, T, 3, H, W) uint8 and the per-frame conditions."""

    frames: torch.Tensor  # (E, T, 3, H, W) uint8
    actions: torch.Tensor  # (E, T, A) float32: move (2), look (2), button bits
    poses: torch.Tensor  # (E, T, 4, 4) float32, relative to each episode's first frame
    lens: torch.Tensor  # (E, T, 4) float32 intrinsics fx, fy, cx, cy
    rays: torch.Tensor | None = None  # (E, T, N, 6) Plücker rays at the model's token grid (with_rays)
    # Guidance (datasets generated with it, for guided models): the buffers at full size for the decoder's
    # crops, and the features pooled to the transformer's grid once (runtime/guidance.py).
    colour: torch.Tensor | None = None  # (E, T, H, W, 3) uint8
    depth: torch.Tensor | None = None  # (E, T, H, W) float16
    guide: torch.Tensor | None = None  # (E, T, G, gh, gw) float16
    c2w: np.ndarray | None = None  # (E, T, 4, 4) float64 world camera-to-world, for position features
    fov_deg: np.ndarray | None = None  # (E, T) vertical fov

    def with_rays(self, dit: DiT, size: tuple[int, int]) -> Episodes:
        """Compute every frame's rays once, outside any autocast (they are conditions, not activations)."""
        self.rays = plucker_rays(self.poses, self.lens, size, dit.grid)
        return self

    @staticmethod
    def cat(parts: list[Episodes]) -> Episodes:
        """One set of the episodes of several (all with the same frame size and length, all guided or none)."""
        if len(parts) == 1:
            return parts[0]
        if len({p.frames.shape[1:] for p in parts}) > 1:
            raise ValueError(f"mixed datasets need the same episode length and frame size, got "
                             f"{sorted({tuple(p.frames.shape[1:]) for p in parts})} (T, 3, H, W)")
        joined = {}
        for f in fields(Episodes):
            vs = [getattr(p, f.name) for p in parts]
            if any(v is None for v in vs):
                if f.name == "colour" and any(v is not None for v in vs):
                    raise ValueError("mixed datasets must all have guidance buffers, or none")
                joined[f.name] = None
            else:
                joined[f.name] = np.concatenate(vs) if isinstance(vs[0], np.ndarray) else torch.cat(vs)
        return Episodes(**joined)


def load_episodes(
    root: str | Path, first: int, last: int, buttons: int, progress: Callable[[int], None] | None = None,
    pool_guidance: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Episodes:
    """Episodes first..last-1 of a dataset (all must have the same length). pool_guidance: a guided
    transformer's DiT.pool_guidance: the dataset's guidance buffers are loaded too (it must have them)."""
    data = Dataset(Path(root))
    width, height = data.meta["width"], data.meta["height"]
    if pool_guidance and not data.has_guidance:
        raise ValueError(f"{root}: a guided model trains on guidance buffers; generate the data with --guidance")
    frames, actions, poses, lens, colour, depth, guide, c2w, fov = [], [], [], [], [], [], [], [], []
    for k in range(first, last):
        ep = data.episode(k)
        frames.append(torch.from_numpy(ep["frames"]).permute(0, 3, 1, 2))
        bits = (ep["buttons"][:, None].astype(np.int64) >> np.arange(buttons)) & 1
        actions.append(torch.from_numpy(np.concatenate([ep["move"], ep["look"], bits], 1).astype(np.float32)))
        poses.append(torch.from_numpy(np.linalg.inv(ep["poses"][0].astype(np.float64)) @ ep["poses"]).float())
        lens.append(torch.tensor([intrinsics(width, height, f) for f in ep["fov_deg"]], dtype=torch.float32))
        if pool_guidance:
            g = data.guidance(k, np.float16)
            colour.append(torch.from_numpy(g.colour))
            depth.append(torch.from_numpy(g.depth))
            full = torch.from_numpy(features(g, width, height))  # (T, G, H, W)
            guide.append(pool_guidance(full).half())
            c2w.append(ep["poses"].astype(np.float64))
            fov.append(ep["fov_deg"].astype(np.float64))
        if progress:
            progress(1)
    episodes = Episodes(torch.stack(frames), torch.stack(actions), torch.stack(poses), torch.stack(lens))
    if pool_guidance:
        episodes.colour, episodes.depth, episodes.guide = torch.stack(colour), torch.stack(depth), torch.stack(guide)
        episodes.c2w, episodes.fov_deg = np.stack(c2w), np.stack(fov)
    return episodes


def guidance_crops(data: Episodes, index: torch.Tensor, top: int, left: int, size: int,
                   channels: int = FEATURES) -> torch.Tensor:
    """(B, channels, size, size) full-size guidance features of frames `index` (into the flattened E*T frames) in
    one crop window, for a guided decoder; beyond FEATURES channels, the position features (runtime/guidance.py)."""
    colour = data.colour.flatten(0, 1)[index, top : top + size, left : left + size]
    depth = data.depth.flatten(0, 1)[index, top : top + size, left : left + size]
    out = features(Guidance(colour.numpy(), depth.float().numpy()), size, size)
    if channels > FEATURES:
        H, W = data.depth.shape[-2:]
        c2w, fov = data.c2w.reshape(-1, 4, 4), data.fov_deg.reshape(-1)
        depth = data.depth.flatten(0, 1)
        pos = np.stack([position(depth[i].float().numpy(), c2w[i], fov[i], W, H, (top, left, size))
                        for i in index.tolist()])
        out = np.concatenate([out, pos], 1)
    return torch.from_numpy(out)


def split(data_root: str | Path, holdout: int) -> tuple[int, int]:
    """(number of training episodes, total): the last `holdout` episodes are held out."""
    n = len(Dataset(Path(data_root)))
    if n <= holdout:
        raise ValueError(f"{data_root} has {n} episodes; need more than holdout={holdout}")
    return n - holdout, n


# ------------------------------------------------------------------------------------------------ output


def save_model(
    ctx: Context, name: str, mcfg: ModelConfig, ae: Autoencoder, dit: DiT, held: Episodes, steps: int
) -> Path:
    """Write a servable checkpoint directory <out>/<name>, with start frames from held-out episodes."""
    path = ctx.out / name
    if ctx.main:
        cfg = ModelConfig.from_dict(mcfg.to_dict())
        cfg.sampler.steps = steps
        save_checkpoint(path, cfg, ae, dit, held.frames[:, 0].contiguous())
    if ctx.world_size > 1:
        dist.barrier()
    return path
