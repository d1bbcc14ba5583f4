"""Pinhole camera geometry in torch: intrinsics, back-projection, flying pixels, point clouds.

Conventions
-----------
* Intrinsics ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels (``s`` = skew, 0 for
  every ``K`` built here), ``float32``.
* Pixel-centre convention: integer pixel coordinates ``(u, v)`` (column, row) refer to
  pixel *centres*, so an image of width ``W`` spans ``u`` in ``[-0.5, W - 0.5]`` and a
  centred principal point is ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``. The field of
  view covers the full extent ``W`` (``fx = (W / 2) / tan(fov / 2)``).
* Camera frame of OpenCV: ``x`` right, ``y`` down, ``z`` forward, in metres. A pixel with
  depth ``z`` (distance along the optical axis, not along the ray) back-projects to
  ``x = (u - cx) / fx * z``, ``y = (v - cy) / fy * z``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

LOGGER = logging.getLogger(__name__)

_FOV_AXES = ("horizontal", "vertical", "diagonal")


def _check_size(width: int, height: int) -> None:
    if int(width) != width or int(height) != height or width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive integers, got {width}x{height}")


def _check_k(K: torch.Tensor) -> None:  # noqa: N803
    if not isinstance(K, torch.Tensor):
        raise TypeError(f"K must be a torch.Tensor, got {type(K).__name__}")
    if K.ndim < 2 or K.shape[-2:] != (3, 3):
        raise ValueError(f"K must have shape [..., 3, 3], got {tuple(K.shape)}")


def intrinsics_from_focal(focal_px: float, width: int, height: int) -> torch.Tensor:
    """Intrinsics with square pixels and a centred principal point.

    Args:
        focal_px: focal length in pixels (``fx = fy``), positive.
        width: image width ``W`` in pixels.
        height: image height ``H`` in pixels.

    Returns:
        ``float32 [3, 3]`` with ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.
    """
    _check_size(width, height)
    focal = float(focal_px)
    if not math.isfinite(focal) or focal <= 0:
        raise ValueError(f"focal length must be positive and finite, got {focal_px}")
    return torch.tensor(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]],
        dtype=torch.float32,
    )


def focal_from_fov(width: int, height: int, fov_deg: float, axis: str = "horizontal") -> float:
    """Focal length in pixels for a field of view across the full image extent.

    ``f = (L / 2) / tan(fov / 2)`` with ``L = W`` (horizontal), ``H`` (vertical) or
    ``sqrt(W**2 + H**2)`` (diagonal). A 90-degree horizontal FOV gives ``f = W / 2``.
    """
    _check_size(width, height)
    fov = float(fov_deg)
    if not 0.0 < fov < 180.0:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    if axis == "horizontal":
        extent = float(width)
    elif axis == "vertical":
        extent = float(height)
    elif axis == "diagonal":
        extent = math.hypot(width, height)
    else:
        raise ValueError(f"axis must be one of {', '.join(_FOV_AXES)}, got {axis!r}")
    return (extent / 2.0) / math.tan(math.radians(fov) / 2.0)


def intrinsics_from_fov(
    width: int, height: int, fov_deg: float, axis: str = "horizontal"
) -> torch.Tensor:
    """Intrinsics from a field of view, square pixels, centred principal point.

    Args:
        width: image width ``W`` in pixels.
        height: image height ``H`` in pixels.
        fov_deg: field of view in degrees, in ``(0, 180)``, across the full extent of the
            image along ``axis``.
        axis: ``"horizontal"``, ``"vertical"`` or ``"diagonal"``.

    Returns:
        ``float32 [3, 3]``; e.g. 90 degrees horizontal gives ``fx = fy = W / 2``,
        ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.
    """
    return intrinsics_from_focal(focal_from_fov(width, height, fov_deg, axis), width, height)


def scale_intrinsics(
    K: torch.Tensor,  # noqa: N803 - the conventional name of the intrinsics matrix
    sx: float | torch.Tensor,
    sy: float | torch.Tensor,
) -> torch.Tensor:
    """Intrinsics of an image resized by factors ``sx``, ``sy`` (new size / old size).

    With the pixel-centre convention: ``fx' = fx * sx``, ``s' = s * sx``,
    ``cx' = (cx + 0.5) * sx - 0.5`` and likewise for ``fy``, ``cy`` with ``sy``. Padding at
    the bottom/right does not change ``K``.

    Args:
        K: ``[..., 3, 3]`` intrinsics.
        sx: horizontal factor ``W_new / W_old`` (scalar or tensor broadcastable to ``[...]``).
        sy: vertical factor ``H_new / H_old``.

    Returns:
        New ``[..., 3, 3]`` tensor of ``K``'s dtype and device.
    """
    _check_k(K)
    sx_t = torch.as_tensor(sx, dtype=K.dtype, device=K.device)
    sy_t = torch.as_tensor(sy, dtype=K.dtype, device=K.device)
    if bool((sx_t <= 0).any()) or bool((sy_t <= 0).any()):
        raise ValueError("scale factors must be positive")
    out = K.clone()
    out[..., 0, 0] = K[..., 0, 0] * sx_t
    out[..., 0, 1] = K[..., 0, 1] * sx_t
    out[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx_t - 0.5
    out[..., 1, 1] = K[..., 1, 1] * sy_t
    out[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy_t - 0.5
    return out


def pixel_grid(
    height: int, width: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(u, v)``, each ``float32 [H, W]``: ``u`` column, ``v`` row."""
    _check_size(width, height)
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=device),
        torch.arange(width, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return u, v


def depth_to_points(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:  # noqa: N803
    """Back-project a depth map to camera-frame points.

    Args:
        depth: ``[..., H, W]`` depth along the optical axis in metres. Invalid pixels
            (``NaN``, ``<= 0``) give meaningless points; mask them afterwards.
        K: ``[..., 3, 3]`` intrinsics, batch dimensions broadcastable with ``depth``'s.

    Returns:
        ``float32 [..., H, W, 3]`` points ``(x, y, z)`` in metres, OpenCV frame.
    """
    if not isinstance(depth, torch.Tensor):
        raise TypeError(f"depth must be a torch.Tensor, got {type(depth).__name__}")
    if depth.ndim < 2:
        raise ValueError(f"depth must have shape [..., H, W], got {tuple(depth.shape)}")
    _check_k(K)
    z = depth.to(torch.float32)
    k = K.to(device=z.device, dtype=torch.float32)
    height, width = z.shape[-2:]
    u, v = pixel_grid(height, width, device=z.device)
    fx = k[..., 0, 0, None, None]
    skew = k[..., 0, 1, None, None]
    cx = k[..., 0, 2, None, None]
    fy = k[..., 1, 1, None, None]
    cy = k[..., 1, 2, None, None]
    y_n = (v - cy) / fy
    x_n = (u - cx - skew * y_n) / fx
    x_n, y_n, z = torch.broadcast_tensors(x_n, y_n, z)
    return torch.stack([x_n * z, y_n * z, z], dim=-1)


def edge_mask(depth: torch.Tensor | np.ndarray, rtol: float = 0.04) -> torch.Tensor:
    """Flying pixels: pixels whose depth differs too much from a 4-neighbour's.

    A pixel is flagged when, for some valid 4-neighbour, ``|d - d_n| / min(d, d_n) > rtol``.
    The test is symmetric, so both sides of a depth discontinuity are flagged. Invalid
    pixels (non-finite or ``<= 0``) are never flagged and never flag their neighbours.

    Args:
        depth: ``[..., H, W]`` depth in metres (tensor or numpy array).
        rtol: relative tolerance, positive.

    Returns:
        ``bool [..., H, W]`` tensor, ``True`` at flying pixels.
    """
    if rtol <= 0:
        raise ValueError(f"rtol must be positive, got {rtol}")
    d = torch.as_tensor(depth).to(torch.float32)
    if d.ndim < 2:
        raise ValueError(f"depth must have shape [..., H, W], got {tuple(d.shape)}")
    valid = torch.isfinite(d) & (d > 0)
    d = torch.where(valid, d, torch.ones_like(d))

    def jump(a: torch.Tensor, b: torch.Tensor, va: torch.Tensor, vb: torch.Tensor) -> torch.Tensor:
        return va & vb & ((a - b).abs() > rtol * torch.minimum(a, b))

    mask = torch.zeros_like(valid)
    vertical = jump(d[..., 1:, :], d[..., :-1, :], valid[..., 1:, :], valid[..., :-1, :])
    mask[..., 1:, :] |= vertical
    mask[..., :-1, :] |= vertical
    horizontal = jump(d[..., :, 1:], d[..., :, :-1], valid[..., :, 1:], valid[..., :, :-1])
    mask[..., :, 1:] |= horizontal
    mask[..., :, :-1] |= horizontal
    return mask


def point_cloud(
    depth: torch.Tensor | np.ndarray,
    K: torch.Tensor | np.ndarray,  # noqa: N803
    rgb: torch.Tensor | np.ndarray | None = None,
    drop_edges: bool = False,
    rtol: float = 0.04,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Coloured point cloud of one depth map.

    Pixels with non-finite or non-positive depth are dropped, and flying pixels
    (:func:`edge_mask`) too if ``drop_edges``. Points keep the row-major pixel order.

    Args:
        depth: ``[H, W]`` depth in metres.
        K: ``[3, 3]`` intrinsics in pixels.
        rgb: optional ``uint8 [H, W, 3]`` colours.
        drop_edges: also drop flying pixels.
        rtol: relative tolerance of :func:`edge_mask`.

    Returns:
        ``(points, colors)``: ``float32 [N, 3]`` metres (OpenCV frame) and ``uint8 [N, 3]``
        or ``None`` when ``rgb`` is ``None``.
    """
    d = torch.as_tensor(depth).detach().to(device="cpu", dtype=torch.float32)
    if d.ndim != 2:
        raise ValueError(f"depth must have shape [H, W], got {tuple(d.shape)}")
    k = torch.as_tensor(K).detach().to(device="cpu", dtype=torch.float32)
    if k.shape != (3, 3):
        raise ValueError(f"K must have shape [3, 3], got {tuple(k.shape)}")
    keep = torch.isfinite(d) & (d > 0)
    if drop_edges:
        keep &= ~edge_mask(d, rtol)
    points = depth_to_points(d, k)[keep].numpy().astype(np.float32, copy=False)
    colors = None
    if rgb is not None:
        colours = torch.as_tensor(rgb).detach().cpu()
        if colours.dtype != torch.uint8:
            raise ValueError(f"rgb must have dtype uint8, got {colours.dtype}")
        if colours.shape != (*d.shape, 3):
            raise ValueError(
                f"rgb must have shape [{d.shape[0]}, {d.shape[1]}, 3], got {tuple(colours.shape)}"
            )
        colors = colours[keep].numpy()
    LOGGER.debug("point cloud: %d of %d pixels kept", points.shape[0], d.numel())
    return points, colors
