"""Single-trial CLI (no Ray): `python -m dipddpm run --method staged [...]`.

Resolves the config chain (defaults -> profile -> --config -> --set), runs the
trial with a rich progress bar, writes result.json, curves.json and PNGs, and
prints a summary. Bad input: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import ConfigError

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dipddpm", description="Run one dipddpm trial without Ray.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one trial and write DIR/result.json")
    r.add_argument("--method", choices=("staged", "hybrid"), help="method (default: the --config's, else staged)")
    r.add_argument("--profile", choices=("auto", "cpu", "gpu"), default=None,
                   help="built-in profile (default auto: gpu when CUDA is available, else cpu)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field; VALUE is YAML (e.g. dip.lr=1e-4, data.images=[astronaut])")
    r.add_argument("--config", help="a previous result.json (reruns that trial) or a YAML/JSON config mapping")
    r.add_argument("--out", help="output folder (default: out/<method>-<trial_key>)")
    r.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    r.add_argument("--cache-dir", help="artefact cache (default: $DIPDDPM_CACHE, else the user cache folder)")
    r.add_argument("--no-cache", action="store_true", help="train / fit everything afresh, store nothing")
    r.add_argument("--dry-run", action="store_true", help="print the resolved config and trial key, run nothing")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--threads", type=int, metavar="N",
                   help="torch intra-op threads (default: a rerun's record's, else OMP_NUM_THREADS if set, else "
                        "measured at start: the fewest that run a few steps of this trial's network about as fast "
                        "as any)")
    return p


def parse_sets(sets: list[str]) -> dict:
    """['dip.lr=1e-4', ...] -> nested dict, values parsed as YAML 1.2."""
    from .config import nested
    from .yamlio import loads

    flat = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected KEY=VALUE, got {item!r}")
        flat[key.strip()] = loads(raw, where=f"--set {key.strip()}")
    return nested(flat)


def load_config_file(path: str) -> tuple[dict, str | None, int | None]:
    """A record's `config` (and its profile and intra-op threads), or a plain config mapping."""
    from .yamlio import load_file

    data = load_file(path)
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping (a result.json or a config), got {type(data).__name__}")
    if "config" in data and "trial_key" in data:
        threads = data.get("threads")
        if threads is not None and (type(threads) is not int or threads < 1):
            raise ConfigError(f"--config {path}: threads: expected an integer >= 1, got {threads!r}")
        return data["config"], data.get("profile"), threads
    return data, None, None


def resolve_cli(args) -> tuple[object, str, object, int | None]:
    """The trial config, its profile, its images (read and checked here, once) and the threads of the
    record it reruns (None: not a rerun, or a record that does not say) the arguments describe."""
    from .trial import resolve
    from .images import images_for

    layers, file_profile, file_threads = [], None, None
    if args.config:
        file_cfg, file_profile, file_threads = load_config_file(args.config)
        layers.append((f"--config {args.config}", file_cfg))
    if args.method:
        layers.append(("--method", {"method": args.method}))
    layers.append(("--set", parse_sets(args.sets)))
    profile = args.profile or file_profile or "auto"
    if profile == "auto":
        import torch

        profile = "gpu" if torch.cuda.is_available() else "cpu"
    cfg = resolve(layers, profile)
    return cfg, profile, images_for(cfg), file_threads


def check_device(name: str | None) -> None:
    """--device names a device this torch build can use, or a one-line ConfigError."""
    import torch

    if name is None:
        return
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device: expected cpu, cuda, cuda:N or mps, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: this torch build sees no CUDA GPU (torch {torch.__version__}); use cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: expected a GPU index below {torch.cuda.device_count()}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {name}: MPS is not available here; use cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device: expected cpu, cuda, cuda:N or mps, got {name!r}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = _parser().parse_known_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if extra:  # the usual slip: `--set dip.lr 0.01`, a value on its own
        return _unexpected(argv, extra)
    try:
        from .threads import check_requested

        check_device(args.device)
        check_requested(args.threads)
        cfg, profile, images, record_threads = resolve_cli(args)
        if args.dry_run:
            return _dry_run(cfg, profile, images)
        return _run(cfg, profile, images, args, record_threads)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _unexpected(argv: list[str], extra: list[str]) -> int:
    i = argv.index(extra[0])
    after = argv[i - 1] if i >= 2 and argv[i - 2] == "--set" else None
    if after is not None and "=" not in after:
        print(f"error: --set: expected KEY=VALUE as one argument, got {after!r} then {extra[0]!r} (write --set "
              f"{after}={extra[0]})", file=sys.stderr)
    else:
        print(f"error: unexpected argument {extra[0]!r} (see --help)", file=sys.stderr)
    return EXIT_USAGE


def _dry_run(cfg, profile: str, images) -> int:
    import json

    from .config import config_dict, trial_key

    print(json.dumps({"profile": profile, "trial_key": trial_key(cfg, images), "config": config_dict(cfg),
                      "images": {part: [i.describe() for i in getattr(images, part)] for part in ("test", "pool")}},
                     indent=2))
    return 0


def _run(cfg, profile: str, images, args, record_threads: int | None = None) -> int:
    from rich.console import Console

    from . import trial
    from .cache import ArtefactCache
    from .config import trial_key
    from .progress import TrialProgress, summary_table
    from .record import build_record, writable_dir, write_outputs
    from .threads import choose
    from .trial import pick_device

    console = Console(stderr=True)
    key = trial_key(cfg, images)
    out = writable_dir(args.out or f"out/{cfg.method}-{key}", "--out")  # before the trial, not after it
    if args.cache_dir and not args.no_cache:
        writable_dir(args.cache_dir, "--cache-dir")
    # A rerun takes its record's thread count: float sums split across threads differ in the last bits.
    requested, source = (args.threads, "--threads") if args.threads is not None else (record_threads, "its record's")
    threads = choose(cfg, pick_device(args.device), requested, source)
    console.print(f"[bold]{cfg.method}[/] trial {key} · profile [bold]{profile}[/] · {threads.describe()} · out {out}")
    with TrialProgress(console, disabled=args.quiet) as progress:
        cache = ArtefactCache(args.cache_dir, enabled=not args.no_cache)
        result = trial.run(cfg, report=progress.report, device=args.device, cache=cache, images=images)
    record = build_record(cfg, result, profile, images) | {"threads": threads.threads}
    path = write_outputs(out, record, result)
    Console().print(summary_table(record))
    console.print(f"wrote {path}")
    return 0
