"""The one validation layer for weight files: checked before any library reads them.

A checkpoint or metric model folder may come from anywhere, so its weight files are
untrusted input. :func:`check_safetensors` reads only a safetensors file's header and
checks its structure against the file (header length, JSON, dtypes, shapes, byte
ranges), so a truncated, random, empty or inconsistent file is refused with a one-line
:class:`~sharpdepth.errors.CheckpointError` naming it, before safetensors, diffusers or
transformers allocate anything from its numbers. :func:`loading_errors` turns whatever
those libraries raise on the rest (e.g. weights that do not fit the configuration) into
the same one-line error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sharpdepth.errors import CheckpointError, SharpDepthError, one_line

LOGGER = logging.getLogger(__name__)

#: Bytes per element of each safetensors dtype.
SAFETENSORS_DTYPE_BYTES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}
#: Largest safetensors header accepted (the safetensors library's own limit).
MAX_HEADER_BYTES = 100_000_000
#: Largest JSON configuration file accepted, bytes.
MAX_JSON_BYTES = 64 * 2**20


def _loader_errors() -> tuple[type[BaseException], ...]:
    """What libraries raise on a bad weight or configuration file."""
    errors: list[type[BaseException]] = [
        OSError,
        ValueError,
        KeyError,
        TypeError,
        RuntimeError,
        EOFError,
        IndexError,
        AttributeError,
        ArithmeticError,
        MemoryError,
    ]
    try:
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors is a dependency
        pass
    return tuple(errors)


@contextmanager
def loading_errors(what: str, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Turn what a library raises while loading ``what`` into a one-line ``CheckpointError``.

    Args:
        what: names the folder or file, e.g. ``"checkpoint 'ckpt'"``; starts the message.
        keep: exception types re-raised unchanged (e.g. ``OSError`` when the caller
            reports a failed download itself).

    Our own :class:`~sharpdepth.errors.CheckpointError` passes through, put on one line.
    """
    try:
        yield
    except keep:
        raise
    except CheckpointError as exc:
        if "\n" not in str(exc):
            raise
        raise CheckpointError(f"{what}: {_describe(exc)}") from exc
    except SharpDepthError:
        raise
    except _loader_errors() as exc:
        raise CheckpointError(f"{what}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """A one-line reason for a library's loading error."""
    if isinstance(exc, MemoryError):
        return "too large to load into memory"
    raw = str(exc)
    mismatch = re.search(r"size mismatch for [^\n]*", raw)
    if mismatch is None and "expected shape" in raw:
        mismatch = re.search(r"[^\n]*?expected shape[^\n]*?(?:\.\s|$)", raw)
    if mismatch is not None:
        detail = one_line(ValueError(mismatch.group(0).strip().rstrip(".")))
        return f"the weights do not match the configuration ({detail})"
    return one_line(exc)


def check_safetensors(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a safetensors file's structure without reading its tensors.

    Returns:
        The header: tensor name -> ``{"dtype", "shape", "data_offsets"}`` (and
        ``"__metadata__"`` if present).

    Raises:
        CheckpointError: unreadable, too short, random bytes, a header whose tensors do not
            fit the file (truncated, padded, overlapping) or whose shapes do not match
            their bytes; the message names the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little") if size >= 8 else 0
            raw = handle.read(length) if 2 <= length <= min(MAX_HEADER_BYTES, size - 8) else b""
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the weights ({exc.strerror or exc})") from exc
    if size < 8:
        raise CheckpointError(f"{path}: {size} bytes, too short to be a safetensors weight file")
    if not raw and 2 <= length <= MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: truncated: its header alone needs {length} bytes, the file has {size - 8}"
        )
    if not raw:
        raise CheckpointError(
            f"{path}: not a safetensors weight file (its header length {length} does not fit "
            f"a file of {size} bytes)"
        )
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a safetensors weight file (unreadable header)") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors weight file (header is not an object)")
    spans = sorted(
        _tensor_span(path, name, info) for name, info in header.items() if name != "__metadata__"
    )
    _check_spans(path, spans, size - 8 - length)
    return header


def _tensor_span(path: Path, name: str, info: Any) -> tuple[int, int, str]:
    """``(begin, end, name)`` of one header entry, checked for dtype, shape and size."""
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: tensor {name!r} has no dtype, shape and offsets")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPE_BYTES:
        raise CheckpointError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise CheckpointError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise CheckpointError(f"{path}: tensor {name!r} has invalid data offsets {offsets!r}")
    begin, end = offsets
    expected = math.prod(shape) * SAFETENSORS_DTYPE_BYTES[dtype]
    if end - begin != expected:
        raise CheckpointError(
            f"{path}: tensor {name!r} of shape {shape} needs {expected} bytes, its header "
            f"gives {end - begin}"
        )
    return begin, end, name


def _is_count(value: Any) -> bool:
    """A non-negative ``int`` (not a ``bool``)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_spans(path: Path, spans: list[tuple[int, int, str]], data_bytes: int) -> None:
    """The tensors' byte ranges must tile the data exactly, as safetensors requires."""
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise CheckpointError(f"{path}: tensor {name!r} overlaps or leaves a gap in the data")
        position = end
    if position > data_bytes:
        raise CheckpointError(
            f"{path}: truncated: its header needs {position} bytes of data, the file has "
            f"{data_bytes}"
        )
    if position < data_bytes:
        raise CheckpointError(
            f"{path}: {data_bytes - position} bytes after the last tensor (not a consistent "
            "safetensors file)"
        )


def check_weight_folder(folder: str | os.PathLike[str]) -> list[Path]:
    """:func:`check_safetensors` on every ``*.safetensors`` file directly in ``folder``.

    Returns:
        The files checked, sorted.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    for path in files:
        check_safetensors(path)
    return files


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON configuration file that must hold an object.

    Raises:
        CheckpointError: unreadable, larger than :data:`MAX_JSON_BYTES`, not JSON or
            not an object; the message names the file.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path}: too large for a configuration file")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data
