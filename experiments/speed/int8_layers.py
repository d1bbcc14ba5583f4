"""Speed of ``sharpdepth.accel.int8``: the SD-2 UNet's linear layers and convolutions in int8
against float32.

For each linear layer shape of the SD-2 UNet's transformer blocks at 768 x 512 px
(latent 96 x 64: 6144, 1536, 384 and 96 tokens at the four levels), times
``torch.nn.functional.linear`` and :class:`~sharpdepth.accel.int8.Int8Linear` on the same
random input, alternating the two for ``--repeats`` rounds after a warm-up, and prints
the median times, the speed-up and the int8 result's relative L2 error. The same for
each convolution shape met in one pass of a random-weight SD-2 UNet at that size
(:class:`~sharpdepth.accel.int8.Int8Conv2d` against the float32 layer as the pipeline runs it:
Winograd, matrix product or direct), on inputs after a SiLU as in the UNet's blocks.
Then (unless ``--no-unet``) it times whole UNet passes
(:func:`~sharpdepth.testing.sd2_unet`, with the pipeline's Winograd / GEMM convolutions)
in float32, with int8 linear layers only, and with int8 linear layers and convolutions
(fast mode), alternating, and prints their relative output differences. With
``--pipeline-rounds N`` it finally loads two fast-mode pipelines with a tiny autoencoder
on the random-weight SD-2 checkpoint of ``sharpdepth speed`` (built once in its cache),
one with int8 layers (the default) and one without, and times N alternating 768 px calls
of each on the bench photo after a warm-up call.

Usage: ``python experiments/speed/int8_layers.py [--repeats 5] [--unet-repeats 3] [--no-unet]
[--pipeline-rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from sharpdepth.accel.int8 import (
    Int8Conv2d,
    Int8Linear,
    int8_available,
    int8_convolution_available,
    quantize_int8,
)

#: (level, tokens, input features, output features, how many per UNet pass)
LAYERS = (
    ("96x64 q/k/v/out/proj", 6144, 320, 320, 5 * 6),
    ("96x64 feed-forward in", 6144, 320, 2560, 5),
    ("96x64 feed-forward out", 6144, 1280, 320, 5),
    ("48x32 q/k/v/out/proj", 1536, 640, 640, 5 * 6),
    ("48x32 feed-forward in", 1536, 640, 5120, 5),
    ("48x32 feed-forward out", 1536, 2560, 640, 5),
    ("24x16 q/k/v/out/proj", 384, 1280, 1280, 5 * 6),
    ("24x16 feed-forward in", 384, 1280, 10240, 5),
    ("24x16 feed-forward out", 384, 5120, 1280, 5),
    ("cross-attention k/v", 77, 1024, 640, 30),
)


def _seconds(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _alternate(calls: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call, taking turns for ``rounds`` rounds (no warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            times[name].append(_seconds(call))
    return times


def _print_against_float(times: dict[str, list[float]]) -> None:
    """Each call's seconds, the medians and their speed-ups over ``times["float"]``."""
    t_float = statistics.median(times["float"])
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(
            f"  {name}: " + ", ".join(f"{t:.2f}" for t in seconds) + f" s; median {median:.2f}"
            f" s, {t_float / median:.2f}x"
        )


def _relative_l2(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


def linear_layers(repeats: int) -> None:
    """Print the per-layer table of the linear layers."""
    gen = torch.Generator().manual_seed(0)
    print("| layer | tokens x in -> out | per pass | float32 (ms) | int8 (ms) | speed-up | error |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, tokens, fan_in, fan_out, count in LAYERS:
        layer = torch.nn.Linear(fan_in, fan_out)
        q = Int8Linear.from_float(layer)
        x = torch.randn(1, tokens, fan_in, generator=gen)
        with torch.inference_mode():
            error = _relative_l2(q(x), layer(x))  # also the warm-up
            times: dict[str, list[float]] = {"float": [], "int8": []}
            for _ in range(repeats):
                times["float"].append(_seconds(F.linear, x, layer.weight, layer.bias))
                times["int8"].append(_seconds(q, x))
        t_float, t_int8 = (1e3 * statistics.median(times[k]) for k in ("float", "int8"))
        print(
            f"| {name} | {tokens} x {fan_in} -> {fan_out} | {count} | {t_float:.1f} | "
            f"{t_int8:.1f} | {t_float / t_int8:.2f}x | {error:.1e} |",
            flush=True,
        )


def _unet_inputs() -> tuple[torch.Tensor, ...]:
    """Sample, timestep, text context and class labels of an SD-2 UNet pass at 96 x 64."""
    gen = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 8, 64, 96, generator=gen)
    context = torch.randn(1, 77, 1024, generator=gen)
    return sample, torch.full((1,), 999), context, torch.zeros(1, 4)


def _run_unet(net: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    sample, timestep, context, labels = inputs
    return net(sample, timestep, encoder_hidden_states=context, class_labels=labels).sample


def conv_layers(repeats: int) -> None:
    """Print the per-layer table of the convolutions of one SD-2 UNet pass."""
    from sharpdepth.accel.winograd import use_winograd
    from sharpdepth.testing import sd2_unet

    unet = sd2_unet()
    use_winograd(unet)
    shapes: dict[tuple[int, ...], int] = {}

    def record(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(module, torch.nn.Conv2d)
        c_in, height, width = args[0].shape[1:]
        key = (c_in, module.out_channels, *module.kernel_size, *module.stride, height, width)
        shapes[key] = shapes.get(key, 0) + 1

    hooks = [
        m.register_forward_pre_hook(record)
        for m in unet.modules()
        if isinstance(m, torch.nn.Conv2d) and min(m.in_channels, m.out_channels) >= 256
    ]
    with torch.inference_mode():
        _run_unet(unet, _unet_inputs())
    for hook in hooks:
        hook.remove()
    del unet
    gen = torch.Generator().manual_seed(0)
    print(
        "\n| convolution, kernel / stride | pixels | per pass | float32 (ms) | int8 (ms) "
        "| speed-up | error |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for (c_in, c_out, kh, kw, stride, _, height, width), count in sorted(shapes.items()):
        layer = torch.nn.Conv2d(c_in, c_out, (kh, kw), stride, padding=kh // 2)
        use_winograd(torch.nn.Sequential(layer))
        q = Int8Conv2d.from_float(layer)
        x = F.silu(torch.randn(1, c_in, height, width, generator=gen))
        with torch.inference_mode():
            error = _relative_l2(q(x), layer(x))  # also the warm-up
            calls = {"float": functools.partial(layer, x), "int8": functools.partial(q, x)}
            times = _alternate(calls, repeats)
        t_float, t_int8 = (1e3 * statistics.median(times[k]) for k in ("float", "int8"))
        print(
            f"| {c_in} -> {c_out}, {kh}x{kw} / {stride} | {width} x {height} | {count} | "
            f"{t_float:.1f} | {t_int8:.1f} | {t_float / t_int8:.2f}x | {error:.1e} |",
            flush=True,
        )


def unet_passes(repeats: int) -> None:
    """Print whole SD-2 UNet passes: float32, int8 linear layers, int8 linear + conv."""
    from sharpdepth.accel.winograd import use_winograd
    from sharpdepth.testing import sd2_unet

    unet = sd2_unet()
    use_winograd(unet)
    linear_unet, int8_unet = copy.deepcopy(unet), copy.deepcopy(unet)
    linear = quantize_int8(linear_unet, min_channels=1 << 30)
    converted = quantize_int8(int8_unet)
    inputs = _unet_inputs()
    nets = {"float": unet, "int8 linear": linear_unet, "int8": int8_unet}
    with torch.inference_mode():
        ref = _run_unet(unet, inputs)  # also the warm-up
        errors = {name: _relative_l2(_run_unet(net, inputs), ref) for name, net in nets.items()}
        calls = {name: functools.partial(_run_unet, net, inputs) for name, net in nets.items()}
        times = _alternate(calls, repeats)
    print(
        f"\nSD-2 UNet pass, latent 96 x 64, {linear} int8 linear layers, {converted - linear}"
        f" int8 convolutions, {repeats} rounds:"
    )
    _print_against_float(times)
    for name in ("int8 linear", "int8"):
        print(f"  relative L2 difference of {name} (random weights): {errors[name]:.1e}")


def pipeline_calls(rounds: int) -> None:
    """Print alternating fast+tiny calls with and without int8 layers (SD-2 shapes)."""
    from sharpdepth.accel import speed
    from sharpdepth.pipeline import SharpDepthPipeline

    cache = speed.default_cache()
    checkpoint = speed.build_checkpoint("sd2", cache)
    tiny_vae = speed.build_tiny_vae("sd2", cache)
    photo = str(speed.default_photo())
    pipes = {
        name: SharpDepthPipeline.from_pretrained(
            checkpoint,
            metric_model="nano",
            device="cpu",
            mode="fast",
            tiny_vae=tiny_vae,
            int8=int8,
            processing_resolution=768,
        )
        for name, int8 in (("int8", None), ("float", False))
    }
    calls = {name: functools.partial(pipe, photo, seed=0) for name, pipe in pipes.items()}
    for call in calls.values():
        call()  # warm-up
    times = _alternate(calls, rounds)
    print(f"\nfast+tiny pipeline calls, SD-2 shapes, 768 px, {rounds} alternating rounds:")
    _print_against_float(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--unet-repeats", type=int, default=3)
    parser.add_argument("--no-unet", action="store_true", help="skip the UNet passes")
    parser.add_argument("--pipeline-rounds", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not int8_available():
        raise SystemExit("int8 layers need an x86-64 CPU and PyTorch's FBGEMM engine")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    linear_layers(args.repeats)
    if int8_convolution_available():
        conv_layers(args.repeats)
    if not args.no_unet:
        unet_passes(args.unet_repeats)
    if args.pipeline_rounds:
        pipeline_calls(args.pipeline_rounds)


if __name__ == "__main__":
    main()
