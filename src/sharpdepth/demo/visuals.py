"""The demo's images: depth pairs on one colour scale, confidence, colour bars with ticks.

Everything is numpy + Pillow and returns ``uint8 [H, W, 3]`` RGB arrays. Depth colours
are :func:`sharpdepth.vis.colorize_depth`'s (Turbo on inverse depth: near = red), with
the range :func:`depth_color_range` chooses, the rule ``sharpdepth predict`` uses for
its ``*_color.png`` files, so the demo shows what the exported files show.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sharpdepth import vis

#: Background of the colour-bar panels (white) and the colour of their text (near black).
PANEL_BACKGROUND = (255, 255, 255)
PANEL_TEXT = (20, 20, 20)


def depth_color_range(metric_depth: np.ndarray, depth: np.ndarray) -> tuple[float, float]:
    """One colour range for the metric model's and the sharpened depth.

    The 2nd and 98th percentiles of the metric model's valid depth (as the colour PNGs of
    ``sharpdepth predict``), or of the sharpened depth when the metric map has no valid
    pixel.

    Args:
        metric_depth: ``[H, W]`` metres.
        depth: ``[H, W]`` metres.

    Returns:
        ``(vmin, vmax)`` in metres, ``0 < vmin <= vmax``.

    Raises:
        ValueError: neither map has a valid (finite, positive) pixel.
    """
    for d in (metric_depth, depth):
        valid = np.isfinite(d) & (d > 0)
        if valid.any():
            return vis.depth_range(d, valid)
    raise ValueError("neither depth map has a valid (finite, positive) pixel")


def depth_pair(
    metric_depth: np.ndarray, depth: np.ndarray, vmin: float, vmax: float
) -> tuple[np.ndarray, np.ndarray]:
    """The two depth maps coloured on the same scale, for the image slider.

    Args:
        metric_depth: ``[H, W]`` metres.
        depth: ``[H, W]`` metres.
        vmin: nearest depth of the colour range, metres.
        vmax: farthest depth of the colour range, metres.

    Returns:
        ``(metric_rgb, depth_rgb)``, each ``uint8 [H, W, 3]``.
    """
    return (
        vis.colorize_depth(metric_depth, vmin=vmin, vmax=vmax),
        vis.colorize_depth(depth, vmin=vmin, vmax=vmax),
    )


def legend_ticks(
    vmin: float, vmax: float, count: int = 5, unit: str = "m"
) -> list[tuple[float, str]]:
    """Tick values and labels for a depth colour bar on the inverse-depth scale.

    The ticks sit at ``count`` even positions of the bar (even in inverse depth, like the
    colours), each rounded to a power of ten below half its distance to the neighbouring
    ticks (and to at least two significant digits), and kept within ``[vmin, vmax]``;
    duplicates are merged.

    Args:
        vmin: nearest depth of the colour range, metres (positive).
        vmax: farthest depth, metres.
        count: number of ticks before merging (at least 2).
        unit: appended to each label after a space.

    Returns:
        ``(depth, label)`` pairs sorted by depth; one pair when ``vmax <= vmin``.
    """
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmin > 0):
        raise ValueError(f"need finite bounds with vmin > 0, got {vmin}, {vmax}")

    def label(value: float, decimals: int) -> str:
        return f"{value:.{max(0, decimals)}f} {unit}".rstrip()

    if vmax <= vmin:
        return [(vmin, label(vmin, 2 - math.floor(math.log10(vmin))))]
    depths = depth_for_position(np.linspace(0.0, 1.0, max(2, count)), vmin, vmax)
    ticks: dict[float, str] = {}
    for i, value in enumerate(depths):
        gap = min(abs(value - depths[j]) for j in (i - 1, i + 1) if 0 <= j < len(depths))
        # below half the gap, and at least two significant digits
        power = min(math.floor(math.log10(gap / 2.0)), math.floor(math.log10(value)) - 1)
        step = 10.0**power
        rounded = round(value / step) * step
        if rounded > vmax:
            rounded -= step
        if rounded < vmin:
            rounded += step
        rounded = round(rounded, max(0, -power) + 1)
        if vmin <= rounded <= vmax and rounded not in ticks:
            ticks[rounded] = label(rounded, -power)
    return sorted(ticks.items())


def inverse_depth_position(depth_m: float, vmin: float, vmax: float) -> float:
    """Where ``depth_m`` falls on :func:`sharpdepth.vis.colorize_depth`'s inverse scale.

    ``t = (1/d - 1/vmax) / (1/vmin - 1/vmax)``: 0 at ``vmax`` (far), 1 at ``vmin`` (near);
    0.5 when ``vmin == vmax``.
    """
    lo, hi = 1.0 / vmax, 1.0 / vmin
    return 0.5 if hi <= lo else (1.0 / depth_m - lo) / (hi - lo)


def depth_for_position(t: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Inverse of :func:`inverse_depth_position`: depth in metres at positions ``t`` ``[N]``."""
    lo, hi = 1.0 / vmax, 1.0 / vmin
    return 1.0 / (lo + np.asarray(t, dtype=np.float64) * (hi - lo))


@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font at ``size`` pixels (its bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


@dataclass(frozen=True)
class BarLayout:
    """Where :func:`with_colorbar` draws, in pixels of the panel right of the image.

    Attributes:
        font_px: text height.
        left: first column of the bar.
        top: first row of the bar (tick position 0).
        width: bar width.
        length: bar height; tick position ``p`` is row ``top + round(p * (length - 1))``.
    """

    font_px: int
    left: int
    top: int
    width: int
    length: int

    def row(self, position: float) -> int:
        """Panel row of a tick ``position`` in ``[0, 1]`` (0 = top of the bar)."""
        return self.top + round(float(np.clip(position, 0.0, 1.0)) * (self.length - 1))


def colorbar_layout(height: int) -> BarLayout:
    """The colour bar's layout for an image ``height`` pixels tall (text scales with it)."""
    font_px = int(np.clip(round(height / 16), 12, 48))
    top = 2 * font_px  # the title above the bar, clear of the first label
    return BarLayout(
        font_px=font_px,
        left=6,
        top=top,
        width=max(8, font_px),
        length=max(2, height - top - font_px),  # half a label below the bar, and a margin
    )


def with_colorbar(
    image: np.ndarray,
    bar: np.ndarray,
    ticks: list[tuple[float, str]],
    title: str,
) -> np.ndarray:
    """``image`` with a vertical colour bar, tick labels and a title on its right.

    Args:
        image: ``uint8 [H, W, 3]``.
        bar: ``uint8 [L, 3]`` colours of the bar from top to bottom (resampled to the bar's
            length).
        ticks: ``(position, label)`` pairs, position in ``[0, 1]`` from top (0) to bottom.
        title: text above the bar (e.g. ``"depth (m)"``).

    Returns:
        ``uint8 [H, W + panel, 3]``; :func:`colorbar_layout` tells where the bar is.
    """
    h = image.shape[0]
    lay = colorbar_layout(h)
    font = _font(lay.font_px)
    tick_len = lay.font_px // 2
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max((int(probe.textlength(label, font=font)) for _, label in ticks), default=0)
    title_w = int(probe.textlength(title, font=font))
    panel_w = max(lay.width + tick_len + 3 + label_w, title_w) + lay.left + 6
    panel = Image.new("RGB", (panel_w, h), PANEL_BACKGROUND)
    draw = ImageDraw.Draw(panel)
    rows = np.linspace(0, len(bar) - 1, lay.length).round().astype(int)
    column = np.repeat(np.asarray(bar, dtype=np.uint8)[rows][:, None, :], lay.width, axis=1)
    panel.paste(Image.fromarray(np.ascontiguousarray(column)), (lay.left, lay.top))
    right, bottom = lay.left + lay.width - 1, lay.top + lay.length - 1
    draw.rectangle((lay.left - 1, lay.top - 1, right + 1, bottom + 1), outline=PANEL_TEXT)
    title_y = round(0.9 * lay.font_px)
    draw.text((lay.left, title_y), title, fill=PANEL_TEXT, font=font, anchor="lm")
    for pos, label in ticks:
        y = lay.row(pos)
        draw.line((right + 1, y, right + 1 + tick_len, y), fill=PANEL_TEXT, width=1)
        draw.text((right + tick_len + 4, y), label, fill=PANEL_TEXT, font=font, anchor="lm")
    return np.concatenate([np.asarray(image, dtype=np.uint8), np.asarray(panel)], axis=1)


def depth_legend(depth: np.ndarray, vmin: float, vmax: float, bar_length: int = 256) -> np.ndarray:
    """The coloured depth map with a colour bar in metres (far at the top, near at the bottom).

    The bar's colours come from :func:`sharpdepth.vis.colorize_depth` itself, and each
    tick sits where its depth falls on the inverse-depth scale, so the bar reads true.

    Args:
        depth: ``[H, W]`` metres.
        vmin: nearest depth of the colour range, metres.
        vmax: farthest depth of the colour range, metres.
        bar_length: number of colour samples along the bar.

    Returns:
        ``uint8 [H, W + panel, 3]``.
    """
    t = np.linspace(0.0, 1.0, bar_length)  # top (far, t = 0) to bottom (near, t = 1)
    bar = vis.colorize_depth(depth_for_position(t, vmin, vmax)[:, None], vmin=vmin, vmax=vmax)
    ticks = [
        (inverse_depth_position(value, vmin, vmax), text)
        for value, text in legend_ticks(vmin, vmax)
    ]
    colored = vis.colorize_depth(depth, vmin=vmin, vmax=vmax)
    return with_colorbar(colored, bar[:, 0], ticks, "depth (m)")


def confidence_map(gate: np.ndarray) -> np.ndarray:
    """Confidence ``1 - gate`` in grey (white = the prior and the metric model agree) with a
    colour bar from 1 (top) to 0.

    Args:
        gate: ``[H, W]`` gate ``e`` in ``[0, 1]``.

    Returns:
        ``uint8 [H, W + panel, 3]``.
    """
    confidence = 1.0 - np.clip(np.asarray(gate, dtype=np.float64), 0.0, 1.0)
    image = vis.colorize_scalar(confidence, 0.0, 1.0, cmap="gray")
    bar = vis.colormap("gray")[::-1]  # top = 1 (white)
    ticks = [(1.0 - v, f"{v:g}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)]
    return with_colorbar(image, np.asarray(bar), ticks, "confidence")
