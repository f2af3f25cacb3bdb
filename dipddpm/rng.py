"""Per-purpose random generators (docs/design.md: "The task").

Every random draw comes from its own generator seeded by (seed, image, purpose).
Two trials with the same seed and image therefore see the bit-identical
observation whatever else differs, so a paired comparison compares methods,
not noise draws. Nothing here touches torch's global RNG.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

# The purposes in use; a typo in a purpose name would silently decorrelate
# two draws that must match, so only these are accepted.
PURPOSES = (
    "observation",
    "stage_targets",
    "dip_input",
    "dip_init",
    "dip_reg_noise",
    "ddpm_data",
    "ddpm_train",
    "ddpm_init",
    "sampling",
)


def derive_seed(seed: int, image: str, purpose: str) -> int:
    """A 63-bit seed from (seed, image, purpose), stable across runs and machines."""
    assert purpose in PURPOSES, f"unknown RNG purpose {purpose!r}"
    digest = hashlib.sha256(f"{seed}\x1f{image}\x1f{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def torch_generator(seed: int, image: str, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator on `device` for one (seed, image, purpose)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, image, purpose))
    return gen


def numpy_generator(seed: int, image: str, purpose: str) -> np.random.Generator:
    """A numpy Generator for one (seed, image, purpose)."""
    return np.random.default_rng(derive_seed(seed, image, purpose))
