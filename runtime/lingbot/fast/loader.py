"""Load released weight files into our modules, checking every tensor by name, shape and dtype first.

Two containers appear in the release: a diffusers-style sharded safetensors set (an index JSON mapping each
tensor name to its shard file) for the DiT, and plain torch.save state dicts (.pth) for the VAE and the text
encoder. Both are checked against the module's own state_dict before a byte is copied, and every problem is
reported at once, by tensor name:

    missing shard diffusion_pytorch_model-00002-of-00002.safetensors (holds 12 tensors, e.g. blocks.1.ffn.0.weight)
    blocks.1.self_attn.q.weight: shape (64, 32) in the checkpoint, the model expects (64, 64)
    blocks.0.norm3.bias: dtype torch.int64 in the checkpoint, expected a floating-point tensor
    head.head.weight: dtype torch.float16, while the rest of the checkpoint is torch.bfloat16
    missing tensors: blocks.1.cross_attn.k.weight, ...

Modules are built on the meta device and receive the loaded tensors in place, so a 14B-parameter DiT is never
allocated twice; the DiT's shards are read one tensor at a time (cast or quantised as each arrives), so the host
never holds a whole shard, let alone the whole state dict. .pth files are read with torch.load(weights_only=True):
tensors only, no pickled code.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import safe_open

from runtime.lingbot.fast.config import DIT_INDEX, DIT_SINGLE
from runtime.lingbot.fast.quant import swap_in_quantized
from runtime.world import CheckpointError

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}


def shard_map(folder: Path) -> dict[str, Path]:
    """tensor name -> shard file of a diffusers safetensors folder (index + shards, or one file)."""
    folder = Path(folder)
    index = folder / DIT_INDEX
    if not index.is_file():
        single = folder / DIT_SINGLE
        with safe_open(single, framework="pt") as f:
            return {name: single for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index}: not a safetensors index (needs a 'weight_map' object): {e}") from e
    by_file: dict[str, list[str]] = {}
    for name, file in weight_map.items():
        by_file.setdefault(file, []).append(name)
    problems = [
        f"missing shard {file} (holds {len(names)} tensors, e.g. {sorted(names)[0]})"
        for file, names in sorted(by_file.items())
        if not (folder / file).is_file()
    ]
    if problems:
        raise CheckpointError(f"{folder}: " + "; ".join(problems))
    return {name: folder / file for name, file in weight_map.items()}


def header(files: dict[str, Path]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name -> (shape, dtype) of every tensor, read from the safetensors headers without loading data."""
    out: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    by_file: dict[Path, list[str]] = {}
    for name, file in files.items():
        by_file.setdefault(file, []).append(name)
    for file, names in by_file.items():
        with safe_open(file, framework="pt") as f:
            present = set(f.keys())
            for name in names:
                if name not in present:
                    raise CheckpointError(f"{file.name}: the index says it holds {name}, but it does not")
                s = f.get_slice(name)
                out[name] = (tuple(s.get_shape()), _SAFETENSORS_DTYPES.get(s.get_dtype(), torch.uint8))
    return out


def check(
    module: nn.Module, found: dict[str, tuple[tuple[int, ...], torch.dtype]], what: str, prefix: str = ""
) -> None:
    """Raise CheckpointError listing every missing, unexpected, misshapen or mistyped tensor of `found`
    (name -> (shape, dtype)) against `module`'s parameters. `prefix` is stripped from checkpoint names."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k.removeprefix(prefix): v for k, v in found.items()}
    problems = []
    missing = sorted(set(expected) - set(found))
    if missing:
        problems.append(f"missing tensors ({len(missing)}): {', '.join(missing[:12])}"
                        + (" ..." if len(missing) > 12 else ""))
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}): {', '.join(unexpected[:12])}"
                        + (" ..." if len(unexpected) > 12 else ""))
    float_dtypes = Counter(dt for _, dt in found.values() if dt.is_floating_point)
    common = float_dtypes.most_common(1)[0][0] if float_dtypes else None
    for name in sorted(set(expected) & set(found)):
        shape, dtype = found[name]
        if shape != expected[name]:
            problems.append(f"{name}: shape {shape} in the checkpoint, the model expects {expected[name]}")
        if not dtype.is_floating_point:
            problems.append(f"{name}: dtype {dtype} in the checkpoint, expected a floating-point tensor")
        elif dtype != common and float_dtypes[dtype] * 20 < sum(float_dtypes.values()):
            problems.append(f"{name}: dtype {dtype}, while the rest of the checkpoint is {common}")
    if problems:
        raise CheckpointError(f"{what}: " + "\n  ".join(["does not match the architecture:", *problems]))


def load_safetensors(
    module: nn.Module, folder: Path, device: torch.device | str, dtype: torch.dtype, what: str = "DiT",
    quantize: str = "none",
) -> nn.Module:
    """Fill a (meta-device) module from a sharded safetensors folder, one tensor at a time: each tensor is read,
    cast to `dtype` (or, for the layers quant.py covers when `quantize` is "int8"/"fp8", quantised) on `device`
    and put in place before the next is read. Host memory never holds more than the tensor in transit beyond
    what the module keeps and the shard being read (safetensors maps a shard's file while it is open; tensors
    read in the file's dtype on a CPU are views of that mapping, copied out when quantising so that the mapping
    can go), so with quantisation the peak stays below one full-precision copy of the weights."""
    files = shard_map(folder)
    check(module, header(files), f"{what} ({folder})")
    quantized = {} if quantize == "none" else swap_in_quantized(module, quantize, dtype)
    by_file: dict[Path, list[str]] = {}
    for name, file in files.items():
        by_file.setdefault(file, []).append(name)
    for file, names in by_file.items():
        with safe_open(file, framework="pt", device="cpu") as f:
            for name in names:
                tensor = f.get_tensor(name)
                if name in quantized:
                    quantized[name].set_weight(tensor.to(device))
                else:
                    value = tensor.to(device=device, dtype=dtype)
                    if quantized and value.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
                        value = value.clone()  # a view would keep the whole shard's file mapping alive
                    _assign(module, name, value)
                    del value
                del tensor
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{what} ({folder}): not loaded: {', '.join(left[:12])}")
    return module


def _assign(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Put `tensor` in place of parameter or buffer `name` (dotted) of `module`."""
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name)
    if leaf in owner._parameters:
        owner._parameters[leaf] = nn.Parameter(tensor, requires_grad=False)
    else:
        owner._buffers[leaf] = tensor


def load_pth(module: nn.Module, path: Path, device: torch.device | str, dtype: torch.dtype, what: str) -> nn.Module:
    """Fill a (meta-device) module from a torch.save state dict, checked first."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: {path} is missing")
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what}: {path} is not a state dict of tensors")
    prefix = "module." if state and all(k.startswith("module.") for k in state) else ""
    check(module, {k: (tuple(v.shape), v.dtype) for k, v in state.items()}, f"{what} ({path})", prefix)
    module.load_state_dict({k.removeprefix(prefix): v.to(device=device, dtype=dtype) for k, v in state.items()},
                           assign=True)
    return module


def shapes_of(folder_or_file: Path) -> dict[str, tuple[int, ...]]:
    """name -> shape of a checkpoint without loading it (to size a module before it is built)."""
    p = Path(folder_or_file)
    if p.is_dir():
        return {k: v[0] for k, v in header(shard_map(p)).items()}
    state = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    prefix = "module." if state and all(k.startswith("module.") for k in state) else ""
    return {k.removeprefix(prefix): tuple(v.shape) for k, v in state.items()}
