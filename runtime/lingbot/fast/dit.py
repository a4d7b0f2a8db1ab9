"""LingBot-World-Fast's denoiser: a Wan2.1/2.2-style diffusion transformer run block-causally, chunk by chunk.

Written from the published design (Wan: arXiv 2503.20314; LingBot-World: arXiv 2601.20540; CausVid /
Self-Forcing for the chunked KV cache). Parameter names and shapes are those of the released WanModelFast
(original Wan naming), so the checkpoint loads as is:

    patch_embedding                Conv3d(in_dim, dim, 1x2x2): noisy latent (16) + first-frame mask (4) + latent (16)
    patch_embedding_wancamctrl     Linear(control_dim*64*4, dim): per-pixel control channels, 8x8 pixels per latent
                                   cell, 2x2 cells per token
    c2ws_hidden_states_layer1/2    Linear(dim, dim): the control embedding's residual MLP
    text_embedding.0/.2            Linear(text_dim, dim), GELU(tanh), Linear(dim, dim): umT5 states -> dim
    time_embedding.0/.2            Linear(freq_dim, dim), SiLU, Linear(dim, dim)
    time_projection.1              Linear(dim, 6*dim): the six adaLN modulations of each block
    blocks.N.{norm1, self_attn.{q,k,v,o,norm_q,norm_k}, norm3, cross_attn.{...}, norm2, ffn.0, ffn.2, modulation,
              cam_injector_layer1/2, cam_scale_layer, cam_shift_layer}
    head.{norm, head, modulation}

A block: adaLN-modulated self-attention (q/k RMS-normed, 3D RoPE over frame/row/column), gated residual; the
control signal as a per-token scale/shift of the residual stream ((1 + scale) * x + shift); cross-attention
to the text; adaLN-modulated GELU MLP, gated residual. Modulations and the residual stream stay float32, as in
Wan (its blocks run under autocast(float32)); matmuls run in the weights' dtype (bf16 on GPU).

Block-causal generation: a chunk of 3 latent frames attends to itself (bidirectionally) and to the cached keys
and values of earlier chunks. The cache (ChunkCache) keeps the first `sinks` chunks forever and a ring of the
last `window` chunks, so memory is fixed however long a session runs (the official scripts' cache grows with
the video). Keys are cached before RoPE and rotated at attention time, with frame positions computed from the
formula (no 1024-entry table), in one of two numberings:
- "absolute": frame f of the episode is at position f, as the official code numbers them (its table would end
  at frame 1024, ~4.3 minutes of video; here positions just keep counting);
- "rolling": the visible chunks are renumbered consecutively (sinks first, then the window, the new chunk
  last), so positions stay below (sinks + window + 1) * 3 forever and the model never sees a distance it was
  not trained on.

The official scripts spell the window in latent frames (`--local_attn_size`, `--sink_size`; WanModelFast rolls
its cache of local_attn_size frames, the new chunk included, keeping the first sink_size frames): sink_size 3,
local_attn_size 15 is exactly sinks 1, window 3 here (15 frames = 1 sink chunk + 3 recent chunks + the new
one). `cache_chunks` translates; local_attn_size -1 (their default: attend to all history) is window None.

`forward_chunk` is the streaming path; `forward_full` runs a whole sequence at once with the same sink/window
visibility as a mask, the reference the cache must reproduce (tests/test_lingbot_cache.py).

Sequence parallelism (`set_parallel`, runtime/lingbot/fast/parallel.py): over P ranks each rank runs the
blocks on 1/P of the chunk's tokens, with per-token (not per-frame) modulation, since a rank's tokens may start
mid-frame; self-attention sees every token but only H/P heads (Ulysses), so a rank's ChunkCache holds H/P
heads. With no parallel set (one process) `_run` is the plain path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from runtime.lingbot.fast.config import CHUNK_FRAMES, FastDiTConfig
from runtime.lingbot.fast.quant import QuantLinear

if TYPE_CHECKING:
    from runtime.lingbot.fast.parallel import SequenceParallel

ROPE_THETA = 10000.0
POSITIONS = ("absolute", "rolling")


def sinusoidal(dim: int, t: torch.Tensor) -> torch.Tensor:
    """(n,) timesteps -> (n, dim) float32 [cos | sin] features, computed in float64 as Wan does."""
    half = dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = torch.outer(t.double(), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


def rope_angles(head_dim: int, frames: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Rotation angles (len(frames)*rows*cols, head_dim/2) of Wan's 3D RoPE for tokens ordered (frame, row, col).

    The head's complex pairs are split c - 2*(c//3) / c//3 / c//3 (c = head_dim/2) between frame, row and column;
    pair k of a part of width n turns by position * theta^(-2k/(2n)). Computed from the formula in float64 for any
    frame position, where Wan precomputes a 1024-position table."""
    c = head_dim // 2
    parts = (c - 2 * (c // 3), c // 3, c // 3)
    dev = frames.device

    def freqs(n: int) -> torch.Tensor:
        return 1.0 / torch.pow(ROPE_THETA, torch.arange(0, 2 * n, 2, dtype=torch.float64, device=dev) / (2 * n))

    f = torch.outer(frames.double(), freqs(parts[0]))  # (F, c_f)
    h = torch.outer(torch.arange(rows, dtype=torch.float64, device=dev), freqs(parts[1]))  # (rows, c_h)
    w = torch.outer(torch.arange(cols, dtype=torch.float64, device=dev), freqs(parts[2]))  # (cols, c_w)
    n = len(frames)
    return torch.cat([
        f[:, None, None].expand(n, rows, cols, -1),
        h[None, :, None].expand(n, rows, cols, -1),
        w[None, None, :].expand(n, rows, cols, -1),
    ], dim=-1).reshape(n * rows * cols, c)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs of x (B, L, H, hd) by angles (L, hd/2)."""
    cos, sin = torch.cos(angles).float()[None, :, None], torch.sin(angles).float()[None, :, None]  # (1, L, 1, hd/2)
    xf = x.float().unflatten(-1, (-1, 2))  # (B, L, H, hd/2, 2)
    a, b = xf[..., 0], xf[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2).type_as(x)


def _linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layer(x) in the layer's dtype (bf16 weights get bf16 activations; the result stays in that dtype); a
    QuantLinear casts to its compute dtype itself."""
    if isinstance(layer, QuantLinear):
        return layer(x)
    return layer(x.to(layer.weight.dtype))


class RMSNorm(nn.Module):
    """Wan's RMSNorm: normalised in float32, cast back, then the gain, in that order to match the release's
    numerics (runtime/neural/dit.py's own applies the gain in float32: it is trained that way)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 (Wan's WanLayerNorm); affine only where the checkpoint has weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, w, b, self.eps)


class Attention(nn.Module):
    """q, k, v, o projections with RMS-normed queries and keys (Wan's WanSelfAttention / WanCrossAttention)."""

    def __init__(self, dim: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, dim) -> q, k, v (B, L, H, hd); k before RoPE (that is what the cache keeps)."""
        B, L, _ = x.shape
        q = self.norm_q(_linear(self.q, x)).view(B, L, self.heads, -1)
        k = self.norm_k(_linear(self.k, x)).view(B, L, self.heads, -1)
        return q, k, _linear(self.v, x).view(B, L, self.heads, -1)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention keys/values (B, Lt, H, hd) of the embedded text: computed once per prompt."""
        B, L, _ = context.shape
        k = self.norm_k(_linear(self.k, context)).view(B, L, self.heads, -1)
        return k, _linear(self.v, context).view(B, L, self.heads, -1)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, Lq, H, hd) x (B, Lk, H, hd) -> (B, Lq, H*hd) softmax attention (scale 1/sqrt(hd))."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.to(q.dtype).transpose(1, 2),
                                         v.to(q.dtype).transpose(1, 2), attn_mask=mask)
    return out.transpose(1, 2).flatten(2)


# attend(layer index, q (B, L, H, hd), k, v) -> (B, L, dim): how self-attention sees the past
Attend = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Block(nn.Module):
    def __init__(self, cfg: FastDiTConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = Attention(d, cfg.num_heads, cfg.eps)
        self.norm3 = LayerNorm(d, eps=cfg.eps, elementwise_affine=True) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = Attention(d, cfg.num_heads, cfg.eps)
        self.norm2 = LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d**0.5)
        self.cam_injector_layer1 = nn.Linear(d, d)
        self.cam_injector_layer2 = nn.Linear(d, d)
        self.cam_scale_layer = nn.Linear(d, d)
        self.cam_shift_layer = nn.Linear(d, d)

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        control: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        frames: int,
    ) -> torch.Tensor:
        """x (B, L, D) float32 residual stream, L = frames * N; e0 (B, frames, 6, D) float32 per-frame time
        modulation; control (B, L, D) embedded control signal; cross_kv: text keys/values."""
        q, k, v = block_in(self, x, e0, frames)
        return block_out(self, x, attend(q, k, v), e0, control, cross_kv[0], cross_kv[1], frames)


# A block in two pieces around its self-attention, the only part whose shapes change from chunk to chunk (the
# cache's visible length): everything else has the chunk's fixed shapes, so these two are what `compile` compiles.

def _modulate(h: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, frames: int) -> torch.Tensor:
    B, L, D = h.shape
    return (h.view(B, frames, -1, D) * (1 + scale[:, :, None]) + shift[:, :, None]).view(B, L, D)


def _gate(h: torch.Tensor, g: torch.Tensor, frames: int) -> torch.Tensor:
    B, L, D = h.shape
    return (h.float().view(B, frames, -1, D) * g[:, :, None]).view(B, L, D)


def block_in(block: Block, x: torch.Tensor, e0: torch.Tensor, frames: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A block up to its self-attention: adaLN-modulated norm, q/k/v (B, L, H, hd), k before RoPE."""
    e = (block.modulation.float()[:, None] + e0).unbind(2)  # 6 x (B, frames, D)
    return block.self_attn.qkv(_modulate(block.norm1(x), e[0], e[1], frames))


def block_out(block: Block, x: torch.Tensor, attended: torch.Tensor, e0: torch.Tensor, control: torch.Tensor,
              text_k: torch.Tensor, text_v: torch.Tensor, frames: int) -> torch.Tensor:
    """The rest of a block from the self-attention's output (B, L, dim): gated residual, control injection,
    cross-attention to the text, MLP."""
    e = (block.modulation.float()[:, None] + e0).unbind(2)
    x = x + _gate(_linear(block.self_attn.o, attended), e[2], frames)
    hidden = _linear(block.cam_injector_layer2, F.silu(_linear(block.cam_injector_layer1, control))) + control
    x = (1.0 + _linear(block.cam_scale_layer, hidden).float()) * x + _linear(block.cam_shift_layer, hidden).float()
    xq = block.norm3(x)  # cross-attention: queries from the video, keys/values precomputed from the text
    Bq, Lq, _ = xq.shape
    q = block.cross_attn.norm_q(_linear(block.cross_attn.q, xq)).view(Bq, Lq, block.cross_attn.heads, -1)
    x = x + _linear(block.cross_attn.o, sdpa(q, text_k, text_v)).float()
    h = block.ffn[2](block.ffn[1](_linear(block.ffn[0], _modulate(block.norm2(x), e[3], e[4], frames))))
    return x + _gate(h, e[5], frames)


COMPILE = ("off", "default", "max-autotune-no-cudagraphs", "reduce-overhead")


class Head(nn.Module):
    def __init__(self, cfg: FastDiTConfig):
        super().__init__()
        self.norm = LayerNorm(cfg.dim, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, math.prod(cfg.patch_size) * cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor, frames: int) -> torch.Tensor:
        """x (B, L, D), e (B, frames, D) time embedding -> (B, L, prod(patch) * out_dim) float32."""
        B, L, D = x.shape
        shift, scale = (self.modulation.float()[:, None] + e[:, :, None]).unbind(2)  # (B, frames, D) each
        h = self.norm(x).view(B, frames, -1, D) * (1 + scale[:, :, None]) + shift[:, :, None]
        return _linear(self.head, h.view(B, L, D)).float()


@dataclass
class ChunkInputs:
    """What the DiT needs for one chunk besides the noisy latent; conditions are fixed across its denoising
    steps and its cache pass, so they are embedded once (`WanFastDiT.embed_conditions`)."""

    y: torch.Tensor  # (B, 20, f, h, w) first-frame mask (4) + first-frame-conditioned latent (16)
    control: torch.Tensor  # (B, L, D) embedded per-token control signal
    cross_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (B, Lt, H, hd) text keys/values


class WanFastDiT(nn.Module):
    """The Fast DiT. Tensor layout inside: tokens ordered (frame, row, column) of the 1x2x2-patched latent."""

    def __init__(self, cfg: FastDiTConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch_size
        self.patch_embedding = nn.Conv3d(cfg.in_dim, d, kernel_size=p, stride=p)
        self.patch_embedding_wancamctrl = nn.Linear(cfg.control_dim * 64 * math.prod(p), d)
        self.c2ws_hidden_states_layer1 = nn.Linear(d, d)
        self.c2ws_hidden_states_layer2 = nn.Linear(d, d)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.head = Head(cfg)
        self._pieces: tuple[Callable, Callable] = (block_in, block_out)
        self.compiled = "off"
        self.parallel: SequenceParallel | None = None

    def set_parallel(self, parallel: SequenceParallel | None) -> None:
        """Split every chunk's tokens over `parallel`'s ranks (Ulysses; runtime/lingbot/fast/parallel.py).
        Every rank must then make the same calls in the same order. None, or one rank: the plain path."""
        if parallel is not None and parallel.size > 1:
            from runtime.lingbot.fast.parallel import check_heads

            check_heads(self.cfg.num_heads, parallel.size)
            self.parallel = parallel
        else:
            self.parallel = None

    def compile_blocks(self, mode: str = "default") -> None:
        """torch.compile the fixed-shape parts of every block (block_in, block_out: all but the self-attention
        over the cache, whose length changes until the cache is full). One compiled graph serves all blocks (the
        block is an argument); "reduce-overhead" adds CUDA graphs (CUDA only). "off" restores eager."""
        if mode not in COMPILE:
            raise ValueError(f"compile must be one of {', '.join(COMPILE)}, not {mode!r}")
        if mode == "off":
            self._pieces, self.compiled = (block_in, block_out), mode
            return
        if mode == "reduce-overhead" and not any(p.is_cuda for p in self.parameters()):
            raise ValueError("compile reduce-overhead (CUDA graphs) needs the model on a CUDA device")
        self._pieces = (torch.compile(block_in, mode=mode, dynamic=False),
                        torch.compile(block_out, mode=mode, dynamic=False))
        self.compiled = mode

    # ----------------------------------------------------------------------------------------- conditions

    def embed_text(self, context: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """umT5 states (B, Lt<=text_len, text_dim) -> per-layer cross-attention keys/values. Wan pads the
        states with zeros to text_len and attends to all of them (no mask), so this does too."""
        B, Lt, C = context.shape
        pad = context.new_zeros(B, self.cfg.text_len - Lt, C)
        ctx = torch.cat([context, pad], dim=1)
        ctx = self.text_embedding[2](self.text_embedding[1](_linear(self.text_embedding[0], ctx)))
        return [block.cross_attn.context_kv(ctx) for block in self.blocks]

    def embed_control(self, control: torch.Tensor) -> torch.Tensor:
        """Per-token control features (B, L, control_dim*64*4) -> (B, L, D) (Wan's c2ws_plucker_emb)."""
        c = _linear(self.patch_embedding_wancamctrl, control)
        return c + _linear(self.c2ws_hidden_states_layer2, F.silu(_linear(self.c2ws_hidden_states_layer1, c)))

    def time_modulation(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F) timesteps -> e (B, F, D), e0 (B, F, 6, D), float32."""
        B, Fr = t.shape
        e = self.time_embedding[2](F.silu(_linear(self.time_embedding[0], sinusoidal(self.cfg.freq_dim,
                                                                                     t.flatten())))).float()
        e0 = _linear(self.time_projection[1], F.silu(e)).float()
        return e.view(B, Fr, -1), e0.view(B, Fr, 6, -1)

    # ------------------------------------------------------------------------------------------- core

    def _run(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        control: torch.Tensor,
        cross_kv: list[tuple[torch.Tensor, torch.Tensor]],
        attend: Attend,
    ) -> torch.Tensor:
        """x (B, 16, F, h, w) noisy latents, y (B, 20, F, h, w), t (B, F) -> flow prediction (B, 16, F, h, w)."""
        B, _, Fr, h, w = x.shape
        pt, ph, pw = self.cfg.patch_size
        tokens = self.patch_embedding(torch.cat([x, y], dim=1).to(self.patch_embedding.weight.dtype))
        tokens = tokens.flatten(2).transpose(1, 2).float()  # (B, L, D), L = F * h/2 * w/2
        e, e0 = self.time_modulation(t)
        pieces_in, pieces_out = self._pieces
        if self.parallel is not None:
            out = self._run_sharded(tokens, e, e0, control, cross_kv, attend, Fr // pt)
        else:
            for i, block in enumerate(self.blocks):
                q, k, v = pieces_in(block, tokens, e0, Fr // pt)
                tokens = pieces_out(block, tokens, attend(i, q, k, v), e0, control, *cross_kv[i], Fr // pt)
            out = self.head(tokens, e, Fr // pt)  # (B, L, pt*ph*pw*16)
        gf, gh, gw = Fr // pt, h // ph, w // pw
        out = out.view(B, gf, gh, gw, pt, ph, pw, self.cfg.out_dim)
        return torch.einsum("bfhwpqrc->bcfphqwr", out).reshape(B, self.cfg.out_dim, Fr, h, w)

    def _run_sharded(
        self,
        tokens: torch.Tensor,
        e: torch.Tensor,
        e0: torch.Tensor,
        control: torch.Tensor,
        cross_kv: list[tuple[torch.Tensor, torch.Tensor]],
        attend: Attend,
        frames: int,
    ) -> torch.Tensor:
        """The blocks and the head on this rank's tokens; tokens (B, L, D) whole -> head output (B, L, C) whole.

        The modulations go per token: each token takes its frame's e / e0, and the blocks are called with
        `frames` = the rank's token count, so every token is a "frame" of one token (the same arithmetic as
        the per-frame broadcast). Padding tokens take the last frame's and are dropped at the gather."""
        sp, length = self.parallel, tokens.shape[1]
        lo, hi = sp.span(length)
        frame_of = (torch.arange(lo, hi, device=tokens.device) // (length // frames)).clamp(max=frames - 1)
        e, e0, n = e[:, frame_of], e0[:, frame_of], hi - lo
        tokens, control = sp.shard(tokens), sp.shard(control)
        pieces_in, pieces_out = self._pieces
        for i, block in enumerate(self.blocks):
            q, k, v = pieces_in(block, tokens, e0, n)
            attended = sp.attention(lambda q, k, v, i=i: attend(i, q, k, v), q, k, v, length)
            tokens = pieces_out(block, tokens, attended, e0, control, *cross_kv[i], n)
        return sp.gather(self.head(tokens, e, n), length)

    def forward_chunk(
        self,
        x: torch.Tensor,
        t: float,
        inputs: ChunkInputs,
        cache: ChunkCache,
        record: bool = False,
    ) -> torch.Tensor:
        """One chunk x (B, 16, 3, h, w) at timestep t against the cache -> flow prediction (B, 16, 3, h, w).
        record: keep the chunk's keys/values in cache.pending (the clean pass at t = 0 then commits them)."""
        B, _, Fr, h, w = x.shape
        rows, cols = h // self.cfg.patch_size[1], w // self.cfg.patch_size[2]
        past_frames, own_frames = cache.frame_positions(Fr)
        own = rope_angles(self.cfg.head_dim, own_frames.to(x.device), rows, cols)
        past = rope_angles(self.cfg.head_dim, past_frames.to(x.device), rows, cols) if len(past_frames) else None
        pending: list[tuple[torch.Tensor, torch.Tensor]] = []

        graphs = self.compiled == "reduce-overhead"
        if graphs:  # CUDA graph outputs are overwritten by the next replay: a new step for every forward
            torch.compiler.cudagraph_mark_step_begin()

        copy = graphs or self.parallel is not None  # sharded: k, v are views of one buffer holding q too

        def attend(i: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            if record:
                pending.append((k.clone(), v.clone()) if copy else (k, v))
            q, k_rot = apply_rope(q, own), apply_rope(k, own)
            if past is not None:
                k_past, v_past = cache.visible(i)  # (B, Lp, H, hd) each
                k_rot = torch.cat([apply_rope(k_past, past), k_rot], dim=1)
                v = torch.cat([v_past, v.to(v_past.dtype)], dim=1)
            return sdpa(q, k_rot, v)

        out = self._run(x, inputs.y, x.new_full((B, Fr), t), inputs.control, inputs.cross_kv, attend)
        if record:
            cache.pending = pending
        return out

    def forward_full(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        t: torch.Tensor,
        control: torch.Tensor,
        cross_kv: list[tuple[torch.Tensor, torch.Tensor]],
        sinks: int,
        window: int | None,
        chunk: int = CHUNK_FRAMES,
    ) -> torch.Tensor:
        """A whole sequence x (B, 16, F, h, w) with per-frame timesteps t (B, F) and the chunk-level sink/window
        visibility as an attention mask, absolute positions. The reference for forward_chunk."""
        B, _, Fr, h, w = x.shape
        rows, cols = h // self.cfg.patch_size[1], w // self.cfg.patch_size[2]
        angles = rope_angles(self.cfg.head_dim, torch.arange(Fr, device=x.device), rows, cols)
        n = rows * cols
        chunk_of = torch.arange(Fr * n, device=x.device) // (chunk * n)
        i, j = chunk_of[:, None], chunk_of[None, :]
        recent = (j >= i - window) if window is not None else torch.ones_like(j == i)  # window None: all
        mask = (j == i) | ((j < i) & ((j < sinks) | recent))  # (L, L)

        def attend(_: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return sdpa(apply_rope(q, angles), apply_rope(k, angles), v, mask)

        return self._run(x, y, t, control, cross_kv, attend)


class ChunkCache:
    """Keys/values (before RoPE) of finished chunks for one episode: `sinks` first chunks kept forever and a
    ring of the `window` most recent ones. Fixed size (L, sinks + window, chunk tokens, H, hd), allocated
    lazily on the first write; positions follow `positions` ("absolute" or "rolling", see the module doc).
    window None: every chunk is kept (the official default, local_attn_size -1): the cache then grows by one
    chunk per chunk made, without bound."""

    def __init__(self, sinks: int, window: int | None, positions: str = "absolute"):
        if sinks < 0 or (window is not None and window < 1) or positions not in POSITIONS:
            raise ValueError(f"cache needs sinks >= 0, window >= 1 (or None: unbounded) and positions in {POSITIONS}")
        self.sinks, self.window, self.positions = sinks, window, positions
        self.k: torch.Tensor | None = None  # (L, slots, N, H, hd)
        self.v: torch.Tensor | None = None
        self.chunks = 0  # chunks committed so far
        self.pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def slots(self) -> list[tuple[int, int]]:
        """(slot, chunk index) of the visible chunks, in time order."""
        S, W, n = self.sinks, self.window, self.chunks
        if W is None:
            return [(c, c) for c in range(n)]
        sink = [(c, c) for c in range(min(S, n))]
        recent = [(S + (c - S) % W, c) for c in range(max(S, n - W), n)]
        return sink + recent

    def frame_positions(self, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame positions of the visible chunks' frames (in slot order) and of the new chunk's frames."""
        visible = self.slots()
        if self.positions == "absolute":
            past = [c * frames + f for _, c in visible for f in range(frames)]
            own_start = self.chunks * frames
        else:
            past = list(range(len(visible) * frames))
            own_start = len(visible) * frames
        return torch.tensor(past, dtype=torch.long), torch.arange(own_start, own_start + frames)

    def visible(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached keys, values (1, visible tokens, H, hd) of one layer, in time order."""
        assert self.k is not None and self.v is not None
        index = [s for s, _ in self.slots()]
        if index == list(range(len(index))):  # slots already in time order: a view, no copy
            return self.k[layer, :len(index)].flatten(0, 1)[None], self.v[layer, :len(index)].flatten(0, 1)[None]
        order = torch.tensor(index, device=self.k.device)
        return self.k[layer, order].flatten(0, 1)[None], self.v[layer, order].flatten(0, 1)[None]

    def commit(self) -> None:
        """Store the pending keys/values (of the clean pass) as the next chunk."""
        if not self.pending:
            raise RuntimeError("nothing to commit: run the clean pass with record=True first")
        k = torch.stack([k[0] for k, _ in self.pending])  # (L, N, H, hd)
        v = torch.stack([v[0] for _, v in self.pending])
        S, W, n = self.sinks, self.window, self.chunks
        slot = n if (W is None or n < S) else S + (n - S) % W
        if self.k is None or slot >= self.k.shape[1]:
            size = S + W if W is not None else max(4, 2 * (0 if self.k is None else self.k.shape[1]))
            grown_k = torch.zeros((k.shape[0], size, *k.shape[1:]), dtype=k.dtype, device=k.device)
            grown_v = torch.zeros_like(grown_k, dtype=v.dtype)
            if self.k is not None:  # unbounded: double the slots, keep what is there
                grown_k[:, :self.k.shape[1]], grown_v[:, :self.v.shape[1]] = self.k, self.v
            self.k, self.v = grown_k, grown_v
        self.k[:, slot], self.v[:, slot] = k, v
        self.chunks += 1
        self.pending = []

    @property
    def nbytes(self) -> int:
        return 0 if self.k is None else self.k.nbytes + self.v.nbytes
