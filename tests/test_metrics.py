import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dipddpm.metrics import psnr, psnr_from_mse, ssim


def test_psnr_matches_analytic_value_for_known_mse():
    ref = np.full((3, 16, 16), 0.5)
    x = ref + 0.1  # MSE exactly 0.01 -> 20 dB at data range 1
    assert psnr(x, ref) == pytest.approx(20.0, abs=1e-9)
    assert psnr_from_mse(0.01) == pytest.approx(20.0, abs=1e-12)


def test_psnr_and_ssim_match_scikit_image_on_random_images():
    rng = np.random.default_rng(0)
    ref = rng.random((3, 32, 32))
    x = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)
    sk_psnr = peak_signal_noise_ratio(ref, x, data_range=1.0)
    sk_ssim = structural_similarity(ref, x, data_range=1.0, channel_axis=0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert psnr(x, ref) == pytest.approx(sk_psnr, abs=1e-6)
    x32 = torch.from_numpy(x).float()
    assert ssim(x32, ref) == pytest.approx(structural_similarity(ref, x32.double().numpy(), data_range=1.0,
                                                                 channel_axis=0, gaussian_weights=True, sigma=1.5,
                                                                 use_sample_covariance=False), abs=1e-6)
    assert ssim(x, ref) == pytest.approx(sk_ssim, abs=1e-6)
    # not scikit-image's default (a uniform 7×7 window with the sample-covariance correction)
    assert abs(ssim(x, ref) - structural_similarity(ref, x, data_range=1.0, channel_axis=0)) > 1e-4


def test_ssim_is_wang_et_al_with_an_11x11_gaussian_window():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(2)
    ref = rng.random((1, 40, 40))
    x = np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1)

    def blur(a):  # σ = 1.5 truncated at 3.5σ: the 11×11 window of Wang et al. (2004)
        return gaussian_filter(a[0], 1.5, truncate=3.5)

    mx, my = blur(x), blur(ref)
    vx, vy, cov = blur(x * x) - mx**2, blur(ref * ref) - my**2, blur(x * ref) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, ref) == pytest.approx(ssim_map[5:-5, 5:-5].mean(), abs=1e-6)  # the valid region


def test_an_estimate_far_outside_0_1_is_refused_before_it_is_clipped():
    from dipddpm.metrics import estimate

    rng = np.random.default_rng(3)
    img = torch.from_numpy(rng.random((3, 16, 16))).float()
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*\[-1,1\] image"):
        estimate(2 * img - 1, "psnr")  # the [-1,1] mix-up, which clipping would have hidden
    with pytest.raises(ValueError, match="NaN"):
        estimate(img * float("nan"), "psnr")
    nudged = img.clone()
    nudged[0, 0, :2] = 1.03  # a sampler's rounding: a few pixels just past 1
    out = estimate(nudged, "psnr")
    assert float(out.max()) == 1.0 and torch.equal(out[1:], img[1:])


def test_a_minus_one_to_one_estimate_against_a_unit_reference_is_rejected():
    rng = np.random.default_rng(1)
    ref = rng.random((3, 16, 16))
    signed = 2 * ref - 1  # the classic mix-up: [-1,1] vs [0,1]
    with pytest.raises(ValueError, match=r"\[0, 1"):
        psnr(signed, ref)
    with pytest.raises(ValueError, match=r"\[0, 1"):
        ssim(ref, signed)


def test_shape_mismatch_and_non_chw_inputs_are_rejected():
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr(np.zeros((3, 16, 16)), np.zeros((3, 16, 17)))
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(np.zeros((3, 16, 16)), np.zeros((1, 16, 16)))
    with pytest.raises(ValueError, match="C, H, W"):
        psnr(np.zeros((16, 16)), np.zeros((16, 16)))
