"""Benchmarks as sequences of evaluation samples: :func:`load_benchmark`.

:func:`load_benchmark` turns a description and a data folder into a :class:`Benchmark`, an
iterable of :class:`EvalSample`, read lazily.

Conventions of an :class:`EvalSample`
-------------------------------------
* ``rgb``: ``float32 [H, W, 3]`` in ``[0, 1]``, the stored pixels (no EXIF rotation, since
  the ground truth is aligned with the stored pixel grid; alpha dropped).
* ``depth``: ``float32 [H, W]`` z-depth in metres, ``NaN`` where the dataset has no ground
  truth. For a disparity benchmark without calibration (``metric = false``) it is
  ``1 / disparity`` in arbitrary units (depth-like: larger is farther).
* ``valid``: ``bool [H, W]``, the evaluation mask: finite positive ground truth, inside the
  depth range (``min < depth < max``, strict, as in Marigold / BTS), inside the
  evaluation crop, and allowed by every extra mask of the dataset.
* ``K``: ``float64 [3, 3]`` intrinsics in pixels of this image, or ``None``.
* ``edges``: ``bool [H, W]`` annotated depth edges (iBims-1) or ``None``.
* ``meta``: ``benchmark``, ``split``, ``rgb_path``, ``gt_path``, the fields matched from the
  path, and for disparity ground truth ``disparity`` (``float32 [H, W]`` pixels, ``NaN``
  unknown) with the conversion constants.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sharpdepth.errors import MissingDependencyError
from sharpdepth.evaluation.benchmarks.description import (
    BenchmarkDescription,
    CropSpec,
    GTSpec,
    MaskSpec,
    fill_template,
    get_description,
    has_conversion,
)
from sharpdepth.evaluation.benchmarks.formats import decode_gt, read_intrinsics, read_mask, read_rgb
from sharpdepth.evaluation.benchmarks.listing import (
    Entry,
    list_file_entries,
    list_synth_entries,
    missing_message,
    resolve_root,
)

LOGGER = logging.getLogger(__name__)


@dataclass
class EvalSample:
    """One evaluation sample (see the module docstring for the conventions).

    Attributes:
        id: unique id within the benchmark (e.g. ``"kitchen_0004/0001"``).
        rgb: ``float32 [H, W, 3]`` in ``[0, 1]``.
        depth: ``float32 [H, W]`` ground-truth depth in metres, ``NaN`` = no ground truth.
        valid: ``bool [H, W]`` evaluation mask (ground truth, range, crop, masks).
        K: ``float64 [3, 3]`` intrinsics in pixels, or ``None``.
        edges: ``bool [H, W]`` annotated depth edges, or ``None``.
        meta: paths, matched fields, split and, for disparity ground truth, the disparity.
    """

    id: str
    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    K: np.ndarray | None
    edges: np.ndarray | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.rgb.shape[1])


def crop_box(spec: CropSpec, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` pixel box (half-open) of ``spec`` on an ``[H, W]`` image.

    Raises:
        ValueError: a pixel box defined for another image size, or an image smaller
            than a ``bottom_center`` crop.
    """
    height, width = shape
    if spec.kind == "pixels":
        if spec.reference is not None and tuple(spec.reference) != (height, width):
            raise ValueError(
                f"crop box defined for {spec.reference[0]}x{spec.reference[1]} images, got "
                f"{height}x{width}"
            )
        box = (int(spec.top), int(spec.bottom), int(spec.left), int(spec.right))
    elif spec.kind == "fraction":
        box = (
            int(spec.top * height),
            int(spec.bottom * height),
            int(spec.left * width),
            int(spec.right * width),
        )
    else:
        if height < spec.height or width < spec.width:
            raise ValueError(
                f"image {height}x{width} is smaller than the {spec.height}x{spec.width} crop"
            )
        top, left = height - spec.height, (width - spec.width) // 2
        box = (top, top + spec.height, left, left + spec.width)
    return box[0], min(box[1], height), box[2], min(box[3], width)


def disparity_to_depth(
    disparity: np.ndarray, focal_baseline: float, doffs: float = 0.0
) -> np.ndarray:
    """``depth = focal_baseline / (disparity + doffs)``, ``NaN`` where not positive.

    Args:
        disparity: ``[H, W]`` disparity in pixels, ``NaN`` = unknown.
        focal_baseline: focal length (pixels) times baseline (metres).
        doffs: x-difference of the principal points (pixels, Middlebury).

    Returns:
        ``float64 [H, W]`` depth in metres.
    """
    denom = disparity.astype(np.float64) + doffs
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = focal_baseline / denom
    return np.where(np.isfinite(denom) & (denom > 0), depth, np.nan)


def _conversion(
    gt: GTSpec,
    K: np.ndarray | None,  # noqa: N803
    calib: Mapping[str, Any],
) -> tuple[float, float]:
    """``(focal * baseline, doffs)`` of a disparity ground truth."""
    doffs = float(calib["doffs"]) if gt.doffs == "calib" else float(gt.doffs)
    if gt.focal_baseline is not None:
        return float(gt.focal_baseline), doffs
    if gt.focal is None or gt.baseline is None:
        raise ValueError("disparity conversion needs [gt] focal and baseline, or focal_baseline")
    if isinstance(gt.focal, str):  # "intrinsics"
        if K is None:
            raise ValueError("disparity conversion needs intrinsics, but none were found")
        focal = float(K[0, 0])
    else:
        focal = float(gt.focal)
    calib_baseline = isinstance(gt.baseline, str)  # "calib"
    baseline = float(calib["baseline_m"]) if calib_baseline else float(gt.baseline)
    return focal * baseline, doffs


def _assemble(
    desc: BenchmarkDescription,
    sample_id: str,
    rgb: np.ndarray,
    stored: np.ndarray,
    K: np.ndarray | None,  # noqa: N803
    calib: Mapping[str, Any],
    masks: Sequence[np.ndarray],
    edges: np.ndarray | None,
    meta: dict[str, Any],
) -> EvalSample:
    """Convert, precrop and mask one sample (arrays already at the RGB's resolution)."""
    values = stored / desc.gt.scale
    if desc.gt.kind == "disparity":
        meta["disparity"] = values.astype(np.float32)
        if has_conversion(desc.gt):
            focal_baseline, doffs = _conversion(desc.gt, K, calib)
            meta.update(focal_baseline=focal_baseline, doffs=doffs)
            depth = disparity_to_depth(values, focal_baseline, doffs)
        else:
            depth = disparity_to_depth(values, 1.0)
    else:
        depth = np.where(values > 0, values, np.nan)
    K = None if K is None else np.array(K, dtype=np.float64)  # noqa: N806
    if desc.precrop is not None:
        top, bottom, left, right = crop_box(desc.precrop, depth.shape)
        rgb, depth = rgb[top:bottom, left:right], depth[top:bottom, left:right]
        masks = [m[top:bottom, left:right] for m in masks]
        edges = None if edges is None else edges[top:bottom, left:right]
        if "disparity" in meta:
            meta["disparity"] = meta["disparity"][top:bottom, left:right]
        if K is not None:
            K[0, 2] -= left
            K[1, 2] -= top
        meta["precrop_box"] = (top, bottom, left, right)
    valid = np.isfinite(depth) & (depth > 0)
    if desc.metric:
        valid &= (depth > desc.min_depth) & (depth < desc.max_depth)
    for mask in masks:
        valid &= mask
    if desc.crop is not None:
        top, bottom, left, right = crop_box(desc.crop, depth.shape)
        inside = np.zeros(depth.shape, dtype=bool)
        inside[top:bottom, left:right] = True
        valid &= inside
        meta["crop_box"] = (top, bottom, left, right)
    return EvalSample(
        id=sample_id,
        rgb=np.ascontiguousarray(rgb, dtype=np.float32),
        depth=np.ascontiguousarray(depth, dtype=np.float32),
        valid=np.ascontiguousarray(valid),
        K=K,
        edges=None if edges is None else np.ascontiguousarray(edges, dtype=bool),
        meta=meta,
    )


def _check_shape(array: np.ndarray, shape: tuple[int, int], what: str, path: Path) -> None:
    """Raise ``ValueError`` unless ``array`` is ``[H, W]`` of the RGB's ``shape``."""
    if array.shape != shape:
        raise ValueError(f"{path}: {what} has shape {array.shape}, the image is {shape}")


def _read_file_sample(
    desc: BenchmarkDescription, root: Path, entry: Entry, split: str | None
) -> EvalSample:
    """Read one sample of a ``files`` benchmark."""
    assert entry.rgb is not None
    rgb = read_rgb(entry.rgb)
    shape = (rgb.shape[0], rgb.shape[1])
    gt_path = root / fill_template(desc.gt.path, entry.fields, "gt.path")
    stored = decode_gt(desc.gt, gt_path, shape)
    step = desc.gt.subsample
    if step > 1:
        stored = stored[::step, ::step]
    _check_shape(stored, shape, "ground truth", gt_path)
    K, calib = read_intrinsics(desc.intrinsics, root, entry.fields)  # noqa: N806
    masks = []
    for spec in desc.gt.masks:
        path = root / fill_template(spec.path, entry.fields, "mask path")
        if not path.is_file():
            if spec.optional:
                continue
            raise FileNotFoundError(f"{path}: mask file missing")
        mask = read_mask(spec, path)
        _check_shape(mask, shape, "mask", path)
        masks.append(mask)
    edges = None
    if desc.edges is not None:
        path = root / fill_template(desc.edges.path, entry.fields, "edges.path")
        edges = read_mask(MaskSpec(path=str(path)), path)
        _check_shape(edges, shape, "edge map", path)
    meta: dict[str, Any] = {
        "benchmark": desc.name,
        "split": split,
        "rgb_path": str(entry.rgb),
        "gt_path": str(gt_path),
        "fields": dict(entry.fields),
    }
    return _assemble(desc, entry.id, rgb, stored, K, calib, masks, edges, meta)


def _read_synth_sample(
    desc: BenchmarkDescription, root: Path, entry: Entry, split: str
) -> EvalSample:
    """Read one sample of our synthetic engine's folder."""
    from sharpdepth.synth.dataset import load_synth_sample

    sample = load_synth_sample(root / split, entry.id)
    rgb = sample.rgb.astype(np.float32) / 255.0
    stored = np.where(sample.mask, sample.depth.astype(np.float64), np.nan)
    meta: dict[str, Any] = {
        "benchmark": desc.name,
        "split": split,
        "rgb_path": str(root / split / f"{entry.id}_rgb.png"),
        "gt_path": str(root / split / f"{entry.id}_depth.npy"),
        "style": sample.style,
        "seed": sample.seed,
    }
    return _assemble(desc, entry.id, rgb, stored, sample.K, {}, [], None, meta)


def _read_motorcycle(desc: BenchmarkDescription) -> EvalSample:
    """The scikit-image copy of Middlebury 2014 Motorcycle (left view, GT disparity)."""
    try:
        from skimage import data as skdata
    except ImportError as exc:
        raise MissingDependencyError(
            f"benchmark {desc.name!r} needs scikit-image (pip install scikit-image)"
        ) from exc
    left, _right, disparity = skdata.stereo_motorcycle()
    rgb = np.asarray(left, dtype=np.float32) / 255.0
    stored = np.asarray(disparity, dtype=np.float64)
    stored = np.where(np.isfinite(stored), stored, np.nan)
    _check_shape(stored, (rgb.shape[0], rgb.shape[1]), "disparity", Path("skimage.data"))
    K, calib = read_intrinsics(desc.intrinsics, Path("."), {})  # noqa: N806
    meta: dict[str, Any] = {
        "benchmark": desc.name,
        "split": None,
        "rgb_path": "skimage.data.stereo_motorcycle()[0]",
        "gt_path": "skimage.data.stereo_motorcycle()[2]",
    }
    return _assemble(desc, "motorcycle", rgb, stored, K, calib, [], None, meta)


class Benchmark:
    """The samples of one benchmark: ``len()``, indexing and iteration give :class:`EvalSample`.

    Samples are read lazily, one at a time. Build it with :func:`load_benchmark`.

    Attributes:
        description: the parsed description (``str()`` of it is the title).
        root: the data folder (``None`` for data shipped with a package).
        split: the split in use, or ``None``.
    """

    def __init__(
        self,
        description: BenchmarkDescription,
        root: Path | None,
        split: str | None,
        entries: Sequence[Entry],
    ) -> None:
        self.description = description
        self.root = root
        self.split = split
        self._entries = list(entries)
        self._reader: Callable[[Entry], EvalSample] = self._make_reader()

    def _make_reader(self) -> Callable[[Entry], EvalSample]:
        """The function reading one entry, by source."""
        desc, root, split = self.description, self.root, self.split
        if desc.source == "skimage_motorcycle":
            return lambda entry: _read_motorcycle(desc)
        assert root is not None
        if desc.source == "synth":
            return lambda entry: _read_synth_sample(desc, root, entry, str(split))
        return lambda entry: _read_file_sample(desc, root, entry, split)

    @property
    def name(self) -> str:
        """The benchmark's name."""
        return self.description.name

    @property
    def title(self) -> str:
        """One-line title."""
        return self.description.title

    @property
    def is_sharpness(self) -> bool:
        """Whether the ground truth is dense enough for boundary (PDBE / DBE) metrics."""
        return self.description.sharpness

    @property
    def metric(self) -> bool:
        """Whether ``EvalSample.depth`` is in metres."""
        return self.description.metric

    @property
    def alignment(self) -> str:
        """``"auto"`` or ``"disparity"`` (always least squares in disparity)."""
        return self.description.alignment

    @property
    def gt_kind(self) -> str:
        """``"depth"`` or ``"disparity"``: what the dataset stores."""
        return self.description.gt.kind

    @property
    def ids(self) -> list[str]:
        """Sample ids, in order."""
        return [e.id for e in self._entries]

    def __len__(self) -> int:
        """Number of samples."""
        return len(self._entries)

    def __getitem__(self, index: int) -> EvalSample:
        """Read sample ``index`` (negative indices count from the end)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return self._reader(self._entries[index])

    def __iter__(self) -> Iterator[EvalSample]:
        """Read the samples in order."""
        for entry in self._entries:
            yield self._reader(entry)

    def __repr__(self) -> str:
        """Short summary."""
        return (
            f"Benchmark({self.name!r}, split={self.split!r}, n={len(self)}, "
            f"root={str(self.root) if self.root else None!r})"
        )


def load_benchmark(
    name_or_path: str | Path,
    root: str | Path | None = None,
    split: str | None = None,
    limit: int | None = None,
) -> Benchmark:
    """Open a benchmark: find its data, list its samples (reading happens on access).

    Args:
        name_or_path: a packaged benchmark's name or alias (see :func:`list_benchmarks`)
            or the path of a ``.toml`` description.
        root: data folder (the CLI's ``--data-root``); otherwise the dataset's environment
            variable or ``$SHARPDEPTH_DATA/<subdir>``.
        split: a declared split (default: the description's ``default_split``); for
            ``synth``, the folder's split (``test``, ``zeroshot``, ``train``, ``val``).
        limit: keep only the first ``limit`` samples.

    Returns:
        The benchmark.

    Raises:
        FileNotFoundError: the data folder is missing or holds no samples; the message
            names the environment variables and shows the expected layout.
        ValueError: unknown benchmark or split, or an invalid description.
    """
    desc = get_description(name_or_path)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    chosen, spec = desc.sample_spec(split)
    data_root: Path | None = None
    skipped = 0
    if desc.source == "skimage_motorcycle":
        entries = [Entry("motorcycle", None, {})]
    else:
        data_root = resolve_root(desc, root)
        if desc.source == "synth":
            chosen = chosen or "test"
            entries = list_synth_entries(desc, data_root, chosen)
        else:
            entries, skipped = list_file_entries(desc, spec, data_root)
            if not entries:
                globs = ", ".join(spec.glob) or str(spec.list)
                raise FileNotFoundError(
                    missing_message(desc, [], f"no samples matching {globs} under {data_root}")
                )
    if skipped:
        LOGGER.info("%s: skipped %d samples without ground truth", desc.name, skipped)
    if spec.expected_count is not None and len(entries) != spec.expected_count:
        LOGGER.warning(
            "%s%s: found %d samples, the standard set has %d",
            desc.name,
            f" ({chosen})" if chosen else "",
            len(entries),
            spec.expected_count,
        )
    if limit is not None:
        entries = entries[:limit]
    LOGGER.debug("%s: %d samples from %s", desc.name, len(entries), data_root)
    return Benchmark(desc, data_root, chosen, entries)
