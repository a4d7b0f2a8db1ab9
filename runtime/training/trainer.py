"""Training the world model in three stages, resumable, on CPU or CUDA, one process or many (torchrun/DDP).

1. autoencoder: frames <-> latents (L1 + MSE on pixels); sets latent_scale so latents have unit variance.
2. teacher: the causal transformer trained with diffusion forcing (Chen et al. 2024): every frame of a clip
   gets its own noise level, so the model learns to denoise a frame given context of any cleanliness — the
   clean context of generation included. Clips are shaped like the KV cache at generation time: the
   episode's first frames as sinks followed by a window of consecutive frames from later in the episode.
3. student: a few-step model distilled from the teacher on its OWN rollouts (Self-Forcing style): student
   episodes start from real frames and then run on their own generated frames, through the same KV cache
   the daemon uses; for each next frame the teacher integrates its flow ODE with many steps from a noise
   draw, and the student learns to land on that result from the same noise in its few steps (reflow-style
   regression at the student's own timesteps). Drift that the student's own context causes is what it
   trains on, so long rollouts stay stable.

Everything a run writes lives in its `out` directory: <stage>.pt training states (resume), latents.pt, and
model/ — a checkpoint directory that `worldbridge serve --world <out>/model` serves, rewritten after each
stage.

This module is the driver and the loop every stage shares (Context, Trainer, the data in memory, run());
runtime/training/stages.py holds the stages (losses, self-rollouts), runtime/training/config.py the settings.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import yaml

from runtime.camera import intrinsics
from runtime.data.dataset import Dataset
from runtime.neural.autoencoder import Autoencoder
from runtime.neural.checkpoint import ModelConfig, build_models, load_checkpoint, read_config, save_checkpoint
from runtime.neural.dit import DiT, plucker_rays
from runtime.precision import torch_dtype
from runtime.training.config import STAGES, StageConfig, TrainConfig
from runtime.training.stages import encode_all, train_autoencoder, train_student, train_teacher

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

    def trainer(self, stage: str, module: nn.Module) -> Trainer:
        """The loop for one stage (a name in STAGES) of `module`, with that stage's settings; resumes from
        <out>/<stage>.pt when an earlier run left one."""
        return Trainer(self, stage, getattr(self.cfg, stage), module)

    def generator(self, stage: str, step: int) -> torch.Generator:
        """Batch sampling differs per rank and per step, and is the same again after a resume."""
        key = [self.cfg.seed, STAGES.index(stage), self.rank, step]
        return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def _context(cfg: TrainConfig) -> Context:
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

    def with_rays(self, dit: DiT, size: tuple[int, int]) -> Episodes:
        """Compute every frame's rays once, outside any autocast (they are conditions, not activations)."""
        self.rays = plucker_rays(self.poses, self.lens, size, dit.grid)
        return self


def load_episodes(
    root: str | Path, first: int, last: int, buttons: int, progress: Callable[[int], None] | None = None
) -> Episodes:
    """Episodes first..last-1 of a dataset (all must have the same length)."""
    data = Dataset(Path(root))
    width, height = data.meta["width"], data.meta["height"]
    frames, actions, poses, lens = [], [], [], []
    for k in range(first, last):
        ep = data.episode(k)
        frames.append(torch.from_numpy(ep["frames"]).permute(0, 3, 1, 2))
        bits = (ep["buttons"][:, None].astype(np.int64) >> np.arange(buttons)) & 1
        actions.append(torch.from_numpy(np.concatenate([ep["move"], ep["look"], bits], 1).astype(np.float32)))
        poses.append(torch.from_numpy(np.linalg.inv(ep["poses"][0].astype(np.float64)) @ ep["poses"]).float())
        lens.append(torch.tensor([intrinsics(width, height, f) for f in ep["fov_deg"]], dtype=torch.float32))
        if progress:
            progress(1)
    return Episodes(torch.stack(frames), torch.stack(actions), torch.stack(poses), torch.stack(lens))


def split(data_root: str | Path, holdout: int) -> tuple[int, int]:
    """(number of training episodes, total): the last `holdout` episodes are held out."""
    n = len(Dataset(Path(data_root)))
    if n <= holdout:
        raise ValueError(f"{data_root} has {n} episodes; need more than holdout={holdout}")
    return n - holdout, n


# ------------------------------------------------------------------------------------------------ driver


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


def run(cfg: TrainConfig, until: str = "student", progress=None) -> Path:
    """Run every stage up to and including `until`, resuming whatever an earlier run left unfinished.
    Returns the servable model directory: <out>/model (the student, or the last stage trained)."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    stages = STAGES[: STAGES.index(until) + 1]
    ctx = _context(cfg)
    torch.manual_seed(cfg.seed)
    if ctx.main:
        (ctx.out / "train.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if cfg.init:  # fine-tuning: the trained autoencoder is kept, the transformer starts from the trained one
        init = load_checkpoint(cfg.init, "cpu")
        mcfg, ae, dit = init.config, init.autoencoder, init.dit
    else:
        mcfg = read_config(cfg.model)
        ae, dit = build_models(mcfg)
    size = (mcfg.frame.width, mcfg.frame.height)
    n_train, n_total = split(cfg.data, cfg.holdout)
    train = load_episodes(cfg.data, 0, n_train, mcfg.dit.buttons).with_rays(dit, size)
    held = load_episodes(cfg.data, n_train, n_total, mcfg.dit.buttons).with_rays(dit, size)
    if tuple(train.frames.shape[-2:]) != (mcfg.frame.height, mcfg.frame.width):
        raise ValueError(
            f"{cfg.data}: frames are {tuple(train.frames.shape[-2:])} (H, W), the model wants "
            f"({mcfg.frame.height}, {mcfg.frame.width})"
        )
    if not cfg.init:
        ae = train_autoencoder(ctx, mcfg, ae, train, held, progress)
    ae.to(ctx.device, memory_format=torch.channels_last).eval()
    if len(stages) == 1:
        return save_model(ctx, "model", mcfg, ae, dit, held, mcfg.sampler.steps)
    latents_path = ctx.out / "latents.pt"
    if latents_path.exists():
        latents = torch.load(latents_path, weights_only=True)
    else:
        latents = encode_all(ctx, ae, train.frames, progress=progress)
        if ctx.main:  # written whole or not at all: other ranks may be looking for it
            torch.save(latents, latents_path.with_suffix(".tmp"))
            latents_path.with_suffix(".tmp").replace(latents_path)
    teacher = train_teacher(ctx, dit, latents, train, progress)
    save_model(ctx, "teacher", mcfg, ae, teacher, held, cfg.student.teacher_steps)
    if "student" not in stages:
        return save_model(ctx, "model", mcfg, ae, teacher, held, cfg.student.teacher_steps)
    student = build_models(mcfg)[1]
    student.load_state_dict(teacher.state_dict())
    student = train_student(ctx, student, teacher, latents, train, mcfg.sampler.steps, progress)
    return save_model(ctx, "model", mcfg, ae, student, held, mcfg.sampler.steps)
