"""``sharpdepth speed``: per-stage times, throughput and peak memory of the inference modes."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``speed`` subcommand (also reachable by its former name, ``bench``)."""
    from sharpdepth.accel.speed import DEFAULT_MODES, MODES, SIZES

    p = sub.add_parser(
        "speed",
        aliases=["bench"],
        help="measure the speed and memory of the inference modes",
        description=(
            "Build random-weight models of the chosen size once (cached), then run the "
            "pipeline on a real photo in each mode, each in its own process: released "
            "(the cost structure of the authors' implementation), exact (default) and "
            "fast (fastest and MODE+tiny on request). Prints per-stage medians, images/s, "
            "peak memory and the ratios against released, in one run."
        ),
    )
    p.add_argument("--size", choices=SIZES, default="nano", help="model shapes (default nano)")
    p.add_argument(
        "--processing-res", type=int, default=None, help="default: 768 for sd2, else 384"
    )
    p.add_argument("--image", type=Path, default=None, help="photo (default: skimage coffee)")
    p.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help="comma-separated, from "
        + ",".join(MODES)
        + "; MODE+tiny (e.g. fast+tiny) runs MODE with a tiny autoencoder, MODE+direct "
        "without Winograd, matrix-product or sub-pixel convolutions, MODE+float without int8 "
        "layers "
        "(default: %(default)s)",
    )
    p.add_argument("--runs", type=int, default=3, help="timed calls per mode (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure the modes in turn this many times, a fresh worker per mode and round "
        "(warm-up + runs each), and pool the runs: the machine's speed drifting during a "
        "long run then affects every mode alike",
    )
    p.add_argument("--batch", type=int, default=1, help="copies of the photo per call")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    p.add_argument(
        "--allocator",
        choices=("system", "tuned"),
        default="system",
        help="tuned: glibc malloc keeps freed memory (all but released; replaces the fast "
        "modes' lean heap); system: each mode's own setting",
    )
    p.add_argument("--cache", type=Path, default=None, help="random-weight checkpoint cache")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "--keep-outputs",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="keep each mode's output files here (default: a temporary folder, deleted)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``speed``. Exit code 0, or 2 on bad arguments / a failed worker."""
    from sharpdepth.accel.speed import SpeedSettings, format_report, measure_speed, results_json

    res = args.processing_res or (768 if args.size == "sd2" else 384)
    settings = SpeedSettings(
        size=args.size,
        resolution=res,
        image=args.image,
        runs=args.runs,
        warmup=args.warmup,
        batch=args.batch,
        threads=args.threads,
        allocator=args.allocator,
        seed=args.seed,
        rounds=args.rounds,
    )
    if args.cache is not None:
        settings.cache = args.cache
    if args.image is not None and not args.image.is_file():
        LOGGER.error("no such image: %s", args.image)
        return 2
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="sharpdepth-speed-") as tmp:
        work = args.keep_outputs or Path(tmp)
        try:
            results = measure_speed(settings, work, modes)
        except (ValueError, RuntimeError) as exc:
            LOGGER.error("%s", exc)
            return 2
        print(format_report(settings, results))
        if args.json is not None:
            args.json.write_text(json.dumps(results_json(settings, results), indent=2) + "\n")
    return 0
