"""Writing one image's prediction to disk: the file set shared by ``predict`` and the demo.

Per image ``STEM`` (every file written atomically):

============================  ===========================================================
``STEM_depth.npy``            float32 ``[H, W]`` sharp metric depth, metres
``STEM_depth.png``            uint16 depth in millimetres (0 = invalid, max 65.535 m)
``STEM_depth_color.png``      colourised sharp depth (inverse depth, turbo)
``STEM_metric_depth.npy``     float32 ``[H, W]`` the metric model's depth, metres
``STEM_metric_depth_color.png``  colourised metric depth, same colour scale as above
``STEM_confidence.png``       8-bit ``255 * (1 - gate)``: white where prior and metric agree
``STEM.json``                 scale, shift, intrinsics and where they came from, settings
``STEM.ply``                  coloured point cloud in metres (optional)
============================  ===========================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sharpdepth import geometry, io, vis

LOGGER = logging.getLogger(__name__)

#: Horizontal field of view assumed when nothing else gives the intrinsics, degrees.
DEFAULT_FOV_DEG = 60.0
#: Millimetres per metre in the 16-bit PNG.
PNG16_SCALE = 1000.0


@dataclass
class ImagePrediction:
    """One image's results, numpy, at input resolution.

    Attributes:
        rgb: ``[H, W, 3]`` float32 in ``[0, 1]``.
        depth: ``[H, W]`` sharp metric depth, metres.
        metric_depth: ``[H, W]`` metric model's depth, metres.
        gate: ``[H, W]`` gate ``e`` in ``[0, 1]``.
        scale: metric-recovery scale.
        shift: metric-recovery shift, metres.
        intrinsics: ``[3, 3]`` pinhole matrix in pixels.
        intrinsics_source: ``"user"``, ``"metric_model"``, ``"exif"`` or ``"default_fov"``.
    """

    rgb: np.ndarray
    depth: np.ndarray
    metric_depth: np.ndarray
    gate: np.ndarray
    scale: float
    shift: float
    intrinsics: np.ndarray
    intrinsics_source: str


def prediction_of(
    out: Any,
    index: int,
    rgb: np.ndarray,
    user_intrinsics: np.ndarray | None = None,
    exif_focal_px: float | None = None,
) -> ImagePrediction:
    """Image ``index`` of a numpy :class:`~sharpdepth.pipeline.SharpDepthOutput`, with the
    intrinsics chosen by :func:`choose_intrinsics` (user, metric model, EXIF, default FOV).

    Args:
        out: the pipeline's output (``output_type="np"``).
        index: which image of the batch.
        rgb: ``[H, W, 3]`` float32 in ``[0, 1]``, the input image.
        user_intrinsics: ``[3, 3]`` known intrinsics in input pixels, or ``None``.
        exif_focal_px: the image's EXIF focal length in pixels, or ``None``.
    """
    h, w = rgb.shape[:2]
    k, source = choose_intrinsics(
        h,
        w,
        user=user_intrinsics,
        model=None if out.intrinsics is None else out.intrinsics[index],
        exif_focal_px=exif_focal_px,
    )
    return ImagePrediction(
        rgb=rgb,
        depth=np.asarray(out.depth[index], dtype=np.float32),
        metric_depth=np.asarray(out.metric_depth[index], dtype=np.float32),
        gate=np.asarray(out.gate[index], dtype=np.float32),
        scale=float(out.scale[index]),
        shift=float(out.shift[index]),
        intrinsics=k,
        intrinsics_source=source,
    )


def choose_intrinsics(
    height: int,
    width: int,
    user: np.ndarray | None = None,
    model: np.ndarray | None = None,
    exif_focal_px: float | None = None,
    default_fov_deg: float = DEFAULT_FOV_DEG,
) -> tuple[np.ndarray, str]:
    """Intrinsics for an ``H x W`` image, in order: user, metric model, EXIF, default FOV.

    Returns:
        ``[3, 3]`` float32 matrix and its source name.
    """
    if user is not None:
        return np.asarray(user, dtype=np.float32), "user"
    if model is not None:
        return np.asarray(model, dtype=np.float32), "metric_model"
    if exif_focal_px is not None and exif_focal_px > 0:
        k = geometry.intrinsics_from_focal(exif_focal_px, width, height)
        return k.numpy().astype(np.float32), "exif"
    k = geometry.intrinsics_from_fov(width, height, default_fov_deg)
    return k.numpy().astype(np.float32), "default_fov"


def output_paths(out_dir: Path, stem: str, ply: bool) -> dict[str, Path]:
    """The files :func:`write_prediction` writes for ``stem``, by kind."""
    names = {
        "depth_npy": f"{stem}_depth.npy",
        "depth_png16": f"{stem}_depth.png",
        "depth_color": f"{stem}_depth_color.png",
        "metric_depth_npy": f"{stem}_metric_depth.npy",
        "metric_depth_color": f"{stem}_metric_depth_color.png",
        "confidence": f"{stem}_confidence.png",
        "meta": f"{stem}.json",
    }
    if ply:
        names["ply"] = f"{stem}.ply"
    return {key: out_dir / name for key, name in names.items()}


def write_prediction(
    out_dir: Path,
    stem: str,
    pred: ImagePrediction,
    ply: bool = False,
    drop_edges: bool = False,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write every output of one image (see the module docstring); returns the paths."""
    paths = output_paths(out_dir, stem, ply)
    valid = np.isfinite(pred.metric_depth) & (pred.metric_depth > 0)
    vmin, vmax = vis.depth_range(pred.metric_depth, valid)
    io.save_depth_npy(paths["depth_npy"], pred.depth.astype(np.float32))
    io.save_depth_png16(paths["depth_png16"], pred.depth, scale=PNG16_SCALE)
    io.save_rgb_png(paths["depth_color"], vis.colorize_depth(pred.depth, vmin=vmin, vmax=vmax))
    io.save_depth_npy(paths["metric_depth_npy"], pred.metric_depth.astype(np.float32))
    io.save_rgb_png(
        paths["metric_depth_color"], vis.colorize_depth(pred.metric_depth, vmin=vmin, vmax=vmax)
    )
    io.save_gray_png(paths["confidence"], 1.0 - np.clip(pred.gate, 0.0, 1.0), bits=8)
    if ply:
        colors = (np.clip(pred.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        points, point_colors = geometry.point_cloud(
            torch.from_numpy(pred.depth.astype(np.float32)),
            torch.from_numpy(pred.intrinsics.astype(np.float32)),
            colors,
            drop_edges=drop_edges,
        )
        io.save_ply(paths["ply"], points, point_colors)
    meta = {
        "depth_units": "metres",
        "depth_png16_scale": PNG16_SCALE,
        "height": int(pred.depth.shape[0]),
        "width": int(pred.depth.shape[1]),
        "scale": float(pred.scale),
        "shift": float(pred.shift),
        "intrinsics": np.asarray(pred.intrinsics, dtype=float).tolist(),
        "intrinsics_source": pred.intrinsics_source,
        "confident_fraction": float(
            np.mean(pred.gate < (metadata or {}).get("confidence_threshold", 0.5))
        ),
        **(metadata or {}),
    }
    io.save_json(paths["meta"], meta)
    return paths
