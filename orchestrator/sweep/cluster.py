"""Every node runs the same code: checked once at the start of a sweep, and again by each trial.

A node whose package differs from the driver's would compute different
numbers under the same trial key (and cache key), so a sweep refuses to start
on such a cluster, naming the node; a node that joins later fails its trials
with the same message instead of running them.
"""

from __future__ import annotations

import hashlib
import socket
from functools import lru_cache
from pathlib import Path

from dipddpm.errors import ConfigError

PACKAGES = ("dipddpm", "orchestrator")
FIX = "install this package at the same version on every node (pip install -e . in the same checkout)"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of this package's Python source (the science and the orchestration)."""
    import importlib

    h = hashlib.sha256()
    for name in PACKAGES:
        root = Path(importlib.import_module(name).__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def check_code(expected: str) -> None:
    mine = code_fingerprint()
    if mine != expected:
        raise ConfigError(f"node {socket.gethostname()}: this package's code is {mine}, the driver's is "
                          f"{expected}; {FIX}")


def _probe() -> dict:
    return {"host": socket.gethostname(), "code": code_fingerprint()}


def check_nodes(timeout_s: float = 180.0) -> list[dict]:
    """Ask every alive node (one CPU-less task each) which code it runs; a ConfigError naming the
    first node that differs or cannot import this package."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    expected = code_fingerprint()
    probe = ray.remote(_probe)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = {probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(): n for n in nodes}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    seen = []
    for ref, node in refs.items():
        where = f"node {node.get('NodeManagerAddress')}"
        if ref not in ready:
            raise ConfigError(f"{where}: no answer within {timeout_s:.0f} s to the version check; is it healthy?")
        try:
            got = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - typically ModuleNotFoundError: the package is missing there
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise ConfigError(f"{where}: cannot run this package ({lines[-1] if lines else exc}); {FIX}") from None
        if got["code"] != expected:
            raise ConfigError(f"{where} ({got['host']}): this package's code is {got['code']}, the driver's is "
                              f"{expected}; {FIX}")
        seen.append(got | {"address": node.get("NodeManagerAddress")})
    return seen
