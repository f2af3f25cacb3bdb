"""How values, grid cells, tags and metrics are named wherever a person reads them: tables, the live
view's lines, W&B run names."""

from __future__ import annotations

from dipddpm.method import ORACLE

from .metrics import is_oracle_metric


# Characters that reorder the text around them (bidirectional embeddings, overrides, isolates, marks): a claim's
# text holding U+202E would show its verdict reversed. Every user string is shown with these as visible escapes.
BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def safe_text(text: str) -> str:
    """A user's string as plain text: bidirectional controls (and other invisible format characters that could
    reorder or hide what is read) written as visible escapes like <U+202E>."""
    import unicodedata

    if text.isascii():
        return text
    return "".join(f"<U+{ord(ch):04X}>" if ch in BIDI or unicodedata.category(ch) == "Cf" else ch for ch in text)


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
