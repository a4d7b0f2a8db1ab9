"""Floating-point formats by name: the one table, and what "auto" means on this machine.

Compute dtypes are what a model runs in (autocast, or weights cast once); storage dtypes are what a checkpoint
keeps on disk. float16 compute is CUDA-only: CPUs emulate it. torch is imported only when a dtype is made, so
the CLI can offer the names without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.machine import native_bf16

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16", "float16")
DTYPE_CHOICES = ("auto", *DTYPES)  # what --dtype accepts


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of one of DTYPES; ValueError for any other name."""
    import torch

    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {name!r}")
    return getattr(torch, name)


def fastest_dtype(device: str | torch.device) -> str:
    """bfloat16 where it runs natively (CUDA; CPUs with AVX-512 BF16 or AMX, ~1.4x float32 on the development
    machine at a 50 dB PSNR cost), else float32."""
    return "bfloat16" if str(device).startswith("cuda") or native_bf16() else "float32"


def compute_dtype(name: str, device: str | torch.device) -> torch.dtype:
    """The torch dtype a model computes in for a --dtype name ("auto" = fastest_dtype)."""
    if name == "auto":
        name = fastest_dtype(device)
    if name == "float16" and not str(device).startswith("cuda"):
        raise ValueError("dtype float16 runs on CUDA only; use float32 or bfloat16 on a CPU")
    return torch_dtype(name)
