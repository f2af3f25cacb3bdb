"""Uploading offline W&B runs from the driver, the only place the credentials are.

When the driver has a key (online mode), each trial's offline run is uploaded as it
arrives; credentials stay where the operator put them, never in `runtime_env`, a
config or a record. A run that is not uploaded stays in the run folder for `publish`.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)


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
