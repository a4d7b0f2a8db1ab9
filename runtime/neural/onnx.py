"""The neural world on ONNX Runtime: the same model and the same Python around it, other kernels.

A checkpoint exports to three graphs, pure functions of tensors with the KV cache as explicit inputs:

    step.onnx      DiT.step: x (b, C, h, w) at time t (b,), action (b, A), rays (b, N, 6), has_pose (b,),
                   past_k, past_v (L, b, F, N, H, hd), past_pos (b, F), past_valid (b, F), pos (b,)
                   ->  velocity (b, C, h, w), this frame's k, v (L, b, N, H, hd)
    decode.onnx    latent (b, C, h, w)  ->  pixels (b, H, W, 3) uint8
    encode.onnx    frames (b, 3, H, W) in [-1, 1]  ->  latent

OnnxBackend runs those graphs for NeuralWorld (runtime/neural/world.py keeps the episodes, the cache and the
conditions; runtime/neural/backend.py is the contract), so both backends share every line that is not a kernel,
and parity is tested on whole episodes. Each frame is steps + 1 runs of step.onnx (the denoising steps, then the
pass at t = 0 whose k, v enter the cache). `quantize="int8"` stores the transformer's weights as int8 (dynamic
quantization of every MatMul/Gemm: activations quantized per call), ONNX Runtime's fastest CPU path; the
autoencoder stays float32.
manifest.json records what an export was made from, so a stale export is never served.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from runtime.camera import intrinsics
from runtime.neural.autoencoder import Autoencoder, to_uint8
from runtime.neural.checkpoint import checkpoint_sha256, load_checkpoint
from runtime.neural.dit import DiT, plucker_rays
from runtime.neural.generate import commit
from runtime.neural.kv_cache import KVCache
from runtime.neural.sampler import sample, timesteps

log = logging.getLogger(__name__)

GRAPHS = ("step", "decode", "encode")
QUANTIZE = (None, "int8")
STEP_INPUTS = ["x", "t", "action", "rays", "has_pose", "past_k", "past_v", "past_pos", "past_valid", "pos"]
OPSET = 17


class Step(nn.Module):
    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.dit.step(*inputs)


class Decode(nn.Module):
    def __init__(self, autoencoder: Autoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.autoencoder.decode(latent))


class Encode(nn.Module):
    def __init__(self, autoencoder: Autoencoder):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(frames)


def fingerprint(model_dir: str | Path, steps: int, quantize: str | None) -> dict:
    """What an export depends on: the checkpoint's bytes, the denoising steps, the quantization."""
    return {"checkpoint_sha256": checkpoint_sha256(model_dir), "steps": steps, "quantize": quantize, "opset": OPSET}


def export_onnx(
    model_dir: str | Path, out_dir: str | Path, steps: int | None = None, quantize: str | None = None
) -> Path:
    """Export a checkpoint directory's model to `out_dir` (the three graphs + manifest.json); returns out_dir."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}, not {quantize!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-level shapes; the batch axis stays dynamic
        ckpt = load_checkpoint(model_dir)  # plain fp32 modules, no channels_last
        cfg, dit = ckpt.config, ckpt.dit
        if cfg.dit.guidance or cfg.autoencoder.guidance or cfg.autoencoder.look or cfg.dit.memory:
            raise ValueError(f"{model_dir} has guidance or memory: the ONNX backend runs models without them; use "
                             "--backend torch")
        steps = len(timesteps(steps or cfg.sampler.steps, cfg.sampler.shift)) - 1
        # two episodes with one committed frame each; one with a pose and one without, so both conditioning
        # paths are traced
        cache = KVCache(cfg.dit.depth, dit.tokens, cfg.dit.heads, dit.head_dim, cfg.dit.sinks, cfg.dit.window, 2)
        noise = torch.randn(2, cfg.autoencoder.latent_channels, *cfg.latent_size)
        lens = torch.tensor([intrinsics(cfg.frame.width, cfg.frame.height, cfg.frame.fov_deg)] * 2)
        size = (cfg.frame.width, cfg.frame.height)
        rays = plucker_rays(torch.eye(4, dtype=torch.float64).expand(2, 4, 4), lens, size, dit.grid)
        action, has_pose = torch.randn(2, cfg.dit.action_dim), torch.tensor([True, False])
        with torch.inference_mode():
            commit(dit, cache, [0, 1], noise, action, rays, has_pose)
        past_k, past_v = cache.view([0, 1])
        conditions = (action, rays, has_pose, past_k.contiguous(), past_v.contiguous(), *cache.positions([0, 1]))
        frames = torch.rand(2, 3, cfg.frame.height, cfg.frame.width) * 2 - 1
        t = torch.tensor([1.0, 0.5])
        graphs = {
            "step": (Step(ckpt.dit), (noise, t, *conditions), STEP_INPUTS, ["velocity", "k", "v"]),
            "decode": (Decode(ckpt.autoencoder), (noise,), ["latent"], ["pixels"]),
            "encode": (Encode(ckpt.autoencoder), (frames,), ["frames"], ["latent"]),
        }
        for name, (module, inputs, input_names, output_names) in graphs.items():
            # the batch is a dynamic axis: the first, except in the cache's (L, b, ...) tensors
            axes = {n: {1 if n in ("past_k", "past_v", "k", "v") else 0: "b"} for n in input_names + output_names}
            torch.onnx.export(module.eval(), inputs, str(out / f"{name}.onnx"), dynamo=False, opset_version=OPSET,
                              input_names=input_names, output_names=output_names, dynamic_axes=axes)
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32 = out / "step.fp32.onnx"
        (out / "step.onnx").rename(fp32)
        root = logging.getLogger()
        level, root.level = root.level, logging.ERROR  # the quantizer logs every tensor on the root logger
        try:
            quantize_dynamic(fp32, out / "step.onnx", weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"])
        finally:
            root.setLevel(level)
        fp32.unlink()
    (out / "manifest.json").write_text(json.dumps(fingerprint(model_dir, steps, quantize), indent=1))
    return out


class OnnxBackend:
    """The encoder, transformer and decoder in ONNX Runtime (CPU here; CUDA when onnxruntime-gpu is installed and
    device is cuda). Tensors in and out live on the host."""

    def __init__(
        self,
        path: str | Path,
        steps: int,
        quantize: str | None = None,
        device: str = "cpu",
        export_dir: str | Path | None = None,
    ):
        """steps: denoising steps per frame (part of the export's fingerprint); export_dir: where the graphs are
        (default <path>/onnx, or <path>/onnx-int8); exported there first when missing or made from something
        else (a different checkpoint, steps or quantization)."""
        import onnxruntime as ort

        export = Path(export_dir) if export_dir else Path(path) / ("onnx" if quantize is None else f"onnx-{quantize}")
        manifest = export / "manifest.json"
        wanted = fingerprint(path, steps, quantize)
        if not manifest.is_file() or json.loads(manifest.read_text()) != wanted:
            log.warning("exporting %s to ONNX in %s", path, export)
            export_onnx(path, export, steps, quantize)
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError("device cuda needs onnxruntime-gpu (pip install 'worldbridge[gpu]')")
            index = int(str(device).partition(":")[2] or 0)
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Between graph runs torch does the glue (conditions, sampler arithmetic); threads left spinning by either
        # runtime steal the cores from the other: measured 71 -> 38 ms per frame on 2 cores without spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {
            name: ort.InferenceSession(str(export / f"{name}.onnx"), options, providers=providers) for name in GRAPHS
        }

    def _run(self, graph: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        session = self.sessions[graph]
        return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})

    @staticmethod
    def _feeds(cache: KVCache, slots: list[int], conditions: tuple) -> list[np.ndarray]:
        """The conditions and the slots' cache, as the graphs take them (contiguous host arrays)."""
        past_k, past_v = cache.view(slots)
        tensors = [*conditions[:3], past_k, past_v, *cache.positions(slots)]  # the 4th, guidance: never here
        return [np.ascontiguousarray(t.numpy()) for t in tensors]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run("encode", [np.ascontiguousarray(x.numpy())])[0])

    def decode(self, latent: torch.Tensor, guidance: torch.Tensor | None = None,
               look: torch.Tensor | None = None) -> np.ndarray:
        return self._run("decode", [latent.numpy()])[0]

    def generate(self, cache: KVCache, slots: list[int], noise: torch.Tensor, conditions: tuple,
                 schedule: list[float], observed: torch.Tensor | None = None,
                 begin: torch.Tensor | None = None) -> torch.Tensor:
        feeds = self._feeds(cache, slots, conditions)
        times = np.ones(len(slots), dtype=np.float32)

        def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
            return torch.from_numpy(self._run("step", [x.numpy(), times * t, *feeds])[0])

        latent = sample(velocity, noise, schedule, begin)
        self._write(cache, slots, latent if observed is None else observed, feeds)
        return latent

    def commit(self, cache: KVCache, slots: list[int], latent: torch.Tensor, conditions: tuple) -> None:
        self._write(cache, slots, latent, self._feeds(cache, slots, conditions))

    def _write(self, cache: KVCache, slots: list[int], latent: torch.Tensor, feeds: list[np.ndarray]) -> None:
        """The pass at t = 0 over finished latents; its keys and values enter the cache."""
        t = np.zeros(len(slots), dtype=np.float32)
        _, k, v = self._run("step", [np.ascontiguousarray(latent.numpy()), t, *feeds])
        cache.write(slots, torch.from_numpy(k), torch.from_numpy(v))
