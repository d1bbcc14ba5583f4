"""Alignment of a prediction to the ground truth before scoring (numpy in, numpy out).

Modes (:data:`ALIGNMENTS`):

* ``"none"`` -- metric predictions are scored as they are.
* ``"median"`` -- scale by ``median(gt) / median(pred)`` over the mask (scale-invariant
  predictions; Zhou et al. 2017 style).
* ``"lstsq"`` -- least-squares scale and shift in depth (affine-invariant depth, e.g.
  the Lotus / Marigold rows), via :func:`sharpdepth.method.fit_scale_shift`.
* ``"lstsq_disparity"`` -- least-squares scale and shift of inverse depth against the
  ground truth's inverse depth, then inverted back to depth (affine-invariant
  disparity, or benchmarks whose ground truth is only known up to an affine map of
  disparity).

All arithmetic is float64; the least-squares solve is the project's single
implementation in :mod:`sharpdepth.method`.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from sharpdepth.method import fit_scale_shift

LOGGER = logging.getLogger(__name__)

ALIGNMENTS: tuple[str, ...] = ("none", "median", "lstsq", "lstsq_disparity")

MIN_DISPARITY = 1e-3
"""Floor (1/m) of the aligned disparity before inversion: depth at most 1000 m, as in the
released SharpDepth / Marigold evaluation."""

_POS_EPS = 1e-6


def _check(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 ``pred``, ``gt`` and a bool mask of equal 2-D shape (mask all True if None)."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.ndim != 2 or p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} must be equal 2-D shapes [H, W]")
    if valid is None:
        m = np.ones(p.shape, dtype=bool)
    else:
        m = np.asarray(valid).astype(bool, copy=False)
        if m.shape != p.shape:
            raise ValueError(f"valid mask has shape {m.shape}, expected {p.shape}")
    return p, g, m


def _lstsq(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Scale and shift with ``scale * x + shift ~ y`` over ``mask`` (float64)."""

    def as_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))[None, None]

    scale, shift = fit_scale_shift(as_tensor(x), as_tensor(y), as_tensor(mask))
    return float(scale[0]), float(shift[0])


def align_median(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Scale ``pred`` by ``median(gt) / median(pred)`` over the mask.

    Only masked pixels with finite, positive ``pred`` and ``gt`` enter the medians; with
    none, the scale is 1 (logged).

    Args:
        pred: ``[H, W]`` scale-invariant depth.
        gt: ``[H, W]`` ground-truth depth (metres).
        valid: ``[H, W]`` bool mask; None means all pixels.

    Returns:
        ``[H, W]`` float64 aligned depth and ``{"scale": s, "shift": 0.0}``.
    """
    p, g, m = _check(pred, gt, valid)
    use = m & np.isfinite(p) & np.isfinite(g) & (p > 0) & (g > 0)
    if not use.any():
        LOGGER.warning("median alignment: no usable pixels; scale 1")
        scale = 1.0
    else:
        scale = float(np.median(g[use]) / np.median(p[use]))
    return p * scale, {"scale": scale, "shift": 0.0}


def align_lstsq(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, float]]:
    """Least-squares scale and shift in depth: ``scale * pred + shift ~ gt`` over the mask.

    Args:
        pred: ``[H, W]`` affine-invariant depth.
        gt: ``[H, W]`` ground-truth depth (metres).
        valid: ``[H, W]`` bool mask; None means all pixels.

    Returns:
        ``[H, W]`` float64 aligned depth (metres) and ``{"scale", "shift"}``.
    """
    p, g, m = _check(pred, gt, valid)
    scale, shift = _lstsq(p, g, m)
    return p * scale + shift, {"scale": scale, "shift": shift}


def align_lstsq_disparity(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    min_disparity: float = MIN_DISPARITY,
) -> tuple[np.ndarray, dict[str, float]]:
    """Least-squares scale and shift in inverse depth, returned as depth.

    Fits ``scale / pred + shift ~ 1 / gt`` over the masked pixels where both are finite
    and positive, then returns ``1 / max(scale / pred + shift, min_disparity)``. Pixels
    whose aligned disparity falls below ``min_disparity`` (including non-positive
    values) are clamped and counted. Non-positive predictions are inverted as
    ``1 / 1e-6`` (they are excluded from the fit).

    Args:
        pred: ``[H, W]`` depth whose inverse is affine-invariant.
        gt: ``[H, W]`` ground-truth depth.
        valid: ``[H, W]`` bool mask; None means all pixels.
        min_disparity: floor of the aligned disparity (inverse ``gt`` units).

    Returns:
        ``[H, W]`` float64 aligned depth and ``{"scale", "shift", "n_clamped"}`` (the
        scale and shift act on disparity).
    """
    p, g, m = _check(pred, gt, valid)
    use = m & np.isfinite(p) & np.isfinite(g) & (p > 0) & (g > 0)
    pred_disp = 1.0 / np.maximum(np.where(np.isfinite(p), p, 1.0), _POS_EPS)
    gt_disp = np.where(use, 1.0 / np.where(use, g, 1.0), 0.0)
    scale, shift = _lstsq(pred_disp, gt_disp, use)
    disp = pred_disp * scale + shift
    low = ~(disp >= min_disparity)
    n_low = int((low & m).sum())
    if n_low:
        LOGGER.warning(
            "disparity alignment: %d masked pixels below %g clamped", n_low, min_disparity
        )
    depth = 1.0 / np.where(low, min_disparity, disp)
    return depth, {"scale": scale, "shift": shift, "n_clamped": float(n_low)}


def align(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None, mode: str
) -> tuple[np.ndarray, dict[str, float]]:
    """Align ``pred`` to ``gt`` over ``valid`` with one of :data:`ALIGNMENTS`.

    Args:
        pred: ``[H, W]`` prediction (depth-like: larger = farther).
        gt: ``[H, W]`` ground-truth depth (metres).
        valid: ``[H, W]`` bool mask of pixels to fit on; None means all pixels.
        mode: ``"none"``, ``"median"``, ``"lstsq"`` or ``"lstsq_disparity"``.

    Returns:
        ``[H, W]`` float64 aligned depth and an info dict with at least ``"scale"`` and
        ``"shift"`` (identity for ``"none"``).

    Raises:
        ValueError: unknown ``mode`` or mismatched shapes.
    """
    if mode == "none":
        p, _, _ = _check(pred, gt, valid)
        return p.copy(), {"scale": 1.0, "shift": 0.0}
    if mode == "median":
        return align_median(pred, gt, valid)
    if mode == "lstsq":
        return align_lstsq(pred, gt, valid)
    if mode == "lstsq_disparity":
        return align_lstsq_disparity(pred, gt, valid)
    raise ValueError(f"unknown alignment {mode!r}; choose from {ALIGNMENTS}")
