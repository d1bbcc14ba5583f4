"""Train one variant of the nano prior (ablations in docs/nano.md).

    python experiments/nano/train_prior_variant.py -o runs/abl/prior-X --steps 1000 \
        [--lr 5e-4] [--batch-size 8] [--channels 32,64,128] [--layers 1] \
        [--edge-weight 0] [--near-weight 0] [--latents runs/nano-prior/latents.pt] \
        [--init runs/nano-prior/checkpoint.pt --decay-steps 0]

``--latents`` reuses another run's encoded training set (copied into the new run
folder) so that a short variant does not spend minutes encoding the same images.
``--init`` branches from another run's checkpoint (its step count, weights, EMA and
optimiser), so ``--steps`` is then the step the branch stops at.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from sharpdepth.training.nano import recipes


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--data", default="data/nano-synth", type=Path)
    p.add_argument("--vae", default="src/sharpdepth/assets/nano/vae", type=Path)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=recipes.PRIOR_LOOP.lr)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--channels", default=",".join(map(str, recipes.PRIOR_CHANNELS)))
    p.add_argument("--layers", type=int, default=recipes.PRIOR_LAYERS)
    p.add_argument("--edge-weight", type=float, default=0.0)
    p.add_argument(
        "--near-weight", type=float, default=0.0, help="cap of the near-depth loss weights"
    )
    p.add_argument("--data-limit", type=int, default=None, help="use only N training scenes")
    p.add_argument("--decay-steps", type=int, default=-1, help="-1: the recipe's; 0: constant")
    p.add_argument(
        "--init", type=Path, default=None, help="a prior run's checkpoint.pt to start from"
    )
    p.add_argument("--latents", type=Path, default=None, help="a run's latents.pt to reuse")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.output.mkdir(parents=True, exist_ok=True)
    for name in ("latents.pt", "val_latents.pt"):
        if args.latents is not None and not (args.output / name).exists():
            shutil.copyfile(args.latents.parent / name, args.output / name)
    if args.init is not None and not (args.output / "checkpoint.pt").exists():
        shutil.copyfile(args.init, args.output / "checkpoint.pt")  # a branch of that run
    decay = recipes.PRIOR_LOOP.decay_steps if args.decay_steps < 0 else args.decay_steps
    recipes.PRIOR_LOOP = replace(recipes.PRIOR_LOOP, lr=args.lr, decay_steps=decay)
    options = recipes.RecipeOptions(
        data=args.data,
        output=args.output,
        steps=args.steps,
        batch_size=args.batch_size,
        progress=False,
        data_limit=args.data_limit,
        inputs={"vae": args.vae},
        edge_weight=args.edge_weight,
        prior_near_weight=args.near_weight,
        prior_channels=tuple(int(c) for c in args.channels.split(",")),
        prior_layers=args.layers,
    )
    recipes.train_prior(options)


if __name__ == "__main__":
    main()
