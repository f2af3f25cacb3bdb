"""Choose ES-WMV's window W and patience P for a profile, on evidence.

Runs the profile's DIP (baseline and staged) on several bundled photos, keeps
every iteration's estimate, then replays ES-WMV for a grid of (W, P) and writes
the detection gap (oracle peak PSNR − PSNR at the ES point) per photo to JSON.

    python benchmarks/es_calibration.py --profile cpu --out benchmarks/es_calibration.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dipddpm.config import nested, resolve
from dipddpm.degradation import noise_level, observe, schedule_of
from dipddpm.images import load_image
from dipddpm.loop import DipFitter
from dipddpm.staged import stage_targets

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
WINDOWS = (25, 50, 100, 150)
PATIENCES = (100, 200, 300, 400, 500, 600, 800)


def trajectory(cfg, photo: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw outputs and estimates (N, 1, C, H, W) and the estimates' PSNR vs x0 (N,) for one photo."""
    schedule = schedule_of(cfg)
    obs = observe(photo, load_image(photo, cfg.data.size), schedule, noise_level(cfg, schedule), cfg.seed)
    stages = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    per_stage = cfg.staged.iters_per_stage * (cfg.staged.stages if cfg.staged.variant == "baseline" else 1)
    fitter = DipFitter(cfg.dip, obs.name, cfg.seed, cfg.data.size, torch.device("cpu"))
    outs, ests, psnrs = [], [], []
    for stage in stages:
        target = stage.target01.unsqueeze(0)
        for _ in range(per_stage):
            est, out, _ = fitter.step(target)
            outs.append(out.clone())
            ests.append(est.clone())
            psnrs.append(float(-10 * torch.log10(torch.mean((est[0] - obs.x0) ** 2))))
    return torch.stack(outs), torch.stack(ests), torch.tensor(psnrs)


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


def replay(var: np.ndarray, psnrs: torch.Tensor, patience: int) -> dict:
    """The detector's rule on a precomputed VAR curve (tests check the detector matches this rule)."""
    best, best_i, fired = np.inf, -1, False
    for t, v in enumerate(var):
        if np.isnan(v):
            continue
        if v < best:
            best, best_i = v, t
        if t - best_i >= patience:
            fired = True
            break
    it = best_i if fired else len(var) - 1
    return {"fired": fired, "iter_es": int(it), "gap_db": round(float(psnrs.max() - psnrs[it]), 3)}


def _yaml(v):
    from dipddpm.yamlio import loads

    return loads(v) if isinstance(v, str) else v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--photos", nargs="*", default=list(PHOTOS))
    ap.add_argument("--out", default="benchmarks/es_calibration.json")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE config overrides")
    args = ap.parse_args()
    out = {"profile": args.profile, "runs": []}
    for variant in ("baseline", "staged"):
        overrides = {"staged.variant": variant} | dict(a.split("=", 1) for a in args.set)
        cfg = resolve([("calibration", nested({k: _yaml(v) for k, v in overrides.items()}))], args.profile)
        for photo in args.photos:
            t0 = time.perf_counter()
            outs, ests, psnrs = trajectory(cfg, photo)
            row = {"variant": variant, "photo": photo, "iters": len(ests), "seconds": time.perf_counter() - t0,
                   "psnr_peak": float(psnrs.max()), "iter_peak": int(psnrs.argmax()), "psnr_end": float(psnrs[-1]),
                   "grid": {}}
            for w in WINDOWS:
                var = wmv_curve(outs, w)
                row["grid"] |= {f"W{w}_P{p}": replay(var, psnrs, p) for p in PATIENCES}
            out["runs"].append(row)
            print(variant, photo, f"peak {row['psnr_peak']:.2f}@{row['iter_peak']} end {row['psnr_end']:.2f}", flush=True)
            with open(args.out, "w") as f:
                json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
