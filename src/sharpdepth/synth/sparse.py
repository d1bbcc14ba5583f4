"""Sensor-like sparse depth supervision simulated from dense synthetic depth.

Real metric depth models are trained on what real sensors give: LiDAR scan lines
(KITTI, DDAD, Waymo) or structured-light / time-of-flight maps with holes (NYU, ScanNet).
The functions here turn an exact dense depth map into such supervision.

Conventions
-----------
* ``depth`` is ``float32 [H, W]`` z-depth in metres (distance along the optical axis);
  ``valid`` is ``bool [H, W]``. Pixels that are not ``valid``, not finite or ``<= 0`` are
  never returned.
* Every sampler returns ``(sparse_depth, mask)``: ``float32 [H, W]`` metres with ``0`` where
  there is no measurement, and ``bool [H, W]`` (``True`` where measured). With noise
  disabled, measured values are exactly the dense depth of their pixel.
* All randomness comes from the explicit :class:`numpy.random.Generator` passed in, in a
  fixed order, so a seed gives the same output on every machine.
* ``K`` is ``[3, 3]`` intrinsics in pixels with the pixel-centre convention of
  :mod:`sharpdepth.geometry` (OpenCV camera frame: ``x`` right, ``y`` down, ``z`` forward).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

LOGGER = logging.getLogger(__name__)

#: Signature of every entry of :data:`SPARSE_MODES`:
#: ``(depth, valid, K, rng, **kw) -> (sparse_depth, mask)``.
SparseSampler = Callable[..., tuple[np.ndarray, np.ndarray]]

_EDGE_SIDES = ("both", "near", "far")


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _prepare(depth: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and return (``float32 [H, W]`` depth, ``bool [H, W]`` usable pixels).

    Usable = ``valid`` and finite and ``> 0``; ``valid=None`` means every pixel.
    """
    d = np.asarray(depth)
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"depth must have shape [H, W], got {tuple(d.shape)}")
    d = d.astype(np.float32, copy=False)
    if valid is None:
        v = np.ones(d.shape, dtype=bool)
    else:
        v = np.asarray(valid)
        if v.shape != d.shape:
            raise ValueError(
                f"valid must have the shape of depth {tuple(d.shape)}, got {tuple(v.shape)}"
            )
        v = v.astype(bool, copy=False)
    with np.errstate(invalid="ignore"):
        usable = v & np.isfinite(d) & (d > 0)
    return d, usable


def _check_k(K: np.ndarray) -> np.ndarray:  # noqa: N803 - conventional name
    """``K`` as ``float64 [3, 3]``; raises ``ValueError`` unless finite with ``fx, fy > 0``."""
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"K must be a finite [3, 3] intrinsics matrix with fx, fy > 0, got {k}")
    return k


def _check_fraction(name: str, value: float) -> float:
    """``value`` as float, checked to lie in ``[0, 1]``."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _output(depth: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``float32 [H, W]`` depth where ``mask`` else 0, ``bool [H, W]`` mask)."""
    mask = np.ascontiguousarray(mask, dtype=bool)
    out = np.where(mask, depth, np.float32(0.0)).astype(np.float32)
    return out, mask


def _disk_offsets(radius: int) -> list[tuple[int, int]]:
    """Integer offsets ``(dy, dx)`` with ``dy**2 + dx**2 <= radius**2`` (a digital disk)."""
    r = int(radius)
    return [
        (dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r
    ]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of ``bool [H, W]`` ``mask`` by a disk of ``radius`` pixels (0 = copy)."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    height, width = mask.shape
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy, dx in _disk_offsets(radius):
        out |= padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
    return out


def _range_noise(
    values: np.ndarray, rng: np.random.Generator, std_m: float, rel: float
) -> np.ndarray:
    """Gaussian noise of std ``std_m + rel * values`` (metres) for each entry of ``values``.

    Always draws ``values.size`` normals, so the generator advances the same way whether
    or not the noise is zero.
    """
    normals = rng.standard_normal(values.shape)
    return (std_m + rel * values) * normals


# --------------------------------------------------------------------------------------
# Uniform random points
# --------------------------------------------------------------------------------------


def sample_random_points(
    depth: np.ndarray,
    valid: np.ndarray | None,
    rng: np.random.Generator,
    density: float = 0.01,
    noise_std_m: float = 0.0,
    noise_rel: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly random pixels with their depth.

    Exactly ``round(density * n_valid)`` distinct pixels are drawn without replacement
    among the ``n_valid`` usable pixels, so ``density`` is the fraction of *valid* pixels
    kept.

    Args:
        depth: ``float32 [H, W]`` depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        rng: the random generator.
        density: fraction in ``[0, 1]`` of valid pixels to keep.
        noise_std_m: constant part of the Gaussian depth noise std, metres (0 = off).
        noise_rel: depth-proportional part of the noise std (0 = off).

    Returns:
        ``(sparse_depth float32 [H, W] metres, 0 = missing; mask bool [H, W])``.
    """
    d, usable = _prepare(depth, valid)
    density = _check_fraction("density", density)
    flat = np.flatnonzero(usable)
    count = round(density * flat.size)
    chosen = np.sort(rng.choice(flat, size=count, replace=False)) if count else flat[:0]
    mask_flat = np.zeros(d.size, dtype=bool)
    mask_flat[chosen] = True
    out_flat = d.reshape(-1).copy()
    if noise_std_m > 0 or noise_rel > 0:
        values = out_flat[chosen].astype(np.float64)
        noisy = values + _range_noise(values, rng, noise_std_m, noise_rel)
        out_flat[chosen] = noisy.astype(np.float32)
        mask_flat[chosen[noisy <= 0]] = False
    return _output(out_flat.reshape(d.shape), mask_flat.reshape(d.shape))


# --------------------------------------------------------------------------------------
# LiDAR
# --------------------------------------------------------------------------------------


def _pitch_rotation(pitch_deg: float) -> np.ndarray:
    """``float64 [3, 3]`` rotation from the LiDAR frame to the camera frame.

    The LiDAR frame is the camera frame tilted about its ``x`` axis; positive
    ``pitch_deg`` tilts the LiDAR's horizontal plane upwards (towards ``-y``).
    """
    p = math.radians(pitch_deg)
    c, s = math.cos(p), math.sin(p)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _azimuth_span(
    k: np.ndarray, rotation: np.ndarray, height: int, width: int
) -> tuple[float, float]:
    """Azimuth range in radians, in the LiDAR frame, covered by the image border rays."""
    us = np.arange(-0.5, width, 1.0)
    vs = np.arange(-0.5, height, 1.0)
    border = np.concatenate(
        [
            np.stack([us, np.full_like(us, -0.5)], axis=1),
            np.stack([us, np.full_like(us, height - 0.5)], axis=1),
            np.stack([np.full_like(vs, -0.5), vs], axis=1),
            np.stack([np.full_like(vs, width - 0.5), vs], axis=1),
        ]
    )
    pixels = np.concatenate([border, np.ones((border.shape[0], 1))], axis=1)
    rays_cam = pixels @ np.linalg.inv(k).T
    rays_lidar = rays_cam @ rotation  # R^T applied to each row
    azimuth = np.arctan2(rays_lidar[:, 0], np.maximum(rays_lidar[:, 2], 1e-9))
    limit = math.pi / 2 - 1e-6
    return max(float(azimuth.min()), -limit), min(float(azimuth.max()), limit)


def lidar_beam_elevations(
    n_beams: int, vertical_fov_deg: tuple[float, float] = (-25.0, 3.0)
) -> np.ndarray:
    """Elevation angles in degrees of ``n_beams`` evenly spaced beams, lowest first.

    Angles are relative to the LiDAR's horizontal plane, positive upwards.
    """
    low, high = (float(a) for a in vertical_fov_deg)
    if n_beams < 1:
        raise ValueError(f"n_beams must be >= 1, got {n_beams}")
    if not -90.0 < low <= high < 90.0:
        raise ValueError(
            f"vertical_fov_deg must be (low, high) within (-90, 90), got {vertical_fov_deg}"
        )
    if n_beams == 1:
        return np.array([(low + high) / 2.0])
    return np.linspace(low, high, int(n_beams))


def sample_lidar(
    depth: np.ndarray,
    valid: np.ndarray | None,
    K: np.ndarray,  # noqa: N803 - conventional name
    rng: np.random.Generator,
    n_beams: int = 64,
    vertical_fov_deg: tuple[float, float] = (-25.0, 3.0),
    horizontal_step_deg: float = 0.2,
    max_range_m: float = 80.0,
    pitch_deg: float = 0.0,
    min_range_m: float = 0.0,
    noise_std_m: float = 0.01,
    noise_rel: float = 0.001,
    dropout: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """LiDAR-like scan lines: dense along each ring, sparse across rings.

    A spinning LiDAR at the camera centre fires ``n_beams`` beams at fixed elevations
    (:func:`lidar_beam_elevations`) every ``horizontal_step_deg`` of azimuth, starting at a
    random phase. Each beam direction is projected with ``K`` to the nearest pixel; the
    return is that pixel's depth, so rings appear as the curved scan lines of KITTI-like
    data. Returns whose range (Euclidean distance along the pixel's ray) is beyond
    ``max_range_m`` or below ``min_range_m`` are dropped, a fraction ``dropout`` of the
    others is lost at random, and Gaussian range noise of std
    ``noise_std_m + noise_rel * range`` is added along the ray.

    Args:
        depth: ``float32 [H, W]`` z-depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        K: ``[3, 3]`` intrinsics in pixels.
        rng: the random generator.
        n_beams: number of beams (32 and 64 are common).
        vertical_fov_deg: ``(lowest, highest)`` beam elevation in degrees relative to the
            LiDAR's horizontal plane, positive upwards.
        horizontal_step_deg: azimuth resolution in degrees (0.1-0.4 in real sensors).
        max_range_m: farthest return in metres.
        pitch_deg: tilt of the LiDAR's horizontal plane relative to the camera's, degrees,
            positive upwards.
        min_range_m: nearest return in metres.
        noise_std_m: constant part of the range noise std, metres (0 = off).
        noise_rel: range-proportional part of the range noise std (0 = off).
        dropout: probability in ``[0, 1]`` that a return is lost.

    Returns:
        ``(sparse_depth float32 [H, W] metres, 0 = missing; mask bool [H, W])``.
    """
    d, usable = _prepare(depth, valid)
    k = _check_k(K)
    dropout = _check_fraction("dropout", dropout)
    if horizontal_step_deg <= 0:
        raise ValueError(f"horizontal_step_deg must be positive, got {horizontal_step_deg}")
    if max_range_m <= 0 or min_range_m < 0 or min_range_m >= max_range_m:
        raise ValueError(
            f"need 0 <= min_range_m < max_range_m, got {min_range_m} and {max_range_m}"
        )
    height, width = d.shape
    elevations = np.radians(lidar_beam_elevations(n_beams, vertical_fov_deg))
    rotation = _pitch_rotation(pitch_deg)
    az_low, az_high = _azimuth_span(k, rotation, height, width)
    step = math.radians(horizontal_step_deg)
    phase = float(rng.uniform(0.0, step))
    azimuths = np.arange(az_low + phase, az_high, step)

    el, az = np.meshgrid(elevations, azimuths, indexing="ij")  # [n_beams, n_az]
    rays_lidar = np.stack([np.cos(el) * np.sin(az), -np.sin(el), np.cos(el) * np.cos(az)], -1)
    rays = rays_lidar.reshape(-1, 3) @ rotation.T
    ahead = rays[:, 2] > 1e-9
    rays = rays[ahead]
    x_n, y_n = rays[:, 0] / rays[:, 2], rays[:, 1] / rays[:, 2]
    u = k[0, 0] * x_n + k[0, 1] * y_n + k[0, 2]
    v = k[1, 1] * y_n + k[1, 2]
    cols, rows = np.floor(u + 0.5).astype(np.int64), np.floor(v + 0.5).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    flat = np.unique(rows[inside] * width + cols[inside])  # one return per pixel, sorted
    flat = flat[usable.reshape(-1)[flat]]

    rows_hit, cols_hit = np.divmod(flat, width)
    z = d.reshape(-1)[flat].astype(np.float64)
    py = (rows_hit - k[1, 2]) / k[1, 1]
    px = (cols_hit - k[0, 2] - k[0, 1] * py) / k[0, 0]
    ray_length = np.sqrt(px * px + py * py + 1.0)
    ranges = z * ray_length
    in_range = (ranges <= max_range_m) & (ranges >= min_range_m)
    flat, z, ranges = flat[in_range], z[in_range], ranges[in_range]

    kept = rng.random(flat.size) >= dropout
    noisy_ranges = ranges + _range_noise(ranges, rng, noise_std_m, noise_rel)
    noisy_z = np.where(noisy_ranges == ranges, z, z * noisy_ranges / np.maximum(ranges, 1e-12))
    kept &= noisy_z > 0
    flat, noisy_z = flat[kept], noisy_z[kept]

    mask = np.zeros(d.size, dtype=bool)
    mask[flat] = True
    out = np.zeros(d.size, dtype=np.float32)
    out[flat] = noisy_z.astype(np.float32)
    LOGGER.debug("lidar: %d beams, %d azimuths, %d returns", n_beams, azimuths.size, flat.size)
    return _output(out.reshape(d.shape), mask.reshape(d.shape))


# --------------------------------------------------------------------------------------
# Structured light / time of flight
# --------------------------------------------------------------------------------------


def depth_discontinuities(
    depth: np.ndarray, valid: np.ndarray | None, rel_threshold: float = 0.05, side: str = "both"
) -> np.ndarray:
    """Pixels beside a depth discontinuity between 4-neighbours.

    Two valid 4-neighbours ``a``, ``b`` form a discontinuity when
    ``|a - b| > rel_threshold * min(a, b)``. ``side`` picks which of the two pixels is
    flagged: ``"both"``, ``"near"`` (the smaller depth, the occluder) or ``"far"`` (the
    larger depth, where structured-light shadows fall).

    Args:
        depth: ``float32 [H, W]`` depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        rel_threshold: relative jump, positive.
        side: ``"both"``, ``"near"`` or ``"far"``.

    Returns:
        ``bool [H, W]``, ``True`` at flagged pixels (always valid ones).
    """
    if rel_threshold <= 0:
        raise ValueError(f"rel_threshold must be positive, got {rel_threshold}")
    if side not in _EDGE_SIDES:
        raise ValueError(f"side must be one of {_EDGE_SIDES}, got {side!r}")
    d, usable = _prepare(depth, valid)
    d = np.where(usable, d, np.float32(1.0))
    flagged = np.zeros(d.shape, dtype=bool)
    for axis in (0, 1):
        n = d.shape[axis]
        a = np.take(d, range(0, n - 1), axis=axis)
        b = np.take(d, range(1, n), axis=axis)
        both = np.take(usable, range(0, n - 1), axis=axis) & np.take(usable, range(1, n), axis=axis)
        jump = both & (np.abs(a - b) > rel_threshold * np.minimum(a, b))
        flag_a = jump if side == "both" else jump & ((a < b) == (side == "near"))
        flag_b = jump if side == "both" else jump & ((b < a) == (side == "near"))
        if axis == 0:
            flagged[:-1, :] |= flag_a
            flagged[1:, :] |= flag_b
        else:
            flagged[:, :-1] |= flag_a
            flagged[:, 1:] |= flag_b
    return flagged


def edge_holes(
    depth: np.ndarray,
    valid: np.ndarray | None,
    rng: np.random.Generator,
    rel_threshold: float = 0.05,
    max_width_px: int = 3,
    side: str = "both",
) -> tuple[np.ndarray, np.ndarray]:
    """Remove pixels next to depth discontinuities, with random hole widths.

    Each pixel flagged by :func:`depth_discontinuities` draws a width ``w`` uniformly in
    ``1..max_width_px`` and removes every pixel within Euclidean distance ``w - 1`` of it
    (``w = 1`` removes the pixel alone), giving ragged holes along edges like those of
    structured-light and time-of-flight sensors. Flat regions are untouched.

    Args:
        depth: ``float32 [H, W]`` depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        rng: the random generator.
        rel_threshold: relative depth jump that counts as a discontinuity.
        max_width_px: largest hole width in pixels, ``>= 1``.
        side: ``"both"``, ``"near"`` or ``"far"`` side of each discontinuity.

    Returns:
        ``(depth float32 [H, W] metres with 0 in holes and at invalid pixels; mask bool [H, W])``.
    """
    if max_width_px < 1:
        raise ValueError(f"max_width_px must be >= 1, got {max_width_px}")
    d, usable = _prepare(depth, valid)
    seeds = depth_discontinuities(d, usable, rel_threshold=rel_threshold, side=side)
    widths = np.zeros(d.shape, dtype=np.int64)
    widths[seeds] = rng.integers(1, int(max_width_px) + 1, size=int(seeds.sum()))
    holes = np.zeros(d.shape, dtype=bool)
    for width in range(1, int(max_width_px) + 1):
        holes |= _dilate(widths == width, width - 1)
    return _output(d, usable & ~holes)


def _blob_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    mean_count: float,
    radius_frac: tuple[float, float],
) -> np.ndarray:
    """``bool [H, W]`` union of a Poisson number of random ellipses (dropout blobs).

    Each ellipse has a centre uniform in the image, a semi-major axis uniform in
    ``radius_frac * min(H, W)`` pixels, an axis ratio uniform in ``[0.4, 1]`` and a uniform
    orientation.
    """
    height, width = shape
    blobs = np.zeros(shape, dtype=bool)
    count = int(rng.poisson(mean_count)) if mean_count > 0 else 0
    low, high = radius_frac
    for _ in range(count):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        major = rng.uniform(low, high) * min(height, width)
        minor = major * rng.uniform(0.4, 1.0)
        angle = rng.uniform(0.0, math.pi)
        r = math.ceil(major)
        y0, y1 = max(0, math.floor(cy - r)), min(height, math.ceil(cy + r) + 1)
        x0, x1 = max(0, math.floor(cx - r)), min(width, math.ceil(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dy, dx = yy - cy, xx - cx
        c, s = math.cos(angle), math.sin(angle)
        along, across = c * dx + s * dy, -s * dx + c * dy
        blobs[y0:y1, x0:x1] |= (along / max(major, 1e-6)) ** 2 + (
            across / max(minor, 1e-6)
        ) ** 2 <= 1.0
    return blobs


def sample_structured_light(
    depth: np.ndarray,
    valid: np.ndarray | None,
    rng: np.random.Generator,
    min_range_m: float = 0.3,
    max_range_m: float = 10.0,
    edge_rel_threshold: float = 0.05,
    edge_max_width_px: int = 3,
    edge_side: str = "both",
    blob_count: float = 2.0,
    blob_radius_frac: tuple[float, float] = (0.02, 0.08),
    dropout: float = 0.005,
    noise_rel: float = 0.003,
    quant_rel: float = 0.001,
) -> tuple[np.ndarray, np.ndarray]:
    """Kinect / time-of-flight-like depth: dense, with holes, noise and quantisation.

    In order: pixels outside ``[min_range_m, max_range_m]`` (z-depth) are dropped; holes
    are cut along depth discontinuities (:func:`edge_holes`); a Poisson number
    (mean ``blob_count``) of random elliptic dropout blobs (specular or dark surfaces) is
    removed; a fraction ``dropout`` of the remaining pixels is lost at random; Gaussian
    noise of std ``noise_rel * z`` is added; finally depth is quantised in log space with
    relative step ``quant_rel`` (``z = exp(round(log z / q) * q)``, a step of about
    ``q * z`` metres, as with disparity-based sensors).

    Args:
        depth: ``float32 [H, W]`` z-depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        rng: the random generator.
        min_range_m: nearest measurable depth, metres.
        max_range_m: farthest measurable depth, metres.
        edge_rel_threshold: relative jump that counts as a discontinuity.
        edge_max_width_px: largest edge-hole width in pixels (0 = no edge holes).
        edge_side: ``"both"``, ``"near"`` or ``"far"`` side of each discontinuity.
        blob_count: mean number of dropout blobs (0 = none).
        blob_radius_frac: ``(low, high)`` blob semi-major axis as a fraction of ``min(H, W)``.
        dropout: probability in ``[0, 1]`` that a pixel is lost on its own.
        noise_rel: depth-proportional noise std (0 = off).
        quant_rel: relative quantisation step (0 = off).

    Returns:
        ``(sparse_depth float32 [H, W] metres, 0 = missing; mask bool [H, W])``.
    """
    d, usable = _prepare(depth, valid)
    dropout = _check_fraction("dropout", dropout)
    if max_range_m <= 0 or min_range_m < 0 or min_range_m >= max_range_m:
        raise ValueError(
            f"need 0 <= min_range_m < max_range_m, got {min_range_m} and {max_range_m}"
        )
    if quant_rel < 0 or noise_rel < 0:
        raise ValueError("noise_rel and quant_rel must be >= 0")
    mask = usable.copy()
    if edge_max_width_px > 0:
        _, mask = edge_holes(
            d, usable, rng, edge_rel_threshold, max_width_px=edge_max_width_px, side=edge_side
        )
    mask &= (d >= min_range_m) & (d <= max_range_m)
    mask &= ~_blob_mask(d.shape, rng, blob_count, blob_radius_frac)
    mask &= rng.random(d.shape) >= dropout

    out = d.astype(np.float64)
    if noise_rel > 0:
        out = out + _range_noise(out, rng, 0.0, noise_rel)
    if quant_rel > 0:
        positive = np.maximum(out, 1e-6)
        out = np.exp(np.round(np.log(positive) / quant_rel) * quant_rel)
    if noise_rel > 0 or quant_rel > 0:
        mask &= out > 0
        values = out.astype(np.float32)
    else:
        values = d
    return _output(values, mask)


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


def _random_mode(
    depth: np.ndarray,
    valid: np.ndarray | None,
    K: np.ndarray,  # noqa: N803 - uniform registry signature
    rng: np.random.Generator,
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_random_points` with the registry signature (``K`` unused)."""
    return sample_random_points(depth, valid, rng, **kw)


def _structured_light_mode(
    depth: np.ndarray,
    valid: np.ndarray | None,
    K: np.ndarray,  # noqa: N803 - uniform registry signature
    rng: np.random.Generator,
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_structured_light` with the registry signature (``K`` unused)."""
    return sample_structured_light(depth, valid, rng, **kw)


#: Sparse supervision modes by name; each is called as ``f(depth, valid, K, rng, **kw)``.
SPARSE_MODES: dict[str, SparseSampler] = {
    "random": _random_mode,
    "lidar": sample_lidar,
    "lidar32": functools.partial(sample_lidar, n_beams=32),
    "lidar64": functools.partial(sample_lidar, n_beams=64),
    "structured_light": _structured_light_mode,
}


def sample_sparse(
    mode: str,
    depth: np.ndarray,
    valid: np.ndarray | None,
    K: np.ndarray,  # noqa: N803 - conventional name
    rng: np.random.Generator,
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse supervision of the named ``mode`` (a key of :data:`SPARSE_MODES`).

    Args:
        mode: ``"random"``, ``"lidar"``, ``"lidar32"``, ``"lidar64"`` or
            ``"structured_light"``.
        depth: ``float32 [H, W]`` z-depth in metres.
        valid: ``bool [H, W]`` valid pixels (``None``: all finite positive pixels).
        K: ``[3, 3]`` intrinsics in pixels (used by the LiDAR modes).
        rng: the random generator.
        **kw: keyword arguments of the underlying sampler.

    Returns:
        ``(sparse_depth float32 [H, W] metres, 0 = missing; mask bool [H, W])``.
    """
    try:
        sampler = SPARSE_MODES[mode]
    except KeyError:
        known = ", ".join(sorted(SPARSE_MODES))
        raise ValueError(f"unknown sparse mode {mode!r}; known modes: {known}") from None
    return sampler(depth, valid, K, rng, **kw)
