"""Write a sequence of RGB frames as a GIF, an MP4 or a directory of PNGs, chosen by the output path.

GIF and PNG need only Pillow; GIFs are encoded by runtime/eval/gif.py, the one GIF writer (`worldbridge eval`
uses it too). MP4 pipes raw frames into the `ffmpeg` program (H.264), so it needs ffmpeg on PATH; without it the
error says so and names the formats that always work.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bridge.tools.errors import UserError
from runtime.eval.gif import upscale, write_gif
from runtime.world import FPS

FORMATS = ".gif, .mp4, or a directory (PNG frames)"


def kind_of(out: Path) -> str:
    """'gif', 'mp4' or 'png' (a directory: a path with no suffix, or one that is a directory already)."""
    suffix = out.suffix.lower()
    if out.is_dir() or suffix == "":
        return "png"
    if suffix in (".gif", ".mp4"):
        return suffix[1:]
    raise UserError(f"--out {out}: can write {FORMATS}, not {suffix}")


def check_writable(out: Path) -> str:
    """Fail before any work is done when `out` cannot be written; returns its kind."""
    kind = kind_of(out)
    if kind == "mp4" and shutil.which("ffmpeg") is None:
        raise UserError(f"--out {out}: writing .mp4 needs the ffmpeg program on PATH (apt-get install ffmpeg); "
                        "use a .gif or a directory of PNGs instead")
    return kind


def write(frames: Sequence[np.ndarray], out: Path, fps: float = FPS, scale: int = 1) -> Path:
    """Write (H, W, 3) uint8 frames to `out`, each pixel `scale` x `scale`; returns `out`."""
    kind = check_writable(out)
    if kind == "gif":
        return write_gif(frames, out, fps, scale)
    frames = upscale(frames, scale)
    if kind == "png":
        out.mkdir(parents=True, exist_ok=True)
        for t, f in enumerate(frames):
            Image.fromarray(f).save(out / f"frame_{t:06d}.png")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    # yuv420p (what players expect) needs even sides: pad by one pixel where needed
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", f"{fps:g}", "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(out)]
    proc = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                          capture_output=True)
    if proc.returncode != 0:
        raise UserError(f"ffmpeg could not write {out}: {proc.stderr.decode(errors='replace').strip()}")
    return out
