"""What the orchestrator knows about a metric by its name: whether it needs the clean image (ORACLE),
whether it is one value per trial or per image, and the range its values (and intervals) live in.

Which metrics a method reports, and its headline, are the method's to say (`dipddpm.methods`).
"""

from __future__ import annotations

import math

# Oracle figures use the clean image: never a ranking a user could reach.
ORACLE_METRICS = ("psnr_peak", "ssim_peak", "iter_peak", "es_gap_db")


def is_oracle_metric(name: str) -> bool:
    return name in ORACLE_METRICS or name.endswith("_peak")


def default_metric(method: str) -> str:
    from dipddpm.methods import get

    return get(method).default_metric


def trial_level(metric: str) -> bool:
    """Times are per trial (sums over its images in `metrics`); everything else is read per image."""
    return metric.endswith("_s")


def bounds(metric: str) -> tuple[float, float]:
    """The range a metric's values (and so its interval) live in."""
    if metric.startswith("ssim"):
        return (-1.0, 1.0)
    if metric in ("es_fired", "dip_es_fired"):
        return (0.0, 1.0)
    return (0.0, math.inf) if metric.startswith(("psnr", "iter")) or trial_level(metric) else (-math.inf, math.inf)
