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
    sk_ssim = structural_similarity(ref, x, data_range=1.0, channel_axis=0)
    assert psnr(x, ref) == pytest.approx(sk_psnr, abs=1e-6)
    assert ssim(torch.from_numpy(x).float(), ref) == pytest.approx(sk_ssim, abs=1e-6)


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
