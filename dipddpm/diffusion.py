"""The DDPM forward process on diffusers' betas (Ho et al. 2020, eq. 4).

Betas are diffusers' `DDPMScheduler` betas, computed here with its own float32
formulas (a test holds them bit-equal to the scheduler's): importing diffusers
costs seconds per process, which every staged trial and the sweep driver would
pay for two short formulas. Images on this side of the boundary are in [-1, 1]
(x0' = 2·x0 − 1).

    q(x_t | x_0) = N( sqrt(ᾱ_t) · x0', (1 − ᾱ_t) · I )
    q(x_t | x_s) = N( sqrt(ᾱ_t/ᾱ_s) · x_s, (1 − ᾱ_t/ᾱ_s) · I ),   s < t

The *equivalent noise std* of step t on the [0,1] scale is what a DIP sees
through the unbiased mapping y01 = (x_t/sqrt(ᾱ_t) + 1)/2:

    σ_t = ½ · sqrt((1 − ᾱ_t) / ᾱ_t)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

BETA_SCHEDULES = ("linear", "squaredcos_cap_v2")


def betas(beta_schedule: str, num_train_timesteps: int) -> torch.Tensor:
    """(T,) float32, as DDPMScheduler(beta_start=1e-4, beta_end=0.02) computes them."""
    if beta_schedule == "linear":
        return torch.linspace(0.0001, 0.02, num_train_timesteps, dtype=torch.float32)
    if beta_schedule == "squaredcos_cap_v2":  # Nichol & Dhariwal's cosine ᾱ(t), betas capped at 0.999

        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        T = num_train_timesteps
        return torch.tensor([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=torch.float32)
    raise ValueError(f"beta_schedule: expected one of {' | '.join(BETA_SCHEDULES)}, got {beta_schedule!r}")


@lru_cache(maxsize=16)
def _alphas_cumprod(beta_schedule: str, num_train_timesteps: int) -> torch.Tensor:
    alphas = 1.0 - betas(beta_schedule, num_train_timesteps)  # float32, as the scheduler
    return torch.cumprod(alphas, dim=0).to(torch.float64)


@dataclass(frozen=True)
class Schedule:
    """ᾱ_t for t = 0 … T−1 and the σ_t they imply."""

    beta_schedule: str
    num_train_timesteps: int

    @property
    def alphas_cumprod(self) -> torch.Tensor:  # (T,) float64
        return _alphas_cumprod(self.beta_schedule, self.num_train_timesteps)

    def abar(self, t: int) -> float:
        """ᾱ_t; by convention ᾱ_{-1} = 1 (the clean image)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def sigma(self, t: int) -> float:
        """Equivalent noise std of step t on the [0,1] scale: ½·sqrt((1−ᾱ)/ᾱ)."""
        a = self.abar(t)
        return 0.5 * ((1.0 - a) / a) ** 0.5

    @property
    def sigmas(self) -> torch.Tensor:  # (T,) float64, increasing in t
        a = self.alphas_cumprod
        return 0.5 * ((1.0 - a) / a).sqrt()

    def step_for_sigma(self, noise_std: float) -> int:
        """The step whose σ_t is nearest to `noise_std` (ties: the lower step)."""
        return int(torch.argmin((self.sigmas - noise_std).abs()).item())


def q_sample(schedule: Schedule, x0: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(ᾱ_t)·x0 + sqrt(1−ᾱ_t)·ε   (x0 in [-1,1])."""
    return q_sample_from(schedule, x0, -1, t, noise)


def q_sample_from(schedule: Schedule, x_s: torch.Tensor, s: int, t: int, noise: torch.Tensor) -> torch.Tensor:
    """x_t ~ q(x_t | x_s) = sqrt(ᾱ_t/ᾱ_s)·x_s + sqrt(1 − ᾱ_t/ᾱ_s)·ε, for s < t.

    s = −1 means x_s is the clean image (ᾱ = 1).
    """
    assert s < t, f"forward step must go to a noisier step: s={s}, t={t}"
    ratio = schedule.abar(t) / schedule.abar(s)
    return (ratio**0.5) * x_s + ((1.0 - ratio) ** 0.5) * noise


def to_signed(x01: torch.Tensor) -> torch.Tensor:
    """[0,1] image -> [-1,1] (the DDPM boundary)."""
    return 2.0 * x01 - 1.0


def shown_to_dip(schedule: Schedule, x_t: torch.Tensor, t: int) -> torch.Tensor:
    """Unbiased [0,1]-scale view of x_t: (x_t/sqrt(ᾱ_t) + 1)/2 = x0 + N(0, σ_t²). Not clipped."""
    return (x_t / schedule.abar(t) ** 0.5 + 1.0) / 2.0
