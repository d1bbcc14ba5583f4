"""Camera effects of the synthetic engine: turn a rendered linear image into a photo.

The renderer produces ``float32 [H, W, 3]`` linear-ish radiance (textures of
``synth.textures`` are stored linear, i.e. sRGB-decoded). :func:`apply_camera_effects`
simulates a cheap camera pipeline on it, in this order::

    exposure / white balance -> vignetting -> lens blur -> sensor noise
    -> tone curve (sRGB-ish) -> 8-bit quantisation -> optional JPEG round trip

(tone curve and quantisation share a look-up table, :func:`tone_map_quantize`).

Every random parameter is drawn from the caller's ``np.random.Generator`` by
:func:`draw_camera_params` in a fixed order (the same draws whatever ``strength`` is),
followed by the noise field (only when ``strength > 0``), so the output is a
deterministic function of the image, the generator state and ``strength``.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

LOGGER = logging.getLogger(__name__)

#: Probability of a JPEG round trip at ``strength = 1``.
JPEG_PROBABILITY = 0.5
#: Inclusive JPEG quality range.
JPEG_QUALITY_RANGE = (70, 95)
#: Maximal Gaussian blur sigma in pixels at ``strength = 1``.
MAX_BLUR_SIGMA = 0.8


@dataclass(frozen=True)
class CameraParams:
    """Parameters of one camera-effects draw (all neutral at ``strength = 0``).

    Attributes:
        exposure: global gain on linear radiance.
        white_balance: ``(r, g, b)`` per-channel gains on linear radiance.
        vignette: relative light fall-off at half the image diagonal from the centre,
            in ``[0, 1)``.
        vignette_center: ``(dx, dy)`` offset of the vignetting centre, in units of the
            half image diagonal.
        blur_sigma: Gaussian blur sigma in pixels.
        full_well: electrons at linear value 1 (shot-noise variance is ``x / full_well``).
        read_noise: read-noise standard deviation in linear units.
        noise_scale: multiplier on the noise standard deviation (``strength``).
        gamma: extra exponent applied to linear values before the sRGB curve.
        contrast: S-curve amount after the sRGB curve (0 = none).
        jpeg_quality: JPEG quality, or ``None`` for no JPEG round trip.
    """

    exposure: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    vignette_center: tuple[float, float] = (0.0, 0.0)
    blur_sigma: float = 0.0
    full_well: float = 1000.0
    read_noise: float = 0.0
    noise_scale: float = 0.0
    gamma: float = 1.0
    contrast: float = 0.0
    jpeg_quality: int | None = None


def draw_camera_params(rng: np.random.Generator, strength: float = 1.0) -> CameraParams:
    """Draw camera parameters from ``rng`` in a fixed order.

    The same number of values is drawn for every ``strength``; ``strength`` only scales
    them (``0`` gives neutral parameters, ``1`` the nominal ranges, larger exaggerates).

    Args:
        rng: the random generator (advanced by exactly 13 scalar draws).
        strength: effect strength, ``>= 0``.

    Returns:
        the :class:`CameraParams`.
    """
    s = max(0.0, float(strength))
    exposure_z = float(rng.normal(0.0, 0.25))
    wb_z = rng.normal(0.0, 0.06, size=3)
    vignette_u = float(rng.uniform(0.0, 0.4))
    center_z = rng.normal(0.0, 0.05, size=2)
    blur_u = float(rng.uniform(0.0, MAX_BLUR_SIGMA))
    full_well = float(10.0 ** rng.uniform(2.3, 3.7))
    read_noise = float(rng.uniform(0.002, 0.012))
    gamma_z = float(rng.normal(0.0, 0.08))
    contrast_u = float(rng.uniform(-0.1, 0.25))
    jpeg_u = float(rng.random())
    quality = int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1))
    wb = np.exp(s * wb_z)
    return CameraParams(
        exposure=math.exp(s * exposure_z),
        white_balance=(float(wb[0]), float(wb[1]), float(wb[2])),
        vignette=min(0.95, s * vignette_u),
        vignette_center=(s * float(center_z[0]), s * float(center_z[1])),
        blur_sigma=s * blur_u,
        full_well=full_well,
        read_noise=read_noise,
        noise_scale=s,
        gamma=math.exp(s * gamma_z),
        contrast=max(-0.5, min(0.5, s * contrast_u)),
        jpeg_quality=quality if jpeg_u < min(1.0, JPEG_PROBABILITY * s) else None,
    )


class _Scratch:
    """Per-thread temporaries for one ``[H, W * 3]`` image shape.

    Reusing them (instead of allocating fresh arrays for every step) avoids page faults,
    which dominate the cost of these cheap per-pixel operations.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.a = np.empty(shape, dtype=np.float32)
        self.b = np.empty(shape, dtype=np.float32)
        self.work = np.empty(shape, dtype=np.float32)
        self.index = np.empty(shape, dtype=np.int32)
        self.pads: dict[tuple[int, int], np.ndarray] = {}

    def pad(self, shape: tuple[int, int]) -> np.ndarray:
        """A cached float32 buffer of ``shape`` (padded copies in the blur)."""
        buf = self.pads.get(shape)
        if buf is None:
            buf = self.pads[shape] = np.empty(shape, dtype=np.float32)
        return buf


_THREAD_LOCAL = threading.local()


def _scratch(shape: tuple[int, int]) -> _Scratch:
    """This thread's :class:`_Scratch` for ``shape`` (only the last shape is kept)."""
    scratch = getattr(_THREAD_LOCAL, "scratch", None)
    if scratch is None or scratch.shape != shape:
        scratch = _Scratch(shape)
        _THREAD_LOCAL.scratch = scratch
    return scratch


def _as_rows(img: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` image as a C-contiguous float32 ``[H, W * C]`` (a view when possible)."""
    img = np.ascontiguousarray(img, dtype=np.float32)
    if img.ndim != 3:
        raise ValueError(f"expected an [H, W, C] image, got shape {img.shape}")
    return img.reshape(img.shape[0], -1)


def _out_rows(rgb: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``[H, W * C]`` view of ``out`` (checked), or a new array shaped like ``rgb``."""
    if out is None:
        return np.empty((rgb.shape[0], rgb.shape[1] * rgb.shape[2]), dtype=np.float32)
    if out.shape != rgb.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array shaped like the input")
    return out.reshape(rgb.shape[0], -1)


def expose(
    rgb: np.ndarray,
    exposure: float,
    white_balance: tuple[float, float, float],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Scale linear radiance by an exposure gain and per-channel white-balance gains.

    Args:
        rgb: ``float32 [H, W, 3]`` linear image.
        exposure: global gain.
        white_balance: ``(r, g, b)`` gains.
        out: optional C-contiguous ``float32 [H, W, 3]`` output (may be ``rgb``).

    Returns:
        ``float32 [H, W, 3]`` (not clipped; highlights clip in the tone curve).
    """
    rows = _as_rows(rgb)
    h, w = rgb.shape[:2]
    gains = np.tile(np.asarray(white_balance, dtype=np.float32) * np.float32(exposure), w)
    dest = _out_rows(rgb, out)
    np.multiply(rows, gains, out=dest)
    return dest.reshape(h, w, 3)


def vignette_gain(
    height: int, width: int, amount: float, center: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, np.ndarray]:
    """Separable vignetting gain ``exp(-a r^2) = gy[:, None] * gx[None, :]``.

    ``a`` is chosen so that the gain at ``r = 1`` (half the image diagonal from the
    centre) is ``1 - amount``.

    Args:
        height: image height ``H``.
        width: image width ``W``.
        amount: fall-off at ``r = 1``, in ``[0, 1)``.
        center: ``(dx, dy)`` offset of the centre, in half diagonals.

    Returns:
        ``float32 [H]`` row gains and ``float32 [W]`` column gains.
    """
    half_diag = 0.5 * math.hypot(height, width)
    a = -math.log(max(1e-6, 1.0 - amount))
    cx = (width - 1) / 2.0 + center[0] * half_diag
    cy = (height - 1) / 2.0 + center[1] * half_diag
    gx = np.exp(-a * ((np.arange(width) - cx) / half_diag) ** 2).astype(np.float32)
    gy = np.exp(-a * ((np.arange(height) - cy) / half_diag) ** 2).astype(np.float32)
    return gy, gx


def vignette(
    rgb: np.ndarray,
    amount: float,
    center: tuple[float, float] = (0.0, 0.0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Darken towards the corners (natural vignetting, see :func:`vignette_gain`).

    Args:
        rgb: ``float32 [H, W, 3]`` linear image.
        amount: relative fall-off at half the image diagonal from the centre, ``[0, 1)``.
        center: ``(dx, dy)`` offset of the centre, in half diagonals.
        out: optional C-contiguous ``float32 [H, W, 3]`` output (may be ``rgb``).

    Returns:
        ``float32 [H, W, 3]``.
    """
    rows = _as_rows(rgb)
    h, w, c = rgb.shape
    dest = _out_rows(rgb, out)
    if amount <= 0.0:
        np.copyto(dest, rows)
        return dest.reshape(h, w, c)
    gy, gx = vignette_gain(h, w, amount, center)
    gain = _scratch(rows.shape).a
    np.outer(gy, np.repeat(gx, c), out=gain)
    np.multiply(rows, gain, out=dest)
    return dest.reshape(h, w, c)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian kernel ``float32 [2r + 1]`` with ``r = ceil(2.5 sigma)``."""
    radius = max(1, math.ceil(2.5 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _convolve_rows(
    src: np.ndarray, kernel: np.ndarray, step: int, axis: int, dest: np.ndarray
) -> None:
    """Convolve 2-D ``src`` with a symmetric ``kernel`` along ``axis`` into ``dest``.

    Edges are replicated. Along ``axis = 1`` neighbours are ``step`` elements apart (the
    channels of an ``[H, W * C]`` view), so ``step = C``; ``dest`` may alias ``src``.
    """
    radius = kernel.size // 2
    h, n = src.shape
    scratch = _scratch(src.shape)
    if axis == 0:
        padded = scratch.pad((h + 2 * radius, n))
        padded[radius : radius + h] = src
        padded[:radius] = src[:1]
        padded[radius + h :] = src[-1:]
    else:
        e = radius * step
        padded = scratch.pad((h, n + 2 * e))
        padded[:, e : e + n] = src
        padded[:, :e].reshape(h, radius, step)[...] = src[:, None, :step]
        padded[:, e + n :].reshape(h, radius, step)[...] = src[:, None, n - step :]

    def shifted(offset: int) -> np.ndarray:
        start = radius * step + offset
        return padded[start : start + h] if axis == 0 else padded[:, start : start + n]

    pair = scratch.b
    np.multiply(shifted(0), kernel[radius], out=dest)
    for k in range(1, radius + 1):
        np.add(shifted(-k * step), shifted(k * step), out=pair)
        pair *= kernel[radius + k]
        dest += pair


def gaussian_blur(rgb: np.ndarray, sigma: float, out: np.ndarray | None = None) -> np.ndarray:
    """Separable Gaussian blur (lens softness / demosaicing), edges replicated.

    Args:
        rgb: ``float32 [H, W, C]`` image.
        sigma: standard deviation in pixels; below 0.05 the image is copied unchanged.
        out: optional C-contiguous ``float32 [H, W, C]`` output (may be ``rgb``).

    Returns:
        ``float32 [H, W, C]``.
    """
    rows = _as_rows(rgb)
    h, w, c = rgb.shape
    dest = _out_rows(rgb, out)
    if sigma < 0.05:
        np.copyto(dest, rows)
        return dest.reshape(h, w, c)
    kernel = gaussian_kernel(sigma)
    _convolve_rows(rows, kernel, 1, 0, dest)
    _convolve_rows(dest, kernel, c, 1, dest)
    return dest.reshape(h, w, c)


def add_sensor_noise(
    rgb: np.ndarray,
    rng: np.random.Generator,
    full_well: float,
    read_noise: float,
    scale: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Add signal-dependent shot noise plus read noise (Gaussian approximation).

    Per pixel and channel: ``x + scale * sqrt(max(x, 0) / full_well + read_noise^2) * z``
    with ``z ~ N(0, 1)``: one ``float32 [H, W, 3]`` draw from ``rng`` (nothing is drawn
    when ``scale <= 0``).

    Args:
        rgb: ``float32 [H, W, 3]`` linear image.
        rng: the random generator.
        full_well: electrons at linear value 1.
        read_noise: read-noise standard deviation in linear units.
        scale: multiplier on the noise standard deviation.
        out: optional C-contiguous ``float32 [H, W, 3]`` output (may be ``rgb``).

    Returns:
        ``float32 [H, W, 3]`` (not clipped).
    """
    rows = _as_rows(rgb)
    h, w, c = rgb.shape
    dest = _out_rows(rgb, out)
    if scale <= 0.0:
        np.copyto(dest, rows)
        return dest.reshape(h, w, c)
    scratch = _scratch(rows.shape)
    std, z = scratch.a, scratch.b
    np.maximum(rows, np.float32(0.0), out=std)
    std *= np.float32(scale * scale / full_well)
    std += np.float32((scale * read_noise) ** 2)
    np.sqrt(std, out=std)
    rng.standard_normal(dtype=np.float32, out=z)
    std *= z
    np.add(rows, std, out=dest)
    return dest.reshape(h, w, c)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function (encode) of ``x`` clipped to ``[0, 1]``; float32 out.

    Computed in float64, so ``0 -> 0`` and ``1 -> 1`` exactly.
    """
    x64 = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    y = np.where(x64 <= 0.0031308, x64 * 12.92, 1.055 * np.power(x64, 1.0 / 2.4) - 0.055)
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (decode) of ``x`` clipped to ``[0, 1]``; float32 out.

    Computed in float64, so ``0 -> 0`` and ``1 -> 1`` exactly.
    """
    x64 = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    y = np.where(x64 <= 0.04045, x64 / 12.92, np.power((x64 + 0.055) / 1.055, 2.4))
    return np.clip(y, 0.0, 1.0).astype(np.float32)


def tone_curve(x: np.ndarray, gamma: float = 1.0, contrast: float = 0.0) -> np.ndarray:
    """The tone curve on linear values: clip, ``x^gamma``, sRGB encode, S-curve.

    The S-curve is ``y - contrast * sin(2 pi y) / (2 pi)`` (monotone for
    ``|contrast| < 1``; positive values add mid-tone contrast).

    Args:
        x: linear values (any shape).
        gamma: extra exponent on the clipped linear values (1 = plain sRGB).
        contrast: S-curve amount.

    Returns:
        ``float32`` display values in ``[0, 1]``, same shape.
    """
    y = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    if abs(gamma - 1.0) > 1e-6:
        y = np.power(y, np.float32(gamma))
    y = linear_to_srgb(y)
    if abs(contrast) > 1e-6:
        y = y - np.float32(contrast / (2.0 * math.pi)) * np.sin(np.float32(2.0 * math.pi) * y)
        y = np.clip(y, 0.0, 1.0)
    return y.astype(np.float32, copy=False)


def tone_map(rgb: np.ndarray, gamma: float = 1.0, contrast: float = 0.0) -> np.ndarray:
    """Linear radiance to display values with :func:`tone_curve` (exact, float32).

    Args:
        rgb: ``float32 [H, W, 3]`` linear image.
        gamma: extra exponent on the clipped linear values (1 = plain sRGB).
        contrast: S-curve amount.

    Returns:
        ``float32 [H, W, 3]`` in ``[0, 1]``.
    """
    return tone_curve(rgb, gamma, contrast)


def quantize(rgb: np.ndarray) -> np.ndarray:
    """Round ``float [H, W, 3]`` display values in ``[0, 1]`` to ``uint8``."""
    return np.clip(rgb * np.float32(255.0) + np.float32(0.5), 0.0, 255.0).astype(np.uint8)


#: Entries of the tone-mapping look-up table over linear ``[0, 1]``.
TONE_LUT_SIZE = 1 << 14


@functools.lru_cache(maxsize=64)
def _tone_lut(gamma: float, contrast: float) -> np.ndarray:
    """``uint8 [TONE_LUT_SIZE]``: quantised :func:`tone_curve` at evenly spaced linear values."""
    x = np.linspace(0.0, 1.0, TONE_LUT_SIZE, dtype=np.float64)
    return quantize(tone_curve(x, gamma, contrast))


def tone_map_quantize(rgb: np.ndarray, gamma: float = 1.0, contrast: float = 0.0) -> np.ndarray:
    """Fast :func:`tone_map` + :func:`quantize` through a look-up table.

    The linear input is rounded to ``1 / (TONE_LUT_SIZE - 1)`` steps (at most ~1 LSB
    different from the exact path, in the darkest tones).

    Args:
        rgb: ``float32 [H, W, 3]`` linear image.
        gamma: extra exponent on the clipped linear values.
        contrast: S-curve amount.

    Returns:
        ``uint8 [H, W, 3]``.
    """
    lut = _tone_lut(round(float(gamma), 4), round(float(contrast), 4))
    rows = _as_rows(rgb)
    scratch = _scratch(rows.shape)
    scaled = scratch.a
    np.clip(rows, np.float32(0.0), np.float32(1.0), out=scaled)
    scaled *= np.float32(TONE_LUT_SIZE - 1)
    scaled += np.float32(0.5)
    np.copyto(scratch.index, scaled, casting="unsafe")
    return np.take(lut, scratch.index).reshape(rgb.shape)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode ``uint8 [H, W, 3]`` as JPEG (PIL, default 4:2:0 chroma subsampling).

    Args:
        rgb: ``uint8 [H, W, 3]`` image.
        quality: JPEG quality in ``[1, 95]``.

    Returns:
        ``uint8 [H, W, 3]`` decoded image.
    """
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB").save(
        buf, format="JPEG", quality=int(quality)
    )
    buf.seek(0)
    with Image.open(buf) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def apply_camera_params(
    rgb: np.ndarray, params: CameraParams, rng: np.random.Generator
) -> np.ndarray:
    """Apply drawn :class:`CameraParams` to a linear image (see module docstring for order).

    Args:
        rgb: ``float32 [H, W, 3]`` linear-ish image, nominally in ``[0, 1]``.
        params: the parameters.
        rng: generator for the noise field (used only when ``params.noise_scale > 0``).

    Returns:
        ``uint8 [H, W, 3]`` sRGB-ish image.
    """
    x = np.asarray(rgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {x.shape}")
    work = _scratch((x.shape[0], x.shape[1] * 3)).work.reshape(x.shape)
    expose(x, params.exposure, params.white_balance, out=work)
    if params.vignette > 0.0:
        vignette(work, params.vignette, params.vignette_center, out=work)
    if params.blur_sigma >= 0.05:
        gaussian_blur(work, params.blur_sigma, out=work)
    if params.noise_scale > 0.0:
        add_sensor_noise(
            work, rng, params.full_well, params.read_noise, params.noise_scale, out=work
        )
    out = tone_map_quantize(work, params.gamma, params.contrast)
    if params.jpeg_quality is not None:
        out = jpeg_roundtrip(out, params.jpeg_quality)
    return out


def apply_camera_effects(
    rgb: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
    """Simulate a camera on a rendered linear image.

    Draws :func:`draw_camera_params` (fixed order) then applies them with
    :func:`apply_camera_params`. ``strength = 0`` gives the plain sRGB-encoded,
    quantised image (independent of ``rng``).

    Args:
        rgb: ``float32 [H, W, 3]`` linear-ish image, nominally in ``[0, 1]``.
        rng: the random generator; the result is deterministic given its state.
        strength: effect strength (0 = off, 1 = nominal).

    Returns:
        ``uint8 [H, W, 3]`` image.
    """
    params = draw_camera_params(rng, strength)
    return apply_camera_params(rgb, params, rng)
