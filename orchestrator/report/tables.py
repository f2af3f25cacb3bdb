"""The report's tables, as data (docs/design.md, "Tables"): cells, comparisons, effects, best, early stopping,
cost, references, problems. The claims table is `claims_table.py`; rendering is `text.py` and `html.py`.

Every table is a `Tab` of plain values and `Estimate`s. The rules every table follows:
- intervals are over independent units (`stats.units`): a staged (seed, image)
  fit, a hybrid training seed; below 3 units a row shows its values, not an
  interval; no interval leaves its metric's range;
- rows never pool tasks (noise level, observation step, test images); ORACLE
  (targets from the clean image, the PSNR peak) and FLOOR (an unconditional
  sample scored against a test image) travel with every row that involves
  them, and `best` excludes both;
- pairs come from the sweep's own design (sweep.json), joined to the records;
  a comparison with no pairs says so;
- diverged trials count with their last good estimate, failed ones are left
  out, and every paired row says how many of each;
- the comparisons and effects tables carry Benjamini–Hochberg q-values over
  their rows; the claims (one family) carry family-adjusted p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dipddpm.method import FLOOR, ORACLE, Comparison

from ..common.design import Design, Point, group_of, task_of
from ..common.labels import cell_text, metric_title, short, tag_text
from ..common.metrics import bounds
from ..common.record import Record
from ..stats.intervals import Estimate, mean_ci, one_sample
from ..stats.multiplicity import bh
from ..stats.pairing import CellPair, Index, anchored_pairs, by_task, same
from ..stats.units import Units, cell_units, problem_text, unit_kind, unit_of_method


@dataclass
class Tab:
    """One table: `columns` are display titles; `keys` the stable names code reads a row by (a column given
    as (key, title) has its own key, a plain title is its own key)."""

    name: str  # stable id: a file / W&B key
    title: str
    columns: list
    rows: list[list] = field(default_factory=list)
    note: str = ""
    terminal: tuple[str, ...] = ()  # the columns a terminal shows when it cannot fit them all (default: all)
    keys: list[str] = field(default_factory=list)

    def __post_init__(self):
        pairs = [c if isinstance(c, tuple) else (c, c) for c in self.columns]
        self.keys = [k for k, _ in pairs]
        self.columns = [t for _, t in pairs]

    def dicts(self) -> list[dict]:
        """The rows by column key: what code (the summary, W&B) reads, whatever the titles say."""
        return [dict(zip(self.keys, row)) for row in self.rows]


# ---------------------------------------------------------------- labels of records

def cell_label(r: Record) -> str:
    return cell_text(r.cell) + tag_text(r.tags)


def status_text(records: list[Record]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    return " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))


def fired(records: list[Record]) -> str:
    """How often ES-WMV fired over these trials' images, 'k/n' (beside every psnr_es: when it did not
    fire, psnr_es is the last iteration's PSNR)."""
    flags = [m["es_fired"] for r in records for m in r.per_image.values() if isinstance(m.get("es_fired"), bool)]
    return f"{sum(flags)}/{len(flags)}" if flags else "—"


def fired_pair(metric: str, record_pairs: list) -> str:
    """'k/n vs k/n': how often ES-WMV fired in each arm of paired trials, for psnr_es rows ('' otherwise)."""
    if metric != "psnr_es":
        return ""
    return f"{fired([p[0] for p in record_pairs])} vs {fired([p[1] for p in record_pairs])}"


def hints(method: str):
    from dipddpm.methods import get

    return get(method).report


# ---------------------------------------------------------------- cells

@dataclass
class Cell:
    number: int
    key: str
    label: str
    records: list[Record]
    point: Point | None
    task: str
    tags: tuple

    @property
    def ok(self) -> list[Record]:
        return [r for r in self.records if r.status == "ok"]

    @property
    def oracle(self) -> bool:
        return ORACLE in self.tags

    @property
    def usable(self) -> list[Record]:
        return [r for r in self.records if r.usable]


def estimate(method: str, records: list[Record], metric: str) -> Estimate | None:
    """The metric over a set of trials' units (failed trials have none), inside the metric's range."""
    return mean_ci(cell_units(method, records, metric), bounds=bounds(metric))


def cells_of(records: list[Record], design: Design, headline: str, mode: str = "max") -> list[Cell]:
    """Grid cells, best headline first (cells without a usable trial last), numbered from 1."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.cell_key, []).append(r)

    def rank(rs):
        est = estimate(design.method, rs, headline)
        return (1, 0.0) if est is None else (0, -est.mean if mode == "max" else est.mean)

    out = []
    for i, (key, rs) in enumerate(sorted(groups.items(), key=lambda kv: rank(kv[1])), 1):
        point = design.point(key)
        r0 = rs[0]
        task = point.task if point else task_of(r0.config, list(r0.per_image))
        tags = point.tags if point else r0.tags
        out.append(Cell(i, key, cell_text(point.cell if point else r0.cell) + tag_text(tags),
                        sorted(rs, key=lambda r: r.seed), point, task, tags))
    return out


def cells_table(cells: list[Cell], method: str, headline: str) -> Tab:
    quality = [headline] + [m for m in hints(method).quality if m != headline]
    es = "psnr_es" in quality
    cols = ["#", "grid cell", "task", "trials", "units"] + [metric_title(m) for m in quality] + ["time_s"]
    if es:
        cols.insert(6 + quality.index("psnr_es"), "ES fired")
    tab = Tab("cells", f"Grid cells: mean ± 95% CI over units, {unit_kind(method, headline)} "
                       f"(ranked by {headline})", cols,
              terminal=("#", "grid cell", "trials", "units", metric_title(headline), "ES fired", "psnr", "time_s"))
    for c in cells:
        ests = [estimate(method, c.records, m) for m in quality]
        if es:
            ests.insert(quality.index("psnr_es") + 1, fired(c.usable))
        n_units = len(cell_units(method, c.records, headline))
        tab.rows.append([c.number, c.label, c.task, status_text(c.records), n_units, *ests,
                         estimate(method, c.records, "time_s")])
    tab.note = (f"A unit is one {unit_kind(method, headline)}: the values of one unit share random draws, so the "
                "interval is over units, not images. Below 3 units a cell shows its values (min–max), no interval. "
                "Diverged trials count with their last good estimate; failed ones have no values. time_s is the "
                "trial's attributed cost (a cached DDPM or DIP estimate is charged what it took to make).")
    return tab


# ---------------------------------------------------------------- paired rows

def paired_row(units: Units) -> tuple[Estimate | None, float | None, str, object, object]:
    """(Δ estimate, p, 'wins/n', mean A, mean B) of one row's units with a value (a descriptive mean: a unit of a
    failed trial is left out here, and counted in the row's diverged/failed)."""
    res = one_sample(units.valued, units.a, units.b)
    if res is None:
        return None, None, "—", None, None
    return res.diff, res.p, f"{res.wins}/{res.diff.n}", res.mean_a, res.mean_b


def _q_values(tab: Tab, p_col: str, q_col: str) -> None:
    i, j = tab.keys.index(p_col), tab.keys.index(q_col)
    ps = [r[i] if isinstance(r[i], float) else math.nan for r in tab.rows]
    if ps:
        for row, q in zip(tab.rows, bh(ps)):
            row[j] = None if math.isnan(q) else float(q)


PAIRED_COLS = ["comparison", "task", "also differs", "metric", "unit", "trial pairs", "n", "mean A", "mean B",
               "Δ = A − B", "p", "q (BH)", "A wins", "diverged/failed"]


def _arm_title(comp: Comparison, arm: str) -> str:
    if arm == "b" and comp.b_label:
        return comp.b_label
    return f"{comp.axis.split('.')[-1]}={getattr(comp, arm)}"


def comparisons_table(index: Index, method: str) -> Tab:
    h = hints(method)
    cols = PAIRED_COLS + (["ES fired (A vs B)"] if "psnr_es" in h.compared else [])
    tab = Tab("comparisons", "Each variant against its baseline, paired by seed, image and the other axes, one row "
                             "per task", cols,
              terminal=("comparison", "task", "metric", "n", "Δ = A − B", "p", "q (BH)", "ES fired (A vs B)"))
    for comp in h.comparisons:
        label = f"{_arm_title(comp, 'a')} vs {_arm_title(comp, 'b')}"
        rename = dict(comp.b_metrics)
        pairs = anchored_pairs(index.design, comp.axis, comp.a, comp.b, comp.anchor)
        if not pairs:
            tab.rows.append(_no_pairs_row(label + ": 0 pairs (no cell has this arm and its counterpart)", cols))
            continue
        for (task, tags, also), group in by_task(pairs).items():
            rps = index.record_pairs(group)
            for m in h.compared:
                from ..stats.units import pair_units

                units = pair_units(method, rps, m, rename.get(m, m))
                d, p, wins, ma, mb = paired_row(units)
                row = [label + tag_text(tags), task,
                       ", ".join(also) or "—", metric_title(m), units.kind, units.trial_pairs, len(units.valued), ma,
                       mb, d, p, None, wins, problem_text(units.problems)]
                tab.rows.append(row + ([fired_pair(m, rps)] if len(cols) > len(PAIRED_COLS) else []))
    _q_values(tab, "p", "q (BH)")
    tab.note = ("Δ's 95% t interval and two-sided p over units (n); q: Benjamini–Hochberg over this table's rows. "
                "'also differs' names grid keys that had to return to the sweep's base to find a match: not one "
                "factor alone. diverged/failed: trials of each arm (diverged ones count with their last good "
                "estimate, failed ones are left out).")
    return tab


def _no_pairs_row(label: str, cols: list[str]) -> list:
    return [label] + [None] * (len(cols) - 1)


def effects_table(index: Index, method: str, headline: str) -> Tab:
    es = ["ES fired (value vs base)"] if headline == "psnr_es" else []
    cols = ["axis", "value", "vs", "task", "also differs", "unit", "trial pairs", "n", f"mean {headline}",
            "Δ " + headline, "p", "q (BH)", "Δ ssim", "Δ time_s", "diverged/failed", *es]
    tab = Tab("effects", "Per ablation axis: each value against the sweep's base value, other axes held fixed, one "
                         "row per task", cols,
              terminal=("axis", "value", "vs", "task", "also differs", "n", "Δ " + headline, "p", "q (BH)", *es))
    design, seen = index.design, set()
    for axis in design.axes:
        base = design.base.get(axis)
        for v in design.axis_values(axis):
            if same(v, base):
                continue
            pairs = anchored_pairs(design, axis, v, base, "a")
            for (task, tags, also), group in by_task(pairs).items():
                ident = (frozenset((axis, *also)), frozenset((cp.a.cell_key, cp.b.cell_key) for cp in group))
                if ident in seen:  # a compound cell's keys all lead to the same pairs: one row
                    continue
                seen.add(ident)
                tab.rows.append(_effect_row(index, axis, v, base_label(design, axis), task, tags, also, group,
                                            headline, method))
    _q_values(tab, "p", "q (BH)")
    tab.note = ("Δ = value − base value over units, 95% t interval, two-sided p; q: Benjamini–Hochberg over this "
                "table's rows. Rows with 'also differs' moved those grid keys too (a compound cell): not one factor "
                "alone.")
    return tab


def base_label(design: Design, axis: str) -> str:
    v = design.base.get(axis)
    if v is not None:
        return short(v)
    partner = next((g for g in group_of(axis) if g != axis and design.base.get(g) is not None), None)
    return f"{partner.split('.')[-1]}={short(design.base[partner])}" if partner else "null"


def _effect_row(index: Index, axis, value, vs, task, tags, also, group: list[CellPair], headline, method) -> list:
    from ..stats.units import pair_units

    rps = index.record_pairs(group)
    h = pair_units(method, rps, headline)
    d, p, _, ma, _ = paired_row(h)
    s, t = (paired_row(pair_units(method, rps, m))[0] for m in ("ssim", "time_s"))
    row = [axis, short(value) + tag_text(tags), vs, task, ", ".join(also) or "—", h.kind, h.trial_pairs,
           len(h.valued), ma, d, p, None, s, t, problem_text(h.problems)]
    return row + ([fired_pair(headline, rps)] if headline == "psnr_es" else [])


# ---------------------------------------------------------------- best, early stopping, cost, references

def best_table(cells: list[Cell], method: str, headline: str, mode: str) -> Tab:
    extra = [m for m in ("psnr", "ssim") if m != headline]
    es = ["ES fired"] if headline == "psnr_es" else []
    cols = ["task", "rank", "#", "grid cell", "units", ("headline", headline), *es, *extra, "time_s"]
    tab = Tab("best", f"Best configurations on {headline}, per task (needs no ground truth; {ORACLE} and {FLOOR} "
                      "cells excluded)", cols)
    tasks: dict[str, list[Cell]] = {}
    excluded: dict[str, int] = {}
    for c in cells:  # cells come best first
        if estimate(method, c.records, headline) is None:
            continue
        if c.tags:
            excluded[c.task] = excluded.get(c.task, 0) + 1
        else:
            tasks.setdefault(c.task, []).append(c)
    notes = []
    for task, eligible in sorted(tasks.items(), key=lambda kv: -len(kv[1])):
        for rank, c in enumerate(eligible[:3], 1):
            est = estimate(method, c.records, headline)
            tab.rows.append([task, rank, c.number, c.label, est.n, est, *([fired(c.usable)] if es else []),
                             *(estimate(method, c.records, m) for m in extra), estimate(method, c.records, "time_s")])
        notes.append(f"{task}: #{eligible[0].number} chosen among {len(eligible)} cells"
                     + (f" ({excluded[task]} {ORACLE}/{FLOOR} cells excluded)" if excluded.get(task) else ""))
    tab.note = ("; ".join(notes) + ". The best of N cells is biased upward by the choice itself (its interval is "
                "not corrected for it): state it as a claim to test it.") if notes else ""
    return tab


def early_stopping_table(cells: list[Cell], method: str) -> Tab:
    cols = ["#", "grid cell", "units", "ES fired", "iter_es", "psnr_es", f"iter_peak [{ORACLE}]",
            f"psnr_peak [{ORACLE}]", f"gap = peak − ES [{ORACLE}]"]
    tab = Tab("early_stopping", "Early stopping: ES-WMV against the oracle PSNR peak", cols)
    for c in cells:
        if fired(c.usable) == "—":
            continue
        tab.rows.append([c.number, c.label, len(cell_units(method, c.records, "psnr_es")), fired(c.usable),
                         *(estimate(method, c.records, m) for m in ("iter_es", "psnr_es", "iter_peak", "psnr_peak",
                                                                     "es_gap_db"))])
    tab.note = "When ES-WMV does not fire, the ES point is the last iteration."
    return tab


def trial_values(records: list[Record], name: str) -> list[float]:
    return [v for r in records for v in [r.metrics.get(name)]
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def cost_table(cells: list[Cell], method: str, headline: str) -> Tab:
    h = hints(method)
    parts, detail = h.cost_parts, h.cost_detail
    cols = ["#", "grid cell", headline, "trials", "time_s (attributed)", *parts, "other_s", *detail,
            "wall_s (this trial)", "cache hits"]
    tab = Tab("cost", "Time against quality, per trial: time_s = " + " + ".join(parts) + " + other_s (a cache hit is "
                      "charged what its artefact cost)", cols)
    for c in cells:
        trials = [r for r in c.usable if isinstance(r.metrics.get("time_s"), (int, float))]
        others = [r.metrics["time_s"] - sum((r.metrics.get(p) or 0.0) for p in parts) for r in trials]
        hits = [bool(v) for r in trials for k, v in r.metrics.items() if k.startswith("cache_hit_") and v is not None]
        tab.rows.append([c.number, c.label, estimate(method, c.records, headline), len(trials),
                         mean_ci(trial_values(trials, "time_s")),
                         *(mean_ci(trial_values(trials, p)) for p in parts), mean_ci(others),
                         *(mean_ci(trial_values(trials, d)) for d in detail), mean_ci(trial_values(trials, "wall_s")),
                         f"{sum(hits)}/{len(hits)}" if hits else "—"])
    tab.note = ("Every time is per trial (a trial's images summed), over its trials: the parts add up to time_s. "
                "ms_per_iter is per DIP iteration; ddpm_fit_cpu_s is the training's process CPU time, which a trial "
                "running beside it moves far less than wall time; restore_cpu_s is one restoration of one image in "
                "CPU seconds (its DIP fit, charged when cached, and its reverse process: the DDPM's training apart) "
                "and reverse_steps its UNet calls.")
    return tab


REF_METRICS = ("psnr_observation", "psnr_tv", "psnr_nlm", "psnr_cbm3d", "ssim_observation", "ssim_tv", "ssim_nlm",
               "ssim_cbm3d")
REF_COLUMNS = ("observation psnr", "TV psnr", "NL-means psnr", "CBM3D psnr", "observation ssim", "TV ssim",
               "NL-means ssim", "CBM3D ssim")


def references_table(records: list[Record], method: str) -> Tab:
    cols = ["task", "observations", *zip(REF_METRICS, REF_COLUMNS)]
    tab = Tab("references", "Classical references on the same observations (each observation once)", cols)
    tasks: dict[str, dict] = {}
    for r in records:
        if not r.usable:
            continue
        task = task_of(r.config, r.test_ids)
        for img, m in r.per_image.items():
            if "psnr_observation" in m:  # the same seed, image and σ is the same observation
                tasks.setdefault(task, {})[(img, r.seed, round(m.get("noise_std_255") or 0, 4))] = (r.seed, img, m)
    per_image = unit_of_method(method) == "image"
    for task in sorted(tasks):
        obs = list(tasks[task].values())
        row = [task, len(obs)]
        for k in REF_METRICS:  # one observation per (seed, image): a staged unit; a hybrid seed averages images
            row.append(mean_ci(_ref_units(per_image, obs, k), bounds=bounds(k)))
        tab.rows.append(row)
    status = {r.extra.get("references", {}).get("cbm3d") for r in records if r.usable} - {None}
    cbm3d = "; ".join(sorted(status)) if status else "not recorded (trials from before it was added)"
    tab.note = (f"Intervals over units ({unit_kind(method, 'psnr')}). TV and NL-means estimate σ from the image; "
                f"CBM3D is given the known σ, as DIP papers run it. CBM3D: {cbm3d}.")
    return tab


def _ref_units(per_image: bool, obs: list, key: str) -> list[float]:
    by_unit: dict = {}
    for seed, img, m in obs:
        if isinstance(m.get(key), (int, float)):
            by_unit.setdefault((seed, img) if per_image else (seed,), []).append(m[key])
    return [sum(v) / len(v) for v in by_unit.values()]


def problems_table(records: list[Record]) -> Tab:
    tab = Tab("problems", "Trials that did not finish ok, and records with values left out",
              ["trial_key", "grid cell", "seed", "status", "error"])
    for r in records:
        if r.status != "ok":
            tab.rows.append([r.trial_key, cell_label(r), r.seed, r.status, r.error or ""])
        if r.damaged:  # a string or a NaN where a number belongs: that value is left out, the rest counts
            tab.rows.append([r.trial_key, cell_label(r), r.seed, f"{r.status}, damaged",
                             "values left out (not finite numbers): " + ", ".join(r.damaged[:6])])
    return tab


# ---------------------------------------------------------------- one method's tables

@dataclass
class Section:
    """One method's tables (a run holds one method in practice; a mixed file gets one section each)."""

    method: str
    headline: str
    records: list[Record]
    cells: list[Cell]
    index: Index
    tables: list[Tab]
    design: Design
    claim_rows: list = field(default_factory=list)
