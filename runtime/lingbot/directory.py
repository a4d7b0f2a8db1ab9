"""LingBot-World action directories: the camera path format of LingBot-World's offline scripts.

    DIR/poses.npy        (N, 4, 4) float32   camera-to-world of frame t, OpenCV camera axes (x right, y down,
                                              z forward); here in the canonical world of runtime/world.py
    DIR/intrinsics.npy   (N, 4) float32      fx, fy, cx, cy in pixels (so the frame is 2cx x 2cy)
    DIR/action.npy       (N, 4) optional     W, A, S, D held for frame t (multi-hot, the "act" variant)
    DIR/image.jpg        optional            the first frame, to start the model from

Row t's action is the one that made frame t from frame t-1 (row 0: the start), as in docs/dataset.md, so a
dataset episode converts row for row. Nothing here knows about the wire protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from runtime.camera import intrinsics as pinhole

WASD_THRESHOLD = 0.25  # |axis| above which a key counts as held (analog sticks rarely rest at exactly 0)


@dataclass
class ActionDir:
    poses: np.ndarray  # (N, 4, 4) float64 camera-to-world
    intrinsics: np.ndarray  # (N, 4) float64 fx, fy, cx, cy
    wasd: np.ndarray | None = None  # (N, 4) bool W, A, S, D
    image: np.ndarray | None = None  # (H, W, 3) uint8 first frame

    def __len__(self) -> int:
        return len(self.poses)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) the intrinsics describe (principal point at the centre)."""
        return round(2 * float(self.intrinsics[0, 2])), round(2 * float(self.intrinsics[0, 3]))

    def fov_deg(self) -> np.ndarray:
        """(N,) vertical field of view in degrees of each frame."""
        return np.degrees(2 * np.arctan2(self.intrinsics[:, 3], self.intrinsics[:, 1]))


def wasd_from_move(move: np.ndarray) -> np.ndarray:
    """(N, 2) (strafe right, forward) -> (N, 4) bool W, A, S, D."""
    move = np.asarray(move, dtype=np.float64).reshape(-1, 2)
    strafe, forward = move[:, 0], move[:, 1]
    return np.stack([forward > WASD_THRESHOLD, strafe < -WASD_THRESHOLD, forward < -WASD_THRESHOLD,
                     strafe > WASD_THRESHOLD], axis=1)


def move_from_wasd(wasd: np.ndarray) -> np.ndarray:
    """(N, 4) W, A, S, D -> (N, 2) (strafe right, forward) in {-1, 0, 1}."""
    k = np.asarray(wasd).astype(bool).astype(np.float64).reshape(-1, 4)
    return np.stack([k[:, 3] - k[:, 1], k[:, 0] - k[:, 2]], axis=1)


def from_episode(episode: dict[str, np.ndarray], width: int, height: int) -> ActionDir:
    """A dataset episode (runtime/data/dataset.py) as an action directory; frames are (width, height) pixels."""
    lens = np.array([pinhole(width, height, float(f)) for f in episode["fov_deg"]], dtype=np.float64)
    return ActionDir(np.asarray(episode["poses"], np.float64), lens.reshape(-1, 4), wasd_from_move(episode["move"]),
                     np.asarray(episode["frames"][0], np.uint8))


def write(out: Path, d: ActionDir) -> Path:
    """Write `d` into directory `out` (created); poses and intrinsics as float32, action as uint8 0/1."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "poses.npy", d.poses.astype(np.float32))
    np.save(out / "intrinsics.npy", d.intrinsics.astype(np.float32))
    if d.wasd is not None:
        np.save(out / "action.npy", d.wasd.astype(np.uint8))
    if d.image is not None:
        Image.fromarray(d.image).save(out / "image.jpg", quality=95)
    return out


def read(path: Path) -> ActionDir:
    """Read and check an action directory; ValueError or FileNotFoundError say what is wrong."""
    path = Path(path)
    if not (path / "poses.npy").is_file():
        raise FileNotFoundError(f"{path} is not a LingBot-World action directory: no poses.npy")
    if not (path / "intrinsics.npy").is_file():
        raise FileNotFoundError(f"{path}: poses.npy without intrinsics.npy")
    poses = _load(path / "poses.npy")
    lens = _load(path / "intrinsics.npy")
    n = len(poses)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or n == 0:
        raise ValueError(f"{path / 'poses.npy'}: expected shape (N, 4, 4), got {poses.shape}")
    if lens.shape != (n, 4):
        raise ValueError(f"{path / 'intrinsics.npy'}: expected shape ({n}, 4) to match poses.npy, got {lens.shape}")
    if not (np.isfinite(poses).all() and np.isfinite(lens).all()) or (lens <= 0).any():
        raise ValueError(f"{path}: poses and intrinsics must be finite, intrinsics positive")
    wasd = None
    if (path / "action.npy").is_file():
        wasd = _load(path / "action.npy")
        if wasd.shape != (n, 4):
            raise ValueError(f"{path / 'action.npy'}: expected shape ({n}, 4) W/A/S/D, got {wasd.shape}")
        wasd = wasd.astype(bool)
    image = None
    if (path / "image.jpg").is_file():
        with Image.open(path / "image.jpg") as im:
            image = np.asarray(im.convert("RGB"))
    return ActionDir(poses.astype(np.float64), lens.astype(np.float64), wasd, image)


def _load(file: Path) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as e:  # not a .npy file, or an object array
        raise ValueError(f"{file}: not a numeric .npy array ({e})") from None


def check_fov(fov_deg: np.ndarray) -> None:
    if not ((fov_deg > 1).all() and (fov_deg < 170).all()):
        bad = float(fov_deg[~((fov_deg > 1) & (fov_deg < 170))][0])
        raise ValueError(f"intrinsics give a vertical field of view of {bad:.1f} degrees (must be 1-170)")




def export_episode(data: Path, episode: int, out: Path, frames: int | None = None) -> dict:
    """Episode `episode` of the dataset in `data` (docs/dataset.md) -> an action directory in `out`."""
    from runtime.data.dataset import Dataset

    ds = Dataset(data)
    if not 0 <= episode < len(ds):
        raise IndexError(f"{data} has episodes 0..{len(ds) - 1}, not {episode}")
    ep = ds.episode(episode)
    if frames is not None:
        if frames < 1:
            raise ValueError(f"--frames must be at least 1, got {frames}")
        ep = {k: v[:frames] for k, v in ep.items()}
    d = from_episode(ep, ds.meta["width"], ds.meta["height"])
    write(out, d)
    return {"out": str(out), "frames": len(d), "width": ds.meta["width"], "height": ds.meta["height"],
            "world": ds.meta.get("world", ""), "fps": ds.meta.get("fps")}
