"""The rich table `make bench` prints from its results JSON (also: python benchmarks/summary_table.py FILE)."""

from __future__ import annotations

import json
import statistics
import sys


def rows(r: dict) -> list[tuple[str, str, str, str]]:
    """(figure, measured, baseline, ratio / target)."""
    out = []
    for d in r.get("dip", []):
        out.append((f"DIP step, {d['profile']} profile ({d['size_px']} px, {d['channels']} ch, {d['threads']} thr)",
                    f"ours {d['ours_ms']:.1f} ms", f"plain {d['plain_ms']:.1f} ms",
                    f"{d['ratio']:.2f} (target {d['target']})"))
    if "eval" in r:
        e = r["eval"]
        out.append(_with_without(f"evaluation overhead ({e['iters']} it, eval every {e['eval_every']})",
                                 e["with_eval_s"], e["without_s"], f"{e['overhead_pct']:+.1f}%", e["target"]))
    if "orchestration" in r:
        o = r["orchestration"]
        ref = o["reference"]
        base = (f"bare pool {ref['wall_s']:.0f} s ({o['trials']} trials, {o['concurrency']} warm processes; "
                f"trial median {_median(ref['trial_s']):.1f} s)")
        out.append(("cluster start-up (apart)", f"{o['cluster_start_s']:.1f} s", "", ""))
        for key, label in (("ours", "our sweep, no W&B"), ("ours_wandb", "our sweep, W&B offline"),
                           ("plain_tune", "plain Ray Tune"), ("plain_tune_wandb", "plain Tune + WandbLoggerCallback")):
            if key in o:
                t = o[key].get("trials_s", o[key].get("total_s"))
                extra = f" (+{o[key]['report_s']:.0f} s report)" if "report_s" in o[key] else ""
                if "trial_wall_s" in o[key]:
                    extra += (f"; 1st trial began at {o[key]['first_trial_start_s']:.1f} s, "
                              f"trial median {_median(o[key]['trial_wall_s']):.1f} s")
                if "bytes_shipped_per_trial" in o[key]:
                    extra += f"; {o[key]['bytes_shipped_per_trial'] / 1024:.0f} KiB shipped per trial"
                out.append((f"orchestration: {label}", f"{t:.0f} s{extra}", base, f"{o[key]['efficiency']:.3f}"))
    if "cache" in r:
        c = r["cache"]
        label = f"hybrid cache ({c['train_configs']} train × {c['sampling_configs']} sampling, trial phase)"
        out.append(_with_without(label, c["with_cache_s"], c["without_cache_s"], f"{c['ratio']:.2f}", c["target"]))
        if "ratio_incl_report" in c:
            out.append(_with_without("  same, with the closing report", c["with_cache_total_s"],
                                     c["without_cache_total_s"], f"{c['ratio_incl_report']:.2f}", c["target"]))
    if "gpu" in r:
        out += _gpu_rows(r["gpu"])
    out += _stats_rows(r)
    return out


def _stats_rows(r: dict) -> list[tuple[str, str, str, str]]:
    out = []
    if "report" in r:
        for run in r["report"]["runs"]:
            out.append((f"report on {run['records']} records ({r['report']['source']})",
                        f"{run['total_s']:.1f} s (tables {run['tables_s']:.1f} s, files {run['files_s']:.1f} s)", "",
                        r["report"]["target"] if run["records"] == 5000 else ""))
    for key, a in (r.get("adaptive") or {}).items():
        fx, ad = a["fixed"], a["adaptive"]
        out.append((f"adaptive vs fixed ({key}, {len(a['family'])} claims, {a['sweeps']} sweeps)",
                    f"{ad['trials_mean']:.0f} trials, false verdicts {ad['false_verdict_rate']:.1%}",
                    f"fixed {fx['seeds']} seeds: {fx['trials']} trials, false verdicts {fx['false_verdict_rate']:.1%}",
                    f"{a['ratio']:.2f} (target {a['target']})"))
        cu = a["claim_update"]
        small, large = sorted((int(k[3:-11]) for k in cu if k.startswith("at_")))
        out.append((f"  one claim update ({key})", f"{cu[f'at_{large}_records_us']:.0f} µs at {large:,} records",
                    f"{cu[f'at_{small}_records_us']:.0f} µs at {small:,}", f"{cu['ratio']:.2f} (target {cu['target']})"))
    out += _decision_rows(r.get("decisions"))
    out += _verdict_rows(r.get("verdicts"))
    return out


def _decision_rows(d: dict | None) -> list[tuple[str, str, str, str]]:
    if not d:
        return []
    out = []
    for scenario, got in d.items():
        if not isinstance(got, dict) or "new" not in got:
            continue
        new, today, fixed = got["new"], got["today"], got["fixed"]
        out.append((f"decisions per CPU-hour, {scenario} ({d['families']} families, max_seeds {d['max_seeds']})",
                    f"new {new['decisions_per_cpu_hour']:.2f} (FWER {new['fwer']:.1%})",
                    f"today {today['decisions_per_cpu_hour']:.2f} (FWER {today['fwer']:.1%}); "
                    f"fixed {fixed['decisions_per_cpu_hour']:.2f} (FWER {fixed['fwer']:.1%})",
                    f"×{got['ratio_new_to_today']:.2f} (target ≥ 2 at FWER ≤ 5%)"))
    cal = d.get("projection") or {}
    if cal:
        out.append(("projection: median projected / actual units (win chance " + " / ".join(cal) + ")",
                    " / ".join(f"{c['median_ratio']:.2f}" for c in cal.values()), "",
                    "target 0.7-1.4"))
    return out


def _verdict_rows(v: dict | None) -> list[tuple[str, str, str, str]]:
    if not v:
        return []
    out = []
    for name, row in v["scenarios"].items():
        cells = [f"{path.replace('_', ' ')} {c['fwer']:.3f}±{c['se']:.3f}" for path, c in row.items()]
        worst = max(c["fwer"] for path, c in row.items() if path.endswith("median"))
        out.append((f"family-wise false verdicts, {name} (K {v['k']}, {v['families_fixed']} / "
                    f"{v['families_adaptive']} families)", "; ".join(cells), "",
                    f"median {worst:.3f} (target ≤ 0.05)"))
    p = v.get("power") or {}
    if p:
        out.append(("power, 1σ over 20 units, K 10 (fixed / adaptive max 20)",
                    f"median {p['fixed_median_1sigma_20units_k10']:.2f} / {p['adaptive_median_1sigma_max20_k10']:.2f}",
                    f"mean {p['fixed_mean_1sigma_20units_k10']:.2f} / {p['adaptive_mean_1sigma_max20_k10']:.2f}", ""))
    return out


def _median(xs) -> float:
    return statistics.median(xs) if xs else float("nan")


def _gpu_rows(g: dict) -> list[tuple[str, str, str, str]]:
    where = g.get("device", "")
    if "precision" not in g:
        return [("GPU: AMP, channels_last, trials per GPU", "not measured", g.get("reason", ""), "")]
    out = [(f"GPU ({where}): {'not measured, ' + g['reason'] if not g.get('measured') else 'measured'}", "", "", "")]
    base = g["precision"][0]
    for p in g["precision"][1:]:
        label = p["precision"] + (" + channels_last" if p["channels_last"] else "")
        out.append((f"  {label} vs fp32: DIP step / DDPM train step / UNet call",
                    f"{p['dip_step_ms']:.1f} / {p['ddpm_train_step_ms']:.1f} / {p['unet_call_ms']:.1f} ms",
                    f"{base['dip_step_ms']:.1f} / {base['ddpm_train_step_ms']:.1f} / {base['unet_call_ms']:.1f} ms",
                    f"×{p['dip_step_speedup']:.2f} / ×{p['ddpm_train_step_speedup']:.2f} / ×{p['unet_call_speedup']:.2f}"))
    for s in g.get("trials_per_gpu", []):
        out.append((f"  {s['trials_per_gpu']} trial(s) per GPU ({s['trials']} staged trials)",
                    f"{s['wall_s']:.0f} s, {s['trials_per_min']:.1f} trials/min", "1 per GPU",
                    f"×{s['throughput_vs_1']:.2f} throughput"))
    return out


def _with_without(figure: str, with_s: float, without_s: float, ratio: str, target: str) -> tuple:
    return figure, f"with {with_s:.1f} s", f"without {without_s:.1f} s", f"{ratio} (target {target})"


def print_results(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"dipddpm benchmarks · {results['machine']['cpus']} CPUs · torch {results['machine']['torch']}")
    for col in ("figure", "measured", "baseline", "ratio"):
        t.add_column(col, overflow="fold")
    for row in rows(results):
        t.add_row(*row)
    Console(width=160).print(t)


if __name__ == "__main__":
    print_results(json.loads(open(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results.json").read()))
