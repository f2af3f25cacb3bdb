"""Classical, non-learned reference denoisers from scikit-image (DESIGN §2).

Both see the clipped observation and estimate σ from the image itself (no
ground truth), so they are a fair floor a learned method must beat.
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
