import dataclasses
import multiprocessing as mp
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from dipddpm import hybrid
from dipddpm.cache import ArtefactCache, cache_key
from dipddpm.config import nested
from dipddpm.trial import resolve
from dipddpm.ddpm import train_ddpm
from dipddpm.diffusion import Schedule
from dipddpm.errors import ConfigError
from dipddpm.images import TEST_IMAGES, images_for
from dipddpm.sampling import ddpm_step, reverse
from dipddpm.trainset import training_crops
from dipddpm.trial import observations

TINY_HYBRID = {
    "method": "hybrid",
    "data": {"size": 32, "images": ["astronaut", "coffee"]},
    "dip": {"channels": 8, "scales": 3},
    "ddpm": {"channels": [16, 32], "layers_per_block": 1, "norm_groups": 8, "train_steps": 40,
             "dataset_size": 32, "batch_size": 8, "crop": 16},
    "hybrid": {"dip_iters": 30},
    "eval_every": 10,
}


def _cfg(**dotted):
    return resolve([("tiny", TINY_HYBRID), ("set", nested(dotted))], "cpu")


def _fields(cfg) -> dict:
    return hybrid.ddpm_fields(cfg, images_for(cfg).pool)


class RecordingModel(torch.nn.Module):
    """Stands in for the UNet: records the steps it is called at; predicts ε = 0."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, t):
        self.calls.append(int(t[0]))
        return SimpleNamespace(sample=torch.zeros_like(x))


@pytest.mark.slow  # trains a DDPM for real: ~7 s alone, minutes beside a busy process
def test_training_loss_falls_on_a_tiny_set():
    cfg = _cfg(**{"ddpm.train_steps": 120, "ddpm.lr": 2e-3})
    crops, n_src = training_crops(cfg.ddpm, cfg.data.size, cfg.seed, images_for(cfg).pool)
    assert crops.shape == (32, 3, 16, 16) and 0 <= float(crops.min()) and float(crops.max()) <= 1
    assert n_src == len(cfg.ddpm.train_images)
    trained = train_ddpm(cfg.ddpm, crops, Schedule("linear", 1000), 0, torch.device("cpu"))
    assert trained.train_steps == 120 and trained.epochs == pytest.approx(120 / 4)
    first, last = trained.loss_curve[0], trained.loss_curve[-1]
    assert last < 0.6 * first, trained.loss_curve


def test_epochs_mode_counts_steps_from_the_dataset_size():
    cfg = _cfg(**{"ddpm.epochs": 3})
    assert cfg.ddpm.train_steps is None
    trained = train_ddpm(cfg.ddpm, torch.rand(32, 3, 16, 16), Schedule("linear", 1000), 0, torch.device("cpu"))
    assert trained.train_steps == 3 * 4 and trained.epochs == 3


def test_noising_the_dip_estimate_to_t0_matches_diffusers():
    sched = Schedule("squaredcos_cap_v2", 1000)
    g = torch.Generator().manual_seed(0)
    x_dip, eps = torch.rand(3, 16, 16, generator=g), torch.randn(3, 16, 16, generator=g)
    level = SimpleNamespace(noise_std=25 / 255, t_obs=sched.step_for_sigma(25 / 255))
    t0 = hybrid.restart_step(sched, level, 0.5)
    assert abs(sched.sigma(t0) - 0.5 * level.noise_std) <= min(abs(sched.sigma(t) - 0.5 * level.noise_std)
                                                               for t in range(1000)) + 1e-12
    ours = hybrid.noised_estimate(sched, x_dip, t0, eps)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    theirs = ref.add_noise((2 * x_dip - 1)[None], eps[None], torch.tensor([t0]))[0]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_our_ddpm_step_equals_diffusers_step():
    sched = Schedule("linear", 1000)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    g = torch.Generator().manual_seed(1)
    x_t, eps = torch.randn(1, 3, 8, 8, generator=g), 0.3 * torch.randn(1, 3, 8, 8, generator=g)
    for t in (999, 300, 56, 1, 0):
        theirs = ref.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(7))
        # diffusers works in float32, we in float64: at t=999 1/sqrt(ᾱ) ≈ 160 amplifies its rounding.
        torch.testing.assert_close(ddpm_step(sched, x_t, eps, t, noise).float(), theirs, rtol=0, atol=2e-4)


@pytest.mark.parametrize("sampler,steps,calls", [("ddpm", None, 57), ("ddim", 10, 10), ("onestep", None, 1)])
def test_first_unet_call_is_at_the_start_step_and_the_count_is_right(sampler, steps, calls):
    model = RecordingModel()
    _, n = reverse(model, torch.zeros(1, 3, 8, 8), 56, sampler, steps, Schedule("linear", 1000), torch.Generator())
    assert model.calls[0] == 56 and n == calls == len(model.calls)
    assert model.calls == sorted(model.calls, reverse=True) and len(set(model.calls)) == calls


@pytest.mark.parametrize("start", ["dip", "observation", "noise"])
def test_each_start_mode_starts_where_it_should(start, tmp_path):
    cfg = _cfg(**{"hybrid.start": start, "hybrid.sampler": "ddim", "hybrid.sample_steps": 5, "ddpm.t_max": None})
    sched = Schedule("linear", 1000)
    obs = next(observations(cfg))
    model = RecordingModel()
    run = hybrid.restore_image(obs, cfg, model, sched, torch.device("cpu"), ArtefactCache(tmp_path), "test",
                               _fields(cfg))
    want = {"observation": obs.level.t_obs, "noise": 999, "dip": hybrid.restart_step(sched, obs.level, 0.5)}[start]
    assert model.calls[0] == want == run.metrics["t_start"]
    assert run.metrics["reverse_steps"] == len(model.calls) == (20 if start == "noise" else 5)
    assert ("psnr_dip" in run.metrics) == (start == "dip")


def test_a_sample_is_scored_against_its_own_clean_image(tmp_path):
    # ε̂ = 0 and one step: x̂0 = y/sqrt(ᾱ), i.e. the unbiased observation, so the
    # hybrid's score must equal the observation's score on each image.
    cfg = _cfg(**{"hybrid.start": "observation", "hybrid.sampler": "onestep"})
    sched = Schedule("linear", 1000)
    for obs in observations(cfg):
        run = hybrid.restore_image(obs, cfg, RecordingModel(), sched, torch.device("cpu"),
                                   ArtefactCache(tmp_path), "test", _fields(cfg))
        assert run.metrics["psnr"] == pytest.approx(run.metrics["psnr_observation"], abs=1e-9)
        assert run.metrics["ssim"] == pytest.approx(run.metrics["ssim_observation"], abs=1e-9)
        assert 0 <= float(run.images["hybrid"].min()) and float(run.images["hybrid"].max()) <= 1
        assert 15 < run.metrics["psnr"] < 25  # σ=25/255 on [0,1]: ~20 dB, not the 7 dB of a range mix-up


def test_a_start_step_above_t_max_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^ddpm\.t_max: expected >= the start step 999 of start=noise"):
        _cfg(**{"hybrid.start": "noise", "ddpm.t_max": 200})
    with pytest.raises(ConfigError, match=r"^ddpm\.t_max: expected >= the start step 56 of start=observation"):
        _cfg(**{"hybrid.start": "observation", "ddpm.t_max": 40})


def test_train_and_test_images_never_overlap():
    assert not {img.id for img in images_for(_cfg()).pool} & set(TEST_IMAGES)
    with pytest.raises(ConfigError, match=r"^ddpm\.train_images: expected images disjoint .* astronaut"):
        images_for(_cfg(**{"ddpm.train_images": ["rocket", "astronaut"]}))


def test_cache_key_ignores_sampling_fields_and_follows_every_training_field(tmp_path):
    from PIL import Image

    for i in range(2):  # a folder pool of the user's own images
        arr = np.random.default_rng(i).integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"p{i}.png")
    base = _cfg()
    key = cache_key("ddpm", _fields(base), 0, "v")
    for dotted, value in [("hybrid.start", "observation"), ("hybrid.t0_frac", 0.8), ("hybrid.sampler", "ddpm"),
                          ("hybrid.sample_steps", 4), ("hybrid.sampler", "onestep"), ("data.images", ["chelsea"])]:
        assert cache_key("ddpm", _fields(_cfg(**{dotted: value})), 0, "v") == key, dotted
    changed = {"ddpm.channels": [8, 16], "ddpm.layers_per_block": 2, "ddpm.train_steps": 41, "ddpm.epochs": 2,
               "ddpm.dataset_size": 40, "ddpm.batch_size": 4, "ddpm.crop": 32, "ddpm.lr": 3e-3,
               "ddpm.warmup_frac": 0.1, "ddpm.ema": 0.99, "ddpm.t_max": 500, "ddpm.attention_levels": [1],
               "ddpm.norm_groups": 4, "ddpm.train_images": ["rocket"], "diffusion.beta_schedule": "squaredcos_cap_v2",
               "diffusion.num_train_timesteps": 500, "data.size": 64, "hybrid.train_on": "dip",
               "ddpm.pool": str(tmp_path)}
    assert set(k.split(".")[1] for k in changed if k.startswith("ddpm.")) == {
        f.name for f in dataclasses.fields(base.ddpm)}
    for dotted, value in changed.items():
        assert cache_key("ddpm", _fields(_cfg(**{dotted: value})), 0, "v") != key, dotted
    assert cache_key("ddpm", _fields(base), 1, "v") != key
    assert cache_key("ddpm", _fields(base), 0, "w") != key


def _slow_make(root, log_path, out_q):
    def make():
        with open(log_path, "a") as f:
            f.write("made\n")
        time.sleep(1.0)
        return {"weights": torch.arange(5)}

    entry = ArtefactCache(root).get_or_make("ddpm", "samekey", make)
    out_q.put((entry.hit, entry.value["weights"].tolist(), entry.cost_s))


def test_two_concurrent_trials_with_one_key_make_it_once(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_slow_make, args=(tmp_path, tmp_path / "log.txt", q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert (tmp_path / "log.txt").read_text() == "made\n"
    assert sorted(hit for hit, _, _ in results) == [False, True]
    assert all(w == [0, 1, 2, 3, 4] for _, w, _ in results)
    costs = [c for _, _, c in results]
    assert costs[0] == pytest.approx(costs[1]) and costs[0] >= 1.0  # the hit is charged the maker's cost


def test_a_dip_too_deep_for_the_training_crops_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^dip\.scales: expected at most 3 for ddpm\.crop=16 px"):
        _cfg(**{"hybrid.train_on": "dip", "dip.scales": 4})
    assert _cfg(**{"hybrid.train_on": "dip", "dip.scales": 3}).hybrid.train_dip_iters == 300  # filled default


def test_our_ddim_step_equals_diffusers_ddim_with_the_clipped_model_output():
    from diffusers import DDIMScheduler

    from dipddpm.sampling import ddim_step

    sched = Schedule("linear", 1000)
    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=True, set_alpha_to_one=True)
    ref.set_timesteps(10)  # steps of 100: t -> t - 100
    g = torch.Generator().manual_seed(3)
    x_t, eps = 1.5 * torch.randn(1, 3, 8, 8, generator=g), torch.randn(1, 3, 8, 8, generator=g)
    for t in (900, 500, 100):
        theirs = ref.step(eps, t, x_t, eta=0.0, use_clipped_model_output=True).prev_sample
        torch.testing.assert_close(ddim_step(sched, x_t, eps, t, t - 100).float(), theirs, rtol=0, atol=1e-4)


class TrueNoise(torch.nn.Module):
    """A perfect denoiser for one known x0: returns the ε that x_t actually holds."""

    def __init__(self, x0: torch.Tensor, schedule: Schedule):
        super().__init__()
        self.x0, self.abar = x0, schedule.alphas_cumprod.float()

    def forward(self, x, t):
        a = self.abar[t].view(-1, 1, 1, 1)
        return SimpleNamespace(sample=(x - a.sqrt() * self.x0) / (1 - a).sqrt())


@pytest.mark.parametrize("sampler,steps", [("ddim", 7), ("onestep", None), ("ddpm", None)])
def test_the_true_noise_recovers_x0_from_any_start(sampler, steps, monkeypatch):
    sched = Schedule("squaredcos_cap_v2", 1000)
    g = torch.Generator().manual_seed(4)
    x0 = torch.rand(1, 3, 8, 8, generator=g) * 1.8 - 0.9  # in [-1, 1], where clipping does nothing
    t0 = 300
    x_t = sched.abar(t0) ** 0.5 * x0 + (1 - sched.abar(t0)) ** 0.5 * torch.randn(1, 3, 8, 8, generator=g)
    if sampler == "ddpm":  # a noiseless ancestral chain: every step's posterior mean
        monkeypatch.setattr(torch, "randn", lambda shape, generator=None, **kw: torch.zeros(shape))
    out, calls = reverse(TrueNoise(x0, sched), x_t, t0, sampler, steps, sched, torch.Generator())
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-4)
    assert calls == {"ddim": 7, "onestep": 1, "ddpm": t0 + 1}[sampler]


def test_t0_frac_one_restarts_at_the_observation_step(tmp_path):
    cfg = _cfg(**{"hybrid.start": "dip", "hybrid.t0_frac": 1.0, "hybrid.sampler": "onestep"})
    sched = Schedule("linear", 1000)
    obs = next(observations(cfg))
    assert hybrid.restart_step(sched, obs.level, 1.0) == obs.level.t_obs
    model = RecordingModel()
    run = hybrid.restore_image(obs, cfg, model, sched, torch.device("cpu"), ArtefactCache(tmp_path), "test",
                               _fields(cfg))
    assert model.calls == [obs.level.t_obs] and run.metrics["t_start"] == obs.level.t_obs


@pytest.mark.slow  # a DIP fit per training crop, then a DDPM: ~10 s alone, minutes beside a busy process
def test_train_on_dip_trains_on_dip_reconstructions_end_to_end(tmp_path):
    from dipddpm import trial

    cfg = _cfg(**{"hybrid.train_on": "dip", "hybrid.train_dip_iters": 150, "hybrid.start": "observation",
                  "ddpm.train_steps": 10, "ddpm.dataset_size": 16, "dip.scales": 3})
    cache = ArtefactCache(tmp_path)
    res = trial.run(cfg, cache=cache)
    assert res.status == "ok" and res.metrics["cache_hit_ddpm"] is False and res.metrics["cache_hit_dip"] is None
    assert res.metrics["train_data_s"] > 0 and res.metrics["train_s"] == pytest.approx(
        res.metrics["train_data_s"] + res.metrics["ddpm_fit_s"])
    # what the DDPM saw: DIP reconstructions of noisy crops, closer to the clean crops than the noisy ones
    images = images_for(cfg)
    crops, _ = training_crops(cfg.ddpm, cfg.data.size, cfg.seed, images.pool)
    stored = list((tmp_path / "dip_trainset").glob("*.pt"))
    assert len(stored) == 1
    from dipddpm.cache import loads
    recon = loads(stored[0].read_bytes()).value["x"]
    assert recon.shape == crops.shape and not torch.equal(recon, crops)
    # each reconstruction is of its own crop (150 DIP steps at 16 px)
    mse = ((recon[:, None] - crops[None]) ** 2).mean(dim=(2, 3, 4))  # (reconstruction, crop)
    own, other = float(mse.diagonal().mean()), float(mse[~torch.eye(len(crops), dtype=torch.bool)].mean())
    assert own < 0.2 * other  # measured: 0.008 against 0.083
    # a second model on the same crops (another run length) reuses the reconstructions, charged in full
    again = trial.run(_cfg(**{"hybrid.train_on": "dip", "hybrid.train_dip_iters": 150, "hybrid.start": "observation",
                              "ddpm.train_steps": 12, "ddpm.dataset_size": 16, "dip.scales": 3}), cache=cache)
    assert again.metrics["cache_hit_ddpm"] is False
    assert again.metrics["train_data_s"] == pytest.approx(res.metrics["train_data_s"])
    assert len(list((tmp_path / "dip_trainset").glob("*.pt"))) == 1
