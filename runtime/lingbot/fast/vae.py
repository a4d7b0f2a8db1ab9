"""The Wan2.1 video VAE (causal 3D convolutions; 4x temporal, 8x spatial; 16 latent channels), streaming.

Written from Wan's published architecture (arXiv 2503.20314, section 3.1) with the parameter names of the
released Wan2.1_VAE.pth (encoder.*, conv1, conv2, decoder.*): base width 96, multipliers 1, 2, 4, 4, two
residual blocks per level (three in the decoder), RMS norms, one single-head spatial attention in the middle,
temporal down/upsampling at the two deepest levels.

Every temporal convolution is causal: output frame t sees input frames <= t, the missing past being zeros at
the start. So a video can be coded in pieces if each convolution carries its last inputs from one piece to
the next: `Stream` holds that state (the two previous input frames of each 3-tap convolution; for the
temporal resamplers, whether the first frame has passed), and `decode_chunk` / `encode_chunk` turn any split
of a video into the same frames as coding it whole. The world decodes each finished chunk at once, so frames
reach the client chunk by chunk. Wan codes the first frame alone (a latent frame 0 is one video frame,
every later latent frame four): the temporal upsamplers pass the first frame through without their time
convolution, the downsamplers keep it as context for the next frames.

Latents are normalised per channel with Wan's published mean/std (LATENT_MEAN, LATENT_STD).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
               0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENT_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
              3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)
Z_DIM = 16

Stream = dict  # module -> its carried state; one per coded video


class CausalConv3d(nn.Conv3d):
    """Conv3d padded causally in time (2 * padding_t frames before, none after), symmetrically in space."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__(cin, cout, kernel, stride=stride, padding=0)
        pad = (padding,) * 3 if isinstance(padding, int) else tuple(padding)
        self.time_pad, self.space_pad = 2 * pad[0], (pad[2], pad[2], pad[1], pad[1])

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        """x (B, C, T, H, W); with a stream, the previous inputs replace the zero padding in time."""
        if self.time_pad:
            past = None if stream is None else stream.get(self)
            if past is None:
                past = x.new_zeros(*x.shape[:2], self.time_pad, *x.shape[3:])
            x = torch.cat([past.to(x.dtype), x], dim=2)
            if stream is not None:
                stream[self] = x[:, :, -self.time_pad:].detach()
        x = F.pad(x, self.space_pad)
        return super().forward(x.to(self.weight.dtype))


class ChannelRMSNorm(nn.Module):
    """The Wan VAE's norm, over the channel axis of (B, C, ...) maps (the DiTs' RMSNorms are over the last
    axis): x / ||x|| over channels * sqrt(C) * gamma (gamma (C, 1, 1, 1) for videos, (C, 1, 1) for images)."""

    def __init__(self, dim: int, images: bool = False):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim, *((1, 1) if images else (1, 1, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.float(), dim=1).to(x.dtype) * self.scale * self.gamma.to(x.dtype)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.residual = nn.Sequential(
            ChannelRMSNorm(cin), nn.SiLU(), CausalConv3d(cin, cout, 3, padding=1),
            ChannelRMSNorm(cout), nn.SiLU(), nn.Dropout(0.0), CausalConv3d(cout, cout, 3, padding=1),
        )
        self.shortcut = CausalConv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, stream) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h.to(x.dtype)


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame separately."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = ChannelRMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        B, C, T, H, W = x.shape
        h = self.norm(x.transpose(1, 2).reshape(B * T, C, H, W))
        q, k, v = self.to_qkv(h.to(self.to_qkv.weight.dtype)).flatten(2).transpose(1, 2)[:, None].chunk(3, dim=-1)
        h = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2).reshape(B * T, C, H, W)
        h = self.proj(h).view(B, T, C, H, W).transpose(1, 2)
        return x + h.to(x.dtype)


class Resample(nn.Module):
    """Spatial 2x up/down sampling per frame, and for the *3d modes a causal 2x in time."""

    def __init__(self, dim: int, mode: str):
        super().__init__()
        self.mode = mode
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(nn.Upsample(scale_factor=(2.0, 2.0), mode="nearest-exact"),
                                          nn.Conv2d(dim, dim // 2, 3, padding=1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        if stream is None:
            stream = {}  # a whole video in one call: a fresh stream is exactly that
        if self.mode == "upsample3d":
            x = self._time_up(x, stream)
        B, C, T, H, W = x.shape
        h = x.transpose(1, 2).reshape(B * T, C, H, W)
        h = self.resample[1](self.resample[0](h.float()).to(self.resample[1].weight.dtype))
        x = h.view(B, T, *h.shape[1:]).transpose(1, 2)
        if self.mode == "downsample3d":
            x = self._time_down(x, stream)
        return x

    def _time_up(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        """Each frame becomes two, except the video's very first, which passes as is (and is not history)."""
        first = None
        if not stream.get((self, "started")):
            stream[(self, "started")] = True
            first, x = x[:, :, :1], x[:, :, 1:]
        if x.shape[2]:
            B, C, T, H, W = x.shape
            y = self.time_conv(x, stream).view(B, 2, C, T, H, W)
            x = torch.stack([y[:, 0], y[:, 1]], dim=3).reshape(B, C, 2 * T, H, W)  # interleave the pairs
        return x if first is None else torch.cat([first.to(x.dtype), x], dim=2)

    def _time_down(self, x: torch.Tensor, stream: Stream) -> torch.Tensor:
        """Stride-2 causal conv over (last frame of the previous call, this call's frames); the first frame of
        the video passes as is."""
        last = stream.get((self, "last"))
        out = []
        if last is None:
            out.append(x[:, :, :1])
            last, x = x[:, :, :1], x[:, :, 1:]
        if x.shape[2]:
            out.append(self.time_conv(torch.cat([last.to(x.dtype), x], dim=2)))
            last = x[:, :, -1:]
        stream[(self, "last")] = last.detach()
        return torch.cat(out, dim=2)


def _run(layers: nn.Sequential, x: torch.Tensor, stream: Stream | None) -> torch.Tensor:
    for layer in layers:
        x = layer(x, stream) if isinstance(layer, (ResidualBlock, AttentionBlock, Resample, CausalConv3d)) \
            else layer(x)
    return x


class Encoder3d(nn.Module):
    def __init__(self, dim: int, z_dim: int, mult=(1, 2, 4, 4), blocks: int = 2, down=(False, True, True)):
        super().__init__()
        dims = [dim * m for m in (1, *mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(blocks):
                layers.append(ResidualBlock(cin, cout))
                cin = cout
            if i != len(mult) - 1:
                layers.append(Resample(cout, "downsample3d" if down[i] else "downsample2d"))
        self.downsamples = nn.Sequential(*layers)
        self.middle = nn.Sequential(ResidualBlock(cout, cout), AttentionBlock(cout), ResidualBlock(cout, cout))
        self.head = nn.Sequential(ChannelRMSNorm(cout), nn.SiLU(), CausalConv3d(cout, z_dim, 3, padding=1))

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        x = self.conv1(x, stream)
        return _run(self.head, _run(self.middle, _run(self.downsamples, x, stream), stream), stream)


class Decoder3d(nn.Module):
    def __init__(self, dim: int, z_dim: int, mult=(1, 2, 4, 4), blocks: int = 2, up=(True, True, False)):
        super().__init__()
        dims = [dim * m for m in (mult[-1], *mult[::-1])]
        self.conv1 = CausalConv3d(z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                    ResidualBlock(dims[0], dims[0]))
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if i in (1, 2, 3):
                cin //= 2  # the upsampler before halved the channels
            for _ in range(blocks + 1):
                layers.append(ResidualBlock(cin, cout))
                cin = cout
            if i != len(mult) - 1:
                layers.append(Resample(cout, "upsample3d" if up[i] else "upsample2d"))
        self.upsamples = nn.Sequential(*layers)
        self.head = nn.Sequential(ChannelRMSNorm(cout), nn.SiLU(), CausalConv3d(cout, 3, 3, padding=1))

    def forward(self, x: torch.Tensor, stream: Stream | None = None) -> torch.Tensor:
        x = self.conv1(x, stream)
        return _run(self.head, _run(self.upsamples, _run(self.middle, x, stream), stream), stream)


class WanVAE(nn.Module):
    """Wan2.1 VAE. dim: 96 in the release (the tiny test checkpoints use less)."""

    def __init__(self, dim: int = 96, z_dim: int = Z_DIM):
        super().__init__()
        self.encoder = Encoder3d(dim, z_dim * 2)
        self.conv1 = CausalConv3d(z_dim * 2, z_dim * 2, 1)
        self.conv2 = CausalConv3d(z_dim, z_dim, 1)
        self.decoder = Decoder3d(dim, z_dim)

    @staticmethod
    def _stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, Z_DIM, 1, 1, 1)
        return torch.tensor(LATENT_MEAN, device=device).view(shape), torch.tensor(LATENT_STD, device=device).view(shape)

    def encode_chunk(self, video: torch.Tensor, stream: Stream) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised latent means (B, 16, t, H/8, W/8) float32. The stream's
        first call takes 1 + 4k frames (-> 1 + k latents), later calls 4k frames (-> k latents)."""
        mu = self.conv1(self.encoder(video.to(self.conv1.weight.dtype), stream)).float()[:, :Z_DIM]
        mean, std = self._stats(mu.device)
        return (mu - mean) / std

    def decode_chunk(self, z: torch.Tensor, stream: Stream) -> torch.Tensor:
        """Normalised latents (B, 16, t, h, w) -> video (B, 3, T, 8h, 8w) in [-1, 1] float32; T = 1 + 4(t-1) for
        the stream's first call, 4t after."""
        mean, std = self._stats(z.device)
        x = self.conv2((z.float() * std + mean).to(self.conv2.weight.dtype))
        return self.decoder(x, stream).float().clamp(-1, 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """A whole latent video at once (no carried state beyond this call)."""
        return self.decode_chunk(z, {})

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        return self.encode_chunk(video, {})


def vae_dim(shapes: dict[str, tuple[int, ...]]) -> int:
    """Base width of a VAE checkpoint (96 for the release), from encoder.conv1.weight's shape."""
    if "encoder.conv1.weight" not in shapes:
        raise ValueError("VAE checkpoint has no encoder.conv1.weight: not a Wan2.1 VAE state dict")
    return shapes["encoder.conv1.weight"][0]
