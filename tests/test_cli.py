"""The single-trial CLI, called in-process (a fresh Python costs ~10 s of imports)."""

import json

import pytest

from dipddpm.cli import main

TINY_SETS = [
    "--set", "data.size=32", "--set", "dip.channels=8", "--set", "dip.scales=3",
    "--set", "staged.levels=[2, 1]", "--set", "staged.iters_per_stage=30",
    "--set", "es.window=5", "--set", "es.patience=20", "--set", "eval_every=10",
]


@pytest.mark.parametrize(
    "sets,key",
    [
        (["dip.lrr=0.1"], "dip.lrr"),
        (["dip.lr=abc"], "dip.lr"),
        (["dip.lr=-1e-3"], "dip.lr"),
        (["staged.levels=[3, 2, 0.5]", "es.patience=100"], "staged.levels[2]"),
        (["data.images=[astronaut, nope]"], "data.images[1]"),
        (["degradation={noise_std: 0.1, t_obs: 30}"], "degradation.noise_std"),
        (["seed=-1"], "seed"),
        (["dip.lr"], "--set"),
        (["dip.lr=[1, 2"], "--set dip.lr"),
    ],
)
def test_bad_values_exit_2_with_one_line(sets, key, capsys):
    argv = ["run", "--method", "staged", "--profile", "cpu"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "nope.json"), "--profile", "cpu"]) == 2
    assert "cannot read file" in capsys.readouterr().err


@pytest.mark.slow
def test_run_writes_a_complete_result_and_reruns_it_exactly(tmp_path, capsys):
    out1, out2 = tmp_path / "a", tmp_path / "b"
    assert main(["run", "--method", "staged", "--profile", "cpu", "--quiet", "--out", str(out1), *TINY_SETS]) == 0
    rec = json.loads((out1 / "result.json").read_text())
    assert rec["status"] == "ok" and rec["config"]["seed"] == 0 and rec["profile"] == "cpu"
    needed = ["psnr", "ssim", "psnr_observation", "psnr_tv", "psnr_nlm", "psnr_peak", "ssim_peak", "iter_peak",
              "psnr_es", "ssim_es", "iter_es", "es_fired", "es_gap_db", "noise_std", "t_obs", "time_s"]
    assert all(rec["metrics"].get(k) is not None for k in needed), [k for k in needed if rec["metrics"].get(k) is None]
    assert rec["metrics"]["noise_std"] * 255 == pytest.approx(25, abs=0.5)
    curves = json.loads((out1 / "curves.json").read_text())["astronaut"]
    assert len(curves["psnr"]) == 60 and curves["stage_boundaries"] == [0, 30]
    for kind in ("peak", "es", "end", "observation", "clean"):
        assert (out1 / "images" / f"astronaut_{kind}.png").stat().st_size > 0
    # Rerun from the record: same trial key, same numbers (deterministic on CPU).
    assert main(["run", "--config", str(out1 / "result.json"), "--quiet", "--out", str(out2)]) == 0
    rec2 = json.loads((out2 / "result.json").read_text())
    assert rec2["trial_key"] == rec["trial_key"] and rec2["config"] == rec["config"]
    assert rec2["threads"] == rec["threads"] >= 1  # the record's count: another would change the last bits
    for k in ("psnr", "psnr_peak", "psnr_es", "iter_peak", "iter_es", "psnr_nlm"):
        assert rec2["metrics"][k] == rec["metrics"][k]


HYBRID_SETS = [
    "--set", "data.size=32", "--set", "dip.channels=8", "--set", "dip.scales=3", "--set", "hybrid.dip_iters=30",
    "--set", "ddpm.channels=[16, 32]", "--set", "ddpm.layers_per_block=1", "--set", "ddpm.train_steps=30",
    "--set", "ddpm.dataset_size=32", "--set", "ddpm.batch_size=8", "--set", "ddpm.crop=16", "--set", "eval_every=10",
]


@pytest.mark.slow
def test_hybrid_runs_share_the_trained_model_through_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    common = ["run", "--method", "hybrid", "--profile", "cpu", "--quiet", "--cache-dir", cache, *HYBRID_SETS]
    assert main([*common, "--out", str(tmp_path / "dip")]) == 0
    assert main([*common, "--set", "hybrid.start=observation", "--set", "hybrid.sampler=onestep",
                 "--out", str(tmp_path / "obs")]) == 0
    first = json.loads((tmp_path / "dip" / "result.json").read_text())
    second = json.loads((tmp_path / "obs" / "result.json").read_text())
    assert first["status"] == second["status"] == "ok"
    assert first["metrics"]["cache_hit_ddpm"] is False and second["metrics"]["cache_hit_ddpm"] is True
    assert second["metrics"]["train_s"] == pytest.approx(first["metrics"]["train_s"])  # the hit is charged
    assert second["metrics"]["wall_s"] < first["metrics"]["train_s"]
    assert first["metrics"]["t_start"] < first["metrics"]["t_obs"] == second["metrics"]["t_start"]
    assert second["metrics"]["reverse_steps"] == 1 and first["metrics"]["reverse_steps"] == 10
    assert "psnr_dip" in first["metrics"] and "psnr_dip" not in second["metrics"]
    assert second["config"]["hybrid"]["t0_frac"] is None and second["config"]["dip"] is None
    assert (tmp_path / "dip" / "images" / "astronaut_hybrid.png").exists()
    assert len(list((tmp_path / "cache" / "ddpm").glob("*.pt"))) == 1
