"""Result records and the files beside them: result.json, curves.json, PNGs.

A record holds everything needed to rerun its trial: `python -m dipddpm run
--config result.json` reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write_bytes
from .classical import cbm3d_status
from .config import TrialConfig, config_dict, trial_key
from .metrics import SSIM_VARIANT

PACKAGES = ("torch", "diffusers", "scikit-image", "numpy", "ray", "wandb")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the dipddpm source: part of every cache key, so stale artefacts are never reused."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


@lru_cache(maxsize=1)
def versions() -> dict:
    out = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    out["dipddpm_code"] = code_version()
    try:
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def build_record(cfg: TrialConfig, result, profile: str | None, images) -> dict:
    """The trial's record; `images`: the ImageSet it ran on (identities and content hashes are kept)."""
    described = {part: [img.describe() for img in getattr(images, part)] for part in ("test", "pool")
                 if getattr(images, part)}
    return {
        "trial_key": trial_key(cfg, images),
        "method": cfg.method,
        "seed": cfg.seed,
        "profile": profile,
        "status": result.status,
        "error": result.error,
        "config": config_dict(cfg),
        "images": described,
        "ssim_variant": SSIM_VARIANT,
        "metrics": _jsonable(result.metrics),
        "per_image": _jsonable(result.per_image),
        "device": result.device,
        "references": {"cbm3d": cbm3d_status()},
        "versions": versions(),
    }


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def writable_dir(path: str | Path, flag: str) -> Path:
    """`path` as a folder this process can write in (made if missing), or a one-line ConfigError naming
    `flag`: found before any work starts, not after it."""
    from .errors import ConfigError

    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: expected a folder this user can write, got {exc.strerror or exc}") from None
    return p


def png_bytes(img: torch.Tensor) -> bytes:
    """(C, H, W) float in [0,1] -> an 8-bit PNG file's bytes."""
    import io

    from PIL import Image

    arr = (img.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255.0).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def trial_files(record: dict, result) -> dict[str, bytes]:
    """A trial's files by relative path: result.json, curves.json, images/<image>_<kind>.png.
    Made in memory, so they can travel (PNGs, not arrays) to whichever machine writes them."""
    files = {f"images/{name}_{kind}.png": png_bytes(img) for name, imgs in result.images.items()
             for kind, img in imgs.items()}
    files["curves.json"] = json.dumps(_jsonable(result.curves)).encode()
    files["result.json"] = json.dumps(record, indent=2).encode()
    return files


def write_tree(out_dir: str | Path, files: dict[str, bytes]) -> None:
    """Write relative path -> bytes under out_dir, each file atomically."""
    out = Path(out_dir)
    for rel, data in files.items():
        atomic_write_bytes(out / rel, data)


def write_outputs(out_dir: str | Path, record: dict, result) -> Path:
    """result.json, curves.json and images/<image>_<kind>.png under out_dir."""
    write_tree(out_dir, trial_files(record, result))
    return Path(out_dir) / "result.json"
