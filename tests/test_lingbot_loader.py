"""The loader reads the released layout (sharded safetensors DiT, .pth VAE and umT5, tokenizer) and says
precisely which tensor is missing, misshapen or of the wrong dtype; prompts are encoded once."""

import json
import shutil

import pytest
import torch
from lingbot_tiny import tiny_release
from safetensors.torch import load_file, save_file

from bridge.server.worlds import load_world
from runtime.lingbot.fast.config import DIT_FOLDERS, DIT_INDEX, T5_FILE, VAE_FILE
from runtime.lingbot.fast.loader import CheckpointError
from runtime.lingbot.fast.world import LingBotWorld

SHARD2 = "diffusion_pytorch_model-00002-of-00002.safetensors"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("lingbot") / "release")


@pytest.fixture
def copy(release, tmp_path):
    return shutil.copytree(release, tmp_path / "copy")


def edit_shard(path, edit):
    """Rewrite shard 2 of the DiT with `edit(state)` applied."""
    file = path / DIT_FOLDERS[0] / SHARD2
    state = load_file(file)
    edit(state)
    save_file(state, str(file))
    return state


def test_loads_the_release_layout(release):
    world = load_world(f"lingbot-fast:{release}")
    assert isinstance(world, LingBotWorld)
    assert world.config.dim == 64 and world.config.num_layers == 2 and world.config.text_dim == 32
    assert world.config.control_dim == 6 and world.frame_size(640, 480) == (64, 32)
    index = json.loads((release / DIT_FOLDERS[0] / DIT_INDEX).read_text())["weight_map"]
    assert "blocks.1.self_attn.q.weight" in index and "blocks.0.cam_scale_layer.weight" in index
    assert set(index.values()) == {"diffusion_pytorch_model-00001-of-00002.safetensors", SHARD2}


def test_missing_shard_is_named(copy):
    (copy / DIT_FOLDERS[0] / SHARD2).unlink()
    with pytest.raises(CheckpointError, match=rf"missing shard {SHARD2} \(holds \d+ tensors, e\.g\. \S+\)"):
        LingBotWorld(copy)


def test_wrong_shape_names_the_tensor(copy):
    def widen(state):
        name = next(n for n in state if n.endswith("self_attn.q.weight"))
        state[name] = torch.zeros(64, 32)
        widen.name = name

    edit_shard(copy, widen)
    with pytest.raises(CheckpointError) as e:
        LingBotWorld(copy)
    assert f"{widen.name}: shape (64, 32) in the checkpoint, the model expects (64, 64)" in str(e.value)


def test_wrong_dtype_names_the_tensor(copy):
    names = {}

    def retype(state):
        ints, halves = sorted(state)[:2]
        state[ints] = state[ints].to(torch.int64)
        state[halves] = state[halves].to(torch.float16)
        names.update(ints=ints, halves=halves)

    edit_shard(copy, retype)
    with pytest.raises(CheckpointError) as e:
        LingBotWorld(copy)
    msg = str(e.value)
    assert f"{names['ints']}: dtype torch.int64 in the checkpoint, expected a floating-point tensor" in msg
    assert f"{names['halves']}: dtype torch.float16, while the rest of the checkpoint is torch.float32" in msg


def test_missing_and_unexpected_tensors_in_the_vae(copy):
    state = torch.load(copy / VAE_FILE, weights_only=True)
    state["decoder.head.9.weight"] = state.pop("decoder.head.2.weight")
    torch.save(state, copy / VAE_FILE)
    with pytest.raises(CheckpointError, match=r"VAE .*\n.*missing tensors \(1\): decoder\.head\.2\.weight"
                                              r"\n.*unexpected tensors \(1\): decoder\.head\.9\.weight"):
        LingBotWorld(copy)


def test_missing_text_encoder_file(copy):
    (copy / T5_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"text encoder: .*models_t5_umt5-xxl-enc-bf16\.pth is missing"):
        LingBotWorld(copy)


def test_each_prompt_is_encoded_once(release):
    world = LingBotWorld(release)  # the reset encodes worldbridge.json's prompt
    world.reset("a", 0, 64, 32)
    world.reset("b", 0, 64, 32)
    assert world.text.encoded == 1
    world.set_prompt("a", "a snowy castle at night")
    world.set_prompt("b", "a snowy castle at night")
    assert world.text.encoded == 2
    ids = world.text.tokenizer("a  snowy\tcastle at night")
    assert ids[-1] == 1 and len(ids) == 6  # words (unknown ones too) + </s>
    states = world.text("a snowy castle at night")
    assert states.shape == (6, 32)  # only the real tokens' states; the DiT pads them to text_len


def test_act_variant_in_bfloat16(tmp_path):
    # an "act" checkpoint (7 control channels: ray directions + W/A/S/D) served in bf16 stays close to float32
    from runtime.world import Action

    path = tiny_release(tmp_path / "act", control_dim=7)
    frames = {}
    for dtype in ("float32", "bfloat16"):
        world = LingBotWorld(path, dtype=dtype)
        assert world.config.control_dim == 7
        world.reset("a", 4, 64, 32)
        frames[dtype] = [world.step({"a": Action(move=(0.0, 1.0))})["a"].pixels.astype(int) for _ in range(10)]
    diff = [abs(a - b).mean() for a, b in zip(frames["float32"], frames["bfloat16"])]
    assert max(diff) < 8, diff  # out of 255
