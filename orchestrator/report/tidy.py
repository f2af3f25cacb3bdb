"""Tidy tables of a run: one row per (trial, test image) for results.csv and `load_results`, and a long
curves.csv (trial_key, image, iter, metric, value), as Tune's progress.csv and W&B's history() are.

Columns of the results table, in this order:
- ids: sweep, profile, trial_key, cell_key, cell (its label), seed, image, status, error, wandb_run;
- flags: oracle (targets from the clean image), floor (an unconditional sample);
- the grid cell's axes, `cell.<axis>` (the cell's value, or the sweep's base where the cell is silent);
- the image's metrics (psnr, ssim, psnr_es, ...);
- trial-level figures, `trial.<metric>` (the trial's own value, the same on each of its image rows);
- the configuration, `config.<dotted key>` (a section a trial does not use is left empty, never a column
  of its own beside its fields).
Lists read as text ("30, 25, 20"), not JSON.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from ..common.design import FLOOR, ORACLE, Design, flatten, tags_of
from .tabs import cell_text
from .units import trial_level

log = logging.getLogger(__name__)
IDS = ("sweep", "profile", "trial_key", "cell_key", "cell", "seed", "image", "status", "error", "wandb_run",
       "oracle", "floor")


def readable(v):
    if isinstance(v, (list, tuple)):
        return ", ".join(str(readable(x)) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return v


def result_rows(records: list[dict], design: Design | None) -> list[dict]:
    """One dict per (trial, test image); a trial with no image values (failed) gets one row, image empty."""
    axes = design.axes if design is not None else tuple(dict.fromkeys(k for r in records for k in r.get("cell") or {}))
    rows = []
    for r in records:
        cfg = flatten(r.get("config") or {})
        point = design.point(r.get("cell_key") or "") if design is not None else None
        tags = tags_of(r.get("config") or {})
        ids = {"sweep": r.get("sweep"), "profile": r.get("profile"), "trial_key": r["trial_key"],
               "cell_key": r.get("cell_key"), "cell": cell_text(r.get("cell") or {}), "seed": r.get("seed"),
               "status": r.get("status"), "error": r.get("error"), "wandb_run": r.get("wandb_run"),
               "oracle": ORACLE in tags, "floor": FLOOR in tags}
        cell = {f"cell.{a}": readable(design.value(point, a) if point is not None else (r.get("cell") or {}).get(a))
                for a in axes}
        trial = {f"trial.{k}": readable(v) for k, v in (r.get("metrics") or {}).items()
                 if trial_level(k) or not (r.get("per_image") or {})}
        config = {f"config.{k}": readable(v) for k, v in cfg.items() if v is not None}
        for image, m in (r.get("per_image") or {None: {}}).items():
            per = {k: readable(v) for k, v in m.items() if not (trial_level(k) and f"trial.{k}" in trial)}
            rows.append(ids | {"image": image} | cell | per | trial | config)
    return rows


def result_columns(rows: list[dict]) -> list[str]:
    """The results table's columns in their order: ids, cell axes, image metrics, trial figures, config."""
    seen = dict.fromkeys(IDS)
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if k.startswith("cell.")))
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if not k.startswith(("cell.", "trial.", "config."))))
    for prefix in ("trial.", "config."):
        for row in rows:
            seen.update(dict.fromkeys(k for k in row if k.startswith(prefix)))
    return list(seen)


def to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns or result_columns(rows), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def results_csv(records: list[dict], design: Design | None) -> str:
    return to_csv(result_rows(records, design))


CURVE_COLUMNS = ["trial_key", "image", "iter", "metric", "value"]


def curve_rows(run_dir: Path, records: list[dict]):
    """(trial_key, image, iter, metric, value) from each trial's curves.json: PSNR against the clean image
    and ES-WMV's variance at every iteration, the evaluations (SSIM, PSNR against the target, loss) at
    theirs, a DDPM's training loss at its 1/20ths."""
    for r in records:
        path = run_dir / "trials" / r["trial_key"] / "curves.json"
        try:
            curves = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        key = r["trial_key"]
        for image, c in curves.items():
            if not isinstance(c, dict):
                continue
            for metric in ("psnr", "wmv_var"):
                for i, v in enumerate(c.get(metric) or []):
                    if v is not None:
                        yield {"trial_key": key, "image": image, "iter": i + 1, "metric": metric, "value": v}
            ev = c.get("eval") or {}
            for metric, vals in ev.items():
                if metric in ("iter", "psnr", "wmv_var"):
                    continue
                for it, v in zip(ev.get("iter") or [], vals or []):
                    if v is not None:
                        yield {"trial_key": key, "image": image, "iter": it, "metric": metric, "value": v}
            loss = c.get("train_loss") or []
            steps = (r.get("metrics") or {}).get("train_steps") or len(loss)
            for i, v in enumerate(loss):  # one mean per 1/20 of the run, at the optimizer step it ends on
                yield {"trial_key": key, "image": image, "iter": round((i + 1) * steps / len(loss)),
                       "metric": "train_loss", "value": v}


def curves_csv(run_dir: Path, records: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(curve_rows(run_dir, records))
    return buf.getvalue()
