"""What the bench's sections share: one of our sweeps run silently and timed (the trial phase, to the
last record written, apart from the closing report), the smoke sizes, and stage detectors that fit a
stage. Used by the eval, orchestration, cache and gpu sections."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# The smoke size (bench.py --smoke, gpu_bench's CPU check): 32 px, an 8-channel 3-scale skip net (the
# smallest that keeps DIP's hourglass), a 2-level UNet on 16 px crops. It checks that the code runs; its
# times are not figures.
SMOKE = {"data": {"size": 32}, "dip": {"channels": 8, "scales": 3},
         "ddpm": {"channels": [16, 32], "attention_levels": [], "layers_per_block": 1, "norm_groups": 8,
                  "crop": 16, "batch_size": 4, "dataset_size": 16}}


def stage_es(per_stage: int, profile: str) -> dict:
    """`es.stage_window` and `es.stage_patience` for stages of `per_stage` iterations: the profile's own
    where a stage holds them (W − 1 + P < per_stage, dipddpm/staged.py: check_detector), else a third of the
    stage for W and the rest for P. Set explicitly: a layer that sets only es.window or es.patience gives
    the stages plain DIP's (dipddpm/config.py: FOLLOWS), which outgrow a stage shorter than the run."""
    from dipddpm.config import PROFILE_LAYERS

    if per_stage < 3:
        raise ValueError(f"per_stage: expected >= 3 iterations (room for a detector), got {per_stage}")
    es = PROFILE_LAYERS[profile]["es"]
    window = max(2, min(es["stage_window"], per_stage // 3))
    return {"stage_window": window, "stage_patience": min(es["stage_patience"], per_stage - window)}


def timed_sweep(spec, opts) -> dict:
    """{trials_s, report_s, total_s, run_dir}, seconds from the call, and how many records were ok (a
    figure over trials that failed is no figure)."""
    from rich.console import Console

    from orchestrator.sweep.runner import run_sweep

    with open(os.devnull, "w") as sink:
        t0 = time.time()
        run_sweep(spec, opts, Console(file=sink))
        end = time.time()
    run_dir = Path(opts.runs_dir) / spec.name / opts.profile
    store = run_dir / "results.jsonl"
    last = store.stat().st_mtime
    records = [json.loads(line) for line in store.read_text().splitlines() if line.strip()]
    statuses = [r.get("status") for r in records]
    for r in records:
        if r.get("status") != "ok":
            print(f"{spec.name}: trial {r.get('trial_key')} {r.get('status')}: {r.get('error')}", file=sys.stderr)
    return {"t0": t0, "trials_s": last - t0, "report_s": end - last, "total_s": end - t0, "run_dir": run_dir,
            "records_ok": statuses.count("ok"), "records_not_ok": len(statuses) - statuses.count("ok")}
