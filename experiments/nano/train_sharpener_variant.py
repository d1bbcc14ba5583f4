"""Train one variant of the nano sharpener (ablations in docs/nano.md).

    python experiments/nano/train_sharpener_variant.py -o runs/abl/sd-X \
        --prior runs/prior12k/final --metric runs/nano-metric/final --steps 600 \
        [optim.lr=2e-4 method.lambda_rec=1.0 ...]

The nano recipe (``sharpdepth nano train sharpdepth``) with trainer overrides
(``section.key=value``, the keys of ``sharpdepth train``). Interrupted runs resume.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sharpdepth.training.nano import recipes


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--data", default="data/nano-synth", type=Path)
    p.add_argument("--prior", required=True, type=Path)
    p.add_argument("--metric", required=True, type=Path)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("overrides", nargs="*", help="trainer overrides, section.key=value")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    options = recipes.RecipeOptions(
        data=args.data,
        output=args.output,
        steps=args.steps,
        batch_size=args.batch_size,
        progress=False,
        inputs={"prior": args.prior, "metric": args.metric},
    )
    recipes.train_sharpdepth(options, args.overrides)


if __name__ == "__main__":
    main()
