"""Sweep YAMLs: every file in sweeps/ dry-runs; broken files give one line and exit 2."""

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.sweep.plan import expand
from orchestrator.sweep.spec import parse_spec

SWEEPS = sorted(Path(__file__).resolve().parent.parent.joinpath("sweeps").glob("*.yaml"))


def test_there_are_sweeps_to_check():
    assert {p.name for p in SWEEPS} >= {"staged.yaml", "hybrid.yaml"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_every_sweep_loads_and_dry_runs(path, profile, capsys):
    assert main(["sweep", str(path), "--dry-run", "--profile", profile]) == 0
    out = capsys.readouterr().out
    assert f"profile {profile}" in out and "trials" in out
    assert main(["sweep", str(path), "--dry-run", "--json", "--profile", profile]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) >= 8
    assert len({d["trial_key"] for d in lines}) == len(lines)
    assert all(d["config"]["method"] in ("staged", "hybrid") and d["profile"] == profile for d in lines)


def test_the_staged_sweep_varies_every_axis_of_the_seed():
    trials, _ = expand(parse_spec(_load("staged.yaml"), "staged.yaml"), "cpu")
    cfgs = [t.config for t in trials]
    assert {c.dip.lr for c in cfgs} >= {0.01, 0.008, 0.1}
    assert {c.staged.variant for c in cfgs} == {"staged", "baseline"}
    assert {c.staged.targets for c in cfgs} >= {"observation", "clean"}
    assert {c.diffusion.beta_schedule for c in cfgs} == {"linear", "squaredcos_cap_v2"}
    assert len({c.degradation.noise_std for c in cfgs if c.degradation.noise_std}) == 3
    assert len({c.staged.levels for c in cfgs if c.staged.levels}) >= 3


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_both_sweeps_repeat_each_seeds_experiment_as_written(profile):
    staged = [t for t in expand(parse_spec(_load("staged.yaml"), "staged.yaml"), profile)[0]
              if t.config.degradation.t_obs == 30]
    # seed 000: y at t = 30 (linear/1000), clean targets 30 -> 5 against plain DIP, same iterations, each lr
    assert {(t.config.staged.variant, t.config.dip.lr) for t in staged} == {
        (v, lr) for v in ("staged", "baseline") for lr in (0.01, 0.008, 0.1)}
    for t in staged:
        st, cfg = t.config.staged, t.config
        assert cfg.diffusion.beta_schedule == "linear" and cfg.diffusion.num_train_timesteps == 1000
        assert st.stages == 6 and len(cfg.data.images) >= 2
        if st.variant == "staged":
            assert st.targets == "clean" and st.timesteps == (30, 25, 20, 15, 10, 5)
    # seed 004: from noise, clean vs DIP training data at its base, then its epochs, timesteps and schedule
    hybrid = [t.config for t in expand(parse_spec(_load("hybrid.yaml"), "hybrid.yaml"), profile)[0]
              if t.config.hybrid.start == "noise"]
    cells = {(c.hybrid.train_on, c.ddpm.epochs, c.diffusion.num_train_timesteps, c.diffusion.beta_schedule)
             for c in hybrid if c.ddpm.dataset_size == 100}
    assert cells == {("clean", 10, 1000, "linear"), ("dip", 10, 1000, "linear"), ("clean", 20, 1000, "linear"),
                     ("clean", 30, 1000, "linear"), ("clean", 10, 500, "linear"),
                     ("clean", 10, 1000, "squaredcos_cap_v2")}
    if profile == "gpu":
        assert all(c.ddpm.channels == (128, 128, 256, 256, 512, 512) for c in hybrid)


@pytest.mark.parametrize("name", ["staged.yaml", "hybrid.yaml"])
def test_every_seed_claim_can_reach_enough_units(name):
    """cpu: at least 3 units per claim within max_seeds (adaptive: undecided claims gain seeds); gpu: 5 from
    the first seeds on (docs/design.md: "Statistics")."""
    from orchestrator.stats.verdicts import family
    from orchestrator.stats.units import unit_of, unit_of_method
    from orchestrator.sweep.plan import plan

    spec = parse_spec(_load(name), name)
    for profile, need in (("cpu", 3), ("gpu", 5)):
        p = plan(spec, profile)
        rows = family(p.design, spec.claims, spec.metric)
        assert rows and all(r.pairs for r in rows)
        for row in rows:
            images = {img for cp in row.pairs for img in cp.a.task.split(" · ")[1].split(",")}
            per_image = unit_of_method(spec.method) == "image"
            per_seed = len({unit_of(per_image, 0, i) for i in images}) if row.kind != "seed (one value per trial)" \
                else 1
            seeds = p.replicate.max_seeds if profile == "cpu" else p.replicate.min_seeds
            assert per_seed * seeds >= need, (profile, row.claim.text, per_seed, seeds)


def test_the_gpu_pool_offers_a_thousand_distinct_crops_and_more_is_an_error():
    from dipddpm.trial import resolve
    from dipddpm.errors import ConfigError
    from dipddpm.images import distinct_crops, images_for

    cfg = resolve([("h", {"method": "hybrid"})], "gpu")
    pool = images_for(cfg).pool
    n = distinct_crops(pool, cfg.data.size, cfg.ddpm.crop)
    assert n >= 1000 and cfg.ddpm.dataset_size <= n
    too_many = resolve([("h", {"method": "hybrid", "ddpm": {"dataset_size": n + 1}})], "gpu")
    with pytest.raises(ConfigError, match=rf"^ddpm\.dataset_size: expected at most {n} \(the distinct 128 px crops "
                                          rf"of the {len(pool)} pool images at data\.size 256\), got {n + 1}$"):
        images_for(too_many)
    # the seed's tutorial setting that made the axis empty: 128 px crops of the pool at 128 px
    assert distinct_crops(pool, 128, 128) < 200


def test_the_hybrid_sweep_varies_every_axis_of_the_seed():
    trials, _ = expand(parse_spec(_load("hybrid.yaml"), "hybrid.yaml"), "cpu")
    cfgs = [t.config for t in trials]
    assert {c.hybrid.start for c in cfgs} == {"dip", "observation", "noise"}
    assert {c.hybrid.train_on for c in cfgs} == {"clean", "dip"}
    assert {c.hybrid.sampler for c in cfgs} >= {"ddpm", "ddim", "onestep"}
    assert {c.diffusion.num_train_timesteps for c in cfgs} == {1000, 500}
    assert {c.diffusion.beta_schedule for c in cfgs} == {"linear", "squaredcos_cap_v2"}
    assert len({c.ddpm.dataset_size for c in cfgs}) >= 3 and any(c.ddpm.epochs for c in cfgs)
    assert len({c.hybrid.t0_frac for c in cfgs if c.hybrid.t0_frac}) >= 3


def _load(name):
    from dipddpm.yamlio import load_file

    return load_file(Path(__file__).resolve().parent.parent / "sweeps" / name)


def test_baseline_cells_of_a_variant_by_ladder_grid_merge():
    spec = parse_spec({"name": "m", "method": "staged", "seeds": [0, 1],
                       "grid": {"staged.variant": ["staged", "baseline"],
                                "staged.levels": [[3, 2, 1.5, 1.25, 1], [4, 3, 2, 1.5, 1]]}})
    trials, merged = expand(spec, "cpu")
    # 2 variants x 2 ladders x 2 seeds = 8 cells; the two baseline ladders are one trial per seed.
    assert len(trials) == 6 and merged == 2
    assert sum(t.config.staged.variant == "baseline" for t in trials) == 2


BROKEN = [
    ("bogus: 1\nname: x\nmethod: staged", "bogus"),
    ("name: x\nmethod: diffusion", "method"),
    ("name: 'bad name!'\nmethod: staged", "name"),
    ("name: x\nmethod: staged\ngrid: {dip.lr: []}", "grid.dip.lr"),
    ("name: x\nmethod: staged\ngrid: []", "grid"),
    ("name: x\nmethod: staged\ngrid: {dip.lr: 0.01}", "grid.dip.lr"),
    ("name: x\nmethod: staged\ngrid: {dip.lr: [0.01, -0.1]}", "dip.lr"),
    ("name: x\nmethod: staged\nbase: {dip: {lr: fast}}", "dip.lr"),
    ("name: x\nmethod: staged\nbase: {dip: {width: 3}}", "dip.width"),
    ("name: x\nmethod: staged\nbase: {degradation: {noise_std: 0.1, t_obs: 30}}", "degradation.noise_std"),
    ("name: x\nmethod: hybrid\nbase: {ddpm: {train_steps: 10, epochs: 2}}", "ddpm.train_steps"),
    ("name: x\nmethod: staged\nprofiles: {tpu: {seeds: [0]}}", "profiles.tpu"),
    ("name: x\nmethod: staged\nprofiles: {cpu: {seed: [0]}}", "profiles.cpu.seed"),
    ("name: x\nmethod: staged\nprofiles: {cpu: {grid: {dip.lr: [0.1]}}}", "profiles.cpu.grid.dip.lr"),
    ("name: x\nmethod: staged\nseeds: [0, -1]", "seeds"),
    ("name: x\nmethod: staged\nresources: {cpu: 0}", "resources.cpu"),
    ("name: x\nmethod: staged\nresources: {gpu: -1}", "resources.gpu"),
    ("name: x\nmethod: staged\nmetric: {name: psnr_peak}", "metric.name"),
    ("name: x\nmethod: staged\nbase: {staged: {levels: [2, 0.5]}}", "staged.levels[1]"),
    ("name: x\nmethod: staged\nbase: {data: {images: [no_such_photo]}}", "data.images[0]"),
    ("name: x\nmethod: staged\nbase: [1, 2]", "base"),
    ("name: x\nmethod: staged\ngrid: {dip.lr: [0.01}", "{path} line 3: invalid YAML"),
]


@pytest.mark.parametrize("text,key", BROKEN, ids=[k for _, k in BROKEN])
def test_broken_sweeps_exit_2_with_one_line_naming_the_key(text, key, tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    assert main(["sweep", str(path), "--dry-run", "--profile", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {key.format(path=path)}"), err


def test_hybrid_trials_are_ordered_so_early_trials_train_different_models():
    from dipddpm.hybrid import ddpm_fields
    from orchestrator.sweep.runner import interleave_by_artefact

    from orchestrator.sweep.plan import plan

    trials = plan(parse_spec(_load("hybrid.yaml"), "hybrid.yaml"), "cpu").initial()  # one seed: one model each
    ordered = interleave_by_artefact(trials)
    assert sorted(t.key for t in ordered) == sorted(t.key for t in trials)
    models = [json.dumps(ddpm_fields(t.config, t.images.pool), sort_keys=True) for t in ordered]
    distinct = len(set(models))
    assert distinct >= 5 and len(set(models[:distinct])) == distinct


def test_each_models_trials_run_longest_sampling_first():
    from orchestrator.sweep.runner import after_artefact_cost, interleave_by_artefact

    spec = parse_spec({"name": "lpt", "method": "hybrid", "base": {"hybrid": {"start": "observation"}},
                       "grid": {"diffusion.beta_schedule": ["linear", "squaredcos_cap_v2"],
                                "hybrid.sampler": ["onestep", "ddim", "ddpm"]}}, "test")
    trials, _ = expand(spec, "cpu")
    ordered = interleave_by_artefact(trials)
    # one trial per model first (both train at once), each model's ddpm sampler (t_obs + 1 calls) before
    # its ddim (10 calls) before its onestep (1 call)
    assert [t.config.hybrid.sampler for t in ordered] == ["ddpm", "ddpm", "ddim", "ddim", "onestep", "onestep"]
    assert [t.config.diffusion.beta_schedule for t in ordered[:2]] == ["linear", "squaredcos_cap_v2"]
    from dipddpm.degradation import noise_level, schedule_of

    cfg = ordered[0].config  # the ddpm sampler calls the UNet at every step from t_obs down to 0
    assert after_artefact_cost(ordered[0]) == len(cfg.data.images) * (noise_level(cfg, schedule_of(cfg)).t_obs + 1)
