"""What the demo does with one upload, without any user interface.

:class:`DemoRunner` checks and loads the upload within :class:`DemoLimits`, runs the
pipeline exactly as ``sharpdepth predict`` does (same intrinsics rules, same files via
:func:`sharpdepth.export.write_prediction`), and makes the images and 3D point clouds the
app shows. The gradio app (:mod:`sharpdepth.demo.app`) only wires it to components.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sharpdepth import geometry, io
from sharpdepth.demo import visuals
from sharpdepth.demo.glb import save_glb
from sharpdepth.demo.limits import DemoLimits
from sharpdepth.errors import ImageReadError, SharpDepthError
from sharpdepth.export import ImagePrediction, prediction_of, write_prediction
from sharpdepth.image_ops import processing_size, resize

LOGGER = logging.getLogger(__name__)

#: ``progress(fraction in [0, 1], message)``: how the runner reports its steps.
ProgressFn = Callable[[float, str], None]

#: Names of the per-run download files, in the order the app lists them.
DOWNLOAD_KINDS = ("depth_npy", "depth_png16", "ply", "meta")

_INTRINSICS_SOURCES = {
    "user": "given",
    "metric_model": "estimated by the metric model",
    "exif": "from the photo's EXIF focal length",
    "default_fov": "assumed 60° horizontal field of view",
}


class DemoInputError(SharpDepthError):
    """An upload or setting the demo refuses; the message tells the user why, in one line."""


@dataclass
class Upload:
    """An accepted upload, ready for the pipeline.

    Attributes:
        rgb: ``float32 [H, W, 3]`` in ``[0, 1]`` (EXIF orientation applied, downscaled to
            ``max_side`` if needed).
        name: a file-name-safe stem for the outputs.
        original_size: ``(H0, W0)`` of the decoded file before downscaling.
        scale: ``W / W0`` (1.0 unless downscaled).
        exif_focal_px: EXIF focal length in pixels of ``rgb`` (already scaled), or ``None``.
    """

    rgb: np.ndarray
    name: str
    original_size: tuple[int, int]
    scale: float
    exif_focal_px: float | None


@dataclass
class DemoResult:
    """Everything the app shows for one run.

    Attributes:
        metric_rgb: ``uint8 [H, W, 3]`` metric model's depth, coloured.
        depth_rgb: ``uint8 [H, W, 3]`` sharpened depth on the same colour scale.
        depth_legend: ``uint8 [H, W + panel, 3]`` sharpened depth with a bar in metres.
        confidence: ``uint8 [H, W + panel, 3]`` ``1 - gate`` with its bar.
        glb_metric: 3D view of the metric model's depth (``.glb``).
        glb_depth: 3D view of the sharpened depth (``.glb``).
        downloads: depth ``.npy`` (metres), 16-bit ``.png`` (mm), ``.ply``, ``.json``.
        summary: a few lines of Markdown (sizes, depth range, scale/shift, intrinsics).
        prediction: the numbers behind it all.
        color_range: ``(vmin, vmax)`` of the depth colours, metres.
        folder: the run's own folder holding every file above.
    """

    metric_rgb: np.ndarray
    depth_rgb: np.ndarray
    depth_legend: np.ndarray
    confidence: np.ndarray
    glb_metric: Path
    glb_depth: Path
    downloads: list[Path]
    summary: str
    prediction: ImagePrediction
    color_range: tuple[float, float]
    folder: Path


def safe_stem(name: str, default: str = "image") -> str:
    """A file-name stem made of ``[A-Za-z0-9_-]`` (at most 60 characters) from ``name``."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_")[:60]
    return stem or default


def check_upload(path: Path, limits: DemoLimits) -> tuple[int, int]:
    """Refuse files that are too large, not images, or have too many pixels.

    Only the file size and the image header are read, so a huge image is refused before
    it is decoded.

    Returns:
        ``(width, height)`` from the header.

    Raises:
        DemoInputError: with a message for the user.
    """
    try:
        n_bytes = path.stat().st_size
    except OSError as exc:
        raise DemoInputError("the uploaded file could not be read; please upload it again") from exc
    if n_bytes > limits.max_upload_bytes:
        raise DemoInputError(
            f"the file is {n_bytes / 2**20:.1f} MB; the demo accepts images up to "
            f"{limits.max_upload_mb:g} MB"
        )
    if n_bytes == 0:
        raise DemoInputError("the uploaded file is empty")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise DemoInputError(
            f"the image has too many pixels; the demo accepts up to "
            f"{limits.max_megapixels:g} megapixels"
        ) from exc
    except (Image.UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DemoInputError(
            "this file is not an image the demo can read: upload a JPEG, PNG, WebP, BMP "
            "or TIFF photo"
        ) from exc
    if width * height > limits.max_megapixels * 1e6:
        raise DemoInputError(
            f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); the demo "
            f"accepts up to {limits.max_megapixels:g} megapixels"
        )
    return width, height


def load_upload(path: str | Path, limits: DemoLimits) -> Upload:
    """Check, decode and (if larger than ``limits.max_side``) downscale an uploaded image.

    Raises:
        DemoInputError: the file is refused or cannot be decoded; the message says why.
    """
    path = Path(path)
    check_upload(path, limits)
    try:
        loaded = io.load_image(path)
    except ImageReadError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        raise DemoInputError(f"cannot read the image: {reason}") from exc
    h0, w0 = loaded.rgb.shape[:2]
    rgb = loaded.rgb
    h, w = h0, w0
    if max(h0, w0) > limits.max_side:
        h, w = processing_size(h0, w0, limits.max_side)
        tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        rgb = resize(tensor, (h, w), antialias=True)[0].permute(1, 2, 0).clamp(0, 1).numpy()
        rgb = np.ascontiguousarray(rgb, dtype=np.float32)
        LOGGER.info("downscaled %dx%d upload to %dx%d", w0, h0, w, h)
    scale = w / w0
    focal = None if loaded.exif_focal_px is None else loaded.exif_focal_px * scale
    return Upload(
        rgb=rgb,
        name=safe_stem(path.name),
        original_size=(h0, w0),
        scale=scale,
        exif_focal_px=focal,
    )


def _given(value: float | None) -> bool:
    """Whether an optional number field was filled in (empty and 0 mean "unknown")."""
    return value is not None and value != 0


def known_intrinsics(
    height: int,
    width: int,
    focal_px: float | None = None,
    fov_deg: float | None = None,
    scale: float = 1.0,
) -> np.ndarray | None:
    """Intrinsics from a known focal length or horizontal field of view, if one is given.

    Args:
        height: image height ``H`` in pixels (after any downscaling).
        width: image width ``W`` in pixels.
        focal_px: focal length in pixels *of the uploaded file*; ``None`` or 0 = unknown.
        fov_deg: horizontal field of view in degrees; ``None`` or 0 = unknown.
        scale: downscaling factor of the upload (the focal length is multiplied by it).

    Returns:
        ``float32 [3, 3]`` or ``None`` when neither is given.

    Raises:
        DemoInputError: both given, or a value out of range.
    """
    if _given(focal_px) and _given(fov_deg):
        raise DemoInputError("give either the focal length or the field of view, not both")
    if _given(focal_px):
        assert focal_px is not None
        if not (math.isfinite(focal_px) and focal_px > 0):
            raise DemoInputError(
                f"the focal length must be a positive number of pixels, got {focal_px}"
            )
        return geometry.intrinsics_from_focal(focal_px * scale, width, height).numpy()
    if _given(fov_deg):
        assert fov_deg is not None
        if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
            raise DemoInputError(
                f"the field of view must be between 0 and 180 degrees, got {fov_deg}"
            )
        return geometry.intrinsics_from_fov(width, height, fov_deg).numpy()
    return None


def view_point_cloud(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    rgb: np.ndarray,
    drop_edges: bool = False,
    max_points: int = 200_000,
) -> tuple[np.ndarray, np.ndarray]:
    """A point cloud small enough for the browser: every ``s``-th pixel in both directions.

    Flying pixels are found on the full-resolution depth (:func:`sharpdepth.geometry.edge_mask`,
    as the PLY export does) before subsampling, so the same points are dropped.

    Args:
        depth: ``[H, W]`` metres.
        intrinsics: ``[3, 3]`` pixels.
        rgb: ``uint8 [H, W, 3]``.
        drop_edges: drop flying pixels at depth discontinuities.
        max_points: upper bound on the number of points; the stride is
            ``s = ceil(sqrt(H * W / max_points))``.

    Returns:
        ``(points, colors)``: float32 ``[N, 3]`` metres (OpenCV frame), ``uint8 [N, 3]``.
    """
    d = np.asarray(depth, dtype=np.float32)
    if drop_edges:
        d = np.where(geometry.edge_mask(d).numpy(), np.float32(np.nan), d)
    h, w = d.shape
    stride = max(1, math.ceil(math.sqrt(h * w / max_points)))
    k = np.asarray(intrinsics, dtype=np.float32).copy()
    k[:2] /= stride  # sampled pixel centre u = stride * u' exactly (third row stays 0 0 1)
    points, colors = geometry.point_cloud(
        np.ascontiguousarray(d[::stride, ::stride]),
        k,
        np.ascontiguousarray(rgb[::stride, ::stride]),
    )
    assert colors is not None
    return points, colors


def prune_runs(root: Path, max_age_s: float, now: float | None = None) -> int:
    """Delete run folders in ``root`` not modified for ``max_age_s`` seconds; returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for folder in root.glob("run-*"):
        try:
            if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _summary(upload: Upload, pred: ImagePrediction, seconds: float, threshold: float) -> str:
    """Markdown lines describing a run."""
    h, w = pred.depth.shape
    valid = np.isfinite(pred.depth) & (pred.depth > 0)
    d = pred.depth[valid]
    lines = [f"**{upload.name}**: {w}x{h} px"]
    if upload.scale != 1.0:
        h0, w0 = upload.original_size
        lines[0] += f" (downscaled from {w0}x{h0})"
    if d.size:
        lines.append(
            f"Sharpened depth: {float(d.min()):.2f} to {float(d.max()):.2f} m "
            f"(median {float(np.median(d)):.2f} m)"
        )
    lines.append(
        f"Metric recovery: depth = {pred.scale:.3f} x sharpened + {pred.shift:.3f} m; "
        f"{100.0 * float(np.mean(pred.gate < threshold)):.0f}% of pixels confident"
    )
    fx = float(pred.intrinsics[0, 0])
    lines.append(
        f"Intrinsics ({_INTRINSICS_SOURCES.get(pred.intrinsics_source, pred.intrinsics_source)}):"
        f" fx = {fx:.1f} px"
    )
    lines.append(f"Inference: {seconds:.1f} s")
    return "\n\n".join(lines)


@dataclass
class DemoRunner:
    """Runs the pipeline on uploads and writes each run's files into its own folder.

    Args:
        pipe: a :class:`~sharpdepth.pipeline.SharpDepthPipeline` (or anything called the
            same way returning a ``SharpDepthOutput``).
        out_root: folder holding one ``run-*`` folder per run.
        limits: upload and 3D-view limits.
        seed: noise seed (the same for every run, so results are reproducible).
        settings: extra entries for each run's JSON sidecar (checkpoint, metric model).
        keep_seconds: run folders older than this are deleted when a new run starts.
    """

    pipe: Any
    out_root: Path
    limits: DemoLimits = field(default_factory=DemoLimits)
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    keep_seconds: float = 3600.0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def run(
        self,
        path: str | Path,
        focal_px: float | None = None,
        fov_deg: float | None = None,
        drop_edges: bool = False,
        progress: ProgressFn | None = None,
    ) -> DemoResult:
        """Process one uploaded image file.

        Args:
            path: the uploaded file.
            focal_px: known focal length in pixels of the uploaded file (``None``/0: unknown).
            fov_deg: known horizontal field of view in degrees (``None``/0: unknown).
            drop_edges: drop flying pixels from the 3D views and the PLY.
            progress: called with ``(fraction, message)`` at each step.

        Raises:
            DemoInputError: the upload or a setting is refused (message for the user).
            SharpDepthError: the models failed on this image (e.g. invalid metric depth).
        """
        report = progress or (lambda fraction, message: None)
        report(0.0, "Reading the image")
        upload = load_upload(path, self.limits)
        h, w = upload.rgb.shape[:2]
        user_k = known_intrinsics(h, w, focal_px, fov_deg, upload.scale)

        report(0.1, "Estimating depth (metric model, prior, sharpener)")
        start = time.perf_counter()
        with self._lock:
            out = self.pipe(
                upload.rgb, intrinsics=user_k, seed=self.seed, allow_constant_metric_depth=False
            )
        seconds = time.perf_counter() - start
        pred = prediction_of(out, 0, upload.rgb, user_k, upload.exif_focal_px)
        threshold = float(getattr(out, "confidence_threshold", 0.5))

        report(0.6, "Writing the depth .npy, 16-bit PNG and PLY files")
        self.out_root.mkdir(parents=True, exist_ok=True)
        prune_runs(self.out_root, self.keep_seconds)
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=self.out_root))
        paths = write_prediction(
            folder,
            upload.name,
            pred,
            ply=True,
            drop_edges=drop_edges,
            metadata={
                "input": upload.name,
                "seed": self.seed,
                "confidence_threshold": threshold,
                "drop_edges": drop_edges,
                **self.settings,
            },
        )

        report(0.75, "Building the 3D point clouds")
        colors = (np.clip(upload.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        glbs = {}
        for kind, depth in (("metric", pred.metric_depth), ("sharpdepth", pred.depth)):
            points, point_colors = view_point_cloud(
                depth,
                pred.intrinsics,
                colors,
                drop_edges=drop_edges,
                max_points=self.limits.max_points,
            )
            glbs[kind] = save_glb(folder / f"{upload.name}_{kind}.glb", points, point_colors, kind)

        report(0.9, "Colouring the depth maps")
        vmin, vmax = visuals.depth_color_range(pred.metric_depth, pred.depth)
        metric_rgb, depth_rgb = visuals.depth_pair(pred.metric_depth, pred.depth, vmin, vmax)
        result = DemoResult(
            metric_rgb=metric_rgb,
            depth_rgb=depth_rgb,
            depth_legend=visuals.depth_legend(pred.depth, vmin, vmax),
            confidence=visuals.confidence_map(pred.gate),
            glb_metric=glbs["metric"],
            glb_depth=glbs["sharpdepth"],
            downloads=[paths[kind] for kind in DOWNLOAD_KINDS],
            summary=_summary(upload, pred, seconds, threshold),
            prediction=pred,
            color_range=(vmin, vmax),
            folder=folder,
        )
        report(1.0, "Done")
        LOGGER.info("%s: %dx%d done in %.1f s", upload.name, w, h, seconds)
        return result
