"""The DIP skip network written the plain way, as the DIP reference code builds it: one nn.Sequential
of the same layers (reflection pad + conv, BatchNorm, LeakyReLU, a Concat module for skips,
nn.Upsample), trained with a default Adam step and a per-step `loss.item()`.

The benchmark's baseline for our SkipNet: same layers, same parameter count, same input.
"""

from __future__ import annotations

import torch
from torch import nn


class Concat(nn.Module):
    """Run each branch on the input and concatenate along channels (cropped to the smallest, as the reference)."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        crop = [o[:, :, (o.shape[2] - h) // 2:(o.shape[2] - h) // 2 + h, (o.shape[3] - w) // 2:(o.shape[3] - w) // 2 + w]
                for o in outs]
        return torch.cat(crop, dim=1)


def _conv(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    pad = (k - 1) // 2
    return ([nn.ReflectionPad2d(pad)] if pad else []) + [nn.Conv2d(c_in, c_out, k, stride=stride, bias=True)]


def _bn_act(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]


def plain_skip(in_ch: int = 32, out_ch: int = 3, scales: int = 5, ch: int = 128, skip_ch: int = 4,
               k: int = 3) -> nn.Sequential:
    """Build top-down like the reference `skip()`: each level's deeper branch nests the next level."""
    model = nn.Sequential()
    tmp, depth = model, in_ch
    for i in range(scales):
        deeper = nn.Sequential(*_conv(depth, ch, k, 2), *_bn_act(ch), *_conv(ch, ch, k), *_bn_act(ch))
        inner = nn.Sequential()
        if i < scales - 1:
            deeper.append(inner)
        deeper.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        if skip_ch:
            skip = nn.Sequential(*_conv(depth, skip_ch, 1), *_bn_act(skip_ch))
            tmp.append(Concat(skip, deeper))
        else:
            tmp.append(deeper)
        tmp.append(nn.BatchNorm2d(skip_ch + ch))
        for layer in (*_conv(skip_ch + ch, ch, k), *_bn_act(ch), *_conv(ch, ch, 1), *_bn_act(ch)):
            tmp.append(layer)
        tmp, depth = inner, ch
    model.append(nn.Conv2d(ch, out_ch, 1))
    model.append(nn.Sigmoid())
    return model


class PlainStep:
    """The reference training step: Adam with its defaults, z + noise, MSE, backward, step, the
    output average (the reference's exp_weight, which our step keeps too), loss.item()."""

    def __init__(self, net: nn.Module, z: torch.Tensor, target: torch.Tensor, lr: float, reg_noise_std: float,
                 exp_weight: float = 0.99):
        self.net, self.z, self.target, self.reg = net.train(), z, target, reg_noise_std
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.exp_weight, self.out_avg = exp_weight, None

    def __call__(self) -> float:
        self.opt.zero_grad()
        out = self.net(self.z + self.reg * torch.randn_like(self.z))
        loss = torch.nn.functional.mse_loss(out, self.target)
        loss.backward()
        self.opt.step()
        out = out.detach()
        self.out_avg = out if self.out_avg is None else self.out_avg * self.exp_weight + out * (1 - self.exp_weight)
        return loss.item()
