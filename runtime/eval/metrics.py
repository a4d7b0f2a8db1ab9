"""Image quality scores, the one definition used everywhere (evaluation, benchmarks, training logs, rollouts,
tests): PSNR and SSIM. NumPy only, so tools can score frames without importing torch.
"""

from __future__ import annotations

import math

import numpy as np

MAX_DB = 100.0  # the PSNR of identical images, and the most any pair scores


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two images of the same shape whose values span `peak` (255 for uint8, 2.0 for images
    in [-1, 1], 1.0 for [0, 1]); MAX_DB (100 dB) for identical images, never more."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr of images shaped {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return MAX_DB if mse == 0 else min(MAX_DB, 10 * math.log10(peak**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = np.exp(-((np.arange(size, dtype=np.float64) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _blur(z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (H, W, C) by the 1-D window g along H, then W."""
    n = len(g)
    h, w = z.shape[0] - n + 1, z.shape[1] - n + 1
    rows = sum(g[i] * z[i : i + h] for i in range(n))
    return sum(g[i] * rows[:, i : i + w] for i in range(n))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, 'valid' borders, per channel) of two
    images (H, W, C) whose values span `peak`."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"ssim of images shaped {x.shape} and {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    g = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    vx, vy, cov = _blur(x * x, g) - mx**2, _blur(y * y, g) - my**2, _blur(x * y, g) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())
