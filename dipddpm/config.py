"""Trial configuration: one frozen dataclass per concern, layers, canonical form, key.

The bottom of the science package: it knows the fields, not the methods. `compose`
builds a typed, canonical config from layers; `dipddpm.trial.resolve` adds the
checks that need a method (validate.py).

Precedence, lowest first (docs/design.md: "Sweeps"): documented defaults -> built-in profile
(cpu | gpu) -> sweep base / --config file -> sweep profile -> grid cell /
--set -> seed. Either/or groups: a layer that sets one member replaces the whole
group from lower layers; a layer setting two members is an error.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError
from .images import TEST_IMAGES, TRAIN_IMAGES
from .schema import NON_NEGATIVE, POSITIVE, POSITIVE_INT, UNIT_OPEN, from_dict, section, spec, to_dict

PROFILES = ("cpu", "gpu")


@dataclass(frozen=True)
class DataConfig:
    images: tuple[str, ...] = spec(TEST_IMAGES, doc="test images: bundled scikit-image names or file paths")
    size: int = spec(256, (lambda v: v >= 16, "an integer >= 16"), "side in px after centre-crop + resize")
    root: str | None = spec(None, doc="a folder of the user's images (used with glob when images is empty)")
    glob: str | None = spec("*", doc="file pattern inside root")


@dataclass(frozen=True)
class DegradationConfig:
    # Either/or: fixing σ keeps the task the same when a sweep changes the schedule.
    noise_std: float | None = spec(25 / 255, (lambda v: 0 < v <= 2, "a number in (0, 2]"),
                                   "Gaussian noise std on [0,1] (the DIP paper's 25/255)")
    t_obs: int | None = spec(None, (lambda v: v >= 1, "an integer >= 1"), "observation step (instead of noise_std)")


@dataclass(frozen=True)
class DiffusionConfig:
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = spec("linear", doc="diffusers beta schedule")
    num_train_timesteps: int = spec(1000, (lambda v: v >= 10, "an integer >= 10"), "T")


@dataclass(frozen=True)
class DipConfig:
    net: Literal["skip", "simple"] = spec("skip", doc="skip: the DIP paper's hourglass; simple: the seeds' 3-conv CNN")
    scales: int = spec(5, POSITIVE_INT, "hourglass depth (skip net)")
    channels: int = spec(128, POSITIVE_INT, "channels per scale (paper: 128)")
    skip_channels: int = spec(4, (lambda v: v >= 0, "an integer >= 0"), "skip-connection channels (paper: 4)")
    kernel: int = spec(3, (lambda v: v % 2 == 1, "an odd integer"), "conv kernel size")
    input_channels: int = spec(32, POSITIVE_INT, "channels of the fixed noise input (paper: 32)")
    input_scale: float = spec(0.1, POSITIVE, "input noise ~ U(0, input_scale) (paper: 0.1)")
    reg_noise_std: float = spec(1 / 30, NON_NEGATIVE, "input perturbation per step (paper: 1/30)")
    lr: float = spec(0.01, POSITIVE, "Adam learning rate (paper and seed: 0.01)")
    output_ema: float | None = spec(0.99, UNIT_OPEN, "EMA of outputs used as the estimate (paper's 0.99); null: off")


@dataclass(frozen=True)
class EsConfig:
    window: int = spec(100, (lambda v: v >= 2, "an integer >= 2"), "ES-WMV window W of plain DIP (paper: 100)")
    patience: int = spec(1000, POSITIVE_INT, "ES-WMV patience P of plain DIP (paper: 1000)")
    # A stage is a fraction of a plain DIP run and starts from a network already fitted to the stage
    # before it: its detectors get a W and P of their own (null: window and patience).
    stage_window: int | None = spec(None, (lambda v: v >= 2, "an integer >= 2"),
                                    "W of the staged variant's per-stage detectors (null: window)")
    stage_patience: int | None = spec(None, POSITIVE_INT, "P of the staged variant's per-stage detectors "
                                                          "(null: patience)")

    def for_stages(self) -> tuple[int, int]:
        """(W, P) of the staged variant's per-stage detectors."""
        return (self.stage_window if self.stage_window is not None else self.window,
                self.stage_patience if self.stage_patience is not None else self.patience)


@dataclass(frozen=True)
class StagedConfig:
    variant: Literal["staged", "baseline"] = spec("staged", doc="baseline: plain DIP on y for stages × iters_per_stage")
    targets: Literal["observation", "clean"] | None = spec(
        "observation", doc="observation: targets from y alone; clean: the seed's ORACLE study")
    levels: tuple[float, ...] | None = spec((3.0, 2.0, 1.5, 1.25, 1.0), POSITIVE,
                                            "descending noise levels, multiples of the observation's σ")
    timesteps: tuple[int, ...] | None = spec(None, NON_NEGATIVE, "explicit descending steps (instead of levels)")
    noise: Literal["chain", "independent"] | None = spec("chain", doc="targets as one forward trajectory or drawn apart")
    iters_per_stage: int = spec(400, POSITIVE_INT, "DIP iterations per stage")
    stage_switch: Literal["fixed", "wmv"] | None = spec("fixed", doc="wmv: next stage when ES-WMV fires (capped)")
    stages: int | None = spec(None, POSITIVE_INT, "number of stages; derived from the ladder (the baseline keeps only this)")


@dataclass(frozen=True)
class DdpmConfig:
    channels: tuple[int, ...] = spec((128, 128, 256, 256, 512, 512), (lambda v: v > 0 and v % 8 == 0, "a multiple of 8"),
                                     "UNet2DModel block_out_channels (the seed's tutorial UNet)")
    attention_levels: tuple[int, ...] = spec((4,), NON_NEGATIVE, "levels with self-attention blocks (tutorial: the 5th)")
    layers_per_block: int = spec(2, POSITIVE_INT, "ResNet layers per UNet block")
    norm_groups: int = spec(32, POSITIVE_INT, "GroupNorm groups (must divide every channel count)")
    train_steps: int | None = spec(4000, POSITIVE_INT, "optimizer steps (default: dataset size then cannot change the compute)")
    epochs: int | None = spec(None, POSITIVE_INT, "passes over dataset_size crops (the seed's reading, instead of train_steps)")
    dataset_size: int = spec(1000, POSITIVE_INT, "reproducible random crops of the training pool")
    batch_size: int = spec(16, POSITIVE_INT, "crops per step")
    crop: int = spec(128, (lambda v: v >= 8, "an integer >= 8"), "training crop side in px")
    lr: float = spec(1e-4, POSITIVE, "AdamW peak learning rate")
    warmup_frac: float = spec(0.05, (lambda v: 0 <= v < 1, "a number in [0, 1)"),
                              "cosine-LR warm-up as a fraction of the run (a fixed 500 outlives short runs)")
    ema: float | None = spec(0.999, UNIT_OPEN, "EMA decay of the weights used for sampling; null: off")
    t_max: int | None = spec(None, NON_NEGATIVE, "train only on t <= t_max (null: every step)")
    train_images: tuple[str, ...] | None = spec(TRAIN_IMAGES, doc="the training pool (bundled names or files), "
                                                                  "disjoint from the test images")
    pool: str | None = spec(None, doc="a folder of your own training images, instead of train_images "
                                      "(disjoint from the test images)")


@dataclass(frozen=True)
class HybridConfig:
    train_on: Literal["clean", "dip"] = spec("clean", doc="dip: train on DIP reconstructions of noisy crops (the seed's code)")
    train_dip_iters: int | None = spec(300, POSITIVE_INT, "DIP iterations per training crop (train_on=dip)")
    start: Literal["dip", "observation", "noise"] = spec("dip", doc="where the reverse process starts")
    t0_frac: float | None = spec(0.5, (lambda v: 0 < v <= 1, "a number in (0, 1]"),
                                 "start=dip: restart at the step whose σ is t0_frac × σ_obs")
    dip_iters: int | None = spec(1200, POSITIVE_INT, "DIP iterations on y (start=dip); the ES-WMV point if dip_stop=wmv")
    dip_stop: Literal["fixed", "wmv"] | None = spec("fixed", doc="DIP estimate at the last iteration or the ES-WMV point")
    sampler: Literal["ddpm", "ddim", "onestep"] | None = spec(
        "ddim", doc="ddpm: every step; ddim (eta 0): sample_steps steps; onestep: Tweedie x0 at the start step")
    sample_steps: int | None = spec(10, POSITIVE_INT, "UNet calls for ddim")


@dataclass(frozen=True)
class ComputeConfig:
    # Part of the trial's identity: bf16 changes the numbers, so fp32 and bf16 trials never share a key.
    precision: Literal["fp32", "bf16"] = spec(
        "fp32", doc="bf16: the networks' forward passes under bfloat16 autocast (GPU tensor cores; slow on CPUs "
                    "without bf16 units); losses, optimizer state and averages stay fp32")
    channels_last: bool = spec(False, doc="NHWC memory format for the networks and their inputs (tensor-core GPUs)")


@dataclass(frozen=True)
class TrialConfig:
    method: Literal["staged", "hybrid"] = spec("staged", doc="staged DIP or hybrid DIP→DDPM")
    seed: int = spec(0, (lambda v: v >= 0, "an integer >= 0"), "seeds every (image, purpose) generator")
    eval_every: int = spec(25, POSITIVE_INT, "iterations between SSIM / target-PSNR / loss evaluations")
    data: DataConfig = section(DataConfig)
    degradation: DegradationConfig = section(DegradationConfig)
    diffusion: DiffusionConfig = section(DiffusionConfig)
    dip: DipConfig | None = section(DipConfig, optional=True)
    es: EsConfig | None = section(EsConfig, optional=True)
    staged: StagedConfig | None = section(StagedConfig, optional=True)
    ddpm: DdpmConfig | None = section(DdpmConfig, optional=True)
    hybrid: HybridConfig | None = section(HybridConfig, optional=True)
    compute: ComputeConfig = section(ComputeConfig)


# Either/or groups (docs/design.md: "Sweeps"), as (section, members).
EITHER_OR = (
    ("degradation", ("noise_std", "t_obs")),
    ("staged", ("levels", "timesteps")),
    ("ddpm", ("train_steps", "epochs")),
    ("ddpm", ("train_images", "pool")),
)

# A layer that sets ES-WMV's window (patience) without the stages' own makes the stages follow it.
FOLLOWS = {"window": "stage_window", "patience": "stage_patience"}

# Built-in profiles, merged over the documented defaults.
PROFILE_LAYERS: dict[str, dict[str, Any]] = {
    # 64 px, a 32-channel skip net (~16 ms per DIP step on one core), 5 stages × 240 iterations,
    # so a staged trial takes about 25 s per image. ES-WMV from benchmarks/es_calibration.py, on the
    # six pool photos (two seeds each, at σ 25/255 and as seed 000 at each of its learning rates; the
    # test photos never choose it): plain DIP W=400/P=5 (fired on 92-100% of each configuration's runs,
    # mean detection gap 0.46 dB); the stages' detectors W=25/P=25 (each can fire inside a 240-iteration
    # stage; fired on every run, 0.84 dB).
    "cpu": {
        "data": {"size": 64, "images": ["astronaut"]},
        "dip": {"channels": 32},
        "staged": {"iters_per_stage": 240},
        "es": {"window": 400, "patience": 5, "stage_window": 25, "stage_patience": 25},
        # A 0.9M-parameter UNet on 32 px crops, about two minutes of training on 2 cores
        # (~0.47 s per batch-16 step); only t <= 200 (σ up to ~100/255), which at equal
        # steps gained ~1 dB on astronaut over training on every step. start=noise needs
        # ddpm.t_max=null.
        "ddpm": {"channels": [32, 64], "attention_levels": [], "layers_per_block": 2, "norm_groups": 8,
                 "train_steps": 250, "dataset_size": 1000, "batch_size": 16, "crop": 32, "lr": 2e-3,
                 "ema": None, "t_max": 200},
        "hybrid": {"dip_iters": 600},
    },
    # The seed's sizes: 256 px, the paper's 128-channel net, 6 stages × 400 iterations. Plain DIP's
    # ES-WMV is the paper's W=100/P=1000 (it can fire inside a 2400-iteration run); the stages' detectors
    # take the cpu calibration's short window and patience scaled to a 400-iteration stage (W=P=40).
    # Neither is calibrated at these sizes (that needs a GPU: es_calibration.py --profile gpu).
    "gpu": {
        "data": {"size": 256},
        "dip": {"channels": 128},
        "staged": {"levels": [3.0, 2.5, 2.0, 1.5, 1.25, 1.0], "iters_per_stage": 400},
        "es": {"window": 100, "patience": 1000, "stage_window": 40, "stage_patience": 40},
        # The seed's tutorial UNet at 128 px, 1000 crops, 1000 timesteps.
        "ddpm": {"channels": [128, 128, 256, 256, 512, 512], "attention_levels": [4], "crop": 128,
                 "dataset_size": 1000, "train_steps": 4000},
        "hybrid": {"dip_iters": 1800},
    },
}


def nested(dotted: dict[str, Any]) -> dict[str, Any]:
    """{'dip.lr': 1e-3} -> {'dip': {'lr': 1e-3}}."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = str(key).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {p} is set both as a value and as a section")
        node[parts[-1]] = value
    return out


def _group_members_set(layer: dict, sec: str, members: tuple[str, ...]) -> list[str]:
    body = layer.get(sec)
    if not isinstance(body, dict):
        return []
    return [m for m in members if body.get(m) is not None]


def merge_layer(base: dict, layer: dict, where: str) -> dict:
    """Deep-merge `layer` over `base`, applying the either/or group rule."""
    out = copy.deepcopy(base)
    for sec, members in EITHER_OR:
        chosen = _group_members_set(layer, sec, members)
        if len(chosen) > 1:
            raise ConfigError(f"{sec}.{chosen[0]}: set either {' or '.join(members)}, not both ({where})")
        if chosen and isinstance(out.get(sec), dict):
            for m in members:
                out[sec][m] = None
    es = layer.get("es")
    if isinstance(es, dict) and isinstance(out.get("es"), dict):
        for plain, stage in FOLLOWS.items():  # the stages follow a layer's plain W (P) unless it sets theirs
            if plain in es and stage not in es:
                out["es"][stage] = None
    _deep_update(out, layer)
    return out


def _deep_update(dst: dict, src: dict) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def merged_layers(layers: list[tuple[str, dict]], profile: str | None = None) -> dict:
    """Defaults -> profile -> each (name, nested layer) merged as plain values, before typing and
    canonical nulling: the settings a sweep's layers state (its base, as a sweep file gives it)."""
    merged = to_dict(TrialConfig())
    if profile is not None:
        if profile not in PROFILE_LAYERS:
            raise ConfigError(f"profile: expected one of {' | '.join(PROFILES)}, got {profile!r}")
        merged = merge_layer(merged, PROFILE_LAYERS[profile], f"profile {profile}")
    for where, layer in layers:
        if not isinstance(layer, dict):
            raise ConfigError(f"{where}: expected a mapping of config keys, got {type(layer).__name__}")
        merged = merge_layer(merged, layer, where)
    return merged


def compose(layers: list[tuple[str, dict]], profile: str | None = None) -> "TrialConfig":
    """Defaults -> profile -> each (name, nested layer) in order: typed and range-checked, with the fields no
    method uses nulled. The method's own canonical form and checks come after (`dipddpm.trial.resolve`)."""
    cfg = from_dict(TrialConfig, merged_layers(layers, profile))
    return cfg if cfg.data.root else dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, glob=None))


def fill(obj, names: tuple[str, ...]):
    """Give applicable fields that are null their documented default (e.g. after a start mode switch)."""
    default = type(obj)()
    return dataclasses.replace(obj, **{n: getattr(obj, n) if getattr(obj, n) is not None else getattr(default, n)
                                       for n in names})


def config_dict(cfg: TrialConfig) -> dict[str, Any]:
    return to_dict(cfg)


def trial_key(cfg: TrialConfig, images=None) -> str:
    """The identity of a trial: a hash of the canonical config (seed included) and of the identities
    of the images it was resolved to (an `ImageSet` or its `identity()`; derived from the config when it
    names bundled images only), so a photo edited in place, or a folder that gained a file, is a new trial."""
    from .images import bundled_set

    identity = images if isinstance(images, dict) else (images or bundled_set(cfg)).identity()
    blob = json.dumps({"config": to_dict(cfg), "images": identity}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
