"""Causal diffusion transformer over latent patches: the denoiser of the neural world model.

Each frame's latent (C, h, w) is cut into p x p patches, one token each (N = h*w/p^2 tokens per frame). Tokens
attend to every token of their own frame (bidirectional) and to the tokens of earlier frames that the KV cache
keeps: the first `sinks` frames of the episode and the `window` frames just before (causal across frames).
This is the block-causal attention of CausVid / Self-Forcing and LingBot-World-Fast, with one frame per block
and the attention sinks of StreamingLLM.

Conditioning, per frame, by adaLN (DiT, Peebles & Xie 2023): the diffusion time t and the controller action
(move, look, buttons; see runtime.world.Action) give a scale/shift/gate for every block. The camera pose, when
known, enters per token as a Plücker ray embedding (ray moment o x d and direction d through each token's cell,
relative to the episode's reference camera), turned into a per-token scale/shift of each block's attention
input, as LingBot-World injects its camera rays; a learned "no pose" embedding stands in when there is none.

Positions: a learned embedding per token of the frame (spatial), and a rotary embedding (RoPE) across frames
(temporal) that is applied when attention happens, never stored: the cache keeps keys un-rotated and each
attention call numbers the frames it sees by cache slot (sinks 0..S-1, window frames next in time order,
the frame being made last). Relative offsets are then the true frame distance inside the window and capped
for the sinks, so frame 10 000 looks exactly like frame S + W to the model: an episode can roll forever.

Two ways to run the same weights:
- `forward`: a whole clip of T frames at once with the sink/window mask (training, and the full-recompute
  reference the cache must reproduce);
- `step`: one frame per episode against explicit cache tensors, returning the frame's own keys/values, a pure
  function of its inputs so it can be exported (ONNX) with the cache as inputs and outputs. It is
  `denoise(x, t, frame_context(...))`: a frame's denoising passes and its cache pass share one context (its
  conditions, the cached keys rotated into place), computed once per frame.

Guidance (config `guidance` > 0): the engine's guidance features of the frame (runtime/guidance.py), average-
pooled to `guidance_res` cells per latent pixel side, are cut into the same token grid and embedded, and the
embedding is added to the frame's tokens (its last layer starts at zero, so a guided model starts as the
unguided one it extends). All-zero features mean "no guidance"; training drops it for whole clips with
probability `guidance_dropout`, so the same weights also dream from actions alone.

The network predicts the flow-matching velocity v = eps - x0 (runtime/neural/sampler.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

ROPE_BASE = 10000.0
TIME_FREQUENCIES = 256  # width of the sinusoidal diffusion-time features


@dataclass
class DiTConfig:
    """Architecture of the transformer (the `dit:` section of a checkpoint's config.yaml)."""

    patch: int = 4  # latent pixels per token side
    dim: int = 256
    depth: int = 8
    heads: int = 4
    mlp_ratio: float = 4.0
    buttons: int = 4  # low bits of Action.buttons the model reads
    look_scale_deg: float = 10.0  # look deltas are divided by this, so typical turns are O(1)
    sinks: int = 2  # first frames of an episode that stay visible forever
    window: int = 14  # most recent frames visible besides the sinks
    pose_dropout: float = 0.1  # training: probability that a clip is shown without its camera poses
    guidance: int = 0  # channels of the guidance features (runtime/guidance.py FEATURES); 0: no guidance
    guidance_res: int = 2  # guidance cells per latent pixel side (pooled from the frame's full size)
    guidance_dropout: float = 0.3  # training: probability that a clip is shown without its guidance
    # Memory slots: older frames retrieved by camera overlap (runtime/neural/memory.py), seen like extra sinks
    # (placed after them); 0: no memory.
    memory: int = 0

    def __post_init__(self) -> None:
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even width")
        if min(self.patch, self.depth, self.window) < 1 or self.sinks < 0 or self.buttons < 0:
            raise ValueError("patch, depth and window must be >= 1; sinks and buttons >= 0")
        if not 0 <= self.pose_dropout <= 1 or not self.look_scale_deg > 0 or not self.mlp_ratio > 0:
            raise ValueError("pose_dropout must be in [0, 1]; look_scale_deg and mlp_ratio positive")
        if self.guidance < 0 or self.guidance_res < 1 or not 0 <= self.guidance_dropout <= 1 or self.memory < 0:
            raise ValueError("guidance and memory must be >= 0, guidance_res >= 1, guidance_dropout in [0, 1]")

    @property
    def action_dim(self) -> int:
        """Width of the action vector: move (2), look in degrees (2), one 0/1 per button bit."""
        return 4 + self.buttons


def timestep_embedding(t: torch.Tensor, dim: int = TIME_FREQUENCIES) -> torch.Tensor:
    """(...) diffusion times in [0, 1] -> (..., dim) sinusoidal features (as in DiT, on t * 1000)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[..., None] * 1000.0 * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


def rope_table(pos: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (..., dim/2) of the rotary angles for integer positions `pos` (...)."""
    half = dim // 2
    inv_freq = ROPE_BASE ** (-torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    angle = pos.float()[..., None] * inv_freq
    return angle.cos(), angle.sin()


def rope(x: torch.Tensor, table: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate x (..., D) by a rope_table broadcastable to (..., D/2); rotate-half layout, computed in fp32."""
    cos, sin = table
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half].float(), x[..., half:].float()
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


def plucker_rays(
    c2w: torch.Tensor, intrinsics: torch.Tensor, size: tuple[int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """Plücker embedding of the rays through the centres of a token grid (LingBot-World, CameraCtrl).

    c2w: (..., 4, 4) OpenCV camera-to-world relative to the reference camera; intrinsics: (..., 4) fx, fy, cx,
    cy in pixels of an image of size = (width, height); grid = (rows, cols) of tokens.
    Returns (..., rows * cols, 6): (o x d, d) per token, d the unit ray direction in the reference frame.
    """
    (width, height), (rows, cols) = size, grid
    dev = c2w.device
    v = (torch.arange(rows, device=dev, dtype=torch.float32) + 0.5) * (height / rows)  # pixel row of cell centres
    u = (torch.arange(cols, device=dev, dtype=torch.float32) + 0.5) * (width / cols)
    v, u = torch.meshgrid(v, u, indexing="ij")  # (rows, cols)
    fx, fy, cx, cy = (c[..., None, None] for c in intrinsics.float().unbind(-1))  # (..., 1, 1)
    d_cam = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u - cx)], dim=-1)  # (..., rows, cols, 3)
    rot, origin = c2w[..., :3, :3].float(), c2w[..., :3, 3].float()
    d = F.normalize(torch.einsum("...ij,...hwj->...hwi", rot, d_cam), dim=-1)  # (..., rows, cols, 3)
    o = origin[..., None, None, :].expand_as(d)
    return torch.cat([torch.cross(o, d, dim=-1), d], dim=-1).flatten(-3, -2)  # (..., N, 6)


def visible_frames(frames: int, sinks: int, window: int, device: torch.device | None = None) -> torch.Tensor:
    """(T, T) bool: may frame i (row) attend to frame j (column)? Itself, the sinks before it, and the last
    `window` frames before it: exactly what the KV cache holds when frame i is made."""
    i = torch.arange(frames, device=device)[:, None]
    j = torch.arange(frames, device=device)[None, :]
    return (j <= i) & ((j < sinks) | (j >= i - window))


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, T, C, h, w) -> (B, T, h/p * w/p, C*p*p), tokens in row-major order of the patch grid."""
    B, T, C, h, w = x.shape
    x = x.reshape(B, T, C, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
    return x.reshape(B, T, (h // p) * (w // p), C * p * p)


def unpatchify(x: torch.Tensor, p: int, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """(B, T, N, C*p*p) -> (B, T, C, h, w), the inverse of patchify for a latent of size = (h, w)."""
    B, T, _, _ = x.shape
    h, w = size
    x = x.reshape(B, T, h // p, w // p, channels, p, p).permute(0, 1, 4, 2, 5, 3, 6)
    return x.reshape(B, T, channels, h, w)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.SiLU(), nn.Linear(d_hidden, d_out))


class RMSNorm(nn.Module):
    """RMS normalisation of the last dimension with a learned gain, computed in fp32. Written out rather than
    nn.RMSNorm so that DiT.step exports to ONNX (the TorchScript exporter has no rms_norm)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight).to(x.dtype)


# attend(q, k, v) -> y: how one attention layer lets tokens see each other; q, k, v are (B, T, N, H, hd)
# with q and k not yet rotated, y is (B, T, N, H*hd). DiT.forward and DiT.denoise each define their own.
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class FrameContext(NamedTuple):
    """What every denoising pass of one frame shares (DiT.frame_context), computed once per frame."""

    action: torch.Tensor  # (B, 1, d) action embedding
    pose_mod: torch.Tensor  # (B, 1, N, L, 2, d) per-block pose shift/scale
    keys: torch.Tensor  # (L, B, H, F*N, hd) cached keys, rotated to their slot positions
    values: torch.Tensor  # (L, B, H, F*N, hd)
    valid: torch.Tensor  # (B, (F+1)*N) bool: which keys exist, this frame's own last
    now: tuple[torch.Tensor, torch.Tensor]  # rope_table of this frame's position, (B, 1, 1, 1, hd/2) each
    guide: torch.Tensor | None  # (B, 1, N, d) guidance embedding added to the tokens; None: unguided model


class Block(nn.Module):
    """Pre-norm transformer block, modulated per frame (adaLN) and per token (camera pose)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)  # adaLN supplies scale and shift
        self.qkv = nn.Linear(d, 3 * d)
        self.q_norm = RMSNorm(d // cfg.heads)  # QK-norm (as in Wan): keeps attention logits bounded in bf16
        self.k_norm = RMSNorm(d // cfg.heads)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.mlp_ratio * d)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        # This block's offset to the shared frame modulation (Wan's per-block `modulation` parameter): six rows
        # of shift, scale, gate for the attention and the MLP branch.
        self.modulation = nn.Parameter(torch.randn(6, d) / d**0.5)

    def forward(
        self, x: torch.Tensor, frame_mod: torch.Tensor, pose_mod: torch.Tensor, attend: Attend
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, T, N, d); frame_mod: (B, T, 6, d) shared modulation; pose_mod: (B, T, N, 2, d) this block's
        per-token shift and scale from the pose embedding.
        Returns the new x and this layer's un-rotated keys and values, each (B, T, N, H, hd)."""
        B, T, N, d = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = (frame_mod + self.modulation)[:, :, :, None].unbind(2)
        pose_shift, pose_scale = pose_mod.unbind(3)  # (B, T, N, d)
        h = self.norm1(x) * (1 + scale1 + pose_scale) + shift1 + pose_shift  # scale1 etc.: (B, T, 1, d)
        q, k, v = self.qkv(h).view(B, T, N, 3, self.heads, d // self.heads).unbind(3)  # each (B, T, N, H, hd)
        q, k = self.q_norm(q), self.k_norm(k)
        x = x + gate1 * self.proj(attend(q, k, v))
        x = x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)
        return x, k, v


class DiT(nn.Module):
    """The causal diffusion transformer: noisy latents + conditions -> flow-matching velocity."""

    def __init__(self, cfg: DiTConfig, latent_channels: int, latent_size: tuple[int, int], zero_init: bool = True):
        """latent_size = (h, w) of one frame's latent. zero_init: adaLN-Zero, the training start (every block
        the identity, output 0); False keeps all layers random, so a fresh model's output depends on every
        input (tests, benchmarks, smoke checkpoints)."""
        super().__init__()
        h, w = latent_size
        if h % cfg.patch or w % cfg.patch:
            raise ValueError(f"latent size {h}x{w} is not a multiple of patch {cfg.patch}")
        self.cfg, self.channels, self.latent_size = cfg, latent_channels, (h, w)
        self.grid = (h // cfg.patch, w // cfg.patch)
        self.tokens = self.grid[0] * self.grid[1]
        d = cfg.dim
        self.patch_embed = nn.Linear(latent_channels * cfg.patch**2, d)
        self.pos_embed = nn.Parameter(torch.randn(self.tokens, d) * 0.02)  # learned spatial position
        self.time_embed = mlp(TIME_FREQUENCIES, d, d)
        self.action_embed = mlp(cfg.action_dim, d, d)
        # One projection of the frame condition serves all blocks (Wan2.1's time_projection); blocks add their
        # own offsets. Per-block projections would hold a third of the weights for one row per frame.
        self.modulation = nn.Linear(d, 6 * d)
        self.pose_embed = mlp(6, d, d)
        self.no_pose = nn.Parameter(torch.randn(d) * 0.02)  # stands in for the ray embedding without a pose
        # Per-token shift and scale of every block's attention input from the pose embedding: each block has
        # its own weights (a slice of this layer), computed in one matmul.
        self.pose_modulation = nn.Linear(d, cfg.depth * 2 * d)
        if cfg.guidance:
            cell = cfg.patch * cfg.guidance_res  # guidance cells per token side
            self.guide_embed = mlp(cfg.guidance * cell * cell, d, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Parameter(torch.randn(2, d) / d**0.5)  # shift, scale of the output, + condition
        self.head = nn.Linear(d, latent_channels * cfg.patch**2)
        if zero_init:
            guide_out = [self.guide_embed[2]] if cfg.guidance else []  # a guided model starts as the unguided
            for m in (self.modulation, self.pose_modulation, self.head, *guide_out):
                nn.init.zeros_(m.weight)
                nn.init.zeros_(m.bias)
            for b in self.blocks:
                nn.init.zeros_(b.modulation)

    @property
    def head_dim(self) -> int:
        return self.cfg.dim // self.cfg.heads

    @property
    def guidance_size(self) -> tuple[int, int]:
        """(h, w) of the pooled guidance features the model reads (guidance_res cells per latent pixel)."""
        return self.latent_size[0] * self.cfg.guidance_res, self.latent_size[1] * self.cfg.guidance_res

    def _guide_tokens(self, guide: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        """(B, T, G, gh, gw) guidance features -> (B, T, N, d); all zeros when `guide` is None. Features at a
        multiple of guidance_size (the decoder's full size) are average-pooled to it first."""
        if not self.cfg.guidance:
            return None
        if guide is None:
            guide = like.new_zeros(*like.shape[:2], self.cfg.guidance, *self.guidance_size)
        guide = self.pool_guidance(guide)
        return self.guide_embed(patchify(guide.to(like.dtype), self.cfg.patch * self.cfg.guidance_res))

    def pool_guidance(self, guide: torch.Tensor) -> torch.Tensor:
        """(..., G, H, W) guidance features at a multiple of guidance_size -> (..., guidance, gh, gw), averaged: what
        the transformer reads (training pools its dataset once with this too). It reads the first `guidance`
        channels: a decoder may read more (runtime/guidance.py's position features come after)."""
        guide = guide[..., : self.cfg.guidance, :, :]
        (gh, gw), (H, W) = self.guidance_size, guide.shape[-2:]
        if (gh, gw) == (H, W):
            return guide
        pooled = F.avg_pool2d(guide.flatten(0, -4).float(), (H // gh, W // gw))
        return pooled.unflatten(0, guide.shape[:-3])

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        action: torch.Tensor,
        rays: torch.Tensor,
        has_pose: torch.Tensor,
        guide: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A clip of T frames at once, each frame seeing what the KV cache would show it.

        x: (B, T, C, h, w) latents (noisy at time t, clean where t = 0); t: (B, T); action: (B, T, A) raw
        actions (move, look in degrees, button bits); rays: (B, T, N, 6) Plücker rays; has_pose: (B, T) bool;
        guide: (B, T, G, gh, gw) pooled guidance features (guided models; None: none). With memory slots the
        clip is laid out as the cache is: S sinks, M memory frames, then the window; present: (B, T) bool, False
        for frames no other frame may see (memory slots left empty); None: all present.
        Returns the velocity (B, T, C, h, w). In training mode, whole clips lose their poses with probability
        cfg.pose_dropout, and their guidance with cfg.guidance_dropout, so the model also learns to run on
        controller input alone.
        """
        if self.training and self.cfg.pose_dropout > 0:
            keep = torch.rand(has_pose.shape[0], 1, device=has_pose.device) >= self.cfg.pose_dropout  # (B, 1)
            has_pose = has_pose & keep
        if self.training and guide is not None and self.cfg.guidance_dropout > 0:
            keep = torch.rand(guide.shape[0], device=guide.device) >= self.cfg.guidance_dropout
            guide = guide * keep[:, None, None, None, None].to(guide.dtype)
        T, N, hd = x.shape[1], self.tokens, self.head_dim
        S, W = self.cfg.sinks + self.cfg.memory, self.cfg.window  # memory frames are seen as sinks are
        frame = torch.arange(T, device=x.device)
        visible = visible_frames(T, S, W, x.device).repeat_interleave(N, 0).repeat_interleave(N, 1)  # (TN, TN)
        if present is not None:  # (B, 1, TN, TN): absent frames are no one's keys but their own
            own = torch.eye(T, dtype=torch.bool, device=x.device).repeat_interleave(N, 0).repeat_interleave(N, 1)
            visible = (visible & (present.repeat_interleave(N, 1)[:, None, :] | own))[:, None]
        key_is_sink = (frame < S).repeat_interleave(N)  # (TN,)
        # Slot numbering (module docstring): against window keys a query sits at its own frame index, against
        # the sinks where the cache puts it, right after a full window; keys always sit at their frame index.
        at_frame = rope_table(frame[None, :, None, None], hd)  # (1, T, 1, 1, hd/2)
        q_for_sinks = rope_table(frame.clamp(max=S + W)[None, :, None, None], hd)

        def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            B, _, _, H, _ = q.shape

            def heads_first(z: torch.Tensor) -> torch.Tensor:
                return z.reshape(B, T * N, H, hd).transpose(1, 2)  # (B, H, TN, hd)

            k_t = heads_first(rope(k, at_frame)).transpose(-1, -2)  # (B, H, hd, TN)
            scores_window = heads_first(rope(q, at_frame)) @ k_t  # (B, H, TN, TN)
            scores_sinks = heads_first(rope(q, q_for_sinks)) @ k_t
            scores = torch.where(key_is_sink, scores_sinks, scores_window) / math.sqrt(hd)
            weights = scores.masked_fill(~visible, float("-inf")).softmax(dim=-1)
            y = weights.to(v.dtype) @ heads_first(v)  # (B, H, TN, hd)
            return y.transpose(1, 2).reshape(B, T, N, H * hd)

        action_emb, pose_mod = self._conditions(action, rays, has_pose)
        tokens, cond, frame_mod = self._embed(x, t, action_emb, self._guide_tokens(guide, x))
        for block, block_pose_mod in zip(self.blocks, pose_mod.unbind(3)):
            tokens, _, _ = block(tokens, frame_mod, block_pose_mod, attend)
        return self._output(tokens, cond)

    def step(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        action: torch.Tensor,
        rays: torch.Tensor,
        has_pose: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        past_pos: torch.Tensor,
        past_valid: torch.Tensor,
        pos: torch.Tensor,
        guide: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One frame per episode against a KV cache; a pure function of its tensors.

        x: (B, C, h, w) latent at time t (B,); action: (B, A); rays: (B, N, 6); has_pose: (B,) bool.
        past_k, past_v: (L, B, F, N, H, hd) cached un-rotated keys/values of F frame slots; past_pos: (B, F)
        slot positions; past_valid: (B, F) bool; pos: (B,) position of this frame (runtime/neural/kv_cache.py);
        guide: (B, G, gh, gw) guidance features, or at a multiple of that size (guided models; None: none).
        Returns the velocity (B, C, h, w) and this frame's keys and values, each (L, B, N, H, hd).
        The same as denoise(x, t, frame_context(...)), which lets a frame's passes share the context.
        """
        context = self.frame_context(action, rays, has_pose, past_k, past_v, past_pos, past_valid, pos, guide)
        return self.denoise(x, t, context)

    def frame_context(
        self,
        action: torch.Tensor,
        rays: torch.Tensor,
        has_pose: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        past_pos: torch.Tensor,
        past_valid: torch.Tensor,
        pos: torch.Tensor,
        guide: torch.Tensor | None = None,
    ) -> FrameContext:
        """The part of `step` that does not depend on the noisy latent: conditions and the cached keys, rotated
        to their slot positions and laid out for attention. Shapes as in `step`."""
        B, N, hd = action.shape[0], self.tokens, self.head_dim
        action_emb, pose_mod = self._conditions(action[:, None], rays[:, None], has_pose[:, None])
        keys = rope(past_k, rope_table(past_pos[:, :, None, None], hd))  # (L, B, F, N, H, hd)
        valid = torch.cat([past_valid, past_valid.new_ones(B, 1)], dim=1).repeat_interleave(N, 1)  # (B, (F+1)N)
        return FrameContext(
            action_emb,
            pose_mod,
            keys.flatten(2, 3).transpose(2, 3),  # (L, B, H, FN, hd)
            past_v.flatten(2, 3).transpose(2, 3),
            valid,
            rope_table(pos[:, None, None, None], hd),  # (B, 1, 1, 1, hd/2)
            self._guide_tokens(None if guide is None else guide[:, None], action_emb),
        )

    def denoise(
        self, x: torch.Tensor, t: torch.Tensor, context: FrameContext
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass over one frame per episode: x (B, C, h, w) at time t (B,) -> velocity (B, C, h, w) and this
        frame's un-rotated keys and values (L, B, N, H, hd)."""
        B, N, hd = x.shape[0], self.tokens, self.head_dim

        def attend_layer(layer: int) -> Attend:
            def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                H = q.shape[-2]
                q, k = rope(torch.stack([q, k]), context.now).flatten(2, 3).transpose(2, 3).unbind(0)  # (B, H, N, hd)
                y = F.scaled_dot_product_attention(
                    q,
                    torch.cat([context.keys[layer].to(k.dtype), k], dim=2),  # (B, H, (F+1)N, hd)
                    torch.cat([context.values[layer].to(v.dtype), v.flatten(1, 2).transpose(1, 2)], dim=2),
                    attn_mask=context.valid[:, None, None, :],
                )  # (B, H, N, hd)
                return y.transpose(1, 2).reshape(B, 1, N, H * hd)

            return attend

        tokens, cond, frame_mod = self._embed(x[:, None], t[:, None], context.action, context.guide)
        new_k, new_v = [], []
        for layer, block in enumerate(self.blocks):
            tokens, k, v = block(tokens, frame_mod, context.pose_mod[:, :, :, layer], attend_layer(layer))
            new_k.append(k[:, 0])
            new_v.append(v[:, 0])
        return self._output(tokens, cond)[:, 0], torch.stack(new_k), torch.stack(new_v)

    def _conditions(
        self, action: torch.Tensor, rays: torch.Tensor, has_pose: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """action (B, T, A), rays (B, T, N, 6), has_pose (B, T) -> action embedding (B, T, d) and per-block pose
        shift/scale (B, T, N, L, 2, d): the conditions that stay the same through a frame's denoising."""
        look = action[..., 2:4] / self.cfg.look_scale_deg
        action_emb = self.action_embed(torch.cat([action[..., :2], look, action[..., 4:]], dim=-1))
        pose = torch.where(has_pose[..., None, None], self.pose_embed(rays.float()), self.no_pose)  # (B, T, N, d)
        pose_mod = self.pose_modulation(F.silu(pose)).unflatten(-1, (self.cfg.depth, 2, -1))
        return action_emb, pose_mod

    def _embed(
        self, x: torch.Tensor, t: torch.Tensor, action_emb: torch.Tensor, guide: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, C, h, w), t (B, T), action embedding (B, T, d), guidance embedding (B, T, N, d) or None ->
        tokens (B, T, N, d), frame condition (B, T, d), shared block modulation (B, T, 6, d)."""
        tokens = self.patch_embed(patchify(x, self.cfg.patch)) + self.pos_embed  # (B, T, N, d)
        if guide is not None:
            tokens = tokens + guide
        cond = self.time_embed(timestep_embedding(t)) + action_emb  # (B, T, d)
        return tokens, cond, self.modulation(F.silu(cond)).unflatten(-1, (6, -1))

    def _output(self, tokens: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(B, T, N, d) final tokens -> (B, T, C, h, w) velocity."""
        shift, scale = (self.modulation_out + cond[:, :, None])[:, :, :, None].unbind(2)  # (B, T, 1, d) each
        out = self.head(self.norm_out(tokens) * (1 + scale) + shift)  # (B, T, N, C*p*p)
        return unpatchify(out, self.cfg.patch, self.channels, self.latent_size)
