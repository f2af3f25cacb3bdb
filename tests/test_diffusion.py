import pytest
import torch
from diffusers import DDPMScheduler

from dipddpm.diffusion import Schedule, q_sample, q_sample_from, shown_to_dip, to_signed


@pytest.mark.parametrize("schedule,T", [("linear", 1000), ("squaredcos_cap_v2", 1000), ("linear", 500)])
def test_forward_process_equals_diffusers_add_noise(schedule, T):
    sched = Schedule(schedule, T)
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=schedule)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(3, 8, 8, generator=g)
    for t in (0, 30, T // 2, T - 1):
        ours = q_sample(sched, x0, t, eps)
        theirs = ref.add_noise(x0[None], eps[None], torch.tensor([t]))[0]
        torch.testing.assert_close(ours.float(), theirs, rtol=0, atol=1e-6)


def test_sigma_of_the_observation_steps_matches_the_design_numbers():
    lin, cos = Schedule("linear", 1000), Schedule("squaredcos_cap_v2", 1000)
    assert lin.sigma(30) * 255 == pytest.approx(14.2, abs=0.1)
    assert cos.sigma(30) * 255 == pytest.approx(7.6, abs=0.1)
    # σ = 25/255 lands on the step whose σ_t is nearest (brute force over all steps).
    target = 25 / 255
    t = lin.step_for_sigma(target)
    assert all(abs(lin.sigma(t) - target) <= abs(lin.sigma(s) - target) for s in range(1000))
    assert 50 <= t <= 60


def test_unbiased_view_of_x_t_is_x0_plus_noise_of_std_sigma():
    sched = Schedule("linear", 1000)
    g = torch.Generator().manual_seed(3)
    x0 = torch.full((1, 64, 64), 0.3, dtype=torch.float64)
    t = 56
    eps = torch.randn(50, 1, 64, 64, generator=g, dtype=torch.float64)
    y01 = shown_to_dip(sched, q_sample(sched, to_signed(x0), t, eps), t)
    assert float(y01.mean()) == pytest.approx(0.3, abs=2e-3)
    assert float(y01.std()) == pytest.approx(sched.sigma(t), rel=0.01)


def test_two_forward_hops_have_the_one_hop_marginal():
    sched = Schedule("linear", 1000)
    g = torch.Generator().manual_seed(4)
    x0 = torch.zeros(200_000, dtype=torch.float64) + 0.5
    x_s = q_sample(sched, x0, 40, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    x_t = q_sample_from(sched, x_s, 40, 120, torch.randn(x0.shape, generator=g, dtype=torch.float64))
    a = sched.abar(120)
    assert float(x_t.mean()) == pytest.approx(a**0.5 * 0.5, abs=5e-3)
    assert float(x_t.var()) == pytest.approx(1 - a, rel=0.02)


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("T", [50, 500, 1000])
def test_our_betas_are_bit_equal_to_the_scheduler(schedule, T):
    from dipddpm.diffusion import Schedule, betas

    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=schedule)
    assert torch.equal(betas(schedule, T), ref.betas)
    assert torch.equal(Schedule(schedule, T).alphas_cumprod, ref.alphas_cumprod.to(torch.float64))
