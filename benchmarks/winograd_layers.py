"""Benchmark of ``sharpdepth.winograd``: one 3x3 layer, Winograd against the direct convolution.

For the layer shapes of the SD-2 autoencoder and UNet at 768 x 512 px (latent 96 x 64),
times ``torch.nn.functional.conv2d`` and :func:`~sharpdepth.winograd.winograd_conv3x3`
on the same random float32 input (channels-last for the autoencoder's layers, as the
pipeline runs them on the CPU; contiguous for the UNet's), alternating the two for
``--repeats`` rounds after a warm-up, and prints the median times, their ratio, whether
the pipeline would use Winograd for that layer (:func:`~sharpdepth.winograd.winograd_applies`)
and both results' largest error against a float64 convolution, relative to the output's
largest magnitude.

Usage: ``python benchmarks/winograd_layers.py [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sharpdepth.winograd import winograd_applies, winograd_conv3x3

#: (where, input channels, output channels, height, width, channels-last)
LAYERS = (
    ("vae 768x512", 128, 128, 512, 768, True),
    ("vae 768x512", 256, 128, 512, 768, True),
    ("vae 384x256", 256, 256, 256, 384, True),
    ("vae 384x256", 512, 256, 256, 384, True),
    ("vae 192x128", 512, 512, 128, 192, True),
    ("vae 96x64", 512, 512, 64, 96, True),
    ("unet 96x64", 320, 320, 64, 96, False),
    ("unet 96x64", 640, 640, 64, 96, False),
    ("unet 48x32", 640, 640, 32, 48, False),
    ("unet 24x16", 1280, 1280, 16, 24, False),
)


def _seconds(fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, bias, padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32")
    print(
        "| layer | C -> K | direct (s) | Winograd (s) | speed-up | used | error direct / Winograd |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for where, c, k, h, w, channels_last in LAYERS:
        x = torch.randn(1, c, h, w, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        weight = torch.randn(k, c, 3, 3, generator=gen) / (9 * c) ** 0.5
        bias = torch.randn(k, generator=gen)
        with torch.inference_mode():
            direct = _direct(x, weight, bias)  # also the warm-up
            fast = winograd_conv3x3(x, weight, bias)
            ref = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
            scale = ref.abs().max()
            errors = [float((y.double() - ref).abs().max() / scale) for y in (direct, fast)]
            del direct, fast, ref
            times: dict[str, list[float]] = {"direct": [], "winograd": []}
            for _ in range(args.repeats):
                times["direct"].append(_seconds(_direct, x, weight, bias))
                times["winograd"].append(_seconds(winograd_conv3x3, x, weight, bias))
        t_direct, t_wino = (statistics.median(times[key]) for key in ("direct", "winograd"))
        used = "yes" if winograd_applies(x, weight) else "no"
        print(
            f"| {where} | {c} -> {k} | {t_direct:.3f} | {t_wino:.3f} | "
            f"{t_direct / t_wino:.2f}x | {used} | {errors[0]:.1e} / {errors[1]:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
