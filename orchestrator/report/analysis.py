"""Comparison tables from a finished sweep's records (DESIGN §8), as data.

Every table is a `Tab` of plain values and `Estimate`s, rendered elsewhere
(terminal, Markdown, CSV, JSON, HTML, W&B). Statistics use the ok records
only; diverged and failed trials are counted in the status column and listed
in the `problems` table. The unit of a PSNR/SSIM sample is one test image of
one trial (seeds × images); times are per trial.

Oracle figures (anything that needs the clean image to choose: the PSNR peak,
`staged.targets: clean`) carry ORACLE in their column or row label, and the
best configuration is chosen on a figure a user can reach without ground truth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from dipddpm.errors import ConfigError

from ..common.metrics import DEFAULT_METRIC, is_oracle_metric
from .pairing import Index, flatten, group_of, paired_values, same
from .stats import Estimate, Paired, mean_ci, paired

ORACLE = "ORACLE"


@dataclass
class Tab:
    name: str  # stable id: a file / W&B key
    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    note: str = ""
    terminal: tuple[str, ...] = ()  # the columns a terminal shows when it cannot fit them all (default: all)


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: trials with `axis == value`, read through `rename` (psnr -> psnr_dip)."""

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
    anchor: str  # "a" | "b": the arm whose trials are matched (each used once)


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


# ---------------------------------------------------------------- records and samples

def metric_title(name: str) -> str:
    return f"{name} [{ORACLE}]" if is_oracle_metric(name) else name


def oracle_record(r: dict) -> bool:
    return ((r.get("config") or {}).get("staged") or {}).get("targets") == "clean"


def cell_key(r: dict) -> str:
    if r.get("cell_key"):
        return r["cell_key"]
    cfg = dict(r.get("config") or {})
    cfg.pop("seed", None)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]


def short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ",".join(short(x) for x in v) + "]"
    return "null" if v is None else str(v)


FLOOR = "FLOOR: an unconditional sample scored against an unrelated test image"


def floor_record(r: dict) -> bool:
    """start=noise (seed 004's "without DIP"): its PSNR compares a sample with an image it never saw."""
    return ((r.get("config") or {}).get("hybrid") or {}).get("start") == "noise"


def cell_label(r: dict) -> str:
    cell = r.get("cell") or {}
    label = ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in cell.items()) or "base"
    return label + (f" [{ORACLE}: clean targets]" if oracle_record(r) else "") + (f" [{FLOOR}]" if floor_record(r)
                                                                                   else "")


def samples(r: dict, name: str) -> list:
    """Per-image values of `name` when the trial has them per image, else the trial's one value."""
    per = r.get("per_image") or {}
    if per and any(name in m for m in per.values()):
        return [m.get(name) for m in per.values()]
    v = (r.get("metrics") or {}).get(name)
    return [] if v is None else [v]


def pooled(records: list[dict], name: str) -> Estimate | None:
    return mean_ci([v for r in records for v in samples(r, name)])


def fired(records: list[dict]) -> str:
    """How often ES-WMV fired over these trials' images, 'k/n' (beside every psnr_es: when it did not
    fire, psnr_es is the last iteration's PSNR)."""
    flags = [bool(v) for r in records for v in samples(r, "es_fired") if v is not None]
    return f"{sum(flags)}/{len(flags)}" if flags else "—"


def fired_pair(metric: str, pairs: list) -> str:
    """'k/n vs k/n': how often ES-WMV fired in each arm of paired trials, for psnr_es rows ('' otherwise)."""
    return f"{fired([p[0] for p in pairs])} vs {fired([p[1] for p in pairs])}" if metric == "psnr_es" else ""


def ok(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def status_text(records: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return " · ".join(f"{n} {s}" for s, n in sorted(counts.items()))


@dataclass
class Cell:
    number: int
    key: str
    label: str
    records: list[dict]
    oracle: bool

    @property
    def ok(self) -> list[dict]:
        return ok(self.records)


def cells_of(records: list[dict], headline: str, mode: str = "max") -> list[Cell]:
    """Grid cells, best headline first (cells without an ok trial last), numbered from 1."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(cell_key(r), []).append(r)

    def rank(rs):
        est = pooled(ok(rs), headline)
        if est is None:
            return (1, 0.0)
        return (0, -est.mean if mode == "max" else est.mean)

    ordered = sorted(groups.items(), key=lambda kv: rank(kv[1]))
    return [Cell(i, k, cell_label(rs[0]), sorted(rs, key=lambda r: r.get("seed", 0)), any(map(oracle_record, rs)))
            for i, (k, rs) in enumerate(ordered, 1)]


# ---------------------------------------------------------------- tables

def cells_table(cells: list[Cell], method: str, headline: str) -> Tab:
    quality = [headline] + [m for m in QUALITY[method] if m != headline]
    es = "psnr_es" in quality
    cols = ["#", "grid cell", "trials", "images"] + [metric_title(m) for m in quality] + ["time_s"]
    if es:
        cols.insert(5 + quality.index("psnr_es"), "ES fired")
    tab = Tab("cells", f"Grid cells: mean ± 95% CI over seeds × images (ranked by {headline})", cols)
    for c in cells:
        images = sum(len(r.get("per_image") or {}) or 1 for r in c.ok)
        values = [pooled(c.ok, m) for m in quality]
        if es:
            values.insert(quality.index("psnr_es") + 1, fired(c.ok))
        tab.rows.append([c.number, c.label, status_text(c.records), images] + values + [pooled(c.ok, "time_s")])
    tab.note = ("time_s is the trial's attributed cost: a cached DDPM or DIP estimate is charged what it took to make. "
                "No ± means one sample (one seed, one image).")
    return tab


def task_label(r: dict) -> str:
    """The restoration task a trial solved: its test images, size and degradation (scores compare within one)."""
    cfg = r.get("config") or {}
    deg, data = cfg.get("degradation") or {}, cfg.get("data") or {}
    noise = f"σ={255 * deg['noise_std']:.4g}/255" if deg.get("noise_std") else f"t_obs={deg.get('t_obs')}"
    images = ",".join(data.get("images") or []) or f"{data.get('root')}/{data.get('glob')}"
    return f"{noise} · {images} · {data.get('size')} px"


def best_table(cells: list[Cell], headline: str, mode: str) -> Tab:
    extra = [m for m in ("psnr", "ssim") if m != headline]
    es = ["ES fired"] if headline == "psnr_es" else []
    cols = ["task", "rank", "#", "grid cell", "n", headline, *es, *extra, "time_s"]
    tab = Tab("best", f"Best configurations on {headline}, per task (needs no ground truth; {ORACLE} cells "
                      "excluded)", cols)
    tasks: dict[str, list[Cell]] = {}
    for c in cells:  # cells come best first
        if not c.oracle and pooled(c.ok, headline) is not None:
            tasks.setdefault(task_label(c.ok[0]), []).append(c)
    notes = []
    for task, eligible in sorted(tasks.items(), key=lambda kv: -len(kv[1])):
        for rank, c in enumerate(eligible[:3], 1):
            est = pooled(c.ok, headline)
            tab.rows.append([task, rank, c.number, c.label, est.n, est, *([fired(c.ok)] if es else []),
                             *(pooled(c.ok, m) for m in extra), pooled(c.ok, "time_s")])
        if len(eligible) >= 2:
            notes.append(_runner_up_note(eligible[0], eligible[1], headline))
    tab.note = " ".join(notes)
    return tab


def _runner_up_note(best: Cell, second: Cell, headline: str) -> str:
    a, b = pooled(best.ok, headline), pooled(second.ok, headline)
    if a.half is None or b.half is None:
        return f"#{best.number} leads #{second.number} by {a.mean - b.mean:+.2f} on one sample each: not a finding yet."
    overlap = a.low <= b.high and b.low <= a.high
    return (f"#{best.number} leads #{second.number} by {a.mean - b.mean:+.2f}; their 95% intervals "
            + ("overlap: not distinguishable at this sample size." if overlap else "do not overlap."))


def _pairs(index: Index, comp: Comparison, records: list[dict]):
    """(record for a, record for b, grid-cell keys also moved) for every matched pair, each anchor once."""
    anchor_arm, other_arm = (comp.a, comp.b) if comp.anchor == "a" else (comp.b, comp.a)
    seen = set()
    for r in ok(records):
        if not same(flatten(r["config"]).get(comp.axis), anchor_arm.value):
            continue
        m = index.counterpart(r, {comp.axis: other_arm.value})
        if m is None or m.record.get("status") != "ok":
            continue
        ra, rb = (r, m.record) if comp.anchor == "a" else (m.record, r)
        if (ra["trial_key"], rb["trial_key"]) in seen:
            continue
        seen.add((ra["trial_key"], rb["trial_key"]))
        yield ra, rb, m.also_moved


def _paired_rows(pairs: list, label: str, also: str, metrics, arm_a: Arm, arm_b: Arm, oracle: bool) -> list[list]:
    es = "psnr_es" in metrics
    rows = []
    for m in metrics:
        xs, ys = [], []
        for ra, rb, _ in pairs:
            a, b = paired_values(ra, rb, arm_a.metric(m), arm_b.metric(m))
            xs += a
            ys += b
        res = paired(xs, ys)
        if res is None:
            continue
        tag = f" [{ORACLE}]" if oracle or is_oracle_metric(m) else ""
        rows.append([label + tag, also or "—", metric_title(m), len(pairs), res.diff.n, res.mean_a, res.mean_b,
                     res.diff, res.p, f"{res.wins}/{res.diff.n}"] + ([fired_pair(m, pairs)] if es else []))
    return rows


def _prefer_exact(groups: dict[tuple, list]) -> list[tuple[tuple, list]]:
    """Pairs grouped by the cell keys also moved; when other-axes-fixed pairs exist, only those."""
    if () in groups:
        return [((), groups[()])]
    return sorted(groups.items(), key=lambda kv: (len(kv[0]), kv[0]))


PAIRED_COLS = ["comparison", "also differs", "metric", "trial pairs", "n", "mean A", "mean B", "Δ = A − B", "p",
               "A wins"]


def comparisons_table(records: list[dict], index: Index, method: str) -> Tab:
    cols = PAIRED_COLS + (["ES fired (A vs B)"] if "psnr_es" in COMPARED[method] else [])
    tab = Tab("comparisons", "Each variant against its baseline, paired by seed, image and the other axes", cols)
    for comp in COMPARISONS.get(method, []):
        groups: dict[tuple, list] = {}
        for pair in _pairs(index, comp, records):
            groups.setdefault(pair[2], []).append(pair)
        label = f"{comp.a.title(comp.axis)} vs {comp.b.title(comp.axis)}"
        for also, pairs in _prefer_exact(groups):
            oracle = any(oracle_record(r) for pair in pairs for r in pair[:2])
            tab.rows += _paired_rows(pairs, label, ", ".join(also), COMPARED[method], comp.a, comp.b, oracle)
    tab.note = ("Paired t-test, two-sided; Δ's 95% CI over matched (seed, image) pairs. 'also differs' names "
                "grid-cell keys that had to return to the sweep's base to find a match: those pairs are not "
                "other-axes-fixed, read them apart.")
    return tab


def axes_of(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in records for k in (r.get("cell") or {})))


def effects_table(records: list[dict], index: Index, headline: str) -> Tab:
    cols = ["axis", "value", "vs", "also differs", "trial pairs", "n", f"mean {headline}", "Δ " + headline, "p",
            "Δ ssim", "Δ time_s"] + (["ES fired (value vs base)"] if headline == "psnr_es" else [])
    tab = Tab("effects", "Per ablation axis: each value against the base value, other axes held fixed", cols)
    seen: set = set()
    for axis in axes_of(records):
        ref = index.ref.get(axis)
        # an axis' values are those a grid cell set (a null that only means "does not apply" is no value)
        values = {json.dumps(r["cell"][axis], sort_keys=True): r["cell"][axis]
                  for r in ok(records) if axis in (r.get("cell") or {})}
        for v in values.values():
            if same(v, ref):
                continue
            groups: dict[tuple, list] = {}
            for pair in _pairs(index, Comparison(axis, Arm(v), Arm(ref), "a"), records):
                groups.setdefault(pair[2], []).append(pair)
            for also, pairs in _prefer_exact(groups):
                ident = (frozenset((axis, *also)), frozenset((a["trial_key"], b["trial_key"]) for a, b, _ in pairs))
                if ident not in seen:  # a compound cell's keys all lead to the same pairs: one row
                    seen.add(ident)
                    tab.rows.append(_effect_row(axis, v, ref_label(axis, index), ", ".join(also), pairs, headline))
    tab.note = ("Δ = value − base value over matched pairs; p from a paired t-test. Rows with 'also differs' "
                "moved those grid-cell keys too (a compound cell): not one factor alone.")
    return tab


def ref_label(axis: str, index: Index) -> str:
    ref = index.ref.get(axis)
    if ref is not None:
        return short(ref)
    group = group_of(axis) or ()
    partner = next((g for g in group if g != axis and index.ref.get(g) is not None), None)
    return f"{partner.split('.')[-1]}={short(index.ref[partner])}" if partner else "null"


def _effect_row(axis: str, value, vs: str, also: str, pairs: list, headline: str) -> list:
    def diff(m: str) -> Paired | None:
        xs, ys = [], []
        for ra, rb, _ in pairs:
            a, b = paired_values(ra, rb, m, m)
            xs += a
            ys += b
        return paired(xs, ys) if xs else None

    h, s, t = diff(headline), diff("ssim"), diff("time_s")
    oracle = any(oracle_record(ra) for ra, _, _ in pairs)
    label = short(value) + (f" [{ORACLE}]" if oracle else "")
    row = [axis, label, vs, also or "—", len(pairs), h.diff.n if h else 0, h.mean_a if h else None,
           h.diff if h else None, h.p if h else None, s.diff if s else None, t.diff if t else None]
    if headline == "psnr_es":
        row.append(fired_pair(headline, pairs))
    return row


def early_stopping_table(cells: list[Cell]) -> Tab:
    cols = ["#", "grid cell", "n", "ES fired", "iter_es", "psnr_es", f"iter_peak [{ORACLE}]",
            f"psnr_peak [{ORACLE}]", f"gap = peak − ES [{ORACLE}]"]
    tab = Tab("early_stopping", "Early stopping: ES-WMV against the oracle PSNR peak", cols)
    for c in cells:
        fired = [v for r in c.ok for v in samples(r, "es_fired")]
        if not fired:
            continue
        tab.rows.append([c.number, c.label, len(fired), f"{sum(bool(v) for v in fired)}/{len(fired)}",
                         pooled(c.ok, "iter_es"), pooled(c.ok, "psnr_es"), pooled(c.ok, "iter_peak"),
                         pooled(c.ok, "psnr_peak"), pooled(c.ok, "es_gap_db")])
    tab.note = "When ES-WMV does not fire, the ES point is the last iteration."
    return tab


COST_PARTS = {"staged": ("dip_s", "ms_per_iter", "ref_s"),
              "hybrid": ("train_s", "ddpm_fit_s", "train_data_s", "dip_s", "sample_s", "ref_s")}


def cost_table(cells: list[Cell], method: str, headline: str) -> Tab:
    parts = COST_PARTS[method]
    cols = ["#", "grid cell", headline, "time_s (attributed)", *parts, "wall_s (this trial)", "cache hits"]
    tab = Tab("cost", "Time against quality (attributed costs: a cache hit is charged what the artefact cost)", cols)
    for c in cells:
        hits = [bool(v) for r in c.ok for k, v in (r.get("metrics") or {}).items() if k.startswith("cache_hit_")]
        tab.rows.append([c.number, c.label, pooled(c.ok, headline), pooled(c.ok, "time_s"),
                         *(pooled(c.ok, p) for p in parts), pooled(c.ok, "wall_s"),
                         f"{sum(hits)}/{len(hits)}" if hits else "—"])
    return tab


def references_table(records: list[dict]) -> Tab:
    cols = ["noise_std (/255)", "observations", "observation psnr", "TV psnr", "NL-means psnr", "observation ssim",
            "TV ssim", "NL-means ssim"]
    tab = Tab("references", "Classical references on the same observations (each observation once)", cols)
    levels: dict[float, dict] = {}
    for r in ok(records):
        nominal = (r.get("config") or {}).get("degradation", {}).get("noise_std")
        for img, m in (r.get("per_image") or {}).items():
            if "psnr_observation" in m:  # σ as resolved on the trial's schedule identifies the observation
                level = round(255 * nominal, 1) if nominal else round(m.get("noise_std_255", 0), 1)
                levels.setdefault(level, {})[(img, r.get("seed"), round(m.get("noise_std_255", 0), 4))] = m
    for level in sorted(levels):
        ms = list(levels[level].values())
        tab.rows.append([level, len(ms), *(mean_ci([m.get(k) for m in ms]) for k in
                         ("psnr_observation", "psnr_tv", "psnr_nlm", "ssim_observation", "ssim_tv", "ssim_nlm"))])
    return tab


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


def headline_for(method: str, metric: str | None) -> str:
    from dipddpm.metrics import check_metric_name

    name = check_metric_name(metric, method, "--metric") if metric else DEFAULT_METRIC[method]
    if is_oracle_metric(name):
        raise ConfigError(f"--metric: {name} is an {ORACLE} figure (it needs the clean image); "
                          f"choose one reachable without ground truth, e.g. {DEFAULT_METRIC[method]}")
    return name


def claims_table(records: list[dict], index: Index, headline: str, claims) -> Tab:
    from .claims import evaluate

    cols = ["claim", "metric", "A", "B", "trial pairs", "n", "mean A", "mean B", "Δ = A − B", "p", "expected",
            "verdict", "ES fired (A vs B)"]
    tab = Tab("claims", "Claims: each hypothesis the sweep states, tested on the pairs it ran", cols,
              terminal=("claim", "metric", "n", "Δ = A − B", "p", "verdict", "ES fired (A vs B)"))
    for claim in claims:
        got = evaluate(claim, records, index, headline)
        res = got["result"]
        oracle = is_oracle_metric(got["metric"]) or any(oracle_record(r) for pair in got["pairs"] for r in pair)
        arm = lambda sel: ", ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in sel.items())  # noqa: E731
        tab.rows.append([claim.text + (f" [{ORACLE}]" if oracle else ""), metric_title(got["metric"]),
                         arm(claim.a), arm(claim.b), len(got["pairs"]), res.diff.n if res else 0,
                         res.mean_a if res else None, res.mean_b if res else None, res.diff if res else None,
                         res.p if res else None, f"A {'>' if claim.expect == 'greater' else '<'} B", got["verdict"],
                         fired_pair(got["metric"], got["pairs"])])
    tab.note = ("Δ = A − B over (seed, image) pairs with every other setting equal; 95% t interval. Supported: the "
                "interval lies on the expected side of 0; contradicted: on the other side; otherwise not "
                "distinguishable at this n.")
    return tab


def build_section(records: list[dict], method: str, metric: str | None = None, mode: str = "max",
                  claims=()) -> Section:
    headline = headline_for(method, metric)
    index = Index(ok(records))
    cells = cells_of(records, headline, mode)
    tables = [claims_table(records, index, headline, claims)] if claims else []
    tables += [cells_table(cells, method, headline), comparisons_table(records, index, method),
               effects_table(records, index, headline), best_table(cells, headline, mode)]
    if method == "staged":
        tables.append(early_stopping_table(cells))
    tables += [cost_table(cells, method, headline), references_table(records), problems_table(records)]
    return Section(method, headline, records, cells, index, tables)


def build_sections(records: list[dict], metric: str | None = None, mode: str = "max", claims=()) -> list[Section]:
    methods = list(dict.fromkeys(r.get("method") for r in records))
    unknown = [m for m in methods if m not in COMPARISONS]
    if unknown:
        raise ConfigError(f"results.jsonl: method {unknown[0]!r} is not one of staged | hybrid")
    return [build_section([r for r in records if r.get("method") == m], m, metric, mode, claims) for m in methods]
