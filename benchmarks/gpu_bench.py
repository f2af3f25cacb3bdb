"""`make bench` section 5, on a CUDA GPU: precision and memory format, and trials per GPU.

1. compute.precision × compute.channels_last (fp32, bf16, channels_last, both) on the
   gpu profile's sizes, timed on the real code paths: the staged method's DIP step
   (DipFitter), the hybrid method's DDPM training step (train_ddpm, per-step cost from
   two run lengths) and its sampler's UNet call (reverse, ddim); speed-up over fp32.
2. Trials per GPU: the same 8 short staged trials as a sweep with resources.gpu =
   1, 0.5, 0.25 (1, 2, 4 trials sharing the GPU); wall time and trials per minute.

`smoke=True` runs the same code on the CPU at tiny sizes, with Ray told it has one
(logical) GPU: a check that the section works, not a measurement (bench.py --smoke also
runs 2 trials per sharing level instead of 8).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from dipddpm.config import nested
from dipddpm.trial import resolve

from timed_sweep import SMOKE, stage_es, timed_sweep  # SMOKE: the smoke run's sizes (else the gpu profile's)

VARIANTS = (("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn, n: int, warm: int = 3) -> float:
    """Seconds per call of fn, the device's queue drained before and after."""
    for _ in range(warm):
        fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / n


def _variant_cfg(precision: str, channels_last: bool, smoke: bool, method: str):
    layers = [("bench", nested({"method": method, "compute.precision": precision,
                                "compute.channels_last": channels_last}))]
    return resolve(layers + ([("smoke", SMOKE)] if smoke else []), "gpu")


def dip_step_s(cfg, device: torch.device, n: int) -> float:
    from dipddpm.loop import DipFitter

    fitter = DipFitter(cfg.dip, "astronaut", 0, cfg.data.size, device, compute=cfg.compute)
    target = torch.rand((1, 3, cfg.data.size, cfg.data.size), generator=torch.Generator().manual_seed(0)).to(device)
    return _timed(device, lambda: fitter.step(target), n)


def ddpm_train_step_s(cfg, device: torch.device, n: int) -> float:
    """Per optimizer step: two runs of train_ddpm (n and 3n steps), so set-up cancels out."""
    import dataclasses

    from dipddpm.ddpm import train_ddpm
    from dipddpm.diffusion import Schedule

    c = cfg.ddpm.crop
    data = torch.rand((cfg.ddpm.batch_size * 2, 3, c, c), generator=torch.Generator().manual_seed(0))
    sched = Schedule(cfg.diffusion.beta_schedule, cfg.diffusion.num_train_timesteps)

    def run(steps: int) -> float:
        dd = dataclasses.replace(cfg.ddpm, train_steps=steps, epochs=None)
        _sync(device)
        t = time.perf_counter()
        train_ddpm(dd, data, sched, 0, device, compute=cfg.compute)
        _sync(device)
        return time.perf_counter() - t

    run(2)  # first-use costs (kernels, allocator) outside the timing
    return (run(3 * n) - run(n)) / (2 * n)


def unet_call_s(cfg, device: torch.device, n: int) -> float:
    """Per UNet call of the reverse process (ddim, n calls) on one test-sized image."""
    from dipddpm.compute import prepare
    from dipddpm.ddpm import build_unet
    from dipddpm.diffusion import Schedule
    from dipddpm.sampling import reverse

    model = prepare(build_unet(cfg.ddpm, cfg.ddpm.crop), device, cfg.compute).eval().requires_grad_(False)
    sched = Schedule(cfg.diffusion.beta_schedule, cfg.diffusion.num_train_timesteps)
    x = torch.randn((1, 3, cfg.data.size, cfg.data.size), generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator().manual_seed(0)
    return _timed(device, lambda: reverse(model, x, 500, "ddim", n, sched, gen, cfg.compute), 2, warm=1) / n


def precision_table(device: torch.device, smoke: bool) -> list[dict]:
    n = 3 if smoke else 20
    rows = []
    for precision, cl in VARIANTS:
        staged, hybrid = _variant_cfg(precision, cl, smoke, "staged"), _variant_cfg(precision, cl, smoke, "hybrid")
        rows.append({"precision": precision, "channels_last": cl,
                     "dip_step_ms": 1000 * dip_step_s(staged, device, n),
                     "ddpm_train_step_ms": 1000 * ddpm_train_step_s(hybrid, device, max(2, n // 4)),
                     "unet_call_ms": 1000 * unet_call_s(hybrid, device, n)})
    base = rows[0]
    for r in rows:
        for k in ("dip_step_ms", "ddpm_train_step_ms", "unet_call_ms"):
            r[k.replace("_ms", "_speedup")] = base[k] / r[k]
    return rows


def trials_per_gpu(smoke: bool, runs: Path, trials: int = 8) -> list[dict]:
    """`trials` short staged trials as one sweep per sharing level; wall time of the trial phase."""
    from orchestrator.sweep.runner import SweepOptions
    from orchestrator.sweep.spec import parse_spec

    per_stage = 5 if smoke else 60
    # the stages' detectors sized to the short stage (the gpu profile's W = P = 40 need more than 79 iterations)
    base = {"staged": {"iters_per_stage": per_stage}, "es": stage_es(per_stage, "gpu")}
    base |= SMOKE if smoke else {}
    out = []
    for per_gpu in (1, 2, 4):
        name = f"gpu-share-{per_gpu}"
        spec = parse_spec({"name": name, "method": "staged", "base": base, "grid": {"dip.lr": [0.01]},
                           "seeds": list(range(trials)), "resources": {"cpu": 1, "gpu": 1 / per_gpu}}, "bench")
        r = timed_sweep(spec, SweepOptions(profile="gpu", runs_dir=str(runs), live=False))
        wall = r["trials_s"]
        out.append({"trials_per_gpu": per_gpu, "gpu_fraction": 1 / per_gpu, "trials": trials, "wall_s": wall,
                    "trials_per_min": trials * 60 / wall, "records_ok": r["records_ok"]})
    for r in out:
        r["throughput_vs_1"] = r["trials_per_min"] / out[0]["trials_per_min"]
    return out


def gpu(smoke: bool = False, trials: int = 8) -> dict:
    """Both parts; `smoke`: on the CPU (or a GPU) at tiny sizes, `trials` per sharing level."""
    if not torch.cuda.is_available() and not smoke:
        return {"measured": False, "reason": "no CUDA GPU on this machine: AMP (bf16), channels_last and "
                                             "trials per GPU (1, 2, 4) not measured"}
    import ray

    from orchestrator.sweep.runner import SweepOptions, start_ray, worker_env

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = {"measured": not smoke, "smoke": smoke,
           "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke run)"}
    if smoke:
        out["reason"] = "smoke run at tiny sizes: the code works; these are not GPU figures"
    threads = torch.get_num_threads()
    if device.type == "cpu":  # one thread, as a trial gets: two stall beside any busy process (×10 and worse)
        torch.set_num_threads(1)
    try:
        out["precision"] = precision_table(device, smoke)
    finally:
        torch.set_num_threads(threads)
    os.environ["WANDB_MODE"] = "disabled"
    if smoke:  # a logical GPU, so that Ray schedules fractional-GPU trials on this CPU machine
        ray.init(address="local", num_gpus=1, runtime_env={"env_vars": worker_env()},
                 include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    else:
        start_ray(SweepOptions())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out["trials_per_gpu"] = trials_per_gpu(smoke, Path(tmp), trials)
    finally:
        ray.shutdown()
    return out
