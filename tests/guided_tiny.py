"""Shared by the guided-model tests: runtime/configs/tiny.yaml with guidance in the decoder and the transformer,
so a guided checkpoint runs the whole path in seconds on a CPU."""

from pathlib import Path

import yaml

from runtime.guidance import FEATURES

ROOT = Path(__file__).resolve().parents[1]


def tiny_guided_config(directory: Path) -> Path:
    """Write the tiny guided config.yaml into `directory`; returns its path."""
    raw = yaml.safe_load((ROOT / "runtime/configs/tiny.yaml").read_text())
    raw["autoencoder"].update(guidance=FEATURES, guidance_channels=[4, 4, 8, 8])
    raw["dit"].update(guidance=FEATURES, guidance_res=2, guidance_dropout=0.3)
    path = directory / "tiny_guided.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path
