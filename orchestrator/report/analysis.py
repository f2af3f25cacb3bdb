"""Comparison tables from a finished sweep's records (DESIGN §8, §13), as data.

Every table is a `Tab` of plain values and `Estimate`s, rendered elsewhere
(terminal, Markdown, CSV, JSON, HTML, W&B). The rules every table follows:
- intervals are over independent units (`units.py`): a staged (seed, image)
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
  their rows; the claims (one family) carry Holm-adjusted p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dipddpm.errors import ConfigError

from ..common.design import FLOOR, ORACLE, Design, Point
from ..common.metrics import DEFAULT_METRIC, is_oracle_metric
from .claims_table import claim_rows, claims_table
from .pairing import CellPair, Index, anchored_pairs, by_task, same
from .stats import Estimate, bh, mean_ci, one_sample
from .tabs import (Tab, bounds, cell_key, cell_label, cell_text, fired, fired_pair, metric_title, ok,  # noqa: F401
                   oracle_record, record_tags, short, status_text, tag_text, usable)
from .units import Units, cell_units, pair_units, unit_kind


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: cells with `axis == value`, read through `rename` (psnr -> psnr_dip)."""

    value: str
    rename: tuple = ()
    label: str = ""

    def metric(self, name: str) -> str:
        return dict(self.rename).get(name, name)

    def title(self, axis: str) -> str:
        return self.label or f"{axis.split('.')[-1]}={self.value}"


@dataclass(frozen=True)
class Comparison:
    axis: str
    a: Arm
    b: Arm
    anchor: str  # "a" | "b": the arm whose cells are matched


DIP_ALONE = Arm("dip", (("psnr", "psnr_dip"), ("ssim", "ssim_dip"), ("time_s", "dip_s")), "DIP alone")
COMPARISONS = {
    "staged": [Comparison("staged.variant", Arm("staged"), Arm("baseline"), "b")],
    "hybrid": [
        Comparison("hybrid.start", Arm("dip"), Arm("observation"), "b"),
        Comparison("hybrid.start", Arm("dip"), Arm("noise"), "b"),
        Comparison("hybrid.start", Arm("observation"), Arm("noise"), "b"),
        Comparison("hybrid.start", Arm("dip"), DIP_ALONE, "a"),
        Comparison("hybrid.start", Arm("observation"), DIP_ALONE, "a"),
    ],
}
COMPARED = {"staged": ("psnr_es", "ssim_es", "psnr_peak", "time_s"), "hybrid": ("psnr", "ssim", "time_s")}
QUALITY = {"staged": ("psnr_es", "ssim_es", "psnr_peak", "psnr", "ssim"), "hybrid": ("psnr", "ssim", "psnr_dip")}


# ---------------------------------------------------------------- cells

@dataclass
class Cell:
    number: int
    key: str
    label: str
    records: list[dict]
    point: Point | None
    task: str
    tags: tuple

    @property
    def ok(self) -> list[dict]:
        return ok(self.records)

    @property
    def oracle(self) -> bool:
        return ORACLE in self.tags

    @property
    def usable(self) -> list[dict]:
        return usable(self.records)


def estimate(method: str, records: list[dict], metric: str) -> Estimate | None:
    """The metric over a set of trials' units (failed trials have none), inside the metric's range."""
    return mean_ci(cell_units(method, records, metric), bounds=bounds(metric))


def cells_of(records: list[dict], design: Design, headline: str, mode: str = "max") -> list[Cell]:
    """Grid cells, best headline first (cells without a usable trial last), numbered from 1."""
    from ..common.design import task_of

    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(cell_key(r), []).append(r)

    def rank(rs):
        est = estimate(design.method, rs, headline)
        return (1, 0.0) if est is None else (0, -est.mean if mode == "max" else est.mean)

    out = []
    for i, (key, rs) in enumerate(sorted(groups.items(), key=lambda kv: rank(kv[1])), 1):
        point = design.point(key)
        r0 = rs[0]
        task = point.task if point else task_of(r0.get("config") or {}, list(r0.get("per_image") or {}))
        tags = point.tags if point else record_tags(r0)
        out.append(Cell(i, key, cell_text(point.cell if point else r0.get("cell") or {}) + tag_text(tags),
                        sorted(rs, key=lambda r: r.get("seed", 0)), point, task, tags))
    return out


def cells_table(cells: list[Cell], method: str, headline: str) -> Tab:
    quality = [headline] + [m for m in QUALITY[method] if m != headline]
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
    """(Δ estimate, p, 'wins/n', mean A, mean B) of one row's units."""
    res = one_sample(units.d, units.a, units.b)
    if res is None:
        return None, None, "—", None, None
    return res.diff, res.p, f"{res.wins}/{res.diff.n}", res.mean_a, res.mean_b


def _q_values(tab: Tab, p_col: str, q_col: str) -> None:
    i, j = tab.columns.index(p_col), tab.columns.index(q_col)
    ps = [r[i] if isinstance(r[i], float) else math.nan for r in tab.rows]
    if ps:
        for row, q in zip(tab.rows, bh(ps)):
            row[j] = None if math.isnan(q) else float(q)


PAIRED_COLS = ["comparison", "task", "also differs", "metric", "unit", "trial pairs", "n", "mean A", "mean B",
               "Δ = A − B", "p", "q (BH)", "A wins", "diverged/failed"]


def comparisons_table(index: Index, method: str) -> Tab:
    cols = PAIRED_COLS + (["ES fired (A vs B)"] if "psnr_es" in COMPARED[method] else [])
    tab = Tab("comparisons", "Each variant against its baseline, paired by seed, image and the other axes, one row "
                             "per task", cols,
              terminal=("comparison", "task", "metric", "n", "Δ = A − B", "p", "q (BH)", "ES fired (A vs B)"))
    for comp in COMPARISONS.get(method, []):
        label = f"{comp.a.title(comp.axis)} vs {comp.b.title(comp.axis)}"
        pairs = anchored_pairs(index.design, comp.axis, comp.a.value, comp.b.value, comp.anchor)
        if not pairs:
            tab.rows.append(_no_pairs_row(label + ": 0 pairs (no cell has this arm and its counterpart)", cols))
            continue
        for (task, tags, also), group in by_task(pairs).items():
            rps = index.record_pairs(group)
            for m in COMPARED[method]:
                units = pair_units(method, rps, comp.a.metric(m), comp.b.metric(m))
                d, p, wins, ma, mb = paired_row(units)
                row = [label + tag_text(tags), task,
                       ", ".join(also) or "—", metric_title(m), units.kind, units.trial_pairs, units.n, ma, mb, d, p,
                       None, wins, units.problem_text()]
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
    from ..common.design import group_of

    v = design.base.get(axis)
    if v is not None:
        return short(v)
    partner = next((g for g in group_of(axis) if g != axis and design.base.get(g) is not None), None)
    return f"{partner.split('.')[-1]}={short(design.base[partner])}" if partner else "null"


def _effect_row(index: Index, axis, value, vs, task, tags, also, group: list[CellPair], headline, method) -> list:
    rps = index.record_pairs(group)
    h = pair_units(method, rps, headline)
    d, p, _, ma, _ = paired_row(h)
    s, t = (paired_row(pair_units(method, rps, m))[0] for m in ("ssim", "time_s"))
    row = [axis, short(value) + tag_text(tags), vs, task, ", ".join(also) or "—", h.kind, h.trial_pairs, h.n, ma, d,
           p, None, s, t, h.problem_text()]
    return row + ([fired_pair(headline, rps)] if headline == "psnr_es" else [])


# ---------------------------------------------------------------- best, early stopping, cost, references

def best_table(cells: list[Cell], method: str, headline: str, mode: str) -> Tab:
    extra = [m for m in ("psnr", "ssim") if m != headline]
    es = ["ES fired"] if headline == "psnr_es" else []
    cols = ["task", "rank", "#", "grid cell", "units", headline, *es, *extra, "time_s"]
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


COST_PARTS = {"staged": ("dip_s",), "hybrid": ("train_s", "dip_s", "sample_s")}
COST_DETAIL = {"staged": ("ms_per_iter",), "hybrid": ("ddpm_fit_s", "train_data_s", "ddpm_fit_cpu_s")}


def trial_values(records: list[dict], name: str) -> list[float]:
    return [v for r in records for v in [(r.get("metrics") or {}).get(name)]
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def cost_table(cells: list[Cell], method: str, headline: str) -> Tab:
    parts, detail = COST_PARTS[method], COST_DETAIL[method]
    cols = ["#", "grid cell", headline, "trials", "time_s (attributed)", *parts, "other_s", *detail,
            "wall_s (this trial)", "cache hits"]
    tab = Tab("cost", "Time against quality, per trial: time_s = " + " + ".join(parts) + " + other_s (a cache hit is "
                      "charged what its artefact cost)", cols)
    for c in cells:
        trials = [r for r in c.usable if (r.get("metrics") or {}).get("time_s") is not None]
        others = [r["metrics"]["time_s"] - sum((r["metrics"].get(p) or 0.0) for p in parts) for r in trials]
        hits = [bool(v) for r in trials for k, v in r["metrics"].items() if k.startswith("cache_hit_") and v is not None]
        tab.rows.append([c.number, c.label, estimate(method, c.records, headline), len(trials),
                         mean_ci(trial_values(trials, "time_s")),
                         *(mean_ci(trial_values(trials, p)) for p in parts), mean_ci(others),
                         *(mean_ci(trial_values(trials, d)) for d in detail), mean_ci(trial_values(trials, "wall_s")),
                         f"{sum(hits)}/{len(hits)}" if hits else "—"])
    tab.note = ("Every time is per trial (a trial's images summed), over its trials: the parts add up to time_s. "
                "ms_per_iter is per DIP iteration; ddpm_fit_cpu_s is the training's process CPU time, which a trial "
                "running beside it moves far less than wall time.")
    return tab


REF_METRICS = ("psnr_observation", "psnr_tv", "psnr_nlm", "psnr_cbm3d", "ssim_observation", "ssim_tv", "ssim_nlm",
               "ssim_cbm3d")


def references_table(records: list[dict], method: str) -> Tab:
    cols = ["task", "observations", "observation psnr", "TV psnr", "NL-means psnr", "CBM3D psnr", "observation ssim",
            "TV ssim", "NL-means ssim", "CBM3D ssim"]
    tab = Tab("references", "Classical references on the same observations (each observation once)", cols)
    from ..common.design import task_of

    tasks: dict[str, dict] = {}
    for r in usable(records):
        task = task_of(r.get("config") or {}, [i.get("id") for i in (r.get("images") or {}).get("test", [])]
                       or list(r.get("per_image") or {}))
        for img, m in (r.get("per_image") or {}).items():
            if "psnr_observation" in m:  # the same seed, image and σ is the same observation
                tasks.setdefault(task, {})[(img, r.get("seed"), round(m.get("noise_std_255", 0), 4))] = \
                    (r.get("seed"), img, m)
    for task in sorted(tasks):
        obs = list(tasks[task].values())
        row = [task, len(obs)]
        for k in REF_METRICS:  # one observation per (seed, image): a staged unit; a hybrid seed averages images
            row.append(mean_ci(_ref_units(method, obs, k), bounds=bounds(k)))
        tab.rows.append(row)
    status = {(r.get("references") or {}).get("cbm3d") for r in usable(records)} - {None}
    cbm3d = "; ".join(sorted(status)) if status else "not recorded (trials from before it was added)"
    tab.note = (f"Intervals over units ({unit_kind(method, 'psnr')}). TV and NL-means estimate σ from the image; "
                f"CBM3D is given the known σ, as DIP papers run it. CBM3D: {cbm3d}.")
    return tab


def _ref_units(method: str, obs: list, key: str) -> list[float]:
    by_unit: dict = {}
    for seed, img, m in obs:
        if isinstance(m.get(key), (int, float)):
            by_unit.setdefault((seed, img) if method == "staged" else (seed,), []).append(m[key])
    return [sum(v) / len(v) for v in by_unit.values()]


def problems_table(records: list[dict]) -> Tab:
    tab = Tab("problems", "Trials that did not finish ok", ["trial_key", "grid cell", "seed", "status", "error"])
    for r in records:
        if r.get("status") != "ok":
            tab.rows.append([r["trial_key"], cell_label(r), r.get("seed"), r.get("status"), r.get("error") or ""])
    return tab


# ---------------------------------------------------------------- the whole report

@dataclass
class Section:
    """One method's tables (a run holds one method in practice; a mixed file gets one section each)."""

    method: str
    headline: str
    records: list[dict]
    cells: list[Cell]
    index: Index
    tables: list[Tab]
    design: Design
    claim_rows: list = field(default_factory=list)


def headline_for(method: str, metric: str | None) -> str:
    from dipddpm.metrics import check_metric_name

    name = check_metric_name(metric, method, "--metric") if metric else DEFAULT_METRIC[method]
    if is_oracle_metric(name):
        raise ConfigError(f"--metric: {name} is an {ORACLE} figure (it needs the clean image); "
                          f"choose one reachable without ground truth, e.g. {DEFAULT_METRIC[method]}")
    return name


def build_section(records: list[dict], design: Design, metric: str | None = None, mode: str = "max",
                  history: list[dict] | None = None) -> Section:
    method = design.method
    headline = headline_for(method, metric)
    index = Index(records, design)
    cells = cells_of(records, design, headline, mode)
    rows = claim_rows(design, index, headline, history if history is not None else records)
    tables = [claims_table(rows, design)] if design.claims else []
    tables += [cells_table(cells, method, headline), comparisons_table(index, method),
               effects_table(index, method, headline), best_table(cells, method, headline, mode)]
    if method == "staged":
        tables.append(early_stopping_table(cells, method))
    tables += [cost_table(cells, method, headline), references_table(records, method), problems_table(records)]
    return Section(method, headline, records, cells, index, tables, design, rows)


def build_sections(records: list[dict], design: Design, metric: str | None = None, mode: str = "max",
                   history: list[dict] | None = None) -> list[Section]:
    methods = list(dict.fromkeys(r.get("method") for r in records))
    unknown = [m for m in methods if m not in COMPARISONS]
    if unknown:
        raise ConfigError(f"results.jsonl: method {unknown[0]!r} is not one of staged | hybrid")
    mine = [r for r in records if r.get("method") == design.method]
    return [build_section(mine, design, metric, mode, history)] if mine else []
