"""Tests of sharpdepth.geometry: intrinsics, back-projection, flying pixels, point clouds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sharpdepth import geometry as geo


def test_intrinsics_from_fov_known_values() -> None:
    k = geo.intrinsics_from_fov(640, 480, 90.0)
    assert k.dtype == torch.float32 and k.shape == (3, 3)
    expected = torch.tensor([[320.0, 0, 319.5], [0, 320.0, 239.5], [0, 0, 1]])
    torch.testing.assert_close(k, expected)
    kv = geo.intrinsics_from_fov(640, 480, 90.0, axis="vertical")
    assert kv[0, 0].item() == pytest.approx(240.0)
    kd = geo.intrinsics_from_fov(640, 480, 90.0, axis="diagonal")
    assert kd[1, 1].item() == pytest.approx(400.0)
    k60 = geo.intrinsics_from_fov(100, 50, 60.0)
    assert k60[0, 0].item() == pytest.approx(50.0 / math.tan(math.radians(30.0)), rel=1e-6)
    with pytest.raises(ValueError):
        geo.intrinsics_from_fov(640, 480, 180.0)
    with pytest.raises(ValueError):
        geo.intrinsics_from_fov(640, 480, 60.0, axis="sideways")


def test_intrinsics_from_focal() -> None:
    k = geo.intrinsics_from_focal(500.0, 101, 51)
    torch.testing.assert_close(k, torch.tensor([[500.0, 0, 50.0], [0, 500.0, 25.0], [0, 0, 1]]))
    with pytest.raises(ValueError):
        geo.intrinsics_from_focal(-1.0, 10, 10)


def test_scale_intrinsics_round_trip_and_batch() -> None:
    k = geo.intrinsics_from_fov(640, 480, 70.0)
    half = geo.scale_intrinsics(k, 0.5, 0.5)
    # a centred principal point stays centred in the resized image
    torch.testing.assert_close(half, geo.intrinsics_from_fov(320, 240, 70.0))
    back = geo.scale_intrinsics(half, 2.0, 2.0)
    torch.testing.assert_close(back, k)
    batch = torch.stack([k, half])
    out = geo.scale_intrinsics(batch, torch.tensor([2.0, 4.0]), torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(out[0], geo.scale_intrinsics(k, 2.0, 2.0))
    torch.testing.assert_close(out[1], geo.scale_intrinsics(half, 4.0, 4.0))
    assert k[0, 0].item() != out[0, 0, 0].item()  # input not modified in place
    with pytest.raises(ValueError):
        geo.scale_intrinsics(k[:2], 1.0, 1.0)


def test_depth_to_points_plane() -> None:
    h, w = 5, 7
    k = geo.intrinsics_from_focal(10.0, w, h)  # cx = 3, cy = 2
    depth = torch.full((h, w), 2.0)
    pts = geo.depth_to_points(depth, k)
    assert pts.shape == (h, w, 3) and pts.dtype == torch.float32
    assert torch.all(pts[..., 2] == 2.0)
    assert pts[2, 3, 0].item() == 0.0 and pts[2, 3, 1].item() == 0.0
    assert pts[2, 6, 0].item() == pytest.approx(3 / 10 * 2)  # x = (u - cx) / fx * z
    assert pts[4, 3, 1].item() == pytest.approx(2 / 10 * 2)  # y down
    batch = geo.depth_to_points(torch.stack([depth, 2 * depth]), k)
    assert batch.shape == (2, h, w, 3)
    torch.testing.assert_close(batch[1], 2 * pts)
    batch_k = geo.depth_to_points(torch.stack([depth, depth]), torch.stack([k, k]))
    torch.testing.assert_close(batch_k[0], pts)


def test_edge_mask_step() -> None:
    depth = torch.ones(4, 6)
    depth[:, 3:] = 2.0
    mask = geo.edge_mask(depth)
    assert mask.dtype == torch.bool
    expected = torch.zeros(4, 6, dtype=torch.bool)
    expected[:, 2:4] = True
    assert torch.equal(mask, expected)
    smooth = torch.linspace(1.0, 1.1, 24).reshape(4, 6)
    assert not geo.edge_mask(smooth).any()
    with_nan = depth.clone()
    with_nan[0, 0] = float("nan")
    assert not geo.edge_mask(with_nan)[0, :2].any()
    assert geo.edge_mask(depth.numpy()).equal(mask)


def test_point_cloud_drops_invalid_and_edges() -> None:
    h, w = 4, 6
    depth = np.ones((h, w), np.float32)
    depth[:, 3:] = 2.0
    depth[0, 0] = np.nan
    depth[0, 1] = 0.0
    depth[1, 1] = -1.0
    depth[3, 5] = np.inf
    k = geo.intrinsics_from_focal(5.0, w, h)
    rgb = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    pts, cols = geo.point_cloud(depth, k, rgb)
    assert pts.dtype == np.float32 and pts.shape == (h * w - 4, 3)
    assert cols is not None and cols.dtype == np.uint8 and cols.shape == pts.shape
    assert np.isfinite(pts).all() and (pts[:, 2] > 0).all()
    np.testing.assert_array_equal(cols[0], rgb[0, 2])  # row-major order kept
    pts_e, cols_e = geo.point_cloud(torch.from_numpy(depth), k, rgb, drop_edges=True)
    assert pts_e.shape[0] == h * w - 4 - 8  # both columns of the step go; invalid flag nothing
    assert cols_e is not None and cols_e.shape == pts_e.shape
    pts_n, cols_n = geo.point_cloud(depth, k)
    assert cols_n is None and pts_n.shape == pts.shape
    with pytest.raises(ValueError, match="uint8"):
        geo.point_cloud(depth, k, rgb.astype(np.float32))
