"""The nano family's targets, checked against `sharpdepth eval` results.

Reads the ``results.json`` that ``sharpdepth eval -o DIR`` writes for the test split
(and optionally the zero-shot split and Motorcycle), prints one markdown table per
result and one line per target with its figure and PASS / MISS.

    sharpdepth eval --benchmark synth --data-root data/nano-synth --split test \
        --use-intrinsics -o runs/eval/test
    python experiments/nano/targets.py runs/eval/test [runs/eval/zeroshot runs/eval/moto] \
        [--prior-eval runs/eval/test-prior]

The targets (docs/nano.md) compare four rows: ``metric`` (the metric model),
``prior`` (the prior aligned to ground truth), ``sharpdepth`` and ``guided-filter``
(the metric depth filtered with the image as guide). In an eval of a sharpener the
``prior`` row is the sharpener's own single pass (it plays the prior at inference);
``--prior-eval`` names an eval run with ``--checkpoint`` the prior itself, whose
``prior`` row then replaces it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("abs_rel", "delta1", "pdbe_acc", "pdbe_comp", "boundary_f1")
ROWS = ("metric", "prior", "sharpdepth", "guided-filter")


def load(folder: Path) -> tuple[str, dict[str, dict[str, float]]]:
    """Title and per-method metrics of one ``sharpdepth eval`` output folder."""
    data = json.loads((folder / "results.json").read_text())
    return data["title"], data["methods"]


def table(title: str, methods: dict[str, dict[str, float]]) -> str:
    """Markdown table of the rows and columns the targets use."""
    lines = [f"**{title}**", "", "| method | " + " | ".join(COLUMNS) + " |"]
    lines.append("| --- " * (len(COLUMNS) + 1) + "|")
    for row in ROWS:
        if row in methods:
            values = (methods[row].get(c, float("nan")) for c in COLUMNS)
            lines.append(f"| {row} | " + " | ".join(f"{v:.4g}" for v in values) + " |")
    return "\n".join(lines)


def targets(m: dict[str, dict[str, float]]) -> list[tuple[str, float, str, bool]]:
    """Each target of the test split: (name, measured, required, met)."""
    f, p, s, g = (m[k] for k in ROWS)
    checks = [
        ("metric AbsRel", f["abs_rel"], "<= 0.15", f["abs_rel"] <= 0.15),
        ("metric delta1", f["delta1"], ">= 0.80", f["delta1"] >= 0.80),
        ("prior AbsRel (aligned)", p["abs_rel"], "<= 0.10", p["abs_rel"] <= 0.10),
        ("prior boundary F1", p["boundary_f1"], ">= 0.10", p["boundary_f1"] >= 0.10),
        (
            "prior PDBE acc / metric's",
            p["pdbe_acc"] / f["pdbe_acc"],
            "<= 0.6",
            p["pdbe_acc"] <= 0.6 * f["pdbe_acc"],
        ),
        (
            "SharpDepth AbsRel / metric's",
            s["abs_rel"] / f["abs_rel"],
            "<= 1.05",
            s["abs_rel"] <= 1.05 * f["abs_rel"],
        ),
        (
            "SharpDepth delta1 - metric's (points)",
            100 * (s["delta1"] - f["delta1"]),
            ">= -1",
            s["delta1"] >= f["delta1"] - 0.01,
        ),
        (
            "SharpDepth PDBE acc / metric's",
            s["pdbe_acc"] / f["pdbe_acc"],
            "<= 0.7",
            s["pdbe_acc"] <= 0.7 * f["pdbe_acc"],
        ),
        (
            "SharpDepth PDBE comp / metric's",
            s["pdbe_comp"] / f["pdbe_comp"],
            "<= 0.6",
            s["pdbe_comp"] <= 0.6 * f["pdbe_comp"],
        ),
        ("SharpDepth boundary F1", s["boundary_f1"], ">= 0.08", s["boundary_f1"] >= 0.08),
        (
            "SharpDepth F1 / metric's",
            s["boundary_f1"] / max(f["boundary_f1"], 1e-12),
            ">= 3",
            s["boundary_f1"] >= 3 * f["boundary_f1"],
        ),
        (
            "SharpDepth vs guided filter: PDBE acc, F1, AbsRel",
            s["pdbe_acc"] - g["pdbe_acc"],
            "acc lower, F1 higher, AbsRel <=",
            s["pdbe_acc"] < g["pdbe_acc"]
            and s["boundary_f1"] > g["boundary_f1"]
            and s["abs_rel"] <= g["abs_rel"],
        ),
    ]
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test", type=Path, help="eval output folder of the test split")
    parser.add_argument("others", type=Path, nargs="*", help="more eval folders (tables only)")
    parser.add_argument(
        "--prior-eval", type=Path, default=None, help="eval folder of the prior checkpoint"
    )
    args = parser.parse_args()
    title, methods = load(args.test)
    if args.prior_eval is not None:
        methods = {**methods, "prior": load(args.prior_eval)[1]["prior"]}
        title += f" (prior row: {args.prior_eval})"
    print(table(title, methods), end="\n\n")
    for folder in args.others:
        print(table(*load(folder)), end="\n\n")
    met = 0
    checks = targets(methods)
    for name, value, required, ok in checks:
        met += ok
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.4g} (target {required})")
    print(f"{met} of {len(checks)} targets met")


if __name__ == "__main__":
    main()
