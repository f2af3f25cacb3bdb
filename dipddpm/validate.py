"""Cross-field checks of a trial config, run once when it is resolved (`dipddpm.trial.resolve`).

What every method shares (the networks' depth against the image sizes) is here;
what needs a method's knowledge is that method's `check` (`dipddpm.methods`).
"""

from __future__ import annotations

from . import methods
from .degradation import noise_level, schedule_of
from .errors import ConfigError


def check_trial(cfg) -> None:
    """Raise ConfigError (one line, naming the key) for an impossible combination."""
    schedule = schedule_of(cfg)
    level = noise_level(cfg, schedule)
    if cfg.dip is not None and cfg.dip.net == "skip":
        _check_depth(cfg.dip.scales, cfg.data.size, "data.size")
        if cfg.hybrid is not None and cfg.hybrid.train_on == "dip":
            _check_depth(cfg.dip.scales, cfg.ddpm.crop, "ddpm.crop")
    methods.get(cfg.method).check(cfg, schedule, level)


def _check_depth(scales: int, px: int, key: str) -> None:
    """The skip net halves its input `scales` times; BatchNorm needs more than one value per channel."""
    if px < 2 * 2**scales:
        raise ConfigError(f"dip.scales: expected at most {max(px.bit_length() - 2, 0)} for {key}={px} px "
                          f"(each scale halves the image), got {scales}")
