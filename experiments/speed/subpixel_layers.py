"""Speed of ``sharpdepth.accel.upsampling``: each up-sampling stage (nearest 2x, then a 3x3
convolution) computed on the up-sampled input and in sub-pixel form.

For the up-sampling stages of the SD-2 UNet, the SD-2 autoencoder's decoder and TAESD's
decoder at 768 x 512 px (latent 96 x 64), times on the same random input, alternating for
``--repeats`` rounds after a warm-up:

* float32: ``F.interpolate`` followed by the convolution the pipeline would otherwise run
  (:class:`~sharpdepth.accel.winograd.WinogradConv2d`: Winograd, a matrix product or direct),
  against :func:`~sharpdepth.accel.upsampling.upsample_conv3x3`;
* int8 (the UNet's stages, when oneDNN's int8 convolutions exist): an
  :class:`~sharpdepth.accel.int8.Int8Conv2d` on the up-sampled input against
  :class:`~sharpdepth.accel.int8.Int8UpsampleConv2d`.

Prints the medians, the speed-up, which form the pipeline uses
(:func:`~sharpdepth.accel.upsampling.subpixel_applies`) and each result's error against a
float64 computation (largest error relative to the largest output for float32, relative
L2 for int8). The autoencoder's stages are the slowest to run (about 2 s each way).

Usage: ``python experiments/speed/subpixel_layers.py [--repeats 3] [--threads N] [--skip-vae]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from sharpdepth.accel.int8 import Int8Conv2d, Int8UpsampleConv2d, int8_convolution_available
from sharpdepth.accel.upsampling import (
    subpixel_applies,
    upsample_conv3x3,
    upsample_nearest2x,
)
from sharpdepth.accel.winograd import WinogradConv2d

#: (where, channels, low-resolution height, width, channels-last)
STAGES = (
    ("taesd -> 192x128", 64, 64, 96, True),
    ("taesd -> 384x256", 64, 128, 192, True),
    ("taesd -> 768x512", 64, 256, 384, True),
    ("unet -> 24x16", 1280, 8, 12, False),
    ("unet -> 48x32", 1280, 16, 24, False),
    ("unet -> 96x64", 640, 32, 48, False),
    ("vae -> 192x128", 512, 64, 96, True),
    ("vae -> 384x256", 512, 128, 192, True),
    ("vae -> 768x512", 256, 256, 384, True),
)


def _median_seconds(ways: dict[str, Callable[[], torch.Tensor]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _conv(c: int, layout: torch.memory_format, gen: torch.Generator) -> nn.Conv2d:
    """A random float32 3x3 layer as the pipeline runs it (a Winograd-capable class)."""
    conv = nn.Conv2d(c, c, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(c, c, 3, 3, generator=gen) / (9 * c) ** 0.5)
    conv.to(memory_format=layout)
    conv.__class__ = WinogradConv2d
    return conv


def _stage_rows(
    where: str, c: int, x: torch.Tensor, conv: nn.Conv2d, repeats: int, with_int8: bool
) -> list[str]:
    """The table rows of one stage: float32 and, for the UNet's, int8."""
    assert conv.bias is not None
    weight, bias = conv.weight.detach(), conv.bias.detach()
    ref = torch.nn.functional.conv2d(
        upsample_nearest2x(x.double()), weight.double(), bias.double(), padding=1
    )
    ways = {
        "float32": {
            "plain": lambda: conv(upsample_nearest2x(x)),
            "subpixel": lambda: upsample_conv3x3(x, weight, bias),
        }
    }
    if with_int8 and where.startswith("unet"):
        plain8 = Int8Conv2d(weight, bias, (1, 1), (1, 1), (1, 1), 1)
        fused8 = Int8UpsampleConv2d(weight, bias)
        ways["int8"] = {
            "plain": lambda: plain8(upsample_nearest2x(x)),
            "subpixel": lambda: fused8(x),
        }
    rows = []
    for arithmetic, fns in ways.items():
        outs = {name: fn().double() for name, fn in fns.items()}  # also the warm-up
        if arithmetic == "int8":
            errors = {n: float((o - ref).norm() / ref.norm()) for n, o in outs.items()}
        else:
            scale = ref.abs().max()
            errors = {n: float((o - ref).abs().max() / scale) for n, o in outs.items()}
        del outs
        median = _median_seconds(fns, repeats)
        fused = arithmetic == "int8" or subpixel_applies(x, weight)
        rows.append(
            f"| {where} | {c} | {arithmetic} | {median['plain']:.3f} | "
            f"{median['subpixel']:.3f} | {median['plain'] / median['subpixel']:.2f}x | "
            f"{'sub-pixel' if fused else 'up + conv'} | "
            f"{errors['plain']:.1e} / {errors['subpixel']:.1e} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-vae", action="store_true", help="leave out the SD-2 decoder")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    with_int8 = int8_convolution_available()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        "| stage | channels | arithmetic | up + conv (s) | sub-pixel (s) | speed-up | used "
        "| error up + conv / sub-pixel |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for where, c, h, w, channels_last in STAGES:
        if args.skip_vae and where.startswith("vae"):
            continue
        layout = torch.channels_last if channels_last else torch.contiguous_format
        x = torch.randn(1, c, h, w, generator=gen).relu().contiguous(memory_format=layout)
        conv = _conv(c, layout, gen)
        with torch.inference_mode():
            for row in _stage_rows(where, c, x, conv, args.repeats, with_int8):
                print(row, flush=True)


if __name__ == "__main__":
    main()
