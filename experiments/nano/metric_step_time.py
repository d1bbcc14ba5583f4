"""Time one training step of metric-network variants, all in one run (docs/nano.md).

    OMP_NUM_THREADS=1 python experiments/nano/metric_step_time.py \
        --variant 24,32,48,96,128:128:4 --variant 24,32,64,192,384:128:4 \
        --variant 24,32,48,96,128:256:8 --variant 24,32,48,96,128:256:8:4

Each ``--variant`` is ``CHANNELS:RESOLUTION:OUTPUT_STRIDE[:STEM_STRIDE]``. A step is
what the metric recipe does per batch (forward on a batch of 16 square images with their intrinsics,
SILog loss on a random quarter of the pixels, backward, AdamW), on random inputs, so the
time excludes data loading. Prints one JSON line per variant: parameters, float16 size
in MB, median seconds per step, and the ratio to the first variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sharpdepth.geometry import intrinsics_from_focal
from sharpdepth.models.metric.nano_net import NanoMetricConfig, NanoMetricNet
from sharpdepth.training.nano.recipes import METRIC_BATCH, silog_loss


def parse_variant(text: str) -> NanoMetricConfig:
    """``"24,32,48,96,128:128:4"`` -> the network config (channels, resolution, strides)."""
    channels, resolution, stride, *stem = text.split(":")
    return NanoMetricConfig(
        channels=tuple(int(c) for c in channels.split(",")),
        resolution=int(resolution),
        output_stride=int(stride),
        stem_stride=int(stem[0]) if stem else NanoMetricConfig.stem_stride,
    )


def step_seconds(model: NanoMetricNet, steps: int, gen: torch.Generator) -> list[float]:
    """Wall-clock seconds of ``steps`` training steps (after two warm-up steps)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    size = model.config.resolution
    image = torch.rand(METRIC_BATCH, 3, size, size, generator=gen)
    intrinsics = intrinsics_from_focal(size * 0.8, size, size).expand(METRIC_BATCH, 3, 3)
    target = 1.0 + 9.0 * torch.rand(METRIC_BATCH, 1, size, size, generator=gen)
    mask = torch.rand(METRIC_BATCH, 1, size, size, generator=gen) < 0.25
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = silog_loss(model(image, intrinsics), target, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    first = None
    for text in args.variant:
        model = NanoMetricNet(parse_variant(text))
        params = sum(p.numel() for p in model.parameters())
        median = statistics.median(step_seconds(model, args.steps, gen))
        first = first or median
        print(
            json.dumps(
                {
                    "variant": text,
                    "parameters_m": round(params / 1e6, 2),
                    "float16_mb": round(params * 2 / 1e6, 1),
                    "s_per_step": round(median, 3),
                    "ratio": round(median / first, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
