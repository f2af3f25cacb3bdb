"""Staged DIP (docs/design.md: "Staged DIP"): fit DIP to DDPM forward-process targets, most noisy first.

Targets (in the DDPM's [-1,1] space, shown to DIP through the unbiased mapping):
- targets=observation: from q(x_{t_k} | y), the forward chain continued from
  y = x_{t_obs}; a level of 1 is y itself. Uses only what a user has.
- targets=clean (ORACLE): from q(x_{t_k} | x0).
- noise=chain: one forward trajectory, the least noisy target from the source,
  each noisier one from the previous (q(x_t | x_s), s < t); independent: each
  target drawn from the source separately.
The baseline is plain DIP on y for stages × iters_per_stage iterations.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field

import torch

from .config import EsConfig, StagedConfig, DipConfig
from .degradation import NoiseLevel, Observation, schedule_of
from .diffusion import Schedule, q_sample_from, shown_to_dip, to_signed
from .early_stopping import PeakTracker, WmvDetector
from .errors import ConfigError
from .ladder import ladder_steps
from .loop import DipFitter, Diverged, check_finite, psnr_db
from .metrics import REFERENCE_METRICS
from .method import ORACLE, Comparison, Method, ReportHints
from .result import TrialResult, aggregate
from .rng import torch_generator
from .reporting import Reporter
from .scoring import score_image

log = logging.getLogger(__name__)


@dataclass
class Stage:
    step: int  # forward-process step of the target (t_obs for y itself)
    target01: torch.Tensor  # (C, H, W) what DIP is fitted to, unclipped


def stage_targets(obs: Observation, st, schedule: Schedule, seed: int) -> list[Stage]:
    """The stage ladder's targets for one image, most noisy first."""
    if st.variant == "baseline":
        return [Stage(obs.level.t_obs, obs.y01)]
    steps = ladder_steps(st, schedule, obs.level)
    if st.targets == "observation":
        src, s0 = obs.y, obs.level.t_obs
    else:
        src, s0 = to_signed(obs.x0), -1  # ORACLE: the clean image as source
    gen = torch_generator(seed, obs.name, "stage_targets")
    prev, s_prev = src, s0
    by_step: dict[int, torch.Tensor] = {}
    for t in reversed(steps):  # least noisy first, so a chain is one forward trajectory
        if t == s0:
            x_t = src  # level 1 with observation targets: y itself
        else:
            base, s = (prev, s_prev) if st.noise == "chain" else (src, s0)
            eps = torch.randn(src.shape, generator=gen, dtype=torch.float32)
            x_t = q_sample_from(schedule, base, s, t, eps).to(torch.float32)
        by_step[t] = x_t
        prev, s_prev = x_t, t
    return [Stage(t, shown_to_dip(schedule, by_step[t], t)) for t in steps]


@dataclass
class ImageRun:
    """What one image's fit produced: metrics, curves, images to save."""

    name: str
    metrics: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)  # name -> (C, H, W) in [0,1]
    diverged: bool = False
    error: str | None = None


def fit_image(obs: Observation, cfg, device: torch.device, report: Reporter) -> ImageRun:
    """Staged (or baseline) DIP on one observation, tracking the oracle peak and ES-WMV."""
    st, schedule = cfg.staged, schedule_of(cfg)
    stages = stage_targets(obs, st, schedule, cfg.seed)
    per_stage = st.iters_per_stage * (st.stages if st.variant == "baseline" else 1)
    total = per_stage * len(stages)
    x0 = obs.x0.unsqueeze(0).to(device)  # (1, C, H, W)
    fitter = DipFitter(cfg.dip, obs.name, cfg.seed, x0.shape[-1], device, compute=cfg.compute)
    peak, var_curve = PeakTracker(x0, total), torch.full((total,), float("nan"), device=device)
    losses = torch.full((total,), float("nan"), device=device)
    run = ImageRun(obs.name)
    ev = {"iter": [], "ssim": [], "psnr": [], "psnr_target": [], "loss": [], "wmv_var": []}
    boundaries, it, t0, est, last_good = [], 0, time.perf_counter(), None, None
    final = len(stages) - 1
    try:
        for k, stage in enumerate(stages):
            boundaries.append(it)
            target = stage.target01.unsqueeze(0).to(device)
            # ES-WMV per stage, on that stage's outputs only (a window across two targets mixes them): the
            # final stage's detector (target y) gives the headline ES point; an earlier one, with
            # stage_switch=wmv, says when to move on. One detector for all would latch in stage 0.
            wmv = WmvDetector(*detector(cfg), x0, total, curve=var_curve)
            switch = st.stage_switch == "wmv" and k < final
            for j in range(per_stage):
                est, out, loss = fitter.step(target, it)
                losses[it] = loss
                peak.update(est, it)
                wmv.update(out, it, est)
                it += 1
                if it % cfg.eval_every == 0 or j == per_stage - 1:
                    check_finite(losses, it)
                    last_good = est.clone()
                    _evaluate(ev, it, est, target, x0, losses, peak, wmv, cfg.eval_every)
                    report.step(obs.name, it, total, {k_: v[-1] for k_, v in ev.items()} | {"stage": k})
                    if switch and wmv.fired():
                        break
    except Diverged as exc:
        run.diverged, run.error = True, f"diverged: {exc}"
    dip_s = time.perf_counter() - t0
    last = last_good if last_good is not None else peak.best_img
    run.curves = _curves(peak, wmv, ev, boundaries, stages, it)
    run.metrics, run.images = score_image(obs, peak, wmv, last, it)
    run.metrics |= {"dip_s": dip_s, "iters": it, "stage_steps": [s.step for s in stages],
                    "ms_per_iter": 1000 * dip_s / max(it, 1)}
    return run


def _evaluate(ev, it, est, target, x0, losses, peak, wmv, every) -> None:
    """SSIM vs x0, PSNR vs x0 and vs the current target, mean loss since the last eval."""
    from .metrics import ssim

    ev["iter"].append(it)
    ev["ssim"].append(ssim(est[0].clamp(0, 1), x0[0]))
    ev["psnr"].append(float(peak.curve[it - 1]))
    ev["psnr_target"].append(psnr_db(float(torch.mean((est - target) ** 2))))
    ev["loss"].append(float(losses[max(0, it - every):it].mean()))
    v = float(wmv.curve[it - 1])
    ev["wmv_var"].append(None if v != v else v)


def _curves(peak, wmv, ev, boundaries, stages, n) -> dict:
    def finite(xs):
        return [None if x != x or x in (float("inf"), float("-inf")) else x for x in xs]

    return {
        "psnr": finite(peak.curve[:n].tolist()),
        "wmv_var": finite(wmv.curve[:n].tolist()),
        "eval": ev,
        "stage_boundaries": boundaries,
        "stage_steps": [s.step for s in stages],
    }


# ---- config checks that need this method's knowledge ---------------------------------------

def detector(cfg) -> tuple[int, int]:
    """(W, P) of ES-WMV for this trial: a stage's own for the staged variant, plain DIP's for the baseline."""
    return cfg.es.for_stages() if cfg.staged.variant == "staged" else (cfg.es.window, cfg.es.patience)


def check(cfg, schedule: Schedule, level: NoiseLevel) -> None:
    """The staged method's own config checks (one-line ConfigErrors naming the key)."""
    st = cfg.staged
    if st.variant == "staged":
        ladder_steps(st, schedule, level)
        # the detector that gives psnr_es watches the final stage; one that switches stages watches its own
        check_detector(*detector(cfg), st.iters_per_stage, "a stage (staged.iters_per_stage)", "es.stage_")
    else:
        check_detector(*detector(cfg), st.stages * st.iters_per_stage, "the baseline's whole run", "es.")


def check_detector(window: int, patience: int, iters: int, what: str, prefix: str = "es.") -> None:
    """ES-WMV's first variance comes after `window` iterations and it fires `patience` iterations after a
    minimum at the earliest: window − 1 + patience must be below the iterations it watches."""
    if window - 1 + patience >= iters:
        raise ConfigError(f"{prefix}patience: expected {prefix}window − 1 + {prefix}patience < the {iters} "
                          f"iterations ES-WMV watches in {what}, so that it can fire, got {window} − 1 + "
                          f"{patience} = {window - 1 + patience}")


# ---- the method: canonical config, one trial, what it reports ---------------------------------

def canonical(cfg):
    """Null what the staged method does not use (no DDPM); a baseline ignores the ladder, targets, noise and
    switching, and only the staged variant's stage detectors have a W and P of their own."""
    st, es = _canonical_ladder(cfg.staged or StagedConfig()), cfg.es or EsConfig()
    w, p = es.for_stages()  # explicit for the staged variant (equal trials hash equal); none for plain DIP
    es = dataclasses.replace(es, stage_window=w, stage_patience=p) if st.variant == "staged" else \
        dataclasses.replace(es, stage_window=None, stage_patience=None)
    return dataclasses.replace(cfg, staged=st, ddpm=None, hybrid=None, dip=cfg.dip or DipConfig(), es=es)


def _canonical_ladder(st: StagedConfig) -> StagedConfig:
    ladder = st.levels if st.levels is not None else st.timesteps
    if ladder is not None:
        if st.stages is not None and st.stages != len(ladder) and st.variant == "staged":
            raise ConfigError(f"staged.stages: expected {len(ladder)} (the ladder's length) or null, got {st.stages}")
        st = dataclasses.replace(st, stages=len(ladder))
    elif st.variant == "staged":
        raise ConfigError("staged.levels: expected a list of levels (or staged.timesteps), got null")
    if st.stages is None:
        raise ConfigError("staged.stages: expected an integer > 0 (a baseline needs the ladder's length), got null")
    if st.variant == "baseline":
        # Plain DIP on y: the ladder, targets, noise and switching do not apply.
        return dataclasses.replace(st, targets=None, levels=None, timesteps=None, noise=None, stage_switch=None)
    return dataclasses.replace(st, targets=st.targets or "observation", noise=st.noise or "chain",
                               stage_switch=st.stage_switch or "fixed")


def run_trial(cfg, observations, images, device, reporter: Reporter, cache=None) -> TrialResult:
    """Every test image's fit, in order; a diverged image stops the trial (its last good estimate counts)."""
    t0 = time.perf_counter()
    runs = []
    for i, obs in enumerate(observations):
        reporter.begin_image(i, sum(r.metrics.get("iters", 0) for r in runs))
        runs.append(fit_image(obs, cfg, device, reporter))
        if runs[-1].diverged:
            log.warning("%s diverged on %s: stopping the trial", cfg.method, obs.name)
            break
    status = "diverged" if any(r.diverged for r in runs) else "ok"
    error = next((r.error for r in runs if r.error), None)
    metrics = aggregate([r.metrics for r in runs])
    metrics["wall_s"] = time.perf_counter() - t0
    metrics["dip_s"] = sum(r.metrics.get("dip_s", 0.0) for r in runs)  # per trial, as every *_s figure
    metrics["ref_s"] = sum(r.metrics.get("ref_s", 0.0) for r in runs)  # the classical references
    metrics["time_s"] = metrics["wall_s"] - metrics["ref_s"]  # the method's own time
    metrics["images"] = len(runs)
    return TrialResult(status, error, metrics, {r.name: r.metrics for r in runs},
                       {r.name: r.curves for r in runs}, {r.name: r.images for r in runs}, str(device))


def tags(config: dict) -> tuple[str, ...]:
    """Targets from the clean image are an ORACLE study."""
    return (ORACLE,) if (config.get("staged") or {}).get("targets") == "clean" else ()


METHOD = Method(
    name="staged",
    doc="staged DIP: DIP fitted to DDPM forward-process targets, most noisy first",
    unit="image",  # each image has its own observation, input and init draws: a (seed, image) fit is a unit
    metric_names=("psnr", "ssim", "psnr_es", "ssim_es", "iter_es", "es_fired", "psnr_peak", "ssim_peak",
                  "iter_peak", "es_gap_db", "dip_s", "iters", "ms_per_iter", "time_s", "wall_s", "images")
    + REFERENCE_METRICS,
    default_metric="psnr_es",
    run=run_trial,
    check=check,
    canonical=canonical,
    tags=tags,
    censored=(("iter_peak", "iters"), ("iter_es", "iters")),  # the run's last iteration is "at least"
    report=ReportHints(
        variant_axis="staged.variant",
        comparisons=(Comparison("staged.variant", "staged", "baseline"),),
        compared=("psnr_es", "ssim_es", "psnr_peak", "time_s"),
        quality=("psnr_es", "ssim_es", "psnr_peak", "psnr", "ssim"),
        cost_parts=("dip_s",),
        cost_detail=("ms_per_iter",),
        figure="stage_curves",
        image_kinds=("clean", "observation", "es", "peak"),
        figure_arms=(("staged", ()), ("baseline", ())),
        grid=(("plain DIP (ES)", "baseline", "es", "psnr_es"), ("staged DIP (ES)", "staged", "es", "psnr_es"),
              (f"staged DIP peak [{ORACLE}]", "staged", "peak", "psnr_peak")),
        grid_best=True,
        per_image_axis=True,
    ),
)
