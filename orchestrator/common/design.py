"""A sweep's design, kept beside its records as sweep.json: what reports pair against (docs/design.md).

Hydra keeps `.hydra/` beside a run; a run folder keeps its resolved sweep: name,
method, headline, profile, the base settings (every config field as the
sweep's layers set it, before canonical nulling), each grid cell (its raw
values, the axes that do not apply to it once canonical, its cell key, its
task and its ORACLE / FLOOR tags), the seeds, the claims and the replication
rule. Comparisons, effects and claims pair cells through this design — a join
on the grid axes with the sweep's own base, built once — never through a vote
over the records.

A cell's counterpart under a change (say `staged.variant: baseline`) is the
cell whose settings equal this cell's with the change applied, on every axis
that applies to it: an axis a cell has as not applicable (a baseline's
targets) matches anything. When no cell matches (the cell also moved another
key, like `ddpm.t_max: null` beside `start: noise`), the cell's other keys go
back to the base and the match says which ones it moved.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dipddpm.config import EITHER_OR
from dipddpm.errors import ConfigError

from .record import Record

log = logging.getLogger(__name__)
FILE = "sweep.json"
GROUPS = tuple(tuple(f"{sec}.{m}" for m in members) for sec, members in EITHER_OR)


def _norm(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def norm(v) -> str:
    """A value as comparable text: 2 and 2.0 are one value, tuples are lists."""
    return json.dumps(_norm(v), sort_keys=True)


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


def group_of(key: str) -> tuple[str, ...]:
    return next((g for g in GROUPS if key in g), ())


def apply(settings: dict, changes: dict, base: dict) -> dict:
    """Settings with `changes` made as a layer makes them: setting one member of an either/or group
    clears the others; a member set to null gives the group back its base (effects against
    `epochs`'s base compare with the base's train_steps)."""
    out = dict(settings)
    for k, v in changes.items():
        group = group_of(k)
        if v is None and group:
            out.update({g: base.get(g) for g in group})
            continue
        for g in group:
            if g != k:
                out[g] = None
        out[k] = v
    return out


def task_of(config: dict, test_ids: list[str]) -> str:
    """The restoration task a trial solves: its noise, test images and size (scores compare within one)."""
    deg, data, diff = (config.get(s) or {} for s in ("degradation", "data", "diffusion"))
    if deg.get("noise_std"):
        noise = f"σ {255 * deg['noise_std']:.4g}/255"
    else:
        noise = f"t_obs {deg.get('t_obs')} ({diff.get('beta_schedule')}, T={diff.get('num_train_timesteps')})"
    return f"{noise} · {','.join(test_ids) or '?'} · {data.get('size')} px"


@dataclass(frozen=True)
class Point:
    """One grid cell of the design (a cell that canonicalises like another shares its cell key)."""

    cell: dict  # dotted axis -> value, as the grid cell sets it
    settings: dict  # every config field at this cell: the base, with the cell applied
    void: frozenset  # axes that do not apply here (null once canonical)
    cell_key: str
    task: str
    tags: tuple = ()


@dataclass
class Design:
    name: str
    method: str
    metric: str
    mode: str
    profile: str
    base: dict  # every config field (dotted) at the sweep's base, as its layers set it
    points: list[Point]
    seeds: list[int]
    claims: tuple = ()
    replicate: dict | None = None
    axes: tuple[str, ...] = field(default=())
    parallel: int | None = None  # trials the run held at once (a projection's minutes divide by it)

    def __post_init__(self):
        if not self.axes:
            self.axes = tuple(dict.fromkeys(k for p in self.points for k in p.cell))
        self._by_cell: dict[str, Point] = {}
        self._index: dict[frozenset, dict[tuple, list[Point]]] = {}
        self._normed: dict[int, tuple] = {}  # id(point) -> its axes' values as comparable text
        self._memo: dict[tuple, tuple | None] = {}  # (cell key, changes) -> counterpart: asked once per cell
        for p in self.points:
            self._by_cell.setdefault(p.cell_key, p)
            normed = self._normed[id(p)] = tuple(norm(p.settings.get(a)) for a in self.axes)
            keep = tuple(v for a, v in zip(self.axes, normed) if a not in p.void)
            self._index.setdefault(p.void, {}).setdefault(keep, []).append(p)

    # -------------------------------------------------------------- lookups

    def point(self, cell_key: str) -> Point | None:
        return self._by_cell.get(cell_key)

    def find(self, settings: dict) -> Point | None:
        """The cell with these settings on every axis that applies to it; the exact one when several."""
        wanted = tuple(norm(settings.get(a)) for a in self.axes)
        found = []
        for void, table in self._index.items():
            found += table.get(tuple(v for a, v in zip(self.axes, wanted) if a not in void), [])
        exact = [p for p in found if self._normed[id(p)] == wanted]
        return (exact or found or [None])[0]

    def counterpart(self, p: Point, changes: dict, allow_self: bool = False) -> tuple[Point, tuple] | None:
        """(the cell `p` becomes under `changes`, grid keys of p also returned to the base); None when the
        sweep has no such cell or the change does not apply to p."""
        key = (p.cell_key, norm(changes), allow_self)
        if key not in self._memo:
            self._memo[key] = self._counterpart(p, changes, allow_self)
        return self._memo[key]

    def _counterpart(self, p: Point, changes: dict, allow_self: bool) -> tuple[Point, tuple] | None:
        target = apply(p.settings, changes, self.base)
        q = self.find(target)
        if q is not None:
            return (q, ()) if allow_self or q.cell_key != p.cell_key else None
        moved = [k for k in p.cell if k not in changes and norm(p.settings.get(k)) != norm(self.base.get(k))]
        if not moved:
            return None
        for k in moved:
            for g in group_of(k) or (k,):
                target[g] = self.base.get(g)
        q = self.find(target)
        return (q, tuple(sorted(moved))) if q is not None and q.cell_key != p.cell_key else None

    def cell_keys(self) -> set[str]:
        return {p.cell_key for p in self.points}

    def in_design(self, record: Record) -> bool:
        """Whether a record is one of this design's trials (an edited sweep's earlier records are not)."""
        return record.cell_key in self._by_cell

    def value(self, p: Point, key: str):
        return p.settings.get(key, self.base.get(key))

    def selects(self, p: Point, selector: dict) -> bool:
        return all(norm(self.value(p, k)) == norm(v) for k, v in selector.items())

    def unmatched(self, selector: dict) -> list[tuple[str, object, list]]:
        """(key, value, the values the grid has) of each key of a claim's selector that no cell has."""
        out = []
        for key, want in selector.items():
            have = list({norm(self.value(p, key)): self.value(p, key) for p in self.points}.values())
            if norm(want) not in {norm(v) for v in have}:
                out.append((key, want, have))
        return out

    def axis_values(self, axis: str) -> list:
        """The values grid cells set for `axis`, in the grid's order."""
        seen = {norm(p.cell[axis]): p.cell[axis] for p in self.points if axis in p.cell}
        return list(seen.values())

    # -------------------------------------------------------------- file

    def as_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "metric": self.metric, "mode": self.mode,
                "profile": self.profile, "base": self.base, "axes": list(self.axes), "seeds": self.seeds,
                "parallel": self.parallel,
                "replicate": self.replicate, "claims": [c.as_dict() for c in self.claims],
                "points": [{"cell": p.cell, "void": sorted(p.void), "cell_key": p.cell_key, "task": p.task,
                            "tags": list(p.tags)} for p in self.points]}

    @classmethod
    def from_dict(cls, d: dict, src: str) -> "Design":
        from .claims import parse_claims

        base = d["base"]
        points = [Point(pt["cell"], apply(base, pt["cell"], base), frozenset(pt["void"]), pt["cell_key"], pt["task"],
                        tuple(pt.get("tags", ()))) for pt in d["points"]]
        return cls(d["name"], d["method"], d["metric"], d["mode"], d["profile"], base, points, list(d["seeds"]),
                   parse_claims(d.get("claims"), src), d.get("replicate"), tuple(d["axes"]), d.get("parallel"))

    def save(self, run_dir: Path) -> None:
        from dipddpm.atomic import atomic_write_text

        atomic_write_text(Path(run_dir) / FILE, json.dumps(self.as_dict(), indent=1, default=list))


def point_of(cell: dict, base: dict, config: dict, cell_key: str, test_ids: list[str], axes) -> Point:
    """A design cell from its raw grid values and the canonical config it resolved to; `axes`: the
    sweep's grid axes (an axis set here but null once canonical does not apply to this cell)."""
    from dipddpm.methods import tags_of

    settings = apply(base, cell, base)
    flat = flatten(config)
    void = frozenset(a for a in axes if settings.get(a) is not None and flat.get(a) is None)
    return Point(dict(cell), settings, void, cell_key, task_of(config, test_ids), tags_of(config))


def changes(old: Design, new: Design, limit: int = 4) -> str:
    """What differs between two designs of one sweep, in a few words: base settings, axes, axis values."""
    out = []
    for k in sorted(set(old.base) | set(new.base)):
        if norm(old.base.get(k)) != norm(new.base.get(k)):
            out.append(f"{k} {_short(old.base.get(k))} -> {_short(new.base.get(k))}")
    for axis in dict.fromkeys((*old.axes, *new.axes)):
        was = {norm(v) for v in old.axis_values(axis)}
        now = {norm(v) for v in new.axis_values(axis)}
        if was != now:
            added, dropped = sorted(now - was), sorted(was - now)
            out.append(f"grid {axis}" + (f" +{', '.join(added)}" if added else "")
                       + (f" -{', '.join(dropped)}" if dropped else ""))
    if not out and old.seeds != new.seeds:
        out.append("seeds")
    text = "; ".join(out[:limit]) + (f"; and {len(out) - limit} more" if len(out) > limit else "")
    return text or "other cells"


def _short(v) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:39] + "…"


def stale_records(records: list[Record], design: Design) -> list[Record]:
    """Records of the design's sweep and profile that are no cell of it: an earlier design's."""
    return [r for r in records if (r.sweep or design.name) == design.name and (r.profile or design.profile) ==
            design.profile and not design.in_design(r)]


def load(run_dir: Path) -> Design | None:
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    try:
        return Design.from_dict(json.loads(path.read_text()), str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable sweep design ({exc}); run the sweep again to rewrite it") from None


def from_records(records: list[Record], claims=()) -> Design:
    """A design rebuilt from records alone (a run folder written before sweep.json existed).

    Exact where it can be: an axis' base value is its value in a trial whose cell does not set it.
    """
    first = records[0]
    flats = [(r, flatten(r.config)) for r in records]
    axes = tuple(dict.fromkeys(k for r in records for k in r.cell))
    base = dict(flats[0][1])
    for axis in axes:
        base[axis] = next((f.get(axis) for r, f in flats if axis not in r.cell and f.get(axis) is not None), None)
    points, seen = [], set()
    for r, flat in flats:
        if r.cell_key in seen:
            continue
        seen.add(r.cell_key)
        points.append(point_of(r.cell, base, r.config, r.cell_key, r.test_ids, axes))
    log.warning("no %s in this run folder: the design is rebuilt from the records (run the sweep again to "
                "record the sweep's own base)", FILE)
    return Design(first.sweep or "?", first.method, "", "max", first.profile or "?", base, points,
                  sorted({r.seed for r in records}), tuple(claims), None, axes)
