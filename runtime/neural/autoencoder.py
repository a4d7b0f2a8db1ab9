"""Latent autoencoder: RGB frames <-> small spatial latents that the world model's transformer works on.

Frames are (B, 3, H, W) in [-1, 1]; latents are (B, C, H/d, W/d) for a spatial downsampling d of 8 or 16,
as in the Wan2.1 VAE that LingBot-World builds on (8x spatial, 16 channels), but purely spatial: frames are
encoded one at a time, so a model can decode each generated frame the moment it exists.

The decoder runs once for every generated frame on a CPU, so it follows the shape of TAESD (the "tiny
autoencoder" for Stable Diffusion latents): plain 3x3 convolutions with residual blocks, nearest-neighbour
upsampling and no normalisation layers. The encoder mirrors it with stride-2 convolutions; it only runs for
start images. The autoencoder is deterministic (no KL term): the latents it produces are multiplied by
`latent_scale` (set after training so they have roughly unit variance) before the transformer sees them.

A guided decoder (config `guidance` > 0) also reads the engine's guidance features (runtime/guidance.py) at full
resolution: a small strided-convolution pyramid turns them into one feature map per decoder resolution, added
to the decoder's activations through 1x1 convolutions that start at zero (ControlNet's zero convolutions), so
a guided decoder starts as the unguided one it extends. Edges of walls and sky then come from the engine's
buffers at pixel precision, not from an 8x smaller latent. Without guidance it gets all-zero features.

A decoder with a look code (config `look` > 0) also reads one vector per episode, made once from a reference
frame of the episode (its start frame) by a small strided-convolution encoder, mean-pooled: the level's light,
fog and palette, which the guidance does not carry (its colours are unlit and fog-free). It modulates the
decoder's activations at every resolution (FiLM: a per-channel scale and shift, from zero-initialised linear
layers), so the lit colour of every guided pixel can come from the guidance and the look, not from a latent that
drifts over a long rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class AutoencoderConfig:
    """Architecture of the autoencoder (the `autoencoder:` section of a checkpoint's config.yaml)."""

    downsample: int = 8  # spatial factor between frames and latents: 8 or 16
    latent_channels: int = 8
    # Widths at each resolution, from full resolution down to the latent's: log2(downsample) + 1 entries.
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    res_blocks: int = 1  # residual blocks at every resolution, in the encoder and in the decoder
    latent_scale: float = 1.0  # transformer latents = encoder output * latent_scale
    guidance: int = 0  # channels of the guidance features the decoder reads (runtime/guidance.py); 0: none
    # Widths of the guidance pyramid, full resolution first (as `channels`); used when guidance > 0.
    guidance_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    look: int = 0  # width of the decoder's look code, made from a reference frame of the episode; 0: none

    def __post_init__(self) -> None:
        if self.downsample not in (8, 16):
            raise ValueError(f"downsample must be 8 or 16, not {self.downsample}")
        levels = int(math.log2(self.downsample)) + 1
        if len(self.channels) != levels:
            raise ValueError(f"channels needs {levels} widths for downsample {self.downsample}, got {self.channels}")
        if min(self.channels) < 1 or self.latent_channels < 1 or self.res_blocks < 0:
            raise ValueError("channels and latent_channels must be positive and res_blocks >= 0")
        if not self.latent_scale > 0:
            raise ValueError(f"latent_scale must be positive, not {self.latent_scale}")
        if self.guidance < 0 or (self.guidance and len(self.guidance_channels) != levels):
            raise ValueError(f"guidance must be >= 0, with {levels} guidance_channels for downsample {self.downsample}")
        if self.look < 0:
            raise ValueError(f"look must be >= 0, not {self.look}")


class ResBlock(nn.Module):
    """x + conv(act(conv(act(x)))): TAESD's block, without normalisation so it stays cheap on a CPU."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Encoder(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, C, H/d, W/d) unscaled latents."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(3, ch[0], 3, padding=1)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [ResBlock(c_in) for _ in range(cfg.res_blocks)]
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))
        layers += [ResBlock(ch[-1]) for _ in range(cfg.res_blocks)]
        layers += [nn.SiLU(), nn.Conv2d(ch[-1], cfg.latent_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GuidancePyramid(nn.Module):
    """(B, G, H, W) guidance features -> feature maps at every decoder resolution, the latent's first."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.guidance_channels
        self.stem = nn.Conv2d(cfg.guidance, ch[0], 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(ch[:-1], ch[1:]))

    def forward(self, g: torch.Tensor) -> list[torch.Tensor]:
        x = F.silu(self.stem(g))
        out = [x]
        for conv in self.down:
            x = F.silu(conv(x))
            out.append(x)
        return out[::-1]


class LookEncoder(nn.Module):
    """(B, 3, H, W) reference frames in [-1, 1] -> (B, look) look codes: four stride-2 convolutions, mean-pooled."""

    def __init__(self, look: int, width: int = 64):
        super().__init__()
        ch = [3, width // 4, width // 2, width, width]
        layers: list[nn.Module] = []
        for a, b in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.SiLU()]
        self.layers = nn.Sequential(*layers)
        self.out = nn.Linear(width, look)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.out(self.layers(frames).mean((2, 3)))


class Decoder(nn.Module):
    """(B, C, h, w) unscaled latents [+ (B, G, h*d, w*d) guidance features] [+ (B, look) look codes] ->
    (B, 3, h*d, w*d), roughly in [-1, 1] (clamp before display)."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        ch = cfg.channels[::-1]  # latent resolution first
        layers: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)]
        self._inject = [0]  # guidance enters after these layers: the first convolution at each resolution
        layers += [ResBlock(ch[0]) for _ in range(cfg.res_blocks)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
            self._inject.append(len(layers) - 1)
            layers += [ResBlock(c_out) for _ in range(cfg.res_blocks)]
        layers += [nn.SiLU(), nn.Conv2d(ch[-1], 3, 3, padding=1)]
        self.layers = nn.Sequential(*layers)
        self.guidance = cfg.guidance
        if cfg.guidance:
            self.pyramid = GuidancePyramid(cfg)
            self.guide_in = nn.ModuleList(nn.Conv2d(g, c, 1) for g, c in zip(cfg.guidance_channels[::-1], ch))
            for conv in self.guide_in:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.look = cfg.look
        if cfg.look:
            self.look_encoder = LookEncoder(cfg.look)
            self.look_in = nn.ModuleList(nn.Linear(cfg.look, 2 * c) for c in ch)  # (scale, shift) per channel
            for lin in self.look_in:
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)

    def forward(self, z: torch.Tensor, guidance: torch.Tensor | None = None,
                look: torch.Tensor | None = None) -> torch.Tensor:
        if not (self.guidance or self.look):
            return self.layers(z)
        if self.guidance and guidance is None:
            d = 2 ** (len(self._inject) - 1)
            guidance = z.new_zeros(z.shape[0], self.guidance, z.shape[2] * d, z.shape[3] * d)
        feats = iter(zip(self.pyramid(guidance.to(z.dtype)), self.guide_in)) if self.guidance else None
        films = iter(self.look_in) if self.look and look is not None else None
        for i, layer in enumerate(self.layers):
            z = layer(z)
            if i in self._inject:
                if feats is not None:
                    g, conv = next(feats)
                    z = z + conv(g)
                if films is not None:
                    scale, shift = next(films)(look.to(z.dtype))[:, :, None, None].chunk(2, dim=1)
                    z = z * (1 + scale) + shift
        return z


class Autoencoder(nn.Module):
    """Encoder + decoder, with the latent scaling applied here so callers only ever see transformer latents."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, C, H/d, W/d) scaled latents."""
        return self.encoder(frames) * self.cfg.latent_scale

    def decode(self, latents: torch.Tensor, guidance: torch.Tensor | None = None,
               look: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, h, w) scaled latents [+ (B, G, h*d, w*d) guidance features, for a guided decoder; None: none]
        [+ (B, look) look codes (Autoencoder.look), for a decoder with a look; None: unmodulated]
        -> (B, 3, h*d, w*d) frames, roughly in [-1, 1]."""
        return self.decoder(latents / self.cfg.latent_scale, guidance, look)

    def look(self, frames: torch.Tensor) -> torch.Tensor | None:
        """(B, 3, H, W) reference frames in [-1, 1] -> (B, look) look codes; None for a decoder without one."""
        return self.decoder.look_encoder(frames) if self.cfg.look else None


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8, clamped: the layout of runtime.world.Frame.pixels."""
    return ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (B, 3, H, W) float32 in [-1, 1]."""
    return pixels.float() / 127.5 - 1
