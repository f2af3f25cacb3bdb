"""A self-contained HTML report: tables, figures and image grids embedded as data URIs (no external files)."""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path

from dipddpm.method import ORACLE

from ..common.design import flatten
from ..common.labels import cell_text, safe_text
from ..common.record import Record
from ..stats.intervals import Estimate
from . import figures
from .tables import Section, Tab, cell_label, hints
from .text import fmt

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1400px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin-bottom:4px}.meta{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left;white-space:normal;max-width:420px}
.note{color:#555;font-size:12px;max-width:1100px}.oracle{color:#a00;font-weight:600}
figure{margin:10px 0}figure img{max-width:100%;border:1px solid #eee}
.grid td{text-align:center;vertical-align:top;font-size:11px}
.grid img{width:160px;height:160px;image-rendering:pixelated;display:block;margin:auto}
.summary{background:#f7f9fc;border:1px solid #dde3ec;padding:4px 16px;margin:12px 0}
.summary li{margin:3px 0}th[title]{cursor:pointer}th[data-dir=up]::after{content:" ▲"}th[data-dir=down]::after{content:" ▼"}
"""
LEFT = ("grid cell", "comparison", "axis", "error", "also differs", "value", "claim", "A", "B", "verdict")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _esc(text: str) -> str:
    """Escape (reordering characters made visible first), and set every [ORACLE ...] label in red."""
    return re.sub(rf"\[{ORACLE}[^\]]*\]", lambda m: f'<span class="oracle">{m.group(0)}</span>',
                  html.escape(safe_text(text)))


def table_html(tab: Tab) -> str:
    """A table whose columns sort on a click (the page's script); intervals sort by their mean."""
    head = "".join(f'<th class="{"l" if c in LEFT else ""}" title="click to sort">{_esc(c)}</th>' for c in tab.columns)
    body = []
    for row in tab.rows:
        tds = "".join(f'<td class="{"l" if c in LEFT else ""}"{_sort_key(v)}>{_esc(fmt(v, c))}</td>'
                      for v, c in zip(row, tab.columns))
        body.append(f"<tr>{tds}</tr>")
    rows = "".join(body) or f'<tr><td class="l" colspan="{len(tab.columns)}">(none)</td></tr>'
    note = f'<p class="note">{_esc(tab.note)}</p>' if tab.note else ""
    return (f'<h3 id="{tab.name}">{_esc(tab.title)}</h3><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>{note}")


def _sort_key(v) -> str:
    """A numeric sort key for the script (an interval sorts by its mean, a missing value last)."""
    x = v.mean if isinstance(v, Estimate) else v
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return ""
    return f' data-v="{x:.10g}"'


SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var up = th.dataset.dir !== 'up';
      table.querySelectorAll('thead th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = up ? 'up' : 'down';
      function key(row) {
        var td = row.cells[col];
        if (!td) return [2, ''];
        if (td.dataset.v !== undefined) return [0, parseFloat(td.dataset.v)];
        var t = td.textContent.trim();
        return t === '' || t === '—' ? [2, ''] : [1, t.toLowerCase()];
      }
      rows.sort(function (a, b) {
        var ka = key(a), kb = key(b);
        if (ka[0] !== kb[0]) return ka[0] - kb[0];
        var c = ka[1] < kb[1] ? -1 : ka[1] > kb[1] ? 1 : 0;
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
// A link may ask for a sorted table: report.html#sort=cells:5 sorts the cells table by its 6th column.
(function () {
  var m = /sort=([a-z_]+):([0-9]+)(:down)?/.exec(location.hash);
  var h = m && document.getElementById(m[1]);
  var table = h && h.nextElementSibling;
  var th = table && table.querySelectorAll('thead th')[parseInt(m[2], 10)];
  if (th) { th.click(); if (m[3]) th.click(); }
})();
"""


def run_name(label: str, seed) -> str:
    """A trial's W&B run name as its logger gave it: the grid cell and the seed."""
    return f"{label} · seed {seed}"[:128]


def trials_html(section: Section, link_root: str) -> str:
    """Every trial, linked to its files (trials/<key>/) and named by its W&B run, sortable like the rest."""
    head = "".join(f'<th class="l" title="click to sort">{c}</th>' for c in
                   ("trial", "grid cell", "seed", "status", html.escape(section.headline), "files", "W&B run"))
    rows = []
    for r in sorted(section.records, key=lambda r: (r.cell_key, r.seed)):
        key = r.trial_key
        base = f"{link_root}trials/{key}/" if re.fullmatch(r"[0-9a-f]{16}", key) else None
        value = r.metrics.get(section.headline)
        shown = f"{value:.2f}" if isinstance(value, (int, float)) else "—"
        files = (f'<a href="{base}result.json">result.json</a> · <a href="{base}curves.json">curves.json</a> · '
                 f'<a href="{base}images/">images</a>') if base else "(refused key)"
        wandb = _esc(f"{r.extra.get('wandb_run') or '—'} ({run_name(cell_text(r.cell), r.seed)})")
        data_v = f' data-v="{value:.10g}"' if isinstance(value, (int, float)) else ""
        rows.append(f"<tr><td class=\"l\"><code>{html.escape(key)}</code></td><td class=\"l\">{_esc(cell_label(r))}</td>"
                    f"<td>{r.seed}</td><td>{html.escape(str(r.status))}</td><td{data_v}>{shown}</td>"
                    f"<td class=\"l\">{files}</td><td class=\"l\">{wandb}</td></tr>")
    return (f'<h3 id="trials">Trials ({len(rows)})</h3><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def figure_html(png: bytes | None, caption: str) -> str:
    if png is None:
        return f'<p class="note">({html.escape(caption)}: not enough data for this figure)</p>'
    return f'<figure><img alt="{html.escape(caption)}" src="{data_uri(png)}"><figcaption class="note">' \
           f"{html.escape(caption)}</figcaption></figure>"


# ------------------------------------------------------------------ image grid

def grid_columns(section: Section) -> list[tuple[str, Record, str, str]]:
    """(column title, record, image kind, PSNR field) for the grid: clean | observation | NL-means | each of the
    method's arms (its hints say which), on one observation (one seed)."""
    h = hints(section.method)
    if h.figure == "stage_curves":
        pair = figures.reference_pair(section)
        if pair is None:
            return []
        by_arm = {h.figure_arms[0][0]: [pair[0]], h.figure_arms[1][0]: [pair[1]]}
        anchor = pair[1]
    else:
        by_arm = figures.arm_records(section)
        anchor = (by_arm.get(h.figure_arms[0][0]) or [None])[0]
    if anchor is None:
        return []
    cols = [("clean", anchor, "clean", ""), ("observation y", anchor, "observation", "psnr_observation"),
            ("NL-means", anchor, "nlm", "psnr_nlm")]
    for title, arm, kind, field in h.grid:
        rec = next((r for r in by_arm.get(arm, []) if r.seed == anchor.seed), None)
        if rec is not None:
            cols.append((title, rec, kind, field))
    if h.grid_best:
        shown = {rec.cell_key for _t, rec, *_ in cols}
        best = next((c for c in section.cells if not c.oracle and c.ok and _same_observation(c.ok[0], anchor)), None)
        if best is not None and best.key not in shown:
            cols.append((f"best config #{best.number} (ES)", best.ok[0], "es", "psnr_es"))
    return cols


def _same_observation(a: Record, b: Record) -> bool:
    """Same images, size and degradation: the two trials restored the same y."""
    pick = lambda r: {k: v for k, v in flatten(r.config).items() if k.split(".")[0] in ("data", "degradation")}
    return pick(a) == pick(b)


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")


def trial_file(run_dir: Path, key: str, rel: str) -> Path | None:
    """A file inside the trial's folder, or None when a record's key or image name would lead anywhere else
    (a crafted `../../secret` never reaches the page)."""
    name = rel.rsplit("/", 1)[-1]
    if not re.fullmatch(r"[0-9a-f]{16}", key) or not SAFE_NAME.fullmatch(name.removesuffix(".png")):
        return None
    root = (run_dir / "trials" / key).resolve()
    path = (root / rel).resolve()
    return path if root in path.parents else None


def image_grid_html(section: Section, run_dir: Path) -> str:
    cols = grid_columns(section)
    if not cols:
        return '<p class="note">(no image grid: no matched trials with saved images)</p>'
    images = list(cols[0][1].per_image)[: figures.MAX_IMAGES]
    head = "<th>image</th>" + "".join(f"<th>{_esc(t)}</th>" for t, *_ in cols)
    rows, refused = [], set()
    for image in images:
        tds = [f"<td>{_esc(image)}</td>"]
        for _title, rec, kind, field in cols:
            path = trial_file(run_dir, rec.trial_key, f"images/{image}_{kind}.png")
            value = rec.value(field, image)
            caption = f"{value:.2f} dB" if isinstance(value, (int, float)) else ""
            if path is None:
                img = "(refused: not an image name)"
                if (rec.trial_key, image) not in refused:  # once per trial and name, not per picture of it
                    refused.add((rec.trial_key, image))
                    log.warning("%s: trial %s names image %r, which is no image name (it would leave the "
                                "trial's folder); not embedded", run_dir, rec.trial_key, image[:80])
            else:
                img = f'<img alt="{kind}" src="{data_uri(path.read_bytes())}">' if path.is_file() else "(missing)"
            tds.append(f"<td>{img}{caption}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    seed = cols[0][1].seed
    where = ", ".join(dict.fromkeys(cell_label(rec) for _t, rec, *_ in cols))
    return (f'<table class="grid"><tr>{head}</tr>{"".join(rows)}</table>'
            f'<p class="note">Seed {seed}; PSNR against the clean image under each. Trials: {html.escape(where)}.</p>')


# ------------------------------------------------------------------ page

def section_html(section: Section, run_dir: Path, figures: dict[str, tuple[str, bytes | None]],
                 link_root: str = "") -> str:
    """Claims first, then the tables and the trials, then the figures and the image grid."""
    n_ok = sum(r.status == "ok" for r in section.records)
    parts = [f"<h2>{html.escape(section.method)} · {len(section.records)} trials ({n_ok} ok) · "
             f"ranked by {html.escape(section.headline)}</h2>"]
    parts += [table_html(t) for t in section.tables]
    parts += [trials_html(section, link_root), '<h3 id="figures">Figures</h3>',
              *(figure_html(png, caption) for caption, png in figures.values()),
              '<h3 id="images">Image grid</h3>', image_grid_html(section, run_dir)]
    return "\n".join(parts)


def summary_html(sections: list[Section]) -> str:
    from .summary import TITLES, summary_lines

    parts = ['<section id="summary" class="summary"><h2>Summary</h2>']
    for key, lines in summary_lines(sections).items():
        if lines:
            parts.append(f"<h3>{TITLES[key]}</h3><ul>" + "".join(f"<li>{_esc(line)}</li>" for line in lines) + "</ul>")
    return "".join(parts) + "</section>"


def report_html(sections: list[Section], meta: dict, run_dir: Path, figures: dict, link_root: str = "") -> str:
    """The page: the answer (summary) first, then claims, tables, trials, figures. `link_root`: the run
    folder relative to the page (trial files are linked, not embedded)."""
    names = [t.name for t in sections[0].tables] + ["trials", "figures", "images"] if sections else []
    toc = " · ".join(f'<a href="#{n}">{html.escape(n)}</a>' for n in names)
    body = "\n".join(section_html(s, run_dir, figures[s.method], link_root) for s in sections)
    meta_line = html.escape(f"{meta['records']} records ({meta['status']}) · profile {meta['profile']} · "
                            f"{meta['results']} · code {meta.get('code', '?')} · generated {meta['generated']}")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(meta["title"])}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(meta['title'])}</h1>"
            f'<p class="meta">{meta_line}</p>{summary_html(sections)}<p class="meta">Tables: {toc}. Figures labelled '
            f"{ORACLE} need the clean image and are not reachable by a user; FLOOR rows score an unconditional "
            f"sample against an unrelated test image. Click a column's head to sort.</p>{body}"
            f"<script>{SORT_JS}</script></body></html>")
