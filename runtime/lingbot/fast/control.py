"""Camera poses, intrinsics and WASD keys -> the per-pixel control channels LingBot-World-Fast reads.

As LingBot-World's wan/utils/cam_utils.py and image2video_fast.py prepare them (re-derived here):
- one pose per latent frame: video frame 4j for latent frame j (frame 0, 4, 8, ... of a 4n+1-frame video);
- poses relative frame to frame: latent frame 0 gets the identity, frame j the motion from frame j-1,
  inverse(c2w[j-1]) @ c2w[j] (OpenCV camera-to-world: x right, y down, z forward);
- translations divided by the largest translation norm of the clip (when there is motion). A stream has no
  whole clip, so the largest norm of the episode so far stands in (`TranslationScale`): for steady motion this
  is the same unit step the offline scripts produce. Translations below 1e-6 of the scene scale are round-off
  (inv(P) @ P of a still camera is ~1e-16 off the identity) and become exactly zero, so a camera at rest is
  told it is at rest;
- per pixel (centres at +0.5) of the full-resolution frame: ray direction d = normalize(K^-1 [u, v, 1]) rotated
  by the relative pose, ray origin o = its translation: 6 channels (o, d) for the "cam" models; for the "act"
  models the 3 direction channels then 4 WASD channels (multi-hot, the same for every pixel);
- each latent cell's 8x8 pixels folded into channels (channel-major), then each 1x2x2 token's cells: a token's
  features are ordered (channel, pixel row, pixel column, patch frame, patch row, patch column).

Engine poses reach the world already in this convention: the daemon converts them in bridge/protocol/poses.py (the
canonical frame is OpenCV camera-to-world), and intrinsics come from the engine's vertical field of view and
the model's frame size (runtime.camera.intrinsics).
"""

from __future__ import annotations

import numpy as np
import torch


def relative_motion(previous: np.ndarray | None, poses: np.ndarray) -> np.ndarray:
    """(n, 4, 4) camera-to-world of consecutive latent frames -> (n, 4, 4) frame-to-frame motion. `previous`:
    the camera-to-world of the latent frame before poses[0], or None when poses[0] starts the episode."""
    out = np.empty_like(poses, dtype=np.float64)
    prev = previous
    for i, pose in enumerate(poses):
        out[i] = np.eye(4) if prev is None else np.linalg.inv(prev) @ pose
        prev = pose
    return out


STILL = 1e-6  # translations shorter than this fraction of the scene scale are no motion (round-off)


def scene_scale(*poses: np.ndarray | None) -> float:
    """The length translations are compared with to tell motion from round-off: the largest camera distance
    from the world origin among `poses` ((4, 4) or (n, 4, 4) camera-to-world), at least 1 unit. inv(a) @ b of
    two equal poses leaves ~1e-16 of this length (float64 round-off of the position), not zero."""
    largest = 1.0
    for p in poses:
        if p is not None:
            largest = max(largest, float(np.linalg.norm(np.asarray(p)[..., :3, 3], axis=-1).max(initial=0.0)))
    return largest


class TranslationScale:
    """Running stand-in for the offline scripts' per-clip translation normalisation.

    A translation of at most `tolerance` x the scene scale counts as none: set to exactly zero and kept out of
    the running largest norm. Without that a camera at rest (every engine-pose episode's first chunk, any idle
    start) had its ~1e-16 round-off divided by a "largest so far" of ~1e-16: a jump of one unit in a random
    direction."""

    def __init__(self, tolerance: float = STILL) -> None:
        self.tolerance = tolerance
        self.largest = 0.0

    def __call__(self, motion: np.ndarray, scene: float = 1.0) -> np.ndarray:
        """Divide the translations of (n, 4, 4) motions by the largest norm seen so far in the episode;
        `scene`: the scene scale (`scene_scale` of the absolute poses the motions came from)."""
        motion = np.array(motion, dtype=np.float64)
        t = motion[:, :3, 3]  # a view: edits land in motion
        norms = np.linalg.norm(t, axis=1)
        still = norms <= self.tolerance * max(scene, 1.0)
        t[still] = 0.0
        self.largest = max(self.largest, float(norms[~still].max(initial=0.0)))
        if self.largest > 0:
            t /= self.largest
        return motion


def pixel_rays(motion: torch.Tensor, K: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """motion (F, 4, 4), K (F, 4) fx, fy, cx, cy -> ray origins and directions (F, H, W, 3) each."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32) + 0.5,
                          torch.arange(width, dtype=torch.float32) + 0.5, indexing="ij")  # (H, W)
    fx, fy, cx, cy = (c[:, None, None] for c in K.float().unbind(-1))  # (F, 1, 1)
    d = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u - cx)], dim=-1)  # (F, H, W, 3)
    d = d / d.norm(dim=-1, keepdim=True)
    d = torch.einsum("fij,fhwj->fhwi", motion[:, :3, :3].float(), d)
    o = motion[:, None, None, :3, 3].float().expand_as(d)
    return o, d


def control_tokens(
    motion: np.ndarray,
    K: np.ndarray,
    height: int,
    width: int,
    wasd: np.ndarray | None = None,
    patch: tuple[int, int, int] = (1, 2, 2),
    stride: int = 8,
) -> torch.Tensor:
    """Per-token control features (1, F*h*w/(ph*pw), C*stride^2*prod(patch)) of F latent frames.

    motion (F, 4, 4) relative poses, K (F, 4) intrinsics in pixels of the (width, height) frame; wasd (F, 4)
    multi-hot for the "act" models (then only ray directions are used), None for the "cam" models."""
    o, d = pixel_rays(torch.as_tensor(motion), torch.as_tensor(K), height, width)
    if wasd is None:
        pixels = torch.cat([o, d], dim=-1)  # (F, H, W, 6)
    else:
        keys = torch.as_tensor(np.asarray(wasd, dtype=np.float32))[:, None, None, :].expand(*d.shape[:3], 4)
        pixels = torch.cat([d, keys], dim=-1)  # (F, H, W, 7)
    Fr, H, W, C = pixels.shape
    h, w = H // stride, W // stride
    # fold each latent cell's stride x stride pixels into channels, channel-major: (F, h, w, C*s*s)
    cells = pixels.view(Fr, h, stride, w, stride, C).permute(0, 1, 3, 5, 2, 4).reshape(Fr, h, w, C * stride**2)
    pt, ph, pw = patch
    tokens = cells.view(Fr // pt, pt, h // ph, ph, w // pw, pw, -1).permute(0, 2, 4, 6, 1, 3, 5)
    return tokens.reshape(1, (Fr // pt) * (h // ph) * (w // pw), -1)
