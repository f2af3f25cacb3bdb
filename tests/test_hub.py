"""The hub on the driver's node: run-folder writes, the cache's leases, and what never travels."""

from __future__ import annotations

import asyncio
import os

import pytest
import torch

from dipddpm.cache import ArtefactCache, Entry, dumps, loads
from orchestrator.sweep import hub as hub_mod
from orchestrator.sweep.hub import SweepHub, check_key, install_tree


def _run(coro):
    return asyncio.run(coro)


def test_one_maker_per_key_and_every_waiter_gets_its_bytes(tmp_path):
    async def scenario():
        hub = SweepHub(str(tmp_path / "run"), str(tmp_path / "cache"))
        first = await hub.acquire("ddpm", "ab" * 10)
        waiters = [asyncio.create_task(hub.acquire("ddpm", "ab" * 10)) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert "lease" in first and not any(w.done() for w in waiters)  # they wait on the lease
        data = dumps(Entry({"w": torch.arange(3)}, 1.5, False))
        await hub.put("ddpm", "ab" * 10, first["lease"], data)
        got = await asyncio.gather(*waiters)
        return data, got, await hub.stats()

    data, got, stats = _run(scenario())
    assert all(g == {"data": data} for g in got)
    assert stats["cache_made"] == 1 and stats["cache_served"] == 3
    entry = loads((tmp_path / "cache" / "ddpm" / f"{'ab' * 10}.pt").read_bytes())  # persisted on the driver
    assert entry.hit and entry.cost_s == 1.5 and entry.value["w"].tolist() == [0, 1, 2]


def test_a_failed_or_silent_maker_passes_the_lease_on(tmp_path, monkeypatch):
    async def scenario():
        hub = SweepHub(str(tmp_path / "run"), str(tmp_path / "cache"))
        a = await hub.acquire("dip", "cd" * 10)
        waiter = asyncio.create_task(hub.acquire("dip", "cd" * 10))
        await asyncio.sleep(0.05)
        await hub.release("dip", "cd" * 10, a["lease"])  # its make() raised
        b = await asyncio.wait_for(waiter, 2)
        monkeypatch.setattr(hub_mod, "LEASE_TTL_S", 0.2)  # b's process dies: it stops renewing
        c = await asyncio.wait_for(hub.acquire("dip", "cd" * 10), 2)
        stale = await hub.renew("dip", "cd" * 10, b["lease"])
        return a, b, c, stale, await hub.stats()

    a, b, c, stale, stats = _run(scenario())
    assert len({a["lease"], b["lease"], c["lease"]}) == 3 and stale is False
    assert stats["leases_expired"] == 1


def test_the_run_folder_takes_only_trial_keys_and_relative_paths(tmp_path):
    assert check_key("0123456789abcdef") == "0123456789abcdef"
    for bad in ("../../etc", "0123456789ABCDEF", "0123", "0123456789abcdef/.."):
        with pytest.raises(ValueError):
            check_key(bad)
    for rel in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ValueError):
            install_tree(tmp_path / "t", {rel: b"x"})
    install_tree(tmp_path / "t", {"result.json": b"1", "images/a.png": b"2"})
    install_tree(tmp_path / "t", {"result.json": b"3"})  # a retried trial replaces the whole folder
    assert sorted(p.name for p in (tmp_path / "t").rglob("*")) == ["result.json"]
    assert (tmp_path / "t" / "result.json").read_bytes() == b"3"
    assert [p.name for p in tmp_path.iterdir()] == ["t"]  # no staging left behind


class _Planted:
    """A cache entry someone planted: unpickling it would run code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_poisoned_cache_entry_is_refused_and_made_again(tmp_path):
    marker = tmp_path / "code-ran"
    cache = ArtefactCache(tmp_path / "cache")
    path = cache.path("ddpm", "ef" * 10)
    path.parent.mkdir(parents=True)
    torch.save({"value": _Planted(str(marker)), "cost_s": 1.0}, path)
    with pytest.raises(Exception):
        loads(path.read_bytes())
    entry = cache.get_or_make("ddpm", "ef" * 10, lambda: {"w": torch.ones(2)})
    assert not marker.exists()  # never executed
    assert entry.hit is False and entry.value["w"].tolist() == [1.0, 1.0]
    assert loads(path.read_bytes()).value["w"].tolist() == [1.0, 1.0]  # replaced by a safe entry


def test_wandb_run_ids_are_unique_per_sweep_profile_and_run_folder():
    from orchestrator.wandb_io.naming import run_id

    key = "0123456789abcdef"
    ids = {run_id("staged", "cpu", "u1", key), run_id("other", "cpu", "u1", key),
           run_id("staged", "gpu", "u1", key), run_id("staged", "cpu", "u2", key)}  # u2: after --fresh
    assert len(ids) == 4 and all(i.startswith(key + "-") and len(i) <= 64 for i in ids)
    assert run_id("staged", "cpu", "u1", key) == run_id("staged", "cpu", "u1", key)  # a resume continues its run


def test_no_api_key_reaches_the_workers(monkeypatch):
    import ray

    from orchestrator.sweep.runner import SweepOptions, start_ray

    seen = {}

    def fake_init(**kwargs):
        seen["kwargs"] = kwargs
        seen["env"] = dict(os.environ)  # what an embedded cluster's processes would inherit

    monkeypatch.setenv("WANDB_API_KEY", "secret-key-1234")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    assert start_ray(SweepOptions()) is True
    assert "secret-key-1234" not in repr(seen["kwargs"])
    assert seen["kwargs"]["runtime_env"]["env_vars"]["WANDB_MODE"] == "offline"  # trials log offline
    assert "WANDB_API_KEY" not in seen["env"]
    assert os.environ["WANDB_API_KEY"] == "secret-key-1234" and os.environ["WANDB_MODE"] == "online"  # the driver syncs


def test_a_node_with_other_code_is_named_with_the_fix():
    from dipddpm.errors import ConfigError
    from orchestrator.sweep.cluster import check_code, code_fingerprint

    check_code(code_fingerprint())
    with pytest.raises(ConfigError, match=r"^node .*: this package's code is [0-9a-f]{12}, the driver's is "
                                          r"000000000000; install this package at the same version"):
        check_code("000000000000")


def test_online_runs_are_uploaded_from_the_driver_as_they_arrive(tmp_path):
    """With a key on the driver, each trial's offline run folder is synced from there (a stand-in for
    `wandb sync` records what it was given); a failing upload is kept for `publish` to retry."""
    import sys

    from orchestrator.wandb_io.sync import OnlineSync

    log = tmp_path / "synced.txt"
    fake = [sys.executable, "-c", f"import sys; open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')"]
    sync = OnlineSync("p", command=fake)
    for name in ("offline-run-1-a", "offline-run-2-b"):
        sync.submit(tmp_path / name)
    sync.close(timeout=60)
    uploaded = log.read_text().split()
    assert uploaded == [str(tmp_path / "offline-run-1-a"), str(tmp_path / "offline-run-2-b")]
    assert sync.synced == uploaded and sync.failed == []
    failing = OnlineSync("p", command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    failing.submit(tmp_path / "offline-run-3-c")
    failing.close(timeout=60)
    assert failing.failed == [str(tmp_path / "offline-run-3-c")] and failing.synced == []


LEFTOVERS = {"empty": b"", "truncated": None, "garbage": b"\x00not a torch file\xff" * 7, "a tensor": None}


def _leftover(kind: str) -> bytes:
    import io

    from dipddpm.cache import Entry, dumps

    if kind == "truncated":
        return dumps(Entry({"w": torch.ones(64)}, 1.0, False))[:100]
    if kind == "a tensor":
        buf = io.BytesIO()
        torch.save(torch.zeros(3), buf)  # a valid torch file that is no cache entry
        return buf.getvalue()
    return LEFTOVERS[kind]


@pytest.mark.parametrize("kind", list(LEFTOVERS))
def test_a_cache_leftover_is_removed_made_again_once_and_named(kind, tmp_path, caplog):
    cache = ArtefactCache(tmp_path / "cache")
    path = cache.path("ddpm", "ab" * 10)
    path.parent.mkdir(parents=True)
    path.write_bytes(_leftover(kind))
    made = []
    with caplog.at_level("WARNING", logger="dipddpm.cache"):
        entry = cache.get_or_make("ddpm", "ab" * 10, lambda: made.append(1) or {"w": torch.ones(2)})
    assert made == [1] and entry.hit is False
    assert any(str(path) in m and "made again" in m for m in caplog.messages), caplog.messages
    again = cache.get_or_make("ddpm", "ab" * 10, lambda: made.append(2))
    assert again.hit is True and made == [1]  # the remade entry is used from then on


@pytest.mark.parametrize("kind", ["empty", "garbage"])
def test_a_cache_leftover_served_by_the_hub_is_made_again(kind, ray_session, tmp_path):
    import ray

    from orchestrator.sweep.hub import HubCache, start_hub

    hub = start_hub(tmp_path / "run", str(tmp_path / "cache"))
    path = tmp_path / "cache" / "ddpm" / f"{'cd' * 10}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(_leftover(kind))
    cache = HubCache(hub)
    entry = cache.get_or_make("ddpm", "cd" * 10, lambda: {"w": torch.ones(2)})
    assert entry.hit is False and path.stat().st_size > 0
    assert cache.get_or_make("ddpm", "cd" * 10, lambda: {"w": torch.zeros(2)}).value["w"].tolist() == [1.0, 1.0]
    assert ray.get(hub.stats.remote())["cache_invalidated"] == 1
    assert len(cache.warnings) == 1 and f"ddpm/{'cd' * 10} refused" in cache.warnings[0]  # for the record
    ray.kill(hub)
