"""Tests of sharpdepth.vis: colour maps and depth/scalar colouring."""

from __future__ import annotations

import numpy as np
import pytest

from sharpdepth import vis


@pytest.mark.parametrize("name", ["turbo", "gray", "grey", "coolwarm", "TURBO"])
def test_colormap_tables(name: str) -> None:
    lut = vis.colormap(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8


def test_colormap_known_colours() -> None:
    turbo = vis.colormap("turbo").astype(int)
    assert turbo[25, 2] > turbo[25, 0] + 100  # low values are blue
    assert turbo[255, 0] > 100 and turbo[255, 2] < 20  # ends dark red
    assert turbo[128, 1] > 200  # green in the middle
    gray = vis.colormap("gray")
    np.testing.assert_array_equal(gray[:, 0], np.arange(256))
    cw = vis.colormap("coolwarm").astype(int)
    assert cw[0, 2] > cw[0, 0] and cw[255, 0] > cw[255, 2]
    assert cw[128].min() > 220  # near-white centre


def test_colormap_unknown() -> None:
    with pytest.raises(ValueError, match="unknown colour map"):
        vis.colormap("jet")


def test_apply_colormap_nan_black() -> None:
    out = vis.apply_colormap(np.array([0.0, np.nan, 1.0, 2.0]), "gray")
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 0, 0], [255] * 3, [255] * 3])


def test_depth_range_percentiles() -> None:
    depth = np.linspace(1.0, 100.0, 100).reshape(10, 10)
    depth[0, 0] = np.nan
    vmin, vmax = vis.depth_range(depth)
    assert 1.0 < vmin < 5.0 and 95.0 < vmax < 100.0
    assert vis.depth_range(depth, lo=0, hi=100) == pytest.approx((2.0, 100.0))
    with pytest.raises(ValueError, match="no valid"):
        vis.depth_range(np.full((2, 2), np.nan))


def test_colorize_depth_shape_invalid_and_inverse() -> None:
    depth = np.array([[1.0, 2.0, 4.0], [np.nan, -1.0, 8.0]], dtype=np.float32)
    valid = np.ones(depth.shape, bool)
    valid[1, 2] = False
    out = vis.colorize_depth(depth, valid=valid, cmap="gray")
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], 0)  # nan, negative and masked -> black
    brightness = out[0, :, 0].astype(int)
    assert brightness[0] > brightness[1] > brightness[2]  # near is high (warm)
    direct = vis.colorize_depth(depth, valid=valid, cmap="gray", inverse=False)
    assert direct[0, 0, 0] < direct[0, 1, 0] < direct[0, 2, 0]


def test_colorize_depth_shared_range() -> None:
    a = np.full((2, 2), 2.0)
    b = np.full((2, 2), 4.0)
    out_a = vis.colorize_depth(a, vmin=2.0, vmax=4.0, cmap="gray")
    out_b = vis.colorize_depth(b, vmin=2.0, vmax=4.0, cmap="gray")
    assert (out_a == 255).all() and (out_b == 0).all()
    assert vis.colorize_depth(np.full((2, 2), np.nan)).sum() == 0
    with pytest.raises(ValueError):
        vis.colorize_depth(a, vmin=0.0, vmax=4.0)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        vis.colorize_depth(np.ones((2, 2, 1)))


def test_colorize_scalar() -> None:
    x = np.array([[0.0, 0.5, 1.0, np.nan]])
    out = vis.colorize_scalar(x, cmap="gray")
    assert out.shape == (1, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255, 0])
    out2 = vis.colorize_scalar(np.array([[10.0, 20.0]]), vmin=10, vmax=20, cmap="gray")
    np.testing.assert_array_equal(out2[0, :, 0], [0, 255])
    with pytest.raises(ValueError):
        vis.colorize_scalar(x, vmin=1, vmax=1)
