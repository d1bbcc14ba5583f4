"""Depth and boundary metrics: hand-computed values, masks, invariances, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from sharpdepth.evaluation import metrics

# Two rows: the first row is valid, the second is masked out and holds garbage.
GT = np.array([[1.0, 2.0, 4.0, 10.0], [np.nan, -3.0, 0.0, 7.0]])
PRED = np.array([[2.0, 2.0, 3.5, 13.0], [5.0, np.inf, -1.0, np.nan]])
VALID = np.array([[True, True, True, True], [False, False, False, False]])

G = np.array([1.0, 2.0, 4.0, 10.0])
P = np.array([2.0, 2.0, 3.5, 13.0])


def test_hand_computed_values() -> None:
    # per pixel: |p-g| = 1, 0, 0.5, 3; ratios p/g = 2, 1, 0.875, 1.3
    abs_rel = (1 / 1 + 0 + 0.5 / 4 + 3 / 10) / 4
    sq_rel = (1 / 1 + 0 + 0.25 / 4 + 9 / 10) / 4
    rmse = math.sqrt((1 + 0 + 0.25 + 9) / 4)
    logs = [math.log(2.0), 0.0, math.log(0.875), math.log(1.3)]
    rmse_log = math.sqrt(sum(d * d for d in logs) / 4)
    log10 = sum(abs(d) for d in logs) / math.log(10) / 4
    mean_d = sum(logs) / 4
    silog = 100 * math.sqrt(sum(d * d for d in logs) / 4 - mean_d**2)
    # max(p/g, g/p) = 2, 1, 1.142857, 1.3 against 1.25, 1.5625, 1.953125
    expected = {
        "abs_rel": abs_rel,
        "sq_rel": sq_rel,
        "rmse": rmse,
        "rmse_log": rmse_log,
        "log10": log10,
        "silog": silog,
        "delta1": 0.5,
        "delta2": 0.75,
        "delta3": 0.75,
    }
    got = metrics.depth_metrics(PRED, GT, VALID)
    assert set(got) == set(metrics.DEPTH_METRIC_NAMES)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    assert metrics.abs_rel(PRED, GT, VALID) == pytest.approx(abs_rel)
    assert metrics.sq_rel(PRED, GT, VALID) == pytest.approx(sq_rel)
    assert metrics.rmse(PRED, GT, VALID) == pytest.approx(rmse)
    assert metrics.rmse_log(PRED, GT, VALID) == pytest.approx(rmse_log)
    assert metrics.log10(PRED, GT, VALID) == pytest.approx(log10)
    assert metrics.silog(PRED, GT, VALID) == pytest.approx(silog)
    for k, v in ((1, 0.5), (2, 0.75), (3, 0.75)):
        assert metrics.delta(PRED, GT, VALID, k) == pytest.approx(v)


def test_mask_ignores_garbage() -> None:
    clean = metrics.depth_metrics(P[None], G[None])
    assert metrics.depth_metrics(PRED, GT, VALID) == pytest.approx(clean)


def test_abs_rel_and_silog_scale_properties() -> None:
    assert metrics.abs_rel(7.5 * PRED, 7.5 * GT, VALID) == pytest.approx(
        metrics.abs_rel(PRED, GT, VALID)
    )
    assert metrics.silog(3.0 * PRED, GT, VALID) == pytest.approx(metrics.silog(PRED, GT, VALID))
    assert metrics.silog(GT, GT, VALID) == 0.0


def test_non_positive_prediction_is_clamped_not_nan() -> None:
    pred = P.copy()
    pred[1] = 0.0
    got = metrics.depth_metrics(pred[None], G[None])
    assert all(np.isfinite(v) for v in got.values())
    clamped = pred.copy()
    clamped[1] = metrics.PRED_EPS
    assert got == pytest.approx(metrics.depth_metrics(clamped[None], G[None]))
    nan_pred = pred.copy()
    nan_pred[1] = np.nan
    assert metrics.depth_metrics(nan_pred[None], G[None]) == pytest.approx(got)


def test_empty_mask_gives_nan_and_mean_skips_it() -> None:
    empty = metrics.depth_metrics(PRED, GT, np.zeros_like(VALID))
    assert all(math.isnan(v) for v in empty.values())
    good = metrics.depth_metrics(PRED, GT, VALID)
    other = metrics.depth_metrics(GT, GT, VALID)
    mean = metrics.mean_metrics([good, empty, other])
    assert mean["abs_rel"] == pytest.approx((good["abs_rel"] + 0.0) / 2)
    assert mean["delta1"] == pytest.approx((0.5 + 1.0) / 2)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        metrics.depth_metrics(PRED, GT[:, :3])
    with pytest.raises(ValueError):
        metrics.abs_rel(PRED, GT, VALID[:, :2])


# ----------------------------------------------------------------------------- boundaries


def _scene(n: int = 64) -> np.ndarray:
    """A box in front of a wall plus a thin pole: contours in all four directions."""
    depth = np.full((n, n), 6.0)
    depth[16:48, 20:44] = 2.0
    depth[8:56, 52:55] = 3.0
    return depth


def test_pdbe_perfect_is_zero_blur_is_worse() -> None:
    gt = _scene()
    assert metrics.pseudo_boundary_error(gt, gt) == {"pdbe_acc": 0.0, "pdbe_comp": 0.0}
    # a metric rescaling leaves the normalised maps, hence the edges, unchanged
    assert metrics.pseudo_boundary_error(2.5 * gt, gt) == {"pdbe_acc": 0.0, "pdbe_comp": 0.0}
    mild = metrics.pseudo_boundary_error(ndimage.gaussian_filter(gt, 2.0), gt)
    strong = metrics.pseudo_boundary_error(ndimage.gaussian_filter(gt, 4.0), gt)
    assert 0.0 < mild["pdbe_acc"] < strong["pdbe_acc"]
    assert 0.0 < mild["pdbe_comp"] < strong["pdbe_comp"]


def test_pdbe_no_edge_rule_and_no_gt_edge() -> None:
    gt = _scene()
    flat = np.full_like(gt, 3.0)
    assert metrics.pseudo_boundary_error(flat, gt) == {"pdbe_acc": 10.0, "pdbe_comp": 10.0}
    out = metrics.pseudo_boundary_error(gt, flat)
    assert math.isnan(out["pdbe_acc"]) and math.isnan(out["pdbe_comp"])


def test_pdbe_completeness_is_untruncated() -> None:
    gt = np.full((40, 80), 5.0)
    gt[:, 10:] = 2.0
    gt[:, 60:] = 8.0
    pred = np.full_like(gt, 5.0)
    pred[:, 11:] = 2.0  # finds the first GT edge only; the second is ~50 px away
    out = metrics.pseudo_boundary_error(pred, gt)
    assert out["pdbe_acc"] <= 1.5
    assert out["pdbe_comp"] > 10.0


def test_pdbe_mask_ignores_garbage() -> None:
    rng = np.random.default_rng(0)
    gt = _scene()
    pred = ndimage.gaussian_filter(gt, 2.0)
    valid = np.ones_like(gt, dtype=bool)
    valid[:, 58:] = False
    outs = []
    for _ in range(2):
        g, p = gt.copy(), pred.copy()
        g[~valid] = rng.uniform(-5, 50, size=(~valid).sum())
        p[~valid] = rng.uniform(-5, 50, size=(~valid).sum())
        outs.append(metrics.pseudo_boundary_error(p, g, valid))
    assert outs[0] == outs[1]
    assert np.isfinite(outs[0]["pdbe_acc"]) and outs[0]["pdbe_acc"] > 0


def test_canny_thresholds_are_absolute_on_normalised_maps() -> None:
    # a unit step in [0, 1] peaks at ~2.26 Sobel units: an edge for 0.1 / 0.2 but not
    # for thresholds above that peak (they are not relative to the maximum gradient)
    step = np.zeros((32, 32))
    step[:, 16:] = 1.0
    assert metrics.canny_edges(step).any()
    assert not metrics.canny_edges(step, low=2.5, high=3.0).any()
    # a 5 % step is below the 0.2 threshold although it is the largest gradient
    assert not metrics.canny_edges(0.05 * step).any()


def _annotated_edges(depth: np.ndarray) -> np.ndarray:
    """Edges exactly where the official detector finds them on the true depth."""
    return metrics.canny_edges(metrics.minmax_normalize(depth), None, 0.15, 0.3)


@pytest.mark.parametrize("variant", ["koch2018", "directed"])
def test_ibims_dbe_perfect_blur_and_no_edges(variant: str) -> None:
    gt = _scene()
    edges = _annotated_edges(gt)
    perfect = metrics.ibims_dbe(gt, edges, variant=variant)
    assert perfect == {"dbe_acc": 0.0, "dbe_comp": 0.0}
    blurred = metrics.ibims_dbe(ndimage.gaussian_filter(gt, 3.0), edges, variant=variant)
    assert blurred["dbe_acc"] > 0.0 and blurred["dbe_comp"] > 0.0
    flat = metrics.ibims_dbe(np.full_like(gt, 2.0), edges, variant=variant)
    assert flat == {"dbe_acc": 10.0, "dbe_comp": 10.0}
    none = metrics.ibims_dbe(gt, np.zeros_like(edges), variant=variant)
    assert math.isnan(none["dbe_acc"]) and math.isnan(none["dbe_comp"])


def test_ibims_dbe_completeness_truncation_differs_between_variants() -> None:
    edges = np.zeros((40, 80), dtype=bool)
    edges[:, 10] = True
    edges[:, 60] = True
    pred = np.full(edges.shape, 5.0)
    pred[:, 11:] = 2.0
    official = metrics.ibims_dbe(pred, edges)
    directed = metrics.ibims_dbe(pred, edges, variant="directed")
    assert official["dbe_comp"] <= 10.0
    assert directed["dbe_comp"] > 10.0
    assert official["dbe_acc"] == directed["dbe_acc"] <= 1.5
    with pytest.raises(ValueError):
        metrics.ibims_dbe(pred, edges, variant="matlab")


def test_ibims_dbe_mask_drops_edges_and_garbage() -> None:
    gt = _scene(96)
    gt[70:80, 80:90] = 4.0  # a masked-out object with its own annotated edges
    edges = _annotated_edges(gt)
    valid = np.ones_like(edges)
    valid[:, 66:] = False  # > 1 smoothing radius (6 px) away from the kept edges
    pred = gt.copy()
    pred[:, 66:] = np.random.default_rng(1).uniform(0.5, 9.0, size=(96, 30))
    assert metrics.ibims_dbe(pred, edges, valid) == {"dbe_acc": 0.0, "dbe_comp": 0.0}
    assert metrics.ibims_dbe(pred, edges)["dbe_acc"] > 0.0


def test_boundary_f1_perfect_scaled_blurred() -> None:
    gt = _scene()
    assert metrics.boundary_f1(gt, gt) == pytest.approx(1.0)
    assert metrics.boundary_f1(4.0 * gt, gt) == pytest.approx(1.0)  # scale-invariant
    mild = metrics.boundary_f1(ndimage.gaussian_filter(gt, 1.0), gt)
    strong = metrics.boundary_f1(ndimage.gaussian_filter(gt, 3.0), gt)
    assert 0.0 <= strong < mild < 1.0


def test_boundary_f1_published_direction_average() -> None:
    step = np.full((16, 16), 4.0)
    step[:, 8:] = 2.0  # contours in one direction only: P = R = 1/4
    assert metrics.boundary_f1(step, step) == pytest.approx(0.25)
    assert metrics.boundary_f1(step, np.full_like(step, 3.0)) == 0.0


def test_boundary_f1_mask() -> None:
    gt = _scene()
    valid = np.ones_like(gt, dtype=bool)
    valid[:, 50:] = False  # hides the pole
    pred = gt.copy()
    pred[:, 50:] = np.random.default_rng(2).uniform(1, 9, size=(64, 14))
    assert metrics.boundary_f1(pred, gt, valid) == pytest.approx(1.0)
    prec, rec = metrics.boundary_precision_recall(pred, gt, 1.1, valid)
    assert prec == pytest.approx(1.0) and rec == pytest.approx(1.0)
