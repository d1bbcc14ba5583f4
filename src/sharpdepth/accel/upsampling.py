"""Nearest-neighbour 2x up-sampling followed by a 3x3 convolution, computed at the low
resolution ("sub-pixel" form).

Both diffusion networks up-sample this way: every up-sampling stage of the UNet and of
the autoencoders' decoders repeats each pixel 2 x 2 times and then runs a 3x3
convolution (zero padding 1) on the result. Of the 3 x 3 taps that reach one output
pixel, only 2 x 2 distinct input pixels are read, so the 9 weights fold into 4: output
pixel ``(2i + a, 2j + b)`` is a 2x2 convolution of input rows ``i - 1 + a, i + a`` and
columns ``j - 1 + b, j + b``, with weights summed along each axis as

* phase 0: ``[w0, w1 + w2]``;
* phase 1: ``[w0 + w1, w2]``.

One 2x2 convolution with four times as many outputs (one set per phase ``(a, b)``) on
the zero-padded low-resolution input, then interleaving the phases, gives the same
result up to float rounding with 16 instead of 36 multiplications per input pixel and
channel pair (about 0.47-0.53x the arithmetic, counting the extra border row and
column), and without the 4x larger up-sampled tensor.

Measured on a 2-core AVX2 CPU at 768 x 512 px (latent 96 x 64), one stage at a time,
median of 5 alternating (``experiments/speed/subpixel_layers.py``, two runs):

* TAESD's decoder (64 channels, channels-last, float32): 1.53-1.80x faster (to
  768 x 512: 128-131 ms against 203-215 ms);
* the SD-2 UNet's three up-samplers with int8 layers (fast mode): 1.62-2.27x;
* the same in float32 (exact mode), against the Winograd and matrix-product layers on
  the up-sampled input: 1.37-1.53x from 48 x 32 on, but 0.80-0.92x at 24 x 16, where
  the up-sampled input is convolved as one matrix product;
* the SD-2 autoencoder's decoder (256-512 channels, to 192 x 128 up to 768 x 512):
  0.94-1.14x against Winograd on the up-sampled input (over two scripts).

:func:`subpixel_applies` keeps the up-sampled input's way for the float32 layers of the
last two kinds; the int8 layers always use the sub-pixel form.

:func:`use_subpixel_upsampling` converts a network in place (class swaps only: the same
parameters, buffers, state-dict keys and hooks), :func:`use_plain_upsampling` undoes it.
"""

from __future__ import annotations

import functools
import itertools
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sharpdepth.accel.winograd import (
    WinogradConv2d,
    _subclass,
    _swap_class,
    gemm_applies,
    memory_format_of,
    winograd_applies,
)

LOGGER = logging.getLogger(__name__)

# Row (and column) tap folding per phase: [phase, low-resolution tap, 3x3 tap].
_FOLD = ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0))

#: Winograd on the up-sampled input is kept where it has at least this many 4 x 4 tiles
#: per channel (the SD-2 autoencoder's decoder, 3.4-12 tiles per channel: the sub-pixel
#: form was 0.94-1.14x as fast; the UNet's 640-channel level, 0.6-0.7: 1.26-1.53x).
WINOGRAD_TILES_PER_CHANNEL = 2


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """The 2x2 weights of the four output phases of an up-sampled 3x3 convolution.

    Args:
        weight: ``[K, C, 3, 3]``.

    Returns:
        ``[4 K, C, 2, 2]``, contiguous: output channel ``(2 a + b) K + k`` is channel
        ``k`` of phase ``(a, b)`` (output row parity ``a``, column parity ``b``).
    """
    if weight.ndim != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected [K, C, 3, 3] weights, got {list(weight.shape)}")
    fold = torch.tensor(_FOLD, dtype=weight.dtype, device=weight.device)  # [2, 2, 3]
    k, c = weight.shape[:2]
    folded = torch.einsum("api,bqj,kcij->abkcpq", fold, fold, weight)
    return folded.reshape(4 * k, c, 2, 2).contiguous()


def subpixel_bias(bias: torch.Tensor | None) -> torch.Tensor | None:
    """``[K]`` bias repeated for the four phases (``[4 K]``), or ``None``."""
    return None if bias is None else bias.repeat(4)


def interleave_phases(phases: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Assemble the up-sampled output from the four phase outputs.

    Args:
        phases: ``[N, 4 K, H + 1, W + 1]``, the 2x2 convolution of the low-resolution
            input zero-padded by 1 (channels as in :func:`subpixel_weight`).
        height: ``H``, the low-resolution height.
        width: ``W``, the low-resolution width.

    Returns:
        ``[N, K, 2 H, 2 W]`` in the memory format of ``phases`` (channels-last or
        contiguous): pixel ``(2i + a, 2j + b)`` is ``phases[:, phase (a, b), i + a, j + b]``.
    """
    n, channels4, rows, cols = phases.shape
    if channels4 % 4 or rows != height + 1 or cols != width + 1:
        raise ValueError(
            f"expected [N, 4K, {height + 1}, {width + 1}] phases, got {list(phases.shape)}"
        )
    k = channels4 // 4
    out = torch.empty(
        (n, k, 2 * height, 2 * width),
        dtype=phases.dtype,
        device=phases.device,
        memory_format=memory_format_of(phases),
    )
    s_n, s_c, s_h, s_w = phases.stride()
    # [N, K, H, 2 (a), W, 2 (b)]: phase (a, b) starts a * 2K + b * K channels and a rows,
    # b columns further on.
    source = phases.as_strided(
        (n, k, height, 2, width, 2),
        (s_n, s_c, s_h, 2 * k * s_c + s_h, s_w, k * s_c + s_w),
        phases.storage_offset(),
    )
    out.view(n, k, height, 2, width, 2).copy_(source)
    return out


def upsample_conv3x3(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias,
    padding=1)`` in sub-pixel form.

    Args:
        x: ``[N, C, H, W]``.
        weight: ``[K, C, 3, 3]``.
        bias: ``[K]`` or ``None``.

    Returns:
        ``[N, K, 2 H, 2 W]`` in the memory format of ``x`` (channels-last or contiguous).
    """
    folded = subpixel_weight(weight).contiguous(memory_format=memory_format_of(x))
    phases = F.conv2d(x, folded, subpixel_bias(bias), padding=1)
    return interleave_phases(phases, x.shape[2], x.shape[3])


def upsample_nearest2x(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, 2 H, 2 W]``, each pixel repeated 2 x 2 times."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def subpixel_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :class:`UpsampleConv2d` uses :func:`upsample_conv3x3` for this
    low-resolution input: everywhere except where the up-sampled input would be
    convolved as one matrix product (:func:`~sharpdepth.accel.winograd.gemm_applies`: the
    sub-pixel form's direct 2x2 convolution on so few pixels was slower) or by Winograd
    with at least :data:`WINOGRAD_TILES_PER_CHANNEL` tiles per channel.

    Args:
        x: ``[N, C, H, W]`` low-resolution input.
        weight: ``[K, C, 3, 3]``.
    """
    upsampled = x.new_empty(()).expand(x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3])
    if gemm_applies(upsampled, weight):
        return False
    if not winograd_applies(upsampled, weight):
        return True
    tiles = -(-upsampled.shape[2] // 4) * -(-upsampled.shape[3] // 4)
    return tiles < WINOGRAD_TILES_PER_CHANNEL * max(weight.shape[0], weight.shape[1])


class UpsampleConv2d(WinogradConv2d):
    """A 3x3 ``nn.Conv2d`` (zero padding 1) that first up-samples its input 2x (nearest):
    in sub-pixel form where :func:`subpixel_applies`, else on the up-sampled input by
    :class:`~sharpdepth.accel.winograd.WinogradConv2d`'s choice.

    Input ``[N, C, H, W]``; output ``[N, K, 2 H, 2 W]``. ``upsample=False``: the plain
    convolution of an input that is already up-sampled. Same parameters, state dict and
    hooks as the ``nn.Conv2d`` it was made from (by :func:`use_subpixel_upsampling`).
    """

    def forward(self, input: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        if not upsample:
            return super().forward(input)
        if subpixel_applies(input, self.weight):
            return upsample_conv3x3(input, self.weight, self.bias)
        return super().forward(upsample_nearest2x(input))


def _fused_upsample2d_forward(
    module: Any, hidden_states: torch.Tensor, output_size: Any = None, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """``diffusers`` ``Upsample2D.forward`` (no norm, interpolation and a 3x3 convolution)
    with the up-sampling done by the convolution (an :class:`UpsampleConv2d` or an int8
    one) when the output is exactly 2x; other output sizes are up-sampled first and the
    convolution runs with ``upsample=False``. Extra arguments are ignored, as there."""
    h, w = hidden_states.shape[-2:]
    if output_size is None or tuple(int(s) for s in output_size) == (2 * h, 2 * w):
        return module.conv(hidden_states)
    upsampled = F.interpolate(hidden_states, size=output_size, mode="nearest")
    return module.conv(upsampled, upsample=False)


@functools.cache
def _upsample2d_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """``diffusers``' ``Upsample2D`` and its sub-pixel subclass (diffusers is imported
    on first use, as elsewhere in the package)."""
    from diffusers.models.upsampling import Upsample2D

    doc = "``Upsample2D`` whose convolution does the up-sampling."
    fused = _subclass(Upsample2D, "SubpixelUpsample2D", _fused_upsample2d_forward, doc, __name__)
    return Upsample2D, fused


class _PassThrough(nn.Module):
    """Stands in for an ``nn.Upsample`` whose following convolution up-samples itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _fusable_conv(module: nn.Module | None) -> bool:
    """A float 3x3 'same' convolution (zero padding 1, stride 1) of the kinds that
    :class:`UpsampleConv2d` can replace."""
    if not isinstance(module, nn.Conv2d) or type(module) not in (nn.Conv2d, WinogradConv2d):
        return False
    return (
        module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding in ((1, 1), "same")
        and module.padding_mode == "zeros"
    )


def _nearest_doubling(module: nn.Module) -> bool:
    """An ``nn.Upsample`` that doubles both sides by nearest neighbour."""
    if type(module) is not nn.Upsample:
        return False
    factor = module.scale_factor
    factors = factor if isinstance(factor, tuple) else (factor, factor)
    return module.mode == "nearest" and module.size is None and all(f == 2 for f in factors)


def use_subpixel_upsampling(net: nn.Module) -> int:
    """Let ``net``'s nearest 2x up-sampling + 3x3 convolution stages run in sub-pixel
    form, in place.

    Converted: ``diffusers`` ``Upsample2D`` layers with a 3x3 convolution (the UNet's
    and ``AutoencoderKL``'s; no norm, no transposed convolution) and, in
    ``nn.Sequential`` containers, an ``nn.Upsample(scale_factor=2)`` directly followed
    by a 3x3 convolution (``AutoencoderTiny``'s decoder). Only classes change; call it
    before :func:`~sharpdepth.accel.int8.quantize_int8` so that int8 layers are made in this
    form too.

    Returns:
        The number of converted stages.
    """
    upsample2d, fused = _upsample2d_classes()
    converted = 0
    for module in net.modules():
        if type(module) is upsample2d:
            conv = getattr(module, "conv", None)
            if (
                module.interpolate
                and module.use_conv
                and not module.use_conv_transpose
                and module.norm is None
                and _fusable_conv(conv)
            ):
                _swap_class(module, fused)
                _swap_class(conv, UpsampleConv2d)
                converted += 1
        elif isinstance(module, nn.Sequential):
            for first, second in itertools.pairwise(module):
                if _nearest_doubling(first) and _fusable_conv(second):
                    _swap_class(first, _PassThrough)
                    _swap_class(second, UpsampleConv2d)
                    converted += 1
    LOGGER.debug("sub-pixel up-sampling for %d stages of %s", converted, type(net).__name__)
    return converted


def use_plain_upsampling(net: nn.Module) -> None:
    """Undo :func:`use_subpixel_upsampling` (stages whose convolution was made int8 stay
    as they are: int8 layers cannot be converted back)."""
    upsample2d, fused = _upsample2d_classes()
    for module in net.modules():
        if type(module) is fused:
            if type(module.conv) is UpsampleConv2d:
                _swap_class(module, upsample2d)
                _swap_class(module.conv, nn.Conv2d)
        elif isinstance(module, nn.Sequential):
            for first, second in itertools.pairwise(module):
                if type(first) is _PassThrough and type(second) is UpsampleConv2d:
                    _swap_class(first, nn.Upsample)
                    _swap_class(second, nn.Conv2d)
