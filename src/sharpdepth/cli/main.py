"""The ``sharpdepth`` command: a group of subcommands with heavy imports kept inside each.

Logging is configured here and nowhere else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sharpdepth import __version__
from sharpdepth.accel.memory import use_huge_pages

LOGGER = logging.getLogger("sharpdepth")


def _setup_logging(verbosity: int) -> None:
    """Configure the root ``sharpdepth`` logger for command-line use."""
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("sharpdepth")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if verbosity <= 0:
        # weight-loading bars of transformers / diffusers / the Hub would interleave with ours
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for noisy in ("diffusers", "transformers", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR if verbosity <= 0 else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sharpdepth`` and its subcommands."""
    from sharpdepth.cli import demo, download, evaluate, nano, predict, speed, synth, train

    parser = argparse.ArgumentParser(
        prog="sharpdepth",
        description="Sharp metric depth from one image (SharpDepth, CVPR 2025).",
    )
    parser.add_argument("--version", action="version", version=f"sharpdepth {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    predict.add_parser(sub)
    synth.add_parser(sub)
    evaluate.add_parser(sub)
    train.add_parser(sub)
    nano.add_parser(sub)
    demo.add_parser(sub)
    speed.add_parser(sub)
    download.add_parser(sub)
    models = sub.add_parser("models", help="list the named metric depth models")
    models.set_defaults(run=_run_models)
    return parser


def _run_models(args: argparse.Namespace) -> int:
    """Print the metric depth model registry (name, Hub id, description)."""
    from sharpdepth.models.metric import METRIC_MODELS

    width = max(len(name) for name in METRIC_MODELS)
    for name, entry in METRIC_MODELS.items():
        hub = entry.hub_id or "(bundled)"
        print(f"{name:<{width}}  {hub:<58}  {entry.description}")
    print(
        "\nAlso: hf:<hub id or folder>, unidepth:<hub id>, a transformers model folder, or "
        "module:attribute / file.py:attribute for your own model."
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sharpdepth`` console script; returns the exit code."""
    use_huge_pages()  # before build_parser, whose subcommand modules import torch
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _setup_logging(-1 if args.quiet else 1 if args.verbose else 0)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        LOGGER.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
