"""Weight-only quantisation of the Fast DiT's linear layers: int8 or fp8 (e4m3) weights with one float32 scale per
output channel, activations and everything else in the serving dtype.

    int8: w ~= q * s, q = round(w / s) in [-127, 127], s = max|w[row]| / 127   (symmetric, per output channel)
    fp8:  w ~= q * s, q = float8_e4m3fn(w / s),       s = max|w[row]| / 448   (e4m3's largest finite value)

Which layers: every nn.Linear inside the transformer blocks (self/cross-attention q, k, v, o; the MLP; the four
camera layers), ~98% of the 18.5B parameters. The patch, text, time and control embeddings, the time projection
and the head stay in the serving dtype (small, and closest to the inputs and outputs).

The matmul: q is cast to the compute dtype (exact: int8 values and e4m3 values are all representable in bf16 and
float32), multiplied as a plain F.linear, and the float32 per-channel scale applied to the output, which equals
multiplying by the dequantised weight. So no kernel beyond PyTorch's own is needed and it runs on any device; the
cast makes one transient copy of one layer's weight in the compute dtype (<= 142 MB in bf16 for the MLP). fp8
*compute* (torch._scaled_mm, Hopper) is not used: fp8 here is storage only, run dequantised, on a CPU too.
PyTorch's int8 CPU kernel (torch._weight_int8pack_mm) was 40x slower than this on the development machine.

Loading quantises tensor by tensor as the shards are read (loader.load_safetensors), so the full-precision
weights never exist all at once (tests/test_lingbot_quant.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

QUANTIZE = ("none", "int8", "fp8")
INT8_MAX, FP8_MAX = 127.0, 448.0


def fp8_dtype() -> torch.dtype | None:
    """torch.float8_e4m3fn where this torch can store it and cast it back, else None."""
    dtype = getattr(torch, "float8_e4m3fn", None)
    if dtype is None:
        return None
    try:
        torch.ones(2).to(dtype).to(torch.float32)
    except (RuntimeError, TypeError):
        return None
    return dtype


def check_quantize(kind: str) -> None:
    if kind not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, not {kind!r}")
    if kind == "fp8" and fp8_dtype() is None:
        raise ValueError(f"quantize fp8: torch {torch.__version__} has no usable float8_e4m3fn; use int8")


def quantize_weight(weight: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) weight -> (q (out, in) int8 or float8_e4m3fn, scale (out,) float32), on weight's device."""
    w = weight.float()
    amax = w.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny)
    if kind == "int8":
        scale = amax / INT8_MAX
        q = torch.round(w / scale[:, None]).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    elif kind == "fp8":
        dtype = fp8_dtype()
        if dtype is None:
            raise ValueError("this torch cannot store float8_e4m3fn")
        scale = amax / FP8_MAX
        q = (w / scale[:, None]).clamp_(-FP8_MAX, FP8_MAX).to(dtype)
    else:
        raise ValueError(f"unknown quantisation {kind!r}")
    return q, scale


class QuantLinear(nn.Module):
    """nn.Linear with a quantised weight (buffer `weight`, int8 or float8_e4m3fn), a float32 per-output-channel
    `scale` and the bias in the compute dtype. Takes any input dtype, computes in `compute_dtype`."""

    def __init__(self, in_features: int, out_features: int, bias: bool, kind: str, compute_dtype: torch.dtype,
                 device: torch.device | str | None = None):
        super().__init__()
        self.in_features, self.out_features, self.kind, self.compute_dtype = in_features, out_features, kind, \
            compute_dtype
        store = torch.int8 if kind == "int8" else fp8_dtype()
        self.register_buffer("weight", torch.empty(out_features, in_features, dtype=store, device=device))
        self.register_buffer("scale", torch.empty(out_features, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=compute_dtype, device=device),
                                 requires_grad=False) if bias else None

    def set_weight(self, weight: torch.Tensor) -> None:
        """Quantise a full-precision (out, in) weight into this layer (on the weight's device)."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"weight {tuple(weight.shape)} for a ({self.out_features}, {self.in_features}) layer")
        self.weight, self.scale = quantize_weight(weight, self.kind)

    def dequantized(self) -> torch.Tensor:
        """The weight as it multiplies: q * scale, float32 (tests, error reports)."""
        return self.weight.float() * self.scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dt = self.compute_dtype
        y = F.linear(x.to(dt), self.weight.to(dt))
        if dt == torch.float32:
            y = y.mul_(self.scale)
            return y if self.bias is None else y.add_(self.bias)
        y = y.float().mul_(self.scale)  # scale in float32: a bf16 scale would be off by up to 0.4% per channel
        if self.bias is not None:
            y = y.add_(self.bias.float())
        return y.to(dt)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, {self.kind}, compute {self.compute_dtype}"


def quantized_linears(module: nn.Module, prefix: str = "blocks.") -> list[str]:
    """Names of the nn.Linear layers the quantisation covers: those under `prefix` (the transformer blocks)."""
    return [name for name, m in module.named_modules() if isinstance(m, nn.Linear) and name.startswith(prefix)]


def swap_in_quantized(module: nn.Module, kind: str, compute_dtype: torch.dtype) -> dict[str, QuantLinear]:
    """Replace the covered nn.Linear layers of a (meta-device) module by empty QuantLinear layers, before the
    weights are loaded; returns checkpoint weight name -> its layer, for the loader."""
    check_quantize(kind)
    layers = {}
    for name in quantized_linears(module):
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        old = getattr(parent, child)
        new = QuantLinear(old.in_features, old.out_features, old.bias is not None, kind, compute_dtype, "meta")
        setattr(parent, child, new)
        layers[f"{name}.weight"] = new
    return layers


def quantize_module(module: nn.Module, kind: str) -> nn.Module:
    """Quantise the covered layers of an already loaded module in place (one layer at a time)."""
    check_quantize(kind)
    for name in quantized_linears(module):
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        old = getattr(parent, child)
        new = QuantLinear(old.in_features, old.out_features, old.bias is not None, kind, old.weight.dtype, "meta")
        new.set_weight(old.weight.detach())
        if old.bias is not None:
            new.bias = nn.Parameter(old.bias.detach(), requires_grad=False)
        setattr(parent, child, new)
    return module


def weight_bytes(module: nn.Module) -> int:
    """Bytes of all parameters and buffers (what the weights occupy)."""
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))
