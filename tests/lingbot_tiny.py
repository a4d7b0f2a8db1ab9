"""Shared by the tests/test_lingbot_*.py files: a tiny LingBot-World-Fast checkpoint in the released layout,
served at 64x32 (4x8 latents, 8 tokens per latent frame) so the whole path runs in seconds on a CPU."""

import json
from pathlib import Path

import torch

from runtime.lingbot.fast.dit import WanFastDiT
from runtime.lingbot.fast.tiny import tiny_config, write_tiny_checkpoint

WIDTH, HEIGHT = 64, 32


def tiny_release(path: Path, control_dim: int = 6, **options) -> Path:
    """The release layout under `path`, plus a worldbridge.json that serves it small."""
    write_tiny_checkpoint(path, control_dim=control_dim)
    opts = {"width": WIDTH, "height": HEIGHT, "prompt": "a walk through the old city", **options}
    (path / "worldbridge.json").write_text(json.dumps(opts))
    return path


def tiny_dit() -> WanFastDiT:
    """A tiny Fast DiT whose biases and head are random too, so every input matters; the same in every process."""
    torch.manual_seed(0)
    model = WanFastDiT(tiny_config()).eval()
    for p in model.parameters():
        if p.dim() == 1:
            torch.nn.init.normal_(p, std=0.05)
    torch.nn.init.normal_(model.head.head.weight, std=0.05)
    return model
