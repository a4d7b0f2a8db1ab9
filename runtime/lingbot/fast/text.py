"""The umT5-XXL text encoder (T5 v1.1-style encoder with per-layer relative position buckets), its tokenizer,
and a cache of encoded prompts.

Architecture from T5 (Raffel et al. 2020) / umT5 (Chung et al. 2023) with the parameter names of Wan's
models_t5_umt5-xxl-enc-bf16.pth: token_embedding, blocks.N.{norm1, attn.{q,k,v,o}, norm2, ffn.{gate.0, fc1,
fc2}, pos_embedding.embedding}, norm. RMS norms without bias, no attention scaling, gated-GELU MLP, a relative
position bias per layer (umT5 does not share it), 32 buckets, max distance 128. The XXL sizes (vocabulary
256384, width 4096, 64 heads, 24 layers, MLP 10240) are read from the tensors.

The prompt is tokenised with google/umt5-xxl/tokenizer.json (the `tokenizers` package, an optional dependency:
`pip install worldbridge[lingbot]`) after Wan's "whitespace" cleaning (`clean_prompt`: ftfy.fix_text when the
`ftfy` package is importable -- not a dependency, `pip install ftfy` to match the official pipeline on mis-decoded
text --, HTML entities unescaped twice, whitespace runs collapsed, ends stripped), </s> appended, cut to text_len
tokens. Only the real tokens' states are kept (Wan trims the padding; the DiT pads them with
zeros again). A prompt is encoded once and cached on the CPU, so the 5.7B-parameter encoder can live on the
CPU or be moved to the GPU only for the encoding (`PromptEncoder(offload=True)`).
"""

from __future__ import annotations

import html
import math
import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn

NUM_BUCKETS, MAX_DISTANCE = 32, 128


class T5Norm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(self.weight.dtype)


class RelativeBias(nn.Module):
    """Bidirectional bucketed relative position bias: (heads, Lq, Lk)."""

    def __init__(self, heads: int):
        super().__init__()
        self.embedding = nn.Embedding(NUM_BUCKETS, heads)

    def forward(self, length: int) -> torch.Tensor:
        pos = torch.arange(length, device=self.embedding.weight.device)
        rel = pos[None, :] - pos[:, None]  # key - query
        half = NUM_BUCKETS // 2
        bucket = (rel > 0).long() * half
        rel = rel.abs()
        exact = half // 2
        large = exact + (torch.log(rel.float().clamp(min=1) / exact) / math.log(MAX_DISTANCE / exact)
                         * (half - exact)).long()
        bucket = bucket + torch.where(rel < exact, rel, large.clamp(max=half - 1))
        return self.embedding(bucket).permute(2, 0, 1)


class T5Attention(nn.Module):
    def __init__(self, dim: int, dim_attn: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim_attn, bias=False) for _ in range(3))
        self.o = nn.Linear(dim_attn, dim, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """x (B, L, dim), bias (B or 1, H, L, L) additive (position + padding mask) -> (B, L, dim)."""
        B, L, _ = x.shape
        q, k, v = (p(x).view(B, L, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        attn = (q @ k.transpose(-1, -2)).float() + bias  # T5: no 1/sqrt(d) scaling
        out = attn.softmax(-1).to(v.dtype) @ v
        return self.o(out.transpose(1, 2).reshape(B, L, -1))


class T5Block(nn.Module):
    def __init__(self, dim: int, dim_attn: int, dim_ffn: int, heads: int):
        super().__init__()
        self.norm1 = T5Norm(dim)
        self.attn = T5Attention(dim, dim_attn, heads)
        self.norm2 = T5Norm(dim)
        self.ffn = nn.Module()
        self.ffn.gate = nn.Sequential(nn.Linear(dim, dim_ffn, bias=False), nn.GELU(approximate="tanh"))
        self.ffn.fc1 = nn.Linear(dim, dim_ffn, bias=False)
        self.ffn.fc2 = nn.Linear(dim_ffn, dim, bias=False)
        self.pos_embedding = RelativeBias(heads)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        bias = self.pos_embedding(x.shape[1])[None].float() + mask_bias  # (B, H, L, L)
        x = x + self.attn(self.norm1(x), bias)
        h = self.norm2(x)
        return x + self.ffn.fc2(self.ffn.fc1(h) * self.ffn.gate(h))


class T5Encoder(nn.Module):
    """umT5 encoder; sizes from `t5_sizes` of the checkpoint's shapes."""

    def __init__(self, vocab: int, dim: int, dim_attn: int, dim_ffn: int, heads: int, layers: int):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList([T5Block(dim, dim_attn, dim_ffn, heads) for _ in range(layers)])
        self.norm = T5Norm(dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, L) -> states (B, L, dim)."""
        x = self.token_embedding(ids)
        mask_bias = torch.zeros(mask.shape, device=ids.device).masked_fill(mask == 0, torch.finfo(torch.float32).min)
        mask_bias = mask_bias[:, None, None, :]  # (B, 1, 1, L)
        for block in self.blocks:
            x = block(x, mask_bias)
        return self.norm(x)


def t5_sizes(shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """T5Encoder constructor arguments from a checkpoint's tensor shapes."""
    try:
        vocab, dim = shapes["token_embedding.weight"]
        layers = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("blocks."))
        return {
            "vocab": vocab, "dim": dim, "dim_attn": shapes["blocks.0.attn.q.weight"][0],
            "dim_ffn": shapes["blocks.0.ffn.fc1.weight"][0],
            "heads": shapes["blocks.0.pos_embedding.embedding.weight"][1], "layers": layers,
        }
    except (KeyError, ValueError) as e:
        raise ValueError(f"not a umT5 encoder state dict (missing or odd {e})") from e


def clean_prompt(text: str) -> str:
    """Wan's prompt cleaning before tokenizing: ftfy.fix_text (only if `ftfy` is importable), html.unescape twice
    ("&amp;amp;" -> "&"), whitespace runs (non-breaking spaces, tabs, newlines) to one space, ends stripped."""
    try:
        import ftfy
    except ImportError:
        pass
    else:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()


class Tokenizer:
    """google/umt5-xxl/tokenizer.json through the `tokenizers` package."""

    def __init__(self, folder: Path, text_len: int):
        try:
            from tokenizers import Tokenizer as HFTokenizer
        except ImportError as e:
            raise ImportError("the LingBot world needs the 'tokenizers' package for its prompts: "
                              "pip install 'worldbridge[lingbot]' (or pip install tokenizers)") from e
        path = Path(folder) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (the umT5 tokenizer of the release)")
        self.tokenizer = HFTokenizer.from_file(str(path))
        self.text_len = text_len

    def __call__(self, text: str) -> list[int]:
        """Token ids of the prompt with </s>, at most text_len."""
        ids = self.tokenizer.encode(clean_prompt(text), add_special_tokens=True).ids
        return ids if len(ids) <= self.text_len else ids[: self.text_len - 1] + ids[-1:]


class PromptEncoder:
    """Prompt -> umT5 states (L, dim), each distinct prompt encoded once (LRU of `keep` prompts on the CPU).

    offload: keep the encoder on the CPU and move it to `device` only while encoding."""

    def __init__(self, model: T5Encoder, tokenizer: Tokenizer, device: torch.device, offload: bool, keep: int = 16):
        self.model, self.tokenizer, self.device, self.offload, self.keep = model, tokenizer, device, offload, keep
        self.cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encoded = 0  # how many times the encoder actually ran (tests)

    @torch.inference_mode()
    def __call__(self, prompt: str) -> torch.Tensor:
        if prompt in self.cache:
            self.cache.move_to_end(prompt)
            return self.cache[prompt]
        ids = torch.tensor([self.tokenizer(prompt)])
        run_on = self.device if self.offload else next(self.model.parameters()).device
        if self.offload:
            self.model.to(run_on)
        try:
            states = self.model(ids.to(run_on), torch.ones_like(ids, device=run_on))[0].cpu()  # (L, dim)
        finally:
            if self.offload:
                self.model.to("cpu")
        self.encoded += 1
        self.cache[prompt] = states
        while len(self.cache) > self.keep:
            self.cache.popitem(last=False)
        return states

