"""The nano family's results table (README, docs/nano.md, model cards) from eval folders.

Each benchmark needs two ``sharpdepth eval`` runs: one of the sharpener (the default
``nano`` checkpoint), which gives the SharpDepth, metric-model and guided-filter rows,
and one with ``--checkpoint`` the nano prior, whose ``prior`` row is the prior itself
(in an eval of the sharpener that row is the sharpener's own single pass, which plays
the prior at inference):

    python experiments/nano/family_table.py \
        "synth test=runs/eval/ship-test,runs/eval/ship-test-prior" \
        "synth zeroshot (forest)=runs/eval/ship-zeroshot,runs/eval/ship-zeroshot-prior"
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from targets import load

#: (row label, which eval folder, method name in its results.json)
ROWS = (
    ("nano metric model", 0, "metric"),
    ("nano SharpDepth", 0, "sharpdepth"),
    ("nano prior, aligned to ground truth", 1, "prior"),
    ("nano prior, aligned to the metric model", 1, "prior-metric-aligned"),
    ("guided filter on the metric depth", 0, "guided-filter"),
)
COLUMNS = (
    ("AbsRel", "abs_rel", 3),
    ("delta1", "delta1", 3),
    ("PDBE acc", "pdbe_acc", 2),
    ("PDBE comp", "pdbe_comp", 1),
    ("boundary F1", "boundary_f1", 4),
)


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def table(benchmarks: list[tuple[str, Path, Path]]) -> str:
    """Markdown table: one row per (benchmark, method)."""
    head = ["benchmark", "method", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for label, sharpener_dir, prior_dir in benchmarks:
        sources = (load(sharpener_dir)[1], load(prior_dir)[1])
        for name, source, method in ROWS:
            values = sources[source].get(method)
            if values is None:
                continue
            cells = [_cell(values.get(key), digits) for _, key, digits in COLUMNS]
            lines.append("| " + " | ".join([label, name, *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "benchmarks", nargs="+", help='"LABEL=SHARPENER_EVAL_DIR,PRIOR_EVAL_DIR", one per benchmark'
    )
    args = p.parse_args()
    parsed = []
    for item in args.benchmarks:
        label, _, dirs = item.partition("=")
        sharpener_dir, _, prior_dir = dirs.partition(",")
        if not label or not sharpener_dir or not prior_dir:
            p.error(f"expected LABEL=SHARPENER_DIR,PRIOR_DIR, got {item!r}")
        parsed.append((label, Path(sharpener_dir), Path(prior_dir)))
    print(table(parsed))


if __name__ == "__main__":
    main()
