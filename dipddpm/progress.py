"""Rich terminal pieces for a single trial: a progress bar fed by the report hook, and a summary."""

from __future__ import annotations

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


# (label, psnr key, ssim key, iteration key)
_ROWS = (
    ("observation (clipped)", "psnr_observation", "ssim_observation", None),
    ("TV (scikit-image)", "psnr_tv", "ssim_tv", None),
    ("NL-means (scikit-image)", "psnr_nlm", "ssim_nlm", None),
    ("DIP at end", "psnr", "ssim", "iters"),
    ("DIP at ES-WMV point", "psnr_es", "ssim_es", "iter_es"),
    ("DIP at peak [ORACLE]", "psnr_peak", "ssim_peak", "iter_peak"),
)


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
        table.add_column("iter", justify="right")
    for label, pk, sk, ik in _ROWS:
        cells = []
        for name in images:
            pm = record["per_image"][name]
            cells += [_fmt(pm.get(pk)), _fmt(pm.get(sk), ".3f"), _fmt(pm.get(ik)) if ik else ""]
        table.add_row(label, *cells)
    gaps = ", ".join(f"{n}: gap {_fmt(record['per_image'][n].get('es_gap_db'))} dB, fired "
                     f"{_fmt(record['per_image'][n].get('es_fired'))}" for n in images)
    table.caption = f"ES-WMV {gaps} · {_fmt(m.get('time_s'), '.1f')} s"
    return table


def _variant(cfg: dict) -> str:
    st = cfg.get("staged") or {}
    if st.get("variant") == "baseline":
        return "baseline (plain DIP)"
    oracle = " [ORACLE targets]" if st.get("targets") == "clean" else ""
    return f"staged, targets={st.get('targets')}{oracle}, switch={st.get('stage_switch')}"
