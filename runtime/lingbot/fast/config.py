"""The released LingBot-World-Fast checkpoint layout and the Fast DiT's config.json.

The download (huggingface robbyant/lingbot-world-fast-*) is a directory laid out as LingBot-World's
`wan/image2video_fast.py` reads it:

    PATH/lingbot_world_fast/config.json                                   diffusers ConfigMixin config of WanModelFast
    PATH/lingbot_world_fast/diffusion_pytorch_model.safetensors.index.json  {"weight_map": {tensor name: shard file}}
    PATH/lingbot_world_fast/diffusion_pytorch_model-0000K-of-0000N.safetensors
    PATH/Wan2.1_VAE.pth                                                   Wan2.1 VAE state dict (torch.save)
    PATH/models_t5_umt5-xxl-enc-bf16.pth                                  umT5-XXL encoder state dict (torch.save)
    PATH/google/umt5-xxl/tokenizer.json                                   the umT5 tokenizer (HF tokenizers format)

The DiT folder name differs between releases and ports ("lingbot_world_fast", "Lingbot-World-Fast"), so every
candidate in DIT_FOLDERS is tried, and PATH may also be the DiT folder's parent or the folder itself. Tensor
names follow the original Wan repository (blocks.N.self_attn.q.weight, ...), because WanModelFast is Wan's own
nn.Module saved through diffusers' ModelMixin, not diffusers' WanTransformer3DModel (blocks.N.attn1.to_q...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIT_FOLDERS = ("lingbot_world_fast", "Lingbot-World-Fast", "lingbot-world-fast")
DIT_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIT_SINGLE = "diffusion_pytorch_model.safetensors"
VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
TOKENIZER_DIR = "google/umt5-xxl"

# Wan's VAE: 4x temporal, 8x spatial compression; the DiT's 1x2x2 patches on top.
VAE_STRIDE = (4, 8, 8)
CHUNK_FRAMES = 3  # latent frames per block-causal chunk (12 video frames, 9 for the first chunk)
# The Fast sampler: 4 of the 1000 shifted training timesteps (wan/image2video_fast.py, generate()).
TIMESTEP_INDICES = (0, 179, 358, 679)
NUM_TRAIN_TIMESTEPS = 1000
# The shift the authors' generate_fast.py runs: it passes --sample_shift, default the task config's (wan/configs
# i2v_A14B.sample_shift = 10.0), to generate(), whose own default of 5.0 is thus never used. Timesteps 999, 978,
# 947, 825.
DEFAULT_SHIFT = 10.0


@dataclass(frozen=True)
class FastDiTConfig:
    """WanModelFast's constructor arguments. Keys the release's config.json does not store (diffusers'
    `ignore_for_config`: patch_size, qk_norm, cross_attn_norm, text_dim) keep Wan's defaults; text_dim and the
    control channels are read from the tensors' shapes by the loader instead."""

    model_type: str = "i2v"
    dim: int = 5120
    ffn_dim: int = 13824
    freq_dim: int = 256
    text_dim: int = 4096
    in_dim: int = 36  # 16 noisy latent channels + 4 first-frame mask + 16 first-frame latent
    out_dim: int = 16
    num_heads: int = 40
    num_layers: int = 40
    text_len: int = 512
    eps: float = 1e-6
    patch_size: tuple[int, int, int] = (1, 2, 2)
    qk_norm: bool = True
    cross_attn_norm: bool = True
    control_dim: int = 6  # per-pixel control channels: 6 = ray origin + direction ("cam"), 7 = direction + WASD ("act")
    local_attn_size: int = -1  # the official window in latent frames (-1: unbounded); informative only (the
    # official pipeline passes its own, default -1, over config.json's); serving uses LingBotOptions
    sink_size: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


def read_dit_config(path: Path) -> FastDiTConfig:
    """FastDiTConfig from a DiT folder's config.json; unknown keys (_class_name, _diffusers_version) ignored."""
    raw = json.loads((Path(path) / "config.json").read_text())
    fields = FastDiTConfig.__dataclass_fields__
    kwargs = {k: v for k, v in raw.items() if k in fields}
    if "patch_size" in kwargs:
        kwargs["patch_size"] = tuple(kwargs["patch_size"])
    if "cam_channels" in raw and raw["cam_channels"]:
        kwargs["control_dim"] = int(raw["cam_channels"])
    elif raw.get("control_type") == "act":
        kwargs["control_dim"] = 7
    cfg = FastDiTConfig(**kwargs)
    if cfg.dim % cfg.num_heads or cfg.head_dim % 2:
        raise ValueError(f"{path}/config.json: dim {cfg.dim} must split into {cfg.num_heads} heads of even width")
    if cfg.model_type != "i2v":
        raise ValueError(f"{path}/config.json: model_type {cfg.model_type!r}; LingBot-World-Fast is 'i2v'")
    return cfg


def find_dit_dir(path: Path) -> Path:
    """The folder holding the Fast DiT's config.json and weights, under or at `path`."""
    path = Path(path)
    for candidate in [path / name for name in DIT_FOLDERS] + [path]:
        if (candidate / "config.json").is_file() and (
            (candidate / DIT_INDEX).is_file() or (candidate / DIT_SINGLE).is_file()
        ):
            return candidate
    raise FileNotFoundError(
        f"{path}: no LingBot-World-Fast DiT found: expected config.json and {DIT_INDEX} (or {DIT_SINGLE}) in "
        f"one of {', '.join(DIT_FOLDERS)} or in {path} itself"
    )


def cache_chunks(local_attn_size: int, sink_size: int = 0, chunk: int = CHUNK_FRAMES) -> tuple[int, int | None]:
    """The official cache spelling (WanModelFast's local_attn_size, sink_size: latent frames) -> (sinks, window)
    in chunks, as ChunkCache takes them; window None = every chunk kept (local_attn_size -1).

    WanModelFast keeps a cache of local_attn_size frames that holds the new chunk too (its keys are written
    before it attends) and pins the first sink_size frames when it rolls: the new chunk sees sink_size frames
    of sinks plus local_attn_size - sink_size - chunk frames of the most recent chunks. So 15 / 3 is 1 sink
    chunk + a window of 3 chunks. Sizes that are not whole chunks would roll part of a chunk out; refused."""
    if sink_size < 0 or sink_size % chunk:
        raise ValueError(f"sink_size {sink_size}: must be a multiple of {chunk} latent frames (whole chunks)")
    if local_attn_size == -1:
        return sink_size // chunk, None
    if local_attn_size % chunk or local_attn_size < sink_size + 2 * chunk:
        raise ValueError(f"local_attn_size {local_attn_size}: must be -1 (all history) or a multiple of {chunk} "
                         f"latent frames holding the sinks ({sink_size}), at least one earlier chunk and the new one "
                         f"(>= {sink_size + 2 * chunk})")
    return sink_size // chunk, (local_attn_size - sink_size) // chunk - 1


def fast_schedule(shift: float, indices: tuple[int, ...] = TIMESTEP_INDICES) -> list[tuple[float, float, float]]:
    """(timestep the DiT sees, sigma to predict x0 with, sigma to re-noise to) of each denoising step.

    As FlowUniPCMultistepScheduler.set_timesteps(1000, shift) makes them: sigmas linspace(0.999, 0, 1001)[:-1]
    shifted by shift*s / (1 + (shift-1)*s), timesteps int64(1000 * sigma). Neighbouring sigmas share an integer
    timestep near t = 1000, and the official code looks sigmas up by timestep: x0 with the first match
    (argmin), re-noising (diffusers' add_noise) with the second when there are several. Both are kept here."""
    base = np.linspace(0.999, 0.0, NUM_TRAIN_TIMESTEPS + 1)[:-1]
    sigmas = shift * base / (1 + (shift - 1) * base)
    timesteps = (sigmas * NUM_TRAIN_TIMESTEPS).astype(np.int64)
    sigmas = sigmas.astype(np.float32)
    steps = []
    for i in indices:
        same = np.nonzero(timesteps == timesteps[i])[0]
        noise_at = same[1] if len(same) > 1 else same[0]
        steps.append((float(timesteps[i]), float(sigmas[same[0]]), float(sigmas[noise_at])))
    return steps
