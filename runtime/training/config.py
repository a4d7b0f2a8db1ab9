"""What a training run is told: the stages' hyper-parameters and the run's settings, read from a YAML file
(runtime/configs/train_default.yaml). runtime/training/stages.py holds the stages and run(), which trains them;
runtime/training/trainer.py the loop they share."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from runtime.precision import DTYPES

STAGES = ("autoencoder", "teacher", "student", "decoder")  # in training order; each is a section of TrainConfig


@dataclass
class StageConfig:
    steps: int = 1000
    batch: int = 16
    lr: float = 3e-4
    warmup: int = 100
    log_every: int = 50
    save_every: int = 250


@dataclass
class AutoencoderStage(StageConfig):
    crop: int = 64  # train on random crops: convolutions don't care, and 64x64 costs a quarter of 128x128


@dataclass
class StudentConfig(StageConfig):
    teacher_steps: int = 16  # Euler steps of the teacher's target
    rollout: int = 32  # frames a student episode runs on its own before it restarts from real frames


@dataclass
class DecoderStage(StageConfig):
    """A guided decoder fine-tuned, encoder frozen (so the transformer's latents keep their meaning), on
    corrupted latents of guided crops: what the transformer makes is blurrier than the encoder's latents, and
    the decoder should then take the geometry from the engine's buffers. steps 0: skipped."""

    steps: int = 0
    batch: int = 32
    crop: int = 64
    noise: float = 1.0  # corruption: Gaussian noise of up to this many latent standard deviations
    blur: float = 0.5  # probability a latent is also blurred (2x pooled and repeated back up)
    # Errors a long rollout makes: the latent of another frame of the same episode (wrong geometry, right look)
    # with this probability, and a smooth offset (per channel, and at a quarter of the latent's resolution) of
    # up to this many latent standard deviations.
    swap: float = 0.0
    shift: float = 0.0


@dataclass
class TrainConfig:
    model: str  # architecture: a config.yaml such as runtime/configs/default.yaml
    data: str  # dataset directory (runtime/data/dataset.py)
    out: str  # run directory
    device: str = "cpu"
    precision: str = "bfloat16"  # autocast dtype for the matmuls; weights and optimiser stay fp32
    seed: int = 0
    init: str = ""  # optional model directory to start from (fine-tuning a trained model on new data)
    # Optional model directory whose weights start the parts of `model` they fit (a guided model from the
    # default); unlike `init`, every stage trains, the autoencoder too.
    extend: str = ""
    holdout: int = 8  # last episodes of the dataset, never trained on (evaluation)
    # More datasets (same frame size and episode length) whose episodes all train alongside data's: a level
    # the model must keep knowing, such as the default model's level 0 for the guided model.
    mix: list[str] = field(default_factory=list)
    threads: int = 0  # torch CPU threads; 0 = torch's default
    autoencoder: AutoencoderStage = field(default_factory=lambda: AutoencoderStage(steps=3000, batch=32, lr=1e-3))
    teacher: StageConfig = field(default_factory=lambda: StageConfig(steps=6000, batch=16))
    student: StudentConfig = field(default_factory=lambda: StudentConfig(steps=1000, batch=8, lr=1e-4))
    decoder: DecoderStage = field(default_factory=DecoderStage)

    @staticmethod
    def load(path: str | Path, **overrides: Any) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        for name, cls in (("autoencoder", AutoencoderStage), ("teacher", StageConfig), ("student", StudentConfig),
                          ("decoder", DecoderStage)):
            section = raw.get(name) or {}
            bad = set(section) - {f.name for f in fields(cls)}
            if bad:
                raise ValueError(f"{path}: unknown keys in {name}: {sorted(bad)}")
            raw[name] = cls(**section)
        for key in ("model", "data", "out"):
            if not raw.get(key):
                raise ValueError(f"{path}: '{key}' is required")
        if not isinstance(raw.get("mix", []), list):
            raise ValueError(f"{path}: mix must be a list of dataset directories")
        if raw.get("precision", "bfloat16") not in DTYPES:
            raise ValueError(f"{path}: precision must be one of {list(DTYPES)}")
        return TrainConfig(**raw)
