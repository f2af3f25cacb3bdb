"""W&B on a cluster: offline runs made beside each trial, shipped to the driver, synced from there.

A trial logs its own run (one per trial) into a temporary folder on whatever
node it runs on, always offline: the node needs no W&B credentials and no
network. When the trial ends, the run's files travel with its other files to
the hub on the driver's node (`hub.py`) and land under the run folder's
`wandb/`, where `wandb sync` and `publish` find them. When the driver has a
key (online mode), `OnlineSync` uploads each run from the driver as it
arrives: credentials stay where the operator put them, never in
`runtime_env`, a config or a record. This is W&B's own pattern for machines
without access (log offline, `wandb sync` where there is access), with the
sync done on the driver's node, as Ray's WandbLoggerCallback logs there.

A W&B failure is a warning in the trial's record and never touches local results.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
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

    from .wandb_file import summarize

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


class OnlineSync:
    """Uploads offline runs from the driver, in the background, as their trials finish.

    `wandb sync` runs in the driver's environment, the only place the credentials are, in a session of
    its own so that a hung upload (no network, a dead proxy) is killed whole. Every upload is bounded:
    one batch may take at most `timeout` seconds, and `close` waits at most `timeout` for what is still
    queued. A run that is not uploaded stays in the run folder, named by `not_uploaded`, for `publish`.
    """

    def __init__(self, project: str, command: list[str] | None = None, timeout: float = 120.0):
        self.command = command or [sys.executable, "-m", "wandb", "sync", "--project", project]
        self.timeout = timeout
        self.pending: queue.Queue = queue.Queue()
        self.synced: list[str] = []
        self.failed: list[str] = []
        self.submitted: list[str] = []
        self._child: subprocess.Popen | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wandb-sync", daemon=True)
        self.thread.start()

    def submit(self, folder: Path) -> None:
        self.submitted.append(str(folder))
        self.pending.put(folder)

    def _run(self) -> None:
        while True:
            batch = [self.pending.get()]
            while not self.pending.empty():
                batch.append(self.pending.get_nowait())
            stop = None in batch
            folders = [str(f) for f in batch if f is not None]
            if folders and not self._stop.is_set():
                ok = self._upload(folders)
                (self.synced if ok else self.failed).extend(folders)
            if stop:
                return

    def _upload(self, folders: list[str]) -> bool:
        try:
            self._child = subprocess.Popen(self.command + folders, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True, start_new_session=True)
            out, _ = self._child.communicate(timeout=self.timeout)
            if self._child.returncode != 0:
                log.warning("wandb sync failed (%s)", (out or "").strip().splitlines()[-1:] or self._child.returncode)
            return self._child.returncode == 0
        except subprocess.TimeoutExpired:
            log.warning("wandb sync of %d runs took more than %.0f s (no network?): stopped", len(folders), self.timeout)
            self._kill()
            return False
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("wandb sync failed (%s)", exc)
            return False
        finally:
            self._child = None

    def _kill(self) -> None:
        """Stop the upload running now and everything it started (it holds the API key)."""
        import os
        import signal

        child = self._child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            child.wait(timeout=10)

    def close(self, timeout: float | None = None) -> list[str]:
        """Wait at most `timeout` (default: this sync's) for what is queued, then stop; returns the runs
        that were not uploaded."""
        self.pending.put(None)
        self.thread.join(self.timeout if timeout is None else timeout)
        if self.thread.is_alive():
            self._stop.set()
            self._kill()
            self.thread.join(15)
        return self.not_uploaded()

    def not_uploaded(self) -> list[str]:
        return [f for f in self.submitted if f not in self.synced]
