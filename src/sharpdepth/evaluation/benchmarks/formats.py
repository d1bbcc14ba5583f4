"""The file formats of the benchmarks' ground truth, masks, images and calibration.

The decoders named by a description's ``[gt] decoder``
(:data:`~sharpdepth.evaluation.benchmarks.description.DECODERS`): Sintel's ``.dpt`` and
``.cam`` and PFM (with writers for tests), ETH3D's raw float images, Spring's ``.dsp5``
(HDF5); and the intrinsics files of ``[intrinsics] kind``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sharpdepth.errors import ImageReadError, MissingDependencyError
from sharpdepth.evaluation.benchmarks.description import (
    GTSpec,
    IntrinsicsSpec,
    MaskSpec,
    fill_template,
)
from sharpdepth.io import load_depth_png16, pil_to_array

LOGGER = logging.getLogger(__name__)

_TAG_FLOAT = 202021.25  # 'PIEH' read as little-endian float32: Sintel .dpt / .cam tag
_SINTEL_MAX_PIXELS = 100_000_000


def read_rgb(path: str | Path) -> np.ndarray:
    """An image as stored (no EXIF rotation, alpha dropped) as ``float32 [H, W, 3]`` in [0, 1].

    Raises:
        ImageReadError: missing or undecodable file.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            plain = image.mode in ("RGB", "L", "I;16", "I;16B", "I;16L", "I", "F")
            return pil_to_array(image if plain else image.convert("RGB"))
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from exc


def read_pfm(path: str | Path) -> np.ndarray:
    """A PFM file (``Pf`` greyscale or ``PF`` colour) as ``float32 [H, W]`` / ``[H, W, 3]``.

    The scale line's sign gives the byte order (negative = little-endian); rows are stored
    bottom to top and are flipped here. Values are returned as stored (``inf`` kept).

    Raises:
        ValueError: not a PFM file, or truncated.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        tokens: list[bytes] = []
        while len(tokens) < 4:
            line = handle.readline()
            if not line:
                raise ValueError(f"{path}: truncated PFM header")
            tokens.extend(line.split())
        kind, width, height, scale = tokens[0], int(tokens[1]), int(tokens[2]), float(tokens[3])
        if kind not in (b"Pf", b"PF"):
            raise ValueError(f"{path}: not a PFM file (magic {kind!r})")
        channels = 3 if kind == b"PF" else 1
        dtype = np.dtype("<f4" if scale < 0 else ">f4")
        count = width * height * channels
        data = np.frombuffer(handle.read(count * 4), dtype=dtype)
    if data.size != count:
        raise ValueError(f"{path}: PFM data has {data.size} values, expected {count}")
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(np.flipud(data.reshape(shape)), dtype=np.float32)


def write_pfm(path: str | Path, data: np.ndarray) -> Path:
    """Write ``float32 [H, W]`` (or ``[H, W, 3]``) as little-endian PFM (used by tests)."""
    array = np.asarray(data, dtype="<f4")
    kind = b"PF" if array.ndim == 3 else b"Pf"
    header = kind + b"\n" + f"{array.shape[1]} {array.shape[0]}\n-1\n".encode("ascii")
    Path(path).write_bytes(header + np.ascontiguousarray(np.flipud(array)).tobytes())
    return Path(path)


def read_dpt(path: str | Path) -> np.ndarray:
    """A Sintel ``.dpt`` depth file as ``float32 [H, W]``.

    Format: float32 tag 202021.25, int32 width, int32 height, float32 data row-major.

    Raises:
        ValueError: wrong tag, implausible size or truncated data.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 12:
        raise ValueError(f"{path}: too short for a .dpt file")
    tag = float(np.frombuffer(raw, "<f4", 1, 0)[0])
    width, height = (int(v) for v in np.frombuffer(raw, "<i4", 2, 4))
    if tag != _TAG_FLOAT:
        raise ValueError(f"{path}: wrong .dpt tag {tag} (expected {_TAG_FLOAT})")
    if width < 1 or height < 1 or width * height > _SINTEL_MAX_PIXELS:
        raise ValueError(f"{path}: implausible .dpt size {width}x{height}")
    if len(raw) != 12 + 4 * width * height:
        raise ValueError(f"{path}: {len(raw)} bytes, expected {12 + 4 * width * height}")
    return np.frombuffer(raw, "<f4", width * height, 12).reshape(height, width).copy()


def write_dpt(path: str | Path, depth: np.ndarray) -> Path:
    """Write ``float32 [H, W]`` as a Sintel ``.dpt`` file (used by tests)."""
    array = np.asarray(depth, dtype="<f4")
    head = np.array([_TAG_FLOAT], "<f4").tobytes() + np.array(array.shape[::-1], "<i4").tobytes()
    Path(path).write_bytes(head + np.ascontiguousarray(array).tobytes())
    return Path(path)


def read_sintel_cam(path: str | Path) -> np.ndarray:
    """The intrinsic matrix ``M`` (``float64 [3, 3]``) of a Sintel ``.cam`` file.

    Format: float32 tag 202021.25, then ``M`` (9 float64) and ``N`` (12 float64).
    """
    raw = Path(path).read_bytes()
    if len(raw) < 4 + 8 * 21 or float(np.frombuffer(raw, "<f4", 1, 0)[0]) != _TAG_FLOAT:
        raise ValueError(f"{path}: not a Sintel .cam file")
    return np.frombuffer(raw, "<f8", 9, 4).reshape(3, 3).copy()


def _read_npy_2d(path: Path) -> np.ndarray:
    """A ``.npy`` array with trailing singleton axes squeezed, as ``float64 [H, W]``."""
    data = np.load(path, allow_pickle=False)
    while data.ndim > 2 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array (or [H, W, 1]), got shape {data.shape}")
    return data.astype(np.float64)


def _read_eth3d_raw(path: Path, gt: GTSpec, shape: tuple[int, int]) -> np.ndarray:
    """ETH3D raw float32 depth of the RGB's ``shape`` (``inf`` = invalid)."""
    height, width = shape
    size = path.stat().st_size
    if size != 4 * height * width:
        declared = f" (description: {gt.width}x{gt.height})" if gt.width and gt.height else ""
        raise ValueError(
            f"{path}: {size} bytes, but the image is {width}x{height} = "
            f"{4 * height * width} bytes of float32{declared}"
        )
    return np.fromfile(path, dtype="<f4").reshape(height, width).astype(np.float64)


def _read_dsp5(path: Path) -> np.ndarray:
    """Spring ``.dsp5`` disparity (HDF5 dataset ``disparity``); needs h5py."""
    try:
        import h5py
    except ImportError as exc:
        raise MissingDependencyError(
            f"{path}: Spring .dsp5 ground truth is HDF5; reading it needs h5py (pip install h5py)"
        ) from exc
    with h5py.File(path, "r") as handle:
        if "disparity" not in handle:
            raise ValueError(f"{path}: no 'disparity' dataset in this .dsp5 file")
        return np.asarray(handle["disparity"][()], dtype=np.float64)


def decode_gt(gt: GTSpec, path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Decode a ground-truth file to stored values, ``float64 [H, W]``, ``NaN`` = none.

    Args:
        gt: the ground-truth spec (decoder and its parameters).
        path: the file.
        shape: ``(H, W)`` of the RGB image (used by ``eth3d_raw``).

    Returns:
        The stored values before ``scale`` and ``subsample``; zero-valued PNG pixels and
        non-finite values are ``NaN``.
    """
    decoder = gt.decoder
    if decoder in ("png16", "kitti_png"):
        values = load_depth_png16(path, scale=1.0).astype(np.float64)
    elif decoder in ("npy", "diode_npy", "unreal_disp_npy"):
        values = _read_npy_2d(path)
    elif decoder == "pfm":
        values = read_pfm(path).astype(np.float64)
        if values.ndim != 2:
            raise ValueError(f"{path}: expected a greyscale (Pf) PFM")
    elif decoder == "dpt":
        values = read_dpt(path).astype(np.float64)
    elif decoder == "eth3d_raw":
        values = _read_eth3d_raw(path, gt, shape)
    elif decoder == "spring_dsp5":
        values = _read_dsp5(path)
    else:  # guarded by parse_description
        raise ValueError(f"unknown decoder {decoder!r}")
    return np.where(np.isfinite(values), values, np.nan)


def read_mask(mask: MaskSpec, path: Path) -> np.ndarray:
    """A mask file as ``bool [H, W]`` (non-zero = True)."""
    if mask.decoder == "npy":
        return _read_npy_2d(path) != 0
    with Image.open(path) as image:
        image.load()
        data = np.asarray(image)
    if data.ndim == 3:
        data = data[..., :3].max(axis=-1)
    return data != 0


def _k_from(values: Sequence[float]) -> np.ndarray:
    """``[fx, fy, cx, cy]`` -> ``float64 [3, 3]``."""
    fx, fy, cx, cy = (float(v) for v in values)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def _numbers(text: str) -> list[float]:
    """Every number in ``text`` (separated by commas, semicolons, brackets or spaces)."""
    return [float(tok) for tok in re.split(r"[\s,;\[\]]+", text) if tok]


def parse_middlebury_calib(text: str) -> dict[str, Any]:
    """Parse a Middlebury 2014 ``calib.txt``.

    Returns:
        ``{"K": float64 [3, 3] (cam0), "doffs": px, "baseline_m": metres, ...}`` plus any
        other numeric key (``width``, ``height``, ``ndisp``...) as a float.

    Raises:
        ValueError: ``cam0``, ``doffs`` or ``baseline`` missing.
    """
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        numbers = _numbers(value)
        if key in ("cam0", "cam1"):
            if len(numbers) != 9:
                raise ValueError(f"calib.txt: {key} must hold 9 numbers")
            out[key] = np.asarray(numbers, dtype=np.float64).reshape(3, 3)
        elif len(numbers) == 1:
            out[key] = numbers[0]
    for key in ("cam0", "doffs", "baseline"):
        if key not in out:
            raise ValueError(f"calib.txt: missing '{key}'")
    out["K"] = out["cam0"]
    out["baseline_m"] = float(out["baseline"]) / 1000.0
    return out


def read_intrinsics(
    spec: IntrinsicsSpec, root: Path, fields: Mapping[str, str]
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """``(K or None, calibration extras)`` of one sample."""
    if spec.kind == "none":
        return None, {}
    if spec.kind == "constant":
        assert spec.values is not None
        return _k_from(spec.values), {}
    if spec.kind == "by_group":
        key = fields.get(str(spec.group), "")
        if key in spec.table:
            return _k_from(spec.table[key]), {}
        if spec.optional:
            return None, {}
        raise ValueError(f"no intrinsics for {spec.group}={key!r}; known: {sorted(spec.table)}")
    path = root / fill_template(str(spec.path), fields, "intrinsics.path")
    if not path.is_file():
        if spec.optional:
            LOGGER.debug("no intrinsics file %s", path)
            return None, {}
        raise FileNotFoundError(f"{path}: intrinsics file missing")
    if spec.kind == "sintel_cam":
        return read_sintel_cam(path), {}
    if spec.kind == "ibims_calib":
        numbers = _numbers(path.read_text(encoding="utf-8"))
        if len(numbers) < 4:
            raise ValueError(f"{path}: expected fx, fy, cx, cy")
        return _k_from(numbers[:4]), {}
    if spec.kind == "spring_txt":
        row = int(fields[str(spec.row_group)]) + spec.row_offset
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not 0 <= row < len(lines):
            raise ValueError(f"{path}: no line {row} (file has {len(lines)})")
        return _k_from(_numbers(lines[row])[:4]), {}
    calib = parse_middlebury_calib(path.read_text(encoding="utf-8"))
    return calib["K"], {"doffs": float(calib["doffs"]), "baseline_m": calib["baseline_m"]}
