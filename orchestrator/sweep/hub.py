"""The sweep's hub: one actor on the driver's node, the only way a trial's output reaches a disk.

Nodes of a cluster usually share no disk (docs/design.md, "The cluster data path"), so what a trial makes
travels through Ray to this actor, pinned to the node the driver runs on:

- the run folder: each finished trial's files (result.json, curves.json, PNGs)
  and its offline W&B run land in `trials/<key>/` and `wandb/`, each folder
  written aside and renamed into place, so a reader never sees half of one;
- the artefact cache: trained DDPMs and DIP estimates are leased to one maker
  per key; other trials wait on the lease (not a file lock) and then receive
  the bytes, which persist in the driver's cache folder in the layout and
  format of `dipddpm.cache` (so the single-trial CLI shares them). A maker
  renews its lease while it works; a lease not renewed for `LEASE_TTL_S`
  (its process died) passes to the next trial that asks.

The driver alone appends results.jsonl; the hub writes only what a record
points to, before that record is written.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dipddpm.atomic import atomic_write_bytes, install_tree

log = logging.getLogger(__name__)

KEY_RE = re.compile(r"[0-9a-f]{16}")
RUN_FOLDER_RE = re.compile(r"offline-run-[0-9]{8}_[0-9]{6}-[A-Za-z0-9_-]{1,64}")
LEASE_TTL_S = 60.0  # a maker that has not renewed its lease for this long is taken for dead
RENEW_EVERY_S = 10.0


def check_key(key: str) -> str:
    """A trial key, before it becomes part of a path."""
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise ValueError(f"not a trial key: {key!r}")
    return key


def _write_file(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, mode=0o644)


@dataclass
class _Lease:
    token: str
    renewed: float
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SweepHub:
    """Ray actor (async): the run folder's writer and the artefact cache's lease keeper."""

    def __init__(self, run_dir: str, cache_root: str):
        # Nothing heavy is imported here (no torch): the hub starts beside the first trials.
        self.run_dir, self.cache_root = Path(run_dir), Path(cache_root)
        self.leases: dict[tuple[str, str], _Lease] = {}
        self.counts = {"trials_written": 0, "bytes_written": 0, "cache_served": 0, "cache_made": 0,
                       "cache_bytes_served": 0, "leases_expired": 0, "cache_invalidated": 0}

    async def ping(self) -> str:
        import socket

        return socket.gethostname()

    # ---- the run folder ------------------------------------------------------------------

    async def write_trial(self, key: str, files: dict[str, bytes], wandb_folder: str | None,
                          wandb_files: dict[str, bytes], tune_row: bytes | None = None) -> int | dict:
        """Install a trial's files (and its offline W&B run, and the final row Tune's ExperimentAnalysis reads
        from `ray/tune/<key>/result.json`); returns the bytes written, or {'path', 'error'} when the run
        folder's disk refused them (full, read-only, a quota): the trial did nothing wrong."""
        check_key(key)
        if wandb_folder is not None and not RUN_FOLDER_RE.fullmatch(wandb_folder):
            raise ValueError(f"not a W&B offline run folder: {wandb_folder!r}")
        try:
            await asyncio.to_thread(install_tree, self.run_dir / "trials" / key, files)
            if wandb_folder is not None:
                await asyncio.to_thread(self._install_wandb, wandb_folder, wandb_files)
            if tune_row is not None:  # where Tune keeps the trial (its dirname is the key), on this node
                await asyncio.to_thread(_write_file, self.run_dir / "ray" / "tune" / key / "result.json", tune_row)
        except OSError as exc:
            return {"path": exc.filename or str(self.run_dir), "error": exc.strerror or str(exc),
                    "errno": exc.errno or 5}
        size = sum(map(len, files.values())) + sum(map(len, wandb_files.values()))
        self.counts["trials_written"] += 1
        self.counts["bytes_written"] += size
        return size

    def _install_wandb(self, folder: str, files: dict[str, bytes]) -> None:
        root = self.run_dir / "wandb"
        run_id = folder.split("-", 3)[-1]
        for old in root.glob(f"offline-run-*-{run_id}"):  # an earlier attempt of this trial's run
            if old.name != folder:
                shutil.rmtree(old, ignore_errors=True)
        install_tree(root / folder, files)

    # ---- the artefact cache --------------------------------------------------------------

    def _path(self, kind: str, key: str) -> Path:
        if not re.fullmatch(r"[a-z_]+", kind) or not re.fullmatch(r"[0-9a-f]{8,64}", key):
            raise ValueError(f"not a cache entry: {kind}/{key}")
        return self.cache_root / kind / f"{key}.pt"

    async def acquire(self, kind: str, key: str) -> dict:
        """{'data': bytes} when the entry exists, else {'lease': token}: the caller makes it.
        Waits while another trial holds the lease."""
        path = self._path(kind, key)
        while True:
            if path.exists():
                data = await asyncio.to_thread(path.read_bytes)
                self.counts["cache_served"] += 1
                self.counts["cache_bytes_served"] += len(data)
                return {"data": data}
            lease = self.leases.get((kind, key))
            now = time.monotonic()
            if lease is not None and now - lease.renewed > LEASE_TTL_S:
                log.warning("cache lease on %s/%s expired (its maker stopped renewing); passing it on", kind, key)
                self.counts["leases_expired"] += 1
                self._end(kind, key, lease)
                lease = None
            if lease is None:
                lease = self.leases[(kind, key)] = _Lease(uuid.uuid4().hex, now)
                return {"lease": lease.token}
            try:
                await asyncio.wait_for(lease.done.wait(), timeout=LEASE_TTL_S / 4)
            except asyncio.TimeoutError:
                pass

    async def renew(self, kind: str, key: str, token: str) -> bool:
        lease = self.leases.get((kind, key))
        if lease is None or lease.token != token:
            return False
        lease.renewed = time.monotonic()
        return True

    async def put(self, kind: str, key: str, token: str, data: bytes) -> None:
        """The maker's bytes: persisted in the driver's cache folder, then every waiter is served."""
        path = self._path(kind, key)
        await asyncio.to_thread(_write_file, path, data)
        self.counts["cache_made"] += 1
        lease = self.leases.get((kind, key))
        if lease is not None and lease.token == token:
            self._end(kind, key, lease)

    async def release(self, kind: str, key: str, token: str) -> None:
        """The maker failed: the next waiter becomes the maker."""
        lease = self.leases.get((kind, key))
        if lease is not None and lease.token == token:
            self._end(kind, key, lease)

    async def invalidate(self, kind: str, key: str, why: str = "") -> None:
        """A stored entry a trial could not load (empty, corrupt, or refused as unsafe): remove it."""
        log.warning("cache entry %s refused by a trial (%s); it will be made again", self._path(kind, key), why)
        self.counts["cache_invalidated"] += 1
        self._path(kind, key).unlink(missing_ok=True)

    def _end(self, kind: str, key: str, lease: _Lease) -> None:
        self.leases.pop((kind, key), None)
        lease.done.set()

    async def stats(self) -> dict:
        return dict(self.counts)


def start_hub(run_dir: Path, cache_root: str):
    """The hub actor, pinned to the node this driver runs on (no CPU of its own)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    # Restarted by Ray when it dies (it holds nothing the run folder and the cache folder do not: a lease lost
    # with it passes to the next trial that asks), and the calls in flight are retried on the new one.
    actor = ray.remote(SweepHub).options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
        max_concurrency=256, max_restarts=-1, max_task_retries=-1)
    return actor.remote(str(run_dir), cache_root)


class OrchestratorFault(RuntimeError):
    """A trial stopped by the orchestrator's own failure (its hub lost and not back in time), not by its own:
    retried, never counted against a budget, and a plain rerun runs it again."""


def hub_call(method, *args):
    """ray.get of one hub method; the hub lost for good is the orchestrator's fault, said so."""
    import ray

    try:
        return ray.get(method.remote(*args))
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
        raise OrchestratorFault(f"the sweep's hub was lost ({type(exc).__name__}); the trial will be run again") \
            from None


class HubCache:
    """`dipddpm.cache.ArtefactCache`'s interface over the hub, for a trial on any node.

    Counts the bytes it receives and sends, for the record's transfer figures.
    """

    def __init__(self, hub, enabled: bool = True):
        self.hub, self.enabled = hub, enabled
        self.bytes_in = self.bytes_out = 0
        self.warnings: list[str] = []  # entries refused and made again: they go into the trial's record

    def get_or_make(self, kind: str, key: str, make, meta: dict | None = None):
        from dipddpm.cache import dumps, loads, make_entry, reason

        if not self.enabled:
            return make_entry(make)
        for _attempt in range(3):
            got = hub_call(self.hub.acquire, kind, key)
            if "data" in got:
                self.bytes_in += len(got["data"])
                try:
                    return loads(got["data"])
                except Exception as exc:  # noqa: BLE001 - empty, truncated, garbage or unsafe: made anew
                    why = f"cache entry {kind}/{key} refused ({reason(exc)}); it is removed and made again"
                    log.warning(why)
                    self.warnings.append(why)
                    hub_call(self.hub.invalidate, kind, key, reason(exc))
                    continue
            token = got["lease"]
            with _Renewal(self.hub, kind, key, token):
                try:
                    entry = make_entry(make)
                except BaseException:
                    self.hub.release.remote(kind, key, token)
                    raise
            data = dumps(entry, meta)
            self.bytes_out += len(data)
            hub_call(self.hub.put, kind, key, token, data)
            return entry
        raise RuntimeError(f"cache entry {kind}/{key} could not be read or made after 3 attempts")


class _Renewal:
    """Renews a lease from a background thread while the artefact is being made."""

    def __init__(self, hub, kind: str, key: str, token: str):
        self.args = (kind, key, token)
        self.hub = hub
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cache-lease", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(RENEW_EVERY_S):
            try:
                self.hub.renew.remote(*self.args)
            except Exception:  # noqa: BLE001 - the driver is gone: the trial ends with it
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
