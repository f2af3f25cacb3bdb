"""A corpus of bad inputs: sweep files, --set values, CLI flags, image files and results files.

Each one is refused before any work starts with one line on stderr that names
the key (or flag, or file) at fault, exit code 2 and no traceback; a damaged
results file gives a warning naming file:line and a report of the records
that are whole. Called in-process (a fresh Python pays seconds of imports).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from PIL import Image

from dipddpm.cli import main as run_main
from orchestrator.cli import main as orch_main

GOOD = """name: bad
method: staged
base:
  data: {size: 32}
  dip: {channels: 8, scales: 3}
  staged: {levels: [2, 1], iters_per_stage: 30}
  es: {window: 5, patience: 20}
"""
TINY = ["--set", "data.size=32", "--set", "dip.channels=8", "--set", "dip.scales=3", "--set", "staged.levels=[2, 1]",
        "--set", "staged.iters_per_stage=30", "--set", "es.window=5", "--set", "es.patience=20"]


def _png(path, shape=(40, 40, 3), seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory with image files of every kind the cases use."""
    monkeypatch.chdir(tmp_path)
    _png(tmp_path / "ok.png")
    _png(tmp_path / "copy.png")  # same pixels as ok.png
    _png(tmp_path / "tiny.png", (1, 1, 3))
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    import tifffile

    tifffile.imwrite(tmp_path / "bright.tif", np.full((40, 40, 3), 3.0, dtype=np.float32), photometric="rgb")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "poolimgs").mkdir()
    _png(tmp_path / "poolimgs" / "p.png", seed=5)
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "latin1.yaml").write_bytes("name: caf\xe9\nmethod: staged\n".encode("latin-1"))
    (tmp_path / "nul.yaml").write_bytes(b"name: x\x00\nmethod: staged\n")
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    import os

    os.mkfifo(tmp_path / "fifo.png")  # reading it would block forever
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # reading it would never end
    (tmp_path / "loop_a.png").symlink_to(tmp_path / "loop_b.png")
    (tmp_path / "loop_b.png").symlink_to(tmp_path / "loop_a.png")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "bomb.yaml").write_text(GOOD + "".join(
        f"x{i}: &x{i} [{', '.join([f'*x{i - 1}' if i else 'lol'] * 9)}]\n" for i in range(9)) + "grid: {dip.lr: *x8}\n")
    return tmp_path


def _sweep(text: str, work, *flags) -> list[str]:
    (work / "s.yaml").write_text(text)
    return ["sweep", "s.yaml", "--profile", "cpu", *(flags or ("--dry-run",))]


# (case id, how to build argv from the work folder, what the one line must start with after "error: ")
SWEEP_FILES = [
    ("binary", lambda w: ["sweep", "binary.yaml", "--dry-run"], "binary.yaml: expected a UTF-8 text file"),
    ("latin1", lambda w: ["sweep", "latin1.yaml", "--dry-run"], "latin1.yaml: expected a UTF-8 text file"),
    ("nul-bytes", lambda w: ["sweep", "nul.yaml", "--dry-run"], "nul.yaml: expected a text file"),
    ("missing-file", lambda w: ["sweep", "nope.yaml", "--dry-run"], "nope.yaml: cannot read file"),
    ("a-folder", lambda w: ["sweep", ".", "--dry-run"], ".: cannot read file"),
    ("yaml-syntax", lambda w: _sweep(GOOD + "grid: {dip.lr: [0.1\n", w), "s.yaml line"),
    ("duplicate-top-key", lambda w: _sweep(GOOD + "name: again\n", w), "s.yaml line 8: invalid YAML (duplicate key 'name')"),
    ("duplicate-nested-key", lambda w: _sweep(GOOD.replace("{channels: 8,", "{channels: 8, channels: 16,"), w),
     "s.yaml line 5: invalid YAML (duplicate key 'channels')"),
    ("not-a-mapping", lambda w: _sweep("- 1\n- 2\n", w), "sweep: expected a mapping"),
    ("unknown-top-key", lambda w: _sweep(GOOD + "grids: {}\n", w), "grids: unknown key"),
    ("bad-name", lambda w: _sweep(GOOD.replace("name: bad", "name: ../x"), w), "name: expected"),
    ("bad-method", lambda w: _sweep(GOOD.replace("method: staged", "method: fancy"), w), "method: expected"),
    ("unknown-metric", lambda w: _sweep(GOOD + "metric: psnr_ess\n", w), "metric.name: expected a metric the staged"),
    ("hybrid-metric-on-staged", lambda w: _sweep(GOOD + "metric: psnr_dip\n", w), "metric.name: expected a metric"),
    ("oracle-metric", lambda w: _sweep(GOOD + "metric: psnr_peak\n", w), "metric.name: expected a metric reachable"),
    ("bad-mode", lambda w: _sweep(GOOD + "metric: {name: psnr, mode: up}\n", w), "metric.mode"),
    ("grid-not-list", lambda w: _sweep(GOOD + "grid: {dip.lr: 0.1}\n", w), "grid.dip.lr: expected a non-empty list"),
    ("grid-empty", lambda w: _sweep(GOOD + "grid: []\n", w), "grid: expected"),
    ("infinite-lr", lambda w: _sweep(GOOD + "grid: {dip.lr: [0.01, .inf]}\n", w), "dip.lr: expected a finite number"),
    ("nan-in-base", lambda w: _sweep(GOOD.replace("es: {", "degradation: {noise_std: .nan}\n  es: {"), w),
     "degradation.noise_std: expected a finite number"),
    ("negative-seed", lambda w: _sweep(GOOD + "seeds: [-1]\n", w), "seeds[0]: expected an integer >= 0"),
    ("repeated-seed", lambda w: _sweep(GOOD + "seeds: [1, 1]\n", w), "seeds: expected distinct"),
    ("zero-cpu", lambda w: _sweep(GOOD + "resources: {cpu: 0}\n", w), "resources.cpu"),
    ("infinite-cpu", lambda w: _sweep(GOOD + "resources: {cpu: .inf}\n", w), "resources.cpu: expected a finite"),
    ("unknown-profile", lambda w: _sweep(GOOD + "profiles: {tpu: {}}\n", w), "profiles.tpu"),
    ("profile-new-axis", lambda w: _sweep(GOOD + "grid: {dip.lr: [0.1]}\nprofiles: {cpu: {grid: {dip.lrr: [1]}}}\n", w),
     "profiles.cpu.grid.dip.lrr"),
    ("unknown-config-key", lambda w: _sweep(GOOD.replace("{channels: 8,", "{chanels: 8,"), w), "dip.chanels: unknown key"),
    ("both-either-or", lambda w: _sweep(GOOD + "grid: {degradation: [{noise_std: 0.1, t_obs: 30}]}\n", w),
     "degradation.noise_std: set either"),
    ("level-below-one", lambda w: _sweep(GOOD.replace("levels: [2, 1]", "levels: [2, 1, 0.5]"), w),
     "staged.levels[2]: expected a level >= 1"),
    ("net-too-deep", lambda w: _sweep(GOOD.replace("scales: 3", "scales: 5"), w), "dip.scales: expected at most"),
    ("huge-grid", lambda w: _sweep(GOOD + "grid: {" + ", ".join("es.window: [2, 3, 4, 5]" if i == 0 else
                                                                 f"dip.k{i}: [1, 2, 3, 4]" for i in range(10)) + "}\n", w),
     "grid: expected at most 5000 trials"),
    ("alias-bomb", lambda w: ["sweep", "bomb.yaml", "--dry-run"], "bomb.yaml: expected at most 100000 values"),
    ("bad-margin", lambda w: _sweep(GOOD + "claims: [{text: x, a: {dip.lr: 0.1}, b: {dip.lr: 0.2}, margin: -1}]\n", w),
     "claims[0].margin"),
    ("seeds-and-replicate", lambda w: _sweep(GOOD + "seeds: [0]\nreplicate: {min_seeds: 2}\n", w),
     "replicate: set either seeds"),
    ("replicate-max-below-min", lambda w: _sweep(GOOD + "replicate: {min_seeds: 4, max_seeds: 2}\n", w),
     "replicate.max_seeds: expected at least min_seeds=4"),
    ("replicate-bad-budget", lambda w: _sweep(GOOD + "replicate: {budget: {hours: -1}}\n", w),
     "replicate.budget.hours: expected a number of hours > 0"),
    ("bad-claim", lambda w: _sweep(GOOD + "claims: [{text: x, a: {dip.lr: 0.1}, b: {dip.lr: 0.2}, expect: up}]\n", w),
     "claims[0].expect"),
    ("claim-metric", lambda w: _sweep(GOOD + "claims: [{text: x, a: {dip.lr: 0.1}, b: {dip.lr: 0.2}, metric: pnsr}]\n", w),
     "claims[0].metric"),
]

IMAGES = [
    ("unknown-image", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [astronaut, nope.png]}"), w),
     "data.images[1]: unknown image 'nope.png'"),
    ("undecodable-image", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [junk.png]}"), w),
     "data.images[0]: "),
    ("one-pixel-image", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [tiny.png]}"), w),
     "data.images: "),
    ("float-image-out-of-range", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [bright.tif]}"), w),
     "data.images[0]: "),
    ("same-image-twice", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [ok.png, copy.png]}"), w),
     "data.images: "),
    ("fifo-image", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [fifo.png]}"), w),
     "data.images[0]: '"),
    ("dev-zero-link", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [zero.png]}"), w),
     "data.images[0]: '"),
    ("symlink-loop", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [loop_a.png]}"), w),
     "data.images[0]: cannot follow"),
    ("empty-image", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [empty.png]}"), w),
     "data.images[0]: "),
    ("no-images", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: []}"), w),
     "data.images: expected at least one image"),
    ("missing-root", lambda w: _sweep(GOOD.replace("size: 32}", "size: 32, images: [], root: nowhere}"), w),
     "data.root: expected an existing folder"),
    ("pool-overlaps-tests", lambda w: _sweep(GOOD.replace("method: staged", "method: hybrid") +
                                             "  ddpm: {train_images: [rocket, astronaut], crop: 16, channels: [16, 32],"
                                             " norm_groups: 8}\n", w), "ddpm.train_images: expected images disjoint"),
    ("missing-pool-folder", lambda w: _sweep(GOOD.replace("method: staged", "method: hybrid") +
                                             "  ddpm: {pool: nowhere, crop: 16, channels: [16, 32], norm_groups: 8}\n",
                                             w), "ddpm.pool: unknown image 'nowhere'"),
    ("dataset-above-distinct-crops", lambda w: _sweep(GOOD.replace("method: staged", "method: hybrid") +
                                                      "  ddpm: {pool: poolimgs, crop: 32, channels: [16, 32], norm_groups: 8,"
                                                      " dataset_size: 1000}\n", w), "ddpm.dataset_size: expected at most"),
]

SETS_AND_FLAGS = [
    ("set-inf", lambda w: ["run", *TINY, "--set", "dip.lr=.inf"], "dip.lr: expected a finite number"),
    ("set-nan", lambda w: ["run", *TINY, "--set", "dip.lr=.nan"], "dip.lr: expected a finite number"),
    ("set-no-images", lambda w: ["run", *TINY, "--set", "data.images=[]"], "data.images: expected at least one"),
    ("set-float-seed", lambda w: ["run", *TINY, "--set", "seed=1.5"], "seed: expected an integer"),
    ("set-window", lambda w: ["run", *TINY, "--set", "es.window=1"], "es.window"),
    ("set-no-equals", lambda w: ["run", *TINY, "--set", "dip.lr"], "--set: expected KEY=VALUE"),
    ("set-bad-yaml", lambda w: ["run", *TINY, "--set", "dip.lr=[1, 2"], "--set dip.lr"),
    ("device-bogus", lambda w: ["run", *TINY, "--device", "bogus"], "--device: expected cpu, cuda"),
    ("device-cuda", lambda w: ["run", *TINY, "--device", "cuda"], "--device cuda: this torch build sees no CUDA"),
    ("out-not-writable", lambda w: ["run", *TINY, "--out", "a_file/out"], "--out a_file/out: expected a folder"),
    ("config-binary", lambda w: ["run", "--config", "binary.yaml"], "binary.yaml: expected a UTF-8 text file"),
    ("config-list", lambda w: ["run", "--config", "list.json"], "--config list.json: expected a mapping"),
]

ORCH_FLAGS = [
    ("max-failures-negative", lambda w: _sweep(GOOD, w, "--max-failures", "-5"), "--max-failures: expected an integer >= 0"),
    ("max-concurrent-zero", lambda w: _sweep(GOOD, w, "--max-concurrent", "0"), "--max-concurrent: expected"),
    ("max-trials-zero", lambda w: _sweep(GOOD, w, "--max-trials", "0"), "--max-trials: expected"),
    ("runs-dir-not-writable", lambda w: _sweep(GOOD, w, "--runs-dir", "a_file/runs"), "--runs-dir a_file/runs"),
    ("cache-dir-not-writable", lambda w: _sweep(GOOD, w, "--cache-dir", "a_file/cache"), "--cache-dir a_file/cache"),
    ("report-no-results", lambda w: ["report", str(w)], "{work}: no results.jsonl here"),
    ("closed-port-address", lambda w: _sweep(GOOD, w, "--address", "127.0.0.1:1"),
     "--address 127.0.0.1:1: no Ray cluster answers there"),
    ("min-seeds-zero", lambda w: _sweep(GOOD, w, "--min-seeds", "0"), "--min-seeds: expected a number > 0"),
]


@pytest.mark.parametrize("case,argv,message", SWEEP_FILES + IMAGES + ORCH_FLAGS,
                         ids=[c[0] for c in SWEEP_FILES + IMAGES + ORCH_FLAGS])
def test_a_bad_sweep_input_is_one_line_and_exit_2(case, argv, message, work, capsys):
    import ray

    assert orch_main(argv(work)) == 2, case
    _one_line(capsys, message.format(work=work))
    assert not ray.is_initialized()  # refused before anything started


@pytest.mark.parametrize("case,argv,message", SETS_AND_FLAGS, ids=[c[0] for c in SETS_AND_FLAGS])
def test_a_bad_trial_input_is_one_line_and_exit_2(case, argv, message, work, capsys):
    assert run_main(argv(work)) == 2, case
    _one_line(capsys, message)
    assert not (work / "out").exists()


def _one_line(capsys, message: str) -> None:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: " + message), err


# ---- damaged results files: a warning naming file:line, and a report of the whole records

def _record_lines(tmp_path):
    import yaml

    from orchestrator.sweep.plan import plan
    from orchestrator.sweep.spec import parse_spec
    from report_helpers import record_for

    spec = parse_spec(yaml.safe_load("{name: synthetic, method: staged, grid: {staged.variant: [staged, baseline]}, "
                                     "seeds: [0, 1]}"), "s.yaml")
    return [json.dumps(record_for(t, lambda t, i: 25.0 + t.seed, "ok", "cpu", "synthetic"))
            for t in plan(spec, "cpu").trials]


RESULTS = [
    ("torn-last-line", lambda lines: "\n".join(lines) + "\n" + lines[0][: len(lines[0]) // 2], 5),
    ("torn-line-glued", lambda lines: "\n".join(lines[:2]) + "\n" + lines[2][:40] + "\n" + "\n".join(lines[3:]) + "\n", 3),
    ("json-not-a-record", lambda lines: "\n".join(lines) + "\n[1, 2, 3]\n", 5),
    ("bad-trial-key", lambda lines: "\n".join(lines) + "\n" + lines[0].replace(json.loads(lines[0])["trial_key"],
                                                                                  "../../etc") + "\n", 5),
    ("not-utf8", lambda lines: "\n".join(lines) + "\n\udcff\udcfe\n", 5),
]


@pytest.mark.parametrize("case,damage,bad_line", RESULTS, ids=[r[0] for r in RESULTS])
def test_a_damaged_results_file_warns_and_reports_the_whole_records(case, damage, bad_line, tmp_path, caplog):
    from orchestrator.report.build import build_report

    run = tmp_path / "synthetic" / "cpu"
    run.mkdir(parents=True)
    lines = _record_lines(tmp_path)
    text = damage(lines)
    (run / "results.jsonl").write_bytes(text.encode("utf-8", errors="surrogateescape"))
    with caplog.at_level(logging.WARNING, logger="orchestrator.common.store"):
        report = build_report(run)
    assert any(f"results.jsonl:{bad_line}: skipping" in m for m in caplog.messages), caplog.messages
    whole = 3 if case == "torn-line-glued" else 4
    assert report.meta["records"] == whole
    cells = next(t for t in report.sections[0].tables if t.name == "cells")
    trials = cells.columns.index("trials")
    assert sum(int(row[trials].split()[0]) for row in cells.rows) == whole


def test_an_empty_results_file_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text("")
    assert orch_main(["report", str(tmp_path)]) == 2
    _one_line(capsys, f"{tmp_path / 'results.jsonl'}: no complete records yet")
