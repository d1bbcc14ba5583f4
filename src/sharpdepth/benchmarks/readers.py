"""Evaluation benchmarks: small declarative descriptions and one generic reader.

A benchmark is described by a TOML file (the packaged ones live in
``sharpdepth/benchmarks/descriptions/``; any other file can be passed by path), never by
code per dataset. :func:`load_benchmark` turns a description and a data folder into a
:class:`Benchmark`, an iterable of :class:`EvalSample`.

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

Where a benchmark's data are looked for
---------------------------------------
1. ``root`` (the CLI's ``--data-root``): the dataset folder itself, or a folder holding it
   under the description's ``subdir``;
2. the dataset's own environment variable (``env``, e.g. ``SHARPDEPTH_NYUV2``);
3. ``$SHARPDEPTH_DATA/<subdir>``.

A missing folder raises :class:`FileNotFoundError` naming these and the expected layout.

Description format (TOML)
-------------------------
Top level: ``name``, ``title``, ``summary``, ``aliases``, ``source`` (``"files"``
(default), ``"synth"``: a folder written by :mod:`sharpdepth.synth`,
``"skimage_motorcycle"``: the Middlebury pair shipped with scikit-image), ``env``,
``subdir``, ``download``, ``references``, ``layout`` (a few lines shown in errors),
``sharpness`` (dense ground truth for boundary metrics), ``metric`` (ground truth in
metres), ``alignment`` (``"auto"``: the evaluator decides per method; ``"disparity"``:
always least squares in disparity), ``default_split``.

* ``[range]``: ``min``, ``max`` in metres (ignored when ``metric = false``).
* ``[samples]``: ``glob`` (patterns relative to the root, sorted), optional ``list`` (a
  split file relative to the root; if it exists its lines' first column replaces the
  glob), ``pattern`` (regex matched against the RGB path relative to the root, posix;
  non-matching files are skipped; its named groups are template fields), ``id`` (format
  string, default: the relative path without suffix), ``skip_missing_gt``,
  ``expected_count`` (a warning is logged when the count differs).
* ``[splits.NAME]``: overrides of ``[samples]`` keys for split ``NAME``.
* ``[gt]``: ``path`` (format string), ``decoder`` (see :data:`DECODERS`), ``kind``
  (``"depth"`` or ``"disparity"``), ``scale`` (stored units per metre, or per pixel of
  disparity), ``subsample`` (keep every n-th row/column), ``width``/``height``
  (documentation and check for ``eth3d_raw``); for disparity ``focal`` (pixels or
  ``"intrinsics"``), ``baseline`` (metres or ``"calib"``), ``doffs`` (pixels or
  ``"calib"``), or ``focal_baseline`` (pixels * metres):
  ``depth = focal * baseline / (disparity + doffs)``.
* ``[[gt.masks]]``: ``path``, ``decoder`` (``"image"`` or ``"npy"``), ``optional``; a
  non-zero value marks a pixel usable.
* ``[precrop]`` (applied to image, ground truth and ``K`` before everything else) and
  ``[crop]`` (the evaluation mask): ``kind`` = ``"pixels"`` (``top``, ``bottom``,
  ``left``, ``right``, half-open, with ``reference = [H, W]`` the size they are defined
  for), ``"fraction"`` (``int(f * size)`` of the same four) or ``"bottom_center"``
  (``height``, ``width``); ``source``.
* ``[edges]``: ``path`` of an edge map (non-zero = edge).
* ``[intrinsics]``: ``kind`` = ``"none"``, ``"constant"`` (``values = [fx, fy, cx,
  cy]``), ``"by_group"`` (``group`` and a ``table`` of values keyed by that field),
  ``"sintel_cam"``, ``"ibims_calib"``, ``"spring_txt"`` (``row_group``, ``row_offset``),
  ``"middlebury_calib"`` (all with ``path``); ``optional``; ``source``.

Template fields: the pattern's named groups plus ``path`` (RGB path relative to the
root), ``dir``, ``name``, ``stem`` and ``suffix`` of it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sharpdepth.errors import ImageReadError, MissingDependencyError
from sharpdepth.io import load_depth_png16, load_json, pil_to_array

LOGGER = logging.getLogger(__name__)

#: Environment variable of the common data folder (one sub-folder per dataset).
DATA_ROOT_ENV = "SHARPDEPTH_DATA"
#: Where the packaged descriptions live, inside this package.
DESCRIPTIONS_DIR = "descriptions"
#: Ground-truth decoders understood in ``[gt] decoder``.
DECODERS = (
    "png16",
    "kitti_png",
    "npy",
    "diode_npy",
    "unreal_disp_npy",
    "pfm",
    "dpt",
    "eth3d_raw",
    "spring_dsp5",
)
#: Values of ``source``.
SOURCES = ("files", "synth", "skimage_motorcycle")
#: Values of ``[intrinsics] kind``.
INTRINSICS_KINDS = (
    "none",
    "constant",
    "by_group",
    "sintel_cam",
    "ibims_calib",
    "spring_txt",
    "middlebury_calib",
)
_TAG_FLOAT = 202021.25  # 'PIEH' read as little-endian float32: Sintel .dpt / .cam tag
_SINTEL_MAX_PIXELS = 100_000_000


# --------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class SampleListing:
    """How to list the samples of a benchmark (``[samples]`` or a split's overrides)."""

    glob: tuple[str, ...] = ()
    list: str | None = None
    pattern: str | None = None
    id: str | None = None
    skip_missing_gt: bool = False
    expected_count: int | None = None


@dataclass(frozen=True)
class MaskSpec:
    """An extra validity mask (``[[gt.masks]]``): non-zero = usable."""

    path: str
    decoder: str = "image"
    optional: bool = False


@dataclass(frozen=True)
class GTSpec:
    """How to read and convert the ground truth (``[gt]``)."""

    path: str = ""
    decoder: str = "npy"
    kind: str = "depth"
    scale: float = 1.0
    subsample: int = 1
    width: int | None = None
    height: int | None = None
    focal: float | str | None = None
    baseline: float | str | None = None
    doffs: float | str = 0.0
    focal_baseline: float | None = None
    masks: tuple[MaskSpec, ...] = ()


@dataclass(frozen=True)
class CropSpec:
    """A crop box (``[crop]`` or ``[precrop]``)."""

    kind: str
    top: float = 0.0
    bottom: float = 0.0
    left: float = 0.0
    right: float = 0.0
    height: int = 0
    width: int = 0
    reference: tuple[int, int] | None = None
    source: str = ""


@dataclass(frozen=True)
class IntrinsicsSpec:
    """Where the intrinsics come from (``[intrinsics]``)."""

    kind: str = "none"
    values: tuple[float, ...] | None = None
    path: str | None = None
    group: str | None = None
    table: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    row_group: str | None = None
    row_offset: int = 0
    optional: bool = False
    source: str = ""


@dataclass(frozen=True)
class EdgeSpec:
    """Annotated edge maps (``[edges]``)."""

    path: str


@dataclass(frozen=True)
class BenchmarkDescription:
    """A parsed benchmark description (see the module docstring for the TOML format)."""

    name: str
    title: str
    summary: str = ""
    source: str = "files"
    aliases: tuple[str, ...] = ()
    env: str | None = None
    subdir: str | None = None
    download: str = ""
    references: tuple[str, ...] = ()
    layout: str = ""
    sharpness: bool = False
    metric: bool = True
    alignment: str = "auto"
    default_split: str | None = None
    min_depth: float = 0.0
    max_depth: float = math.inf
    samples: SampleListing = SampleListing()
    splits: Mapping[str, SampleListing] = field(default_factory=dict)
    gt: GTSpec = GTSpec()
    precrop: CropSpec | None = None
    crop: CropSpec | None = None
    intrinsics: IntrinsicsSpec = IntrinsicsSpec()
    edges: EdgeSpec | None = None
    path: Path | None = None

    def __str__(self) -> str:
        """The one-line title."""
        return self.title

    def sample_spec(self, split: str | None) -> tuple[str | None, SampleListing]:
        """The split actually used (``split`` or the default) and its sample spec.

        Raises:
            ValueError: ``split`` is not a declared split (files sources only).
        """
        if split is not None and self.source == "skimage_motorcycle":
            raise ValueError(f"benchmark {self.name!r} has a single sample and no splits")
        chosen = split if split is not None else self.default_split
        if chosen is None or self.source != "files":
            return chosen, self.samples
        if chosen not in self.splits:
            known = ", ".join(sorted(self.splits)) or "none declared"
            raise ValueError(f"benchmark {self.name!r} has no split {chosen!r} (splits: {known})")
        return chosen, self.splits[chosen]


# --------------------------------------------------------------------------------------
# Parsing descriptions
# --------------------------------------------------------------------------------------


def _build(cls: Any, data: Mapping[str, Any], where: str, **overrides: Any) -> Any:
    """Build dataclass ``cls`` from a TOML table ``data``; unknown keys raise ``ValueError``."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a table, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _parse_samples(
    table: Mapping[str, Any], where: str, base: SampleListing | None
) -> SampleListing:
    """A :class:`SampleListing` from ``table``, on top of ``base`` when given."""
    table = dict(table)
    if isinstance(table.get("glob"), str):
        table["glob"] = [table["glob"]]
    if base is not None:
        merged = dataclasses.asdict(base)
        merged.update(table)
        table = merged
    spec: SampleListing = _build(SampleListing, table, where)
    if spec.pattern is not None:
        try:
            re.compile(spec.pattern)
        except re.error as exc:
            raise ValueError(f"{where}: invalid pattern {spec.pattern!r}: {exc}") from exc
    return spec


def _parse_crop(table: Mapping[str, Any], where: str) -> CropSpec:
    """A :class:`CropSpec` from ``table``, checked."""
    spec: CropSpec = _build(CropSpec, table, where)
    if spec.kind not in ("pixels", "fraction", "bottom_center"):
        raise ValueError(f"{where}: kind must be pixels, fraction or bottom_center")
    if spec.kind == "bottom_center" and (spec.height < 1 or spec.width < 1):
        raise ValueError(f"{where}: bottom_center needs positive height and width")
    if spec.kind != "bottom_center" and not (
        spec.top < spec.bottom and spec.left < spec.right and spec.top >= 0 and spec.left >= 0
    ):
        raise ValueError(f"{where}: need 0 <= top < bottom and 0 <= left < right")
    if spec.kind == "fraction" and (spec.bottom > 1 or spec.right > 1):
        raise ValueError(f"{where}: fractions must lie in [0, 1]")
    if spec.reference is not None and len(spec.reference) != 2:
        raise ValueError(f"{where}: reference must be [height, width]")
    return spec


def _parse_gt(table: Mapping[str, Any], where: str) -> GTSpec:
    """A :class:`GTSpec` from ``table``, checked."""
    masks = tuple(
        _build(MaskSpec, m, f"{where}.masks[{i}]") for i, m in enumerate(table.get("masks", []))
    )
    spec: GTSpec = _build(GTSpec, table, where, masks=masks)
    if spec.decoder not in DECODERS:
        raise ValueError(f"{where}: unknown decoder {spec.decoder!r}; known: {', '.join(DECODERS)}")
    if spec.kind not in ("depth", "disparity"):
        raise ValueError(f"{where}: kind must be 'depth' or 'disparity', got {spec.kind!r}")
    if not (math.isfinite(spec.scale) and spec.scale > 0):
        raise ValueError(f"{where}: scale must be positive")
    if spec.subsample < 1:
        raise ValueError(f"{where}: subsample must be >= 1")
    for mask in spec.masks:
        if mask.decoder not in ("image", "npy"):
            raise ValueError(f"{where}.masks: decoder must be 'image' or 'npy'")
    if isinstance(spec.focal, str) and spec.focal != "intrinsics":
        raise ValueError(f"{where}: focal must be a number or 'intrinsics'")
    for key in ("baseline", "doffs"):
        value = getattr(spec, key)
        if isinstance(value, str) and value != "calib":
            raise ValueError(f"{where}: {key} must be a number or 'calib'")
    return spec


def _has_conversion(gt: GTSpec) -> bool:
    """Whether a disparity ground truth can be converted to metric depth."""
    return gt.focal_baseline is not None or (gt.focal is not None and gt.baseline is not None)


def _parse_intrinsics(table: Mapping[str, Any], where: str) -> IntrinsicsSpec:
    """An :class:`IntrinsicsSpec` from ``table``, checked."""
    table = dict(table)
    raw_table = table.pop("table", {})
    entries = {str(k): tuple(float(x) for x in v) for k, v in raw_table.items()}
    spec: IntrinsicsSpec = _build(IntrinsicsSpec, table, where, table=entries)
    if spec.kind not in INTRINSICS_KINDS:
        raise ValueError(f"{where}: unknown kind {spec.kind!r}; known: {INTRINSICS_KINDS}")
    if spec.kind == "constant" and (spec.values is None or len(spec.values) != 4):
        raise ValueError(f"{where}: constant intrinsics need values = [fx, fy, cx, cy]")
    if spec.kind == "by_group" and (spec.group is None or not spec.table):
        raise ValueError(f"{where}: by_group intrinsics need 'group' and a 'table'")
    if any(len(v) != 4 for v in spec.table.values()):
        raise ValueError(f"{where}: table values must be [fx, fy, cx, cy]")
    file_kinds = ("sintel_cam", "ibims_calib", "spring_txt", "middlebury_calib")
    if spec.kind in file_kinds and not spec.path:
        raise ValueError(f"{where}: {spec.kind} intrinsics need a 'path'")
    if spec.kind == "spring_txt" and spec.row_group is None:
        raise ValueError(f"{where}: spring_txt intrinsics need 'row_group'")
    return spec


_SIMPLE_TYPES: dict[str, type] = {
    "name": str,
    "title": str,
    "summary": str,
    "source": str,
    "aliases": tuple,
    "env": str,
    "subdir": str,
    "download": str,
    "references": tuple,
    "layout": str,
    "sharpness": bool,
    "metric": bool,
    "alignment": str,
    "default_split": str,
}
_TOP_LEVEL = frozenset(
    {f.name for f in dataclasses.fields(BenchmarkDescription)} - {"min_depth", "max_depth", "path"}
    | {"range"}
)


def parse_description(data: Mapping[str, Any], path: Path | None = None) -> BenchmarkDescription:
    """Check a parsed TOML description and build a :class:`BenchmarkDescription`.

    Args:
        data: the TOML document as a dict.
        path: the file it came from (for messages).

    Raises:
        ValueError: a missing or unknown key, or an inconsistent setting; the message
            names the file and the key.
    """
    where = str(path) if path is not None else "description"
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}")
    for key in ("name", "title"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{where}: missing '{key}'")
    source = data.get("source", "files")
    if source not in SOURCES:
        raise ValueError(f"{where}: source must be one of {SOURCES}, got {source!r}")
    samples = _parse_samples(data.get("samples", {}), f"{where} [samples]", None)
    splits = {
        str(name): _parse_samples(table, f"{where} [splits.{name}]", samples)
        for name, table in data.get("splits", {}).items()
    }
    gt = _parse_gt(data.get("gt", {}), f"{where} [gt]")
    rng = data.get("range", {})
    if set(rng) - {"min", "max"}:
        raise ValueError(f"{where} [range]: only 'min' and 'max' are allowed")
    min_depth, max_depth = float(rng.get("min", 0.0)), float(rng.get("max", math.inf))
    if not (0 <= min_depth < max_depth):
        raise ValueError(f"{where} [range]: need 0 <= min < max")
    simple: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in data.items()
        if k not in ("samples", "splits", "gt", "range", "crop", "precrop", "intrinsics", "edges")
    }
    for key, value in simple.items():
        expected = _SIMPLE_TYPES[key]
        strings = not isinstance(value, tuple) or all(isinstance(v, str) for v in value)
        if not isinstance(value, expected) or not strings:
            kind = "a list of strings" if expected is tuple else expected.__name__
            raise ValueError(f"{where}: '{key}' must be {kind}, got {value!r}")
    desc = BenchmarkDescription(
        **simple,
        min_depth=min_depth,
        max_depth=max_depth,
        samples=samples,
        splits=splits,
        gt=gt,
        crop=_parse_crop(data["crop"], f"{where} [crop]") if "crop" in data else None,
        precrop=_parse_crop(data["precrop"], f"{where} [precrop]") if "precrop" in data else None,
        intrinsics=_parse_intrinsics(data.get("intrinsics", {}), f"{where} [intrinsics]"),
        edges=_build(EdgeSpec, data["edges"], f"{where} [edges]") if "edges" in data else None,
        path=path,
    )
    _check_description(desc, where)
    return desc


def _check_description(desc: BenchmarkDescription, where: str) -> None:
    """Cross-field checks of a description."""
    if desc.alignment not in ("auto", "disparity"):
        raise ValueError(f"{where}: alignment must be 'auto' or 'disparity'")
    if desc.source == "files":
        if not desc.gt.path:
            raise ValueError(f"{where} [gt]: 'path' is required for file benchmarks")
        if not desc.samples.glob and not desc.samples.list:
            raise ValueError(f"{where} [samples]: 'glob' or 'list' is required")
        if desc.precrop is not None and desc.precrop.kind != "bottom_center":
            raise ValueError(f"{where} [precrop]: only kind = 'bottom_center' is supported")
    if desc.gt.kind == "disparity" and desc.metric and not _has_conversion(desc.gt):
        raise ValueError(
            f"{where}: metric disparity ground truth needs [gt] focal + baseline or "
            "focal_baseline (or set metric = false)"
        )
    has_split = desc.default_split is None or desc.default_split in desc.splits
    if desc.source == "files" and not has_split:
        raise ValueError(f"{where}: default_split {desc.default_split!r} is not in [splits]")


def load_description(path: str | Path) -> BenchmarkDescription:
    """Read and check a description file (TOML).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid TOML or not a valid description.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    return parse_description(data, path)


def _packaged_descriptions() -> dict[str, BenchmarkDescription]:
    """Every packaged description by name."""
    folder = resources.files("sharpdepth.benchmarks").joinpath(DESCRIPTIONS_DIR)
    out: dict[str, BenchmarkDescription] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        try:
            data = tomllib.loads(item.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"packaged description {item.name}: not valid TOML ({exc})") from exc
        desc = parse_description(data, Path(str(item)))
        out[desc.name] = desc
    return out


def list_benchmarks() -> list[str]:
    """Names of the packaged benchmarks, sorted."""
    return sorted(_packaged_descriptions())


def get_description(name_or_path: str | Path) -> BenchmarkDescription:
    """The description of a packaged benchmark (name or alias, case-insensitive) or a file.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    candidate = Path(name_or_path)
    if candidate.suffix.lower() == ".toml" or candidate.is_file():
        return load_description(candidate)
    key = str(name_or_path).strip().lower()
    packaged = _packaged_descriptions()
    for desc in packaged.values():
        if key == desc.name.lower() or key in (a.lower() for a in desc.aliases):
            return desc
    raise ValueError(
        f"unknown benchmark {name_or_path!r}; known: {', '.join(sorted(packaged))} "
        "(or pass the path of a .toml description)"
    )


# --------------------------------------------------------------------------------------
# Locating the data
# --------------------------------------------------------------------------------------


def _missing_message(desc: BenchmarkDescription, tried: Sequence[str], problem: str) -> str:
    """The message of a missing-dataset error: what to set and the expected layout."""
    sub = desc.subdir or desc.name
    hints = []
    if desc.env:
        hints.append(f"{desc.env}=/path/to/{sub}")
    hints.append(f"{DATA_ROOT_ENV}=/path/to/datasets (holding {sub}/)")
    hints.append("pass --data-root (root=...)")
    lines = [
        f"benchmark {desc.name!r} ({desc.title}): {problem}.",
        f"Tried: {'; '.join(tried)}." if tried else "",
        f"Set {' or '.join(hints)}.",
        "Expected layout:",
        *("    " + line for line in desc.layout.strip().splitlines()),
    ]
    if desc.download:
        lines.append(f"Download: {desc.download}")
    return "\n".join(line for line in lines if line)


def resolve_root(desc: BenchmarkDescription, root: str | Path | None = None) -> Path:
    """The data folder of a benchmark (see the module docstring for the search order).

    Args:
        desc: the benchmark description.
        root: explicit folder (the dataset itself, or a folder holding ``desc.subdir``).

    Returns:
        An existing folder.

    Raises:
        FileNotFoundError: no folder found; the message says what to set and shows the
            expected layout.
    """
    sub = desc.subdir or desc.name
    tried: list[str] = []
    if root is not None:
        base = Path(root).expanduser()
        if (base / sub).is_dir():
            return base / sub
        if base.is_dir():
            return base
        raise FileNotFoundError(
            _missing_message(desc, [f"--data-root/root={base}: no such folder"], "not found")
        )
    if desc.env:
        value = os.environ.get(desc.env)
        if value:
            path = Path(value).expanduser()
            if path.is_dir():
                return path
            tried.append(f"${desc.env}={value}: no such folder")
        else:
            tried.append(f"${desc.env}: not set")
    value = os.environ.get(DATA_ROOT_ENV)
    if value:
        path = Path(value).expanduser() / sub
        if path.is_dir():
            return path
        tried.append(f"${DATA_ROOT_ENV}/{sub}={path}: no such folder")
    else:
        tried.append(f"${DATA_ROOT_ENV}: not set")
    tried.append("--data-root: not given")
    raise FileNotFoundError(_missing_message(desc, tried, "dataset folder not found"))


# --------------------------------------------------------------------------------------
# Listing samples
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """One listed sample: its id, RGB path and template fields."""

    id: str
    rgb: Path | None
    fields: Mapping[str, str]


def _fields_of(rel: str, match: re.Match[str] | None) -> dict[str, str]:
    """Template fields of an RGB path relative to the root (posix)."""
    pure = Path(rel)
    fields = {
        "path": rel,
        "dir": pure.parent.as_posix() if pure.parent != Path(".") else "",
        "name": pure.name,
        "stem": pure.stem,
        "suffix": pure.suffix,
    }
    if match is not None:
        fields.update({k: (v if v is not None else "") for k, v in match.groupdict().items()})
    return fields


def _fill(template: str, fields: Mapping[str, str], what: str) -> str:
    """``template.format_map(fields)`` with a clear error for an unknown field."""
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{what} template {template!r}: cannot fill ({exc}); fields: {sorted(fields)}"
        ) from exc


def _relative_paths(root: Path, spec: SampleListing) -> tuple[list[str], bool]:
    """RGB paths relative to ``root`` (posix, sorted) and whether they come from a list."""
    if spec.list and (root / spec.list).is_file():
        rels = []
        for line in (root / spec.list).read_text(encoding="utf-8").splitlines():
            words = line.split()
            if words and not words[0].startswith("#"):
                rels.append(words[0])
        LOGGER.info("%s: %d samples listed in %s", root, len(rels), spec.list)
        return rels, True
    found: set[str] = set()
    for pattern in spec.glob:
        for path in root.glob(pattern):
            rel = path.relative_to(root).as_posix()
            if not any(part.startswith(".") for part in Path(rel).parts) and path.is_file():
                found.add(rel)
    return sorted(found), False


def _list_file_entries(
    desc: BenchmarkDescription, spec: SampleListing, root: Path
) -> tuple[list[_Entry], int]:
    """Entries of a file benchmark and the number skipped for missing ground truth."""
    rels, from_list = _relative_paths(root, spec)
    regex = re.compile(spec.pattern) if spec.pattern else None
    entries: list[_Entry] = []
    missing: list[Path] = []
    seen: dict[str, str] = {}
    for rel in rels:
        match = regex.fullmatch(rel) if regex is not None else None
        if regex is not None and match is None:
            if from_list:
                raise ValueError(
                    f"{root / str(spec.list)}: entry {rel!r} does not match {spec.pattern!r}"
                )
            continue
        if from_list and not (root / rel).is_file():
            raise FileNotFoundError(
                _missing_message(desc, [], f"{root / rel} (listed in {spec.list}) is missing")
            )
        fields = _fields_of(rel, match)
        sample_id = _fill(spec.id, fields, "id") if spec.id else str(Path(rel).with_suffix(""))
        if sample_id in seen:
            raise ValueError(
                f"benchmark {desc.name!r}: samples {seen[sample_id]} and {rel} share the id "
                f"{sample_id!r}; make [samples] id unique"
            )
        seen[sample_id] = rel
        gt_path = root / _fill(desc.gt.path, fields, "gt.path")
        if not gt_path.is_file():
            missing.append(gt_path)
            if spec.skip_missing_gt:
                continue
        entries.append(_Entry(sample_id, root / rel, fields))
    if missing and not spec.skip_missing_gt:
        raise FileNotFoundError(
            _missing_message(
                desc,
                [],
                f"{len(missing)} of {len(rels)} samples under {root} lack ground truth "
                f"(first: {missing[0]})",
            )
        )
    return entries, len(missing)


def _list_synth_entries(desc: BenchmarkDescription, root: Path, split: str) -> list[_Entry]:
    """Entries of one split of a synthetic folder (``index.json``)."""
    from sharpdepth.synth.sample import INDEX_FILE

    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise FileNotFoundError(
            _missing_message(desc, [f"{root}: no {INDEX_FILE}"], "not a synthetic dataset folder")
        )
    index = load_json(index_path)
    if not isinstance(index, dict) or not isinstance(index.get("samples"), list):
        raise ValueError(f"{index_path}: no 'samples' list")
    entries = [
        _Entry(str(e["id"]), None, {"split": split, "style": str(e.get("style", ""))})
        for e in index["samples"]
        if isinstance(e, dict) and e.get("split") == split and "id" in e
    ]
    if not entries:
        counts: dict[str, int] = {}
        for e in index["samples"]:
            counts[str(e.get("split"))] = counts.get(str(e.get("split")), 0) + 1
        listed = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
        raise ValueError(
            f"{index_path}: split {split!r} has no samples (samples per split: {listed})"
        )
    return entries


# --------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------


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


def _read_mask(mask: MaskSpec, path: Path) -> np.ndarray:
    """A mask file as ``bool [H, W]`` (non-zero = True)."""
    if mask.decoder == "npy":
        return _read_npy_2d(path) != 0
    with Image.open(path) as image:
        image.load()
        data = np.asarray(image)
    if data.ndim == 3:
        data = data[..., :3].max(axis=-1)
    return data != 0


# --------------------------------------------------------------------------------------
# Intrinsics
# --------------------------------------------------------------------------------------


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


def _intrinsics(
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
    path = root / _fill(str(spec.path), fields, "intrinsics.path")
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


# --------------------------------------------------------------------------------------
# Assembling a sample
# --------------------------------------------------------------------------------------


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
        if _has_conversion(desc.gt):
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
    desc: BenchmarkDescription, root: Path, entry: _Entry, split: str | None
) -> EvalSample:
    """Read one sample of a ``files`` benchmark."""
    assert entry.rgb is not None
    rgb = read_rgb(entry.rgb)
    shape = (rgb.shape[0], rgb.shape[1])
    gt_path = root / _fill(desc.gt.path, entry.fields, "gt.path")
    stored = decode_gt(desc.gt, gt_path, shape)
    step = desc.gt.subsample
    if step > 1:
        stored = stored[::step, ::step]
    _check_shape(stored, shape, "ground truth", gt_path)
    K, calib = _intrinsics(desc.intrinsics, root, entry.fields)  # noqa: N806
    masks = []
    for spec in desc.gt.masks:
        path = root / _fill(spec.path, entry.fields, "mask path")
        if not path.is_file():
            if spec.optional:
                continue
            raise FileNotFoundError(f"{path}: mask file missing")
        mask = _read_mask(spec, path)
        _check_shape(mask, shape, "mask", path)
        masks.append(mask)
    edges = None
    if desc.edges is not None:
        path = root / _fill(desc.edges.path, entry.fields, "edges.path")
        edges = _read_mask(MaskSpec(path=str(path)), path)
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
    desc: BenchmarkDescription, root: Path, entry: _Entry, split: str
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
    K, calib = _intrinsics(desc.intrinsics, Path("."), {})  # noqa: N806
    meta: dict[str, Any] = {
        "benchmark": desc.name,
        "split": None,
        "rgb_path": "skimage.data.stereo_motorcycle()[0]",
        "gt_path": "skimage.data.stereo_motorcycle()[2]",
    }
    return _assemble(desc, "motorcycle", rgb, stored, K, calib, [], None, meta)


# --------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------


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
        entries: Sequence[_Entry],
    ) -> None:
        self.description = description
        self.root = root
        self.split = split
        self._entries = list(entries)
        self._reader: Callable[[_Entry], EvalSample] = self._make_reader()

    def _make_reader(self) -> Callable[[_Entry], EvalSample]:
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
        entries = [_Entry("motorcycle", None, {})]
    else:
        data_root = resolve_root(desc, root)
        if desc.source == "synth":
            chosen = chosen or "test"
            entries = _list_synth_entries(desc, data_root, chosen)
        else:
            entries, skipped = _list_file_entries(desc, spec, data_root)
            if not entries:
                globs = ", ".join(spec.glob) or str(spec.list)
                raise FileNotFoundError(
                    _missing_message(desc, [], f"no samples matching {globs} under {data_root}")
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
