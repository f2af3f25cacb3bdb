"""What one trial of any method returns, and how per-image figures become the trial's."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class TrialResult:
    status: str  # ok | diverged
    error: str | None
    metrics: dict  # means over images (es_fired: the fraction of images where ES-WMV fired)
    per_image: dict[str, dict]
    curves: dict[str, dict]
    images: dict[str, dict[str, torch.Tensor]] = field(repr=False)
    device: str = "cpu"


def aggregate(per_image: list[dict]) -> dict:
    """Mean of every numeric metric over images; booleans become fractions; lists are dropped."""
    out: dict = {}
    if not per_image:
        return out
    for key in per_image[0]:
        vals = [m[key] for m in per_image if key in m]
        if all(isinstance(v, bool) for v in vals):
            out[key] = sum(vals) / len(vals)
        elif all(isinstance(v, (int, float)) for v in vals):
            mean = sum(vals) / len(vals)
            out[key] = mean if math.isfinite(mean) else None
    return out
