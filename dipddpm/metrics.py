"""PSNR and SSIM, computed by scikit-image in float64 with an explicit data range.

Both refuse inputs outside [0, data_range] (beyond 1e-6) and mismatched shapes:
that is what turns a [-1,1]-vs-[0,1] mix-up, or a sample scored against the
wrong image, into an error instead of a plausible-looking 7 dB. `estimate`
is how a method's output gets there: it refuses an estimate with more than a
small fraction of pixels outside [−0.05, 1.05] (a [-1,1] image, a missing
sigmoid), and only then clips.

SSIM is Wang et al.'s (2004) as DIP and DDPM papers report it: an 11×11
Gaussian window with σ = 1.5 and no sample-covariance correction, averaged
over channels (`SSIM_VARIANT`, named in every record).
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


SSIM_ARGS = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
SSIM_VARIANT = "Wang et al. 2004: Gaussian window sigma=1.5, no sample-covariance correction, mean over channels"
OUTSIDE_TOL = 0.05  # how far past [0, 1] a pixel may stray before it counts as outside
OUTSIDE_MAX = 0.01  # the fraction of such pixels an estimate may have (rounding, a sampler's tail)


def ssim(x, ref, data_range: float = 1.0) -> float:
    """Mean SSIM of `x` against `ref`, both (C, H, W) in [0, data_range] (SSIM_VARIANT)."""
    a, b = _checked_pair(x, ref, data_range)
    return float(structural_similarity(b, a, data_range=data_range, channel_axis=0, **SSIM_ARGS))


def estimate(x: torch.Tensor, name: str) -> torch.Tensor:
    """A method's output ready to score: refused (ValueError) when more than OUTSIDE_MAX of its pixels lie
    outside [−OUTSIDE_TOL, 1 + OUTSIDE_TOL], which no [0,1] estimate does; clipped to [0, 1] only after that."""
    x = x.detach().cpu().float()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: the estimate holds NaN or inf")
    outside = float(((x < -OUTSIDE_TOL) | (x > 1 + OUTSIDE_TOL)).float().mean())
    if outside > OUTSIDE_MAX:
        raise ValueError(f"{name}: {100 * outside:.1f}% of the estimate's pixels lie outside [0, 1] "
                         f"(range [{float(x.min()):.3g}, {float(x.max()):.3g}]): a [-1,1] image not converted?")
    return x.clamp(0, 1)


# The classical references every method scores on the same observation (each method's metric names
# add its own: `dipddpm.methods`).
REFERENCE_METRICS = ("psnr_observation", "ssim_observation", "psnr_tv", "ssim_tv", "psnr_nlm", "ssim_nlm",
                     "psnr_cbm3d", "ssim_cbm3d", "noise_std", "noise_std_255", "t_obs", "ref_s")


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """10·log10(range² / MSE): the analytic PSNR for a known MSE."""
    return float(10.0 * np.log10(data_range**2 / mse))
