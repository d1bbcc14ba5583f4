"""Helpers shared by the nano experiment scripts."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def scoring_parser() -> argparse.ArgumentParser:
    """Arguments of the scoring scripts: models, ``--data``, ``--split``, ``--n``."""
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--n", type=int, default=60)
    return p


def summary(
    rows: Sequence[dict[str, float]], items: Sequence[dict[str, Any]], keys: Sequence[str]
) -> dict[str, float]:
    """Means of ``keys`` over the rows (NaN ignored), plus the AbsRel of each style.

    Args:
        rows: one metrics dict per sample.
        items: the samples (dataset items with a ``"style"``), in the same order.
        keys: metric names to average (those missing from the rows are skipped).
    """
    mean = {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in keys if k in rows[0]}
    for style in sorted({item["style"] for item in items}):
        chosen = [r for r, it in zip(rows, items, strict=True) if it["style"] == style]
        mean[f"{style}_abs_rel"] = round(float(np.mean([r["abs_rel"] for r in chosen])), 4)
    return mean
