"""Speed of ``sharpdepth.accel.winograd``: one 3x3 layer by Winograd, by one matrix product
("GEMM") and by the direct convolution.

For the layer shapes of the SD-2 autoencoder and UNet at 768 x 512 px (latent 96 x 64),
times ``torch.nn.functional.conv2d``, :func:`~sharpdepth.accel.winograd.winograd_conv3x3` and
(for layers of at most ``4 x`` as many pixels as output channels, where its unfolded
input stays small) :func:`~sharpdepth.accel.winograd.gemm_conv3x3` on the same random float32
input (channels-last for the autoencoder's layers, as the pipeline runs them on the
CPU; contiguous for the UNet's), alternating them for ``--repeats`` rounds after a
warm-up. Prints the median times, the speed-ups over direct, which one the pipeline uses
for that layer (:func:`~sharpdepth.accel.winograd.winograd_applies`,
:func:`~sharpdepth.accel.winograd.gemm_applies`) and each result's largest error against a
float64 convolution, relative to the output's largest magnitude.

Usage: ``python experiments/speed/winograd_layers.py [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sharpdepth.accel.winograd import gemm_applies, gemm_conv3x3, winograd_applies, winograd_conv3x3

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
    ("unet 24x16", 2560, 1280, 16, 24, False),
    ("unet 12x8", 1280, 1280, 8, 12, False),
    ("unet 12x8", 2560, 1280, 8, 12, False),
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
        "| layer | C -> K | direct (s) | Winograd (s) | GEMM (s) | speed-up Winograd / GEMM "
        "| used | error direct / Winograd / GEMM |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for where, c, k, h, w, channels_last in LAYERS:
        x = torch.randn(1, c, h, w, generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        weight = torch.randn(k, c, 3, 3, generator=gen) / (9 * c) ** 0.5
        bias = torch.randn(k, generator=gen)
        ways: dict[str, Callable[..., torch.Tensor]] = {
            "direct": _direct,
            "winograd": winograd_conv3x3,
        }
        if h * w <= 4 * k:
            ways["gemm"] = gemm_conv3x3
        with torch.inference_mode():
            ref = F.conv2d(x.double(), weight.double(), bias.double(), padding=1)
            scale = ref.abs().max()
            errors = {  # also the warm-up
                name: float((fn(x, weight, bias).double() - ref).abs().max() / scale)
                for name, fn in ways.items()
            }
            del ref
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.repeats):
                for name, fn in ways.items():
                    times[name].append(_seconds(fn, x, weight, bias))
        median = {name: statistics.median(values) for name, values in times.items()}
        used = (
            "Winograd"
            if winograd_applies(x, weight)
            else "GEMM"
            if gemm_applies(x, weight)
            else "direct"
        )
        gemm_time = f"{median['gemm']:.3f}" if "gemm" in median else "-"
        gemm_gain = f"{median['direct'] / median['gemm']:.2f}x" if "gemm" in median else "-"
        gemm_error = f"{errors['gemm']:.1e}" if "gemm" in errors else "-"
        print(
            f"| {where} | {c} -> {k} | {median['direct']:.3f} | {median['winograd']:.3f} | "
            f"{gemm_time} | {median['direct'] / median['winograd']:.2f}x / {gemm_gain} | "
            f"{used} | {errors['direct']:.1e} / {errors['winograd']:.1e} / {gemm_error} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
