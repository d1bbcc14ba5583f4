"""Classical edge-aware filters: "refine the metric depth with the image" baselines.

* :func:`guided_filter` -- He, Sun and Tang, "Guided Image Filtering", ECCV 2010 (and
  TPAMI 2013), grey or colour guide, O(1) box filters from cumulative sums.
* :func:`joint_bilateral_filter` -- joint (cross) bilateral filter (Petschnigg et al.
  2004; Eisemann and Durand 2004; Kopf et al. 2007), vectorised over pixels, one pass
  per window offset.

Guides are images in ``[0, 1]`` (``uint8`` guides are divided by 255); the filtered
source is any finite ``[H, W]`` map (here: depth in metres). Outputs are float64.
"""

from __future__ import annotations

import logging
import math

import numpy as np

LOGGER = logging.getLogger(__name__)


def _as_guide(guide: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Guide as float64 ``[H, W, C]`` (C = 1 or 3); ``uint8`` is scaled to ``[0, 1]``."""
    g = np.asarray(guide)
    scale = 1.0 / 255.0 if g.dtype == np.uint8 else 1.0
    g = g.astype(np.float64) * scale
    if g.ndim == 2:
        g = g[..., None]
    if g.ndim != 3 or g.shape[:2] != shape or g.shape[2] not in (1, 3):
        raise ValueError(f"guide must be [H, W], [H, W, 1] or [H, W, 3] with H, W = {shape}")
    return g


def _as_source(src: np.ndarray) -> np.ndarray:
    s = np.asarray(src, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"src must be [H, W], got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("src must be finite everywhere (fill holes before filtering)")
    return s


def _box_sum_axis(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Sum over the window ``[i - r, i + r]`` (clipped to the array) along ``axis``."""
    n = x.shape[axis]
    zero = np.zeros_like(np.take(x, [0], axis=axis))
    c = np.concatenate([zero, np.cumsum(x, axis=axis)], axis=axis)
    idx = np.arange(n)
    hi = np.minimum(idx + r + 1, n)
    lo = np.maximum(idx - r, 0)
    return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the ``(2r+1) x (2r+1)`` window, clipped at the borders (He et al.'s ``f_mean``).

    Args:
        x: ``[H, W, ...]`` array; trailing axes are filtered independently.
        radius: window radius ``r`` (pixels).

    Returns:
        Array of the shape of ``x`` (float64): window sum divided by the number of
        in-image pixels in the window.
    """
    x = np.asarray(x, dtype=np.float64)
    ones = np.ones(x.shape[:2], dtype=np.float64)
    count = _box_sum_axis(_box_sum_axis(ones, radius, 0), radius, 1)
    total = _box_sum_axis(_box_sum_axis(x, radius, 0), radius, 1)
    return total / count.reshape(count.shape + (1,) * (x.ndim - 2))


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. (2010) guided filter of ``src`` with ``guide``.

    Local linear model ``q = a^T I + b`` in every ``(2r+1)^2`` window; with a colour
    guide ``a = (Sigma + eps U)^-1 cov(I, p)`` (``Sigma`` the 3x3 window covariance of
    the guide), with a grey guide ``a = cov(I, p) / (var(I) + eps)``;
    ``b = mean(p) - a^T mean(I)``; the output averages ``a`` and ``b`` over the windows
    covering each pixel. Windows are clipped at the image border.

    Args:
        guide: ``[H, W, 3]`` colour or ``[H, W]`` / ``[H, W, 1]`` grey image in
            ``[0, 1]`` (``uint8`` is divided by 255).
        src: ``[H, W]`` finite map to filter (e.g. depth in metres).
        radius: window radius ``r`` (pixels, >= 1).
        eps: regularisation in squared guide units (e.g. ``1e-3`` keeps guide edges
            with a local standard deviation above about 0.03).

    Returns:
        ``[H, W]`` float64 filtered map, in the units of ``src``.
    """
    p = _as_source(src)
    g = _as_guide(guide, p.shape)
    if radius < 1 or eps <= 0:
        raise ValueError(f"need radius >= 1 and eps > 0, got {radius}, {eps}")
    mean_i = box_mean(g, radius)  # [H, W, C]
    mean_p = box_mean(p, radius)  # [H, W]
    cov_ip = box_mean(g * p[..., None], radius) - mean_i * mean_p[..., None]  # [H, W, C]
    if g.shape[2] == 1:
        var_i = box_mean(g * g, radius) - mean_i * mean_i
        a = cov_ip / (var_i + eps)  # [H, W, 1]
    else:
        outer = g[..., :, None] * g[..., None, :]  # [H, W, 3, 3]
        sigma = box_mean(outer, radius) - mean_i[..., :, None] * mean_i[..., None, :]
        sigma = sigma + eps * np.eye(3)
        a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]  # [H, W, 3]
    b = mean_p - np.sum(a * mean_i, axis=-1)  # [H, W]
    return np.sum(box_mean(a, radius) * g, axis=-1) + box_mean(b, radius)


def joint_bilateral_filter(
    guide: np.ndarray,
    src: np.ndarray,
    sigma_space: float,
    sigma_color: float,
    radius: int | None = None,
) -> np.ndarray:
    """Joint bilateral filter of ``src`` with range weights from ``guide``.

    ``q(x) = sum_y w(x, y) p(y) / sum_y w(x, y)`` over ``|y - x|_inf <= radius`` inside
    the image, with ``w = exp(-|x - y|^2 / (2 sigma_space^2)) *
    exp(-||I(x) - I(y)||^2 / (2 sigma_color^2))`` (``I`` the guide, Euclidean over
    channels). Implemented as one vectorised pass per window offset:
    ``(2 radius + 1)^2`` passes over the image.

    Args:
        guide: ``[H, W, 3]`` or ``[H, W]`` image in ``[0, 1]`` (``uint8`` / 255).
        src: ``[H, W]`` finite map to filter (e.g. depth in metres).
        sigma_space: spatial standard deviation (pixels).
        sigma_color: range standard deviation (guide units).
        radius: window radius (pixels); default ``ceil(2 sigma_space)``.

    Returns:
        ``[H, W]`` float64 filtered map, in the units of ``src``.
    """
    p = _as_source(src)
    g = _as_guide(guide, p.shape)
    if sigma_space <= 0 or sigma_color <= 0:
        raise ValueError("sigma_space and sigma_color must be positive")
    r = math.ceil(2.0 * sigma_space) if radius is None else int(radius)
    h, w = p.shape
    g_pad = np.pad(g, ((r, r), (r, r), (0, 0)))
    p_pad = np.pad(p, r)
    inside = np.pad(np.ones((h, w), dtype=np.float64), r)
    inv_two_s2 = 1.0 / (2.0 * sigma_space**2)
    inv_two_c2 = 1.0 / (2.0 * sigma_color**2)
    num = np.zeros((h, w), dtype=np.float64)
    den = np.zeros((h, w), dtype=np.float64)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ys, xs = slice(r + dy, r + dy + h), slice(r + dx, r + dx + w)
            diff2 = np.sum((g_pad[ys, xs] - g) ** 2, axis=-1)
            wgt = np.exp(-(dy * dy + dx * dx) * inv_two_s2 - diff2 * inv_two_c2) * inside[ys, xs]
            num += wgt * p_pad[ys, xs]
            den += wgt
    return num / den
