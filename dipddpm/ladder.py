"""The staged-DIP ladder: which forward-process steps the stage targets sit at.

Given as `staged.levels` (multiples of the observation's σ, mapped to the step
with the nearest σ_t) or `staged.timesteps` (explicit steps). Descending: most
noisy first. With `targets: observation` every stage must be at or above y's
noise level, because only y is known.
"""

from __future__ import annotations

from .degradation import NoiseLevel
from .diffusion import Schedule
from .errors import ConfigError


def ladder_steps(st, schedule: Schedule, level: NoiseLevel) -> list[int]:
    """Steps t_1 > t_2 > … of the stage targets (staged variant only)."""
    observed = st.targets == "observation"
    T = schedule.num_train_timesteps
    if st.levels is not None:
        steps = []
        for i, lv in enumerate(st.levels):
            if observed and lv < 1.0:
                raise ConfigError(f"staged.levels[{i}]: expected a level >= 1 with targets=observation "
                                  f"(only y is known), got {lv}")
            t = schedule.step_for_sigma(lv * level.noise_std)
            if t in steps:
                raise ConfigError(f"staged.levels[{i}]: level {lv} maps to step {t}, the same step as "
                                  f"level {st.levels[steps.index(t)]}; expected levels on distinct steps")
            steps.append(t)
        where = "staged.levels"
    else:
        steps = list(st.timesteps)
        where = "staged.timesteps"
        for i, t in enumerate(steps):
            if t >= T:
                raise ConfigError(f"{where}[{i}]: expected a step in [0, {T - 1}], got {t}")
            if observed and t < level.t_obs:
                raise ConfigError(f"{where}[{i}]: expected a step >= t_obs={level.t_obs} with "
                                  f"targets=observation (only y is known), got {t}")
    for i in range(1, len(steps)):
        if steps[i] >= steps[i - 1]:
            raise ConfigError(f"{where}[{i}]: expected a strictly descending ladder (most noisy first), "
                              f"got step {steps[i]} after {steps[i - 1]}")
    return steps
