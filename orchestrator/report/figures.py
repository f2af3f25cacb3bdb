"""Report figures (matplotlib, headless) as PNG bytes, drawn from records and per-trial files.

- curves: PSNR/SSIM against iteration for staged and plain DIP on the same
  observation, stage boundaries, the oracle peak and the ES-WMV point marked;
  for hybrid sweeps, DIP's curve against the restorations' final PSNR, and the
  DDPMs' training loss;
- metric against each ablation axis, mean ± 95% CI, other axes held fixed;
- time against quality per grid cell (attributed costs).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from dipddpm.method import FLOOR, ORACLE

from ..common.design import norm
from ..common.labels import cell_text, short
from ..common.record import Record
from ..stats.pairing import same
from .tables import Section, base_label, cell_label, estimate, hints

log = logging.getLogger(__name__)
MAX_IMAGES = 3
MAX_SERIES = 4


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI backend
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def ok(records: list[Record]) -> list[Record]:
    return [r for r in records if r.status == "ok"]


def load_curves(run_dir: Path, key: str) -> dict:
    path = run_dir / "trials" / key / "curves.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("no curves for %s (%s)", key, exc)
        return {}


def closest_to_reference(section: Section, records: list[Record]) -> Record | None:
    """The record whose grid cell moves the fewest keys away from the sweep's base (lowest seed first)."""
    design = section.design

    def distance(r):
        p = design.point(r.cell_key)
        moved = sum(norm(v) != norm(design.base.get(k)) for k, v in (p.cell if p else r.cell).items())
        return (moved, r.seed)

    return min(records, key=distance) if records else None


def _arm_value(section: Section, r: Record):
    """The record's value on the method's variant axis."""
    point = section.design.point(r.cell_key)
    axis = hints(section.method).variant_axis
    if point is not None:
        return section.design.value(point, axis)
    sec, _, key = axis.partition(".")
    return (r.config.get(sec) or {}).get(key)


def reference_pair(section: Section) -> tuple[Record, Record] | None:
    """(variant, baseline) records of one trial pair at the sweep's reference settings: the method's first two
    figure arms (staged against plain DIP), ORACLE cells left out."""
    h = hints(section.method)
    (first, _), (second, _) = h.figure_arms[:2]
    anchors = [r for r in ok(section.records) if same(_arm_value(section, r), first) and ORACLE not in r.tags]
    candidates = []
    for r in anchors:
        m = section.index.counterpart(r, {h.variant_axis: second})
        if m is not None and not m.also_moved and m.record.status == "ok":
            candidates.append((r, m.record))
    if not candidates:
        return None
    best = closest_to_reference(section, [s for s, _ in candidates])
    return next(pair for pair in candidates if pair[0] is best)


def curves_figure(section: Section, run_dir: Path) -> bytes | None:
    pair = reference_pair(section) if hints(section.method).figure == "stage_curves" else None
    if pair is None:
        return None
    staged, baseline = pair
    cs, cb = load_curves(run_dir, staged.trial_key), load_curves(run_dir, baseline.trial_key)
    images = [i for i in staged.per_image if i in cs and i in cb][:MAX_IMAGES]
    if not images:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(images), 2, figsize=(12, 3.6 * len(images)), squeeze=False)
    for row, image in zip(axes, images):
        for ax, metric in zip(row, ("psnr", "ssim")):
            for rec, curves, color, name in ((baseline, cb, "tab:blue", "plain DIP"),
                                             (staged, cs, "tab:orange", "staged DIP")):
                _curve(ax, curves[image], rec.per_image[image], metric, color, name)
            for b in (cs[image].get("stage_boundaries") or [])[1:]:
                ax.axvline(b, color="tab:orange", ls=":", lw=0.8)
            ax.set_xlabel("iteration")
            ax.set_ylabel(f"{metric.upper()} vs clean" + (" (dB)" if metric == "psnr" else ""))
            ax.set_title(f"{image}: {metric.upper()} · {cell_label(staged)} (seed {staged.seed})", fontsize=9)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Staged vs plain DIP on the same observation; dotted: stage boundaries; "
                 f"★ peak [{ORACLE}], ✕ ES-WMV point", fontsize=10)
    return png(fig)


def _curve(ax, c: dict, m: dict, metric: str, color, name: str) -> None:
    ev = c.get("eval") or {}
    if metric == "psnr" and c.get("psnr"):
        xs, ys = list(range(len(c["psnr"]))), c["psnr"]
    else:
        xs, ys = ev.get("iter") or [], ev.get(metric) or []
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if not pts:
        return
    ax.plot(*zip(*pts), color=color, lw=1.2, label=name)
    peak, es = m.get(f"{metric}_peak"), m.get(f"{metric}_es")
    if m.get("iter_peak") is not None and peak is not None:
        ax.plot([m["iter_peak"]], [peak], marker="*", ms=13, color=color, mec="black",
                label=f"{name} peak {peak:.3g} [{ORACLE}]")
    if m.get("iter_es") is not None and es is not None:
        fired = "fired" if m.get("es_fired") else "did not fire: last iteration"
        ax.plot([m["iter_es"]], [es], marker="X", ms=10, color=color, mec="black",
                label=f"{name} ES-WMV {es:.3g} ({fired})")


def restorations_figure(section: Section, run_dir: Path) -> bytes | None:
    """PSNR of each way to restore the observation at the reference settings; the DDPMs' training losses."""
    if hints(section.method).figure != "restorations":
        return None
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
    _start_bars(ax1, section)
    _loss_lines(ax2, section, run_dir)
    return png(fig)


def arm_records(section: Section) -> dict[str, list[Record]]:
    """For each of the method's figure arms, the ok records of the reference trials' counterparts (all seeds):
    the first arm's cell closest to the sweep's base, then each other arm's counterpart of it."""
    h = hints(section.method)
    (first, _), others = h.figure_arms[0], h.figure_arms[1:]
    anchors = [r for r in ok(section.records) if same(_arm_value(section, r), first)]
    best = closest_to_reference(section, anchors)
    if best is None:
        return {}
    out: dict[str, list[Record]] = {first: [r for r in anchors if r.cell_key == best.cell_key]}
    for value, changes in others:
        for r in out[first]:
            m = section.index.counterpart(r, {h.variant_axis: value} | dict(changes))
            if m is not None and m.record.status == "ok":
                out.setdefault(value, []).append(m.record)
    return out


def yerr(ests: list) -> list[list[float]]:
    """Asymmetric error bars from estimates (none below 3 units, or where the interval is unknown)."""
    return [[e.mean - e.low if e.low is not None else 0 for e in ests],
            [e.high - e.mean if e.high is not None else 0 for e in ests]]


def _start_bars(ax, section: Section) -> None:
    by_start = arm_records(section)
    dip = by_start.get("dip", [])
    bars = [("observation y", dip, "psnr_observation"), ("NL-means", dip, "psnr_nlm"),
            ("DIP alone", dip, "psnr_dip"), ("DDPM from noise", by_start.get("noise", []), "psnr"),
            ("DDPM from y", by_start.get("observation", []), "psnr"), ("DDPM from DIP", dip, "psnr")]
    shown = [(name, est) for name, recs, m in bars if recs
             for est in [estimate(section.method, recs, m)] if est is not None]
    if not shown:
        return
    xs = range(len(shown))
    ax.bar(xs, [e.mean for _, e in shown], yerr=yerr([e for _, e in shown]), capsize=4,
           color=["tab:red", "black", "tab:green", "tab:gray", "tab:blue", "tab:orange"][: len(shown)])
    for x, (_, e) in zip(xs, shown):
        ax.annotate(f"{e.mean:.2f}", (x, e.mean), ha="center", xytext=(0, 3), textcoords="offset points", fontsize=8)
    ax.set_xticks(list(xs), [n for n, _ in shown], rotation=15, fontsize=8)
    ax.set_ylabel("PSNR vs clean (dB)")
    ax.set_title(f"Restorations at the base settings ({cell_label(dip[0])}), mean ± 95% CI", fontsize=9)
    ax.grid(alpha=0.3, axis="y")


def _loss_lines(ax, section: Section, run_dir: Path) -> None:
    """One training-loss line per trained model, for at most 8 cells (their first seed's trial)."""
    drawn: set = set()
    for c in section.cells[:8]:
        r = next(iter(ok(c.records)), None)
        loss = (load_curves(run_dir, r.trial_key).get("ddpm") or {}).get("train_loss") if r else None
        if not loss or tuple(loss) in drawn:
            continue
        drawn.add(tuple(loss))
        steps = r.metrics.get("train_steps") or len(loss)
        ax.plot([(i + 1) * steps / len(loss) for i in range(len(loss))], loss, lw=1,
                label=unique_labels([f"#{c.number} {cell_label(r)}"], 48)[0])
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("DDPM training loss (ε-MSE)")
    ax.set_title("DDPM training loss, one line per trained model", fontsize=9)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=6)


def axis_series(section: Section, axis: str) -> list[tuple[str, list, list]]:
    """[(series label, x values, Estimates)] for one axis: each value against the base, other axes fixed.
    Cells pair through the design (once per cell), then their records join by seed."""
    design, index = section.design, section.index
    ref = design.base.get(axis)
    values = [ref] + [v for v in design.axis_values(axis) if not same(v, ref)]
    if len(values) < 2:
        return []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        values.sort()
    series: dict[str, dict[int, list[dict]]] = {}
    labels: dict[str, str] = {}
    for p in {q.cell_key: q for q in design.points if same(design.value(q, axis), ref)}.values():
        anchors = {s: r for s, r in index.at(p.cell_key).items() if r.status == "ok"}
        if not anchors:
            continue
        labels[p.cell_key] = cell_text({k: v for k, v in p.cell.items() if k != axis})
        for i, v in enumerate(values):
            found = design.counterpart(p, {axis: v}) if not same(v, ref) else (p, ())
            if found is None or found[1]:
                continue
            at = index.at(found[0].cell_key)
            recs = [at[s] for s in anchors if s in at and at[s].status == "ok"]
            if recs:
                series.setdefault(p.cell_key, {})[i] = recs
    out = []
    for key, points in sorted(series.items(), key=lambda kv: -len(kv[1])):
        if len(points) >= 2:
            idx = sorted(points)
            out.append((labels[key], [values[i] for i in idx],
                        [estimate(section.method, points[i], section.headline) for i in idx]))
    return out[:MAX_SERIES]


def unique_labels(labels: list[str], width: int) -> list[str]:
    """Labels cut to `width` characters that stay distinct (a cut that would repeat one gets its number)."""
    cut = [x if len(x) <= width else x[: width - 1] + "…" for x in labels]
    seen: dict[str, int] = {}
    for x in cut:
        seen[x] = seen.get(x, 0) + 1
    out, n = [], {}
    for full, x in zip(labels, cut):
        if seen[x] > 1:
            n[x] = n.get(x, 0) + 1
            x = f"{x[: width - 4]}… #{n[x]}"
        out.append(x)
    return out


def _numeric(xs: list) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)


def axes_figure(section: Section) -> bytes | None:
    """The headline against each axis; a numeric axis at its values (log-scaled when its values span a
    factor of 10 or more, as learning rates do), any other at evenly spaced ticks."""
    panels = [(a, s) for a in section.design.axes if (s := axis_series(section, a))]
    if not panels:
        return None
    plt = _plt()
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, (axis, series) in zip(axes.flat, panels):
        values = [x for _, xs, _ in series for x in xs]
        numeric = _numeric(values)
        log = numeric and min(values) > 0 and max(values) / min(values) >= 10
        ref = section.design.base.get(axis)
        for j, ((_, xs, ests), label) in enumerate(zip(series, unique_labels([s[0] for s in series], 40))):
            shift = 0.08 * (j - (len(series) - 1) / 2)
            if numeric:  # a small shift between series, in the axis' own scale
                pos = [x * (1 + shift / 2) if log else x + shift * (max(values) - min(values) or 1) / 4 for x in xs]
            else:
                pos = [i + shift for i in range(len(xs))]
            ax.errorbar(pos, [e.mean for e in ests], yerr=yerr(ests), marker="o", capsize=3, label=label)
        ticks = sorted({x for x in values}, key=lambda v: v) if numeric else series[0][1]
        names = [(base_label(section.design, axis) + " (base)") if same(x, ref) else short(x) for x in ticks]
        if log:
            ax.set_xscale("log")
        ax.set_xticks(ticks if numeric else range(len(ticks)), names, rotation=20, fontsize=8)
        ax.minorticks_off()
        ax.set_title(axis, fontsize=9)
        ax.set_ylabel(section.headline)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{section.headline} against each axis, mean ± 95% CI over units; "
                 "lines: the other grid-cell settings", fontsize=10)
    fig.tight_layout()
    return png(fig)


def time_quality_figure(section: Section) -> bytes | None:
    """Each cell at its attributed time and headline; ORACLE cells hollow and grey (the legend says so),
    numbers placed around the point so that neighbours' labels do not print over each other."""
    pts = [(c, estimate(section.method, c.records, "time_s"), estimate(section.method, c.records, section.headline))
           for c in section.cells]
    pts = [(c, t, q) for c, t, q in pts if t is not None and q is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    offsets = [(5, 5), (5, -11), (-18, 5), (-18, -11)]
    shown = set()
    for i, (c, t, q) in enumerate(sorted(pts, key=lambda p: (p[1].mean, p[2].mean))):
        kind = ORACLE if c.oracle else (FLOOR if FLOOR in c.tags else "usable")
        ax.errorbar([t.mean], [q.mean], xerr=yerr([t]), yerr=yerr([q]), marker="o", capsize=3,
                    mfc="none" if kind != "usable" else None,
                    color={"usable": "tab:blue", ORACLE: "tab:gray", FLOOR: "tab:red"}[kind],
                    label=None if kind in shown else {"usable": "cell", ORACLE: f"{ORACLE} cell (needs x0)",
                                                       FLOOR: f"{FLOOR} cell"}[kind])
        shown.add(kind)
        ax.annotate(f"#{c.number}", (t.mean, q.mean), fontsize=7, xytext=offsets[i % len(offsets)],
                    textcoords="offset points")
    ax.set_xlabel("time per trial, s (attributed: cache hits charged their artefact's cost)")
    ax.set_ylabel(section.headline)
    ax.set_title("Time against quality per grid cell (numbers: the cells table)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return png(fig)


def claims_figure(section: Section) -> bytes | None:
    """Each claim's interval against the units it has read (its confidence sequence, at the level its table
    states): zero, the margin band, the point it was decided at, and the units projected to decide it."""
    import math

    import numpy as np

    from ..stats.estimands import running_interval

    rows = [r for r in section.claim_rows if r.pairs and len(r.values) >= 2][:8]
    if not rows:
        return None
    plt = _plt()
    cols = min(2, len(rows))
    fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(6.4 * cols, 2.8 * ((len(rows) + 1) // cols)),
                             squeeze=False)
    for ax, row in zip(axes.flat, rows):
        d = np.array(row.values, float)
        lows, highs = running_interval(row.estimand, d, row.level_side)
        n = np.arange(1, len(d) + 1)
        shown = np.where(np.isfinite(d), d, np.nan)
        ax.scatter(n, shown, s=8, color="tab:gray", alpha=0.6, label="units (a lost or tied unit: not drawn)")
        est = [float(row.estimand.fixed(d[:k]).estimate) for k in n]
        ax.plot(n, est, color="tab:blue", lw=1.2, label=f"{row.claim.estimand} Δ so far")
        finite = np.isfinite(lows) & np.isfinite(highs)
        if finite.any():
            ax.fill_between(n[finite], lows[finite], highs[finite], alpha=0.25, color="tab:blue",
                            label="its confidence sequence")
            ax.axvline(n[finite][0], color="tab:blue", ls=":", lw=0.8)
        else:
            ax.text(0.02, 0.04, "no bound yet: too few units for this level", transform=ax.transAxes, fontsize=7)
        ax.axhline(0, color="black", lw=0.8)
        if math.isfinite(row.margin):
            ax.axhspan(-row.margin, row.margin, color="tab:green", alpha=0.12, label="±margin")
        if row.decision is not None:
            ax.axvline(row.decision.n, color="tab:red", ls="--", lw=1, label=f"decided: {row.verdict.split(' (')[0]}")
        proj = row.projection
        if proj is not None and math.isfinite(proj.units) and proj.units > 0:
            ax.axvline(len(row.values) + proj.units, color="tab:gray", ls=":", lw=1,
                       label=f"projected decision (+{proj.units:.0f} units)")
        right = len(d) + (proj.units if proj is not None and math.isfinite(proj.units) else 0)
        ax.set_xlim(0.5, right + 1.5)
        ax.set_title(unique_labels([row.claim.text], 70)[0], fontsize=8)
        ax.set_xlabel("units read")
        ax.set_ylabel(("log " if row.claim.relative else "") + f"Δ {row.metric}", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle("Each claim closing in: its interval against units read (narrower as units arrive)", fontsize=10)
    fig.tight_layout()
    return png(fig)


LEAD = {  # the method's own figure, by the kind its hints name: (name, caption, drawing)
    "stage_curves": ("curves", "PSNR and SSIM against iteration, staged vs plain DIP on the same observation",
                     curves_figure),
    "restorations": ("restorations", "PSNR of each restoration at the base settings; DDPM training loss",
                     restorations_figure),
}


def figure_names(method: str) -> tuple[str, ...]:
    return (LEAD[hints(method).figure][0], "axes", "time_quality", "claims")


def section_figures(section: Section, run_dir: Path) -> dict[str, tuple[str, bytes | None]]:
    """{name: (caption, PNG or None when there is not enough data)} for one method's section."""
    first, axes, tq, claims = figure_names(section.method)
    _, caption, draw = LEAD[hints(section.method).figure]
    lead = (caption, draw(section, run_dir))
    return {first: lead, axes: (f"{section.headline} against each ablation axis", axes_figure(section)),
            tq: ("time against quality per grid cell", time_quality_figure(section)),
            claims: ("each claim's interval against the units read: zero, the margin band, the decision, the "
                     "projection", claims_figure(section))}
