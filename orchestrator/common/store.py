"""The results store: runs/<sweep>/<profile>/results.jsonl, written by the driver alone.

One JSON line per finished trial. An append is O(1): the file is opened,
appended to and fsynced, never read back (the trial keys already recorded are
indexed in memory, read once). A line cut short by a killed driver is sealed
with a newline before the next record, so it never swallows it; reading skips
such a line (and anything else that is not a record) with a one-line warning
naming file:line, and its trial counts as not done, so a resumed sweep runs it
again. A trial whose key has a terminal record (ok, diverged, or failed after
its retries) is skipped on the next run; `--retry-failed` reruns the failed ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

from filelock import FileLock

from .record import STATUSES as TERMINAL
from .record import Record

log = logging.getLogger(__name__)
KEY_RE = re.compile(r"[0-9a-f]{16}")


_SAID: set[tuple[str, str]] = set()  # (file:line, what) already warned about in this process


def _warn_once(where: str, what: str, *args) -> None:
    if (where, what) not in _SAID:
        _SAID.add((where, what))
        log.warning("%s: " + what, where, *args)


def parse_line(line: str, where: str) -> Record | None:
    """A record from one line, or None (with a warning naming `where`, once) when the line is not one."""
    try:
        raw = json.loads(line)
        rec = Record.from_dict(raw)
    except json.JSONDecodeError:
        _warn_once(where, "skipping an unreadable line (a write cut short?); its trial counts as not done")
        return None
    except ValueError:
        _warn_once(where, "skipping a line that is not a trial record (no status or config)")
        return None
    if not isinstance(rec.trial_key, str) or not KEY_RE.fullmatch(rec.trial_key):  # keys become folder names
        _warn_once(where, "skipping a record whose trial_key %r is not a trial key (16 hex digits)", rec.trial_key)
        return None
    return rec


class StoreWriteError(OSError):
    """results.jsonl could not take a record (full disk, quota, I/O error): the records before it are whole,
    and a line this left half-written is sealed and skipped by the next run."""

    def __init__(self, path: Path, exc: OSError):
        super().__init__(exc.errno, exc.strerror or str(exc), str(path))


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written: a short write (a nearly full disk) is continued, not ignored."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(28, "No space left on device")
        view = view[n:]


class ResultsStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir).resolve()
        self.path = self.dir / "results.jsonl"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._status: dict[str, str] | None = None  # trial key -> status of its latest record, read once
        self._faults: set[str] = set()  # trial keys whose record failed by the orchestrator's fault

    @property
    def _lock(self) -> FileLock:
        # Made on use, so the store pickles (Tune pickles its callbacks with the experiment state).
        return FileLock(str(self.path) + ".lock")

    def records(self) -> list[Record]:
        """Every readable record, the last one per trial key (a retried failure is replaced), except that an
        ok record is never replaced by a later failed one (two drivers on one folder left both): said so.
        Every table, claim and `best` reads this one record of each trial."""
        by_key: dict[str, Record] = {}
        kept, differ = 0, set()
        for rec in self.history():
            old = by_key.get(rec.trial_key)
            if old is not None and old.status == "ok" and rec.status != "ok":
                kept += 1
                continue
            if old is not None and old.status == rec.status and (old.metrics, old.per_image) != (rec.metrics,
                                                                                                 rec.per_image):
                differ.add(rec.trial_key)
            by_key[rec.trial_key] = rec
        where = str(self.path)
        if kept:
            _warn_once(where, "%d trials have an ok record and a later failed or diverged one (two drivers on one "
                       "folder?); the ok records count", kept)
        if differ:
            _warn_once(where, "%d trial keys have several terminal records with different figures (e.g. %s); the "
                       "last one of each counts in every table", len(differ), sorted(differ)[0])
        damaged = [r for r in by_key.values() if r.damaged]
        if damaged:
            _warn_once(where, "%d records hold values that are not finite numbers where figures belong (e.g. trial "
                       "%s: %s); those values are left out, the rest of each record counts", len(damaged),
                       damaged[0].trial_key, ", ".join(damaged[0].damaged[:3]))
        self._status = {k: r.status for k, r in by_key.items()}
        self._faults = {k for k, r in by_key.items() if r.status == "failed" and r.extra.get("fault") == "orchestrator"}
        return list(by_key.values())

    def history(self) -> list[Record]:
        """Every readable record in file order, repeats included: the order the sweep received them in."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            return [rec for n, line in enumerate(f, 1) if line.strip()
                    for rec in [parse_line(line, f"{self.path}:{n}")] if rec is not None]

    def statuses(self) -> dict[str, str]:
        if self._status is None:
            self.records()
        return self._status

    def done_keys(self, retry_failed: bool = False) -> set[str]:
        """Trials not to run again: every terminal record's, except failed ones when `retry_failed`, and failed
        ones the orchestrator's own fault caused (its hub lost): a plain rerun runs those again."""
        skip = ("ok", "diverged") if retry_failed else TERMINAL
        return {k for k, s in self.statuses().items() if s in skip and k not in self._faults}

    def failed_keys(self) -> set[str]:
        return {k for k, s in self.statuses().items() if s == "failed"}

    def append(self, record: Record | dict) -> bool:
        """Append one record unless its key already has one with the same status (a failed one may be
        replaced by a later success); True if written. Raises ValueError for a record that is not one."""
        if isinstance(record, Record):
            record = record.as_dict()
        key, status = record.get("trial_key"), record.get("status")
        if not isinstance(key, str) or not KEY_RE.fullmatch(key) or status not in TERMINAL:
            raise ValueError(f"not a trial record: trial_key={key!r}, status={status!r}")
        line = (json.dumps(record, allow_nan=False, default=str) + "\n").encode()
        known = self.statuses().get(key)
        if known is not None and (known != "failed" or status == "failed") and key not in self._faults:
            return False
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    _write_all(fd, b"\n")  # seal a line a killed driver (or a full disk) left half-written
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                raise StoreWriteError(self.path, exc) from None
            finally:
                os.close(fd)
        self._status[key] = status
        if status == "failed" and record.get("fault") == "orchestrator":
            self._faults.add(key)
        else:
            self._faults.discard(key)
        return True

    def trial_dir(self, key: str) -> Path:
        if not KEY_RE.fullmatch(key):
            raise ValueError(f"not a trial key: {key!r}")
        return self.dir / "trials" / key

    def run_uid(self) -> str:
        """This run folder's identity, made once: W&B run ids derive from it, so a --fresh rerun (a
        new folder) never resumes the runs of the folder it moved aside."""
        import uuid

        from dipddpm.atomic import atomic_write_text

        path = self.dir / "run.json"
        try:
            return json.loads(path.read_text())["uid"]
        except (OSError, ValueError, KeyError, TypeError):
            uid = uuid.uuid4().hex[:12]
            atomic_write_text(path, json.dumps({"uid": uid, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}))
            return uid


class DriverLock:
    """One driver per run folder, for the sweep's whole life: an exclusive lock on `driver.lock`, which names
    its holder (host, pid, since). The operating system releases it when the holder dies, so a folder left
    by a killed driver is taken over."""

    def __init__(self, run_dir: str | Path):
        run_dir = Path(run_dir)
        self.run_dir = run_dir
        self.path = run_dir.parent / f"{run_dir.name}.driver.lock"  # beside the folder: --fresh moves the folder
        self.fd: int | None = None

    def __enter__(self) -> "DriverLock":
        import fcntl
        import socket

        from dipddpm.errors import ConfigError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            try:
                h = json.loads(holder)
                who = f"host {h['host']}, pid {h['pid']}, since {h['since']}"
            except (ValueError, KeyError, TypeError):
                who = "unknown holder"
            raise ConfigError(f"{self.run_dir}: another sweep driver is running on this folder ({who}); wait "
                              "for it to finish, or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                  "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


def fresh_dir(run_dir: str | Path) -> Path:
    """--fresh: move an existing run folder aside (never delete results) and start a new one."""
    p = Path(run_dir).resolve()
    if p.exists() and any(p.iterdir()):
        aside = p.with_name(f"{p.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        p.rename(aside)
        log.warning("--fresh: previous results moved to %s", aside)
    return p
