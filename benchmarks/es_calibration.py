"""Choose ES-WMV's window W and patience P for a profile, on the DDPM's training pool only.

Runs the profile's DIP on the pool photos (never a test photo: choosing W and
P on the images a sweep scores would be tuning on the test set) in each
configuration the shipped sweeps score with ES-WMV: plain and staged DIP on
the profile's observation (σ 25/255), and seed 000's plain DIP and clean-target
staged DIP on y at t = 30. It keeps every iteration's estimate, replays ES-WMV
for a grid of (W, P), and picks two pairs: one for plain DIP (es.window,
es.patience: its detector watches the whole run) and one for the staged
variant's per-stage detectors (es.stage_window, es.stage_patience: the headline
one watches the final stage only). Among the pairs that can fire inside the
iterations their detector watches (W − 1 + P below them) and never stop below
the observation itself, each is the one that fires most often — first on the
configuration where it fires least, then on all together: a detector that does
not fire is no early stopping, its ES point is the last iteration — and then
has the smallest mean detection gap (oracle peak PSNR − PSNR at the ES point),
its configurations weighted alike. The test photos are then scored with the
chosen pairs as a held-out check. (A first rule, the smallest gap among pairs
firing on half the runs, chose plain W=300/P=200, which fired on 0 of 6 held-out
seed-000 runs: the rule put firing first after that, so for plain DIP the
held-out figures are no longer an untouched check.)

    python benchmarks/es_calibration.py --profile cpu --out benchmarks/es_calibration.json
    python benchmarks/es_calibration.py --variants baseline --seeds 0 1 --out part.json   # one part
    python benchmarks/es_calibration.py --merge a.json b.json --out benchmarks/es_calibration.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dipddpm.config import nested
from dipddpm.trial import resolve  # noqa: E402
from dipddpm.degradation import noise_level, observe, schedule_of  # noqa: E402
from dipddpm.images import TEST_IMAGES, TRAIN_IMAGES, load_image  # noqa: E402
from dipddpm.loop import DipFitter  # noqa: E402
from dipddpm.metrics import psnr  # noqa: E402
from dipddpm.staged import stage_targets  # noqa: E402

CALIBRATION = TRAIN_IMAGES  # the pool: disjoint from every sweep's test images (a test checks it)
HOLDOUT = TEST_IMAGES
WINDOWS = (25, 50, 75, 100, 150, 200, 250, 300, 400)
PATIENCES = (5, 10, 15, 25, 50, 75, 100, 150, 200, 300)
# The configurations the shipped sweeps read an ES point from (staged.yaml's base and seed 000's cells).
SEED000 = {"degradation.t_obs": 30, "staged.timesteps": [30, 25, 20, 15, 10, 5]}
CONFIGS = {"baseline": {"staged.variant": "baseline"}, "staged": {"staged.variant": "staged"},
           "seed000_baseline": SEED000 | {"staged.variant": "baseline"},
           "seed000_staged": SEED000 | {"staged.variant": "staged", "staged.targets": "clean"}}
for _lr in (0.008, 0.1):  # seed 000's other learning rates: its cells score ES-WMV at each
    CONFIGS[f"seed000_baseline_lr{_lr}"] = CONFIGS["seed000_baseline"] | {"dip.lr": _lr}
    CONFIGS[f"seed000_staged_lr{_lr}"] = CONFIGS["seed000_staged"] | {"dip.lr": _lr}
DETECTORS = {"plain": tuple(k for k in CONFIGS if "baseline" in k), "stage": tuple(k for k in CONFIGS if "staged" in k)}
FIRED_STEP = 1 / 12  # fired rates closer than one run in twelve count as equal


def trajectory(cfg, photo: str) -> tuple[torch.Tensor, torch.Tensor, float, int]:
    """Raw outputs (N, 1, C, H, W), the estimates' PSNR vs x0 (N,), the clipped observation's PSNR, and
    where the final stage starts (the detector watches that stage only, as the method does)."""
    schedule = schedule_of(cfg)
    obs = observe(photo, load_image(photo, cfg.data.size), schedule, noise_level(cfg, schedule), cfg.seed)
    stages = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    per_stage = cfg.staged.iters_per_stage * (cfg.staged.stages if cfg.staged.variant == "baseline" else 1)
    fitter = DipFitter(cfg.dip, obs.name, cfg.seed, cfg.data.size, torch.device("cpu"))
    outs, psnrs, final_start = [], [], 0
    for stage in stages:
        final_start = len(outs)
        target = stage.target01.unsqueeze(0)
        for _ in range(per_stage):
            est, out, _ = fitter.step(target)
            outs.append(out.clone())
            psnrs.append(float(-10 * torch.log10(torch.mean((est[0] - obs.x0) ** 2))))
    return torch.stack(outs), torch.tensor(psnrs), psnr(obs.y01.clamp(0, 1), obs.x0), final_start


def wmv_curve(outs: torch.Tensor, window: int) -> np.ndarray:
    """VAR_t of ES-WMV for every t (NaN before the window fills), vectorised with cumulative sums."""
    x = outs.reshape(len(outs), -1).double().numpy()  # (N, P)
    s = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    q = np.concatenate([[0.0], np.cumsum((x * x).sum(axis=1))])
    var = np.full(len(x), np.nan)
    t = np.arange(window - 1, len(x))
    win_s = s[t + 1] - s[t + 1 - window]  # (T', P)
    var[t] = (q[t + 1] - q[t + 1 - window] - (win_s * win_s).sum(axis=1) / window) / (window * x.shape[1])
    return var


def replay(var: np.ndarray, psnrs: torch.Tensor, patience: int, offset: int = 0) -> dict:
    """The detector's rule on a precomputed VAR curve of iterations offset, offset+1, ... (tests check the
    detector matches this rule); the gap is against the whole run's peak."""
    best, best_i, fired = np.inf, -1, False
    for t, v in enumerate(var):
        if np.isnan(v):
            continue
        if v < best:
            best, best_i = v, t
        if t - best_i >= patience:
            fired = True
            break
    it = offset + (best_i if fired else len(var) - 1)
    return {"fired": fired, "iter_es": int(it), "psnr_es": round(float(psnrs[it]), 3),
            "gap_db": round(float(psnrs.max() - psnrs[it]), 3)}


def run_one(cfg, variant: str, photo: str, seed: int, role: str) -> dict:
    t0 = time.perf_counter()
    outs, psnrs, psnr_obs, start = trajectory(cfg, photo)
    row = {"variant": variant, "photo": photo, "seed": seed, "role": role, "iters": len(psnrs),
           "seconds": round(time.perf_counter() - t0, 1), "psnr_observation": round(psnr_obs, 3),
           "psnr_peak": round(float(psnrs.max()), 3), "iter_peak": int(psnrs.argmax()),
           "psnr_end": round(float(psnrs[-1]), 3), "grid": {}}
    for w in WINDOWS:
        var = wmv_curve(outs[start:], w) if w <= len(outs) - start else np.full(len(outs) - start, np.nan)
        row["grid"] |= {f"W{w}_P{p}": replay(var, psnrs, p, start) for p in PATIENCES}
    return row


def choose(runs: list[dict], watched: int, variants: tuple[str, ...]) -> dict:
    """The (W, P) over `variants`' calibration runs, among those that can fire within `watched` iterations
    (W − 1 + P < watched) and never stop below the observation: the most often fired (least-firing variant
    first, then all), then the smallest mean gap."""
    calib = [r for r in runs if r["role"] == "calibration" and r["variant"] in variants]
    if not calib:
        raise SystemExit(f"choose: no calibration runs of {', '.join(variants)}; run or merge them first")
    variants = tuple(v for v in variants if any(r["variant"] == v for r in calib))
    table = []
    for cell in calib[0]["grid"]:
        w, p = (int(v[1:]) for v in cell.split("_"))
        per = {v: [r["grid"][cell] for r in calib if r["variant"] == v] for v in variants}
        table.append({"cell": cell, "can_fire": w - 1 + p < watched,
                      "mean_gap": statistics.mean(statistics.mean(x["gap_db"] for x in xs) for xs in per.values()),
                      "gap_by_variant": {v: statistics.mean(x["gap_db"] for x in xs) for v, xs in per.items()},
                      "fired_by_variant": {v: statistics.mean(x["fired"] for x in xs) for v, xs in per.items()},
                      "never_below_observation": all(r["grid"][cell]["psnr_es"] >= r["psnr_observation"]
                                                     for r in calib)})
    ok = [t for t in table if t["can_fire"] and t["never_below_observation"]]
    if not ok:
        raise SystemExit(f"choose: no (W, P) of {', '.join(variants)} can fire within {watched} iterations without "
                         "stopping below the observation")

    def rank(t):
        rates = list(t["fired_by_variant"].values())
        return (-round(min(rates) / FIRED_STEP), -round(statistics.mean(rates) / FIRED_STEP), t["mean_gap"])

    best = min(ok, key=rank)
    w, p = (int(v[1:]) for v in best["cell"].split("_"))
    held = [r for r in runs if r["role"] == "holdout"]

    def held_out(variant: str) -> dict:
        rows = [r["grid"][best["cell"]] | {"psnr_observation": r["psnr_observation"]} for r in held
                if r["variant"] == variant]
        if not rows:
            return {}
        return {"runs": len(rows), "mean_gap_db": statistics.mean(x["gap_db"] for x in rows),
                "max_gap_db": max(x["gap_db"] for x in rows),
                "fired_rate": statistics.mean(x["fired"] for x in rows),
                "below_observation": sum(x["psnr_es"] < x["psnr_observation"] for x in rows)}

    return {"window": w, "patience": p, "watched_iters": watched, "calibration": best,
            "holdout": {v: held_out(v) for v in variants}, "table": table}


def choose_both(runs: list[dict], profile: str) -> dict:
    """Plain DIP's pair (its detector watches the shortest baseline run) and the stages' (a stage)."""
    cfg = resolve([], profile)
    plain_iters = min(r["iters"] for r in runs if r["variant"] in DETECTORS["plain"])
    return {"plain": choose(runs, plain_iters, DETECTORS["plain"]),
            "stage": choose(runs, cfg.staged.iters_per_stage, DETECTORS["stage"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--photos", nargs="*", default=list(CALIBRATION), help="calibration photos (the pool)")
    ap.add_argument("--holdout", nargs="*", default=list(HOLDOUT), help="held-out photos, scored only")
    ap.add_argument("--variants", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1])
    ap.add_argument("--merge", nargs="*", help="combine the runs of earlier output files, then choose")
    ap.add_argument("--out", default="benchmarks/es_calibration.json")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as a sweep trial runs (resources.cpu 1); two parts can run side by side
    overlap = set(args.photos) & set(TEST_IMAGES)
    if overlap:
        ap.error(f"--photos: {', '.join(sorted(overlap))} are test images; calibrate on pool images only")
    out = {"profile": args.profile, "calibration_photos": args.photos, "holdout_photos": args.holdout, "runs": []}
    if args.merge:
        for path in args.merge:
            out["runs"] += json.loads(Path(path).read_text())["runs"]
    else:
        for variant in args.variants:
            for seed in args.seeds:
                cfg = resolve([("calibration", nested(CONFIGS[variant] | {"seed": seed}))], args.profile)
                for role, photos in (("calibration", args.photos), ("holdout", args.holdout)):
                    for photo in photos:
                        row = run_one(cfg, variant, photo, seed, role)
                        out["runs"].append(row)
                        print(role, variant, seed, photo, f"obs {row['psnr_observation']:.2f} peak "
                              f"{row['psnr_peak']:.2f}@{row['iter_peak']} end {row['psnr_end']:.2f}", flush=True)
                        Path(args.out).write_text(json.dumps(out, indent=1))
    if any(r["role"] == "calibration" for r in out["runs"]):
        out["chosen"] = choose_both(out["runs"], args.profile)
        for name, c in out["chosen"].items():
            print(f"{name}: W={c['window']} P={c['patience']} (within {c['watched_iters']} iterations): calibration "
                  f"mean gap {c['calibration']['mean_gap']:.2f} dB (by configuration {c['calibration']['gap_by_variant']}"
                  f", fired {c['calibration']['fired_by_variant']}); held out: {c['holdout']}")
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
