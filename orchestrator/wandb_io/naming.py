"""W&B's names and mode: the project, run ids, groups and names, and whether runs go online."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


DEFAULT_PROJECT = "dipddpm"


def project(explicit: str | None = None) -> str:
    """The W&B project: the one given (--project), else $WANDB_PROJECT, else dipddpm."""
    return explicit or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT


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
    """The summary run's group; a trial's run is grouped by its grid cell (`cell_group`)."""
    return f"{sweep}/{profile}"


def run_scope(run_uid: str) -> str:
    """The run folder's short id: a --fresh rerun (a new folder) gets groups of its own."""
    return run_uid[:6]


def cell_group(sweep: str, profile: str, run_uid: str, cell_key: str, label: str) -> str:
    """One W&B group per grid cell of one run folder, so a cell's seeds aggregate (W&B keeps 128 chars)."""
    return f"{sweep}/{profile}@{run_scope(run_uid)}/{cell_key[:8]} {label}"[:128]


def run_name(label: str, seed: int) -> str:
    """A readable run name: the grid cell and the seed."""
    return f"{label} · seed {seed}"[:128]


def summary_run_id(sweep: str, profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"summary-{sweep}-{profile}")[:64]


def drop_offline_runs(wandb_dir: Path, rid: str) -> None:
    """A run made again (the summary run of a rerun report) replaces its earlier offline run."""
    import shutil

    for old in (wandb_dir / "wandb").glob(f"offline-run-*-{rid}"):
        shutil.rmtree(old, ignore_errors=True)
