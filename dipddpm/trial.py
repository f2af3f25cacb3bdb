"""One trial: a config -> observations -> the method on each image -> a result.

`run(cfg, report)` is the whole science side of a trial; the CLI and the Ray
trainable are thin wrappers around it. The method comes from the registry
(`dipddpm.methods`): this module knows no method by name.
"""

from __future__ import annotations

import torch

from .degradation import noise_level, observe, schedule_of
from .images import ImageSet, images_for, test_tensor
from .reporting import ReportFn, Reporter
from .result import TrialResult


def resolve(layers: list[tuple[str, dict]], profile: str | None = None):
    """A validated trial config: defaults -> profile -> each (name, nested layer), in the method's canonical
    form, with every check, the method's own included. Raises ConfigError (one line, naming the key)."""
    from . import methods
    from .config import compose
    from .validate import check_trial

    cfg = compose(layers, profile)
    cfg = methods.get(cfg.method).canonical(cfg)
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
    """Run the configured method on every test image. `cache`: an ArtefactCache for the artefacts a method
    shares between trials; `images`: the trial's images as data (resolved here from the config when None)."""
    from . import methods

    dev = pick_device(device)
    images = images or images_for(cfg)
    obs_list = list(observations(cfg, images))
    return methods.get(cfg.method).run(cfg, obs_list, images, dev, Reporter(report, len(obs_list)), cache)
