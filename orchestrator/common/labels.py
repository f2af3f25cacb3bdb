"""How values, grid cells, tags and metrics are named wherever a person reads them: tables, the live
view's lines, W&B run names."""

from __future__ import annotations

from dipddpm.method import ORACLE

from .metrics import is_oracle_metric


def short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(short(x) for x in v) + "]"
    return "null" if v is None else str(v)


def cell_text(cell: dict) -> str:
    """A grid cell as its axes' last names and values: 'variant=baseline, lr=0.1' ('base' for none)."""
    return ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in cell.items()) or "base"


def tag_text(tags) -> str:
    return "".join(f" [{t}]" for t in tags)


def metric_title(name: str) -> str:
    """A metric's column title: an ORACLE figure says so."""
    return f"{name} [{ORACLE}]" if is_oracle_metric(name) else name
