"""The reverse process, started exactly at a given step (docs/design.md: "Hybrid DIP → DDPM").

Written from diffusers' `alphas_cumprod` because the start step (t0, t_obs or
T−1) is arbitrary and a diffusers scheduler's timestep list cannot always
begin there. The model predicts ε; x̂0 is clipped to [-1, 1] at every step,
as diffusers does (clip_sample=True).

- ddpm: ancestral steps t, t−1, …, 0 (Ho et al. 2020, eq. 6–7; variance β̃_t)
- ddim: η = 0, `steps` UNet calls from t_start down to x̂0 (Song et al. 2021, eq. 12)
- onestep: Tweedie's estimate x̂0 at t_start, one UNet call
"""

from __future__ import annotations

import torch

from .compute import as_fp32, autocast, memory_format
from .diffusion import Schedule


def timesteps(sampler: str, t_start: int, steps: int | None) -> list[int]:
    """The UNet is called at these steps, in order; the first is always t_start."""
    if sampler == "ddpm":
        return list(range(t_start, -1, -1))
    if sampler == "onestep":
        return [t_start]
    n = max(1, min(int(steps), t_start + 1))
    # n calls at t_start = s_0 > s_1 > … > s_{n−1} >= 0, then the final jump to x̂0.
    grid = torch.linspace(t_start, 0, n + 1)[:-1].round().long().tolist()
    out: list[int] = []
    for t in grid:
        if not out or t < out[-1]:
            out.append(int(t))
    return out


def predict_start_from_noise(x_t: torch.Tensor, eps: torch.Tensor, abar_t: float) -> torch.Tensor:
    """x̂0 = (x_t − sqrt(1−ᾱ_t)·ε̂) / sqrt(ᾱ_t), clipped to [-1, 1]."""
    return ((x_t - (1 - abar_t) ** 0.5 * eps) / abar_t**0.5).clamp(-1, 1)


def ddpm_step(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
    """x_{t−1} ~ q(x_{t−1} | x_t, x̂0) (Ho eq. 6–7): posterior mean + sqrt(β̃_t)·z, no noise at t = 0."""
    a_t, a_prev = schedule.abar(t), schedule.abar(t - 1)
    beta_t = 1 - a_t / a_prev
    x0 = predict_start_from_noise(x_t, eps, a_t)
    mean = (a_prev**0.5 * beta_t / (1 - a_t)) * x0 + ((1 - beta_t) ** 0.5 * (1 - a_prev) / (1 - a_t)) * x_t
    if t == 0:
        return mean
    var = (1 - a_prev) / (1 - a_t) * beta_t
    return mean + var**0.5 * noise


def ddim_step(schedule: Schedule, x_t: torch.Tensor, eps: torch.Tensor, t: int, s: int) -> torch.Tensor:
    """η = 0: x_s = sqrt(ᾱ_s)·x̂0 + sqrt(1−ᾱ_s)·ε̂, with ε̂ re-derived from the clipped x̂0 (s = −1: x̂0)."""
    a_t, a_s = schedule.abar(t), schedule.abar(s)
    x0 = predict_start_from_noise(x_t, eps, a_t)
    eps = (x_t - a_t**0.5 * x0) / (1 - a_t) ** 0.5
    return a_s**0.5 * x0 + (1 - a_s) ** 0.5 * eps


@torch.no_grad()
def reverse(model, x_start: torch.Tensor, t_start: int, sampler: str, steps: int | None, schedule: Schedule,
            gen: torch.Generator, compute=None) -> tuple[torch.Tensor, int]:
    """Run the reverse process from x_start = x_{t_start}; returns (x̂0 in [-1,1], UNet calls).
    `compute`: bf16 / channels_last for the UNet calls; the update itself stays fp32."""
    ts = timesteps(sampler, t_start, steps)
    x = x_start
    for i, t in enumerate(ts):
        t_in = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        with autocast(x.device, compute):
            eps = as_fp32(model(x.contiguous(memory_format=memory_format(compute)), t_in).sample, compute)
        if sampler == "onestep":
            x = predict_start_from_noise(x, eps, schedule.abar(t))
        elif sampler == "ddim":
            x = ddim_step(schedule, x, eps, t, ts[i + 1] if i + 1 < len(ts) else -1)
        else:
            noise = torch.randn(x.shape, generator=gen).to(x.device)
            x = ddpm_step(schedule, x, eps, t, noise)
    return x.clamp(-1, 1), len(ts)
