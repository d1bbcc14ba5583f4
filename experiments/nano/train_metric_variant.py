"""Train one variant of the nano metric model (ablations in docs/nano.md).

    python experiments/nano/train_metric_variant.py -o runs/abl/metric-X --steps 1500 \
        [--dense] [--resolution 128] [--output-stride 4] [--channels 24,32,48,96,128] \
        [--blocks 1] [--stem-stride 2] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sharpdepth.models.metric.nano_net import NanoMetricConfig
from sharpdepth.training.nano.recipes import METRIC_CONFIG, RecipeOptions, train_metric


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--data", default="data/nano384", type=Path)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--dense", action="store_true")
    p.add_argument("--resolution", type=int, default=METRIC_CONFIG.resolution)
    p.add_argument("--output-stride", type=int, default=METRIC_CONFIG.output_stride)
    p.add_argument("--channels", default=",".join(map(str, METRIC_CONFIG.channels)))
    p.add_argument("--blocks", type=int, default=METRIC_CONFIG.blocks)
    p.add_argument("--stem-stride", type=int, default=METRIC_CONFIG.stem_stride)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = NanoMetricConfig(
        channels=tuple(int(c) for c in args.channels.split(",")),
        blocks=args.blocks,
        resolution=args.resolution,
        output_stride=args.output_stride,
        stem_stride=args.stem_stride,
    )
    options = RecipeOptions(
        data=args.data,
        output=args.output,
        steps=args.steps,
        batch_size=args.batch_size,
        progress=False,
        metric_config=config,
        metric_dense=args.dense,
    )
    train_metric(options)


if __name__ == "__main__":
    main()
