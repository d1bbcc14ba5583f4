"""Train one variant of the nano prior (ablations in docs/nano.md).

    python experiments/nano/train_prior_variant.py -o runs/abl/prior-X --steps 1000 \
        [--lr 5e-4] [--batch-size 8] [--channels 32,64,128] [--layers 1] \
        [--edge-weight 0] [--latents runs/nano-prior/latents.pt]

``--latents`` reuses another run's encoded training set (copied into the new run
folder) so that a short variant does not spend minutes encoding the same images.
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
    p.add_argument("--latents", type=Path, default=None, help="a run's latents.pt to reuse")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.output.mkdir(parents=True, exist_ok=True)
    for name in ("latents.pt", "val_latents.pt"):
        if args.latents is not None and not (args.output / name).exists():
            shutil.copyfile(args.latents.parent / name, args.output / name)
    recipes.PRIOR_LOOP = replace(recipes.PRIOR_LOOP, lr=args.lr)
    options = recipes.RecipeOptions(
        data=args.data,
        output=args.output,
        steps=args.steps,
        batch_size=args.batch_size,
        progress=False,
        inputs={"vae": args.vae},
        edge_weight=args.edge_weight,
        prior_channels=tuple(int(c) for c in args.channels.split(",")),
        prior_layers=args.layers,
    )
    recipes.train_prior(options)


if __name__ == "__main__":
    main()
