"""Benchmark descriptions: the TOML format, its parser and the packaged descriptions.

A benchmark is described by a TOML file (the packaged ones live in
``sharpdepth/evaluation/benchmarks/descriptions/``; any other file can be passed by path),
never by code per dataset.

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
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

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


def fill_template(template: str, fields: Mapping[str, str], what: str) -> str:
    """``template.format_map(fields)`` with a clear error for an unknown field."""
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{what} template {template!r}: cannot fill ({exc}); fields: {sorted(fields)}"
        ) from exc


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


def has_conversion(gt: GTSpec) -> bool:
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
    if desc.gt.kind == "disparity" and desc.metric and not has_conversion(desc.gt):
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
    folder = resources.files("sharpdepth.evaluation.benchmarks").joinpath(DESCRIPTIONS_DIR)
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
