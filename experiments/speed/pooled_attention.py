"""Speed of ``sharpdepth.accel.attention``: SD-2 UNet passes with full and with pooled
self-attention.

Builds a random-weight SD-2 UNet (:func:`~sharpdepth.testing.sd2_unet`) prepared as fast
mode prepares it on a CPU without native bfloat16 (Winograd / GEMM convolutions, int8
linear layers and convolutions), times ``--rounds`` alternating passes at latent
96 x 64 (768 x 512 px) with full attention and with keys and values pooled ``--factor``
times at the first ``--levels`` attention levels (fast mode: 2 and 1), after one
warm-up pass each, and prints the medians, the speed-up and the relative difference of
the outputs (random weights: the quality effect is in docs/speed.md's quality table, not
here).

Usage: ``python experiments/speed/pooled_attention.py [--rounds 3] [--factor 2] [--levels 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sharpdepth.accel.attention import use_full_attention, use_pooled_attention
from sharpdepth.accel.int8 import int8_available, quantize_int8
from sharpdepth.accel.winograd import use_winograd
from sharpdepth.testing import sd2_unet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--levels", type=int, default=1, help="attention levels pooled")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    unet = sd2_unet()
    if int8_available():
        quantize_int8(unet)
    use_winograd(unet)
    gen = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 8, 64, 96, generator=gen)
    context = torch.randn(1, 77, 1024, generator=gen)
    timestep, labels = torch.full((1,), 999), torch.zeros(1, 4)

    def run(factor: int) -> tuple[float, torch.Tensor]:
        use_pooled_attention(unet, factor, args.levels)
        start = time.perf_counter()
        out = unet(sample, timestep, encoder_hidden_states=context, class_labels=labels).sample
        return time.perf_counter() - start, out

    times: dict[int, list[float]] = {1: [], args.factor: []}
    with torch.inference_mode():
        outputs = {factor: run(factor)[1] for factor in times}  # warm-up
        for _ in range(args.rounds):
            for factor in times:
                times[factor].append(run(factor)[0])
    use_full_attention(unet)
    full, pooled = (statistics.median(times[f]) for f in times)
    for factor, seconds in times.items():
        label = (
            "full attention" if factor == 1 else f"pooled {factor}x{factor} ({args.levels} levels)"
        )
        print(f"  {label}: " + ", ".join(f"{t:.2f}" for t in seconds) + " s")
    print(f"  median {full:.2f} s (full) vs {pooled:.2f} s (pooled): {full / pooled:.2f}x")
    ref, out = outputs[1], outputs[args.factor]
    difference = float((out - ref).norm() / ref.norm())
    print(f"  relative L2 difference (random weights): {difference:.1e}")


if __name__ == "__main__":
    main()
