"""Shared fixtures: a tiny staged config composed from the real cpu profile, then shrunk."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("WANDB_MODE", "offline")
# One intra-op thread in the test process and the CLIs it starts (before torch is imported): two threads
# collapse beside any other busy process on a 2-core machine (a 6 s hybrid test took 104 s beside a sweep);
# tests/test_threads.py unsets it where it tests the measured choice.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A real profile, shrunk: 32 px, 8-channel 3-scale skip net, 2 stages of 30 iterations.
TINY = {
    "data": {"size": 32, "images": ["astronaut"]},
    "dip": {"channels": 8, "scales": 3},
    "staged": {"levels": [2.0, 1.0], "iters_per_stage": 30},
    "es": {"window": 5, "patience": 20},
    "eval_every": 10,
}


@pytest.fixture(scope="module")
def ray_session():
    """One embedded Ray cluster per test module that asks for it (W&B offline)."""
    import ray

    from orchestrator.sweep.runner import SweepOptions, start_ray

    os.environ["WANDB_MODE"] = "offline"
    start_ray(SweepOptions())
    yield
    ray.shutdown()


@pytest.fixture
def tiny_layers():
    """Layers to pass to config.resolve after the cpu profile."""
    import copy

    return [("tiny", copy.deepcopy(TINY))]
