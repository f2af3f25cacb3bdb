"""Disk cache for expensive, shared artefacts: trained DDPMs and DIP estimates (docs/design.md: "Hybrid DIP → DDPM").

Key: a hash of exactly the config fields that determine the artefact, the seed
and the code version (a hash of the dipddpm source). Location: an explicit
folder, else $DIPDDPM_CACHE, else the user cache directory. Safe under
concurrent trials: a file lock per key, then write to a temp file and rename.
Each entry keeps the seconds it cost to make, so a hit can be charged honestly.
Entries are read with `torch.load(weights_only=True)`: tensors, numbers,
strings, lists and dicts only, so a planted pickle that would run code is
refused (and the entry rebuilt), never executed.

On a Ray cluster the orchestrator puts a lease keeper on the driver's node in
front of the same folder layout and blob format (`dumps` / `loads`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .atomic import atomic_write_bytes

log = logging.getLogger(__name__)


def default_root() -> Path:
    env = os.environ.get("DIPDDPM_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dipddpm"))


def cache_key(kind: str, fields: dict, seed: int, code: str) -> str:
    blob = json.dumps({"kind": kind, "fields": fields, "seed": seed, "code": code}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class Entry:
    value: Any
    cost_s: float  # seconds it took to make (charged to every trial that uses it)
    hit: bool  # True when read from disk rather than made now
    cost_cpu_s: float | None = None  # the process's CPU seconds it took (a neighbour moves it less than wall time)


class ArtefactCache:
    """get_or_make(kind, key, make) with one maker per key across processes."""

    def __init__(self, root: str | Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.root = Path(root) if root else default_root()

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.pt"

    def get_or_make(self, kind: str, key: str, make: Callable[[], Any], meta: dict | None = None) -> Entry:
        if not self.enabled:
            return make_entry(make)
        from filelock import FileLock

        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.exists():
                try:
                    return loads(path.read_bytes())
                except Exception as exc:  # noqa: BLE001 - empty, truncated, garbage or unsafe: made again
                    log.warning("cache entry %s refused (%s); it is removed and made again", path, reason(exc))
                    path.unlink(missing_ok=True)
            entry = make_entry(make)
            atomic_write_bytes(path, dumps(entry, meta))
            return entry


def make_entry(make: Callable[[], Any]) -> Entry:
    """Make an artefact and time it (wall and CPU): the cost every later hit is charged."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = make()
    return Entry(value, time.perf_counter() - t0, False, time.process_time() - c0)


def dumps(entry: Entry, meta: dict | None = None) -> bytes:
    """An entry as the bytes stored on disk and shipped between nodes."""
    buf = io.BytesIO()
    torch.save({"value": entry.value, "cost_s": entry.cost_s, "cost_cpu_s": entry.cost_cpu_s, "meta": meta or {}}, buf)
    return buf.getvalue()


def loads(data: bytes) -> Entry:
    """Bytes back to a (hit) entry; weights_only: anything but tensors and plain containers is refused.
    Raises ValueError for anything that is not an entry (empty, truncated, another format)."""
    if not data:
        raise ValueError("empty file (a write cut short?)")
    blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "value" not in blob or "cost_s" not in blob:
        raise ValueError(f"not a cache entry (a {type(blob).__name__})")
    cpu = blob.get("cost_cpu_s")
    return Entry(blob["value"], float(blob["cost_s"]), True, float(cpu) if cpu is not None else None)


def reason(exc: BaseException) -> str:
    """An exception in one line, whatever its message (EOFError's is empty)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__
