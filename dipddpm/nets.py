"""DIP networks: the hourglass "skip" net of Ulyanov et al. (2018) and the seeds' small CNN.

Skip net, per scale i (0 = full resolution), as in the paper's supplement:

    skip_i   = act(BN(conv1x1(x)))                                   # skip channels
    down_i   = act(BN(conv3x3(act(BN(conv3x3_stride2(x))))))         # channels
    deeper_i = upsample2x(down_i -> level i+1 -> ...)                 # bilinear
    out_i    = act(BN(conv1x1(act(BN(conv3x3(BN(cat(skip_i, deeper_i))))))))

then a 1×1 conv to RGB and a sigmoid. Reflection padding, LeakyReLU(0.2),
BatchNorm kept in train mode (batch of one, as DIP is trained).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    """Reflection-padded convolution (the DIP reference pads by reflection, not zeros)."""
    pad = (k - 1) // 2
    layers: list[nn.Module] = [nn.ReflectionPad2d(pad)] if pad else []
    layers.append(nn.Conv2d(c_in, c_out, k, stride=stride, bias=True))
    return nn.Sequential(*layers)


def bn_act(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True))


class SkipLevel(nn.Module):
    """One scale of the hourglass; `deeper` is the next level (None at the bottom)."""

    def __init__(self, c_in: int, ch: int, ch_skip: int, ch_up_deeper: int, deeper: "SkipLevel | None", k: int):
        super().__init__()
        self.skip = nn.Sequential(conv(c_in, ch_skip, 1), bn_act(ch_skip)) if ch_skip else None
        self.down = nn.Sequential(conv(c_in, ch, k, stride=2), bn_act(ch), conv(ch, ch, k), bn_act(ch))
        self.deeper = deeper
        c_cat = ch_skip + (ch_up_deeper if deeper is not None else ch)
        self.up = nn.Sequential(
            nn.BatchNorm2d(c_cat), conv(c_cat, ch, k), bn_act(ch), conv(ch, ch, 1), bn_act(ch)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, ch, H, W)
        d = self.down(x)  # (B, ch, H/2, W/2)
        if self.deeper is not None:
            d = self.deeper(d)
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.skip is None:
            return self.up(d)
        return self.up(torch.cat([self.skip(x), d], dim=1))


class SkipNet(nn.Module):
    """The DIP hourglass with skip connections; output in (0, 1) through a sigmoid."""

    def __init__(self, in_channels: int = 32, out_channels: int = 3, scales: int = 5,
                 channels: int = 128, skip_channels: int = 4, kernel: int = 3):
        super().__init__()
        level = None
        # Build bottom-up: level i takes `channels` in unless it is the top (input noise).
        for i in reversed(range(scales)):
            c_in = in_channels if i == 0 else channels
            level = SkipLevel(c_in, channels, skip_channels, channels, level, kernel)
        self.body = level
        self.head = nn.Conv2d(channels, out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, in, H, W) -> (B, out, H, W)
        return torch.sigmoid(self.head(self.body(z)))


class SimpleNet(nn.Module):
    """The seeds' plain CNN: three 3×3 convs with BN and ReLU, sigmoid out."""

    def __init__(self, in_channels: int = 32, out_channels: int = 3, channels: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            conv(in_channels, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv(channels, channels, 3), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv(channels, out_channels, 3),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))


def build_dip_net(cfg, out_channels: int = 3) -> nn.Module:
    """The DIP network a `DipConfig` describes."""
    if cfg.net == "skip":
        return SkipNet(cfg.input_channels, out_channels, cfg.scales, cfg.channels, cfg.skip_channels, cfg.kernel)
    return SimpleNet(cfg.input_channels, out_channels, cfg.channels)


def dip_input(channels: int, size: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """The fixed DIP input: U(0, scale) noise, (1, channels, size, size), drawn on the CPU."""
    return torch.rand((1, channels, size, size), generator=gen) * scale
