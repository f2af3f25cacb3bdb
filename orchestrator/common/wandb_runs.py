"""W&B run naming and mode, shared by the trials' runs (sweep) and the summary run and publishing (report)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def wandb_mode() -> str:
    """WANDB_MODE if set; online only when an API key is configured; else offline."""
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"  # where `wandb login` stores the key
    if netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def worker_mode(driver_mode: str) -> str:
    """What a trial's node logs in: offline unless W&B is off (uploading is the driver's job)."""
    return "disabled" if driver_mode == "disabled" else "offline"


def run_id(sweep: str, profile: str, run_uid: str, trial_key: str) -> str:
    """Unique per (sweep, profile, run folder, trial): two sweeps that share a cell, or a --fresh
    rerun (a new run folder), never resume each other's run; a resumed sweep continues its own."""
    scope = hashlib.sha256(f"{sweep}\x1f{profile}\x1f{run_uid}".encode()).hexdigest()[:8]
    return f"{trial_key}-{scope}"


def group_name(sweep: str, profile: str) -> str:
    return f"{sweep}/{profile}"


def summary_run_id(sweep: str, profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"summary-{sweep}-{profile}")[:64]


def drop_offline_runs(wandb_dir: Path, rid: str) -> None:
    """A run made again (the summary run of a rerun report) replaces its earlier offline run."""
    import shutil

    for old in (wandb_dir / "wandb").glob(f"offline-run-*-{rid}"):
        shutil.rmtree(old, ignore_errors=True)
