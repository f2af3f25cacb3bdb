"""Cross-field checks of a trial config, run once when it is resolved."""

from __future__ import annotations

from .degradation import noise_level, schedule_of
from .errors import ConfigError
from .ladder import ladder_steps


def check_trial(cfg) -> None:
    """Raise ConfigError (one line, naming the key) for an impossible combination."""
    schedule = schedule_of(cfg)
    level = noise_level(cfg, schedule)
    if cfg.dip is not None and cfg.dip.net == "skip":
        _check_depth(cfg.dip.scales, cfg.data.size, "data.size")
        if cfg.hybrid is not None and cfg.hybrid.train_on == "dip":
            _check_depth(cfg.dip.scales, cfg.ddpm.crop, "ddpm.crop")
    if cfg.method == "staged":
        _check_staged(cfg, schedule, level)
    else:
        _check_hybrid(cfg, schedule, level)


def _check_depth(scales: int, px: int, key: str) -> None:
    """The skip net halves its input `scales` times; BatchNorm needs more than one value per channel."""
    if px < 2 * 2**scales:
        raise ConfigError(f"dip.scales: expected at most {max(px.bit_length() - 2, 0)} for {key}={px} px "
                          f"(each scale halves the image), got {scales}")


def _check_hybrid(cfg, schedule, level) -> None:
    from .hybrid import start_step

    dd, hy = cfg.ddpm, cfg.hybrid
    for i, c in enumerate(dd.channels):
        if c % dd.norm_groups:
            raise ConfigError(f"ddpm.norm_groups: expected a divisor of every ddpm.channels entry, "
                              f"got {dd.norm_groups} (channels[{i}] = {c})")
    for i, lv in enumerate(dd.attention_levels):
        if lv >= len(dd.channels):
            raise ConfigError(f"ddpm.attention_levels[{i}]: expected a level < {len(dd.channels)}, got {lv}")
    factor = 2 ** (len(dd.channels) - 1)
    for key, px in (("ddpm.crop", dd.crop), ("data.size", cfg.data.size)):
        if px % factor:
            raise ConfigError(f"{key}: expected a multiple of {factor} (the UNet halves it "
                              f"{len(dd.channels) - 1} times), got {px}")
    if dd.crop > cfg.data.size:
        raise ConfigError(f"ddpm.crop: expected at most data.size={cfg.data.size}, got {dd.crop}")
    if dd.t_max is not None and dd.t_max >= schedule.num_train_timesteps:
        raise ConfigError(f"ddpm.t_max: expected a step < {schedule.num_train_timesteps}, got {dd.t_max}")
    t_start = start_step(cfg, schedule, level)
    if dd.t_max is not None and t_start > dd.t_max:
        raise ConfigError(f"ddpm.t_max: expected >= the start step {t_start} of start={hy.start} "
                          f"(the model must be trained there), got {dd.t_max}")
    if hy.dip_stop == "wmv" and cfg.es.patience >= hy.dip_iters:
        raise ConfigError(f"es.patience: expected fewer than hybrid.dip_iters={hy.dip_iters}, got {cfg.es.patience}")


def _check_staged(cfg, schedule, level) -> None:
    st, es = cfg.staged, cfg.es
    if st.variant == "staged":
        ladder_steps(st, schedule, level)
    total = st.stages * st.iters_per_stage
    if es.window >= total:
        raise ConfigError(f"es.window: expected fewer than the run's {total} iterations, got {es.window}")
    if es.patience >= total:
        raise ConfigError(f"es.patience: expected fewer than the run's {total} iterations, got {es.patience}")
    if st.variant == "staged" and st.stage_switch == "wmv" and es.patience >= st.iters_per_stage:
        raise ConfigError(f"es.patience: expected fewer than staged.iters_per_stage={st.iters_per_stage} "
                          f"with stage_switch=wmv, got {es.patience}")
