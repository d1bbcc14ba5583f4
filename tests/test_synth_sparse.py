"""Tests of sensor-like sparse supervision (sharpdepth.synth.sparse)."""

from __future__ import annotations

import numpy as np
import pytest

from sharpdepth.synth.sparse import (
    SPARSE_MODES,
    depth_discontinuities,
    edge_holes,
    lidar_beam_elevations,
    sample_lidar,
    sample_random_points,
    sample_sparse,
    sample_structured_light,
)

H, W = 96, 128
FOCAL = 100.0


@pytest.fixture()
def intrinsics() -> np.ndarray:
    """Centred pinhole intrinsics of a 96 x 128 image."""
    return np.array([[FOCAL, 0.0, (W - 1) / 2], [0.0, FOCAL, (H - 1) / 2], [0.0, 0.0, 1.0]])


@pytest.fixture()
def scene() -> tuple[np.ndarray, np.ndarray]:
    """A ground plane 1.5 m below the camera up to a wall at 6 m, a box at 2.5 m, sky on top.

    Returns ``(depth float32 [H, W], valid bool [H, W])``; invalid pixels hold ``NaN`` so
    that any sample taken from them would show.
    """
    rows = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
    y_n = (rows - (H - 1) / 2) / FOCAL
    ground = np.where(y_n > 0, 1.5 / np.maximum(y_n, 1e-9), np.inf)
    depth = np.minimum(ground, 6.0)
    depth[30:70, 40:80] = np.minimum(depth[30:70, 40:80], 2.5)
    valid = np.ones((H, W), dtype=bool)
    valid[:12] = False
    depth[:12] = np.nan
    return depth.astype(np.float32), valid


def _check_exact(
    sparse: np.ndarray, mask: np.ndarray, depth: np.ndarray, valid: np.ndarray
) -> None:
    """Common invariants: shapes/dtypes, mask within valid, exact values, zeros elsewhere."""
    assert sparse.shape == depth.shape and sparse.dtype == np.float32
    assert mask.shape == depth.shape and mask.dtype == np.bool_
    assert not (mask & ~valid).any()
    np.testing.assert_array_equal(sparse[mask], depth[mask])
    assert (sparse[~mask] == 0).all()


# --------------------------------------------------------------------------------------
# random points
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("density", [0.0, 0.01, 0.05, 0.5])
def test_random_points_exact_valid_and_density(
    scene: tuple[np.ndarray, np.ndarray], density: float
) -> None:
    depth, valid = scene
    sparse, mask = sample_random_points(depth, valid, np.random.default_rng(0), density=density)
    _check_exact(sparse, mask, depth, valid)
    assert mask.sum() == round(density * valid.sum())


def test_random_points_deterministic(scene: tuple[np.ndarray, np.ndarray]) -> None:
    depth, valid = scene
    a = sample_random_points(depth, valid, np.random.default_rng(3), density=0.05)
    b = sample_random_points(depth, valid, np.random.default_rng(3), density=0.05)
    c = sample_random_points(depth, valid, np.random.default_rng(4), density=0.05)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


def test_random_points_noise_and_bad_density(scene: tuple[np.ndarray, np.ndarray]) -> None:
    depth, valid = scene
    sparse, mask = sample_random_points(
        depth, valid, np.random.default_rng(0), density=0.2, noise_std_m=0.0, noise_rel=0.01
    )
    rel = np.abs(sparse[mask] - depth[mask]) / depth[mask]
    assert 0 < rel.max() < 0.06
    with pytest.raises(ValueError, match="density"):
        sample_random_points(depth, valid, np.random.default_rng(0), density=1.5)


# --------------------------------------------------------------------------------------
# LiDAR
# --------------------------------------------------------------------------------------

_NO_NOISE = {"noise_std_m": 0.0, "noise_rel": 0.0, "dropout": 0.0}


def _elevations_deg(mask: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Elevation (degrees, up positive) of the pixel-centre rays of the pixels in ``mask``."""
    rows, cols = np.nonzero(mask)
    y_n = (rows - k[1, 2]) / k[1, 1]
    x_n = (cols - k[0, 2]) / k[0, 0]
    return np.degrees(np.arctan2(-y_n, np.sqrt(x_n**2 + 1.0)))


def test_lidar_exact_values_never_invalid(
    scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, valid = scene
    sparse, mask = sample_lidar(depth, valid, intrinsics, np.random.default_rng(0), **_NO_NOISE)
    _check_exact(sparse, mask, depth, valid)
    # 64 beams 0.44 deg apart on 0.57 deg pixels: every row of the lower image
    assert 0.3 < mask.sum() / valid.sum() < 0.8
    sparse, mask = sample_lidar(
        depth,
        valid,
        intrinsics,
        np.random.default_rng(0),
        n_beams=32,
        horizontal_step_deg=0.4,
        **_NO_NOISE,
    )
    _check_exact(sparse, mask, depth, valid)
    assert 0.05 < mask.sum() / valid.sum() < 0.5


def test_lidar_points_form_rings(
    scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, valid = scene
    n_beams, fov = 16, (-20.0, 2.0)
    _, mask = sample_lidar(
        depth,
        valid,
        intrinsics,
        np.random.default_rng(0),
        n_beams=n_beams,
        vertical_fov_deg=fov,
        horizontal_step_deg=0.3,
        **_NO_NOISE,
    )
    beams = lidar_beam_elevations(n_beams, fov)
    elevations = _elevations_deg(mask, intrinsics)
    # Every return lies on one beam, up to the half-pixel rounding to the nearest pixel.
    half_pixel_deg = np.degrees(0.5 / FOCAL) * 1.05
    assert np.abs(elevations[:, None] - beams[None, :]).min(axis=1).max() <= half_pixel_deg
    # Few distinct elevation bands: gaps between consecutive sorted elevations split them.
    ordered = np.sort(elevations)
    bands = 1 + int((np.diff(ordered) > 0.5 * (beams[1] - beams[0])).sum())
    assert 3 <= bands <= n_beams
    # Dense horizontally: a beam fully inside the image hits most columns.
    rows_per_col = mask.sum(axis=0)
    assert rows_per_col.max() <= 2 * n_beams
    central_rows = np.nonzero(mask[:, W // 2])[0]
    assert 3 <= central_rows.size <= n_beams
    row = int(central_rows[-1])  # a ground ring near the bottom
    assert mask[row - 1 : row + 2].any(axis=0).mean() > 0.8


def test_lidar_max_range_noise_dropout_determinism(
    scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, valid = scene
    _, near_mask = sample_lidar(
        depth, valid, intrinsics, np.random.default_rng(0), max_range_m=4.0, **_NO_NOISE
    )
    rows, cols = np.nonzero(near_mask)
    ranges = depth[near_mask] * np.sqrt(
        ((cols - intrinsics[0, 2]) / FOCAL) ** 2 + ((rows - intrinsics[1, 2]) / FOCAL) ** 2 + 1
    )
    assert near_mask.any() and ranges.max() <= 4.0

    full = sample_lidar(depth, valid, intrinsics, np.random.default_rng(5), **_NO_NOISE)[1]
    dropped = sample_lidar(
        depth,
        valid,
        intrinsics,
        np.random.default_rng(5),
        noise_std_m=0.0,
        noise_rel=0.0,
        dropout=0.3,
    )[1]
    assert not (dropped & ~full).any()
    assert 0.55 < dropped.sum() / full.sum() < 0.85

    a = sample_lidar(depth, valid, intrinsics, np.random.default_rng(1))
    b = sample_lidar(depth, valid, intrinsics, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    noisy, noisy_mask = a
    err = np.abs(noisy[noisy_mask] - depth[noisy_mask])
    assert 0 < err.max() < 0.1 and np.median(err) < 0.02
    assert not (noisy_mask & ~valid).any()


def test_lidar_pitch_moves_rings_up(
    scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, _ = scene
    everywhere = np.ones_like(depth, dtype=bool)
    flat = np.full_like(depth, 5.0)
    level = sample_lidar(flat, everywhere, intrinsics, np.random.default_rng(0), **_NO_NOISE)[1]
    tilted = sample_lidar(
        flat, everywhere, intrinsics, np.random.default_rng(0), pitch_deg=10.0, **_NO_NOISE
    )[1]
    assert np.nonzero(tilted)[0].min() < np.nonzero(level)[0].min()


# --------------------------------------------------------------------------------------
# edge holes and structured light
# --------------------------------------------------------------------------------------


def _step(width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A 30 x ``width`` step edge: 2 m left of column ``width // 2``, 4 m from it on."""
    depth = np.full((30, width), 2.0, dtype=np.float32)
    depth[:, width // 2 :] = 4.0
    return depth, np.ones_like(depth, dtype=bool)


def test_edge_holes_step_edge_and_flat() -> None:
    depth, valid = _step()
    out, mask = edge_holes(depth, valid, np.random.default_rng(0), max_width_px=3)
    edge = depth.shape[1] // 2
    assert not mask[:, edge - 1 : edge + 1].any()  # both sides of the step removed
    assert mask[:, : edge - 3].all() and mask[:, edge + 3 :].all()  # at most 3 px away
    widths = (~mask).sum(axis=1)
    assert len(np.unique(widths)) > 1  # random widths along the edge
    np.testing.assert_array_equal(out[mask], depth[mask])

    flat = np.full((30, 40), 3.0, dtype=np.float32)
    out_flat, mask_flat = edge_holes(flat, valid, np.random.default_rng(0))
    assert mask_flat.all()
    np.testing.assert_array_equal(out_flat, flat)

    gentle = np.linspace(2.0, 2.5, 40, dtype=np.float32)[None].repeat(30, axis=0)
    assert edge_holes(gentle, valid, np.random.default_rng(0))[1].all()


def test_edge_holes_sides_invalid_and_determinism() -> None:
    depth, valid = _step()
    edge = depth.shape[1] // 2
    far = edge_holes(depth, valid, np.random.default_rng(0), max_width_px=1, side="far")[1]
    assert far[:, edge - 1].all() and not far[:, edge].any()
    near = edge_holes(depth, valid, np.random.default_rng(0), max_width_px=1, side="near")[1]
    assert not near[:, edge - 1].any() and near[:, edge].all()

    flags = depth_discontinuities(depth, valid)
    assert flags[:, edge - 1 : edge + 1].all() and flags.sum() == 2 * depth.shape[0]

    sky = valid.copy()
    sky[:, edge:] = False  # an invalid region is not a depth discontinuity
    assert edge_holes(depth, sky, np.random.default_rng(0))[1].sum() == sky.sum()

    a = edge_holes(depth, valid, np.random.default_rng(7))[1]
    b = edge_holes(depth, valid, np.random.default_rng(7))[1]
    np.testing.assert_array_equal(a, b)


def test_structured_light_without_noise_is_exact(scene: tuple[np.ndarray, np.ndarray]) -> None:
    depth, valid = scene
    sparse, mask = sample_structured_light(
        depth,
        valid,
        np.random.default_rng(0),
        noise_rel=0.0,
        quant_rel=0.0,
        max_range_m=10.0,
        blob_count=0.0,
    )
    _check_exact(sparse, mask, depth, valid)
    assert mask.sum() / valid.sum() > 0.7  # dense
    # holes along the box outline (a 2.5 m box in front of a 6 m wall)
    assert not mask[40:60, 39:41].any() and not mask[40:60, 79:81].any()
    interior = mask[35:65, 45:75]
    assert interior.mean() > 0.9


def test_structured_light_range_noise_quantisation(scene: tuple[np.ndarray, np.ndarray]) -> None:
    depth, valid = scene
    near = sample_structured_light(
        depth, valid, np.random.default_rng(0), noise_rel=0.0, quant_rel=0.0, max_range_m=4.0
    )
    assert near[1].any() and depth[near[1]].max() <= 4.0

    sparse, mask = sample_structured_light(
        depth, valid, np.random.default_rng(0), noise_rel=0.0, quant_rel=0.01
    )
    levels = np.log(sparse[mask].astype(np.float64)) / 0.01
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert np.abs(sparse[mask] / depth[mask] - 1).max() <= 0.006

    noisy, noisy_mask = sample_structured_light(depth, valid, np.random.default_rng(0))
    rel = np.abs(noisy[noisy_mask] / depth[noisy_mask] - 1)
    assert 0 < np.median(rel) < 0.01 and not (noisy_mask & ~valid).any()

    again = sample_structured_light(depth, valid, np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], noisy)


def test_structured_light_blobs_remove_regions() -> None:
    depth = np.full((64, 64), 2.0, dtype=np.float32)
    valid = np.ones_like(depth, dtype=bool)
    mask = sample_structured_light(
        depth,
        valid,
        np.random.default_rng(0),
        blob_count=20.0,
        blob_radius_frac=(0.1, 0.2),
        dropout=0.0,
        noise_rel=0.0,
        quant_rel=0.0,
    )[1]
    assert 0.05 < 1 - mask.mean() < 0.99


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(SPARSE_MODES))
def test_sample_sparse_dispatches_every_mode(
    mode: str, scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, valid = scene
    sparse, mask = sample_sparse(mode, depth, valid, intrinsics, np.random.default_rng(0))
    assert sparse.shape == (H, W) and mask.any() and not (mask & ~valid).any()
    assert np.isfinite(sparse).all() and (sparse[mask] > 0).all()
    again = sample_sparse(mode, depth, valid, intrinsics, np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], sparse)


def test_sample_sparse_kwargs_and_unknown_mode(
    scene: tuple[np.ndarray, np.ndarray], intrinsics: np.ndarray
) -> None:
    depth, valid = scene
    _, mask = sample_sparse(
        "random", depth, valid, intrinsics, np.random.default_rng(0), density=0.1
    )
    assert mask.sum() == round(0.1 * valid.sum())
    lidar32 = sample_sparse("lidar32", depth, valid, intrinsics, np.random.default_rng(0))[1]
    lidar64 = sample_sparse("lidar64", depth, valid, intrinsics, np.random.default_rng(0))[1]
    assert lidar32.sum() < lidar64.sum()
    with pytest.raises(ValueError, match="unknown sparse mode"):
        sample_sparse("radar", depth, valid, intrinsics, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        sample_sparse("random", depth, valid[:, :5], intrinsics, np.random.default_rng(0))
