"""compute.precision (bf16 autocast) and compute.channels_last, checked on the CPU: the same
maths in another layout gives the same numbers; bf16 stays close to fp32; every path runs."""

import math

import pytest
import torch

from dipddpm import trial
from dipddpm.config import ComputeConfig, nested, trial_key
from dipddpm.trial import resolve
from dipddpm.errors import ConfigError
from dipddpm.loop import DipFitter, FlatAdam

from conftest import TINY
from test_hybrid import TINY_HYBRID

CPU = torch.device("cpu")


def _dip_cfg(**dotted):
    return resolve([("tiny", TINY), ("set", nested(dotted))], "cpu")


def test_compute_defaults_and_errors_name_the_key():
    cfg = _dip_cfg()
    assert cfg.compute == ComputeConfig(precision="fp32", channels_last=False)
    assert trial_key(_dip_cfg(**{"compute.precision": "bf16"})) != trial_key(cfg)
    with pytest.raises(ConfigError, match=r"^compute\.precision: expected one of fp32 \| bf16, got 'fp16'"):
        _dip_cfg(**{"compute.precision": "fp16"})
    with pytest.raises(ConfigError, match=r"^compute\.channels_last: expected true or false, got 'yes'"):
        _dip_cfg(**{"compute.channels_last": "yes"})


def test_flat_adam_keeps_channels_last_weights_channels_last_and_updates_them_alike():
    from dipddpm.nets import SkipNet

    torch.manual_seed(0)
    nets = [SkipNet(8, 3, 3, 8, 2, 3), SkipNet(8, 3, 3, 8, 2, 3)]
    nets[1].load_state_dict(nets[0].state_dict())
    start = [p.detach().clone() for p in nets[1].parameters() if p.ndim == 4]
    nets[1].to(memory_format=torch.channels_last)
    opts = [FlatAdam(n.parameters(), 0.01) for n in nets]
    convs = [p for p in nets[1].parameters() if p.ndim == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    z, target = torch.rand(1, 8, 32, 32), torch.rand(1, 3, 32, 32)
    for _ in range(5):
        for net, opt, fmt in zip(nets, opts, (torch.contiguous_format, torch.channels_last)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(z.contiguous(memory_format=fmt)), target).backward()
            opt.step()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)  # still views of the flat buffer
    assert torch.allclose(nets[0](z), nets[1](z), atol=1e-5)
    # the channels_last conv weights took real Adam steps from their own start (5 steps of lr 0.01 each)
    steps = [float((p.detach() - p0).abs().max()) for p, p0 in
             zip([p for p in nets[1].parameters() if p.ndim == 4], start)]
    assert min(steps) > 0.01 and max(steps) < 0.06


@pytest.mark.parametrize("groups", [1, 3])
def test_a_channels_last_dip_fit_follows_the_default_one(groups):
    cfg = _dip_cfg()
    target = torch.rand(1, 3 * groups, 32, 32, generator=torch.Generator().manual_seed(1))
    fits = [DipFitter(cfg.dip, "img", 0, 32, CPU, groups, ComputeConfig(channels_last=cl)) for cl in (False, True)]
    other = DipFitter(cfg.dip, "img", 1, 32, CPU, groups)  # another seed: what "different" looks like
    for it in range(8):
        (est_a, _, loss_a), (est_b, _, loss_b), (est_c, _, _) = (f.step(target, it) for f in (*fits, other))
    assert est_b.is_contiguous() and est_b.dtype == torch.float32
    # Adam turns rounding differences of near-zero gradients into lr-sized steps: agreement to
    # rounding-driven ~1e-3 after 8 steps, against ~1e-1 between two seeds.
    assert float((est_a - est_b).abs().max()) < 2e-3 < 0.02 < float((est_a - est_c).abs().max())
    assert abs(float(loss_a) - float(loss_b)) < 1e-3 * float(loss_a)  # 0.1%: rounding, not another fit


def test_a_bf16_dip_fit_stays_near_fp32_and_its_estimate_is_fp32():
    cfg = _dip_cfg()
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    fp32, bf16 = (DipFitter(cfg.dip, "img", 0, 32, CPU, compute=ComputeConfig(precision=p)) for p in ("fp32", "bf16"))
    losses = []
    for it in range(10):
        (est_a, _, la), (est_b, _, lb) = fp32.step(target, it), bf16.step(target, it)
        losses.append((float(la), float(lb)))
    assert est_b.dtype == torch.float32 and all(p.dtype == torch.float32 for p in bf16.net.parameters())
    assert losses[-1][1] < losses[0][1]  # it learns
    assert all(abs(a - b) < 0.05 * a for a, b in losses)  # bf16 rounding, not a different fit
    assert float((est_a - est_b).abs().max()) < 0.05


def test_a_bf16_channels_last_hybrid_trial_runs_end_to_end(tmp_path):
    from dipddpm.cache import ArtefactCache

    layers = [("tiny", TINY_HYBRID), ("set", nested({"ddpm.train_steps": 6, "hybrid.dip_iters": 10,
                                                      "compute.precision": "bf16", "compute.channels_last": True}))]
    cfg = resolve(layers, "cpu")
    res = trial.run(cfg, cache=ArtefactCache(tmp_path))
    assert res.status == "ok"
    for name, m in res.per_image.items():
        assert 5 < m["psnr"] < 40 and 5 < m["psnr_dip"] < 40, (name, m)
        assert res.images[name]["hybrid"].dtype == torch.float32
    assert math.isfinite(res.metrics["train_loss_last"]) and res.metrics["train_loss_last"] > 0
