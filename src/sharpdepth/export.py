"""Writing one image's prediction to disk: the file set shared by ``predict`` and the demo.

Per image ``STEM`` (every file written atomically, the JSON last):

============================  ===========================================================
``STEM_depth.npy``            float32 ``[H, W]`` sharp metric depth, metres
``STEM_depth.png``            uint16 depth in millimetres (0 = invalid, max 65.535 m)
``STEM_depth.exr``            float32 one-channel (``Z``) OpenEXR depth, metres (optional)
``STEM_depth_color.png``      colourised sharp depth (inverse depth, turbo)
``STEM_metric_depth.npy``     float32 ``[H, W]`` the metric model's depth, metres
``STEM_metric_depth_color.png``  colourised metric depth, same colour scale as above
``STEM_confidence.png``       8-bit ``255 * (1 - gate)``: white where prior and metric agree
``STEM.json``                 scale, shift, intrinsics and where they came from, settings
``STEM.ply``                  coloured point cloud in metres (optional)
============================  ===========================================================

The set is one unit: the JSON is removed before the others are rewritten and written
again last, listing every file with its size, so a set is complete exactly when its JSON
says so (:func:`outputs_complete`); a failed write removes the whole set. Existing files
are only replaced if sharpdepth wrote them (:func:`check_overwritable`): the JSON and PLY
say so in their content, the PNGs in a ``Software`` text chunk, the EXR in its
``software`` header attribute, and while a set is being
written a hidden journal ``.STEM.sharpdepth-writing.json`` lists its files.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sharpdepth import geometry, io, vis
from sharpdepth.errors import OutputExistsError

LOGGER = logging.getLogger(__name__)

#: Horizontal field of view assumed when nothing else gives the intrinsics, degrees.
DEFAULT_FOV_DEG = 60.0
#: Millimetres per metre in the 16-bit PNG.
PNG16_SCALE = 1000.0
#: Who wrote a file: the JSON's ``written_by`` and the PNGs' ``Software`` text chunk.
WRITTEN_BY = "sharpdepth"
#: ``tEXt`` chunks of every output PNG.
PNG_TEXT = {"Software": WRITTEN_BY}
#: The PLY header line of :func:`sharpdepth.io.save_ply`.
PLY_MARK = b"comment written by sharpdepth"
#: Output file name suffixes (after ``STEM``), by kind, in writing order (JSON last).
OUTPUT_SUFFIXES: dict[str, str] = {
    "depth_npy": "_depth.npy",
    "depth_png16": "_depth.png",
    "depth_exr": "_depth.exr",
    "depth_color": "_depth_color.png",
    "metric_depth_npy": "_metric_depth.npy",
    "metric_depth_color": "_metric_depth_color.png",
    "confidence": "_confidence.png",
    "ply": ".ply",
    "meta": ".json",
}
#: Suffix of the hidden journal ``.STEM<suffix>`` that lists a set while it is written.
JOURNAL_SUFFIX = ".sharpdepth-writing.json"
#: Largest JSON file read back to tell whether we wrote it, bytes.
_MAX_META_BYTES = 2**20
#: Hidden temporary files of :func:`sharpdepth.io.atomic_write`.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-[0-9a-f]{8}(?P<suffix>\.[A-Za-z0-9]+)$")


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


def output_paths(out_dir: Path, stem: str, ply: bool, exr: bool = False) -> dict[str, Path]:
    """The files :func:`write_prediction` writes for ``stem``, by kind (JSON last); the
    PLY and the EXR only when asked for."""
    optional = {"ply": ply, "depth_exr": exr}
    return {
        kind: Path(out_dir) / f"{stem}{suffix}"
        for kind, suffix in OUTPUT_SUFFIXES.items()
        if optional.get(kind, True)
    }


def journal_path(out_dir: Path, stem: str) -> Path:
    """The hidden journal listing ``stem``'s files while :func:`write_prediction` runs."""
    return Path(out_dir) / f".{stem}{JOURNAL_SUFFIX}"


def read_meta(path: Path) -> dict[str, Any] | None:
    """A JSON sidecar sharpdepth wrote (this or an earlier version), or ``None``."""
    try:
        if path.stat().st_size > _MAX_META_BYTES:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    legacy = "depth_units" in data and "depth_png16_scale" in data
    return data if data.get("written_by") == WRITTEN_BY or legacy else None


def _listed_names(meta: dict[str, Any] | None, stem: str) -> set[str]:
    """File names a sidecar (or journal) says belong to ``stem``'s set."""
    if meta is None:
        return set()
    files = meta.get("files")
    if isinstance(files, dict):
        names = {f.get("name") for f in files.values() if isinstance(f, dict)}
    elif isinstance(files, list):
        names = set(files)
    else:  # a sidecar of a version that did not list its files
        names = {f"{stem}{suffix}" for suffix in OUTPUT_SUFFIXES.values()}
    return {n for n in names if isinstance(n, str)} | {f"{stem}.json"}


def _marked(path: Path) -> bool:
    """Whether ``path``'s own content says sharpdepth wrote it (PNG, PLY or JSON)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        return io.png_text(path).get("Software") == WRITTEN_BY
    if suffix == ".json":
        return read_meta(path) is not None
    if suffix == ".exr":
        return io.exr_header(path).get("software") == WRITTEN_BY
    if suffix == ".ply":
        try:
            with open(path, "rb") as handle:
                return PLY_MARK in handle.read(256)
        except OSError:
            return False
    return False


def written_by_us(path: Path, stem: str) -> bool:
    """Whether the existing file ``path`` of ``stem``'s set was written by sharpdepth: its
    content says so, or ``stem``'s sidecar or journal lists it."""
    if _marked(path):
        return True
    name = path.name
    out_dir = path.parent
    if name in _listed_names(read_meta(journal_path(out_dir, stem)), stem):
        return True
    return name in _listed_names(read_meta(out_dir / f"{stem}.json"), stem)


def check_overwritable(paths: Iterable[Path], stem: str) -> None:
    """Refuse to replace a file sharpdepth did not write.

    Raises:
        OutputExistsError: one of ``paths`` exists and is not ours (message names it).
    """
    for path in paths:
        if os.path.lexists(path) and not written_by_us(path, stem):
            raise OutputExistsError(
                f"{path} exists and was not written by sharpdepth; not overwriting it (move "
                "it away or choose another output folder)"
            )


def is_prediction_output(path: Path) -> bool:
    """Whether an image file found among the inputs is one of our own outputs: a PNG
    marked as ours, or named like one next to our sidecar."""
    if io.png_text(path).get("Software") == WRITTEN_BY:
        return True
    for kind, suffix in OUTPUT_SUFFIXES.items():
        if kind != "meta" and path.name.endswith(suffix) and len(path.name) > len(suffix):
            stem = path.name[: -len(suffix)]
            if path.name in _listed_names(read_meta(path.parent / f"{stem}.json"), stem):
                return True
    return False


def _set_complete(meta: dict[str, Any] | None, folder: Path) -> bool:
    """Whether a sidecar lists its files and each exists with the size it records."""
    files = None if meta is None else meta.get("files")
    if not isinstance(files, dict):
        return False
    for entry in files.values():
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return False
        try:
            if (folder / entry["name"]).stat().st_size != entry.get("bytes"):
                return False
        except OSError:
            return False
    return True


def outputs_complete(out_dir: Path, stem: str, ply: bool, exr: bool = False) -> bool:
    """Whether ``stem``'s outputs (with the PLY if ``ply``, the EXR if ``exr``) form one
    complete set.

    A set is complete when its JSON was written by sharpdepth and every file the JSON
    lists exists with the recorded size. A sidecar of an earlier version that did not
    list its files counts as complete when every file exists.
    """
    paths = output_paths(out_dir, stem, ply, exr)
    meta = read_meta(paths["meta"])
    if meta is None:
        return False
    files = meta.get("files")
    if not isinstance(files, dict):
        return all(p.is_file() for p in paths.values())
    return set(paths) - {"meta"} <= set(files) and _set_complete(meta, Path(out_dir))


def clean_debris(out_dir: Path, before: float | None = None) -> int:
    """Remove what an interrupted run left in ``out_dir``; returns how many files.

    That is our hidden temporary files (``.NAME.tmp-XXXXXXXX.EXT`` of an output name),
    modified before ``before`` (a time stamp, default now), and journals of sets whose
    JSON was written after all. Call it only while holding the folder's lock
    (:func:`sharpdepth.io.lock_folder`), so no other run is writing there.
    """
    cutoff = time.time() if before is None else before
    removed = 0
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return 0
    for entry in entries:
        path = Path(entry.path)
        if _is_debris(entry, cutoff) and _remove(path):
            removed += 1
    return removed


def _is_debris(entry: os.DirEntry[str], cutoff: float) -> bool:
    """Whether a folder entry is a temporary file or stale journal of ours."""
    if not entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
        return False
    if entry.name.endswith(JOURNAL_SUFFIX):
        stem = entry.name[1 : -len(JOURNAL_SUFFIX)]
        folder = Path(entry.path).parent
        return _set_complete(read_meta(folder / f"{stem}.json"), folder)
    match = _TEMP_NAME.match(entry.name)
    if match is None:
        return False
    target = match["name"] + match["suffix"]
    ours = target.endswith(tuple(OUTPUT_SUFFIXES.values())) or target.endswith(JOURNAL_SUFFIX)
    try:
        return ours and entry.stat(follow_symlinks=False).st_mtime < cutoff
    except OSError:
        return False


def _remove(path: Path) -> bool:
    """Delete ``path``; ``False`` (logged) if that fails."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        LOGGER.warning("cannot remove %s: %s", path, exc)
        return False
    return True


def write_prediction(
    out_dir: Path,
    stem: str,
    pred: ImagePrediction,
    ply: bool = False,
    drop_edges: bool = False,
    metadata: dict[str, Any] | None = None,
    exr: bool = False,
) -> dict[str, Path]:
    """Write every output of one image as one unit (see the module docstring).

    Returns:
        The paths, by kind.

    Raises:
        OutputExistsError: an output would replace a file sharpdepth did not write
            (nothing is written).
        OSError: a write failed (e.g. :class:`~sharpdepth.errors.NoSpaceError`); the
            image's set is removed, so no partial set is left.
    """
    out_dir = Path(out_dir)
    paths = output_paths(out_dir, stem, ply, exr)
    check_overwritable(paths.values(), stem)
    journal = journal_path(out_dir, stem)
    io.save_json(journal, {"written_by": WRITTEN_BY, "files": [p.name for p in paths.values()]})
    paths["meta"].unlink(missing_ok=True)  # the set stays incomplete until the JSON is back
    try:
        _write_files(paths, pred, ply, drop_edges)
        meta = _metadata(pred, paths, metadata)
        io.save_json(paths["meta"], meta)
    except BaseException:
        for path in paths.values():
            _remove(path)
        _remove(journal)
        raise
    _remove(journal)
    return paths


def _write_files(
    paths: dict[str, Path], pred: ImagePrediction, ply: bool, drop_edges: bool
) -> None:
    """Write every output but the JSON."""
    valid = np.isfinite(pred.metric_depth) & (pred.metric_depth > 0)
    vmin, vmax = vis.depth_range(pred.metric_depth, valid)
    io.save_depth_npy(paths["depth_npy"], pred.depth.astype(np.float32))
    io.save_depth_png16(paths["depth_png16"], pred.depth, scale=PNG16_SCALE, text=PNG_TEXT)
    if "depth_exr" in paths:
        io.save_depth_exr(paths["depth_exr"], pred.depth.astype(np.float32), WRITTEN_BY)
    io.save_rgb_png(
        paths["depth_color"], vis.colorize_depth(pred.depth, vmin=vmin, vmax=vmax), text=PNG_TEXT
    )
    io.save_depth_npy(paths["metric_depth_npy"], pred.metric_depth.astype(np.float32))
    io.save_rgb_png(
        paths["metric_depth_color"],
        vis.colorize_depth(pred.metric_depth, vmin=vmin, vmax=vmax),
        text=PNG_TEXT,
    )
    io.save_gray_png(paths["confidence"], 1.0 - np.clip(pred.gate, 0.0, 1.0), bits=8, text=PNG_TEXT)
    if ply:
        colors = (np.clip(pred.rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        points, point_colors = geometry.point_cloud(
            torch.from_numpy(pred.depth.astype(np.float32)),
            torch.from_numpy(pred.intrinsics.astype(np.float32)),
            colors,
            drop_edges=drop_edges,
        )
        io.save_ply(paths["ply"], points, point_colors)


def _metadata(
    pred: ImagePrediction, paths: dict[str, Path], metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """The JSON sidecar: numbers, settings and the files of the set with their sizes."""
    files = {
        kind: {"name": path.name, "bytes": path.stat().st_size}
        for kind, path in paths.items()
        if kind != "meta"
    }
    return {
        "written_by": WRITTEN_BY,
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
        "files": files,
    }
