"""Texture bank of the synthetic engine: procedural and photographic surface textures.

Conventions:

* Every texture is ``float32 [S, S, 3]`` (``S = 256``) in ``[0, 1]``, row 0 at the top,
  stored **linear** (sRGB-decoded albedo): the renderer multiplies it by the material
  tint and the shading, and ``synth.camera_effects`` re-encodes to sRGB. (Generators
  below design colours in display sRGB values; the bank decodes them once.)
* Texture coordinates ``(u, v)`` are in repeats (``Material.scale`` metres per repeat)
  and wrap with period 1. ``u`` runs left to right along the columns; ``v`` runs
  **upwards** (OpenGL convention): ``v = 0`` is the bottom edge, ``v -> 1`` the top. So a
  vertical wall mapped with ``v = height_above_ground / scale`` shows windows, facades
  and book covers upright.
* Procedural textures are tileable; photographic ones (``photo_*``, from the images
  bundled with scikit-image) are centre-cropped squares and show seams when repeated.
* The bank is deterministic: every texture uses its own generator seeded from
  ``BANK_SEED`` and its name, independent of scene seeds.

Sampling is bilinear with wrap-around; :meth:`TextureBank.sample_many` gathers from all
textures in one vectorised call and optionally from a mip pyramid (``lod``, trilinear)
to avoid aliasing of distant surfaces.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import math
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from sharpdepth.synth.camera_effects import srgb_to_linear

LOGGER = logging.getLogger(__name__)

#: Fixed seed of the texture bank (independent of scene seeds).
BANK_SEED = 20250611
#: Default texture size ``S`` (a power of two).
TEXTURE_SIZE = 256

#: Procedural textures, in bank order.
PROCEDURAL_NAMES: tuple[str, ...] = (
    "noise",
    "stripes",
    "bricks",
    "wood",
    "checker",
    "tiles",
    "plaster",
    "concrete",
    "asphalt",
    "fabric",
    "bark",
    "leaves",
    "window",
    "facade",
    "paper",
    "marble",
    "plain",
)
#: Photographic textures -> file in ``skimage/data`` (and ``skimage.data`` function).
PHOTO_SOURCES: dict[str, tuple[str, str]] = {
    "photo_brick": ("brick.png", "brick"),
    "photo_grass": ("grass.png", "grass"),
    "photo_gravel": ("gravel.png", "gravel"),
    "photo_coffee": ("coffee.png", "coffee"),
    "photo_chelsea": ("chelsea.png", "chelsea"),
    "photo_astronaut": ("astronaut.png", "astronaut"),
    "photo_rocket": ("rocket.jpg", "rocket"),
}
#: All texture names; the bank index of a texture is its position here.
TEXTURE_NAMES: tuple[str, ...] = PROCEDURAL_NAMES + tuple(PHOTO_SOURCES)

#: A procedural generator: ``(rng, S) -> display-space float32 [S, S, 3]``.
TextureFn = Callable[[np.random.Generator, int], np.ndarray]
RGB = tuple[float, float, float]


# --------------------------------------------------------------------------------------
# Building blocks (all return display-space values; shapes [S, S] or [S, S, 3])
# --------------------------------------------------------------------------------------


def periodic_noise(
    rng: np.random.Generator,
    size: int,
    alpha: float = 1.0,
    fmin: float = 1.0,
    fmax: float | None = None,
    aniso: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Tileable fractal noise by spectral filtering of white noise.

    The amplitude spectrum falls as ``f^-alpha`` with
    ``f = hypot(aniso[0] * fx, aniso[1] * fy)`` (``fx``, ``fy`` in cycles per repeat along
    columns / rows), restricted to ``fmin <= f <= fmax``. A larger ``aniso`` weight makes
    the noise smoother along that axis (``aniso=(1, 6)``: features elongated vertically).

    Args:
        rng: the random generator (draws ``size * size`` normals).
        size: output side ``S``.
        alpha: spectral slope (1 ~ natural images; 2 = smooth).
        fmin: lowest kept (weighted) frequency.
        fmax: highest kept (weighted) frequency, ``None`` for all.
        aniso: ``(x, y)`` frequency weights.

    Returns:
        ``float32 [S, S]`` with zero mean and unit standard deviation.
    """
    spec = np.fft.rfft2(rng.standard_normal((size, size)))
    fy = np.fft.fftfreq(size, d=1.0 / size)[:, None] * aniso[1]
    fx = np.fft.rfftfreq(size, d=1.0 / size)[None, :] * aniso[0]
    f = np.hypot(fx, fy)
    keep = f >= fmin
    if fmax is not None:
        keep &= f <= fmax
    amp = np.where(keep, np.power(np.maximum(f, 1e-6), -alpha), 0.0)
    out = np.fft.irfft2(spec * amp, s=(size, size))
    out -= out.mean()
    std = out.std()
    return (out / std if std > 0 else out).astype(np.float32)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel grids ``(rows, cols)``, each ``int64 [S, S]``."""
    rows, cols = np.mgrid[0:size, 0:size]
    return rows, cols


def _rgb(r: float, g: float, b: float) -> np.ndarray:
    """A colour as ``float32 [3]``."""
    return np.array([r, g, b], dtype=np.float32)


def _solid(size: int, color: RGB) -> np.ndarray:
    """``float32 [S, S, 3]`` filled with ``color``."""
    return np.broadcast_to(np.asarray(color, dtype=np.float32), (size, size, 3)).copy()


def _mix(a: np.ndarray, b: np.ndarray | RGB, t: np.ndarray | float) -> np.ndarray:
    """``a + (b - a) * t`` with ``a [S, S, 3]``, ``b`` an image or colour, ``t [S, S]``."""
    b_arr = np.asarray(b, dtype=np.float32)
    t_arr = np.asarray(t, dtype=np.float32)
    if t_arr.ndim == 2:
        t_arr = t_arr[:, :, None]
    return (a + (b_arr - a) * t_arr).astype(np.float32)


def _ramp(t: np.ndarray, positions: list[float], colors: list[RGB]) -> np.ndarray:
    """Piecewise-linear colour map of ``t [S, S]`` through ``colors`` at ``positions``."""
    cols = np.asarray(colors, dtype=np.float64)
    out = np.stack([np.interp(t, positions, cols[:, c]) for c in range(3)], axis=-1)
    return out.astype(np.float32)


def _shade(img: np.ndarray, gain: np.ndarray | float) -> np.ndarray:
    """Multiply ``img [S, S, 3]`` by a per-pixel ``gain [S, S]`` (or scalar)."""
    g = np.asarray(gain, dtype=np.float32)
    return img * (g[:, :, None] if g.ndim == 2 else g)


def _wrapped_disc_mask(size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """``bool [S, S]`` disc of ``radius`` px at ``(cy, cx)`` on the torus (wraps)."""
    rows, cols = _grid(size)
    dy = (rows + 0.5 - cy + size / 2) % size - size / 2
    dx = (cols + 0.5 - cx + size / 2) % size - size / 2
    return (dy * dy + dx * dx) <= radius * radius


def _speckles(rng: np.random.Generator, size: int, density: float, max_radius: float) -> np.ndarray:
    """``bool [S, S]`` sparse random dots (pores, aggregate), radius up to ``max_radius``."""
    count = int(density * size * size)
    mask = np.zeros((size, size), dtype=bool)
    ys = rng.integers(0, size, count)
    xs = rng.integers(0, size, count)
    radii = rng.uniform(0.5, max_radius, count)
    mask[ys, xs] = True
    big = radii > 1.0
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        mask[(ys[big] + dy) % size, (xs[big] + dx) % size] = True
    return mask


def _text_line(
    img: np.ndarray,
    rng: np.random.Generator,
    y0: int,
    x0: int,
    x1: int,
    height: int,
    color: RGB,
) -> None:
    """Draw a line of text-like glyphs (strokes of varying shape) into ``img`` in place.

    Args:
        img: ``float32 [S, S, 3]`` canvas.
        rng: the random generator.
        y0: top row of the line (cap height ``height``).
        x0: first column.
        x1: column where the line stops.
        height: glyph height in px (>= 3).
        color: glyph colour.
    """
    col = np.asarray(color, dtype=np.float32)
    stroke = max(1, height // 5)
    x = x0
    while x < x1:
        for _ in range(int(rng.integers(2, 9))):
            width = max(2, round(height * rng.uniform(0.4, 0.75)))
            if x + width > x1:
                return
            tall = rng.random() < 0.3
            top = y0 if tall else y0 + height // 3
            bottom = y0 + height
            img[top:bottom, x : x + stroke] = col  # stem
            parts = rng.random(4)
            if parts[0] < 0.6:
                img[top : top + stroke, x : x + width] = col
            if parts[1] < 0.6:
                img[bottom - stroke : bottom, x : x + width] = col
            if parts[2] < 0.5:
                img[top:bottom, x + width - stroke : x + width] = col
            if parts[3] < 0.3:
                mid = (top + bottom) // 2
                img[mid : mid + stroke, x : x + width] = col
            x += width + max(1, height // 6)
        x += max(2, round(height * rng.uniform(0.5, 0.8)))


# --------------------------------------------------------------------------------------
# Procedural generators: (rng, S) -> display-space float32 [S, S, 3] (clipped later)
# --------------------------------------------------------------------------------------


def tex_noise(rng: np.random.Generator, s: int) -> np.ndarray:
    """Generic mottled surface: fractal luminance, colour drift and sharp-edged blotches."""
    fine = periodic_noise(rng, s, alpha=0.9)
    hue = periodic_noise(rng, s, alpha=2.0, fmax=8)
    blot = periodic_noise(rng, s, alpha=1.6, fmax=32)
    t = np.clip(0.5 + 0.3 * hue, 0.0, 1.0)
    img = _ramp(t, [0.0, 0.5, 1.0], [(0.62, 0.55, 0.45), (0.58, 0.58, 0.56), (0.45, 0.52, 0.6)])
    img = _shade(img, 1.0 + 0.18 * fine)
    img = _shade(img, np.where(blot > 1.0, 0.7, 1.0))
    return _shade(img, np.where(blot < -1.3, 1.2, 1.0))


def tex_stripes(rng: np.random.Generator, s: int) -> np.ndarray:
    """Vertical stripes of random widths and colours (awning / wallpaper), pinstripes."""
    palette = [
        (0.92, 0.9, 0.85),
        (0.75, 0.15, 0.15),
        (0.15, 0.25, 0.55),
        (0.2, 0.45, 0.25),
        (0.95, 0.75, 0.2),
        (0.2, 0.2, 0.22),
        (0.55, 0.75, 0.85),
    ]
    count = 9
    edges = np.round(np.cumsum(rng.dirichlet(np.full(count, 2.0))) * s).astype(int)
    idx = rng.integers(0, len(palette), count)
    idx[1:][idx[1:] == idx[:-1]] = (idx[1:][idx[1:] == idx[:-1]] + 1) % len(palette)
    cols = np.arange(s)
    stripe = np.minimum(np.searchsorted(edges, cols, side="right"), count - 1)
    line = np.asarray(palette, dtype=np.float32)[idx[stripe]]
    for x in rng.integers(0, s, 3):
        line[x : x + 2] = (0.98, 0.97, 0.94) if rng.random() < 0.5 else (0.08, 0.08, 0.1)
    img = np.broadcast_to(line[None, :, :], (s, s, 3)).copy()
    return _shade(img, 1.0 + 0.04 * periodic_noise(rng, s, alpha=0.6))


def tex_bricks(rng: np.random.Generator, s: int) -> np.ndarray:
    """Running-bond brick wall: 8 courses x 4 bricks, irregular mortar joints."""
    rows_n, cols_n = 8, 4
    bh, bw = s // rows_n, s // cols_n
    rows, cols = _grid(s)
    course = rows // bh
    shifted = (cols + (course % 2) * (bw // 2)) % s
    brick = course * cols_n + shifted // bw
    ly = rows - course * bh + 0.5
    lx = shifted % bw + 0.5
    edge = np.minimum(np.minimum(ly, bh - ly), np.minimum(lx, bw - lx))
    wobble = periodic_noise(rng, s, alpha=1.2, fmin=4)
    mortar = edge < 2.2 + 0.8 * wobble
    n_bricks = rows_n * cols_n
    base = np.array([0.6, 0.28, 0.2]) * np.exp(rng.normal(0.0, 0.15, (n_bricks, 1)))
    base = base + rng.normal(0.0, 0.03, (n_bricks, 3))
    kind = rng.random(n_bricks)
    base[kind < 0.12] *= 0.55
    base[kind > 0.9] = base[kind > 0.9] * 0.6 + np.array([0.4, 0.3, 0.2])
    img = np.clip(base, 0.0, 1.0).astype(np.float32)[brick]
    surf = 1.0 + 0.12 * periodic_noise(rng, s, alpha=0.8) + 0.08 * wobble
    img = _shade(img, surf * np.where(edge < 4.0, 0.85, 1.0))
    mortar_img = _shade(_solid(s, (0.72, 0.7, 0.66)), 1.0 + 0.1 * periodic_noise(rng, s, 0.7))
    return np.where(mortar[:, :, None], mortar_img, img)


def tex_wood(rng: np.random.Generator, s: int) -> np.ndarray:
    """Floor boards along ``u``: grain rings, dark seams and staggered end joints."""
    planks = 4
    ph = s // planks
    rows, cols = _grid(s)
    plank = rows // ph
    ly = (rows % ph + 0.5) / ph
    joint = rng.integers(0, s, planks)
    half = (s // 2 + rng.integers(-s // 8, s // 8, planks)).astype(int)
    xs = (cols - joint[plank]) % s
    board = plank * 2 + (xs >= half[plank])
    n_boards = planks * 2
    freq = rng.uniform(5.0, 11.0, n_boards)
    phase = rng.uniform(0.0, 1.0, n_boards)
    drift = rng.uniform(-1.5, 1.5, n_boards)
    tint = np.exp(rng.normal(0.0, 0.1, n_boards))
    warp = periodic_noise(rng, s, alpha=2.0, fmax=8)
    t = freq[board] * (ly + 0.12 * warp) + drift[board] * xs / s + phase[board]
    rings = (t - np.floor(t)) ** 3
    img = _ramp(
        rings, [0.0, 0.7, 1.0], [(0.78, 0.56, 0.34), (0.68, 0.46, 0.26), (0.42, 0.26, 0.13)]
    )
    streaks = periodic_noise(rng, s, alpha=1.0, aniso=(8.0, 1.0))
    img = _shade(img, tint[board] * (1.0 + 0.08 * streaks))
    seam = (rows % ph == 0) | (xs == 0) | (xs == half[plank])
    return np.where(seam[:, :, None], _rgb(0.2, 0.12, 0.07), img)


def tex_checker(rng: np.random.Generator, s: int) -> np.ndarray:
    """8 x 8 checkerboard of off-white and near-black squares, faint grain."""
    rows, cols = _grid(s)
    cell = s // 8
    odd = ((rows // cell + cols // cell) % 2).astype(bool)
    img = np.where(odd[:, :, None], _rgb(0.1, 0.1, 0.12), _rgb(0.9, 0.88, 0.84))
    return _shade(img, 1.0 + 0.03 * periodic_noise(rng, s, alpha=0.8))


def tex_tiles(rng: np.random.Generator, s: int) -> np.ndarray:
    """Ceramic 8 x 8 tiles with grout lines, glaze gradients and some accent tiles."""
    n = 8
    ts = s // n
    rows, cols = _grid(s)
    tile = (rows // ts) * n + cols // ts
    ly, lx = rows % ts, cols % ts
    grout = (ly == 0) | (lx == 0) | (ly == ts - 1) | (lx == ts - 1)
    base = np.array([0.88, 0.89, 0.87]) + rng.normal(0.0, 0.02, (n * n, 1))
    accent = rng.random(n * n)
    base[accent < 0.15] = (0.2, 0.4, 0.62)
    base[(accent >= 0.15) & (accent < 0.22)] = (0.72, 0.38, 0.22)
    img = np.clip(base, 0.0, 1.0).astype(np.float32)[tile]
    slope = rng.uniform(-1.0, 1.0, (n * n, 2))
    glaze = 0.06 * (slope[tile, 0] * (ly / ts - 0.5) + slope[tile, 1] * (lx / ts - 0.5))
    img = _shade(img, 1.0 + glaze + 0.02 * periodic_noise(rng, s, alpha=0.7))
    grout_img = _shade(_solid(s, (0.55, 0.55, 0.52)), 1.0 + 0.1 * periodic_noise(rng, s, 0.7))
    return np.where(grout[:, :, None], grout_img, img)


def tex_plaster(rng: np.random.Generator, s: int) -> np.ndarray:
    """Off-white plaster: trowel marks, fine grain, repaired patches, specks."""
    img = _solid(s, (0.88, 0.86, 0.81))
    low = periodic_noise(rng, s, alpha=2.0, fmax=12)
    trowel = periodic_noise(rng, s, alpha=1.3, aniso=(1.0, 3.0))
    grain = periodic_noise(rng, s, alpha=0.5)
    img = _shade(img, 1.0 + 0.04 * low + 0.03 * trowel + 0.025 * grain)
    patch = periodic_noise(rng, s, alpha=1.8, fmax=16) > 1.3
    img = np.where(patch[:, :, None], img * _rgb(0.96, 0.95, 0.9), img)
    specks = _speckles(rng, s, 0.002, 1.2)
    return np.where(specks[:, :, None], img * 0.6, img)


def tex_concrete(rng: np.random.Generator, s: int) -> np.ndarray:
    """Cast concrete panel: mottling, vertical stains, pores, tie holes and panel joints."""
    img = _solid(s, (0.58, 0.57, 0.55))
    mottle = periodic_noise(rng, s, alpha=1.4)
    stains = periodic_noise(rng, s, alpha=1.5, aniso=(1.0, 10.0))
    grain = periodic_noise(rng, s, alpha=0.4)
    img = _shade(img, 1.0 + 0.08 * mottle + 0.06 * stains + 0.05 * grain)
    img = np.where(_speckles(rng, s, 0.004, 1.5)[:, :, None], img * 0.55, img)
    for cy in (s * 0.25, s * 0.75):
        for cx in (s * 0.25, s * 0.75):
            hole = _wrapped_disc_mask(s, cy, cx, 4.0)
            img = np.where(hole[:, :, None], _rgb(0.25, 0.25, 0.25), img)
    rows, cols = _grid(s)
    joint = (rows == 0) | (cols == 0)
    return np.where(joint[:, :, None], img * 0.5, img)


def tex_asphalt(rng: np.random.Generator, s: int) -> np.ndarray:
    """Asphalt: dark fine-grained aggregate, bright stones, tar patches and cracks."""
    img = _solid(s, (0.26, 0.26, 0.27))
    grain = periodic_noise(rng, s, alpha=0.3)
    low = periodic_noise(rng, s, alpha=1.8, fmax=16)
    img = _shade(img, 1.0 + 0.15 * grain + 0.06 * low)
    stones = _speckles(rng, s, 0.03, 1.5)
    stone_col = rng.uniform(0.45, 0.7, (s, s, 1)).astype(np.float32)
    img = np.where(stones[:, :, None], stone_col * _rgb(1.0, 0.98, 0.95), img)
    tar = periodic_noise(rng, s, alpha=1.8, fmax=12) > 1.4
    img = np.where(tar[:, :, None], img * 0.6, img)
    crack = np.abs(periodic_noise(rng, s, alpha=1.6, fmax=24)) < 0.035
    return np.where(crack[:, :, None], _rgb(0.06, 0.06, 0.06), img)


def _sett(rng: np.random.Generator, s: int, palette: np.ndarray) -> np.ndarray:
    """Tartan thread colours along one axis: ``float32 [S, 3]`` (a mirrored band sequence)."""
    half = s // 4
    bands = 8
    widths = 2 + rng.multinomial(half - 2 * bands, rng.dirichlet(np.ones(bands)))
    idx = rng.integers(0, len(palette), bands)
    seq = np.repeat(idx, widths)
    seq = np.concatenate([seq, seq[::-1]])
    return palette[np.tile(seq, 2)[:s]]


def tex_fabric(rng: np.random.Generator, s: int) -> np.ndarray:
    """Twill-woven tartan: coloured bands in both directions, 4-px threads, fuzz."""
    palette = np.array(
        [
            (0.1, 0.14, 0.35),
            (0.1, 0.3, 0.16),
            (0.62, 0.1, 0.1),
            (0.85, 0.72, 0.2),
            (0.06, 0.06, 0.07),
            (0.88, 0.86, 0.8),
        ],
        dtype=np.float32,
    )
    warp_cols = _sett(rng, s, palette)
    weft_cols = _sett(rng, s, palette)
    rows, cols = _grid(s)
    p = 4
    warp_up = ((cols // p + rows // p) % 4) < 2
    profile = np.sin(np.pi * (np.arange(p) + 0.5) / p).astype(np.float32)
    warp_img = _shade(warp_cols[cols], 0.7 + 0.3 * profile[cols % p])
    weft_img = _shade(weft_cols[rows], 0.7 + 0.3 * profile[rows % p])
    img = np.where(warp_up[:, :, None], warp_img, weft_img)
    return _shade(img, 1.0 + 0.06 * periodic_noise(rng, s, alpha=0.5))


def tex_bark(rng: np.random.Generator, s: int) -> np.ndarray:
    """Tree bark: vertical plates split by a network of dark furrows, fibres, lichen."""
    ridge = periodic_noise(rng, s, alpha=1.5, fmin=6.0, fmax=64.0, aniso=(1.0, 8.0))
    warp = periodic_noise(rng, s, alpha=2.0, fmin=2.0, fmax=24.0, aniso=(1.0, 3.0))
    fibre = periodic_noise(rng, s, alpha=0.6, aniso=(1.0, 8.0))
    h = ridge + 0.3 * warp
    img = _ramp(
        np.clip(0.5 + 0.2 * h + 0.15 * fibre, 0.0, 1.0),
        [0.0, 0.5, 1.0],
        [(0.3, 0.24, 0.18), (0.46, 0.39, 0.31), (0.62, 0.56, 0.48)],
    )
    furrow = np.abs(h) < 0.2 + 0.06 * fibre
    img = np.where(furrow[:, :, None], _shade(img, 0.3), img)
    lichen = (periodic_noise(rng, s, alpha=1.6, fmin=3.0, fmax=24) > 1.9) & ~furrow
    lichen_img = _shade(_solid(s, (0.55, 0.6, 0.45)), 1.0 + 0.1 * fibre)
    return np.where(lichen[:, :, None], lichen_img, img)


def tex_leaves(rng: np.random.Generator, s: int) -> np.ndarray:
    """Foliage: a few hundred overlapping pointed leaves with midribs on a dark canopy."""
    img = _shade(_solid(s, (0.06, 0.1, 0.05)), 1.0 + 0.3 * periodic_noise(rng, s, alpha=1.5))
    for _ in range(420):
        cy, cx = rng.uniform(0.0, s, 2)
        length = rng.uniform(7.0, 15.0)
        width = length * rng.uniform(0.3, 0.5)
        ang = rng.uniform(0.0, math.pi)
        light = rng.uniform(0.55, 1.35)
        color = np.array([0.2, 0.4, 0.1]) * light + rng.normal(0.0, 0.03, 3)
        color[0] += 0.1 * rng.random()  # yellowish variety
        r = math.ceil(length) + 1
        iy = np.arange(math.floor(cy) - r, math.floor(cy) + r + 1)
        ix = np.arange(math.floor(cx) - r, math.floor(cx) + r + 1)
        dy = (iy + 0.5 - cy)[:, None]
        dx = (ix + 0.5 - cx)[None, :]
        a = dx * math.cos(ang) + dy * math.sin(ang)
        b = -dx * math.sin(ang) + dy * math.cos(ang)
        inside = np.abs(b) < width * np.clip(1.0 - (a / length) ** 2, 0.0, None)
        if not inside.any():
            continue
        gain = np.where(b > 0, 1.0, 0.8) * np.where(np.abs(b) < 0.6, 1.25, 1.0)
        rr, cc = np.nonzero(inside)
        img[iy[rr] % s, ix[cc] % s] = np.clip(color, 0.0, 1.0)[None, :] * gain[rr, cc][:, None]
    return img


def _glass(rng: np.random.Generator, s: int, rows: np.ndarray) -> np.ndarray:
    """Glass reflecting sky: vertical gradient, clouds, a skyline silhouette, a streak."""
    g = rows / s
    img = _ramp(g, [0.0, 1.0], [(0.36, 0.56, 0.82), (0.78, 0.85, 0.9)])
    clouds = np.clip(periodic_noise(rng, s, alpha=1.8, fmax=20) - 0.3, 0.0, None)
    img = _mix(img, (0.95, 0.96, 0.97), 0.35 * np.clip(clouds, 0.0, 1.0))
    skyline = 0.72 + 0.1 * periodic_noise(rng, s, alpha=2.0, fmax=6)[0]
    img = _mix(img, (0.18, 0.22, 0.25), np.where(g > skyline[None, :], 0.65, 0.0))
    cols = np.arange(s)[None, :]
    streak = np.abs(((cols + 0.7 * rows) % s) - s * 0.45) < s * 0.06
    return _mix(img, (1.0, 1.0, 1.0), np.where(streak, 0.22, 0.0))


def tex_window(rng: np.random.Generator, s: int) -> np.ndarray:
    """One window: outer frame, 2 x 3 panes of reflective glass, bevelled mullions."""
    rows, cols = _grid(s)
    img = _glass(rng, s, rows)
    outer, bar = 14, 8
    in_frame = (rows < outer) | (rows >= s - outer) | (cols < outer) | (cols >= s - outer)
    in_frame |= np.abs(cols + 0.5 - s / 2) < bar / 2
    for frac in (1 / 3, 2 / 3):
        in_frame |= np.abs(rows + 0.5 - (outer + frac * (s - 2 * outer))) < bar / 2
    frame_img = _shade(_solid(s, (0.92, 0.92, 0.9)), 1.0 + 0.02 * periodic_noise(rng, s, 0.8))
    img = np.where(in_frame[:, :, None], frame_img, img)
    # bevel: a dark shadow line on glass just below / right of each frame edge
    below = np.roll(in_frame, 2, axis=0) & ~in_frame
    right = np.roll(in_frame, 2, axis=1) & ~in_frame
    return np.where((below | right)[:, :, None], img * 0.55, img)


def tex_facade(rng: np.random.Generator, s: int) -> np.ndarray:
    """Building facade: rendered wall with a 4 x 4 grid of framed windows and sills."""
    n = 4
    cell = s // n
    rows, cols = _grid(s)
    wall = _shade(
        _solid(s, (0.8, 0.72, 0.6)),
        1.0 + 0.05 * periodic_noise(rng, s, 1.6, fmax=16) + 0.03 * periodic_noise(rng, s, 0.5),
    )
    ly, lx = rows % cell, cols % cell
    wid = (rows // cell) * n + cols // cell
    x0, x1, y0, y1 = 18, cell - 18, 10, cell - 16
    frame_w = 3
    opening = (lx >= x0) & (lx < x1) & (ly >= y0) & (ly < y1)
    glass = (lx >= x0 + frame_w) & (lx < x1 - frame_w) & (ly >= y0 + frame_w) & (ly < y1 - frame_w)
    mullion = np.abs(lx + 0.5 - cell / 2) < 1.0
    sill = (ly >= y1) & (ly < y1 + 3) & (lx >= x0 - 3) & (lx < x1 + 3)
    band = ly < 3
    kind = rng.random(n * n)
    shade = rng.uniform(0.7, 1.2, n * n)
    refl = _ramp(
        np.clip(ly / cell + 0.25 * periodic_noise(rng, s, 2.0, fmax=8), 0.0, 1.0),
        [0.0, 1.0],
        [(0.45, 0.55, 0.68), (0.14, 0.17, 0.22)],
    )
    glass_img = _shade(refl, shade[wid])
    lit = (kind < 0.2)[wid]
    glass_img = np.where(lit[:, :, None], _rgb(0.95, 0.82, 0.5), glass_img)
    blinds = ((kind > 0.8)[wid]) & (ly % 3 == 0)
    glass_img = np.where(blinds[:, :, None], _rgb(0.82, 0.8, 0.75), glass_img)
    img = np.where(band[:, :, None], wall * 1.12, wall)
    img = np.where(opening[:, :, None], _rgb(0.95, 0.95, 0.93), img)
    img = np.where((glass & ~mullion)[:, :, None], glass_img, img)
    img = np.where(sill[:, :, None], _rgb(0.88, 0.87, 0.84), img)
    shadow = np.roll(opening | sill, 2, axis=0) & ~(opening | sill)
    return np.where(shadow[:, :, None], img * 0.7, img)


def tex_paper(rng: np.random.Generator, s: int) -> np.ndarray:
    """Book cover: colour bands, emblem, large title, author line and small body text."""
    img = _shade(_solid(s, (0.9, 0.86, 0.76)), 1.0 + 0.03 * periodic_noise(rng, s, 0.8))
    band_end = int(s * 0.34)
    img[:band_end] = img[:band_end] * _rgb(0.16, 0.28, 0.63)
    img[band_end : band_end + 4] = (0.8, 0.62, 0.2)
    margin = s // 10
    for k in range(2):
        _text_line(img, rng, 18 + k * 30, margin, s - margin, 18, (0.95, 0.93, 0.88))
    emblem = _wrapped_disc_mask(s, s * 0.56, s * 0.5, s * 0.11)
    ring = emblem & ~_wrapped_disc_mask(s, s * 0.56, s * 0.5, s * 0.08)
    img[emblem] = (0.72, 0.2, 0.14)
    img[ring] = (0.8, 0.62, 0.2)
    _text_line(img, rng, int(s * 0.71), margin, s - margin, 10, (0.15, 0.12, 0.1))
    for k in range(4):
        _text_line(img, rng, int(s * 0.8) + k * 9, margin, s - margin, 5, (0.3, 0.28, 0.26))
    img[s - 6 :] = (0.14, 0.24, 0.48)
    return img


def tex_marble(rng: np.random.Generator, s: int) -> np.ndarray:
    """White marble: turbulent soft veins plus thin sharp dark veins."""
    rows, cols = _grid(s)
    turb = np.abs(periodic_noise(rng, s, alpha=2.0, fmax=16)) + 0.3 * np.abs(
        periodic_noise(rng, s, alpha=1.5, fmax=48)
    )
    phase = 2.0 * np.pi * (2.0 * cols / s + 1.0 * rows / s) + 3.0 * turb
    soft = (1.0 - np.abs(np.sin(phase))) ** 4
    img = _shade(_solid(s, (0.93, 0.92, 0.9)), 1.0 + 0.03 * periodic_noise(rng, s, 0.9))
    img = _mix(img, (0.5, 0.52, 0.55), 0.6 * soft)
    thin = np.abs(periodic_noise(rng, s, alpha=1.7, fmax=40)) < 0.04
    return _mix(img, (0.32, 0.33, 0.36), np.where(thin, 0.8, 0.0))


def tex_plain(rng: np.random.Generator, s: int) -> np.ndarray:
    """Uniform white (1.0): the material tint is the colour."""
    del rng
    return np.ones((s, s, 3), dtype=np.float32)


PROCEDURAL: dict[str, TextureFn] = {
    "noise": tex_noise,
    "stripes": tex_stripes,
    "bricks": tex_bricks,
    "wood": tex_wood,
    "checker": tex_checker,
    "tiles": tex_tiles,
    "plaster": tex_plaster,
    "concrete": tex_concrete,
    "asphalt": tex_asphalt,
    "fabric": tex_fabric,
    "bark": tex_bark,
    "leaves": tex_leaves,
    "window": tex_window,
    "facade": tex_facade,
    "paper": tex_paper,
    "marble": tex_marble,
    "plain": tex_plain,
}


# --------------------------------------------------------------------------------------
# Photographic textures
# --------------------------------------------------------------------------------------


def _skimage_data_dir() -> Path | None:
    """Directory of scikit-image's bundled images (without importing scikit-image)."""
    try:
        spec = importlib.util.find_spec("skimage.data")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_photo(name: str, size: int) -> np.ndarray:
    """A photographic texture: centre square crop of a scikit-image sample, resized.

    Reads the bundled file directly with PIL (same pixels as ``skimage.data.<name>()``,
    without the import cost); falls back to the ``skimage.data`` function.

    Args:
        name: a key of :data:`PHOTO_SOURCES`.
        size: output side ``S``.

    Returns:
        display-space ``float32 [S, S, 3]`` in ``[0, 1]`` (grey sources replicated).

    Raises:
        ImportError: scikit-image is not installed.
    """
    filename, func = PHOTO_SOURCES[name]
    data_dir = _skimage_data_dir()
    path = data_dir / filename if data_dir is not None else None
    if path is not None and path.is_file():
        with Image.open(path) as f:
            img = f.convert("RGB")
    else:
        try:
            import skimage.data  # optional dependency with a slow import
        except ImportError as err:
            raise ImportError(
                f"texture {name!r} needs scikit-image's sample images: pip install scikit-image"
            ) from err
        img = Image.fromarray(np.asarray(getattr(skimage.data, func)())).convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32) / np.float32(255.0)


# --------------------------------------------------------------------------------------
# The bank and its sampler
# --------------------------------------------------------------------------------------


def texture_rng(name: str, seed: int = BANK_SEED) -> np.random.Generator:
    """The generator of texture ``name`` (depends only on ``seed`` and the name)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def make_texture(name: str, size: int = TEXTURE_SIZE, seed: int = BANK_SEED) -> np.ndarray:
    """Build one texture by name.

    Args:
        name: one of :data:`TEXTURE_NAMES`.
        size: side ``S`` in texels.
        seed: bank seed.

    Returns:
        linear (sRGB-decoded) ``float32 [S, S, 3]`` in ``[0, 1]``, C-contiguous.
    """
    if name in PROCEDURAL:
        display = PROCEDURAL[name](texture_rng(name, seed), size)
    elif name in PHOTO_SOURCES:
        display = load_photo(name, size)
    else:
        raise KeyError(f"unknown texture {name!r}; known: {', '.join(TEXTURE_NAMES)}")
    if display.shape != (size, size, 3):
        raise RuntimeError(f"texture {name!r} has shape {display.shape}")
    return np.ascontiguousarray(srgb_to_linear(display), dtype=np.float32)


def _mip_chain(tex: np.ndarray) -> list[np.ndarray]:
    """Box-filtered mip levels of ``float32 [S, S, 3]`` down to ``[1, 1, 3]`` (level 0 first)."""
    levels = [tex]
    while levels[-1].shape[0] > 1:
        t = levels[-1]
        levels.append(0.25 * (t[0::2, 0::2] + t[1::2, 0::2] + t[0::2, 1::2] + t[1::2, 1::2]))
    return levels


#: Samples processed per chunk by the samplers (bounds the temporary memory).
SAMPLE_CHUNK = 16384


class _Workspace:
    """Preallocated per-thread scratch buffers of the sampler, for ``chunk`` samples.

    Reusing them avoids allocating (and page-faulting) large temporaries on every call.
    """

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.x = np.empty(chunk, dtype=np.float64)
        self.xf = np.empty(chunk, dtype=np.float64)
        self.fx = np.empty(chunk, dtype=np.float32)
        self.fy = np.empty(chunk, dtype=np.float32)
        self.ix0 = np.empty(chunk, dtype=np.int64)
        self.ix1 = np.empty(chunk, dtype=np.int64)
        self.iy = np.empty(chunk, dtype=np.int64)
        self.r0 = np.empty(chunk, dtype=np.int64)
        self.r1 = np.empty(chunk, dtype=np.int64)
        self.idx = np.empty(chunk, dtype=np.int64)
        self.base = np.empty(chunk, dtype=np.int64)
        self.base1 = np.empty(chunk, dtype=np.int64)
        self.texels = np.empty((4, chunk), dtype=np.complex128)
        self.planar = np.empty((4, 3, chunk), dtype=np.float32)
        self.low = np.empty((3, chunk), dtype=np.float32)
        self.lod = np.empty(chunk, dtype=np.float32)


_THREAD_LOCAL = threading.local()


def _workspace() -> _Workspace:
    """This thread's :class:`_Workspace` (created on first use)."""
    ws = getattr(_THREAD_LOCAL, "workspace", None)
    if ws is None or ws.chunk != SAMPLE_CHUNK:
        ws = _Workspace(SAMPLE_CHUNK)
        _THREAD_LOCAL.workspace = ws
    return ws


def _wrap_axis(
    coord: np.ndarray,
    size: np.ndarray | int,
    frac: np.ndarray,
    index: np.ndarray,
    ws: _Workspace,
) -> None:
    """Texel index and bilinear weight along one axis, written into ``frac`` / ``index``.

    Args:
        coord: ``[c]`` continuous texel coordinate scaled by ``size`` (not yet shifted).
        size: image side(s), power of two.
        frac: ``float32 [c]`` output weight of the next texel.
        index: ``int64 [c]`` output texel index in ``[0, size)``.
        ws: workspace (uses ``x`` and ``xf``).
    """
    c = coord.shape[0]
    x, xf = ws.x[:c], ws.xf[:c]
    np.subtract(coord, 0.5, out=x)
    np.floor(x, out=xf)
    np.subtract(x, xf, out=x)
    np.copyto(frac, x, casting="same_kind")
    np.copyto(index, xf, casting="unsafe")
    np.bitwise_and(index, np.subtract(size, 1), out=index)


def _bilinear_chunk(
    packed: np.ndarray,
    base: np.ndarray | int,
    size: np.ndarray | int,
    u: np.ndarray,
    v: np.ndarray,
    ws: _Workspace,
) -> np.ndarray:
    """Bilinear wrap-around lookup of ``c <= chunk`` samples in packed RGBA texels.

    Args:
        packed: ``complex128 [M]``: every element is one RGBA float32 texel (16 bytes),
            so a gather moves a whole texel at once.
        base: offset of texel (0, 0) of the image to sample, scalar or ``int64 [c]``.
        size: image side (power of two), scalar or ``int64 [c]``.
        u: ``[c]`` horizontal coordinate in repeats (any real value).
        v: ``[c]`` vertical coordinate in repeats, upwards.
        ws: workspace.

    Returns:
        ``float32 [3, c]`` (planar RGB) view into ``ws.planar`` (valid until the next call).
    """
    c = u.shape[0]
    fx, fy = ws.fx[:c], ws.fy[:c]
    ix0, ix1, iy, r0, r1, idx = (a[:c] for a in (ws.ix0, ws.ix1, ws.iy, ws.r0, ws.r1, ws.idx))
    coord = ws.xf[:c]
    np.multiply(u, size, out=coord)
    _wrap_axis(coord, size, fx, ix0, ws)
    np.multiply(v, np.negative(size), out=coord)
    _wrap_axis(coord, size, fy, iy, ws)
    mask = np.subtract(size, 1)
    np.add(ix0, 1, out=ix1)
    np.bitwise_and(ix1, mask, out=ix1)
    np.multiply(iy, size, out=r0)
    np.add(r0, base, out=r0)
    np.add(iy, 1, out=iy)
    np.bitwise_and(iy, mask, out=iy)
    np.multiply(iy, size, out=r1)
    np.add(r1, base, out=r1)
    for k, (row, col) in enumerate(((r0, ix0), (r0, ix1), (r1, ix0), (r1, ix1))):
        np.add(row, col, out=idx)
        np.take(packed, idx, out=ws.texels[k, :c], mode="clip")
    # to planar [corner, channel, sample]: the lerps below then broadcast cheaply
    rgba = ws.texels.view(np.float32).reshape(4, ws.chunk, 4)[:, :c, :3]
    p = ws.planar[:, :, :c]
    np.copyto(p, rgba.transpose(0, 2, 1))
    c00, c01, c10, c11 = p[0], p[1], p[2], p[3]
    c01 -= c00  # top row -> c01
    c01 *= fx
    c01 += c00
    c11 -= c10  # bottom row -> c11
    c11 *= fx
    c11 += c10
    c11 -= c01  # result -> c11
    c11 *= fy
    c11 += c01
    return c11


def _sample_packed(
    packed: np.ndarray,
    offsets: np.ndarray,
    size: int,
    ids: np.ndarray | int,
    u: np.ndarray,
    v: np.ndarray,
    lod: np.ndarray | None,
    out: np.ndarray,
) -> np.ndarray:
    """Sample ``N`` points chunk by chunk (bilinear, or trilinear with ``lod``) into ``out``.

    Args:
        packed: ``complex128 [M]`` packed RGBA texels of all mip levels.
        offsets: ``int64 [T, L]`` texel offset of every (texture, level).
        size: level-0 side ``S``.
        ids: texture index, scalar or ``int [N]``.
        u: ``[N]`` coordinates in repeats.
        v: ``[N]`` coordinates in repeats, upwards.
        lod: ``float32 [N]`` mip levels already clipped to ``[0, L - 1]``, or ``None``.
        out: ``float32 [N, 3]`` output.

    Returns:
        ``out``.
    """
    n = u.shape[0]
    ws = _workspace()
    num_levels = offsets.shape[1]
    flat_offsets = offsets.reshape(-1)
    scalar_id = np.ndim(ids) == 0
    for start in range(0, n, ws.chunk):
        stop = min(n, start + ws.chunk)
        c = stop - start
        uc, vc = u[start:stop], v[start:stop]
        if lod is None:
            if scalar_id:
                base: np.ndarray | int = int(offsets[int(ids), 0])
            else:
                base = ws.base[:c]
                np.multiply(np.asarray(ids)[start:stop], num_levels, out=base)
                np.take(flat_offsets, base, out=base, mode="clip")
            out[start:stop] = _bilinear_chunk(packed, base, size, uc, vc, ws).T
            continue
        lc = lod[start:stop]
        level0 = lc.astype(np.int64)  # lod >= 0: truncation is floor
        level1 = np.minimum(level0 + 1, num_levels - 1)
        frac = ws.lod[:c]
        np.subtract(lc, level0, out=frac, casting="unsafe")
        tex = np.asarray(ids)[start:stop] if not scalar_id else int(ids)
        low = ws.low[:, :c]
        for level in (level0, level1):
            base = ws.base1[:c]
            np.multiply(tex, num_levels, out=base)
            np.add(base, level, out=base)
            np.take(flat_offsets, base, out=base, mode="clip")
            res = _bilinear_chunk(packed, base, np.right_shift(size, level), uc, vc, ws)
            if level is level0:
                np.copyto(low, res)
        res -= low
        res *= frac
        res += low
        out[start:stop] = res.T
    return out


def _flat_coords(
    u: np.ndarray | float, v: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast ``u`` and ``v`` and flatten them (views when possible); also the shape."""
    u_arr = np.asarray(u)
    v_arr = np.asarray(v)
    for name, arr in (("u", u_arr), ("v", v_arr)):
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a real array, got dtype {arr.dtype}")
    shape = tuple(int(d) for d in np.broadcast_shapes(u_arr.shape, v_arr.shape))
    uf = np.broadcast_to(u_arr, shape).reshape(-1)
    vf = np.broadcast_to(v_arr, shape).reshape(-1)
    return uf, vf, shape


def _output(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A ``float32 [N, 3]`` view of ``out`` (checked: C-contiguous ``[*shape, 3]``) or new."""
    if out is None:
        return np.empty((math.prod(shape), 3), dtype=np.float32)
    if out.shape != (*shape, 3) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(*shape, 3)}")
    return out.reshape(-1, 3)


class TextureBank:
    """All textures of :data:`TEXTURE_NAMES`, stacked, with vectorised samplers.

    Build once per process with :func:`get_texture_bank`. The samplers are thread-safe
    (per-thread scratch buffers).

    Attributes:
        names: texture names in bank order (= :data:`TEXTURE_NAMES`).
        size: texture side ``S``.
        textures: read-only ``float32 [T, S, S, 3]`` linear textures in ``[0, 1]``.
        mean_colors: ``float32 [T, 3]`` mean linear colour of each texture (its 1 x 1
            mip level; what ``sample_many`` returns at the coarsest ``lod``).
        num_levels: number of mip levels (``log2(S) + 1``).
        build_seconds: wall time the construction took.
    """

    def __init__(self, size: int = TEXTURE_SIZE, seed: int = BANK_SEED) -> None:
        """Build every texture and the packed mip pyramid.

        Args:
            size: texture side ``S`` (a power of two >= 8).
            seed: bank seed (keep the default for the canonical bank).
        """
        if size < 8 or size & (size - 1):
            raise ValueError(f"texture size must be a power of two >= 8, got {size}")
        start = time.perf_counter()
        self.names: tuple[str, ...] = TEXTURE_NAMES
        self.size = size
        self._index = {name: i for i, name in enumerate(self.names)}
        stack = np.stack([make_texture(name, size, seed) for name in self.names])
        stack.setflags(write=False)
        self.textures: np.ndarray = stack
        self.num_levels = int(math.log2(size)) + 1
        self._level_offsets, self._packed = self._pack(stack)
        top = self._packed[self._level_offsets[:, -1]].view(np.float32).reshape(-1, 4)
        self.mean_colors: np.ndarray = np.ascontiguousarray(top[:, :3])
        self.build_seconds = time.perf_counter() - start
        LOGGER.debug(
            "texture bank: %d textures of %d^2 built in %.3f s",
            len(self.names),
            size,
            self.build_seconds,
        )

    def _pack(self, stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pack all mip levels of all textures as RGBA texels (one ``complex128`` each).

        Returns:
            ``int64 [T, L]`` texel offset of each level, and the ``complex128 [M]`` array.
        """
        chunks: list[np.ndarray] = []
        offsets = np.zeros((stack.shape[0], self.num_levels), dtype=np.int64)
        pos = 0
        for t in range(stack.shape[0]):
            for level, img in enumerate(_mip_chain(stack[t])):
                rgba = np.zeros((*img.shape[:2], 4), dtype=np.float32)
                rgba[..., :3] = img
                offsets[t, level] = pos
                pos += img.shape[0] * img.shape[1]
                chunks.append(rgba.reshape(-1, 4))
        packed = np.ascontiguousarray(np.concatenate(chunks)).view(np.complex128).reshape(-1)
        packed.setflags(write=False)
        return offsets, packed

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Bank index of texture ``name``.

        Raises:
            KeyError: unknown name.
        """
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown texture {name!r}; known: {', '.join(self.names)}") from None

    def _resolve(self, name_or_index: str | int) -> int:
        """Index from a name or an index (checked)."""
        if isinstance(name_or_index, str):
            return self.index(name_or_index)
        idx = int(name_or_index)
        if not 0 <= idx < len(self.names):
            raise IndexError(f"texture index {idx} out of range [0, {len(self.names)})")
        return idx

    def texture(self, name_or_index: str | int) -> np.ndarray:
        """The read-only linear ``float32 [S, S, 3]`` texture."""
        return self.textures[self._resolve(name_or_index)]

    def lod(self, footprint: np.ndarray | float) -> np.ndarray:
        """Mip level for a pixel footprint: ``log2(footprint * S)``, clipped to the levels.

        Args:
            footprint: size of one pixel on the surface, in texture repeats
                (e.g. ``pixel_size_metres / material.scale``), scalar or ``[N]``.

        Returns:
            ``float32`` level(s) in ``[0, num_levels - 1]``.
        """
        texels = np.maximum(np.asarray(footprint, dtype=np.float64) * self.size, 1e-12)
        return np.clip(np.log2(texels), 0.0, self.num_levels - 1).astype(np.float32)

    def _prepare_lod(
        self, lod: np.ndarray | float | None, shape: tuple[int, ...]
    ) -> np.ndarray | None:
        """Broadcast, flatten and clip ``lod`` to ``float32 [N]`` in ``[0, L - 1]``."""
        if lod is None:
            return None
        lod_arr = np.broadcast_to(np.asarray(lod, dtype=np.float32), shape).reshape(-1)
        return np.clip(np.nan_to_num(lod_arr, nan=0.0), 0.0, self.num_levels - 1)

    def sample(
        self,
        name_or_index: str | int,
        u: np.ndarray,
        v: np.ndarray,
        lod: np.ndarray | float | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Bilinear wrap-around lookup in one texture.

        Args:
            name_or_index: texture name or bank index.
            u: coordinates in repeats along the columns, any shape ``[...]``, any real
                value (float64 recommended for very large values).
            v: coordinates in repeats upwards (broadcastable with ``u``).
            lod: optional mip level(s) (see :meth:`lod`), scalar or broadcastable;
                ``None`` samples full resolution.
            out: optional C-contiguous ``float32 [..., 3]`` array to write into.

        Returns:
            ``float32 [..., 3]`` linear colours (``out`` when given).
        """
        idx = self._resolve(name_or_index)
        uf, vf, shape = _flat_coords(u, v)
        flat_out = _output(out, shape)
        _sample_packed(
            self._packed,
            self._level_offsets,
            self.size,
            idx,
            uf,
            vf,
            self._prepare_lod(lod, shape),
            flat_out,
        )
        return flat_out.reshape(*shape, 3)

    def sample_many(
        self,
        tex_ids: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        lod: np.ndarray | float | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Bilinear (or, with ``lod``, trilinear) lookup of many textures in one call.

        Args:
            tex_ids: integer bank indices, shape ``[...]``.
            u: coordinates in repeats along the columns (same shape), any real value.
            v: coordinates in repeats upwards (same shape).
            lod: optional mip level(s), scalar or same shape (see :meth:`lod`); ``None``
                samples full resolution.
            out: optional C-contiguous ``float32 [..., 3]`` array to write into.

        Returns:
            ``float32 [..., 3]`` linear colours (``out`` when given).

        Raises:
            IndexError: a texture id is out of range.
        """
        uf, vf, shape = _flat_coords(u, v)
        ids = np.asarray(tex_ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"tex_ids must be integers, got dtype {ids.dtype}")
        ids_f = np.broadcast_to(ids, shape).reshape(-1)
        flat_out = _output(out, shape)
        if ids_f.size == 0:
            return flat_out.reshape(*shape, 3)
        if int(ids_f.min()) < 0 or int(ids_f.max()) >= len(self.names):
            raise IndexError(f"texture ids must lie in [0, {len(self.names)})")
        _sample_packed(
            self._packed,
            self._level_offsets,
            self.size,
            ids_f,
            uf,
            vf,
            self._prepare_lod(lod, shape),
            flat_out,
        )
        return flat_out.reshape(*shape, 3)


@functools.lru_cache(maxsize=1)
def get_texture_bank() -> TextureBank:
    """The process-wide :class:`TextureBank` (built on first use, default size and seed)."""
    return TextureBank()
