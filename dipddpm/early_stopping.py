"""Early-stopping trackers that run on the device, with no host sync per step.

- PeakTracker: PSNR against x0 at every iteration (one MSE on an output that is
  already computed), so the oracle peak is exact. Uses x0: an upper bound,
  never a method; tables label it ORACLE.
- WmvDetector: ES-WMV (Wang et al., "Early stopping for deep image prior"). The
  variance of the last W estimates around their mean,

      VAR_t = 1/W · Σ_{i=t−W+1..t} ‖x_i − x̄_t‖² / N,

  fires when VAR has not reached a new minimum for P iterations; the ES point
  is the iteration of that minimum. Computed from running sums in float64.
  The variance is taken over the network's raw outputs (an output EMA would
  smooth away the very fluctuation the detector watches), while the image kept
  at the ES point is the estimate the method reports (the EMA when enabled).
"""

from __future__ import annotations

import torch


class PeakTracker:
    """Exact oracle peak: per-iteration PSNR vs x0 and the estimate at the best one."""

    def __init__(self, x0: torch.Tensor, total: int):
        self.x0 = x0  # (1, C, H, W)
        self.curve = torch.full((total,), float("nan"), device=x0.device)
        self.best_psnr = torch.tensor(float("-inf"), device=x0.device)
        self.best_iter = torch.tensor(-1, device=x0.device)
        self.best_img = torch.zeros_like(x0)

    def update(self, est: torch.Tensor, it: int) -> None:
        mse = torch.mean((est - self.x0) ** 2)
        p = -10.0 * torch.log10(mse)  # data range 1
        self.curve[it] = p
        better = p > self.best_psnr
        self.best_psnr = torch.where(better, p, self.best_psnr)
        self.best_iter = torch.where(better, torch.tensor(it, device=p.device), self.best_iter)
        self.best_img = torch.where(better, est, self.best_img)


class WmvDetector:
    """ES-WMV on a stream of estimates; freezes its ES point once it fires."""

    def __init__(self, window: int, patience: int, like: torch.Tensor, total: int, start: int = 0,
                 curve: torch.Tensor | None = None):
        """`curve`: a (total,) tensor to write VAR_t into (detectors that take turns share one)."""
        self.window, self.patience, self.start = window, patience, start
        dev = like.device
        self.buffer = torch.zeros((window, *like.shape[1:]), device=dev)  # (W, C, H, W) ring
        self.sum = torch.zeros(like.shape[1:], device=dev, dtype=torch.float64)
        self.sumsq = torch.zeros((), device=dev, dtype=torch.float64)
        self.seen = 0
        self.curve = torch.full((total,), float("nan"), device=dev) if curve is None else curve  # VAR_t, NaN before W
        self.best_var = torch.tensor(float("inf"), device=dev, dtype=torch.float64)
        self.best_iter = torch.tensor(-1, device=dev)
        self.best_img = torch.zeros_like(like)
        self.fired_t = torch.tensor(False, device=dev)

    def update(self, out: torch.Tensor, it: int, est: torch.Tensor | None = None) -> None:
        """out: (1, C, H, W) raw output whose variance is watched; est: the estimate kept (default: out)."""
        est = out if est is None else est
        x = out[0]
        slot = self.seen % self.window
        if self.seen >= self.window:  # evict the oldest estimate from the running sums
            old = self.buffer[slot].double()
            self.sum -= old
            self.sumsq -= torch.sum(old * old)
        xd = x.double()
        self.sum += xd
        self.sumsq += torch.sum(xd * xd)
        self.buffer[slot] = x
        self.seen += 1
        if self.seen < self.window:
            return
        n = x.numel()
        var = (self.sumsq - torch.sum(self.sum * self.sum) / self.window) / (self.window * n)
        self.curve[it] = var.float()
        live = ~self.fired_t
        better = (var < self.best_var) & live
        t = torch.tensor(it, device=var.device)
        self.best_var = torch.where(better, var, self.best_var)
        self.best_iter = torch.where(better, t, self.best_iter)
        self.best_img = torch.where(better, est, self.best_img)
        self.fired_t = self.fired_t | (live & (t - self.best_iter >= self.patience))

    def fired(self) -> bool:
        """Host-side check (one sync); call it at evaluation points only."""
        return bool(self.fired_t.item())
