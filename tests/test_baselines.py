"""Edge-aware filters: constants preserved, flat noise smoothed, guide edges kept."""

from __future__ import annotations

import numpy as np
import pytest

from sharpdepth.evaluation import baselines


def _step_guide(n: int = 48) -> np.ndarray:
    guide = np.full((n, n, 3), 0.2)
    guide[:, n // 2 :] = (0.9, 0.6, 0.1)
    return guide


def _step_depth(n: int = 48) -> np.ndarray:
    depth = np.full((n, n), 2.0)
    depth[:, n // 2 :] = 5.0
    return depth


def test_box_mean_matches_brute_force() -> None:
    x = np.random.default_rng(0).normal(size=(7, 9))
    r = 2
    ref = np.array(
        [
            [x[max(i - r, 0) : i + r + 1, max(j - r, 0) : j + r + 1].mean() for j in range(9)]
            for i in range(7)
        ]
    )
    np.testing.assert_allclose(baselines.box_mean(x, r), ref, rtol=1e-12)


@pytest.mark.parametrize("grey", [False, True])
def test_guided_filter_preserves_constant(grey: bool) -> None:
    guide = np.random.default_rng(1).uniform(size=(20, 24, 3))
    if grey:
        guide = guide[..., 0]
    out = baselines.guided_filter(guide, np.full((20, 24), 3.7), radius=3, eps=1e-3)
    np.testing.assert_allclose(out, 3.7, rtol=1e-10)


def test_guided_filter_smooths_noise_in_flat_region() -> None:
    rng = np.random.default_rng(2)
    src = 4.0 + rng.normal(0, 0.2, size=(40, 40))
    guide = np.full((40, 40, 3), 0.5)
    out = baselines.guided_filter(guide, src, radius=4, eps=1e-3)
    assert out.std() < 0.25 * src.std()
    assert out.mean() == pytest.approx(src.mean(), abs=0.02)


def test_guided_filter_keeps_guide_edge_sharper_than_box_blur() -> None:
    rng = np.random.default_rng(3)
    true = _step_depth()
    src = true + rng.normal(0, 0.05, size=true.shape)
    out = baselines.guided_filter(_step_guide(), src, radius=4, eps=1e-4)
    box = baselines.box_mean(src, 4)
    band = slice(24 - 4, 24 + 4)
    err_guided = np.abs(out - true)[:, band].mean()
    err_box = np.abs(box - true)[:, band].mean()
    assert err_guided < 0.2 * err_box
    # uint8 guide is the same as the [0, 1] guide
    guide_u8 = np.round(_step_guide() * 255).astype(np.uint8)
    out_u8 = baselines.guided_filter(guide_u8, src, radius=4, eps=1e-4)
    np.testing.assert_allclose(out_u8, out, atol=1e-2)


def test_joint_bilateral_constant_noise_and_edge() -> None:
    rng = np.random.default_rng(4)
    guide = _step_guide()
    const = baselines.joint_bilateral_filter(guide, np.full((48, 48), 1.5), 2.0, 0.1)
    np.testing.assert_allclose(const, 1.5, rtol=1e-12)
    true = _step_depth()
    src = true + rng.normal(0, 0.2, size=true.shape)
    out = baselines.joint_bilateral_filter(guide, src, sigma_space=2.0, sigma_color=0.1)
    flat = (slice(None), slice(4, 20))
    assert (out - true)[flat].std() < 0.4 * (src - true)[flat].std()
    band = slice(24 - 3, 24 + 3)
    assert (
        np.abs(out - true)[:, band].mean()
        < 0.2 * np.abs(baselines.box_mean(src, 3) - true)[:, band].mean()
    )


def test_joint_bilateral_256_runs() -> None:
    rng = np.random.default_rng(5)
    guide = rng.uniform(size=(256, 256, 3))
    out = baselines.joint_bilateral_filter(guide, rng.uniform(1, 5, (256, 256)), 1.5, 0.1)
    assert out.shape == (256, 256) and np.isfinite(out).all()


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        baselines.guided_filter(np.zeros((5, 6, 2)), np.zeros((5, 6)), 1, 1e-3)
    with pytest.raises(ValueError):
        baselines.guided_filter(np.zeros((5, 6)), np.full((5, 6), np.nan), 1, 1e-3)
    with pytest.raises(ValueError):
        baselines.joint_bilateral_filter(np.zeros((5, 6)), np.zeros((5, 6)), 0.0, 0.1)
