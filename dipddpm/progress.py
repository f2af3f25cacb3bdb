"""Rich terminal pieces for a single trial: a progress bar fed by the report hook, and a summary."""

from __future__ import annotations

from rich.markup import escape
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class TrialProgress:
    """Context manager whose `report(step, metrics)` advances a bar (overall progress in [0,1])."""

    def __init__(self, console: Console, disabled: bool = False):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console, disable=disabled,
        )
        self.task = None

    def __enter__(self) -> "TrialProgress":
        self.progress.__enter__()
        self.task = self.progress.add_task("trial", total=1.0, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def report(self, step: int, metrics: dict) -> None:
        info = " ".join(
            f"{k} {metrics[k]:.3f}" if isinstance(metrics.get(k), float) else ""
            for k in ("psnr", "ssim") if k in metrics
        )
        desc = f"{metrics.get('image', '')} it {metrics.get('iter', step)}"
        self.progress.update(self.task, completed=metrics.get("progress", 0.0), description=desc, info=info)


def _fmt(v, spec: str = ".2f") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if isinstance(v, float) else str(v)


# (label, psnr key, ssim key, iteration/steps key)
_REFERENCE_ROWS = (
    ("observation (clipped)", "psnr_observation", "ssim_observation", None),
    ("TV (scikit-image)", "psnr_tv", "ssim_tv", None),
    ("NL-means (scikit-image)", "psnr_nlm", "ssim_nlm", None),
    ("CBM3D (bm3d, known σ)", "psnr_cbm3d", "ssim_cbm3d", None),  # only when the optional package is installed
)
_STAGED_ROWS = (
    ("DIP at end", "psnr", "ssim", "iters"),
    ("DIP at ES-WMV point", "psnr_es", "ssim_es", "iter_es"),
    ("DIP at peak [ORACLE]", "psnr_peak", "ssim_peak", "iter_peak"),
)


def _rows(record: dict) -> tuple:
    if record["method"] == "staged":
        return _REFERENCE_ROWS + _STAGED_ROWS
    hy = record["config"]["hybrid"]
    sampler = "20-step DDIM" if hy["start"] == "noise" else hy["sampler"]
    rows = _REFERENCE_ROWS + (("DIP alone", "psnr_dip", "ssim_dip", "dip_iters_run"),)
    return rows + ((f"DDPM from {hy['start']} ({sampler})", "psnr", "ssim", "reverse_steps"),)


def summary_table(record: dict) -> Table:
    """One table per trial: each row a PSNR/SSIM, one column group per image."""
    cfg = record["config"]
    m = record["metrics"]
    title = (f"{record['method']} · {_variant(cfg)} · σ={_fmt(m.get('noise_std_255'), '.1f')}/255 "
             f"(t_obs={_fmt(m.get('t_obs'), '.0f')}) · status {record['status']}")
    table = Table(title=title)
    table.add_column("estimate")
    images = list(record["per_image"])
    for name in images:
        table.add_column(f"{name} PSNR", justify="right")
        table.add_column("SSIM", justify="right")
        table.add_column("iter" if record["method"] == "staged" else "steps", justify="right")
    for label, pk, sk, ik in _rows(record):
        if not any(pk in record["per_image"][n] for n in images):
            continue
        cells = []
        for name in images:
            pm = record["per_image"][name]
            cells += [_fmt(pm.get(pk)), _fmt(pm.get(sk), ".3f"), _fmt(pm.get(ik)) if ik else ""]
        table.add_row(label, *cells)
    cbm3d = (record.get("references") or {}).get("cbm3d")
    table.caption = _caption(record) + (f" · CBM3D {escape(cbm3d)}" if cbm3d and cbm3d.startswith("not installed") else "")
    return table


def _caption(record: dict) -> str:
    m, per = record["metrics"], record["per_image"]
    if record["method"] == "staged":
        gaps = ", ".join(f"{n}: gap {_fmt(per[n].get('es_gap_db'))} dB, fired {_fmt(per[n].get('es_fired'))}"
                         for n in per)
        return f"ES-WMV {gaps} · {_fmt(m.get('time_s'), '.1f')} s"
    hits = f"cache hit: ddpm {_fmt(m.get('cache_hit_ddpm'))}"
    return (f"t_start {_fmt(m.get('t_start'), '.0f')} · train {_fmt(m.get('train_s'), '.1f')} s "
            f"({m.get('train_steps')} steps, {_fmt(m.get('epochs'), '.2f')} epochs) · dip {_fmt(m.get('dip_s'), '.1f')} s · "
            f"sample {_fmt(m.get('sample_s'), '.1f')} s · wall {_fmt(m.get('wall_s'), '.1f')} s · {hits}")


def _variant(cfg: dict) -> str:
    if cfg.get("method") == "hybrid":
        hy, dd = cfg["hybrid"], cfg["ddpm"]
        t0 = f", t0_frac={hy['t0_frac']}" if hy.get("t0_frac") is not None else ""
        return f"start={hy['start']}{t0}, train_on={hy['train_on']}, UNet {tuple(dd['channels'])}"
    st = cfg.get("staged") or {}
    if st.get("variant") == "baseline":
        return "baseline (plain DIP)"
    oracle = " [ORACLE targets]" if st.get("targets") == "clean" else ""
    return f"staged, targets={st.get('targets')}{oracle}, switch={st.get('stage_switch')}"
