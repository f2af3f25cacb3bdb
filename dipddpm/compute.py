"""How the networks run: bf16 autocast and the channels_last memory format (`ComputeConfig`).

Both are off by default and bit-for-bit absent then: no autocast context, no
format change. On a tensor-core GPU they are the usual speed-ups; on this
project's CPU they are slower, so the cpu profile leaves them off.
"""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, compute) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when compute.precision is bf16; otherwise nothing at all."""
    if compute is None or compute.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def active(compute) -> bool:
    return compute is not None and (compute.precision != "fp32" or compute.channels_last)


def as_fp32(x: torch.Tensor, compute) -> torch.Tensor:
    """A network's output as the rest of the code expects it: fp32, NCHW (untouched when both are off)."""
    return x.float().contiguous() if active(compute) else x


def memory_format(compute) -> torch.memory_format:
    return torch.channels_last if compute is not None and compute.channels_last else torch.contiguous_format


def prepare(module: torch.nn.Module, device: torch.device, compute) -> torch.nn.Module:
    """The module on `device` in the configured memory format (4-D weights only change layout)."""
    return module.to(device=device, memory_format=memory_format(compute))
