"""DDPM training: diffusers UNet2DModel predicting ε on a DDPMScheduler's betas (Ho et al. 2020, Alg. 1).

AdamW, cosine LR with a warm-up that is a fraction of the run (a fixed 500-step
warm-up inside a 210-step run never reaches the LR), optional EMA of weights,
optionally only t <= t_max.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .compute import as_fp32, autocast, memory_format, prepare
from .diffusion import Schedule, to_signed
from .rng import derive_seed, torch_generator


def build_unet(dd, sample_size: int):
    from diffusers import UNet2DModel

    n = len(dd.channels)
    down = tuple("AttnDownBlock2D" if i in dd.attention_levels else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if (n - 1 - i) in dd.attention_levels else "UpBlock2D" for i in range(n))
    return UNet2DModel(sample_size=sample_size, in_channels=3, out_channels=3, layers_per_block=dd.layers_per_block,
                       block_out_channels=tuple(dd.channels), down_block_types=down, up_block_types=up,
                       norm_num_groups=dd.norm_groups)


def planned_steps(dd) -> tuple[int, float]:
    """(optimizer steps, epochs) the config asks for; exactly one of train_steps | epochs is set."""
    per_epoch = math.ceil(dd.dataset_size / dd.batch_size)
    if dd.train_steps is not None:
        return dd.train_steps, dd.train_steps / per_epoch
    return dd.epochs * per_epoch, float(dd.epochs)


@dataclass
class TrainedDdpm:
    model: torch.nn.Module  # the weights used for sampling (the EMA when enabled), eval mode
    train_steps: int
    epochs: float
    loss_curve: list[float] = field(default_factory=list)  # mean loss per 1/20 of the run
    params: int = 0
    # What a trial running beside this one moves little (docs/design.md: "Statistics"): the process's CPU seconds, and the
    # median over 1/20ths of the run of the wall time per step (a burst of contention moves one chunk).
    cpu_s: float = 0.0
    step_ms_median: float = 0.0
    step_ms_min: float = 0.0  # the fastest 1/20th: the step's cost with the least interference


class _WeightEma:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up of the decay, as diffusers' EMAModel
        for s, p in zip(self.shadow.parameters(), model.parameters()):
            s.lerp_(p, 1 - d)


def train_ddpm(dd, data01: torch.Tensor, schedule: Schedule, seed: int, device: torch.device,
               report=None, compute=None) -> TrainedDdpm:
    """Train on (N, 3, c, c) images in [0,1]; `report(step, metrics)` every 1/20 of the run;
    `compute`: bf16 autocast / channels_last for the UNet's passes (loss and AdamW stay fp32)."""
    from diffusers.optimization import get_cosine_schedule_with_warmup

    with torch.random.fork_rng(devices=[]):  # UNet init draws from the global RNG: isolate it
        torch.manual_seed(derive_seed(seed, "ddpm", "ddpm_init"))
        model = prepare(build_unet(dd, data01.shape[-1]), device, compute).train()
    steps, epochs = planned_steps(dd)
    opt = torch.optim.AdamW(model.parameters(), lr=dd.lr)
    lr_sched = get_cosine_schedule_with_warmup(opt, round(dd.warmup_frac * steps), steps)
    ema = _WeightEma(model, dd.ema) if dd.ema is not None else None
    t_hi = schedule.num_train_timesteps - 1 if dd.t_max is None else dd.t_max
    abar = schedule.alphas_cumprod.to(device=device, dtype=torch.float32)
    gen = torch_generator(seed, "ddpm", "ddpm_train")
    data = to_signed(data01)  # (N, 3, c, c) in [-1, 1]
    losses, curve, chunk = [], [], max(1, steps // 20)
    step_ms, cpu0, t_chunk, last = [], time.process_time(), time.perf_counter(), 0
    for step, idx in enumerate(_batches(len(data), dd.batch_size, steps, gen)):
        x0 = data[idx].to(device)
        t = torch.randint(0, t_hi + 1, (len(idx),), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        a = abar[t.to(device)].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps.to(device)  # q(x_t | x0), Ho eq. 4
        with autocast(device, compute):
            pred = model(x_t.contiguous(memory_format=memory_format(compute)), t.to(device)).sample
        loss = F.mse_loss(as_fp32(pred, compute), eps.to(device))  # Ho Alg. 1, L_simple
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_sched.step()
        if ema is not None:
            ema.update(model, step)
        losses.append(loss.detach())
        if (step + 1) % chunk == 0 or step + 1 == steps:
            curve.append(float(torch.stack(losses).mean()))  # a host sync: the chunk's steps are done
            now = time.perf_counter()
            step_ms.append(1000 * (now - t_chunk) / (step + 1 - last))
            t_chunk, last, losses = now, step + 1, []
            if report is not None:
                report(step + 1, {"train_loss": curve[-1], "train_progress": (step + 1) / steps})
    final = ema.shadow if ema is not None else model.eval()
    params = sum(p.numel() for p in model.parameters())
    return TrainedDdpm(final.eval().requires_grad_(False), steps, epochs, curve, params, time.process_time() - cpu0,
                       statistics.median(step_ms), min(step_ms))


def _batches(n: int, batch: int, steps: int, gen: torch.Generator):
    """Index batches from per-epoch shuffles, `steps` of them (the last batch of an epoch may be short)."""
    done = 0
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            if done == steps:
                return
            yield perm[i : i + batch]
            done += 1
