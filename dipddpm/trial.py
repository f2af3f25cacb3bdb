"""One trial: a config -> observations -> the method on each image -> a result.

`run(cfg, report)` is the whole science side of a trial; the CLI and the Ray
trainable are thin wrappers around it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch

from .degradation import noise_level, observe, schedule_of
from .images import ImageSet, images_for, test_tensor
from .reporting import ReportFn, Reporter

log = logging.getLogger(__name__)


@dataclass
class TrialResult:
    status: str  # ok | diverged
    error: str | None
    metrics: dict  # means over images (es_fired: the fraction of images where ES-WMV fired)
    per_image: dict[str, dict]
    curves: dict[str, dict]
    images: dict[str, dict[str, torch.Tensor]] = field(repr=False)
    device: str = "cpu"


def resolve(layers: list[tuple[str, dict]], profile: str | None = None):
    """A validated trial config: defaults -> profile -> each (name, nested layer), canonical, with every
    check, the methods' own included. Raises ConfigError (one line, naming the key)."""
    from .config import compose
    from .validate import check_trial

    cfg = compose(layers, profile)
    check_trial(cfg)
    return cfg


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def observations(cfg, images: ImageSet | None = None):
    """The trial's test observations, in config order; the same seed gives the same y.
    `images`: the resolved images (resolved here from the config when None)."""
    schedule = schedule_of(cfg)
    level = noise_level(cfg, schedule)
    for img in (images or images_for(cfg)).test:
        yield observe(img.id, test_tensor(img, cfg.data.size), schedule, level, cfg.seed)


def run(cfg, report: ReportFn | None = None, device: str | None = None, cache=None,
        images: ImageSet | None = None) -> TrialResult:
    """Run the configured method on every test image. `cache`: an ArtefactCache (hybrid only);
    `images`: the trial's images as data (resolved here from the config when None)."""
    dev = pick_device(device)
    images = images or images_for(cfg)
    obs_list = list(observations(cfg, images))
    reporter = Reporter(report, len(obs_list))
    if cfg.method == "hybrid":
        return _run_hybrid(cfg, obs_list, images, dev, reporter, cache)
    return _run_staged(cfg, obs_list, dev, reporter)


def _run_hybrid(cfg, obs_list, images, dev, reporter, cache) -> TrialResult:
    from . import hybrid
    from .cache import ArtefactCache
    from .loop import Diverged

    t0 = time.perf_counter()
    try:
        runs, extra = hybrid.run(obs_list, images.pool, cfg, dev, reporter, cache or ArtefactCache())
    except Diverged as exc:
        return TrialResult("diverged", f"diverged: {exc}", {"wall_s": time.perf_counter() - t0}, {}, {}, {}, str(dev))
    curves = {r.name: r.curves for r in runs} | {"ddpm": {"train_loss": extra.pop("train_loss_curve")}}
    metrics = aggregate([r.metrics for r in runs]) | extra
    metrics |= {"wall_s": time.perf_counter() - t0, "images": len(runs)}
    return TrialResult("ok", None, metrics, {r.name: r.metrics for r in runs}, curves,
                       {r.name: r.images for r in runs}, str(dev))


def _run_staged(cfg, obs_list, dev, reporter) -> TrialResult:
    from . import staged

    t0 = time.perf_counter()
    runs = []
    for i, obs in enumerate(obs_list):
        reporter.begin_image(i, sum(r.metrics.get("iters", 0) for r in runs))
        runs.append(staged.fit_image(obs, cfg, dev, reporter))
        if runs[-1].diverged:
            log.warning("%s diverged on %s: stopping the trial", cfg.method, obs.name)
            break
    status = "diverged" if any(r.diverged for r in runs) else "ok"
    error = next((r.error for r in runs if r.error), None)
    metrics = aggregate([r.metrics for r in runs])
    metrics["wall_s"] = time.perf_counter() - t0
    metrics["dip_s"] = sum(r.metrics.get("dip_s", 0.0) for r in runs)  # per trial, as every *_s figure
    metrics["ref_s"] = sum(r.metrics.get("ref_s", 0.0) for r in runs)  # the classical references
    metrics["time_s"] = metrics["wall_s"] - metrics["ref_s"]  # the method's own time
    metrics["images"] = len(runs)
    return TrialResult(status, error, metrics, {r.name: r.metrics for r in runs},
                       {r.name: r.curves for r in runs}, {r.name: r.images for r in runs}, str(dev))


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
