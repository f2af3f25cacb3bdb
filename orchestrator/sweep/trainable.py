"""The Ray trainable: a config dict and the images as data in, a record and its files out through Ray.

Runs on a worker of any node, which shares no disk with the driver (DESIGN
§11): the images arrive as bytes from the object store, cached artefacts from
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
    import ray
    import torch
    from ray import tune

    from dipddpm.config import trial_key
    from dipddpm.errors import ConfigError
    from dipddpm.record import versions
    from dipddpm.trial import resolve

    from .cluster import check_code
    from .hub import check_key

    spec = params["trial"]
    key = check_key(spec["key"])
    torch.set_num_threads(max(1, int(ctx["cpus"])))
    try:
        check_code(ctx["code"])
        cfg = resolve([("trial", spec["config"])])
        images, image_bytes = receive_images(spec["images"], payloads)
        if trial_key(cfg, images) != key:
            raise ConfigError(f"trial {key}: its config and images do not hash to its key on {os.uname().nodename}")
        record = _run(cfg, images, spec, ctx, hub, image_bytes)
    except ConfigError as exc:  # deterministic: retrying cannot help
        record = {"trial_key": key, "sweep": ctx["sweep"], "method": spec["config"].get("method"),
                  "seed": spec["config"].get("seed"), "profile": ctx["profile"], "status": "failed",
                  "error": f"config error: {exc}", "config": spec["config"], "images": spec["images"],
                  "cell": spec["cell"], "cell_key": spec["cell_key"], "metrics": {}, "per_image": {},
                  "versions": versions()}
        ray.get(hub.write_trial.remote(key, {"result.json": json.dumps(record, indent=2).encode()}, None, {}))
    tune.report(_numeric(record["metrics"]) | {"record": json.dumps(record, default=str), "final": 1})


def _run(cfg, images, spec: dict, ctx: dict, hub, image_bytes: int) -> dict:
    import ray
    from ray import tune

    from dipddpm import trial
    from dipddpm.record import build_record, trial_files

    from .hub import HubCache
    from ..common.wandb_runs import group_name, run_id
    from .wandb_log import TrialLogger

    key = spec["key"]
    rid = run_id(ctx["sweep"], ctx["profile"], ctx["run_uid"], key)
    with tempfile.TemporaryDirectory(prefix=f"dipddpm-{key}-") as tmp:
        logger = TrialLogger(rid, group_name(ctx["sweep"], ctx["profile"]), ctx["project"], spec["config"],
                             Path(tmp), [ctx["profile"], cfg.method], ctx["wandb_mode"])

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
        first = next(iter(result.images.values()), {})
        logger.finish(record, {k: v for k, v in first.items() if k in ("clean", "observation", "es", "peak",
                                                                      "hybrid", "dip")})
        folder, wandb_files = logger.files()
        files = trial_files(record, result)
        shipped = sum(len(v) for k, v in files.items() if k != "result.json") + sum(map(len, wandb_files.values()))
        # What crossed the network for this trial (the record itself, a few kB, travels in its report).
        record |= {"wandb_folder": folder, "warnings": logger.warnings,
                   "transfer": {"image_bytes_in": image_bytes, "cache_bytes_in": cache.bytes_in,
                                "cache_bytes_out": cache.bytes_out, "file_bytes_out": shipped,
                                "files_out": len(files) + len(wandb_files),
                                # from the method's end to its files being ready to send (PNGs, W&B's close)
                                "pack_s": time.perf_counter() - t_ship}}
        files["result.json"] = json.dumps(record, indent=2, default=str).encode()
        ray.get(hub.write_trial.remote(key, files, folder, wandb_files))
    return record
