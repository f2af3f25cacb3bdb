import dataclasses

import pytest
import torch

from dipddpm import trial
from dipddpm.config import nested
from dipddpm.trial import resolve
from dipddpm.degradation import noise_level, observe, schedule_of
from dipddpm.images import TEST_IMAGES, TRAIN_IMAGES, load_image
from dipddpm.staged import stage_targets


def _obs(cfg, name="astronaut"):
    schedule = schedule_of(cfg)
    return observe(name, load_image(name, cfg.data.size), schedule, noise_level(cfg, schedule), cfg.seed), schedule


def test_levels_map_to_the_steps_with_the_nearest_sigma(tiny_layers):
    cfg = resolve(tiny_layers + [("l", nested({"staged.levels": [3, 2, 1.5, 1]}))], "cpu")
    obs, schedule = _obs(cfg)
    steps = [s.step for s in stage_targets(obs, cfg.staged, schedule, cfg.seed)]
    sig = obs.level.noise_std
    want = [min(range(1000), key=lambda t: abs(schedule.sigma(t) - lv * sig)) for lv in (3, 2, 1.5, 1)]
    assert steps == want
    assert steps[-1] == obs.level.t_obs
    assert steps == sorted(steps, reverse=True)


def test_observation_targets_never_use_the_clean_image(tiny_layers):
    cfg = resolve(tiny_layers, "cpu")
    obs, schedule = _obs(cfg)
    other = dataclasses.replace(obs, x0=torch.rand_like(obs.x0))  # change x0, keep y
    a = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    b = stage_targets(other, cfg.staged, schedule, cfg.seed)
    for sa, sb in zip(a, b):
        assert torch.equal(sa.target01, sb.target01)
    assert torch.equal(a[-1].target01, obs.y01)  # level 1 is y itself
    # The oracle (clean) targets do depend on x0.
    clean = dataclasses.replace(cfg.staged, targets="clean")
    ca = stage_targets(obs, clean, schedule, cfg.seed)
    cb = stage_targets(other, clean, schedule, cfg.seed)
    assert not torch.equal(ca[0].target01, cb[0].target01)


def test_chain_targets_are_one_trajectory_independent_ones_are_not():
    cfg = resolve([("l", nested({"staged.levels": [2.0, 1.5, 1.0], "data.size": 64, "es.patience": 100}))], "cpu")
    obs, schedule = _obs(cfg)
    chain = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    indep = stage_targets(obs, dataclasses.replace(cfg.staged, noise="independent"), schedule, cfg.seed)
    t0, t1 = chain[0].step, chain[1].step

    def signed(stage):  # back from what DIP sees to x_t in the DDPM's space
        return (2 * stage.target01 - 1) * schedule.abar(stage.step) ** 0.5

    ratio = schedule.abar(t0) / schedule.abar(t1)
    # A chain draws the noisiest target from the middle one: x_t0 = sqrt(r)·x_t1 + sqrt(1 − r)·ε, so the
    # increment has variance 1 − r. Drawn apart from y, it also carries the middle target's own noise.
    chain_var = float((signed(chain[0]) - ratio**0.5 * signed(chain[1])).var())
    indep_var = float((signed(indep[0]) - ratio**0.5 * signed(indep[1])).var())
    assert chain_var == pytest.approx(1 - ratio, rel=0.1)
    # apart: (1 − ᾱ_t0/ᾱ_y) + r·(1 − ᾱ_t1/ᾱ_y), which exceeds the chain's 1 − r by 2·r·(1 − ᾱ_t1/ᾱ_y)
    extra = 2 * ratio * (1 - schedule.abar(t1) / schedule.abar(obs.level.t_obs))
    assert indep_var == pytest.approx(1 - ratio + extra, rel=0.1) and indep_var > 1.3 * chain_var


def test_train_and_test_lists_are_disjoint():
    assert not set(TEST_IMAGES) & set(TRAIN_IMAGES)


def test_staged_and_baseline_see_the_identical_observation(tiny_layers):
    staged = resolve(tiny_layers, "cpu")
    base = resolve(tiny_layers + [("b", nested({"staged.variant": "baseline", "dip.lr": 0.05}))], "cpu")
    ys = [o.y for o in trial.observations(staged)], [o.y for o in trial.observations(base)]
    assert all(torch.equal(a, b) for a, b in zip(*ys))
    other_seed = resolve(tiny_layers + [("s", {"seed": 7})], "cpu")
    assert not torch.equal(next(trial.observations(other_seed)).y, ys[0][0])


def test_a_run_reports_finite_metrics_and_is_deterministic(tiny_layers):
    cfg = resolve(tiny_layers, "cpu")
    reports = []
    first = trial.run(cfg, report=lambda step, m: reports.append((step, m)))
    second = trial.run(cfg)
    assert first.status == "ok"
    timing = {"time_s", "wall_s", "dip_s", "ms_per_iter", "ref_s"}
    untimed = [{k: v for k, v in r.metrics.items() if k not in timing} for r in (first, second)]
    assert untimed[0] == untimed[1] and len(untimed[0]) > 20
    m = first.per_image["astronaut"]
    assert m["iters"] == 60 and 0 <= m["iter_peak"] < 60 and 0 <= m["iter_es"] < 60
    assert m["psnr_peak"] >= m["psnr_es"] - 1e-9 and m["es_gap_db"] >= 0
    assert [s for s, _ in reports] == [10, 20, 30, 40, 50, 60]
    assert reports[-1][1]["progress"] == 1.0
    curves = first.curves["astronaut"]
    assert len(curves["psnr"]) == 60 and curves["stage_boundaries"] == [0, 30]


@pytest.mark.parametrize("lr", [1e10, 1e38])  # NaN loss; Adam's step size overflowing float
def test_divergence_is_reported_not_raised(tiny_layers, lr):
    cfg = resolve(tiny_layers + [("lr", nested({"dip.lr": lr, "dip.output_ema": None}))], "cpu")
    result = trial.run(cfg)
    assert result.status == "diverged"
    assert "non-finite" in result.error


# the fused kernel called directly; torch.optim's fallback without the op, or when the op has no kernel here
@pytest.mark.parametrize("kernel", [True, "missing", "no-kernel"])
def test_flat_fused_adam_makes_the_same_updates_as_per_tensor_adam(kernel, monkeypatch, request):
    from dipddpm.loop import FlatAdam, fused_kernel_works

    request.addfinalizer(fused_kernel_works.cache_clear)  # runs before monkeypatch restores torch
    fused_kernel_works.cache_clear()
    if kernel == "missing":
        monkeypatch.delattr(torch, "_fused_adam_")
    elif kernel == "no-kernel":  # torch < 2.4 on a CPU: the op exists, its CPU kernel does not
        def no_kernel(*args, **kwargs):
            raise NotImplementedError("Could not run 'aten::_fused_adam_' with arguments from the 'CPU' backend")
        monkeypatch.setattr(torch, "_fused_adam_", no_kernel)
    from dipddpm.nets import SkipNet

    torch.manual_seed(0)
    nets = [SkipNet(8, 3, 3, 8, 2, 3) for _ in range(3)]
    for n in nets[1:]:
        n.load_state_dict(nets[0].state_dict())
    opts = [FlatAdam(nets[0].parameters(), 0.01), torch.optim.Adam(nets[1].parameters(), lr=0.01, foreach=False),
            torch.optim.Adam(nets[2].parameters(), lr=0.01)]
    assert (opts[0].fallback is None) == (kernel is True)
    z, target = torch.rand(1, 8, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = nets[0](z)
    for _ in range(5):
        for net, opt in zip(nets, opts):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(z), target).backward()
            opt.step()
    flat, single, default = nets
    # Conv biases just before a BatchNorm get gradients of pure rounding noise, which Adam scales
    # up to lr-sized steps; they cannot change the output. Every other parameter and the output
    # agree to rounding with per-tensor Adam.
    for pa, pb in zip(flat.parameters(), single.parameters()):
        if pa.ndim > 1:
            assert torch.allclose(pa, pb, atol=1e-6)
    assert torch.allclose(flat(z), single(z), atol=1e-6)
    assert torch.allclose(flat(z), default(z), atol=1e-5)
    with torch.no_grad():
        assert float((flat(z) - before).abs().max()) > 1e-3  # and they did take steps


def test_the_wmv_switch_moves_on_early_and_takes_the_es_point_in_the_final_stage(tiny_layers):
    # The switch detector fires in stage 0; the headline detector used to latch there too
    # (psnr_es 10.2 dB at iteration 12 of 130 here, against 17.2 dB at the end).
    layer = nested({"staged.levels": [3, 2, 1], "staged.iters_per_stage": 60, "staged.stage_switch": "wmv",
                    "es.window": 5, "es.patience": 15})
    res = trial.run(resolve(tiny_layers + [("wmv", layer)], "cpu"))
    m, curves = res.per_image["astronaut"], res.curves["astronaut"]
    bounds = curves["stage_boundaries"]
    assert len(bounds) == 3 and bounds[1] < 60 and bounds[2] - bounds[1] < 60  # moved on before the cap
    assert m["iters"] == bounds[2] + 60  # the final stage runs its full length
    assert m["iter_es"] >= bounds[2]  # the ES point comes from the final stage's outputs (target y)
    assert m["psnr_es"] > m["psnr"] - 3


def test_when_es_never_fires_the_es_point_is_the_last_iteration(tiny_layers):
    # 60 iterations: a variance minimum in the first 6 could fire; DIP's outputs settle later than that
    layer = nested({"staged.variant": "baseline", "es.window": 5, "es.patience": 54})
    m = trial.run(resolve(tiny_layers + [("quiet", layer)], "cpu")).per_image["astronaut"]
    assert m["es_fired"] is False and m["iter_es"] == m["iters"] - 1 == 59
    assert m["psnr_es"] == m["psnr"] and m["es_gap_db"] == m["psnr_peak"] - m["psnr"]