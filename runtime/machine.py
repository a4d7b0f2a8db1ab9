"""What this machine computes with: the CPU's model, cores and the instruction sets that decide which kernels
run fast (AVX2, AVX-512, native bfloat16, int8 dot products), as benchmarks report them and "auto" reads them.

The development machines differ (AMD EPYC with AVX-512 BF16, Intel Xeon with AMX; users' laptops mostly AVX2
only), so every figure is quoted with this record next to it.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


@functools.cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return model or platform.machine(), flags


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    return _cpuinfo()[1]


def native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); others emulate it, slower than fp32.
    An ISA cap in the environment (ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA below AVX-512) counts as no."""
    capped = os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default") or (
        os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper().startswith(("AVX2", "SSE")))
    return not capped and bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def describe() -> dict:
    """The record benchmarks print: CPU model, cores torch uses, torch's kernel level, the flags that matter."""
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "native_bf16": native_bf16(),
        "isa_cap": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
        "torch": torch.__version__,
    }
