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

This module holds the stages (losses, the student's self-rollouts) and run(), which trains them in order;
runtime/training/trainer.py the loop they share, runtime/training/config.py the settings.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from runtime.camera import frustum_overlap
from runtime.data.dataset import Dataset
from runtime.eval.metrics import psnr
from runtime.neural.autoencoder import Autoencoder, from_uint8
from runtime.neural.checkpoint import ModelConfig, build_models, load_checkpoint, read_config
from runtime.neural.dit import DiT
from runtime.neural.generate import commit
from runtime.neural.kv_cache import KVCache
from runtime.neural.memory import STRIDE, Memory
from runtime.neural.sampler import sample, timesteps
from runtime.precision import torch_dtype
from runtime.training.config import STAGES, TrainConfig
from runtime.training.trainer import (
    Context,
    Episodes,
    Trainer,
    guidance_crops,
    load_episodes,
    make_context,
    save_model,
    split,
)


def clip_indices(T: int, length: int, sinks: int, batch: int, g: torch.Generator) -> torch.Tensor:
    """(batch, length) frame indices shaped like the KV cache at generation time: half the clips are an
    episode's first `length` frames (the cache filling up), half are its first `sinks` frames followed by
    consecutive frames from later on (the cache once the window has rolled)."""
    idx = torch.arange(length).repeat(batch, 1)
    start = torch.randint(sinks, T - (length - sinks) + 1, (batch,), generator=g)
    rolled = torch.rand(batch, generator=g) < 0.5
    idx[rolled, sinks:] = start[rolled, None] + torch.arange(length - sinks)
    return idx


def _crop(
    g: torch.Generator, frames: torch.Tensor, batch: int, crop: int, d: int
) -> tuple[torch.Tensor, int, int, int]:
    """Random frames (indices into frames, (N, 3, H, W)) and one crop window aligned to the latent grid."""
    idx = torch.randint(0, len(frames), (batch,), generator=g)
    H, W = frames.shape[-2:]
    c = min(crop or H, H, W)
    top = int(torch.randint(0, (H - c) // d + 1, (1,), generator=g)) * d
    left = int(torch.randint(0, (W - c) // d + 1, (1,), generator=g)) * d
    return idx, top, left, c


def train_autoencoder(
    ctx: Context, mcfg: ModelConfig, ae: Autoencoder, train: Episodes, held: Episodes, progress=None
) -> Autoencoder:
    frames = train.frames.flatten(0, 1)  # (N, 3, H, W) uint8
    trainer = Trainer(ctx, "autoencoder", ctx.cfg.autoencoder, ae.to(ctx.device, memory_format=torch.channels_last))

    def loss_fn(g: torch.Generator) -> dict[str, torch.Tensor]:
        stage = trainer.stage
        idx, top, left, c = _crop(g, frames, stage.batch, stage.crop, ae.cfg.downsample)
        x = from_uint8(frames[idx, :, top : top + c, left : left + c]).to(ctx.device)
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's fast convolution layout
        z = ae.encoder(x)
        guide = None
        if ae.cfg.guidance:  # with the guidance dropout the transformer sees, so both ways decode well
            keep = (torch.rand(stage.batch, generator=g) >= mcfg.dit.guidance_dropout).float()
            guide = guidance_crops(train, idx, top, left, c, ae.cfg.guidance) * keep[:, None, None, None]
            guide = guide.to(ctx.device).contiguous(memory_format=torch.channels_last)
        y = ae.decoder(z, guide)
        l1, l2 = (y.float() - x).abs().mean(), F.mse_loss(y.float(), x)
        return {"loss": l1 + l2 + 1e-4 * z.float().pow(2).mean(), "l1": l1, "mse": l2}

    if not trainer.done:
        trainer.run(loss_fn, progress)
    ae.eval()
    with torch.inference_mode(), ctx.autocast():
        ae.cfg.latent_scale = float(1.0 / held_out(ae, held, ctx.device, "autoencoder", ctx)[1])
    mcfg.autoencoder.latent_scale = ae.cfg.latent_scale
    ctx.log({"stage": "autoencoder", "latent_scale": ae.cfg.latent_scale})
    return ae


def held_out(ae: Autoencoder, held: Episodes, device: torch.device, stage: str, ctx: Context) -> tuple[float, float]:
    """Reconstruction PSNR of held-out frames (every 8th, at most 256; with their guidance for a guided
    decoder), logged, and the std of their unscaled latents."""
    pick = torch.arange(held.frames.shape[1])[::8]
    flat = (torch.arange(held.frames.shape[0])[:, None] * held.frames.shape[1] + pick).flatten()[:256]
    x = from_uint8(held.frames.flatten(0, 1)[flat]).to(device)
    z = ae.encoder(x).float()
    guide = guidance_crops(held, flat, 0, 0, x.shape[-1], ae.cfg.guidance).to(device) if ae.cfg.guidance else None
    y = ae.decoder(z, guide, ae.look(x)).float().clamp(-1, 1)
    held_psnr = psnr(y.cpu().numpy(), x.float().cpu().numpy(), peak=2.0)  # images in [-1, 1]
    ctx.log({"stage": stage, "held_out_psnr": round(held_psnr, 2)})
    return held_psnr, float(z.std())


def train_decoder(
    ctx: Context, mcfg: ModelConfig, ae: Autoencoder, train: Episodes, held: Episodes, progress=None
) -> Autoencoder:
    """The decoder stage (runtime/training/config.py DecoderStage): guided crops get corrupted latents; a decoder
    with a look code reads it from another frame of the crop's episode, as it reads the start frame in use."""
    frames = train.frames.flatten(0, 1)
    T = train.frames.shape[1]
    stage = ctx.cfg.decoder
    ae.to(ctx.device, memory_format=torch.channels_last)
    ae.encoder.requires_grad_(False)
    trainer = Trainer(ctx, "decoder", stage, ae.decoder)

    def crops(index: torch.Tensor, top: int, left: int, c: int) -> torch.Tensor:
        x = from_uint8(frames[index, :, top : top + c, left : left + c]).to(ctx.device)
        return x.contiguous(memory_format=torch.channels_last)

    def loss_fn(g: torch.Generator) -> dict[str, torch.Tensor]:
        idx, top, left, c = _crop(g, frames, stage.batch, stage.crop, ae.cfg.downsample)
        B = len(idx)
        other = idx // T * T + torch.randint(0, T, (B,), generator=g)  # a frame of the same episode
        x = crops(idx, top, left, c)
        with torch.no_grad():
            z = ae.encoder(x).float()
            if stage.swap:
                swap = (torch.rand(B, generator=g) < stage.swap).to(ctx.device)[:, None, None, None]
                corrupt = torch.where(swap, ae.encoder(crops(other, top, left, c)).float(), z)
            else:
                corrupt = z
        keep = (torch.rand(B, generator=g) >= mcfg.dit.guidance_dropout).float()
        blurred = F.interpolate(F.avg_pool2d(corrupt, 2), scale_factor=2, mode="nearest")
        blur = (torch.rand(B, generator=g) < stage.blur).float()[:, None, None, None]
        sigma = torch.rand(B, 1, 1, 1, generator=g) * stage.noise * z.std()
        corrupt = blur * blurred + (1 - blur) * corrupt + sigma * torch.randn(z.shape, generator=g)
        if stage.shift:
            h, w = z.shape[-2:]
            smooth = F.interpolate(torch.randn(B, z.shape[1], max(1, h // 4), max(1, w // 4), generator=g),
                                   size=(h, w), mode="bilinear", align_corners=False)
            offset = torch.randn(B, z.shape[1], 1, 1, generator=g) + smooth
            corrupt = corrupt + torch.rand(B, 1, 1, 1, generator=g) * stage.shift * z.std() * offset
        z = torch.where(keep[:, None, None, None] > 0, corrupt.to(z.device), z)  # guided crops only
        guide = (guidance_crops(train, idx, top, left, c, ae.cfg.guidance) * keep[:, None, None, None]).to(ctx.device)
        look = ae.look(from_uint8(frames[other]).to(ctx.device).contiguous(memory_format=torch.channels_last))
        y = ae.decoder(z, guide.contiguous(memory_format=torch.channels_last), look)
        l1, l2 = (y.float() - x).abs().mean(), F.mse_loss(y.float(), x)
        return {"loss": l1 + l2, "l1": l1, "mse": l2}

    if not trainer.done:
        trainer.run(loss_fn, progress)
    ae.eval()
    with torch.inference_mode(), ctx.autocast():
        held_out(ae, held, ctx.device, "decoder", ctx)
    return ae


@torch.inference_mode()
def encode_all(ctx: Context, ae: Autoencoder, frames: torch.Tensor, batch: int = 128, progress=None) -> torch.Tensor:
    """(E, T, 3, H, W) uint8 -> (E, T, C, h, w) float32 scaled latents."""
    flat = frames.flatten(0, 1)
    out = []
    with ctx.autocast():
        for i in range(0, len(flat), batch):
            x = from_uint8(flat[i : i + batch]).to(ctx.device).contiguous(memory_format=torch.channels_last)
            out.append(ae.encode(x).float().cpu())
            if progress:
                progress("encode", min(i + batch, len(flat)), len(flat), {"loss": float("nan")})
    z = torch.cat(out)
    return z.unflatten(0, frames.shape[:2])


def memory_frames(poses: torch.Tensor, query: torch.Tensor, first: torch.Tensor, count: int, fov_deg: float,
                  sinks: int, min_overlap: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's memory, retrieved as the daemon retrieves it: of the frames between the sinks and the clip's
    window (every STRIDE-th, as the store keeps them), the `count` whose views overlap the `query` view (the
    window's last frame) most. poses: (B, T, 4, 4) each clip's episode; query (B, 4, 4); first: (B,) index of
    its window's first frame. Returns frame indices (B, count) and whether each is there (B, count): overlap >=
    min_overlap."""
    B = poses.shape[0]
    index, present = torch.zeros(B, count, dtype=torch.long), torch.zeros(B, count, dtype=torch.bool)
    for b in range(B):
        candidates = torch.arange(sinks, int(first[b]))
        candidates = candidates[candidates % STRIDE == 0]
        if not len(candidates):
            continue
        score = frustum_overlap(query[b].double().numpy(), poses[b, candidates].double().numpy(), fov_deg)
        best = np.argsort(-score, kind="stable")[:count]
        best = best[score[best] >= min_overlap]
        index[b, : len(best)] = candidates[best]
        present[b, : len(best)] = True
    return index, present


def diffusion_forcing_loss(
    dit: DiT, latents: torch.Tensor, data: Episodes, batch: int, g: torch.Generator, device: torch.device,
    fov_deg: float = 60.0,
) -> dict[str, torch.Tensor]:
    E, T = latents.shape[:2]
    S, M = dit.cfg.sinks, dit.cfg.memory
    length = S + dit.cfg.window
    ep = torch.randint(0, E, (batch,), generator=g)
    idx = clip_indices(T, length, S, batch, g)  # (B, L)
    present = None
    if M:  # the cache's layout: sinks, memory (retrieved by view overlap, clean), window
        mem, mem_present = memory_frames(data.poses[ep], data.poses[ep, idx[:, -1]], idx[:, S], M, fov_deg, S)
        idx = torch.cat([idx[:, :S], mem, idx[:, S:]], 1)
        present = torch.cat([torch.ones(batch, S, dtype=torch.bool), mem_present,
                             torch.ones(batch, length - S, dtype=torch.bool)], 1).to(device)
    L = idx.shape[1]
    x0 = latents[ep[:, None], idx].to(device)  # (B, L, C, h, w)
    action = data.actions[ep[:, None], idx].to(device)
    rays = data.rays[ep[:, None], idx].to(device)
    has_pose = torch.ones(batch, L, dtype=torch.bool, device=device)
    guide = None if data.guide is None else data.guide[ep[:, None], idx].to(device).float()  # (B, L, G, gh, gw)
    # Independent noise level per frame; a third of the frames clean, as context is at generation time; memory
    # frames always clean, as the store holds finished frames.
    t = torch.rand(batch, L, generator=g)
    t = torch.where(torch.rand(batch, L, generator=g) < 0.3, torch.zeros_like(t), t)
    t[:, S : S + M] = 0
    t = t.to(device)
    eps = torch.randn(x0.shape, generator=g).to(device)
    tt = t[..., None, None, None]
    xt = (1 - tt) * x0 + tt * eps
    v = dit(xt, t, action, rays, has_pose, guide, present).float()
    per_frame = (v - (eps - x0)).pow(2).mean(dim=(2, 3, 4))  # (B, L)
    noisy = (t > 0).float()
    loss = (per_frame * noisy).sum() / noisy.sum().clamp(min=1)
    return {"loss": loss}


def vertical_fov_deg(data: Episodes) -> float:
    """The episodes' vertical field of view, from their first frame's lens: what memory retrieval scores with."""
    fy, cy = float(data.lens[0, 0, 1]), float(data.lens[0, 0, 3])
    return math.degrees(2 * math.atan(cy / fy))


def train_teacher(ctx: Context, dit: DiT, latents: torch.Tensor, data: Episodes, progress=None) -> DiT:
    trainer = Trainer(ctx, "teacher", ctx.cfg.teacher, dit.to(ctx.device))
    fov_deg = vertical_fov_deg(data)

    def loss_fn(g: torch.Generator) -> dict[str, torch.Tensor]:
        return diffusion_forcing_loss(dit, latents, data, trainer.stage.batch, g, ctx.device, fov_deg)

    if not trainer.done:
        trainer.run(loss_fn, progress)
    return dit.eval()


class SelfRollouts:
    """Student episodes that run on their own generated frames through the daemon's KV cache.

    Each of the B episodes starts from a real frame of a training episode, then generates frame after frame
    with the student (few steps, no gradient) under that episode's real actions and poses; after `rollout`
    frames it restarts elsewhere. The teacher keeps a cache of the same frames (its own keys and values) so it
    can give the target for the next frame in the same context.
    """

    def __init__(
        self,
        student: DiT,
        teacher: DiT,
        latents: torch.Tensor,
        data: Episodes,
        batch: int,
        rollout: int,
        device: torch.device,
        dtype: torch.dtype,
        fov_deg: float = 60.0,
    ):
        self.student, self.teacher, self.latents, self.data = student, teacher, latents, data
        self.rollout, self.device, self.fov_deg = rollout, device, fov_deg
        cfg = student.cfg

        def cache() -> KVCache:
            return KVCache(
                cfg.depth,
                student.tokens,
                cfg.heads,
                student.head_dim,
                cfg.sinks,
                cfg.window,
                capacity=batch,
                device=device,
                dtype=dtype,
                memory=cfg.memory,
            )

        self.student_cache, self.teacher_cache = cache(), cache()
        self.ep = torch.zeros(batch, dtype=torch.long)
        self.t = torch.zeros(batch, dtype=torch.long)  # index of the next frame in the episode
        self.age = torch.full((batch,), rollout, dtype=torch.long)  # forces a restart on first use
        self.has_pose = torch.ones(batch, dtype=torch.bool, device=device)
        self.has_guide = torch.ones(batch, device=device)  # 1 / 0: the episode runs with / without guidance
        # memory models: each row's store as the daemon keeps it, of the student's and of the teacher's keys
        self.memories = [(Memory(), Memory()) for _ in range(batch)] if cfg.memory else None

    def conditions(self, rows: list[int]) -> tuple:
        """(action, rays, has_pose, guide or None) of the next frame of each row's episode."""
        ep, t = self.ep[rows], self.t[rows]
        guide = None
        if self.data.guide is not None:
            guide = self.data.guide[ep, t].to(self.device).float() * self.has_guide[rows, None, None, None]
        actions, rays = self.data.actions[ep, t].to(self.device), self.data.rays[ep, t].to(self.device)
        return actions, rays, self.has_pose[rows], guide

    @torch.no_grad()
    def advance(self, g: torch.Generator, schedule: list[float]) -> None:
        """Restart episodes that are done, then let every episode generate one more frame of its own."""
        E, T = self.latents.shape[:2]
        rows = list(range(len(self.ep)))
        restart = [b for b in rows if self.age[b] >= self.rollout or self.t[b] >= T - 1]
        for b in restart:
            self.ep[b] = int(torch.randint(0, E, (1,), generator=g))
            self.t[b] = 0
            self.age[b] = 0
            self.has_pose[b] = bool(torch.rand(1, generator=g) >= self.student.cfg.pose_dropout)
            self.has_guide[b] = float(torch.rand(1, generator=g) >= self.student.cfg.guidance_dropout)
            for cache in (self.student_cache, self.teacher_cache):
                cache.reset(b)
            if self.memories:
                self.memories[b] = (Memory(), Memory())
        if restart:  # the real first frame enters both caches
            first = self.latents[self.ep[restart], 0].to(self.device)
            conds = self.conditions(restart)
            commit(self.student, self.student_cache, restart, first, *conds)
            commit(self.teacher, self.teacher_cache, restart, first, *conds)
            self.remember(restart)
            self.t[restart] += 1
            self.recall(restart)  # the others recalled for this frame when they made the last one
        conds = self.conditions(rows)
        noise = torch.randn(len(rows), *self.latents.shape[2:], generator=g).to(self.device)
        past = self.past(self.student_cache, rows)
        x = sample(lambda x, t: self.velocity(self.student, past, x, t, conds), noise, schedule)
        commit(self.student, self.student_cache, rows, x, *conds)
        commit(self.teacher, self.teacher_cache, rows, x, *conds)
        self.remember(rows)
        self.t += 1
        self.age += 1
        self.recall(rows)  # for the frame the loss makes next

    def remember(self, rows: list[int]) -> None:
        """Memory models: offer each row's frame just committed (index t) to its stores, as the daemon does."""
        for b in rows if self.memories else ():
            pose = self.data.poses[self.ep[b], self.t[b]].double().numpy()
            for memory, cache in zip(self.memories[b], (self.student_cache, self.teacher_cache)):
                memory.add(int(self.t[b]), pose, *cache.latest(b))

    def recall(self, rows: list[int]) -> None:
        """Memory models: put into each row's memory slots the stored frames that overlap the view of its next
        frame (index t) most, the same frames for the student and the teacher."""
        cfg = self.student.cfg
        for b in rows if self.memories else ():
            pose = self.data.poses[self.ep[b], self.t[b]].double().numpy()
            mine, theirs = self.memories[b]
            best = mine.recall(pose, self.fov_deg, int(self.t[b]), cfg.memory, recent=cfg.window)
            self.student_cache.remember(b, [(mine.k[i], mine.v[i]) for i in best])
            self.teacher_cache.remember(b, [(theirs.k[i], theirs.v[i]) for i in best])

    @staticmethod
    def past(cache: KVCache, rows: list[int]) -> tuple[torch.Tensor, ...]:
        past_k, past_v = cache.view(rows)
        return (past_k, past_v, *cache.positions(rows))

    @staticmethod
    def velocity(dit: DiT, past: tuple, x: torch.Tensor, t: float, conds: tuple) -> torch.Tensor:
        past_k, past_v, past_pos, past_valid, pos = past
        times = x.new_full((x.shape[0],), t)
        action, rays, has_pose, guide = conds
        return dit.step(x, times, action, rays, has_pose, past_k, past_v, past_pos, past_valid, pos, guide)[0].float()


def train_student(
    ctx: Context, student: DiT, teacher: DiT, latents: torch.Tensor, data: Episodes, steps: int, progress=None
) -> DiT:
    scfg = ctx.cfg.student
    trainer = Trainer(ctx, "student", scfg, student.to(ctx.device))
    teacher.to(ctx.device).eval().requires_grad_(False)
    dtype = torch_dtype(ctx.cfg.precision)
    rollouts = SelfRollouts(
        student,
        teacher,
        latents,
        data,
        scfg.batch,
        scfg.rollout,
        ctx.device,
        torch.float32 if dtype == torch.float16 else dtype,
        vertical_fov_deg(data),
    )
    student_schedule, teacher_schedule = timesteps(steps), timesteps(scfg.teacher_steps)

    def loss_fn(g: torch.Generator) -> dict[str, torch.Tensor]:
        rows = list(range(scfg.batch))
        rollouts.advance(g, student_schedule)  # the context: the student's own frames
        conds = rollouts.conditions(rows)
        eps = torch.randn(len(rows), *latents.shape[2:], generator=g).to(ctx.device)
        with torch.no_grad():
            past_t = rollouts.past(rollouts.teacher_cache, rows)
            target = sample(lambda x, t: rollouts.velocity(teacher, past_t, x, t, conds), eps, teacher_schedule)
        past_s = rollouts.past(rollouts.student_cache, rows)
        # Regress the student's x0 estimate at each of its own timesteps onto the teacher's sample.
        loss = 0.0
        for t in student_schedule[:-1]:
            xt = (1 - t) * target + t * eps
            v = rollouts.velocity(student, past_s, xt, t, conds)
            loss = loss + (xt - t * v - target).pow(2).mean()
        return {"loss": loss / (len(student_schedule) - 1)}

    if not trainer.done:
        trainer.run(loss_fn, progress)
    return student.eval()


# ------------------------------------------------------------------------------------------------ driver


def extend_from(path: str, mcfg: ModelConfig, ae: Autoencoder, dit: DiT) -> bool:
    """Start a larger architecture (a guided model, a model with memory) from a trained model: every weight whose
    name and shape match is copied; the new parts keep their initialisation (their output layers start at zero,
    so the extended model begins as the trained one). An autoencoder convolution that gained input channels (a
    decoder reading more guidance features) gets the trained weights in its first channels and zeros in the new
    ones. Refuses a model that is not a part of the new architecture. Returns whether the autoencoder gained
    parts (else it is the trained one, and not retrained)."""
    old = load_checkpoint(path, "cpu")
    grew = False
    for new, trained, what in ((ae, old.autoencoder, "autoencoder"), (dit, old.dit, "transformer")):
        mine, theirs = new.state_dict(), dict(trained.state_dict())
        for k, v in theirs.items():
            m = mine.get(k)
            if new is ae and m is not None and m.ndim == v.ndim == 4 and m.shape[0] == v.shape[0] \
                    and m.shape[1] > v.shape[1] and m.shape[2:] == v.shape[2:]:  # a convolution's new inputs
                theirs[k] = torch.cat([v, v.new_zeros(v.shape[0], m.shape[1] - v.shape[1], *v.shape[2:])], 1)
                grew = True
        foreign = [k for k, v in theirs.items() if k not in mine or mine[k].shape != v.shape]
        if foreign:
            raise ValueError(f"extend: {path}'s {what} does not fit the new architecture: {foreign[:5]}")
        new.load_state_dict(theirs, strict=False)
        grew |= new is ae and len(mine) > len(theirs)
    mcfg.autoencoder.latent_scale = old.config.autoencoder.latent_scale
    ae.cfg.latent_scale = old.config.autoencoder.latent_scale
    return grew


def run(cfg: TrainConfig, until: str = STAGES[-1], progress=None) -> Path:
    """Run every stage up to and including `until`, resuming whatever an earlier run left unfinished.
    Returns the servable model directory: <out>/model (the student, or the last stage trained)."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    stages = STAGES[: STAGES.index(until) + 1]
    ctx = make_context(cfg)
    torch.manual_seed(cfg.seed)
    if ctx.main:
        (ctx.out / "train.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
    if cfg.init:  # fine-tuning: the trained autoencoder is kept, the transformer starts from the trained one
        init = load_checkpoint(cfg.init, "cpu")
        mcfg, ae, dit = init.config, init.autoencoder, init.dit
    else:
        mcfg = read_config(cfg.model)
        ae, dit = build_models(mcfg)
    train_ae = not cfg.init
    if cfg.extend and not cfg.init:
        train_ae = extend_from(cfg.extend, mcfg, ae, dit)
    size = (mcfg.frame.width, mcfg.frame.height)
    n_train, n_total = split(cfg.data, cfg.holdout)
    pool = dit.pool_guidance if mcfg.dit.guidance else None
    train = Episodes.cat([load_episodes(cfg.data, 0, n_train, mcfg.dit.buttons, pool_guidance=pool)] + [
        load_episodes(m, 0, len(Dataset(Path(m))), mcfg.dit.buttons, pool_guidance=pool) for m in cfg.mix
    ]).with_rays(dit, size)
    held = load_episodes(cfg.data, n_train, n_total, mcfg.dit.buttons, pool_guidance=pool).with_rays(dit, size)
    if tuple(train.frames.shape[-2:]) != (mcfg.frame.height, mcfg.frame.width):
        raise ValueError(
            f"{cfg.data}: frames are {tuple(train.frames.shape[-2:])} (H, W), the model wants "
            f"({mcfg.frame.height}, {mcfg.frame.width})"
        )
    if train_ae and cfg.autoencoder.steps:
        ae = train_autoencoder(ctx, mcfg, ae, train, held, progress)
    ae.to(ctx.device, memory_format=torch.channels_last).eval()
    if len(stages) == 1:
        return save_model(ctx, "model", mcfg, ae, dit, held, mcfg.sampler.steps)
    student = dit  # kept as extended when the transformer stages have no steps (a new decoder only)
    if cfg.teacher.steps or cfg.student.steps:
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
    if "decoder" in stages and cfg.decoder.steps and ae.cfg.guidance:
        ae = train_decoder(ctx, mcfg, ae, train, held, progress)
    return save_model(ctx, "model", mcfg, ae, student, held, mcfg.sampler.steps)
