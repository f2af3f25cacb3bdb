import dataclasses

import pytest
import torch

from dipddpm import trial
from dipddpm.config import nested, resolve
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
    cfg = resolve([("l", nested({"staged.levels": [1.2, 1.0], "data.size": 64, "es.patience": 100}))], "cpu")
    obs, schedule = _obs(cfg)
    chain = stage_targets(obs, cfg.staged, schedule, cfg.seed)
    indep = stage_targets(obs, dataclasses.replace(cfg.staged, noise="independent"), schedule, cfg.seed)
    def corr(a, b):
        return float(torch.corrcoef(torch.stack([(a - obs.y01).flatten(), (b - obs.y01).flatten()]))[0, 1])
    # Both noisier targets come from y; the chain's first hop is the same draw, so equal here,
    # and the extra noise of each is independent of y's residual in both modes.
    assert torch.equal(chain[0].target01, indep[0].target01)
    cfg3 = resolve([("l", nested({"staged.levels": [2.0, 1.5, 1.0], "data.size": 64, "es.patience": 100}))], "cpu")
    c3 = stage_targets(obs, cfg3.staged, schedule, cfg.seed)
    i3 = stage_targets(obs, dataclasses.replace(cfg3.staged, noise="independent"), schedule, cfg.seed)
    # In a chain the noisiest target is built from the middle one: their extra noise is correlated.
    assert corr(c3[0].target01, c3[1].target01) > 0.3
    assert abs(corr(i3[0].target01, i3[1].target01)) < 0.1


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
    timing = {"time_s", "wall_s", "dip_s", "ms_per_iter"}
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


@pytest.mark.parametrize("kernel", [True, False])  # the fused kernel called directly; torch.optim's fallback
def test_flat_fused_adam_makes_the_same_updates_as_per_tensor_adam(kernel, monkeypatch):
    from dipddpm.loop import FlatAdam

    if not kernel:
        monkeypatch.delattr(torch, "_fused_adam_")
    from dipddpm.nets import SkipNet

    torch.manual_seed(0)
    nets = [SkipNet(8, 3, 3, 8, 2, 3) for _ in range(3)]
    for n in nets[1:]:
        n.load_state_dict(nets[0].state_dict())
    opts = [FlatAdam(nets[0].parameters(), 0.01), torch.optim.Adam(nets[1].parameters(), lr=0.01, foreach=False),
            torch.optim.Adam(nets[2].parameters(), lr=0.01)]
    assert (opts[0].fallback is None) == kernel
    z, target = torch.rand(1, 8, 32, 32), torch.rand(1, 3, 32, 32)
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
    assert not torch.equal(flat(z), SkipNet(8, 3, 3, 8, 2, 3)(z))
