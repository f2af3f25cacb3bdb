"""W&B side of a report: the sweep's summary run, the report spec, and `publish`.

- `log_summary_run`: one run in the sweep's group (job type `summary`) holding
  every comparison table as a `wandb.Table` and the report's figures. Offline
  by default like the trial runs; a rerun replaces the offline run.
- `report_spec`: a JSON description of the W&B Report (blocks, panels, the
  tables by key). W&B Reports cannot be built offline; the spec can, and
  `publish --dry-run` writes it.
- `publish`: `wandb sync` of the run folder's offline runs, then the Report
  built from the spec with wandb-workspaces and saved (needs a network and a key).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from dipddpm.errors import ConfigError
from dipddpm.atomic import atomic_write_text

from ..report.build import Report, build_report
from ..report.figures import figure_names
from ..report.tables import hints
from ..report.text import flat_columns, flat_rows
from .naming import drop_offline_runs, group_name, project as project_name, run_scope, summary_run_id, wandb_mode

log = logging.getLogger(__name__)
SPEC_FILE = "wandb_report_spec.json"


def table_key(method: str, name: str) -> str:
    return f"tables/{method}/{name}"


def figures(report: Report) -> dict[str, bytes]:
    """The report's figures under their W&B keys (figures/<method>/<name>)."""
    return {f"figures/{method}/{name}": png for method, figs in report.figures().items()
            for name, (_caption, png) in figs.items() if png is not None}


def log_summary_run(report: Report, project: str) -> str | None:
    """Log the tables (and figures) to the sweep's summary run, offline into the run folder (an online run
    would wait on the network; the driver uploads it with the trials' runs); its id, or None when W&B is
    off or fails."""
    mode = "offline" if wandb_mode() != "disabled" else "disabled"
    if mode == "disabled":
        return None
    rid = summary_run_id(report.meta["sweep"], report.meta["profile"])
    try:
        import io

        import wandb
        from PIL import Image

        drop_offline_runs(report.run_dir, rid)  # the tables are rebuilt whole each time
        service = os.environ.get("WANDB_SERVICE")
        run = wandb.init(project=project, group=group_name(report.meta["sweep"], report.meta["profile"]),
                         job_type="summary", id=rid,
                         name=f"{report.meta['sweep']} summary ({report.meta['profile']})", dir=str(report.run_dir),
                         mode=mode, resume="allow", reinit="finish_previous", config={"meta": report.meta},
                         settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
        payload = {}
        for s in report.sections:
            for tab in s.tables:
                payload[table_key(s.method, tab.name)] = wandb.Table(columns=flat_columns(tab), data=flat_rows(tab),
                                                                     allow_mixed_types=True)
        for key, png in figures(report).items():
            payload[key] = wandb.Image(Image.open(io.BytesIO(png)))
        run.log(payload)
        run.summary.update({"records": report.meta["records"], "status": report.meta["status"]})
        run.finish()
        # Stop this process's W&B service and forget it: processes started later from this
        # environment (a resumed sweep, its Ray workers) must not attach to it.
        wandb.teardown()
        if service is None:
            os.environ.pop("WANDB_SERVICE", None)
        return rid
    except Exception as exc:  # noqa: BLE001 - W&B must never cost local results
        log.warning("W&B summary run failed: %s (local report unaffected)", exc)
        return None


# ------------------------------------------------------------------ the spec

def _findings(report: Report) -> str:
    """The answer first: each claim's verdict, then the best usable configuration per task."""
    from ..report.text import fmt

    lines = []
    for s in report.sections:
        tabs = {t.name: t for t in s.tables}
        claims = tabs.get("claims")
        for rec in claims.dicts() if claims else []:
            lines.append(f"- {rec['claim']}: **{rec['verdict']}** (Δ {fmt(rec['delta'], 'Δ')}, n = {rec['n']} "
                         f"units)")
        best = tabs.get("best")
        if best and best.rows:
            rec = best.dicts()[0]
            lines.append(f"- **{s.method}** ({rec['task']}): best on `{s.headline}` is #{rec['#']} "
                         f"({rec['grid cell']}): {fmt(rec['headline'], s.headline)}.")
    return "\n".join(lines) or "No finished trials yet."


def report_spec(report: Report, project: str, entity: str | None) -> dict:
    sweep, profile = report.meta["sweep"], report.meta["profile"]
    group = group_name(sweep, profile)
    scope = _run_scope(report)
    runset = {"project": project, "entity": entity or "", "name": f"{sweep} trials",
              "filters": f"Config('sweep') == '{sweep}' and Config('profile') == '{profile}'"
                         + (f" and Config('run_scope') == '{scope}'" if scope else "")}
    summary = {"project": project, "entity": entity or "", "name": f"{sweep} summary",
               "filters": f"Metric('ID') == '{summary_run_id(sweep, profile)}'"}
    blocks: list[dict] = [{"type": "h1", "text": report.meta["title"]},
                          {"type": "p", "text": f"{report.meta['records']} trials ({report.meta['status']}), "
                                                f"profile {profile}. ORACLE figures need the clean image."},
                          {"type": "markdown", "text": _findings(report)}]
    for s in report.sections:
        tables = [{"type": "summary_table", "title": t.title, "table": table_key(s.method, t.name)} for t in s.tables]
        blocks.append({"type": "panel_grid", "title": f"{s.method}: comparison tables", "runset": summary,
                       "panels": tables})
        blocks.append({"type": "panel_grid", "title": f"{s.method}: figures", "runset": summary,
                       "panels": [{"type": "media", "title": "report figures",
                                   "media_keys": [f"figures/{s.method}/{n}" for n in figure_names(s.method)]}]})
        blocks.append({"type": "panel_grid", "title": f"{s.method}: trials", "runset": runset,
                       "panels": _trial_panels(s)})
    return {"title": report.meta["title"], "description": f"Sweep {sweep} ({profile}) from dipddpm",
            "project": project, "entity": entity, "group": group, "summary_run": summary_run_id(sweep, profile),
            "tables": [table_key(s.method, t.name) for s in report.sections for t in s.tables],
            "blocks": blocks}


def _run_scope(report: Report) -> str | None:
    """The run folder's scope, as its trials' W&B configs carry it (a --fresh folder has another)."""
    try:
        return run_scope(json.loads((report.run_dir / "run.json").read_text())["uid"])
    except (OSError, ValueError, KeyError):
        return None


def _images(s) -> list[str]:
    """The section's test images, first seen first (every trial logs each under its own keys)."""
    return list(dict.fromkeys(img for r in s.records for img in r.per_image))


def _trial_panels(s) -> list[dict]:
    h = hints(s.method)
    variant = h.variant_axis
    panels = []
    if h.per_image_axis:  # each image's fit on its own iteration axis: one curve per run, no sawtooth
        panels += [{"type": "line", "title": f"{image}: {m.upper()} against iteration by variant", "x": f"{image}/iter",
                    "y": [f"{image}/{m}"], "groupby": variant} for image in _images(s)[:3] for m in ("psnr", "ssim")]
    panels += [{"type": "bar", "title": f"{s.headline} by {axis}", "metrics": [s.headline], "groupby": axis}
               for axis in s.design.axes]
    panels.append({"type": "scatter", "title": f"time_s against {s.headline}", "x": "time_s", "y": s.headline})
    panels.append({"type": "media", "title": "restorations",
                   "media_keys": [f"images/{image}/{k}" for image in _images(s)[:3] for k in h.image_kinds]})
    return panels


def spec_objects(spec: dict, offline: bool = False):
    """The wandb-workspaces Report for a spec, built in memory (nothing is sent).

    Offline, an unset entity stays empty: the default would ask the W&B API for it.
    """
    import wandb_workspaces.reports.v2 as wr

    def panel(p: dict):
        kind = p["type"]
        if kind == "summary_table":
            return wr.WeavePanelSummaryTable(table_name=p["table"])
        if kind == "media":
            return wr.MediaBrowser(title=p["title"], media_keys=p["media_keys"])
        if kind == "line":
            return wr.LinePlot(title=p["title"], x=p["x"], y=p["y"], groupby=wr.Config(p["groupby"]))
        if kind == "bar":
            return wr.BarPlot(title=p["title"], metrics=p["metrics"], groupby=wr.Config(p["groupby"]))
        if kind == "scatter":
            return wr.ScatterPlot(title=p["title"], x=p["x"], y=p["y"])
        raise ValueError(f"unknown panel type {kind!r}")

    def block(b: dict):
        if b["type"] == "h1":
            return wr.H1(b["text"])
        if b["type"] == "p":
            return wr.P(b["text"])
        if b["type"] == "markdown":
            return wr.MarkdownBlock(b["text"])
        rs = b["runset"]
        return wr.PanelGrid(runsets=[wr.Runset(project=rs["project"], entity=rs["entity"], name=rs["name"],
                                               filters=rs["filters"])],
                            panels=[panel(p) for p in b["panels"]])

    kwargs = {"entity": spec["entity"]} if spec.get("entity") else {"entity": ""} if offline else {}
    return wr.Report(project=spec["project"], title=spec["title"], description=spec["description"],
                     blocks=[block(b) for b in spec["blocks"]], **kwargs)


# ------------------------------------------------------------------ publish

def offline_runs(run_dir: Path) -> list[Path]:
    return sorted(p for p in (run_dir / "wandb").glob("offline-run-*") if p.is_dir())


def publish(run_dir: Path, dry_run: bool = False, out: str | None = None, project: str | None = None,
            entity: str | None = None, console=None) -> int:
    """`wandb sync` of the run folder's offline runs, then its W&B Report saved (`dry_run`: the spec only)."""
    from rich.console import Console

    console = console or Console()
    report = build_report(run_dir)
    project = project_name(project)
    entity = entity or os.environ.get("WANDB_ENTITY")
    spec = report_spec(report, project, entity)
    out = Path(out) if out else report.run_dir / SPEC_FILE
    if not dry_run and wandb_mode() != "online":
        raise ConfigError("publish: no W&B API key here (run `wandb login` or set WANDB_API_KEY, and leave "
                          "WANDB_MODE unset or online); offline, use `publish --dry-run` to write the spec")
    spec_objects(spec, offline=True)  # fails here, before anything is sent, if the spec does not build
    atomic_write_text(out, json.dumps(spec, indent=1))
    panels = sum(len(b.get("panels", [])) for b in spec["blocks"])
    console.print(f"wrote {out}: {len(spec['tables'])} tables, {panels} panels")
    if dry_run:
        console.print("dry run: nothing sent. `python -m orchestrator publish RUN_DIR` with a key syncs the "
                      f"{len(offline_runs(report.run_dir))} offline runs and saves this report.")
        return 0
    if not any(summary_run_id(report.meta["sweep"], report.meta["profile"]) in p.name
               for p in offline_runs(report.run_dir)):
        log_summary_run(report, project)
    runs = offline_runs(report.run_dir)
    cmd = [sys.executable, "-m", "wandb", "sync", "--project", project, *(["--entity", entity] if entity else []),
           *map(str, runs)]
    console.print(f"syncing {len(runs)} offline runs…")
    if subprocess.run(cmd).returncode != 0:
        console.print("[red]wandb sync failed[/]; the local runs are untouched, run publish again")
        return 1
    saved = spec_objects(spec).save()
    console.print(f"W&B report: {getattr(saved, 'url', '(saved)')}")
    return 0
