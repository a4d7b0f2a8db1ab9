"""Where a neural world's four computations run: encode, decode, generate (denoise + commit) and commit.

NeuralWorld (runtime/neural/world.py) owns the episodes, the KV cache and the conditions, and holds one backend:
TorchBackend here, or OnnxBackend (runtime/neural/onnx.py), which runs the same model in ONNX Runtime. Both take
and return torch tensors, so the world around them is one code path and parity is tested on whole episodes.
conditions: (action (b, A), rays (b, N, 6), has_pose (b,), guide (b, G, gh, gw) or None), as NeuralWorld makes
them; `guidance` (b, G, H, W): the full-size guidance features a guided decoder reads (None: none); `look`
(b, look): the episodes' look codes a decoder with a look reads (Autoencoder.look; None: none).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn as nn

from runtime.neural.autoencoder import Autoencoder, to_uint8
from runtime.neural.dit import DiT
from runtime.neural.generate import commit, generate_cached
from runtime.neural.kv_cache import KVCache


class Backend(Protocol):
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) in [-1, 1] -> (b, C, h, w) float32 latents."""

    def decode(self, latent: torch.Tensor, guidance: torch.Tensor | None = None,
               look: torch.Tensor | None = None) -> np.ndarray:
        """(b, C, h, w) latents -> (b, H, W, 3) uint8 pixels."""

    def generate(self, cache: KVCache, slots: list[int], noise: torch.Tensor, conditions: tuple,
                 schedule: list[float], observed: torch.Tensor | None = None,
                 begin: torch.Tensor | None = None) -> torch.Tensor:
        """The next latent (b, C, h, w) of each episode in `slots`, committed to the cache (`observed` instead
        when given: teacher forcing; `begin`: rows whose noise starts part-way, sampler.sample)."""

    def commit(self, cache: KVCache, slots: list[int], latent: torch.Tensor, conditions: tuple) -> None:
        """Write finished latents (b, C, h, w) into the episodes' cache slots."""


class TorchBackend:
    """The model in torch: float32, or bfloat16 / float16 with the matmul and convolution weights cast once."""

    def __init__(self, dit: DiT, autoencoder: Autoencoder, device: torch.device, dtype: torch.dtype):
        self.dit, self.autoencoder = dit, autoencoder
        if device.type == "cpu":
            autoencoder.to(memory_format=torch.channels_last)  # oneDNN's fast convolutions: ~2.5x here
        if dtype != torch.float32:
            # Autocast would cast every fp32 weight again on every call; cast the matmul and convolution
            # weights once, keeping norms, embedding tables and the residual stream in fp32.
            for module in [*dit.modules(), *autoencoder.modules()]:
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    module.to(dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(x).float()

    def decode(self, latent: torch.Tensor, guidance: torch.Tensor | None = None,
               look: torch.Tensor | None = None) -> np.ndarray:
        latent = latent.contiguous(memory_format=torch.channels_last)
        return to_uint8(self.autoencoder.decode(latent, guidance, look)).cpu().numpy()

    def generate(self, cache: KVCache, slots: list[int], noise: torch.Tensor, conditions: tuple,
                 schedule: list[float], observed: torch.Tensor | None = None,
                 begin: torch.Tensor | None = None) -> torch.Tensor:
        *conds, guide = conditions
        return generate_cached(self.dit, cache, slots, noise, *conds, schedule, observed, guide, begin)

    def commit(self, cache: KVCache, slots: list[int], latent: torch.Tensor, conditions: tuple) -> None:
        commit(self.dit, cache, slots, latent.contiguous(), *conditions)
