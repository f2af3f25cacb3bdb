"""The observation model (docs/design.md: "The task"): y = x_{t_obs} of the DDPM forward process.

A config gives either `noise_std` (σ on [0,1]) or `t_obs`. From σ we take the
step whose σ_t is nearest and build y at exactly that step, so DDPM denoising
from y is exact; the σ actually used is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .diffusion import Schedule, q_sample, shown_to_dip, to_signed
from .errors import ConfigError
from .rng import torch_generator


@dataclass(frozen=True)
class NoiseLevel:
    t_obs: int  # the observation's step
    noise_std: float  # σ_{t_obs} on the [0,1] scale: the σ actually used

    @property
    def noise_std_255(self) -> float:
        return self.noise_std * 255.0


def schedule_of(cfg) -> Schedule:
    return Schedule(cfg.diffusion.beta_schedule, cfg.diffusion.num_train_timesteps)


def noise_level(cfg, schedule: Schedule) -> NoiseLevel:
    """Resolve `degradation.noise_std | t_obs` to the step used and its σ."""
    deg = cfg.degradation
    T = schedule.num_train_timesteps
    if (deg.noise_std is None) == (deg.t_obs is None):
        raise ConfigError("degradation: expected exactly one of noise_std or t_obs, got "
                          + ("both" if deg.noise_std is not None else "neither"))
    if deg.t_obs is not None:
        if deg.t_obs >= T:
            raise ConfigError(f"degradation.t_obs: expected an integer in [1, {T - 1}], got {deg.t_obs}")
        t = deg.t_obs
    else:
        t = schedule.step_for_sigma(deg.noise_std)
    return NoiseLevel(t_obs=t, noise_std=schedule.sigma(t))


@dataclass(frozen=True)
class Observation:
    name: str  # image id, part of every RNG key
    x0: torch.Tensor  # (C, H, W) clean image in [0,1]
    y: torch.Tensor  # (C, H, W) x_{t_obs} in the DDPM's [-1,1]-based space
    y01: torch.Tensor  # (C, H, W) unbiased [0,1] view of y, not clipped
    level: NoiseLevel


def observe(name: str, x0: torch.Tensor, schedule: Schedule, level: NoiseLevel, seed: int) -> Observation:
    """y = sqrt(ᾱ)·x0' + sqrt(1−ᾱ)·ε, ε from the (seed, image, 'observation') generator."""
    gen = torch_generator(seed, name, "observation")
    eps = torch.randn(x0.shape, generator=gen, dtype=torch.float32)
    y = q_sample(schedule, to_signed(x0), level.t_obs, eps).to(torch.float32)
    return Observation(name, x0, y, shown_to_dip(schedule, y, level.t_obs).to(torch.float32), level)
