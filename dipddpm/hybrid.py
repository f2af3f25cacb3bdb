"""Hybrid DIP -> DDPM (docs/design.md: "Hybrid DIP → DDPM"): DIP's estimate as the start of reverse diffusion.

Per test observation y = x_{t_obs}, one start mode per trial:
- dip: fit DIP to y, noise its estimate to t0 with q(x_t0 | x_dip) (t0: the step
  whose σ is t0_frac × σ_obs), run the reverse process from t0 (SDEdit-style);
- observation: y is already x_{t_obs}: run the reverse process from t_obs
  (the principled DDPM denoiser, the strong baseline);
- noise: an unconditional 20-step DDIM sample from T−1, scored against the
  test image: the seed's "without DIP" floor.
The DDPM is trained on crops of a pool disjoint from the test images, on the
clean crops or (train_on=dip, the seed's code) on DIP reconstructions of noisy
crops. Trained models and DIP estimates are cached (cache.py) and their cost
charged to every trial that uses them.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from .cache import ArtefactCache, cache_key
from .compute import prepare
from .config import DdpmConfig, DipConfig, EsConfig, HybridConfig, fill
from .degradation import NoiseLevel, Observation, noise_level, observe, schedule_of
from .ddpm import build_unet, planned_steps, train_ddpm
from .diffusion import Schedule, q_sample, to_signed
from .early_stopping import WmvDetector
from .errors import ConfigError
from .images import ImageData, distinct_crops
from .loop import DipFitter, Diverged, check_finite
from .method import FLOOR, Comparison, Method, ReportHints
from .metrics import REFERENCE_METRICS, estimate
from .record import code_version
from .reporting import Reporter
from .result import TrialResult, aggregate
from .rng import torch_generator
from .sampling import reverse, timesteps
from .schema import to_dict
from .scoring import reference_scores, scores
from .staged import ImageRun
from .trainset import training_crops

NOISE_FLOOR_DDIM_STEPS = 20
TRAIN_DIP_GROUP = 16  # training crops fitted at once by one grouped DIP


def restart_step(schedule: Schedule, level: NoiseLevel, t0_frac: float) -> int:
    """t0: the step whose σ is t0_frac × σ_obs (1 means as noisy as y)."""
    return schedule.step_for_sigma(t0_frac * level.noise_std)


def start_step(cfg, schedule: Schedule, level: NoiseLevel) -> int:
    hy = cfg.hybrid
    if hy.start == "observation":
        return level.t_obs
    if hy.start == "noise":
        return schedule.num_train_timesteps - 1
    return restart_step(schedule, level, hy.t0_frac)


def noised_estimate(schedule: Schedule, x01: torch.Tensor, t0: int, eps: torch.Tensor) -> torch.Tensor:
    """q(x_t0 | x_dip): the DIP estimate ([0,1]) moved to [-1,1] and noised to step t0."""
    return q_sample(schedule, to_signed(x01), t0, eps).float()


# ---- DIP on one image (fixed iterations or the ES-WMV point) ---------------------------------

def fit_dip(target01: torch.Tensor, cfg, name: str, iters: int, stop: str, device, groups: int = 1) -> dict:
    """Plain DIP on (G·C, H, W) targets; returns the estimate and where it was taken."""
    fitter = DipFitter(cfg.dip, name, cfg.seed, target01.shape[-1], device, groups, cfg.compute)
    target = target01.unsqueeze(0).to(device)
    wmv = WmvDetector(cfg.es.window, cfg.es.patience, target, iters) if stop == "wmv" else None
    losses = torch.full((iters,), float("nan"), device=device)
    for it in range(iters):
        est, out, losses[it] = fitter.step(target, it)
        if wmv is not None:
            wmv.update(out, it, est)
        if (it + 1) % cfg.eval_every == 0 or it + 1 == iters:
            check_finite(losses, it + 1)
            if wmv is not None and wmv.fired():
                return {"x": wmv.best_img[0].cpu(), "iters": it + 1, "iter_es": int(wmv.best_iter), "es_fired": True}
    return {"x": est[0].detach().cpu(), "iters": iters, "iter_es": iters - 1, "es_fired": False}


def dip_fields(cfg) -> dict:
    hy = cfg.hybrid
    return {"dip": to_dict(cfg.dip), "degradation": to_dict(cfg.degradation), "diffusion": to_dict(cfg.diffusion),
            "size": cfg.data.size, "iters": hy.dip_iters, "stop": hy.dip_stop,
            "es": to_dict(cfg.es) if hy.dip_stop == "wmv" else None, "eval_every": cfg.eval_every,
            "compute": to_dict(cfg.compute)}


# ---- the DDPM, trained once per training config ------------------------------------------------

def ddpm_fields(cfg, pool: tuple[ImageData, ...]) -> dict:
    """Exactly the fields that determine the trained model (sampling fields excluded); the pool by
    content (the identities of its images), not by the paths it was found at."""
    hy = cfg.hybrid
    dd = to_dict(cfg.ddpm) | {"train_images": [img.id for img in pool], "pool": None}  # by content, not path
    fields = {"ddpm": dd, "diffusion": to_dict(cfg.diffusion), "size": cfg.data.size,
              "train_on": hy.train_on, "compute": to_dict(cfg.compute)}
    if hy.train_on == "dip":
        fields |= {"dip": to_dict(cfg.dip), "degradation": to_dict(cfg.degradation),
                   "train_dip_iters": hy.train_dip_iters}
    return fields


def _dip_training_set(cfg, crops: torch.Tensor, schedule: Schedule, device) -> torch.Tensor:
    """The seed code's reading: DIP reconstructions of noisy training crops, fitted G at a time."""
    level = noise_level(cfg, schedule)
    out = torch.empty_like(crops)
    for start in range(0, len(crops), TRAIN_DIP_GROUP):
        group = crops[start : start + TRAIN_DIP_GROUP]
        noisy = torch.cat([observe(f"crop{start + i}", x, schedule, level, cfg.seed).y01 for i, x in enumerate(group)])
        res = fit_dip(noisy, cfg, f"train-group{start}", cfg.hybrid.train_dip_iters, "fixed", device, len(group))
        out[start : start + len(group)] = res["x"].reshape(len(group), *crops.shape[1:]).clamp(0, 1)
    return out


def trainset_fields(cfg, pool: tuple[ImageData, ...]) -> dict:
    """What determines the DIP reconstructions of the training crops (train_on=dip): the crops and the
    DIP, not the DDPM's training length, so models of several run lengths share one set."""
    dd = cfg.ddpm
    return {"crops": {"crop": dd.crop, "dataset_size": dd.dataset_size, "train_images": [i.id for i in pool]},
            "size": cfg.data.size, "dip": to_dict(cfg.dip), "degradation": to_dict(cfg.degradation),
            "diffusion": to_dict(cfg.diffusion), "train_dip_iters": cfg.hybrid.train_dip_iters,
            "compute": to_dict(cfg.compute), "eval_every": cfg.eval_every}


def _make_ddpm(cfg, pool, schedule: Schedule, device, report, cache, code) -> dict:
    """Train the model; its blob keeps the seconds of the fit and of its training data (attributed, so a
    shared DIP training set is charged in full to every model trained on it)."""
    crops, n_src = training_crops(cfg.ddpm, cfg.data.size, cfg.seed, pool)
    data_s = 0.0
    if cfg.hybrid.train_on == "dip":
        fields = trainset_fields(cfg, pool)
        data = cache.get_or_make("dip_trainset", cache_key("dip_trainset", fields, cfg.seed, code),
                                 lambda: {"x": _dip_training_set(cfg, crops, schedule, device)}, fields)
        crops, data_s = data.value["x"], data.cost_s
    t0 = time.perf_counter()
    trained = train_ddpm(cfg.ddpm, crops, schedule, cfg.seed, device, report, cfg.compute)
    return {"state_dict": {k: v.detach().cpu() for k, v in trained.model.state_dict().items()},
            "train_steps": trained.train_steps, "epochs": trained.epochs, "loss_curve": trained.loss_curve,
            "params": trained.params, "num_source_images": n_src, "dataset_size": len(crops),
            "distinct_crops": distinct_crops(pool, cfg.data.size, cfg.ddpm.crop),
            "fit_s": time.perf_counter() - t0, "data_s": data_s, "fit_cpu_s": trained.cpu_s,
            "step_ms": trained.step_ms_median, "step_ms_min": trained.step_ms_min}


def _load_model(cfg, blob: dict, device):
    model = build_unet(cfg.ddpm, cfg.ddpm.crop)
    model.load_state_dict(blob["state_dict"])
    return prepare(model, device, cfg.compute).eval().requires_grad_(False)


# ---- one trial -----------------------------------------------------------------------------------

def restore_all(obs_list: list[Observation], pool: tuple[ImageData, ...], cfg, device, reporter: Reporter,
                cache: ArtefactCache) -> tuple[list, dict]:
    """Restore every observation with the configured start mode, with a DDPM trained on `pool`.
    Returns (image runs, trial metrics)."""
    schedule = schedule_of(cfg)
    code = code_version()

    steps, _ = planned_steps(cfg.ddpm)

    def train_report(step, m):
        reporter.step("ddpm-train", step, steps, {**m, "phase": "train"})

    fields = ddpm_fields(cfg, pool)
    entry = cache.get_or_make("ddpm", cache_key("ddpm", fields, cfg.seed, code),
                              lambda: _make_ddpm(cfg, pool, schedule, device, train_report, cache, code),
                              {"fields": fields})
    model = _load_model(cfg, entry.value, device)
    runs = [restore_image(obs, cfg, model, schedule, device, cache, code, fields) for obs in obs_list]
    blob = entry.value
    dip_hits = [r.metrics["cache_hit_dip"] for r in runs if "cache_hit_dip" in r.metrics]
    trial = {"ddpm_fit_s": blob["fit_s"], "train_data_s": blob["data_s"], "ddpm_fit_cpu_s": blob["fit_cpu_s"],
             "ddpm_step_ms": blob["step_ms"], "ddpm_step_ms_min": blob["step_ms_min"],
             "train_steps": blob["train_steps"],
             "epochs": blob["epochs"], "num_source_images": blob["num_source_images"],
             "dataset_size": blob["dataset_size"], "distinct_crops": blob["distinct_crops"],
             "ddpm_params": blob["params"],
             "train_loss_first": blob["loss_curve"][0], "train_loss_last": blob["loss_curve"][-1],
             "cache_hit_ddpm": entry.hit, "cache_hit_dip": all(dip_hits) if dip_hits else None}  # None: no DIP ran
    trial["train_s"] = trial["ddpm_fit_s"] + trial["train_data_s"]
    trial["dip_s"] = sum(r.metrics.get("dip_s", 0.0) for r in runs)
    trial["sample_s"] = sum(r.metrics["sample_s"] for r in runs)
    trial["ref_s"] = sum(r.metrics["ref_s"] for r in runs)  # the classical references: not the method's time
    trial["time_s"] = trial["train_s"] + trial["dip_s"] + trial["sample_s"]
    return runs, trial | {"train_loss_curve": blob["loss_curve"]}


def restore_image(obs: Observation, cfg, model, schedule: Schedule, device, cache, code, model_fields: dict) -> ImageRun:
    hy, run = cfg.hybrid, ImageRun(obs.name)
    gen = torch_generator(cfg.seed, obs.name, "sampling")
    t_start = start_step(cfg, schedule, obs.level)
    images = {}
    if hy.start == "dip":
        fields = dip_fields(cfg) | {"image": obs.name}
        dip = cache.get_or_make("dip", cache_key("dip", fields, cfg.seed, code),
                                lambda: fit_dip(obs.y01, cfg, obs.name, hy.dip_iters, hy.dip_stop, device), fields)
        x_dip = estimate(dip.value["x"], "psnr_dip")
        run.metrics |= scores("_dip", x_dip, obs.x0) | {
            "dip_s": dip.cost_s, "dip_iters_run": dip.value["iters"], "dip_es_fired": dip.value["es_fired"],
            "cache_hit_dip": dip.hit}
        dip_cpu = dip.cost_cpu_s if dip.cost_cpu_s is not None else dip.cost_s
        images["dip"] = x_dip
        x_start = noised_estimate(schedule, x_dip, t_start, torch.randn(obs.x0.shape, generator=gen))
    elif hy.start == "observation":
        x_start = obs.y
    t0, c0 = time.perf_counter(), time.process_time()
    if hy.start == "noise":
        x0_hat, calls, cost, hit, cpu = _noise_floor(obs, cfg, model, model_fields, schedule, device, cache, code)
    else:
        x0_hat, calls = reverse(model, x_start.unsqueeze(0).to(device), t_start, hy.sampler, hy.sample_steps,
                                schedule, gen, cfg.compute)
        x0_hat, cost, hit, cpu = x0_hat[0].cpu(), time.perf_counter() - t0, False, time.process_time() - c0
    est = estimate((x0_hat + 1) / 2, "psnr")  # back to [0,1] (checked), scored against this image's own x0
    ref_m, ref_img = reference_scores(obs)
    # What one restoration of this image costs, in the process's CPU seconds (a neighbouring trial moves it
    # little): its DIP fit (start=dip; a cached fit is charged what it cost) and its reverse process; the DDPM's
    # training, shared by every start mode, apart.
    restore = cpu + (dip_cpu if hy.start == "dip" else 0.0)
    run.metrics |= scores("", est, obs.x0) | {"t_start": t_start, "reverse_steps": calls, "sample_s": cost,
                                               "cache_hit_sample": hit, "restore_cpu_s": restore} | ref_m
    run.images = ref_img | images | {"hybrid": est}
    return run


def _noise_floor(obs, cfg, model, model_fields, schedule, device, cache, code):
    """Unconditional 20-step DDIM from pure noise at T−1, once per model, seed and image."""
    T = schedule.num_train_timesteps
    fields = model_fields | {"image": obs.name, "shape": list(obs.x0.shape), "ddim_steps": NOISE_FLOOR_DDIM_STEPS}

    def make():
        gen = torch_generator(cfg.seed, obs.name, "sampling")
        x_T = torch.randn((1, *obs.x0.shape), generator=gen).to(device)
        x, calls = reverse(model, x_T, T - 1, "ddim", NOISE_FLOOR_DDIM_STEPS, schedule, gen, cfg.compute)
        return {"x": x[0].cpu(), "calls": calls}

    entry = cache.get_or_make("noise_floor", cache_key("noise_floor", fields, cfg.seed, code), make, fields)
    cpu = entry.cost_cpu_s if entry.cost_cpu_s is not None else entry.cost_s
    return entry.value["x"], entry.value["calls"], entry.cost_s, entry.hit, cpu


# ---- config checks that need this method's knowledge ---------------------------------------

def check(cfg, schedule: Schedule, level: NoiseLevel) -> None:
    """The hybrid method's own config checks (one-line ConfigErrors naming the key)."""
    dd, hy = cfg.ddpm, cfg.hybrid
    for i, c in enumerate(dd.channels):
        if c % dd.norm_groups:
            raise ConfigError(f"ddpm.norm_groups: expected a divisor of every ddpm.channels entry, "
                              f"got {dd.norm_groups} (channels[{i}] = {c})")
    for i, lv in enumerate(dd.attention_levels):
        if lv >= len(dd.channels):
            raise ConfigError(f"ddpm.attention_levels[{i}]: expected a level < {len(dd.channels)}, got {lv}")
    factor = 2 ** (len(dd.channels) - 1)
    for key, px in (("ddpm.crop", dd.crop), ("data.size", cfg.data.size)):
        if px % factor:
            raise ConfigError(f"{key}: expected a multiple of {factor} (the UNet halves it "
                              f"{len(dd.channels) - 1} times), got {px}")
    if dd.crop > cfg.data.size:
        raise ConfigError(f"ddpm.crop: expected at most data.size={cfg.data.size}, got {dd.crop}")
    if dd.t_max is not None and dd.t_max >= schedule.num_train_timesteps:
        raise ConfigError(f"ddpm.t_max: expected a step < {schedule.num_train_timesteps}, got {dd.t_max}")
    t_start = start_step(cfg, schedule, level)
    if dd.t_max is not None and t_start > dd.t_max:
        raise ConfigError(f"ddpm.t_max: expected >= the start step {t_start} of start={hy.start} "
                          f"(the model must be trained there), got {dd.t_max}")
    if hy.dip_stop == "wmv":
        from .staged import check_detector

        check_detector(cfg.es.window, cfg.es.patience, hy.dip_iters, "hybrid.dip_iters")


# ---- the method: canonical config, one trial, scheduling hints, what it reports ----------------

def canonical(cfg):
    """Null what a hybrid trial does not use: no stage ladder; `start: noise` (an unconditional 20-step DDIM
    floor) no DIP, restart step or sampler choice; `observation` no DIP; DIP fields only where a DIP runs."""
    cfg = dataclasses.replace(cfg, staged=None)
    dd, hy = cfg.ddpm or DdpmConfig(), cfg.hybrid or HybridConfig()
    for a, b in (("train_steps", "epochs"), ("train_images", "pool")):
        if (getattr(dd, a) is None) == (getattr(dd, b) is None):
            raise ConfigError(f"ddpm.{a}: expected exactly one of ddpm.{a} or ddpm.{b}, got "
                              + ("both" if getattr(dd, a) is not None else "neither"))
    none = dict.fromkeys
    if hy.start == "noise":
        hy = dataclasses.replace(hy, **none(("t0_frac", "dip_iters", "dip_stop", "sampler", "sample_steps")))
    elif hy.start == "observation":
        hy = fill(dataclasses.replace(hy, **none(("t0_frac", "dip_iters", "dip_stop"))), ("sampler",))
    else:
        hy = fill(hy, ("t0_frac", "dip_iters", "dip_stop", "sampler"))
    hy = fill(hy, ("sample_steps",)) if hy.sampler == "ddim" else dataclasses.replace(hy, sample_steps=None)
    hy = fill(hy, ("train_dip_iters",)) if hy.train_on == "dip" else dataclasses.replace(hy, train_dip_iters=None)
    uses_dip = hy.start == "dip" or hy.train_on == "dip"
    uses_es = hy.start == "dip" and hy.dip_stop == "wmv"
    es = dataclasses.replace(cfg.es or EsConfig(), stage_window=None, stage_patience=None) if uses_es else None
    return dataclasses.replace(cfg, ddpm=dd, hybrid=hy, dip=(cfg.dip or DipConfig()) if uses_dip else None, es=es)


def run_trial(cfg, observations, images, device, reporter: Reporter, cache=None) -> TrialResult:
    """Train (or fetch) the DDPM, then restore every test observation from the configured start."""
    t0 = time.perf_counter()
    try:
        runs, extra = restore_all(observations, images.pool, cfg, device, reporter, cache or ArtefactCache())
    except Diverged as exc:
        return TrialResult("diverged", f"diverged: {exc}", {"wall_s": time.perf_counter() - t0}, {}, {}, {},
                           str(device))
    curves = {r.name: r.curves for r in runs} | {"ddpm": {"train_loss": extra.pop("train_loss_curve")}}
    metrics = aggregate([r.metrics for r in runs]) | extra
    metrics |= {"wall_s": time.perf_counter() - t0, "images": len(runs)}
    return TrialResult("ok", None, metrics, {r.name: r.metrics for r in runs}, curves,
                       {r.name: r.images for r in runs}, str(device))


def tags(config: dict) -> tuple[str, ...]:
    """An unconditional sample scored against a test image compares unrelated images: a FLOOR."""
    return (FLOOR,) if (config.get("hybrid") or {}).get("start") == "noise" else ()


def artefact(cfg, images) -> str:
    """The trained model a trial needs before anything else (trials that share it wait on one maker)."""
    return cache_key("ddpm", ddpm_fields(cfg, images.pool), cfg.seed, "")


def after_artefact_cost(cfg) -> float:
    """A trial's work once its model exists, in UNet calls: the reverse process from its start step (plus
    the start=dip fit, a DIP step counted as about a third of a UNet call)."""
    hy, schedule = cfg.hybrid, schedule_of(cfg)
    if hy.start == "noise":
        return float(NOISE_FLOOR_DDIM_STEPS * len(cfg.data.images))
    calls = len(timesteps(hy.sampler, start_step(cfg, schedule, noise_level(cfg, schedule)), hy.sample_steps))
    return len(cfg.data.images) * (calls + (hy.dip_iters or 0) / 3)


DIP_ALONE = (("psnr", "psnr_dip"), ("ssim", "ssim_dip"), ("time_s", "dip_s"))

METHOD = Method(
    name="hybrid",
    doc="hybrid DIP -> DDPM: DIP's estimate as the start of reverse diffusion",
    unit="seed",  # one trained DDPM serves every test image of a training seed
    metric_names=("psnr", "ssim", "psnr_dip", "ssim_dip", "dip_s", "dip_iters_run", "dip_es_fired", "t_start",
                  "reverse_steps", "sample_s", "restore_cpu_s", "train_s", "ddpm_fit_s", "ddpm_fit_cpu_s", "ddpm_step_ms",
                  "ddpm_step_ms_min", "train_data_s", "train_steps", "epochs", "num_source_images", "dataset_size",
                  "distinct_crops", "ddpm_params", "train_loss_first", "train_loss_last", "time_s", "wall_s",
                  "images") + REFERENCE_METRICS,
    default_metric="psnr",
    run=run_trial,
    check=check,
    canonical=canonical,
    tags=tags,
    artefact=artefact,
    after_artefact_cost=after_artefact_cost,
    report=ReportHints(
        variant_axis="hybrid.start",
        comparisons=(
            Comparison("hybrid.start", "dip", "observation"),
            Comparison("hybrid.start", "dip", "noise"),
            Comparison("hybrid.start", "observation", "noise"),
            Comparison("hybrid.start", "dip", "dip", "a", DIP_ALONE, "DIP alone"),
            Comparison("hybrid.start", "observation", "dip", "a", DIP_ALONE, "DIP alone"),
        ),
        compared=("psnr", "ssim", "time_s"),
        quality=("psnr", "ssim", "psnr_dip"),
        cost_parts=("train_s", "dip_s", "sample_s"),
        cost_detail=("ddpm_fit_s", "train_data_s", "ddpm_fit_cpu_s", "restore_cpu_s", "reverse_steps"),
        figure="restorations",
        image_kinds=("clean", "observation", "dip", "hybrid"),
        # start=noise needs a model trained on every step: its cell also has t_max null
        figure_arms=(("dip", ()), ("observation", ()), ("noise", (("ddpm.t_max", None),))),
        grid=(("DIP alone", "dip", "dip", "psnr_dip"),
              ("DDPM from noise (floor: unrelated sample)", "noise", "hybrid", "psnr"),
              ("DDPM from y", "observation", "hybrid", "psnr"), ("DDPM from DIP", "dip", "hybrid", "psnr")),
    ),
)
