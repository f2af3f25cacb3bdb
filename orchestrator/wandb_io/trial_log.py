"""A trial's W&B run: logged offline beside the trial, shipped to the driver with its other files.

A trial logs its own run (one per trial) into a temporary folder on whatever
node it runs on, always offline: the node needs no W&B credentials and no
network. When the trial ends, the run's files travel with its other files to
the hub on the driver's node (`orchestrator.sweep.hub`) and land under the run
folder's `wandb/`, where `wandb sync` and `publish` find them; `sync.OnlineSync`
uploads them from the driver when it has a key. This is W&B's own pattern for
machines without access (log offline, `wandb sync` where there is access).

A W&B failure is a warning in the trial's record and never touches local results.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class TrialLogger:
    """One offline wandb run in a local folder; every method is a no-op after a failure, which is
    kept in `warnings` for the record."""

    def __init__(self, rid: str, group: str, project: str, config: dict, local_dir: Path, tags: list[str],
                 mode: str = "offline", name: str | None = None, job_type: str | None = None):
        self.run, self.rid, self.dir = None, rid, local_dir
        self.warnings: list[str] = []
        self._images: set[str] = set()
        if mode == "disabled":
            return
        try:
            import wandb

            local_dir.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=project, group=group, id=rid, name=name or rid.split("-")[0], config=config,
                                  dir=str(local_dir.resolve()), mode="offline", resume="allow", tags=tags,
                                  job_type=job_type, reinit="finish_previous",
                                  settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
        except Exception as exc:  # noqa: BLE001 - W&B must never break a trial
            self._fail("init", exc)

    def _fail(self, what: str, exc: Exception) -> None:
        msg = f"W&B {what} failed on {_host()}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        log.warning("%s (local results unaffected)", msg)
        self.warnings.append(msg)
        self.run = None

    def log(self, step: int, metrics: dict, image: str | None = None) -> None:
        """One evaluation of one fit, as `<image>/<metric>` keys against `<image>/iter` (so each curve in W&B
        is one image's fit, never a sawtooth across images); `step` is the trial's own monotone counter."""
        if self.run is None:
            return
        try:
            values = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            if image:
                if image not in self._images:
                    self._images.add(image)
                    self.run.define_metric(f"{image}/iter")
                    self.run.define_metric(f"{image}/*", step_metric=f"{image}/iter")
                values = {f"{image}/{k}": v for k, v in values.items()}
            self.run.log(values, step=step)
        except Exception as exc:  # noqa: BLE001
            self._fail("log", exc)

    def finish(self, record: dict, images: dict[str, dict]) -> None:
        """The run's images (image -> kind -> (C, H, W)), its summary, and its end."""
        if self.run is None:
            return
        try:
            import wandb

            self.run.log({f"images/{image}/{kind}": wandb.Image(_to_uint8(img), caption=f"{image}: {kind}")
                          for image, kinds in images.items() for kind, img in kinds.items()})
            # after the last log: a logged key's summary is otherwise its last history value
            summary = {k: v for k, v in record["metrics"].items() if isinstance(v, (int, float, bool))}
            self.run.summary.update(summary | {"status": record["status"]})
            self.run.finish(exit_code=0 if record["status"] != "failed" else 1)
        except Exception as exc:  # noqa: BLE001
            self._fail("finish", exc)

    def files(self, timeout: float = 30.0) -> tuple[str | None, dict[str, bytes]]:
        """(the offline run's folder name, its files by relative path): what travels to the driver.
        W&B's service writes the run file on its own schedule: wait until it holds the run's end."""
        folders = sorted((self.dir / "wandb").glob(f"offline-run-*-{self.rid}"))
        if not folders:
            return None, {}
        folder = folders[-1]
        if not _wait_complete(folder / f"run-{self.rid}.wandb", timeout):
            self.warnings.append(f"W&B run file incomplete after {timeout:.0f} s on {_host()}")
        files = {}
        for path in folder.rglob("*"):
            rel = path.relative_to(folder)
            if path.is_file() and not path.is_symlink() and rel.parts[0] != "tmp":
                files[str(rel)] = path.read_bytes()
        return folder.name, files


def _wait_complete(path: Path, timeout: float) -> bool:
    """True once the offline run file holds its exit record."""
    import time

    from .run_file import summarize

    deadline = time.monotonic() + timeout
    while True:
        try:
            if summarize(path)["exit"] is not None:
                return True
        except Exception:  # noqa: BLE001 - half-written: look again
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _host() -> str:
    import socket

    return socket.gethostname()


def _to_uint8(img):
    import numpy as np

    return (img.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
