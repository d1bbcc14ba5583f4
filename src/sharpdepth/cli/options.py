"""The one validation layer for command-line options: argparse types that refuse bad values.

Each type turns the option's text into a value or raises ``argparse.ArgumentTypeError``,
which argparse reports as ``sharpdepth predict: error: argument --fov: ...`` and exit
code 2, before any model is loaded or any file written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from sharpdepth.image_ops import MAX_PROCESSING_RESOLUTION

#: Seeds torch accepts: a signed or unsigned 64-bit integer.
SEED_RANGE = (-(2**63), 2**64 - 1)


def _number(text: str) -> float:
    """``text`` as a finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    """``text`` as an int."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def finite_float(text: str) -> float:
    """A finite number (e.g. a principal point coordinate)."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number above 0 (e.g. a focal length in pixels)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def fov_degrees(text: str) -> float:
    """A field of view in degrees, strictly between 0 and 180."""
    value = _number(text)
    if not 0 < value < 180:
        raise argparse.ArgumentTypeError(
            f"must be a field of view strictly between 0 and 180 degrees, got {text}"
        )
    return value


def unit_threshold(text: str) -> float:
    """A threshold in ``(0, 1]``."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def processing_resolution(text: str) -> int:
    """A processing resolution: 0 (native) up to :data:`MAX_PROCESSING_RESOLUTION`."""
    value = _integer(text)
    if not 0 <= value <= MAX_PROCESSING_RESOLUTION:
        raise argparse.ArgumentTypeError(
            f"must be 0 (native) to {MAX_PROCESSING_RESOLUTION} pixels, got {text}"
        )
    return value


def seed(text: str) -> int:
    """A noise seed torch accepts (a 64-bit integer)."""
    value = _integer(text)
    low, high = SEED_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be a 64-bit integer, got {text}")
    return value


class IntrinsicsAction(argparse.Action):
    """``--intrinsics FX FY CX CY``: finite numbers with positive focal lengths."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Store the four values, or stop with a usage error if a focal length is not positive."""
        fx, fy, cx, cy = (float(v) for v in values or ())
        if fx <= 0 or fy <= 0:
            parser.error(f"argument {option_string}: FX and FY must be positive, got {fx}, {fy}")
        setattr(namespace, self.dest, [fx, fy, cx, cy])
