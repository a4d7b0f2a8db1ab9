"""Weight-only int8 / fp8 quantisation of the Fast DiT's block linears (runtime/lingbot/fast/quant.py): close to
the plain path on the same noise, smaller, and loaded tensor by tensor so the full-precision state dict is
never in memory at once."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from lingbot_tiny import HEIGHT, WIDTH, tiny_release

from runtime.lingbot.fast.config import find_dit_dir
from runtime.lingbot.fast.loader import shapes_of
from runtime.lingbot.fast.quant import QuantLinear, fp8_dtype, quantize_weight, quantized_linears, weight_bytes
from runtime.lingbot.fast.tiny import tiny_config, write_tiny_checkpoint
from runtime.lingbot.fast.world import LingBotWorld
from runtime.world import Action

KINDS = ["int8"] + (["fp8"] if fp8_dtype() is not None else [])


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return tiny_release(tmp_path_factory.mktemp("lingbot") / "release")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run(path, seed=4, chunks=3, **options):
    """Frames of `chunks` chunks walking and turning, and the latents the VAE was given."""
    world = LingBotWorld(path, **options)
    latents = []
    decode = world.vae.decode_chunk
    world.vae.decode_chunk = lambda z, stream: latents.append(z.clone()) or decode(z, stream)
    world.reset("a", seed, WIDTH, HEIGHT)
    action = Action(move=(0.0, 1.0), look=(1.0, 0.0))
    frames = [world.step({"a": action})["a"].pixels for _ in range(9 + 12 * (chunks - 1))]
    return world, np.stack(frames), torch.cat(latents, dim=2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantized_linear_matches_its_dequantized_weight(kind, dtype):
    torch.manual_seed(0)
    dense = nn.Linear(96, 40)
    q = QuantLinear(96, 40, True, kind, dtype)
    q.set_weight(dense.weight.detach())
    q.bias = nn.Parameter(dense.bias.detach().to(dtype), requires_grad=False)
    x = torch.randn(7, 96)
    with torch.no_grad():
        exact = nn.functional.linear(x, q.dequantized(), dense.bias.to(dtype).float())  # the quantised weight, exactly
        got = q(x)
        assert got.dtype == dtype and got.shape == (7, 40)
        torch.testing.assert_close(got.float(), exact, atol=1e-5 if dtype == torch.float32 else 0.05, rtol=1e-2)
        # and the quantised weight is close to the original: per element within half a step (int8) / 2^-4 (e4m3)
        err = (q.dequantized() - dense.weight).abs()
        step = dense.weight.abs().amax(1, keepdim=True) / 127
        assert torch.all(err <= (step / 2 + 1e-7 if kind == "int8" else dense.weight.abs() / 16 + step / 8))
    assert q.weight.dtype == (torch.int8 if kind == "int8" else fp8_dtype()) and q.scale.dtype == torch.float32


def test_quantize_weight_is_symmetric_per_output_channel():
    w = torch.tensor([[1.0, -0.5, 0.25], [100.0, 50.0, -100.0]])
    q, scale = quantize_weight(w, "int8")
    assert q.tolist() == [[127, -64, 32], [127, 64, -127]]
    torch.testing.assert_close(scale, torch.tensor([1 / 127, 100 / 127]))


@pytest.mark.parametrize("kind", KINDS)
def test_quantized_world_stays_close_to_the_plain_path(release, kind):
    plain_world, plain, plain_z = run(release)
    world, frames, z = run(release, quantize=kind)
    _, other_seed, _ = run(release, seed=5)  # what "unrelated frames" scores, for scale
    covered = quantized_linears(plain_world.dit)
    assert covered and all(isinstance(world.dit.get_submodule(n), QuantLinear) for n in covered)
    assert not any(isinstance(m, QuantLinear) for m in plain_world.dit.modules())
    frame_db, latent_err = psnr(frames, plain), float((z - plain_z).norm() / plain_z.norm())
    print(f"\n{kind}: frames PSNR {frame_db:.1f} dB vs plain float32 (other seed: {psnr(other_seed, plain):.1f} dB), "
          f"latent relative error {latent_err:.4f}, DiT weights {weight_bytes(world.dit)} vs "
          f"{weight_bytes(plain_world.dit)} bytes")
    assert frame_db > (50 if kind == "int8" else 42) and latent_err < (0.01 if kind == "int8" else 0.04)
    assert psnr(other_seed, plain) < 30  # the threshold tells the same video from another one
    assert weight_bytes(world.dit) < 0.75 * weight_bytes(plain_world.dit)


def test_unknown_quantization_is_refused(release):
    with pytest.raises(ValueError, match="quantize must be one of none, int8, fp8"):
        LingBotWorld(release, quantize="int4")


PEAK_RSS = """
import json, sys, torch
from pathlib import Path
from runtime.lingbot.fast.config import find_dit_dir, read_dit_config
from runtime.lingbot.fast.dit import WanFastDiT
from runtime.lingbot.fast.loader import load_safetensors
from runtime.lingbot.fast.quant import weight_bytes

def status(key):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024

dit_dir = find_dit_dir(Path(sys.argv[1]))
cfg = read_dit_config(dit_dir).__class__(**{**read_dit_config(dit_dir).__dict__, "text_dim": 32})
with torch.device("meta"):
    model = WanFastDiT(cfg)
before = status("VmRSS")
try:
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS
except OSError:
    pass
load_safetensors(model, dit_dir, "cpu", torch.float32, quantize=sys.argv[2])
print(json.dumps({"peak": status("VmHWM") - before, "weights": weight_bytes(model)}))
"""


def peak_rss_of_load(path, quantize: str) -> dict:
    """Peak resident memory (VmHWM, anonymous and file-backed pages) a fresh process gains loading the DiT."""
    # glibc hands a freed block back to the system only if it was mmap'd; past the first free it raises its
    # mmap threshold (up to 32 MB), so the test's ~1 MB tensors would land on the heap, and freed ones stay
    # resident there. The release's tensors (100-280 MB) are always mmap'd. A fixed threshold gives the small
    # tensors the same treatment.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), quantize], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1], env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loading_quantizes_tensor_by_tensor_below_one_copy_of_the_weights(tmp_path, kind="int8"):
    # (fp8 loads through the same code.) 8 blocks of width 256 in 2 MB shards: the proportions of the release
    # (block linears ~95% of the weights, a shard a fraction of the whole) at 47 MB of float32, enough for the
    # process's peak RSS to tell
    cfg = dataclasses.replace(tiny_config(), dim=256, ffn_dim=1024, num_heads=4, num_layers=8)
    path = write_tiny_checkpoint(tmp_path / "release", config=cfg, shard_bytes=2 << 20)
    dit_dir = find_dit_dir(path)
    shards = sorted(dit_dir.glob("*.safetensors"))
    total = int(sum(np.prod(shape) * 4 for shape in shapes_of(dit_dir).values()))  # one float32 copy
    got = peak_rss_of_load(path, kind)
    print(f"\n{kind} load: one float32 copy {total / 1e6:.1f} MB in {len(shards)} shards; peak RSS gained "
          f"{got['peak'] / 1e6:.1f} MB ({got['peak'] / total:.0%}), weights after {got['weights'] / 1e6:.1f} MB")
    assert len(shards) >= 8 and got["weights"] < 0.35 * total
    assert got["peak"] < 0.6 * total  # never the full float32 state dict: the weights so far + about one shard
