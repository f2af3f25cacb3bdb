"""Matching trials "with the other axes held fixed", from records alone.

A record's counterpart under a change (say `staged.variant: baseline`) is the
trial the sweep would have run with that one change: take the record's
config, apply the change, give fields the record had as not-applicable the
sweep's typical value (the reference config), canonicalise and hash. If the
sweep ran that trial, its record is the counterpart. When it did not (the
record's cell also moved another key, like `ddpm.t_max: null` beside
`start: noise`), a second try also returns the record's other grid-cell keys
to the reference and says which ones it moved.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from dipddpm.config import EITHER_OR, config_dict, nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError


def flatten(d: dict, prefix: str = "") -> dict:
    """{'dip': {'lr': 0.01}, 'ddpm': None} -> {'dip.lr': 0.01, 'ddpm': None}."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def group_of(key: str) -> tuple[str, ...] | None:
    for sec, members in EITHER_OR:
        full = tuple(f"{sec}.{m}" for m in members)
        if key in full:
            return full
    return None


def reference_config(records: list[dict]) -> dict:
    """Per dotted key, the most common non-null value over the records (the sweep's base, in practice).

    In an either/or group only the member set most often keeps a value, so the
    reference is itself a valid choice (train_steps, not train_steps and epochs).
    """
    counts: dict[str, Counter] = {}
    first: dict[str, object] = {}
    for r in records:
        for k, v in flatten(r["config"]).items():
            if v is None or k == "seed":
                continue
            blob = json.dumps(v, sort_keys=True)
            counts.setdefault(k, Counter())[blob] += 1
            first.setdefault(k + blob, v)
    ref = {k: first[k + c.most_common(1)[0][0]] for k, c in counts.items()}
    for sec, members in EITHER_OR:
        full = [f"{sec}.{m}" for m in members]
        used = [(sum(counts.get(k, Counter()).values()), -i, k) for i, k in enumerate(full)]
        keep = max(used)[2]
        for k in full:
            if k != keep:
                ref.pop(k, None)
    return ref


@dataclass(frozen=True)
class Match:
    record: dict
    also_moved: tuple[str, ...]  # grid-cell keys of the anchor returned to the reference to find it


def _image_fields(flat: dict) -> tuple[str, str]:
    """The config fields that name a trial's test images and its training pool."""
    return (json.dumps([flat.get("data.images"), flat.get("data.root"), flat.get("data.glob")], sort_keys=True),
            json.dumps(flat.get("ddpm.train_images"), sort_keys=True))


class Index:
    """Records of one run by trial key, with counterpart lookup."""

    def __init__(self, records: list[dict]):
        self.by_key = {r["trial_key"]: r for r in records}
        self.ref = reference_config(records)
        # The image identities each image setting resolved to (a key hashes identities, not paths).
        self.test_ids: dict[str, list] = {}
        self.pool_ids: dict[str, list] = {}
        for r in records:
            test, pool = _image_fields(flatten(r["config"]))
            images = r.get("images") or {}
            if images.get("test"):
                self.test_ids.setdefault(test, [i["id"] for i in images["test"]])
            if images.get("pool"):
                self.pool_ids.setdefault(pool, [i["id"] for i in images["pool"]])

    def identity(self, cfg) -> dict | None:
        """The image identities a resolved config's trial would have had in this run, if known."""
        test, pool = _image_fields(flatten(config_dict(cfg)))
        out = {"test": self.test_ids.get(test)}
        if cfg.method == "hybrid":
            out["pool"] = self.pool_ids.get(pool)
        return None if None in out.values() else out

    def counterpart(self, record: dict, changes: dict) -> Match | None:
        """The record of `record`'s trial with `changes` applied; None when the sweep has no such trial."""
        if all(same(flatten(record["config"]).get(k), v) for k, v in changes.items()):
            return Match(record, ())
        cell = record.get("cell") or {}
        hit = self._lookup(record, changes, keep=set(cell))
        if hit is not None:
            return Match(hit, ())
        moved = {k: self.ref.get(k) for k, v in cell.items() if k not in changes and not same(v, self.ref.get(k))}
        if not moved:
            return None
        hit = self._lookup(record, changes | moved, keep=set(cell))
        return Match(hit, tuple(sorted(moved))) if hit is not None else None

    def _lookup(self, record: dict, changes: dict, keep: set) -> dict | None:
        flat = flatten(record["config"]) | changes
        cell = record.get("cell") or {}
        for k in keep:  # a cell value the trial had as not applicable (a baseline's clean targets) comes back
            if flat.get(k) is None and cell.get(k) is not None and k not in changes:
                flat[k] = cell[k]
        for k, v in changes.items():  # setting one member of an either/or group clears the others
            for g in group_of(k) or ():
                if g != k and g not in changes and v is not None:
                    flat[g] = None
        for k in list(flat):  # a section the record had as not-applicable takes the reference's fields
            if flat[k] is None and "." not in k and any(r.startswith(k + ".") for r in self.ref):
                del flat[k]
        for k, v in self.ref.items():
            if k in changes or (k in keep and k in flat) or flat.get(k) is not None:
                continue
            group = group_of(k)
            if group and any(flat.get(g) is not None for g in group if g != k):
                continue
            flat[k] = v
        try:
            cfg = resolve([("counterpart", nested(flat))])
            key = trial_key(cfg, self.identity(cfg))
        except (ConfigError, ValueError, TypeError):
            return None
        found = self.by_key.get(key)
        return None if found is record else found  # a change that does not apply is no comparison


def paired_values(ra: dict, rb: dict, ma: str, mb: str) -> tuple[list, list]:
    """Matched samples: per image when both trials have the metric per image, else the trial values."""
    pa, pb = ra.get("per_image") or {}, rb.get("per_image") or {}
    images = [i for i in pa if i in pb and ma in pa[i] and mb in pb[i]]
    if images:
        return [pa[i][ma] for i in images], [pb[i][mb] for i in images]
    a, b = (ra.get("metrics") or {}).get(ma), (rb.get("metrics") or {}).get(mb)
    return ([a], [b]) if a is not None and b is not None else ([], [])
