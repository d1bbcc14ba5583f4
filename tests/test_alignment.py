"""Alignment recovers known scale / shift in depth and disparity; masks are respected."""

from __future__ import annotations

import numpy as np
import pytest

from sharpdepth.evaluation import alignment


def _gt(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1.0, 20.0, size=(12, 16))


def test_none_is_identity() -> None:
    gt = _gt()
    out, info = alignment.align(gt * 2, gt, None, "none")
    np.testing.assert_array_equal(out, gt * 2)
    assert info == {"scale": 1.0, "shift": 0.0}


def test_median_recovers_scale() -> None:
    gt = _gt()
    out, info = alignment.align(gt / 3.0, gt, np.ones_like(gt, dtype=bool), "median")
    assert info["scale"] == pytest.approx(3.0)
    np.testing.assert_allclose(out, gt, rtol=1e-12)


def test_lstsq_recovers_scale_and_shift_despite_garbage_outside_mask() -> None:
    gt = _gt()
    pred = (gt - 1.5) / 0.25  # gt = 0.25 * pred + 1.5
    valid = np.ones_like(gt, dtype=bool)
    valid[:, :3] = False
    pred[~valid] = 1e6
    gt_noisy = gt.copy()
    gt_noisy[~valid] = np.nan
    out, info = alignment.align(pred, gt_noisy, valid, "lstsq")
    assert info["scale"] == pytest.approx(0.25, rel=1e-10)
    assert info["shift"] == pytest.approx(1.5, rel=1e-10)
    np.testing.assert_allclose(out[valid], gt[valid], rtol=1e-10)
    assert out.dtype == np.float64


def test_lstsq_disparity_recovers_affine_disparity() -> None:
    gt = _gt()
    scale, shift = 2.0, 0.05
    pred = 1.0 / ((1.0 / gt - shift) / scale)  # 1/gt = scale / pred + shift
    valid = np.ones_like(gt, dtype=bool)
    valid[0] = False
    pred[0] = -4.0  # non-positive outside the mask: excluded from the fit
    out, info = alignment.align(pred, gt, valid, "lstsq_disparity")
    assert info["scale"] == pytest.approx(scale, rel=1e-9)
    assert info["shift"] == pytest.approx(shift, rel=1e-9)
    np.testing.assert_allclose(out[valid], gt[valid], rtol=1e-9)
    assert np.isfinite(out).all() and (out > 0).all()


def test_lstsq_disparity_clamps_non_positive_disparity() -> None:
    gt = _gt()
    pred = gt.copy()
    pred[0, 0] = 1e9  # disparity ~0: aligned disparity stays near the fitted shift
    out, info = alignment.align_lstsq_disparity(pred, gt, None, min_disparity=0.5)
    assert np.isfinite(out).all() and out.max() <= 1.0 / 0.5 + 1e-12
    assert info["n_clamped"] >= 1


def test_unknown_mode_and_bad_shapes() -> None:
    gt = _gt()
    with pytest.raises(ValueError):
        alignment.align(gt, gt, None, "affine")
    with pytest.raises(ValueError):
        alignment.align(gt, gt[:, :3], None, "lstsq")
    assert set(alignment.ALIGNMENTS) == {"none", "median", "lstsq", "lstsq_disparity"}
