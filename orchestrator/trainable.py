"""The Ray trainable: a few lines from a config dict to a method run to a record.

Runs on a worker. Reports every evaluation with `ray.tune.report` and a final
report that carries the whole record, which the driver alone writes to
results.jsonl. Per-trial files (result.json, curves.json, PNGs) go to the
trial's folder under the run dir (shared storage on a cluster).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def _numeric(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def run_trial(params: dict, ctx: dict) -> None:
    import torch
    from ray import tune

    from dipddpm import trial
    from dipddpm.cache import ArtefactCache
    from dipddpm.config import resolve, trial_key
    from dipddpm.record import build_record, write_outputs

    from .wandb_log import TrialLogger, run_id

    spec = params["trial"]
    cfg = resolve([("trial", spec["config"])])
    assert trial_key(cfg) == spec["key"], "config did not round-trip to its trial key"
    torch.set_num_threads(max(1, int(ctx["cpus"])))
    logger = TrialLogger(spec["key"], ctx["sweep"], ctx["project"], spec["config"], Path(ctx["run_dir"]),
                         [ctx["profile"], cfg.method])

    def report(step: int, metrics: dict) -> None:
        numeric = _numeric(metrics)
        logger.log(step, numeric)
        tune.report(numeric | {"step": step})

    result = trial.run(cfg, report=report, cache=ArtefactCache(ctx["cache_dir"], enabled=ctx["use_cache"]))
    record = build_record(cfg, result, ctx["profile"]) | {
        "sweep": ctx["sweep"], "cell": spec["cell"], "cell_key": spec["cell_key"], "wandb_run": run_id(spec["key"]),
        "wandb_mode_seen_by_worker": os.environ.get("WANDB_MODE")}
    write_outputs(Path(ctx["run_dir"]) / "trials" / spec["key"], record, result)
    first = next(iter(result.images.values()), {})
    logger.finish(record, {k: v for k, v in first.items() if k in ("clean", "observation", "es", "peak", "hybrid", "dip")})
    tune.report(_numeric(result.metrics) | {"record": json.dumps(record, default=str), "final": 1})
