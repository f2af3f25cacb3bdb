import pytest

from dipddpm.config import nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError
from dipddpm.yamlio import loads


def test_yaml_reads_exponent_literals_as_numbers():
    assert loads("lr: 1e-4") == {"lr": 1e-4}
    assert loads("a: 1.5e3\nb: .5\nc: -2E-2\nd: 3\ne: '1e-4'") == {"a": 1500.0, "b": 0.5, "c": -0.02, "d": 3, "e": "1e-4"}


def test_precedence_later_layers_win():
    cfg = resolve([("base", {"dip": {"lr": 0.02}}), ("cell", nested({"dip.lr": 0.008}))], "cpu")
    assert cfg.dip.lr == 0.008
    assert cfg.data.size == 64  # from the cpu profile
    assert resolve([], "gpu").data.size == 256


def test_either_or_group_a_later_layer_replaces_the_other_member():
    cfg = resolve([("set", nested({"degradation.t_obs": 30}))], "cpu")
    assert cfg.degradation.t_obs == 30 and cfg.degradation.noise_std is None
    cfg = resolve([("a", nested({"degradation.t_obs": 30})), ("b", nested({"degradation.noise_std": 0.05}))], "cpu")
    assert cfg.degradation.noise_std == 0.05 and cfg.degradation.t_obs is None
    cfg = resolve([("set", nested({"staged.timesteps": [200, 120, 56]}))], "cpu")
    assert cfg.staged.levels is None and cfg.staged.timesteps == (200, 120, 56)


@pytest.mark.parametrize(
    "layer,message",
    [
        ({"degradation": {"noise_std": 0.1, "t_obs": 30}}, r"^degradation\.noise_std: set either noise_std or t_obs"),
        ({"staged": {"levels": [2, 1], "timesteps": [80, 56]}}, r"^staged\.levels: set either levels or timesteps"),
        ({"dip": {"lr": -0.01}}, r"^dip\.lr: expected a number > 0, got -0\.01$"),
        ({"dip": {"lrr": 0.01}}, r"^dip\.lrr: unknown key"),
        ({"dip": {"channels": "wide"}}, r"^dip\.channels: expected an integer, got 'wide'$"),
        ({"staged": {"variant": "fancy"}}, r"^staged\.variant: expected one of staged \| baseline"),
        ({"staged": {"levels": [2, 1, 0.5]}}, r"^staged\.levels\[2\]: expected a level >= 1 with targets=observation"),
        ({"staged": {"timesteps": [80, 40]}, "es": {"patience": 100}}, r"^staged\.timesteps\[1\]: expected a step >= t_obs=56"),
        ({"staged": {"levels": [1.25, 2]}, "es": {"patience": 100}}, r"^staged\.levels\[1\]: expected a strictly descending"),
        ({"staged": {"levels": [1.001, 1.0]}, "es": {"patience": 100}}, r"^staged\.levels\[1\]: level 1\.0 maps to step 56, the same step as level 1\.001"),
        ({"degradation": {"t_obs": 5000}}, r"^degradation\.t_obs: expected an integer in \[1, 999\]"),
        ({"es": {"stage_patience": 5000}},
         r"^es\.stage_patience: expected es\.stage_window − 1 \+ es\.stage_patience < the 240 iterations ES-WMV "
         r"watches in a stage \(staged\.iters_per_stage\), so that it can fire, got 25 − 1 \+ 5000 = 5024$"),
        ({"es": {"patience": 5000}}, r"^es\.stage_patience: .* got 25 − 1 \+ 5000"),  # the stages follow it
        ({"staged": {"variant": "baseline"}, "es": {"window": 1000, "patience": 201}},
         r"^es\.patience: expected .* < the 1200 iterations ES-WMV watches in the baseline's whole run"),
    ],
)
def test_bad_values_give_one_line_naming_the_key(layer, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve([("set", layer)], "cpu")
    assert "\n" not in str(info.value)


def test_clean_targets_may_go_below_the_observation():
    cfg = resolve([("set", {"staged": {"targets": "clean", "timesteps": [30, 25, 20, 15, 10, 5]}})], "cpu")
    assert cfg.staged.timesteps == (30, 25, 20, 15, 10, 5)


def test_baseline_ignores_the_ladder_so_equal_cells_share_a_key():
    base = {"staged": {"variant": "baseline"}}
    k1 = trial_key(resolve([("a", base), ("b", nested({"staged.levels": [3, 2, 1.5, 1.25, 1]}))], "cpu"))
    k2 = trial_key(resolve([("a", base), ("b", nested({"staged.levels": [4, 3, 2, 1.5, 1]}))], "cpu"))
    k3 = trial_key(resolve([("a", base), ("b", nested({"staged.targets": "clean", "staged.noise": "independent"}))], "cpu"))
    assert k1 == k2 == k3
    staged1 = trial_key(resolve([("b", nested({"staged.levels": [3, 2, 1.5, 1.25, 1]}))], "cpu"))
    staged2 = trial_key(resolve([("b", nested({"staged.levels": [4, 3, 2, 1.5, 1]}))], "cpu"))
    assert staged1 != staged2 != k1


def test_trial_key_changes_with_the_seed_and_any_field():
    a = resolve([], "cpu")
    assert trial_key(a) == trial_key(resolve([], "cpu"))
    assert trial_key(a) != trial_key(resolve([("s", {"seed": 1})], "cpu"))
    assert trial_key(a) != trial_key(resolve([("s", nested({"dip.lr": 0.008}))], "cpu"))


def test_the_stages_detector_follows_a_layer_that_sets_plain_dips_unless_it_sets_its_own():
    cpu = resolve([], "cpu")
    assert cpu.es.for_stages() == (cpu.es.stage_window, cpu.es.stage_patience) != (cpu.es.window, cpu.es.patience)
    follows = resolve([("l", {"es": {"window": 30, "patience": 40}})], "cpu")
    assert follows.es.for_stages() == (30, 40)
    own = resolve([("l", {"es": {"window": 30, "stage_window": 20}})], "cpu")
    assert own.es.for_stages() == (20, cpu.es.stage_patience) and own.es.window == 30
    base = resolve([("l", {"staged": {"variant": "baseline"}})], "cpu")
    assert (base.es.stage_window, base.es.stage_patience) == (None, None)  # plain DIP has no stages
    assert trial_key(base) == trial_key(resolve([("l", {"staged": {"variant": "baseline"},
                                                          "es": {"stage_window": 7}})], "cpu"))
