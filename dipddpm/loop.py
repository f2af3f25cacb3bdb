"""Shared DIP loop pieces: the fitter (net, input, Adam step, output EMA) and divergence.

Used by staged DIP and, later, by the hybrid method's DIP stage.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .compute import as_fp32, autocast, memory_format, prepare
from .nets import build_dip_net, dip_input
from .rng import torch_generator


class Diverged(RuntimeError):
    """Raised inside a run when the loss became NaN/inf; carries the iteration."""

    def __init__(self, iteration: int):
        super().__init__(f"loss became non-finite by iteration {iteration}")
        self.iteration = iteration


class DipFitter:
    """A fresh DIP network for one image: z fixed, z + N(0, reg_noise_std) each step.

    `step(target)` does one Adam step on MSE(net(z'), target) and returns the
    estimate: the output EMA (the DIP paper's exp_weight) if enabled, else the output.
    """

    def __init__(self, dip_cfg, image: str, seed: int, size: int, device: torch.device, groups: int = 1,
                 compute=None):
        self.cfg = dip_cfg
        self.compute = compute
        self.device = device
        self.groups = groups
        init_gen = torch_generator(seed, image, "dip_init")
        with torch.random.fork_rng(devices=[]):  # module init uses the global RNG: isolate it
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=init_gen)))
            self.net = prepare(build_dip_net(dip_cfg, groups=groups), device, compute)
        self.net.train()  # BatchNorm stays in train mode, as in DIP
        self.z = dip_input(dip_cfg.input_channels * groups, size, dip_cfg.input_scale,
                           torch_generator(seed, image, "dip_input")).to(device, memory_format=memory_format(compute))
        self.reg_gen = torch_generator(seed, image, "dip_reg_noise")
        self.noise = torch.empty(self.z.shape)  # drawn in place each step, on the CPU generator
        self.opt = FlatAdam(self.net.parameters(), dip_cfg.lr)
        self.ema: torch.Tensor | None = None

    def _input(self) -> torch.Tensor:
        if self.cfg.reg_noise_std <= 0:
            return self.z
        torch.randn(self.z.shape, generator=self.reg_gen, out=self.noise)
        return torch.add(self.z, self.noise.to(self.device, non_blocking=True), alpha=self.cfg.reg_noise_std)

    def step(self, target: torch.Tensor, iteration: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step. target: (1, C, H, W). Returns (estimate, raw output, loss) on the device."""
        self.opt.zero_grad()
        with autocast(self.device, self.compute):
            out = self.net(self._input())  # (1, C, H, W) in (0, 1)
        out = as_fp32(out, self.compute)  # the loss, EMA and scores work in fp32, NCHW
        # Σ over fused networks of each one's MSE: every network gets its own plain-DIP gradient.
        loss = F.mse_loss(out, target)
        if self.groups > 1:
            loss = loss * self.groups
        loss.backward()
        try:
            self.opt.step()
        except RuntimeError as exc:  # e.g. Adam's step size overflowing float at an absurd lr
            if "overflow" not in str(exc):
                raise
            raise Diverged(iteration) from exc
        out = out.detach()
        decay = self.cfg.output_ema
        if decay is None:
            return out, out, loss.detach()
        self.ema = out.clone() if self.ema is None else self.ema.mul_(decay).add_(out, alpha=1 - decay)
        return self.ema, out, loss.detach()


class FlatAdam:
    """Adam over one flat buffer that holds every parameter, and one that holds every gradient.

    The network's parameters become views into the buffer and their gradients views into
    the gradient buffer (autograd accumulates into an existing .grad in place), each with the
    parameter's own strides (a channels_last weight stays channels_last), so one fused Adam
    kernel updates all ~100 tensors at once. Adam is elementwise: the update is
    the per-tensor update, without the Python loop over tensors each step. With the plain
    per-tensor Adam, the optimizer took ~8 of a ~40 ms DIP step on a 2-core CPU; flat and
    fused, under 1 ms (benchmarks/bench.py).

    The kernel (`torch._fused_adam_`, what `torch.optim.Adam(fused=True)` calls) is called
    directly: `torch.optim`'s Optimizer imports torch._dynamo on first use, ~2 s of every
    fresh worker's first trial on 2 cores. Builds or devices without the kernel use
    `torch.optim.Adam` on the same flat buffer.
    """

    BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as DIP uses them

    def __init__(self, params, lr: float):
        params = [p for p in params if p.requires_grad]
        strides = [p.stride() for p in params]
        flat = torch.cat([_in_memory_order(p) for p in params])  # (P,)
        self.grad = torch.zeros_like(flat)
        offset = 0
        for p, stride in zip(params, strides):
            p.data = flat.as_strided(p.shape, stride, offset)
            p.grad = self.grad.as_strided(p.shape, stride, offset)
            offset += p.numel()
        self.param = torch.nn.Parameter(flat)
        self.param.grad = self.grad
        self.lr = float(lr)
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
        self.steps = torch.zeros((), dtype=torch.float32, device=flat.device)
        fused = fused_kernel_works(flat.device.type)
        self.fallback = None if fused else torch.optim.Adam([self.param], lr=self.lr, betas=self.BETAS, eps=self.EPS)

    def zero_grad(self) -> None:
        self.grad.zero_()  # in place: the parameters' .grad views must stay attached

    def step(self) -> None:
        if self.fallback is not None:
            self.fallback.step()
            return
        self.steps.add_(1)
        torch._fused_adam_([self.param.data], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
                           amsgrad=False, lr=self.lr, beta1=self.BETAS[0], beta2=self.BETAS[1], weight_decay=0.0,
                           eps=self.EPS, maximize=False, grad_scale=None, found_inf=None)


@functools.lru_cache(maxsize=None)
def fused_kernel_works(device_type: str) -> bool:
    """Whether this torch build runs the fused Adam kernel on this device type, tried once on a tiny
    buffer (torch < 2.4 has the op but no CPU kernel; some devices have none)."""
    if not hasattr(torch, "_fused_adam_"):
        return False
    try:
        p, g, m, v = (torch.ones(4, device=device_type) for _ in range(4))
        step = torch.ones((), device=device_type)  # the step count, already incremented (as in step())
        torch._fused_adam_([p], [g], [m], [v], [], [step], amsgrad=False, lr=0.1,
                           beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, maximize=False, grad_scale=None,
                           found_inf=None)
        return bool(torch.isfinite(p).all()) and float(p[0]) != 1.0
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def _in_memory_order(p: torch.Tensor) -> torch.Tensor:
    """A dense tensor's elements as they lie in memory (NCHW or NHWC alike), flat: (numel,)."""
    assert p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last), "a dense parameter"
    return p.detach().as_strided((p.numel(),), (1,), p.storage_offset())


def check_finite(losses: torch.Tensor, upto: int) -> None:
    """Raise Diverged if any of the first `upto` per-iteration losses is NaN/inf (one host sync)."""
    if not bool(torch.isfinite(losses[:upto]).all()):
        bad = int(torch.nonzero(~torch.isfinite(losses[:upto]))[0].item())
        raise Diverged(bad)


def psnr_db(mse: float) -> float:
    """PSNR in dB at data range 1 from an MSE (for fit diagnostics, not scores)."""
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)
