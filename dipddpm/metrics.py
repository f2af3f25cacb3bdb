"""PSNR and SSIM, computed by scikit-image in float64 with an explicit data range.

Both refuse inputs outside [0, data_range] (beyond 1e-6) and mismatched shapes:
that is what turns a [-1,1]-vs-[0,1] mix-up, or a sample scored against the
wrong image, into an error instead of a plausible-looking 7 dB.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

_TOL = 1e-6


def _as_chw64(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a (C, H, W) image, got shape {arr.shape}")
    return arr


def _checked_pair(x, ref, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_chw64(x, "x"), _as_chw64(ref, "ref")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: x {a.shape} vs ref {b.shape}")
    for name, arr in (("x", a), ("ref", b)):
        lo, hi = float(arr.min()), float(arr.max())
        if not np.isfinite(arr).all() or lo < -_TOL or hi > data_range + _TOL:
            raise ValueError(
                f"{name}: values must lie in [0, {data_range}] (got [{lo:.4g}, {hi:.4g}]); "
                "clip estimates to [0,1] and convert [-1,1] images before scoring"
            )
    return np.clip(a, 0.0, data_range), np.clip(b, 0.0, data_range)


def psnr(x, ref, data_range: float = 1.0) -> float:
    """PSNR in dB of `x` against `ref`, both (C, H, W) in [0, data_range]."""
    a, b = _checked_pair(x, ref, data_range)
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(b, a, data_range=data_range))


def ssim(x, ref, data_range: float = 1.0) -> float:
    """Mean SSIM of `x` against `ref`, both (C, H, W) in [0, data_range]."""
    a, b = _checked_pair(x, ref, data_range)
    return float(structural_similarity(b, a, data_range=data_range, channel_axis=0))


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """10·log10(range² / MSE): the analytic PSNR for a known MSE."""
    return float(10.0 * np.log10(data_range**2 / mse))
