"""Classical, non-learned reference denoisers (docs/design.md: "The task").

TV and NL-means (scikit-image) see the clipped observation and estimate σ from
the image itself (no ground truth), so they are a fair floor a learned method
must beat. CBM3D, the reference DIP papers print, runs when the optional `bm3d`
package is installed (`pip install -e ".[bm3d]"`; its licence is
non-commercial, so it is never a hard dependency), with the known σ as those
papers give it.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, estimate_sigma


def _hwc(x01: torch.Tensor) -> np.ndarray:
    return x01.detach().cpu().double().clamp(0, 1).numpy().transpose(1, 2, 0)  # (H, W, C)


def _chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().clamp(0, 1)


def estimated_sigma(y01: torch.Tensor) -> float:
    """Wavelet-based noise estimate (Donoho), averaged over channels."""
    return float(estimate_sigma(_hwc(y01), channel_axis=-1, average_sigmas=True))


def tv_denoise(y01: torch.Tensor) -> torch.Tensor:
    """Chambolle TV with weight = the estimated σ. (C,H,W) -> (C,H,W) in [0,1]."""
    img = _hwc(y01)
    return _chw(denoise_tv_chambolle(img, weight=estimated_sigma(y01), channel_axis=-1))


def nlm_denoise(y01: torch.Tensor) -> torch.Tensor:
    """Non-local means, h = 0.8·σ̂ (scikit-image's recommendation). (C,H,W) -> (C,H,W)."""
    img, sig = _hwc(y01), estimated_sigma(y01)
    out = denoise_nl_means(img, h=0.8 * sig, sigma=sig, fast_mode=True, patch_size=5,
                           patch_distance=6, channel_axis=-1)
    return _chw(out)


def cbm3d_status() -> str:
    """'bm3d <version>' when the optional package is installed, else how to install it."""
    try:
        from importlib import metadata

        import bm3d  # noqa: F401
        return f"bm3d {metadata.version('bm3d')}"
    except Exception:  # noqa: BLE001 - missing, or broken on this platform: the reference is left out
        return "not installed (pip install -e '.[bm3d]')"


def cbm3d_denoise(y01: torch.Tensor, sigma: float) -> torch.Tensor | None:
    """CBM3D (colour BM3D, Dabov et al. 2007) at the known noise σ; None when bm3d is not installed."""
    try:
        import bm3d
    except Exception:  # noqa: BLE001
        return None
    img = _hwc(y01)
    out = bm3d.bm3d_rgb(img, sigma) if img.shape[-1] == 3 else bm3d.bm3d(img[..., 0], sigma)[..., None]
    return _chw(np.asarray(out))
