"""Frames as a GIF: the one GIF encoder (Pillow only, no torch), used by `worldbridge eval` here and by every
tool through bridge/tools/media.py; and the side-by-side frames comparisons show.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from runtime.world import FPS


def upscale(frames: Sequence[np.ndarray], scale: int) -> list[np.ndarray]:
    """Each pixel `scale` x `scale` (nearest neighbour)."""
    if scale <= 1:
        return list(frames)
    return [np.repeat(np.repeat(f, scale, 0), scale, 1) for f in frames]


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: float = FPS, scale: int = 1) -> Path:
    """(H, W, 3) uint8 frames -> a looping GIF at `fps` (Pillow merges identical consecutive frames into one
    longer frame); returns `path`."""
    if not len(frames):
        raise ValueError(f"{path}: no frames to write")
    images = [Image.fromarray(f) for f in upscale(frames, scale)]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path


def side_by_side(pred: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Model | white gap | ground truth, frame by frame: (H, 2W + 4, 3) uint8 each."""
    return [np.concatenate([p, np.full((p.shape[0], 4, 3), 255, np.uint8), t], 1) for p, t in zip(pred, truth)]
