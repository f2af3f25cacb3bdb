"""`python -m orchestrator sweep | report | publish`: run a sweep, report on it, publish it to W&B.

Bad input: one line naming the key, exit code 2, nothing started.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from dipddpm.errors import ConfigError

from .report.formats import FORMATS

EXIT_USAGE = 2
EXIT_WRITE = 1  # a write failed (disk full): some results may be missing, none already written is lost


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator", description="Ablation sweeps on Ray Tune.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep", help="run (or --dry-run) a sweep YAML")
    s.add_argument("sweep", help="path to a sweep YAML (see sweeps/)")
    s.add_argument("--profile", choices=("auto", "cpu", "gpu"), default="auto")
    s.add_argument("--dry-run", action="store_true", help="print the trial table and count; start nothing")
    s.add_argument("--json", action="store_true", help="with --dry-run: one JSON object per trial")
    s.add_argument("--fresh", action="store_true", help="move earlier results aside and start over")
    s.add_argument("--retry-failed", action="store_true", help="rerun trials recorded as failed")
    s.add_argument("--address", help="join an existing Ray cluster (default: $RAY_ADDRESS, else a local one)")
    s.add_argument("--runs-dir", default="runs", help="results root (default: runs)")
    s.add_argument("--cache-dir", help="artefact cache (default: $DIPDDPM_CACHE, else the user cache folder)")
    s.add_argument("--no-cache", action="store_true", help="bypass the artefact cache")
    s.add_argument("--max-concurrent", type=int, help="at most N trials at once (default: as resources allow)")
    s.add_argument("--max-failures", type=int, default=1,
                   help="retries of a trial whose worker crashed (default 1; config errors are never retried)")
    s.add_argument("--max-trials", type=int, default=None,
                   help="refuse grids of more trials than this (cells × seeds; default 5000)")
    s.add_argument("--project", help="W&B project (default: $WANDB_PROJECT, else dipddpm)")
    s.add_argument("--no-live", action="store_true", help="no live view: one line per finished trial")
    s.add_argument("--wandb-timeout", type=float, default=120.0,
                   help="online W&B: seconds an upload, and the uploads left at the end, may take (default 120)")
    s.add_argument("--min-seeds", type=int, help="adaptive replication: seeds every cell starts with")
    s.add_argument("--max-seeds", type=int, help="adaptive replication: at most this many seeds per claimed cell")
    s.add_argument("--budget-trials", type=int, help="adaptive replication: stop proposing after this many trials")
    s.add_argument("--budget-hours", type=float, help="adaptive replication: stop proposing after this long")
    s.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="stop a trial running longer than this and retry it like a crash (0: never; default: the "
                        "sweep file's trial_timeout, else five times the median trial so far, at least 60 s)")
    r = sub.add_parser("report", help="comparison tables, Markdown, CSV and HTML from a run folder")
    r.add_argument("run_dir", help="a sweep's run folder, e.g. runs/staged/cpu (reads results.jsonl)")
    r.add_argument("--format", default="all", choices=FORMATS,
                   help="all (default): print the tables and write report.md, results.csv, report.json and "
                        "report.html into the run folder (or --out DIR); one format: to --out FILE or stdout")
    r.add_argument("--out", help="output file (one format) or folder (all)")
    r.add_argument("--metric", help="headline metric (default: psnr_es for staged, psnr for hybrid; never an ORACLE)")
    pb = sub.add_parser("publish", help="sync offline W&B runs and build a W&B Report (needs a key)")
    pb.add_argument("run_dir", help="a sweep's run folder, e.g. runs/staged/cpu")
    pb.add_argument("--dry-run", action="store_true", help="write the report spec JSON it would send; send nothing")
    pb.add_argument("--out", help="where to write the spec (default: RUN_DIR/wandb_report_spec.json)")
    pb.add_argument("--project", help="W&B project (default: $WANDB_PROJECT, else dipddpm)")
    pb.add_argument("--entity", help="W&B entity (default: $WANDB_ENTITY, else your default entity)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "report":
            return _report(args)
        if args.command == "publish":
            from .api import publish

            return publish(args.run_dir, dry_run=args.dry_run, out=args.out, project=args.project, entity=args.entity)
        return _sweep(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk, a quota, an I/O error: what and where, in one line
        where = exc.filename or "a file"
        print(f"error: {where}: {exc.strerror or exc}; records already written are safe: free the space (or fix "
              "the cause) and run the same command again", file=sys.stderr)
        return EXIT_WRITE


def _sweep(args) -> int:
    from rich.console import Console

    from .api import plan_sweep, sweep, sweep_options

    console = Console(width=None if sys.stdout.isatty() else 160)  # logs and pipes get the full table
    options = dict(runs_dir=args.runs_dir, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                   address=args.address, max_concurrent=args.max_concurrent, fresh=args.fresh,
                   retry_failed=args.retry_failed, max_failures=args.max_failures, project=args.project,
                   live=not args.no_live, replicate=_replicate_flags(args), wandb_timeout=args.wandb_timeout,
                   trial_timeout=args.trial_timeout)
    if args.max_trials is not None:
        options["max_trials"] = args.max_trials
    opts = sweep_options(args.profile, **options)
    if args.dry_run:
        spec, profile, sweep_plan = plan_sweep(args.sweep, args.profile, opts.max_trials, opts.replicate)
        _print_dry_run(spec, profile, sweep_plan, args.json, console)
        for line in claim_warnings(spec, sweep_plan.design):
            print(f"warning: {line}", file=sys.stderr)
        return 0
    return sweep(args.sweep, args.profile, console=console, **options).exit_code


def _report(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from .report.build import build_report, print_tables, render, write_files

    report = build_report(args.run_dir, metric=args.metric)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if args.format == "all":
        print_tables(report, console)
        out_dir = Path(args.out) if args.out else report.run_dir
        for path in write_files(report, out_dir):
            console.print(f"wrote {path}")
        return 0
    if args.format == "table":
        print_tables(report, console, tuple(t.name for s in report.sections for t in s.tables))
        return 0
    out = Path(args.out) if args.out else None
    text = render(report, args.format, out.parent if out else Path.cwd())
    if out:
        from dipddpm.atomic import atomic_write_text

        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
        console.print(f"wrote {out}")
    else:  # as the help says: one format without --out goes to stdout (the run's files stay as they are)
        sys.stdout.write(text)
    return 0


def _replicate_flags(args) -> dict | None:
    """--min-seeds, --max-seeds, --budget-trials, --budget-hours over the sweep's replicate: section."""
    flags = {"min_seeds": args.min_seeds, "max_seeds": args.max_seeds, "budget_trials": args.budget_trials,
             "budget_hours": args.budget_hours}
    return {k: v for k, v in flags.items() if v is not None} or None


def claim_warnings(spec, design) -> list[str]:
    """One line per claim arm (or `where`) naming a value no grid cell has: such a claim has no pairs."""
    out = []
    for i, claim in enumerate(spec.claims):
        for arm in ("a", "b", "where"):
            for key, want, have in design.unmatched(getattr(claim, arm)):
                values = ", ".join(json.dumps(v) for v in have[:6]) + (", …" if len(have) > 6 else "")
                out.append(f"claims[{i}].{arm}: {key}={json.dumps(want)} selects no grid cell of profile "
                           f"{design.profile} (its cells have {values}); the claim will have no pairs ({spec.source})")
    return out


def _print_dry_run(spec, profile, sweep_plan, as_json: bool, console) -> None:
    from rich.table import Table

    from dipddpm.config import config_dict

    first = {t.key for t in sweep_plan.initial()}
    if as_json:
        for t in sweep_plan.trials:
            print(json.dumps({"trial_key": t.key, "profile": profile, "cell": t.cell, "seed": t.seed,
                              "initial": t.key in first, "config": config_dict(t.config)}))
        return
    table = Table(title=f"{spec.name} · {spec.method} · profile {profile}")
    for col in ("#", "trial_key", "seed", "grid cell"):
        table.add_column(col)
    shown = [t for t in sweep_plan.trials if t.key in first]
    for i, t in enumerate(shown, 1):
        table.add_row(str(i), t.key, str(t.seed), ", ".join(f"{k}={v}" for k, v in t.cell.items()) or "base")
    console.print(table)
    rule = sweep_plan.replicate
    more = "" if rule is None else (f"; adaptive replication: every cell at seeds 0–{rule.min_seeds - 1}, the cells "
                                    f"of undecided claims up to seed {rule.max_seeds - 1} (at most "
                                    f"{len(sweep_plan.trials)} trials)")
    console.print(f"{len(shown)} trials ({sweep_plan.merged} merged into equal cells) · profile {profile} · ranked by "
                  f"{spec.metric}{more}")
