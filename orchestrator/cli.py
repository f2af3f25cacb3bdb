"""`python -m orchestrator sweep SWEEP.yaml [...]`: dry-run or run a sweep.

Bad input: one line naming the key, exit code 2, nothing started.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from dipddpm.errors import ConfigError

EXIT_USAGE = 2


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
    s.add_argument("--max-failures", type=int, default=1, help="retries per failing trial (default 1)")
    s.add_argument("--project", help="W&B project (default: $WANDB_PROJECT, else dipddpm)")
    s.add_argument("--no-live", action="store_true", help="no live view (logs only)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _sweep(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _sweep(args) -> int:
    from rich.console import Console

    from .spec import expand, load_spec

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise ConfigError(f"--max-concurrent: expected an integer >= 1, got {args.max_concurrent}")
    spec = load_spec(args.sweep)
    console = Console(width=None if sys.stdout.isatty() else 160)  # logs and pipes get the full table
    if args.dry_run:
        profile = args.profile
        if profile == "auto":
            import torch

            profile = "gpu" if torch.cuda.is_available() else "cpu"
        trials, merged = expand(spec, profile)
        _print_dry_run(spec, profile, trials, merged, args.json, console)
        return 0
    from .runner import SweepOptions, run_sweep

    opts = SweepOptions(profile=args.profile, runs_dir=args.runs_dir, cache_dir=args.cache_dir,
                        use_cache=not args.no_cache, address=args.address, max_concurrent=args.max_concurrent,
                        fresh=args.fresh, retry_failed=args.retry_failed, max_failures=args.max_failures,
                        project=args.project, live=not args.no_live)
    return run_sweep(spec, opts, console)


def _print_dry_run(spec, profile, trials, merged, as_json: bool, console) -> None:
    from rich.table import Table

    from dipddpm.config import config_dict

    if as_json:
        for t in trials:
            print(json.dumps({"trial_key": t.key, "profile": profile, "cell": t.cell, "config": config_dict(t.config)}))
        return
    table = Table(title=f"{spec.name} · {spec.method} · profile {profile}")
    for col in ("#", "trial_key", "seed", "grid cell"):
        table.add_column(col)
    for i, t in enumerate(trials, 1):
        table.add_row(str(i), t.key, str(t.seed), ", ".join(f"{k}={v}" for k, v in t.cell.items()) or "base")
    console.print(table)
    console.print(f"{len(trials)} trials ({merged} merged into equal cells) · profile {profile} · ranked by {spec.metric}")
