"""DiT.step is a pure function of tensors, cache included: it exports to ONNX with the cache as explicit inputs
and this frame's keys/values as outputs, and onnxruntime computes what PyTorch does."""

import io
import warnings

import numpy as np
import onnxruntime as ort
import torch

from runtime.neural.dit import DiT, DiTConfig
from runtime.neural.kv_cache import KVCache

INPUTS = ["x", "t", "action", "rays", "has_pose", "past_k", "past_v", "past_pos", "past_valid", "pos"]


class Step(torch.nn.Module):
    def __init__(self, dit: DiT):
        super().__init__()
        self.dit = dit

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.dit.step(*inputs)


def test_step_exports_to_onnx_with_the_cache_as_inputs_and_outputs() -> None:
    torch.manual_seed(0)
    cfg = DiTConfig(patch=1, dim=32, depth=2, heads=2, mlp_ratio=2.0, buttons=1, sinks=1, window=2)
    dit = DiT(cfg, 4, (2, 2), zero_init=False).eval()
    cache = KVCache(cfg.depth, dit.tokens, cfg.heads, dit.head_dim, cfg.sinks, cfg.window, capacity=2)
    for _ in range(4):  # the window has rolled over; episode 1 is one frame behind
        cache.write([0, 1], torch.randn(2, 2, 4, 2, 16), torch.randn(2, 2, 4, 2, 16))
    cache.reset(1)
    cache.write([1], torch.randn(2, 1, 4, 2, 16), torch.randn(2, 1, 4, 2, 16))
    past_k, past_v = cache.view([0, 1])
    frame = (torch.randn(2, 4, 2, 2), torch.tensor([1.0, 0.5]))  # noisy latents and their times
    conditions = (torch.randn(2, cfg.action_dim), torch.randn(2, 4, 6), torch.tensor([True, False]))
    inputs = (*frame, *conditions, past_k.contiguous(), past_v.contiguous(), *cache.positions([0, 1]))

    model = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-level shapes, which are fixed here
        names = {"input_names": INPUTS, "output_names": ["velocity", "k", "v"]}
        torch.onnx.export(Step(dit), inputs, model, dynamo=False, opset_version=17, **names)
    session = ort.InferenceSession(model.getvalue(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {name: x.numpy() for name, x in zip(INPUTS, inputs)})
    with torch.no_grad():
        expected = dit.step(*inputs)
    for got, want in zip(outputs, expected):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
