"""Copy a trained model directory into models/ with half-size weights (float16 storage, fp32 compute).

    .venv/bin/python scripts/ship_model.py runs/default/model models/default
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.neural.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("src")
parser.add_argument("dst")
parser.add_argument("--weights-dtype", default="float16", choices=["float32", "float16", "bfloat16"])
args = parser.parse_args()
ckpt = load_checkpoint(args.src)
ckpt.config.weights_dtype = args.weights_dtype
save_checkpoint(args.dst, ckpt.config, ckpt.autoencoder, ckpt.dit, ckpt.start_frames)
size = sum(f.stat().st_size for f in Path(args.dst).iterdir())
print(f"{args.dst}: {size / 2**20:.1f} MiB")
