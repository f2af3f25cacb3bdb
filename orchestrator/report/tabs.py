"""Table values and labels shared by every report table: the Tab itself, tags, metric ranges, ES flags."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field

from ..common.design import FLOOR, ORACLE, tags_of  # noqa: F401  (re-exported)
from ..common.metrics import is_oracle_metric
from .units import trial_level

@dataclass
class Tab:
    name: str  # stable id: a file / W&B key
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    terminal: tuple[str, ...] = ()  # the columns a terminal shows when it cannot fit them all (default: all)


# ---------------------------------------------------------------- labels and ranges

def bounds(metric: str) -> tuple[float, float]:
    """The range a metric's values (and so its interval) live in."""
    if metric.startswith("ssim"):
        return (-1.0, 1.0)
    if metric in ("es_fired", "dip_es_fired"):
        return (0.0, 1.0)
    return (0.0, math.inf) if metric.startswith(("psnr", "iter")) or trial_level(metric) else (-math.inf, math.inf)


def metric_title(name: str) -> str:
    return f"{name} [{ORACLE}]" if is_oracle_metric(name) else name


def tag_text(tags) -> str:
    return "".join(f" [{t}]" for t in tags)


def short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(short(x) for x in v) + "]"
    return "null" if v is None else str(v)


def cell_text(cell: dict) -> str:
    return ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in cell.items()) or "base"


def record_tags(r: dict) -> tuple[str, ...]:
    return tags_of(r.get("config") or {})


def oracle_record(r: dict) -> bool:
    return ORACLE in record_tags(r)


def floor_record(r: dict) -> bool:
    return FLOOR in record_tags(r)


def cell_label(r: dict) -> str:
    return cell_text(r.get("cell") or {}) + tag_text(record_tags(r))


def cell_key(r: dict) -> str:
    if r.get("cell_key"):
        return r["cell_key"]
    cfg = dict(r.get("config") or {})
    cfg.pop("seed", None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def usable(records: list[dict]) -> list[dict]:
    """ok and diverged trials (a diverged one counts with its last good estimate)."""
    return [r for r in records if r.get("status") in ("ok", "diverged")]


def status_text(records: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def fired(records: list[dict]) -> str:
    """How often ES-WMV fired over these trials' images, 'k/n' (beside every psnr_es: when it did not
    fire, psnr_es is the last iteration's PSNR)."""
    flags = [m["es_fired"] for r in records for m in (r.get("per_image") or {}).values()
             if isinstance(m.get("es_fired"), bool)]
    return f"{sum(flags)}/{len(flags)}" if flags else "—"


def fired_pair(metric: str, record_pairs: list) -> str:
    """'k/n vs k/n': how often ES-WMV fired in each arm of paired trials, for psnr_es rows ('' otherwise)."""
    if metric != "psnr_es":
        return ""
    return f"{fired([p[0] for p in record_pairs])} vs {fired([p[1] for p in record_pairs])}"
