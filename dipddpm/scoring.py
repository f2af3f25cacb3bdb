"""Per-image scores: the estimate at the end, at the oracle peak and at the ES point,
next to the observation and two classical denoisers, all on the same y.

Estimates pass `metrics.estimate` (refused when far outside [0, 1], then
clipped); the observation y01, noisy by design, is clipped and says so. All
are compared against their own clean image x0 with `metrics.psnr/ssim`. The
references' seconds are `ref_s`, kept out of the method's `time_s`.
"""

from __future__ import annotations

import time

import torch

from .classical import cbm3d_denoise, nlm_denoise, tv_denoise
from .degradation import Observation
from .metrics import estimate, psnr, ssim


def scores(prefix: str, x: torch.Tensor, x0: torch.Tensor) -> dict:
    """psnr<prefix> and ssim<prefix> of an estimate (checked, then clipped) against x0."""
    x = estimate(x, f"psnr{prefix}")
    return {f"psnr{prefix}": psnr(x, x0), f"ssim{prefix}": ssim(x, x0)}


def reference_scores(obs: Observation) -> tuple[dict, dict]:
    """Observation (clipped), TV, NL-means and (when installed) CBM3D on the same y: metrics (with their
    seconds) and images."""
    t0 = time.perf_counter()
    y = obs.y01.clamp(0, 1)  # the observation is noisy by design: clipped, and said so
    tv, nlm = tv_denoise(y), nlm_denoise(y)
    metrics = {"psnr_observation": psnr(y, obs.x0), "ssim_observation": ssim(y, obs.x0)}
    metrics |= scores("_tv", tv, obs.x0) | scores("_nlm", nlm, obs.x0)
    images = {"clean": obs.x0, "observation": y, "tv": tv, "nlm": nlm}
    cbm3d = cbm3d_denoise(y, obs.level.noise_std)  # the known σ, as DIP papers run it
    if cbm3d is not None:
        metrics |= scores("_cbm3d", cbm3d, obs.x0)
        images["cbm3d"] = cbm3d
    metrics |= {"noise_std": obs.level.noise_std, "noise_std_255": obs.level.noise_std_255, "t_obs": obs.level.t_obs,
                "ref_s": time.perf_counter() - t0}
    return metrics, images


def score_image(obs: Observation, peak, wmv, last: torch.Tensor, n_iters: int) -> tuple[dict, dict]:
    """End / ORACLE peak / ES-WMV scores for one image, plus the reference rows."""
    x0 = obs.x0
    fired = wmv.fired()
    es_img = wmv.best_img[0] if fired else last[0]
    iter_es = int(wmv.best_iter.item()) if fired else n_iters - 1
    m = scores("", last[0], x0) | scores("_peak", peak.best_img[0], x0) | scores("_es", es_img, x0)
    m |= {"iter_peak": int(peak.best_iter.item()), "iter_es": iter_es, "es_fired": fired}
    m["es_gap_db"] = m["psnr_peak"] - m["psnr_es"]
    ref_m, ref_img = reference_scores(obs)
    images = ref_img | {"peak": peak.best_img[0], "es": es_img, "end": last[0]}
    return m | ref_m, {k: estimate(v, k) for k, v in images.items()}
