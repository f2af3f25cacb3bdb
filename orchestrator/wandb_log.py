"""W&B logging from inside a trial (one run per trial, id derived from the trial key).

Logged from the worker rather than through WandbLoggerCallback: on 2 cores the
callback costs several seconds per trial. Offline unless an API key is set.
A W&B failure logs a warning and never touches the local record.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


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


def run_id(trial_key: str) -> str:
    return f"t-{trial_key}"


class TrialLogger:
    """Wraps one wandb run; every method is a no-op after a failure."""

    def __init__(self, trial_key: str, sweep: str, project: str, config: dict, wandb_dir: Path, tags: list[str]):
        self.run = None
        if wandb_mode() == "disabled":
            return
        try:
            import wandb

            wandb_dir.mkdir(parents=True, exist_ok=True)
            drop_offline_runs(wandb_dir, run_id(trial_key))
            self.run = wandb.init(project=project, group=sweep, id=run_id(trial_key), name=trial_key,
                                  config=config, dir=str(wandb_dir.resolve()), mode=wandb_mode(),
                                  resume="allow", tags=tags, reinit="finish_previous",
                                  settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
        except Exception as exc:  # noqa: BLE001 - W&B must never break a trial
            log.warning("W&B init failed for %s: %s (local results unaffected)", trial_key, exc)

    def log(self, step: int, metrics: dict) -> None:
        if self.run is None:
            return
        try:
            self.run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
                         step=step)
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B log failed: %s", exc)
            self.run = None

    def finish(self, record: dict, images: dict) -> None:
        if self.run is None:
            return
        try:
            import wandb

            summary = {k: v for k, v in record["metrics"].items() if isinstance(v, (int, float, bool))}
            self.run.summary.update(summary | {"status": record["status"]})
            self.run.log({f"images/{name}": wandb.Image(_to_uint8(img), caption=name)
                          for name, img in images.items()})
            self.run.finish(exit_code=0 if record["status"] != "failed" else 1)
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B finish failed: %s (local results unaffected)", exc)


def _to_uint8(img):
    import numpy as np

    return (img.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)


def drop_offline_runs(wandb_dir: Path, rid: str) -> None:
    """A trial that restarts (killed driver, retry) replaces its earlier, unfinished offline run."""
    for old in (wandb_dir / "wandb").glob(f"offline-run-*-{rid}"):
        shutil.rmtree(old, ignore_errors=True)
