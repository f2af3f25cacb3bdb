import numpy as np
import pytest
import torch

from dipddpm.early_stopping import PeakTracker, WmvDetector


def _synthetic_estimates(n=400, dip_at=150, seed=0):
    """Estimates around a fixed image whose jitter shrinks until `dip_at`, then grows."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 8, 8, generator=g)
    scale = 0.02 + 0.2 * (torch.arange(n, dtype=torch.float64) - dip_at).abs() / n
    return [base + scale[i].item() * torch.randn(1, 3, 8, 8, generator=g) for i in range(n)]


def _reference_wmv(ests, window, patience):
    """ES-WMV straight from its definition, in numpy float64."""
    arr = np.stack([e[0].numpy().astype(np.float64) for e in ests])
    best, best_i = np.inf, -1
    for t in range(window - 1, len(arr)):
        var = arr[t - window + 1 : t + 1].var(axis=0).mean()
        if var < best:
            best, best_i = var, t
        if t - best_i >= patience:
            return best_i, t, best
    return best_i, None, best


def test_wmv_fires_where_the_definition_says_and_keeps_that_estimate():
    ests = _synthetic_estimates()
    window, patience = 20, 60
    det = WmvDetector(window, patience, ests[0], len(ests))
    fired_at = None
    for i, e in enumerate(ests):
        det.update(e, i)
        if fired_at is None and det.fired():
            fired_at = i
    want_min, want_fire, want_var = _reference_wmv(ests, window, patience)
    assert want_fire is not None
    assert fired_at == want_fire
    assert int(det.best_iter) == want_min
    # The variance minimum sits near the designed dip (window-centred).
    assert abs(want_min - (150 + window // 2)) <= window
    assert float(det.best_var) == pytest.approx(want_var, rel=1e-6)
    torch.testing.assert_close(det.best_img, ests[want_min])


def test_wmv_does_not_fire_while_variance_keeps_falling():
    g = torch.Generator().manual_seed(1)
    base = torch.rand(1, 3, 4, 4, generator=g)
    n = 200
    det = WmvDetector(10, 30, base, n)
    for i in range(n):
        det.update(base + (1.0 / (i + 1)) * torch.randn(1, 3, 4, 4, generator=g), i)
    assert not det.fired()


def test_peak_tracker_finds_the_exact_best_iteration():
    x0 = torch.full((1, 3, 4, 4), 0.5)
    errs = [0.3, 0.2, 0.05, 0.1, 0.2]
    pk = PeakTracker(x0, len(errs))
    for i, e in enumerate(errs):
        pk.update(x0 + e, i)
    assert int(pk.best_iter) == 2
    assert float(pk.best_psnr) == pytest.approx(-10 * np.log10(0.05**2), abs=1e-4)
    torch.testing.assert_close(pk.best_img, x0 + 0.05)


def _calibration():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "es_calibration.py"
    spec = importlib.util.spec_from_file_location("es_calibration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_calibration_replays_the_detector_exactly():
    cal = _calibration()
    ests = _synthetic_estimates()
    det = WmvDetector(20, 60, ests[0], len(ests))
    for i, e in enumerate(ests):
        det.update(e, i)
        if det.fired():
            break
    psnrs = torch.arange(len(ests), dtype=torch.float32)
    got = cal.replay(cal.wmv_curve(torch.stack(ests), 20), psnrs, 60)
    assert got["fired"] and got["iter_es"] == int(det.best_iter)


def test_the_calibration_never_sees_a_test_photo_of_any_sweep():
    from pathlib import Path

    from dipddpm.yamlio import load_file
    from orchestrator.sweep.plan import expand
    from orchestrator.sweep.spec import parse_spec

    cal = _calibration()
    sweeps = Path(__file__).resolve().parent.parent / "sweeps"
    test_images = {img.id for path in sweeps.glob("*.yaml") for profile in ("cpu", "gpu")
                   for t in expand(parse_spec(load_file(path), path.name), profile)[0] for img in t.images.test}
    assert test_images and not set(cal.CALIBRATION) & test_images
    assert not set(cal.CALIBRATION) & set(cal.HOLDOUT)
    import json

    data = json.loads((Path(cal.__file__).parent / "es_calibration.json").read_text())
    assert {r["photo"] for r in data["runs"] if r["role"] == "calibration"} == set(cal.CALIBRATION)
    assert not {r["photo"] for r in data["runs"] if r["role"] == "calibration"} & test_images
    from dipddpm.trial import resolve

    cpu = resolve([], "cpu")
    chosen = data["chosen"]
    assert (cpu.es.window, cpu.es.patience) == (chosen["plain"]["window"], chosen["plain"]["patience"])
    assert cpu.es.for_stages() == (chosen["stage"]["window"], chosen["stage"]["patience"])
    # both can fire inside what they watch: a stage, and the shortest plain run calibrated
    assert chosen["stage"]["window"] - 1 + chosen["stage"]["patience"] < cpu.staged.iters_per_stage
    assert min(chosen[k]["calibration"]["fired_by_variant"][v] for k in chosen
               for v in chosen[k]["calibration"]["fired_by_variant"]) >= 0.5
