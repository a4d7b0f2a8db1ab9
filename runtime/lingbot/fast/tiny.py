"""Write a tiny random LingBot-World-Fast checkpoint in the released layout (runtime/lingbot/fast/config.py).

Same architecture and tensor names as the release, every size small: a 2-layer DiT of width 64, a VAE of
base width 8, a 2-layer umT5 of width 32 with a word-level tokenizer. Used by the tests to run the whole
path (loader -> DiT -> VAE -> daemon -> client) on a CPU, and handy to try a daemon set-up without the
multi-GB download:

    python -m runtime.lingbot.fast.tiny /tmp/tiny-lingbot && worldbridge serve --world lingbot-fast:/tmp/tiny-lingbot
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from runtime.lingbot.fast.config import DIT_FOLDERS, DIT_INDEX, T5_FILE, TOKENIZER_DIR, VAE_FILE, FastDiTConfig
from runtime.lingbot.fast.dit import WanFastDiT
from runtime.lingbot.fast.text import T5Encoder
from runtime.lingbot.fast.vae import WanVAE

WORDS = ("a", "the", "walk", "through", "forest", "city", "street", "castle", "sunny", "night", "rain", "snow", "red",
         "green", "blue", "old", "new")


def tiny_config(control_dim: int = 6) -> FastDiTConfig:
    return FastDiTConfig(dim=64, ffn_dim=128, freq_dim=32, text_dim=32, num_heads=2, num_layers=2, text_len=16,
                         control_dim=control_dim)


def write_tokenizer(folder: Path) -> None:
    """A word-level tokenizer.json with umT5's special tokens (<pad> 0, </s> 1, <unk> 2) and </s> appended."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))


def write_tiny_checkpoint(path: str | Path, seed: int = 0, control_dim: int = 6, shards: int = 2,
                          dtype: torch.dtype = torch.float32, config: FastDiTConfig | None = None,
                          shard_bytes: int | None = None) -> Path:
    """Write the whole release layout under `path`; returns it. Weights random (seeded), modulation included.
    config: other DiT sizes (text_dim must stay 32, the tiny umT5's width); shard_bytes: split the DiT into
    shards of about that many bytes, in state-dict order, as diffusers' max_shard_size does (else `shards`
    shards of equally many tensors)."""
    path = Path(path)
    cfg = config or tiny_config(control_dim)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        dit = WanFastDiT(cfg)
        for p in dit.parameters():  # default inits leave biases small; give every tensor some signal
            if p.dim() == 1:
                torch.nn.init.normal_(p, std=0.02)
        vae = WanVAE(dim=8)
        for name, p in vae.named_parameters():
            if name.endswith("bias"):
                torch.nn.init.normal_(p, std=0.02)
        t5 = T5Encoder(vocab=len(WORDS) + 3, dim=32, dim_attn=32, dim_ffn=48, heads=4, layers=2)
    dit_dir = path / DIT_FOLDERS[0]
    dit_dir.mkdir(parents=True, exist_ok=True)
    _write_config(dit_dir, cfg)
    state = {k: v.to(dtype).contiguous() for k, v in dit.state_dict().items()}
    weight_map = {}
    groups = _shard_groups(state, shards, shard_bytes)
    for s, group in enumerate(groups):
        file = f"diffusion_pytorch_model-{s + 1:05d}-of-{len(groups):05d}.safetensors"
        part = {n: state[n] for n in group}
        save_file(part, str(dit_dir / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    total = sum(v.numel() * v.element_size() for v in state.values())
    (dit_dir / DIT_INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    torch.save(vae.state_dict(), path / VAE_FILE)
    torch.save({k: v.to(torch.bfloat16) for k, v in t5.state_dict().items()}, path / T5_FILE)
    write_tokenizer(path / TOKENIZER_DIR)
    return path


def write_random_checkpoint(path: str | Path, cfg: FastDiTConfig | None = None, vae_width: int = 96,
                            t5_layers: int = 1, seed: int = 0, dtype: torch.dtype = torch.bfloat16,
                            shard_bytes: int = 4 << 30, device: str = "cpu") -> Path:
    """The release layout with random weights at any size, by default the release's (the 18.5B DiT of
    FastDiTConfig's defaults, a width-96 VAE): for benchmarks without the download. The DiT is written tensor by
    tensor from the shapes (never a whole model in memory), generated on `device` (a GPU makes the 37 GB in
    seconds); weights ~ N(0, 1/fan_in), norm weights 1, biases ~ N(0, 0.02), modulations ~ N(0, 1/dim). The
    umT5 keeps the width the DiT reads (text_dim) but only `t5_layers` layers and the tiny word vocabulary: its
    speed is not what the benchmark measures (one encode per prompt)."""
    path = Path(path)
    cfg = cfg or FastDiTConfig()
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in WanFastDiT(cfg).state_dict().items()}
    gen = torch.Generator(device=device).manual_seed(seed)

    def tensor(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        if "norm" in name.rsplit(".", 2)[-2] and name.endswith("weight"):
            return torch.ones(shape, dtype=dtype)
        std = 0.02 if len(shape) == 1 else (cfg.dim**-0.5 if "modulation" in name else
                                            (math.prod(shape[1:])) ** -0.5)
        return (torch.randn(shape, generator=gen, device=device) * std).to(dtype).cpu()

    dit_dir = path / DIT_FOLDERS[0]
    dit_dir.mkdir(parents=True, exist_ok=True)
    _write_config(dit_dir, cfg)
    sizes = {n: math.prod(sh) * torch.tensor([], dtype=dtype).element_size() for n, sh in shapes.items()}
    groups, size = [[]], 0
    for n in shapes:
        if groups[-1] and size + sizes[n] > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(n)
        size += sizes[n]
    weight_map = {}
    for s, group in enumerate(groups):
        file = f"diffusion_pytorch_model-{s + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensor(n, shapes[n]) for n in group}, str(dit_dir / file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, file))
    (dit_dir / DIT_INDEX).write_text(json.dumps({"metadata": {"total_size": sum(sizes.values())},
                                                 "weight_map": weight_map}))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = WanVAE(dim=vae_width)
        torch.save({k: v.to(dtype) for k, v in vae.state_dict().items()}, path / VAE_FILE)
        del vae
        d = cfg.text_dim
        t5 = T5Encoder(vocab=len(WORDS) + 3, dim=d, dim_attn=d, dim_ffn=d * 5 // 2, heads=max(1, d // 64),
                       layers=t5_layers)
        torch.save({k: v.to(torch.bfloat16) for k, v in t5.state_dict().items()}, path / T5_FILE)
    write_tokenizer(path / TOKENIZER_DIR)
    return path


def _write_config(dit_dir: Path, cfg: FastDiTConfig) -> None:
    config = {"_class_name": "WanModelFast", "_diffusers_version": "0.35.1", "model_type": cfg.model_type,
              "text_len": cfg.text_len, "in_dim": cfg.in_dim, "dim": cfg.dim, "ffn_dim": cfg.ffn_dim,
              "freq_dim": cfg.freq_dim, "out_dim": cfg.out_dim, "num_heads": cfg.num_heads,
              "num_layers": cfg.num_layers, "local_attn_size": -1, "sink_size": 0, "eps": cfg.eps}
    (dit_dir / "config.json").write_text(json.dumps(config, indent=2))


def _shard_groups(state: dict[str, torch.Tensor], shards: int, shard_bytes: int | None) -> list[list[str]]:
    names = list(state)
    if shard_bytes is None:
        per = -(-len(names) // shards)
        return [names[s * per:(s + 1) * per] for s in range(shards)]
    groups, size = [[]], 0
    for n in names:
        nbytes = state[n].numel() * state[n].element_size()
        if groups[-1] and size + nbytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(n)
        size += nbytes
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--act", action="store_true", help="the 'act' variant (7 control channels: rays + WASD)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_tiny_checkpoint(args.out, args.seed, 7 if args.act else 6))


if __name__ == "__main__":
    main()
