"""The results store: runs/<sweep>/<profile>/results.jsonl, written by the driver alone.

One JSON line per finished trial, appended under a file lock with fsync, so an
interrupted sweep never leaves half a line and never a duplicate record. A
trial whose key has a terminal record (ok, diverged, or failed after its
retries) is skipped on the next run; `--retry-failed` reruns the failed ones.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)
TERMINAL = ("ok", "diverged", "failed")


class ResultsStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).resolve()
        self.path = self.dir / "results.jsonl"
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def _lock(self) -> FileLock:
        # Made on use, so the store pickles (Tune pickles its callbacks with the experiment state).
        return FileLock(str(self.path) + ".lock")

    def records(self) -> list[dict]:
        """Every complete record, last one per trial key wins (a retried failure is replaced)."""
        if not self.path.exists():
            return []
        by_key: dict[str, dict] = {}
        with self.path.open() as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a torn last line from a crash: ignore it
                    log.warning("%s:%d: skipping an unreadable line", self.path, n)
                    continue
                by_key[rec["trial_key"]] = rec
        return list(by_key.values())

    def done_keys(self, retry_failed: bool = False) -> set[str]:
        skip = ("ok", "diverged") if retry_failed else TERMINAL
        return {r["trial_key"] for r in self.records() if r.get("status") in skip}

    def append(self, record: dict) -> bool:
        """Append one record unless its key already has one with the same status; True if written."""
        line = json.dumps(record, allow_nan=False, default=str)
        with self._lock:
            for r in self.records():
                if r["trial_key"] == record["trial_key"] and (r["status"] != "failed" or record["status"] == "failed"):
                    return False
            with self.path.open("a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        return True

    def trial_dir(self, key: str) -> Path:
        return self.dir / "trials" / key

    def run_uid(self) -> str:
        """This run folder's identity, made once: W&B run ids derive from it, so a --fresh rerun (a
        new folder) never resumes the runs of the folder it moved aside."""
        import uuid

        from dipddpm.record import atomic_write_text

        path = self.dir / "run.json"
        try:
            return json.loads(path.read_text())["uid"]
        except (OSError, ValueError, KeyError, TypeError):
            uid = uuid.uuid4().hex[:12]
            atomic_write_text(path, json.dumps({"uid": uid, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}))
            return uid


def fresh_dir(run_dir: str | Path) -> Path:
    """--fresh: move an existing run folder aside (never delete results) and start a new one."""
    p = Path(run_dir).resolve()
    if p.exists() and any(p.iterdir()):
        aside = p.with_name(f"{p.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        p.rename(aside)
        log.warning("--fresh: previous results moved to %s", aside)
    return p
