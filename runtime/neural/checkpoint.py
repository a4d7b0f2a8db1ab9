"""Checkpoint format of a neural world: a directory the daemon can serve.

    config.yaml                 format_version, name, frame size + fov, every architecture hyperparameter,
                                sampler settings, weights_dtype (see runtime/configs/default.yaml)
    autoencoder.safetensors     state dict of runtime.neural.autoencoder.Autoencoder
    dit.safetensors             state dict of runtime.neural.dit.DiT
    start_frames.safetensors    optional: "start_frames" (N, 3, H, W) uint8, frames to begin episodes from
                                when a client sends no start image (picked by seed)

The loader checks everything against the config before building anything: every key of config.yaml is
required and typed, every tensor name, shape and dtype must be exactly what the config implies, so a bad
directory fails at load time with a CheckpointError that names the file and the problem.
"""

from __future__ import annotations

import hashlib
import math
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from runtime.neural.autoencoder import Autoencoder, AutoencoderConfig
from runtime.neural.dit import DiT, DiTConfig
from runtime.neural.sampler import SamplerConfig
from runtime.precision import DTYPES, torch_dtype
from runtime.world import CheckpointError

FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
START_FRAMES_FILE = "start_frames.safetensors"
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.uint8: "U8"}


@dataclass
class FrameConfig:
    """Native frames of the model (the `frame:` section)."""

    width: int = 128
    height: int = 128
    fov_deg: float = 60.0  # vertical field of view the model was trained with; the world's default

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or not 1 <= self.fov_deg <= 170:
            raise ValueError(f"bad frame {self.width}x{self.height}, fov {self.fov_deg}")


@dataclass
class ModelConfig:
    """Everything config.yaml holds; building the models needs nothing else."""

    format_version: int
    name: str
    weights_dtype: str  # dtype of the tensors in the .safetensors files
    frame: FrameConfig
    autoencoder: AutoencoderConfig
    dit: DiTConfig
    sampler: SamplerConfig

    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not supported (this runtime: {FORMAT_VERSION})")
        if self.weights_dtype not in DTYPES:
            raise ValueError(f"weights_dtype must be one of {sorted(DTYPES)}, not {self.weights_dtype!r}")
        d, p = self.autoencoder.downsample, self.dit.patch
        if self.frame.width % (d * p) or self.frame.height % (d * p):
            raise ValueError(f"frame {self.frame.width}x{self.frame.height} is not a multiple of downsample x patch")

    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of one frame's latent."""
        return self.frame.height // self.autoencoder.downsample, self.frame.width // self.autoencoder.downsample

    @classmethod
    def from_dict(cls, raw: Any) -> ModelConfig:
        """Strict parse of config.yaml's content: raises ValueError naming the offending key."""
        return _parse(cls, raw, "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Keys added within format_version 1: a config without them (written before they existed) gets their defaults,
# which are what such a model is (no guidance, no memory).
ADDED_KEYS = {"guidance", "guidance_channels", "guidance_res", "guidance_dropout", "memory", "anchor", "look"}


def _parse(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a mapping, requiring exactly its fields (those of ADDED_KEYS may be absent) with
    the annotated types."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where.rstrip('.') or 'config'}: expected a mapping, got {type(raw).__name__}")
    names = {f.name for f in fields(cls)}
    unknown, missing = sorted(set(raw) - names, key=str), sorted(names - set(raw) - ADDED_KEYS)
    if unknown:
        raise ValueError(f"unknown key {where}{unknown[0]}")
    if missing:
        raise ValueError(f"missing key {where}{missing[0]}")
    hints = typing.get_type_hints(cls)
    values = {name: _value(hints[name], raw[name], f"{where}{name}") for name in names if name in raw}
    try:
        return cls(**values)
    except ValueError as e:
        raise ValueError(f"{where.rstrip('.')}: {e}" if where else str(e)) from None


def _value(kind: Any, value: Any, key: str) -> Any:
    if is_dataclass(kind):
        return _parse(kind, value, key + ".")
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind in (int, str, bool) and type(value) is kind:
        return value
    if kind == list[int] and isinstance(value, list) and all(type(v) is int for v in value):
        return value
    expected = "a list of int" if kind == list[int] else kind.__name__
    raise ValueError(f"{key}: expected {expected}, got {value!r}")


def read_config(path: str | Path) -> ModelConfig:
    """Parse a config.yaml file (a checkpoint's, or one of runtime/configs/)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing file")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise CheckpointError(f"{path}: unreadable YAML ({e})") from None
    try:
        return ModelConfig.from_dict(raw)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None


def build_models(config: ModelConfig, zero_init: bool = True) -> tuple[Autoencoder, DiT]:
    """Fresh modules with the config's architecture (on the current default device)."""
    dit = DiT(config.dit, config.autoencoder.latent_channels, config.latent_size, zero_init=zero_init)
    return Autoencoder(config.autoencoder), dit


def save_checkpoint(
    path: str | Path,
    config: ModelConfig,
    autoencoder: Autoencoder,
    dit: DiT,
    start_frames: torch.Tensor | None = None,
) -> None:
    """Write a checkpoint directory (created if needed; a start_frames file from before is removed when no
    start_frames are given). start_frames: optional (N, 3, H, W) uint8."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    dtype = torch_dtype(config.weights_dtype)
    meta = {"format": "worldbridge", "format_version": str(FORMAT_VERSION)}
    for name, module in (("autoencoder", autoencoder), ("dit", dit)):
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in module.state_dict().items()}
        save_file(tensors, str(path / f"{name}.safetensors"), metadata=meta)
    if start_frames is not None:
        expected = (3, config.frame.height, config.frame.width)
        if start_frames.dtype != torch.uint8 or start_frames.dim() != 4 or tuple(start_frames.shape[1:]) != expected:
            raise ValueError(f"start_frames must be (N, {', '.join(map(str, expected))}) uint8")
        save_file({"start_frames": start_frames.contiguous().cpu()}, str(path / START_FRAMES_FILE), metadata=meta)
    else:
        (path / START_FRAMES_FILE).unlink(missing_ok=True)
    (path / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


@dataclass
class Checkpoint:
    """A loaded checkpoint: models in eval mode on the requested device."""

    config: ModelConfig
    autoencoder: Autoencoder
    dit: DiT
    start_frames: torch.Tensor | None  # (N, 3, H, W) uint8 on the CPU


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Validate and load a checkpoint directory; raises CheckpointError naming the first problem found."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory")
    config = read_config(path / CONFIG_FILE)
    dtype = torch_dtype(config.weights_dtype)
    autoencoder, dit = build_models(config)
    for name, module in (("autoencoder", autoencoder), ("dit", dit)):
        spec = {k: (tuple(v.shape), dtype) for k, v in module.state_dict().items()}
        module.load_state_dict(_read_tensors(path / f"{name}.safetensors", spec))
    start_frames = None
    if (path / START_FRAMES_FILE).exists():
        spec = {"start_frames": ((None, 3, config.frame.height, config.frame.width), torch.uint8)}
        start_frames = _read_tensors(path / START_FRAMES_FILE, spec)["start_frames"]
    return Checkpoint(config, autoencoder.to(device).eval(), dit.to(device).eval(), start_frames)


def _read_tensors(
    file: Path, spec: dict[str, tuple[tuple[int | None, ...], torch.dtype]]
) -> dict[str, torch.Tensor]:
    """Load `file` after checking that it holds exactly the tensors of `spec`: {name: (shape, dtype)}, where
    a None in a shape accepts any size >= 1."""
    if not file.is_file():
        raise CheckpointError(f"{file}: missing file")
    try:
        with safe_open(str(file), framework="pt") as f:
            names = f.keys()
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in names}
            _check(file, header, spec)
            return {name: f.get_tensor(name) for name in spec}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file}: truncated or corrupt safetensors file ({e})") from None


def _check(
    file: Path,
    header: dict[str, tuple[tuple[int, ...], str]],
    spec: dict[str, tuple[tuple[int | None, ...], torch.dtype]],
) -> None:
    missing, unexpected = sorted(set(spec) - set(header)), sorted(set(header) - set(spec))
    if missing:
        raise CheckpointError(f"{file}: missing tensor {missing[0]!r} ({len(missing)} missing)")
    if unexpected:
        raise CheckpointError(f"{file}: unexpected tensor {unexpected[0]!r} (not part of the config's architecture)")
    for name, (shape, dtype) in spec.items():
        got_shape, got_dtype = header[name]
        fits = len(got_shape) == len(shape) and all(
            g == s if s is not None else g >= 1 for g, s in zip(got_shape, shape)
        )
        if not fits:
            want = ["N" if s is None else s for s in shape]
            raise CheckpointError(f"{file}: tensor {name!r} has shape {list(got_shape)}, expected {want}")
        if got_dtype != _SAFETENSORS_DTYPES[dtype]:
            want = _SAFETENSORS_DTYPES[dtype]
            raise CheckpointError(f"{file}: tensor {name!r} has dtype {got_dtype}, expected {want}")


def init_checkpoint(
    path: str | Path, config: ModelConfig | str | Path, seed: int = 0, start_frames: np.ndarray | None = None
) -> ModelConfig:
    """Write a randomly initialised checkpoint directory (tests, benchmarks, daemon end-to-end runs).

    config: a ModelConfig or a config.yaml path (e.g. runtime/configs/tiny.yaml). Every layer is random, the
    adaLN-Zero layers included, so frames depend on every input. start_frames: optional (N, H, W, 3) uint8.
    """
    cfg = config if isinstance(config, ModelConfig) else read_config(config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        autoencoder, dit = build_models(cfg, zero_init=False)
    frames = None if start_frames is None else torch.from_numpy(np.ascontiguousarray(start_frames)).permute(0, 3, 1, 2)
    save_checkpoint(path, cfg, autoencoder, dit, frames)
    return cfg


def checkpoint_sha256(path: str | Path) -> str:
    """A digest of a checkpoint directory's config and weights (names and bytes): what an ONNX export or a
    calibration was made from."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).iterdir()):
        if file.is_file() and file.suffix in (".yaml", ".safetensors"):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()
