"""Run folders with known answers for the report tests.

Two kinds:
- `planned_run`: a real sweep file planned on the cpu profile (the design kept as sweep.json, as a sweep
  does), its trials' records written through the real store with values a test chooses;
- `synthetic_design` / `synthetic_records`: a design built directly (no config resolution) for the
  simulations, which decide thousands of families.
"""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path

import yaml

from orchestrator.common.design import Design, Point, apply
from orchestrator.common.record import Record
from orchestrator.common.store import ResultsStore
from orchestrator.sweep.plan import plan
from orchestrator.sweep.spec import parse_spec

STAGED_METRICS = ("psnr", "ssim", "psnr_es", "ssim_es")


def planned_run(run_dir: Path, sweep_yaml: str, value, status=lambda trial: "ok", profile: str = "cpu"):
    """Plan `sweep_yaml` on `profile`, keep its design, append one record per trial.

    value(trial, image) -> psnr_es (staged) or psnr (hybrid) of that image; status(trial) -> ok | diverged |
    failed. Returns the plan."""
    spec = parse_spec(yaml.safe_load(sweep_yaml), "synthetic.yaml")
    p = plan(spec, profile)
    p.design.save(run_dir)
    store = ResultsStore(run_dir)
    for t in p.trials:
        store.append(record_for(t, value, status(t), profile, spec.name))
    return p


def record_for(trial, value, status: str, profile: str, sweep: str) -> dict:
    from dipddpm.config import config_dict

    per_image = {}
    if status != "failed":
        for img in trial.images.test:
            v = value(trial, img.id)
            per_image[img.id] = image_metrics(trial.config.method, v)
    metrics = {}
    if per_image:
        keys = per_image[next(iter(per_image))]
        metrics = {k: statistics.mean(m[k] for m in per_image.values()) for k in keys
                   if not isinstance(keys[k], bool)}
        metrics |= trial_times(trial.config.method, trial.seed, len(per_image), jitter=int(trial.key[:4], 16) % 100 / 1000)
    return {"trial_key": trial.key, "method": trial.config.method, "seed": trial.seed, "profile": profile,
            "status": status, "error": None if status == "ok" else f"{status} on purpose",
            "config": config_dict(trial.config), "images": trial.described_images(), "metrics": metrics,
            "per_image": per_image, "sweep": sweep, "cell": trial.cell, "cell_key": trial.cell_key,
            "versions": {"dipddpm_code": "test"}}


def image_metrics(method: str, v: float) -> dict:
    if method == "hybrid":
        return {"psnr": v, "ssim": 0.8 + v / 1000, "psnr_dip": v - 1.0, "ssim_dip": 0.8, "dip_s": 2.0,
                "sample_s": 1.0, "psnr_observation": 20.7, "psnr_tv": 23.9, "psnr_nlm": 25.5,
                "ssim_observation": 0.75, "ssim_tv": 0.85, "ssim_nlm": 0.88, "noise_std_255": 25.0}
    return {"psnr": v, "ssim": 0.8 + v / 1000, "psnr_es": v, "ssim_es": 0.8 + v / 1000, "psnr_peak": v + 0.5,
            "iter_es": 50, "iter_peak": 40, "es_fired": v > 25.5, "es_gap_db": 0.5, "dip_s": 29.0,
            "psnr_observation": 20.7, "psnr_tv": 23.9, "psnr_nlm": 25.5, "ssim_observation": 0.75,
            "ssim_tv": 0.85, "ssim_nlm": 0.88, "noise_std_255": 25.0}


def trial_times(method: str, seed: int, images: int, jitter: float = 0.0) -> dict:
    """Trial-level seconds whose parts add up (time_s = parts + overhead), as the methods record them; `jitter`
    (seconds, from the trial's key) so that two trials of one seed do not take exactly the same time."""
    if method == "hybrid":
        out = {"ddpm_fit_s": 40.0 + seed, "train_data_s": 5.0, "dip_s": 2.0 * images, "sample_s": 1.0 * images,
               "ddpm_fit_cpu_s": 39.0 + seed}
        out["train_s"] = out["ddpm_fit_s"] + out["train_data_s"]
        out["time_s"] = out["train_s"] + out["dip_s"] + out["sample_s"]
        return out | {"wall_s": out["time_s"] + 3.0, "ref_s": 1.0}
    dip = 29.0 * images
    return {"dip_s": dip, "time_s": dip + 1.5 + seed + jitter, "wall_s": dip + 3.0 + seed, "ref_s": 1.5,
            "ms_per_iter": 40.0}


# ---------------------------------------------------------------- designs without configs (simulations)

def synthetic_design(method: str, claims, arms_per_claim=("a", "b"), n_claims: int = 10) -> Design:
    """Cells {claim: k, arm: a|b} for k < n_claims, one task; `claims` parsed Claim objects over them."""
    base = {"claim": 0, "arm": "a"}
    points = []
    for k in range(n_claims):
        for arm in arms_per_claim:
            cell = {"claim": k, "arm": arm}
            points.append(Point(cell, apply(base, cell, base), frozenset(), f"c{k}{arm}", "task", ()))
    return Design("sim", method, "psnr", "max", "cpu", base, points, [], tuple(claims), None, ("claim", "arm"))


def synthetic_records(values, images: int) -> list[Record]:
    """values[(k, arm)][seed][image] -> psnr: one record per (claim cell, seed)."""
    out = []
    for (k, arm), by_seed in values.items():
        for seed, per in enumerate(by_seed):
            key = hashlib.sha256(f"{k}{arm}{seed}".encode()).hexdigest()[:16]
            out.append(Record(trial_key=key, status="ok", method="x", seed=seed, config={}, cell_key=f"c{k}{arm}",
                              per_image={f"img{j}": {"psnr": float(per[j])} for j in range(images)},
                              metrics={"psnr": float(sum(per) / len(per))}))
    return out
