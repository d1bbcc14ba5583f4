"""``sharpdepth eval``: score SharpDepth and baselines on a benchmark, write a results table."""

from __future__ import annotations

import argparse
import logging
from typing import Any

LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``eval`` subcommand."""
    from sharpdepth.cli.models import add_model_options

    p = sub.add_parser(
        "eval",
        help="evaluate on a benchmark (metric accuracy and depth-edge accuracy)",
        description=(
            "Run the pipeline once per sample and score the chosen methods: sharpdepth, "
            "metric (the metric model alone), prior-metric-aligned (UD-aligned prior), prior "
            "(aligned to ground truth) and guided-filter (classical baseline). Writes "
            "results.md/.csv/.json, per_sample.json and pictures of the worst samples."
        ),
    )
    p.add_argument("--benchmark", required=False, help="benchmark name or .toml description")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument(
        "--data-root", default=None, help="dataset folder (else its environment variable)"
    )
    p.add_argument("--split", default=None, help="benchmark split (e.g. test, zeroshot for synth)")
    add_model_options(p)
    p.add_argument("--model", default="all", help="methods: all, or a comma-separated list")
    p.add_argument("-o", "--output", default=None, help="output folder for the tables")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--processing-res", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--use-intrinsics", action="store_true", help="give the benchmark's K to the metric model"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``eval``: exit code 0 on success, 2 on setup errors."""
    from sharpdepth.cli.models import load_pipeline
    from sharpdepth.errors import SharpDepthError
    from sharpdepth.evaluation.benchmarks import list_benchmarks, load_benchmark
    from sharpdepth.evaluation.evaluator import evaluate, resolve_methods

    if args.list:
        for name in list_benchmarks():
            print(name)
        return 0
    if not args.benchmark:
        LOGGER.error("--benchmark is required (--list lists them)")
        return 2
    try:
        methods = resolve_methods(args.model)
        benchmark = load_benchmark(
            args.benchmark, root=args.data_root, split=args.split, limit=args.limit
        )
    except (ValueError, FileNotFoundError) as exc:
        LOGGER.error("%s", exc)
        return 2
    try:
        pipe, _ = load_pipeline(args)
    except (SharpDepthError, ValueError, OSError, ImportError) as exc:
        LOGGER.error("cannot load the models: %s", exc)
        return 2
    result = evaluate(
        pipe,
        benchmark,
        methods,
        out_dir=args.output,
        seed=args.seed,
        processing_resolution=args.processing_res,
        use_intrinsics=args.use_intrinsics,
        progress=not args.no_progress,
    )
    columns = ("abs_rel", "delta1", "rmse", "pdbe_acc", "pdbe_comp")
    print(result.title)
    print("method".ljust(22) + "".join(c.rjust(11) for c in columns))
    for name, row in result.summary.items():
        print(name.ljust(22) + "".join(f"{row.get(c, float('nan')):11.4f}" for c in columns))
    if args.output:
        LOGGER.info("tables written to %s", args.output)
    return 0
