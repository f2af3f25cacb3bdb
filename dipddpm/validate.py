"""Cross-field checks of a trial config, run once when it is resolved."""

from __future__ import annotations

from .degradation import noise_level, schedule_of
from .errors import ConfigError
from .images import resolve_refs
from .ladder import ladder_steps


def check_trial(cfg) -> None:
    """Raise ConfigError (one line, naming the key) for an impossible combination."""
    schedule = schedule_of(cfg)
    level = noise_level(cfg, schedule)
    resolve_refs(cfg.data.images, cfg.data.root, cfg.data.glob or "*")
    if cfg.method == "staged":
        _check_staged(cfg, schedule, level)


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
