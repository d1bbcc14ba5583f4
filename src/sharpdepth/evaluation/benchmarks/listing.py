"""Finding a benchmark's data folder and listing its samples.

Where a benchmark's data are looked for
---------------------------------------
1. ``root`` (the CLI's ``--data-root``): the dataset folder itself, or a folder holding it
   under the description's ``subdir``;
2. the dataset's own environment variable (``env``, e.g. ``SHARPDEPTH_NYUV2``);
3. ``$SHARPDEPTH_DATA/<subdir>``.

A missing folder raises :class:`FileNotFoundError` naming these and the expected layout.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sharpdepth.evaluation.benchmarks.description import (
    BenchmarkDescription,
    SampleListing,
    fill_template,
)
from sharpdepth.io import load_json

LOGGER = logging.getLogger(__name__)

#: Environment variable of the common data folder (one sub-folder per dataset).
DATA_ROOT_ENV = "SHARPDEPTH_DATA"


def missing_message(desc: BenchmarkDescription, tried: Sequence[str], problem: str) -> str:
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
            missing_message(desc, [f"--data-root/root={base}: no such folder"], "not found")
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
    raise FileNotFoundError(missing_message(desc, tried, "dataset folder not found"))


@dataclass(frozen=True)
class Entry:
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


def list_file_entries(
    desc: BenchmarkDescription, spec: SampleListing, root: Path
) -> tuple[list[Entry], int]:
    """Entries of a file benchmark and the number skipped for missing ground truth."""
    rels, from_list = _relative_paths(root, spec)
    regex = re.compile(spec.pattern) if spec.pattern else None
    entries: list[Entry] = []
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
                missing_message(desc, [], f"{root / rel} (listed in {spec.list}) is missing")
            )
        fields = _fields_of(rel, match)
        sample_id = (
            fill_template(spec.id, fields, "id") if spec.id else str(Path(rel).with_suffix(""))
        )
        if sample_id in seen:
            raise ValueError(
                f"benchmark {desc.name!r}: samples {seen[sample_id]} and {rel} share the id "
                f"{sample_id!r}; make [samples] id unique"
            )
        seen[sample_id] = rel
        gt_path = root / fill_template(desc.gt.path, fields, "gt.path")
        if not gt_path.is_file():
            missing.append(gt_path)
            if spec.skip_missing_gt:
                continue
        entries.append(Entry(sample_id, root / rel, fields))
    if missing and not spec.skip_missing_gt:
        raise FileNotFoundError(
            missing_message(
                desc,
                [],
                f"{len(missing)} of {len(rels)} samples under {root} lack ground truth "
                f"(first: {missing[0]})",
            )
        )
    return entries, len(missing)


def list_synth_entries(desc: BenchmarkDescription, root: Path, split: str) -> list[Entry]:
    """Entries of one split of a synthetic folder (``index.json``)."""
    from sharpdepth.synth.sample import INDEX_FILE

    index_path = root / INDEX_FILE
    if not index_path.is_file():
        raise FileNotFoundError(
            missing_message(desc, [f"{root}: no {INDEX_FILE}"], "not a synthetic dataset folder")
        )
    index = load_json(index_path)
    if not isinstance(index, dict) or not isinstance(index.get("samples"), list):
        raise ValueError(f"{index_path}: no 'samples' list")
    entries = [
        Entry(str(e["id"]), None, {"split": split, "style": str(e.get("style", ""))})
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
