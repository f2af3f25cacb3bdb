"""Read an offline `.wandb` run file: the records W&B wrote, to check what was logged.

The file is a LevelDB-style log: a 7-byte file header (":W&B", magic, version),
then 32 KiB blocks of chunks, each with a 7-byte header (crc32c, length,
type: 1 full, 2 first, 3 middle, 4 last) around a protobuf `Record`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7


def records(path: str | Path):
    """Yield wandb_internal_pb2.Record messages in file order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:
            pos += BLOCK - pos % BLOCK if pos % BLOCK else 0
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            yield rec
            pending = b""


def summarize(path: str | Path) -> dict:
    """{'history': [ {key: value} ...], 'summary': {...}, 'config': {...}, 'exit': code or None, 'run_id': str,
    'name', 'group', 'job_type', 'tags', 'metrics': {key: step metric} (define_metric)}."""
    out: dict = {"history": [], "summary": {}, "config": {}, "exit": None, "run_id": None, "name": None,
                 "group": None, "job_type": None, "tags": [], "metrics": {}}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            for i in rec.summary.update:
                out["summary"][i.key or "/".join(i.nested_key)] = json.loads(i.value_json)
        elif kind == "run":
            out["run_id"], out["name"], out["group"] = rec.run.run_id, rec.run.display_name, rec.run.run_group
            out["job_type"], out["tags"] = rec.run.job_type, list(rec.run.tags)
            for i in rec.run.config.update:
                out["config"][i.key] = json.loads(i.value_json)
        elif kind == "config":
            for i in rec.config.update:
                out["config"][i.key] = json.loads(i.value_json)
        elif kind == "metric":
            m = rec.metric
            out["metrics"][m.name or m.glob_name] = m.step_metric
        elif kind == "exit":
            out["exit"] = rec.exit.exit_code
    return out
