"""``sharpdepth nano train RECIPE``: reproduce a model of the bundled nano family."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)

DEFAULT_DATA = Path("data/nano-synth")


def add_parser(sub: Any) -> None:
    """Register the ``nano`` subcommand."""
    from sharpdepth.training.nano.recipes import NANO_DATA, RECIPES

    p = sub.add_parser(
        "nano",
        help="train the bundled nano model family on the synthetic engine",
        description=(
            "Train one model of the bundled nano family (recipes in order: metric, vae, "
            "prior, sharpdepth; tiny-vae, optional, after vae). The synthetic data "
            f"({NANO_DATA.n} images, {NANO_DATA.height}x{NANO_DATA.width}, seed {NANO_DATA.seed}) "
            "is rendered into --data first if it is not there. A run resumes from its "
            "checkpoint when started again with the same output folder. The result is "
            "OUTPUT/final, in the layout the package loads; copy it to "
            "src/sharpdepth/assets/nano/RECIPE to ship it."
        ),
    )
    actions = p.add_subparsers(dest="nano_command", metavar="ACTION", required=True)
    t = actions.add_parser("train", help="run one training recipe")
    t.add_argument("recipe", choices=RECIPES)
    t.add_argument("-o", "--output", required=True, help="run folder (OUTPUT/final is the model)")
    t.add_argument("--data", default=str(DEFAULT_DATA), help="synthetic dataset folder")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--data-limit", type=int, default=None, help="use only N training samples")
    t.add_argument("--workers", type=int, default=2, help="processes rendering the data")
    t.add_argument(
        "--edge-weight",
        type=float,
        default=None,
        help="prior: weight of the loss on decoded depth crops (L1 + gradient L1)",
    )
    t.add_argument("--no-progress", action="store_true")
    for name in ("metric", "vae", "prior"):
        t.add_argument(
            f"--{name}",
            default=None,
            help=f"the {name} model to build on (default: the bundled one)",
        )
    t.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``nano train``: exit code 0 on success, 2 on missing inputs."""
    from sharpdepth.errors import SharpDepthError
    from sharpdepth.training.nano.recipes import RECIPE_FUNCTIONS, RecipeOptions

    inputs = {
        name: Path(getattr(args, name))
        for name in ("metric", "vae", "prior")
        if getattr(args, name) is not None
    }
    options = RecipeOptions(
        data=Path(args.data),
        output=Path(args.output),
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        workers=args.workers,
        progress=not args.no_progress,
        inputs=inputs,
        data_limit=args.data_limit,
    )
    if args.edge_weight is not None:
        options.edge_weight = args.edge_weight
    try:
        final = RECIPE_FUNCTIONS[args.recipe](options)
    except (FileNotFoundError, ValueError, SharpDepthError) as exc:
        LOGGER.error("%s", exc)
        return 2
    LOGGER.info("%s model written to %s", args.recipe, final)
    return 0
