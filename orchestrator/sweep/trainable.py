"""The Ray trainable: a config dict and the images as data in, a record and its files out through Ray.

Runs on a worker of any node, which shares no disk with the driver (docs/design.md,
"The cluster data path"): the images arrive as bytes from the object store, cached artefacts from
the hub, and the trial's files (result.json, curves.json, PNGs, the offline
W&B run) leave through the hub on the driver's node before the final
`tune.report`, which carries the record for the driver to append to
results.jsonl. A config error inside the trial is a `failed` record at once,
not an exception for Tune to retry.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path


def _numeric(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def receive_images(described: dict, payloads: dict) -> tuple[object, int]:
    """The trial's ImageSet from its description and the object-store refs of file images; bytes fetched."""
    import ray

    from dipddpm.images import ImageData, ImageSet

    parts, fetched = {}, 0
    for part in ("test", "pool"):
        out = []
        for d in described.get(part, []):
            data = ray.get(payloads[d["sha256"]]) if d["sha256"] in payloads else None
            fetched += len(data or b"")
            out.append(ImageData(d["id"], d["source"], d["sha256"], data))
        parts[part] = tuple(out)
    return ImageSet(parts["test"], parts["pool"]), fetched


def run_trial(params: dict, ctx: dict, payloads: dict, hub) -> None:
    import torch
    from ray import tune

    from dipddpm.config import trial_key
    from dipddpm.errors import ConfigError
    from dipddpm.record import versions
    from dipddpm.trial import resolve

    from ..common.record import Record
    from .cluster import check_code
    from .hub import check_key

    spec = params["trial"]
    key = check_key(spec["key"])
    torch.set_num_threads(max(1, int(ctx["cpus"])))
    try:
        try:
            check_code(ctx["code"])
            cfg = resolve([("trial", spec["config"])])
            images, image_bytes = receive_images(spec["images"], payloads)
            if trial_key(cfg, images) != key:
                raise ConfigError(f"trial {key}: its config and images do not hash to its key on {os.uname().nodename}")
            record = _run(cfg, images, spec, ctx, hub, image_bytes)
        except ConfigError as exc:  # deterministic: retrying cannot help
            record = Record.failed(trial_key=key, sweep=ctx["sweep"], profile=ctx["profile"], config=spec["config"],
                                   cell=spec["cell"], cell_key=spec["cell_key"], images=spec["images"],
                                   error=f"config error: {exc}", versions=versions()).as_dict()
            write_files(hub, key, {"result.json": json.dumps(record, indent=2).encode()}, None, {})
    except RunFolderWriteError as exc:  # the driver's disk: no record can land, the sweep stops (no retry)
        tune.report({"write_error": json.dumps({"path": exc.filename, "error": exc.strerror}), "final": 1})
        return
    tune.report(_numeric(record["metrics"]) | {"record": json.dumps(record, default=str), "final": 1})


class RunFolderWriteError(OSError):
    """The hub could not write a trial's files into the driver's run folder (a full disk, a quota)."""


def write_files(hub, key: str, files: dict, folder: str | None, wandb_files: dict, tune_row: dict | None = None) -> None:
    """The trial's files to the driver's run folder through the hub; a write error there is the run
    folder's (RunFolderWriteError), not this trial's."""
    from .hub import hub_call

    row = (json.dumps(tune_row, default=str) + "\n").encode() if tune_row is not None else None
    got = hub_call(hub.write_trial, key, files, folder, wandb_files, row)
    if isinstance(got, dict):
        raise RunFolderWriteError(got["errno"], got["error"], got["path"])


def _run(cfg, images, spec: dict, ctx: dict, hub, image_bytes: int) -> dict:
    from ray import tune

    from dipddpm import trial
    from dipddpm.record import build_record, trial_files

    from dipddpm.methods import get, tags_of

    from ..common.labels import cell_text
    from ..wandb_io.naming import cell_group, run_id, run_name, run_scope
    from ..wandb_io.trial_log import TrialLogger
    from .hub import HubCache

    key = spec["key"]
    rid = run_id(ctx["sweep"], ctx["profile"], ctx["run_uid"], key)
    label, tags = cell_text(spec["cell"]), tags_of(spec["config"])
    # What a W&B user filters and groups by: the sweep, the cell (its axes as well), the keys, the seed.
    wandb_config = spec["config"] | {"sweep": ctx["sweep"], "profile": ctx["profile"], "cell": spec["cell"],
                                     "cell_label": label, "cell_key": spec["cell_key"], "trial_key": key,
                                     "run_scope": run_scope(ctx["run_uid"])}
    # an earlier attempt of this trial that the driver killed (its timeout) left its scratch folder: one driver
    # runs a run folder, so a trial key runs once at a time in it, and what its earlier attempts left is theirs
    scratch = f"dipddpm-{key}-{ctx['run_uid']}-"
    for stale in Path(tempfile.gettempdir()).glob(scratch + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=scratch) as tmp:
        logger = TrialLogger(rid, cell_group(ctx["sweep"], ctx["profile"], ctx["run_uid"], spec["cell_key"], label),
                             ctx["project"], wandb_config, Path(tmp),
                             [ctx["profile"], cfg.method] + [t.lower() for t in tags], ctx["wandb_mode"],
                             name=run_name(label, cfg.seed), job_type=cfg.method)

        def report(step: int, metrics: dict) -> None:
            numeric = _numeric(metrics)
            logger.log(step, numeric, metrics.get("image"))
            tune.report(numeric | {"step": step})

        cache = HubCache(hub, enabled=ctx["use_cache"])
        result = trial.run(cfg, report=report, cache=cache, images=images)
        record = build_record(cfg, result, ctx["profile"], images) | {
            "sweep": ctx["sweep"], "cell": spec["cell"], "cell_key": spec["cell_key"], "wandb_run": rid,
            "wandb_mode_seen_by_worker": os.environ.get("WANDB_MODE"), "node": os.uname().nodename}
        t_ship = time.perf_counter()
        shown = get(cfg.method).report.image_kinds  # the kinds W&B panels show (not every PNG the trial saves)
        logger.finish(record, {image: {k: v for k, v in kinds.items() if k in shown}
                               for image, kinds in result.images.items()})
        folder, wandb_files = logger.files()
        files = trial_files(record, result)
        shipped = sum(len(v) for k, v in files.items() if k != "result.json") + sum(map(len, wandb_files.values()))
        # What crossed the network for this trial (the record itself, a few kB, travels in its report).
        record |= {"wandb_folder": folder, "warnings": cache.warnings + logger.warnings,
                   "transfer": {"image_bytes_in": image_bytes, "cache_bytes_in": cache.bytes_in,
                                "cache_bytes_out": cache.bytes_out, "file_bytes_out": shipped,
                                "files_out": len(files) + len(wandb_files),
                                # from the method's end to its files being ready to send (PNGs, W&B's close)
                                "pack_s": time.perf_counter() - t_ship}}
        files["result.json"] = json.dumps(record, indent=2, default=str).encode()
        # the final result as Tune's own JSON logger would keep it (that logger is off: it would write every
        # evaluation on whichever node ran the trial), for ExperimentAnalysis on the driver's run folder
        tune_row = _numeric(record["metrics"]) | {"trial_key": key, "status": record["status"], "done": True,
                                                  "training_iteration": 1}
        write_files(hub, key, files, folder, wandb_files, tune_row)
    return record
