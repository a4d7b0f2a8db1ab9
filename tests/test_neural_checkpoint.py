"""Checkpoint directories (runtime/neural/checkpoint.py): a round trip is bitwise exact, and every way a directory can
be broken fails at load time with a CheckpointError that names the file and the problem."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from runtime.neural.checkpoint import CheckpointError, init_checkpoint, load_checkpoint, read_config, save_checkpoint
from runtime.neural.world import NeuralWorld
from runtime.world import Action

TINY = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    start = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    init_checkpoint(path, TINY, seed=3, start_frames=start)
    return path


@pytest.fixture
def ckpt(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy each test may break."""
    return Path(shutil.copytree(pristine, tmp_path / "copy"))


def frames(path: Path) -> list[np.ndarray]:
    world = NeuralWorld(path)
    world.reset("e", seed=5, width=32, height=32)
    return [world.step({"e": Action(move=(0.3, 1.0), look=(4.0, -1.0))})["e"].pixels for _ in range(3)]


def test_round_trip_is_bitwise_exact(ckpt: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(ckpt)
    save_checkpoint(tmp_path / "again", loaded.config, loaded.autoencoder, loaded.dit, loaded.start_frames)
    for name in ("autoencoder", "dit", "start_frames"):
        a, b = load_file(ckpt / f"{name}.safetensors"), load_file(tmp_path / "again" / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_config(tmp_path / "again" / "config.yaml") == loaded.config
    for x, y in zip(frames(ckpt), frames(tmp_path / "again")):
        assert np.array_equal(x, y)


def rewrite(file: Path, change) -> None:
    tensors = load_file(file)
    change(tensors)
    save_file(tensors, file)


def edit_config(ckpt: Path, change) -> None:
    raw = yaml.safe_load((ckpt / "config.yaml").read_text())
    change(raw)
    (ckpt / "config.yaml").write_text(yaml.safe_dump(raw))


def test_missing_file(ckpt: Path) -> None:
    (ckpt / "dit.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"dit\.safetensors: missing file"):
        load_checkpoint(ckpt)


def test_truncated_file(ckpt: Path) -> None:
    file = ckpt / "autoencoder.safetensors"
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"autoencoder\.safetensors: truncated or corrupt"):
        load_checkpoint(ckpt)


def test_missing_tensor(ckpt: Path) -> None:
    rewrite(ckpt / "dit.safetensors", lambda t: t.pop("blocks.1.qkv.weight"))
    with pytest.raises(CheckpointError, match=r"dit\.safetensors: missing tensor 'blocks\.1\.qkv\.weight'"):
        load_checkpoint(ckpt)


def test_unexpected_tensor(ckpt: Path) -> None:
    rewrite(ckpt / "dit.safetensors", lambda t: t.update({"blocks.9.qkv.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'blocks\.9\.qkv\.weight'"):
        load_checkpoint(ckpt)


def test_wrong_shape(ckpt: Path) -> None:
    rewrite(ckpt / "dit.safetensors", lambda t: t.update({"pos_embed": torch.zeros(5, 32)}))
    with pytest.raises(CheckpointError, match=r"'pos_embed' has shape \[5, 32\], expected \[4, 32\]"):
        load_checkpoint(ckpt)


def test_wrong_dtype(ckpt: Path) -> None:
    name = "decoder.layers.0.bias"
    rewrite(ckpt / "autoencoder.safetensors", lambda t: t.update({name: t[name].half()}))
    with pytest.raises(CheckpointError, match=r"'decoder\.layers\.0\.bias' has dtype F16, expected F32"):
        load_checkpoint(ckpt)


def test_bad_start_frames(ckpt: Path) -> None:
    save_file({"start_frames": torch.zeros(2, 3, 16, 16, dtype=torch.uint8)}, ckpt / "start_frames.safetensors")
    expected = r"'start_frames' has shape \[2, 3, 16, 16\], expected \['N', 3, 32, 32\]"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(ckpt)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["dit"].update(depth_typo=2), r"unknown key dit\.depth_typo"),
        (lambda c: c["autoencoder"].pop("latent_channels"), r"missing key autoencoder\.latent_channels"),
        (lambda c: c["dit"].update(dim="wide"), r"dit\.dim: expected int, got 'wide'"),
        (lambda c: c["dit"].update(heads=3), r"dit: dim 32 must split into 3 heads"),
        (lambda c: c.update(format_version=2), r"format_version 2 is not supported"),
        (lambda c: c["frame"].update(width=36), r"frame 36x32 is not a multiple"),
    ],
)
def test_bad_config(ckpt: Path, change, message: str) -> None:
    edit_config(ckpt, change)
    with pytest.raises(CheckpointError, match=r"config\.yaml: " + message):
        load_checkpoint(ckpt)


def test_weights_may_be_stored_in_bfloat16(ckpt: Path) -> None:
    loaded = load_checkpoint(ckpt)
    loaded.config.weights_dtype = "bfloat16"
    save_checkpoint(ckpt, loaded.config, loaded.autoencoder, loaded.dit)
    assert load_file(ckpt / "dit.safetensors")["pos_embed"].dtype == torch.bfloat16
    assert load_checkpoint(ckpt).dit.pos_embed.dtype == torch.float32  # computation stays fp32 by default
