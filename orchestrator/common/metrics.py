"""Metric names the sweep half (ranking, validation) and the report half (tables) share.

Which metrics a method reports is the science's to say (`dipddpm.metrics.METRIC_NAMES`).
"""

from __future__ import annotations

# Oracle figures use the clean image: never a ranking a user could reach.
ORACLE_METRICS = ("psnr_peak", "ssim_peak", "iter_peak", "es_gap_db")
DEFAULT_METRIC = {"staged": "psnr_es", "hybrid": "psnr"}


def is_oracle_metric(name: str) -> bool:
    return name in ORACLE_METRICS or name.endswith("_peak")
