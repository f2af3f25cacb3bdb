"""DIP networks: the hourglass "skip" net of Ulyanov et al. (2018) and the seeds' small CNN.

Skip net, per scale i (0 = full resolution), as in the paper's supplement:

    skip_i   = act(BN(conv1x1(x)))                                   # skip channels
    down_i   = act(BN(conv3x3(act(BN(conv3x3_stride2(x))))))         # channels
    deeper_i = upsample2x(down_i -> level i+1 -> ...)                 # bilinear
    out_i    = act(BN(conv1x1(act(BN(conv3x3(BN(cat(skip_i, deeper_i))))))))

then a 1×1 conv to RGB and a sigmoid. Reflection padding, LeakyReLU(0.2),
BatchNorm kept in train mode (batch of one, as DIP is trained).

`groups=G` fuses G independent networks into one (grouped convolutions,
per-group BatchNorm channels, group-aware concatenation): G small DIPs fitted
at once, e.g. one per DDPM training crop, at far less than G times the cost.
With G = 1 it is exactly the paper's network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Reflection-padded convolution (the DIP reference pads by reflection, not zeros); per-group sizes."""
    pad = (k - 1) // 2
    layers: list[nn.Module] = [nn.ReflectionPad2d(pad)] if pad else []
    layers.append(nn.Conv2d(c_in * groups, c_out * groups, k, stride=stride, bias=True, groups=groups))
    return nn.Sequential(*layers)


def batch_norm(c: int) -> nn.BatchNorm2d:
    """BatchNorm on the batch's statistics only: DIP trains and predicts in train mode, so running
    averages would never be read; not keeping them saves their update every step (same parameters)."""
    return nn.BatchNorm2d(c, track_running_stats=False)


def bn_act(c: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(batch_norm(c * groups), nn.LeakyReLU(0.2, inplace=True))


def cat_groups(a: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
    """Concatenate channels group by group: (B, G·ca, H, W), (B, G·cb, H, W) -> (B, G·(ca+cb), H, W)."""
    if groups == 1:
        return torch.cat([a, b], dim=1)
    n, _, h, w = a.shape  # reshape: a channels_last input cannot be viewed this way
    return torch.cat([a.reshape(n, groups, -1, h, w), b.reshape(n, groups, -1, h, w)], dim=2).reshape(n, -1, h, w)


class SkipLevel(nn.Module):
    """One scale of the hourglass; `deeper` is the next level (None at the bottom)."""

    def __init__(self, c_in: int, ch: int, ch_skip: int, ch_up_deeper: int, deeper: "SkipLevel | None", k: int,
                 groups: int = 1):
        super().__init__()
        g = self.groups = groups
        self.skip = nn.Sequential(conv(c_in, ch_skip, 1, groups=g), bn_act(ch_skip, g)) if ch_skip else None
        self.down = nn.Sequential(conv(c_in, ch, k, 2, g), bn_act(ch, g), conv(ch, ch, k, groups=g), bn_act(ch, g))
        self.deeper = deeper
        c_cat = ch_skip + (ch_up_deeper if deeper is not None else ch)
        self.up = nn.Sequential(
            batch_norm(c_cat * g), conv(c_cat, ch, k, groups=g), bn_act(ch, g), conv(ch, ch, 1, groups=g), bn_act(ch, g)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, ch, H, W)
        d = self.down(x)  # (B, ch, H/2, W/2)
        if self.deeper is not None:
            d = self.deeper(d)
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.skip is None:
            return self.up(d)
        return self.up(cat_groups(self.skip(x), d, self.groups))


class SkipNet(nn.Module):
    """The DIP hourglass with skip connections; output in (0, 1) through a sigmoid."""

    def __init__(self, in_channels: int = 32, out_channels: int = 3, scales: int = 5,
                 channels: int = 128, skip_channels: int = 4, kernel: int = 3, groups: int = 1):
        super().__init__()
        level = None
        # Build bottom-up: level i takes `channels` in unless it is the top (input noise).
        for i in reversed(range(scales)):
            c_in = in_channels if i == 0 else channels
            level = SkipLevel(c_in, channels, skip_channels, channels, level, kernel, groups)
        self.body = level
        self.head = nn.Conv2d(channels * groups, out_channels * groups, 1, groups=groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, G·in, H, W) -> (B, G·out, H, W)
        return torch.sigmoid(self.head(self.body(z)))


class SimpleNet(nn.Module):
    """The seeds' plain CNN: three 3×3 convs with BN and ReLU, sigmoid out."""

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            conv(in_channels, channels, 3), batch_norm(channels), nn.ReLU(inplace=True),
            conv(channels, channels, 3), batch_norm(channels), nn.ReLU(inplace=True),
            conv(channels, out_channels, 3),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


def build_dip_net(cfg, out_channels: int = 3, groups: int = 1) -> nn.Module:
    """The DIP network a `DipConfig` describes (`groups` fused copies, skip net only)."""
    if cfg.net == "skip":
        return SkipNet(cfg.input_channels, out_channels, cfg.scales, cfg.channels, cfg.skip_channels, cfg.kernel, groups)
    assert groups == 1, "grouped fitting is implemented for the skip net"
    return SimpleNet(cfg.input_channels, out_channels, cfg.channels)


def dip_input(channels: int, size: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """The fixed DIP input: U(0, scale) noise, (1, channels, size, size), drawn on the CPU."""
    return torch.rand((1, channels, size, size), generator=gen) * scale
