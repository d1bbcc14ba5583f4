"""Colour maps and depth/scalar colouring for previews, all in numpy.

Colour maps are ``uint8 [256, 3]`` lookup tables; values in ``[0, 1]`` are mapped to the
nearest of the 256 entries. Invalid pixels are always painted black.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

LOGGER = logging.getLogger(__name__)

COLORMAPS: tuple[str, ...] = ("turbo", "gray", "coolwarm")
"""Names accepted by :func:`colormap` (``"grey"`` is an alias of ``"gray"``)."""

# Polynomial approximation of Google's Turbo colour map (A. Mikhailov, R. Du, 2019):
# each channel is a degree-5 polynomial in x, coefficients from x**0 to x**5.
_TURBO_COEFFS = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ],
    dtype=np.float64,
)

# Diverging blue - white - red anchors (position, RGB in [0, 255]), interpolated linearly.
_COOLWARM_ANCHORS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.00, (40, 60, 190)),
    (0.25, (120, 160, 250)),
    (0.50, (245, 245, 245)),
    (0.75, (245, 150, 115)),
    (1.00, (180, 10, 35)),
)


def _turbo(x: np.ndarray) -> np.ndarray:
    """Turbo colours in ``[0, 1]`` for ``x`` in ``[0, 1]``: ``[N] -> [N, 3]`` float64."""
    powers = np.stack([x**k for k in range(6)], axis=-1)  # [N, 6]
    return np.clip(powers @ _TURBO_COEFFS.T, 0.0, 1.0)


def _coolwarm(x: np.ndarray) -> np.ndarray:
    """Diverging colours in ``[0, 1]`` for ``x`` in ``[0, 1]``: ``[N] -> [N, 3]`` float64."""
    pos = np.array([p for p, _ in _COOLWARM_ANCHORS])
    rgb = np.array([c for _, c in _COOLWARM_ANCHORS], dtype=np.float64) / 255.0
    return np.stack([np.interp(x, pos, rgb[:, ch]) for ch in range(3)], axis=-1)


@functools.cache
def _lut(name: str) -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    if name == "turbo":
        rgb = _turbo(x)
    elif name == "gray":
        rgb = np.repeat(x[:, None], 3, axis=1)
    elif name == "coolwarm":
        rgb = _coolwarm(x)
    else:  # pragma: no cover - guarded by colormap()
        raise ValueError(name)
    lut = np.rint(rgb * 255.0).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def colormap(name: str) -> np.ndarray:
    """The lookup table of a colour map.

    Args:
        name: ``"turbo"`` (polynomial approximation of Google's Turbo; low = dark blue,
            high = dark red), ``"gray"``/``"grey"`` (black to white) or ``"coolwarm"``
            (diverging blue - white - red).

    Returns:
        Read-only ``uint8 [256, 3]`` RGB table; entry ``i`` is the colour of ``i / 255``.

    Raises:
        ValueError: unknown name.
    """
    key = name.lower()
    if key == "grey":
        key = "gray"
    if key not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}: use one of {', '.join(COLORMAPS)}")
    return _lut(key)


def apply_colormap(
    values: np.ndarray, cmap: str = "turbo", valid: np.ndarray | None = None
) -> np.ndarray:
    """Map values in ``[0, 1]`` to colours.

    Args:
        values: real array of any shape ``[...]``; clipped to ``[0, 1]``.
        cmap: colour map name (see :func:`colormap`).
        valid: optional boolean mask of the same shape; pixels outside it, and non-finite
            values, are black.

    Returns:
        ``uint8 [..., 3]`` RGB.
    """
    lut = colormap(cmap)
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != x.shape:
            raise ValueError(f"valid has shape {mask.shape}, expected {x.shape}")
        ok &= mask
    idx = np.rint(np.clip(np.where(ok, x, 0.0), 0.0, 1.0) * 255.0).astype(np.intp)
    out = lut[idx]
    out[~ok] = 0
    return out


def _check_map(name: str, x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [H, W], got {tuple(arr.shape)}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _valid_depth(depth: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    ok = np.isfinite(depth) & (depth > 0)
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != depth.shape:
            raise ValueError(f"valid has shape {mask.shape}, expected {depth.shape}")
        ok &= mask
    return ok


def depth_range(
    depth: np.ndarray, valid: np.ndarray | None = None, lo: float = 2.0, hi: float = 98.0
) -> tuple[float, float]:
    """Robust colouring range of a depth map: the ``lo``/``hi`` percentiles of valid depth.

    Use the result as ``vmin``/``vmax`` of :func:`colorize_depth` to colour several depth
    maps of the same scene on one scale.

    Args:
        depth: ``[H, W]`` depth in metres.
        valid: optional boolean ``[H, W]`` mask; non-finite and non-positive depths are
            always excluded.
        lo: lower percentile in ``[0, 100]``.
        hi: upper percentile in ``[0, 100]``, ``> lo``.

    Returns:
        ``(vmin, vmax)`` in metres, ``0 < vmin <= vmax``.

    Raises:
        ValueError: no valid pixel, or bad percentiles.
    """
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"need 0 <= lo < hi <= 100, got lo={lo}, hi={hi}")
    d = _check_map("depth", depth)
    ok = _valid_depth(d, valid)
    if not ok.any():
        raise ValueError("depth has no valid (finite, positive) pixel")
    vmin, vmax = np.percentile(d[ok], [lo, hi])
    return float(vmin), float(vmax)


def colorize_depth(
    depth: np.ndarray,
    valid: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    inverse: bool = True,
    cmap: str = "turbo",
) -> np.ndarray:
    """Colour a depth map.

    With ``inverse=True`` (default) colours follow inverse depth, so near is warm (red
    with Turbo) and far is cold (blue), and ``t = (1/d - 1/vmax) / (1/vmin - 1/vmax)``;
    with ``inverse=False``, ``t = (d - vmin) / (vmax - vmin)`` (far is warm).

    Args:
        depth: ``[H, W]`` depth in metres.
        valid: optional boolean ``[H, W]`` mask; pixels outside it, and non-finite or
            non-positive depths, are black.
        vmin: nearest depth of the colour range in metres; default from
            :func:`depth_range` (2nd percentile).
        vmax: farthest depth of the colour range in metres; default 98th percentile.
        inverse: colour inverse depth (near = warm).
        cmap: colour map name (see :func:`colormap`).

    Returns:
        ``uint8 [H, W, 3]`` RGB.
    """
    d = _check_map("depth", depth)
    ok = _valid_depth(d, valid)
    if not ok.any():
        return np.zeros((*d.shape, 3), dtype=np.uint8)
    if vmin is None or vmax is None:
        auto_min, auto_max = depth_range(d, ok)
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    vmin, vmax = float(vmin), float(vmax)
    if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmin > vmax:
        raise ValueError(f"need finite vmin <= vmax, got vmin={vmin}, vmax={vmax}")
    safe = np.where(ok, d, 1.0)
    if inverse:
        if vmin <= 0:
            raise ValueError(f"vmin must be positive to colour inverse depth, got {vmin}")
        num, lo_v, hi_v = 1.0 / safe, 1.0 / vmax, 1.0 / vmin
    else:
        num, lo_v, hi_v = safe, vmin, vmax
    t = (num - lo_v) / (hi_v - lo_v) if hi_v > lo_v else np.full_like(num, 0.5)
    return apply_colormap(t, cmap, ok)


def colorize_scalar(
    x: np.ndarray,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "turbo",
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Colour a scalar map (errors, confidences, masks...) linearly between ``vmin`` and ``vmax``.

    Args:
        x: ``[H, W]`` real values; clipped to ``[vmin, vmax]``.
        vmin: value mapped to the first colour.
        vmax: value mapped to the last colour (``> vmin``).
        cmap: colour map name (see :func:`colormap`).
        valid: optional boolean ``[H, W]`` mask; pixels outside it and non-finite values
            are black.

    Returns:
        ``uint8 [H, W, 3]`` RGB.
    """
    arr = _check_map("x", x)
    vmin, vmax = float(vmin), float(vmax)
    if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmin >= vmax:
        raise ValueError(f"need finite vmin < vmax, got vmin={vmin}, vmax={vmax}")
    return apply_colormap((arr - vmin) / (vmax - vmin), cmap, valid)
