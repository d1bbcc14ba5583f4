"""Winograd F(4x4, 3x3) convolution for the wide float32 3x3 layers, on the CPU.

A 3x3 convolution with stride 1 computes each 4 x 4 block of outputs from a 6 x 6 block
of inputs. Winograd's minimal filtering algorithm (Lavin & Gray, "Fast Algorithms for
Convolutional Neural Networks", 2016) does it with 36 multiplications per channel pair
instead of 144, after linear transforms of the input tiles (``B^T d B``), the weights
(``G g G^T``) and the products (``A^T m A``). The 36 products become 36 batched matrix
products over channels, which BLAS runs near the CPU's peak.

On a 2-core AVX2 CPU (float32, SD-2 autoencoder and UNet shapes), one layer ran
1.0-2.3x faster than PyTorch's direct convolution for 128-512 channels at 96 x 64 to
768 x 512 pixels, the wider the faster (``experiments/speed/winograd_layers.py``). Narrow
layers (under 128 channels) and wide layers on few pixels (the UNet's 640 and 1280
channel levels below 96 x 64) are slower this way: the transforms and reading the
transformed weights cost more than the saved multiplications. So only layers that pass
:func:`winograd_applies` use it; the others keep the direct convolution.

The result is the same convolution up to float rounding, with a larger rounding error
than the direct one: about ``1e-5`` of the output's largest magnitude against ``2e-6``
(float32, random weights). Float16 and bfloat16 are not converted: their rounding is
too coarse for the transforms.

The opposite case, wide layers on few pixels (the UNet's 1280-channel levels at 24 x 18
and 12 x 9 latent pixels for a 768 px image), runs faster as one matrix product of the
weights with the unfolded 3 x 3 neighbourhoods ("im2col", :func:`gemm_conv3x3`):
1.14-1.36x at 24 x 16 to 24 x 18 and 1.95-2.41x at 12 x 8 to 12 x 9 on that CPU, where
the direct convolution leaves most of the arithmetic units idle. Same arithmetic, so the
same result up to float rounding; used where :func:`gemm_applies`.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

LOGGER = logging.getLogger(__name__)

#: Layers with fewer input or output channels than this keep the direct convolution.
MIN_CHANNELS = 128

#: Elements per working buffer of one band of tile rows (4 MB of float32): the input
#: tiles of a band and their products stay in the CPU's caches.
BAND_ELEMENTS = 2**20

_TILE = 4  # output pixels per tile side
_ALPHA = _TILE + 2  # input pixels per tile side

# F(4x4, 3x3) with interpolation points 0, 1, -1, 2, -2 and infinity.
_BT = (
    (4.0, 0.0, -5.0, 0.0, 1.0, 0.0),
    (0.0, -4.0, -4.0, 1.0, 1.0, 0.0),
    (0.0, 4.0, -4.0, -1.0, 1.0, 0.0),
    (0.0, -2.0, -1.0, 2.0, 1.0, 0.0),
    (0.0, 2.0, -1.0, -2.0, 1.0, 0.0),
    (0.0, 4.0, 0.0, -5.0, 0.0, 1.0),
)
_G = (
    (1 / 4, 0.0, 0.0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0.0, 0.0, 1.0),
)
_AT = (
    (1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
    (0.0, 1.0, -1.0, 2.0, -2.0, 0.0),
    (0.0, 1.0, 1.0, 4.0, 4.0, 0.0),
    (0.0, 1.0, -1.0, 8.0, -8.0, 1.0),
)


def _wide_float32_inference(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """A float32 CPU 3x3 convolution without autograd, with at least :data:`MIN_CHANNELS`
    input and output channels: what both faster ways require."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False
    if x.ndim != 4 or tuple(weight.shape[2:]) != (3, 3):
        return False
    return min(weight.shape[0], weight.shape[1]) >= MIN_CHANNELS


def winograd_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`winograd_conv3x3` is used for this input and weight.

    True for float32 CPU tensors without autograd, at least :data:`MIN_CHANNELS`
    input and output channels, and at least half as many 4 x 4 output tiles as the
    larger channel count (below that, transforming and reading the 36 weight matrices
    costs more than the multiplications saved).

    Args:
        x: ``[N, C, H, W]`` input.
        weight: ``[K, C, 3, 3]`` weights.
    """
    if not _wide_float32_inference(x, weight):
        return False
    out_channels, in_channels = weight.shape[:2]
    tiles = -(-x.shape[2] // _TILE) * -(-x.shape[3] // _TILE)
    return 2 * tiles >= max(in_channels, out_channels)


def gemm_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether :func:`gemm_conv3x3` is used for this input and weight (when
    :func:`winograd_applies` is not).

    True for float32 CPU tensors without autograd, at least :data:`MIN_CHANNELS` input
    and output channels, and at most half as many pixels per image as output channels
    (measured break-even on a 2-core AVX2 CPU: 384-432 pixels gained 1.14-1.36x with
    1280 output channels and lost 3% with 640).

    Args:
        x: ``[N, C, H, W]`` input.
        weight: ``[K, C, 3, 3]`` weights.
    """
    if not _wide_float32_inference(x, weight):
        return False
    return 2 * x.shape[2] * x.shape[3] <= weight.shape[0]


def _output_channels(x: torch.Tensor, weight: torch.Tensor) -> int:
    """``K`` of ``[K, C, 3, 3]`` weights for an ``[N, C, H, W]`` input, or ValueError."""
    c = x.shape[1]
    if weight.shape[1] != c or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected [K, {c}, 3, 3] weights, got {list(weight.shape)}")
    return int(weight.shape[0])


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last (and not also contiguous) tensor, else
    ``torch.contiguous_format``."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _in_layout_of(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` made dense in ``x``'s memory format (channels-last, else contiguous)."""
    return out.contiguous(memory_format=memory_format_of(x))


def gemm_conv3x3(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` as one matrix product per image.

    Args:
        x: ``[N, C, H, W]``.
        weight: ``[K, C, 3, 3]``.
        bias: ``[K]`` or ``None``.

    Returns:
        ``[N, K, H, W]`` in the memory format of ``x`` (channels-last or contiguous).
    """
    n, c, h, w = x.shape
    k = _output_channels(x, weight)
    columns = torch.nn.functional.unfold(x, 3, padding=1)  # [N, C * 9, H * W]
    matrix = weight.reshape(k, c * 9)
    if bias is None:
        out = torch.matmul(matrix, columns)
    else:
        out = torch.baddbmm(bias.view(1, k, 1).expand(n, k, 1), matrix.expand(n, k, c * 9), columns)
    return _in_layout_of(x, out.view(n, k, h, w))


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """The 36 weight matrices ``G g G^T`` of a 3x3 convolution.

    Args:
        weight: ``[K, C, 3, 3]``.

    Returns:
        ``[36, C, K]``: entry ``(6 i + j, c, k)`` is element ``(i, j)`` of the transformed
        filter from input channel ``c`` to output channel ``k``.
    """
    out_channels, in_channels = weight.shape[:2]
    g = torch.tensor(_G, dtype=weight.dtype, device=weight.device)
    by_tap = weight.permute(2, 3, 1, 0).reshape(3, 3 * in_channels * out_channels)
    rows = torch.mm(g, by_tap).view(_ALPHA, 3, in_channels * out_channels)
    return torch.matmul(g, rows).view(_ALPHA * _ALPHA, in_channels, out_channels)


def winograd_conv3x3(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    band_elements: int = BAND_ELEMENTS,
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` by Winograd F(4x4, 3x3), for inference.

    The image is processed in bands of tile rows so that each band's tiles and products
    fit the caches; each band's buffers are reused by the next, so the extra memory is a
    few bands' worth, not a padded copy of ``x``. No autograd (the products are written
    into preallocated buffers).

    Args:
        x: ``[N, C, H, W]``, any H and W (the last tiles are zero-padded).
        weight: ``[K, C, 3, 3]``.
        bias: ``[K]`` or ``None``.
        band_elements: target size of a band's working buffers, in elements.

    Returns:
        ``[N, K, H, W]`` in the memory format of ``x`` (channels-last or contiguous).
    """
    n, c, h, w = x.shape
    k = _output_channels(x, weight)
    tiles_h, tiles_w = -(-h // _TILE), -(-w // _TILE)
    transformed = transform_weight(weight)
    bt = torch.tensor(_BT, dtype=x.dtype, device=x.device)
    at = torch.tensor(_AT, dtype=x.dtype, device=x.device)

    pixels = x.permute(0, 2, 3, 1)  # NHWC view
    out = x.new_empty(n, _TILE * tiles_h, _TILE * tiles_w, k)
    widest = max(c, k)
    per_row = n * tiles_w  # tiles per row of tiles
    band_rows = max(1, min(tiles_h, band_elements // (_ALPHA * _ALPHA * widest * per_row)))
    size = _ALPHA * _ALPHA * per_row * band_rows * widest
    first, second = x.new_empty(size), x.new_empty(size)
    # One band's input rows, zero-padded: one pixel of the convolution's padding on each
    # side, plus up to 3 to complete the last tiles.
    strip = x.new_empty(n, _TILE * band_rows + 2, _TILE * tiles_w + 2, c)
    strip[:, :, 0].zero_()
    strip[:, :, w + 1 :].zero_()
    s_n, s_h, s_w, s_c = strip.stride()
    for row in range(0, tiles_h, band_rows):
        rows = min(band_rows, tiles_h - row)
        p = per_row * rows
        top = _TILE * row - 1  # image row of the strip's first row
        lo, hi = max(top, 0), min(top + _TILE * rows + 2, h)
        strip[:, : lo - top].zero_()
        strip[:, hi - top :].zero_()
        strip[:, lo - top : hi - top, 1 : w + 1].copy_(pixels[:, lo:hi])
        # [6, 6, N, rows, tiles_w, C] overlapping view of the band's 6 x 6 input tiles.
        tiles = strip.as_strided(
            (_ALPHA, _ALPHA, n, rows, tiles_w, c),
            (s_h, s_w, s_n, _TILE * s_h, _TILE * s_w, s_c),
        )
        d = first[: _ALPHA * _ALPHA * p * c].view(_ALPHA, _ALPHA, p * c)
        d.view(_ALPHA, _ALPHA, n, rows, tiles_w, c).copy_(tiles)
        # B^T d B, one side at a time: [6, 6, P * C].
        half = second[: _ALPHA * _ALPHA * p * c].view(_ALPHA, _ALPHA, p * c)
        torch.mm(bt, d.view(_ALPHA, -1), out=half.view(_ALPHA, -1))
        torch.matmul(bt, half, out=d)
        # 36 products over channels: [36, P, K].
        products = second[: _ALPHA * _ALPHA * p * k].view(_ALPHA * _ALPHA, p, k)
        torch.bmm(d.view(_ALPHA * _ALPHA, p, c), transformed, out=products)
        # A^T m A: [4, 4, P * K].
        half_out = first[: _TILE * _ALPHA * p * k].view(_TILE, _ALPHA, p * k)
        torch.mm(at, products.view(_ALPHA, -1), out=half_out.view(_TILE, -1))
        result = second[: _TILE * _TILE * p * k].view(_TILE, _TILE, p * k)
        torch.matmul(at, half_out, out=result)
        band = out[:, _TILE * row : _TILE * (row + rows)]
        band.view(n, rows, _TILE, tiles_w, _TILE, k).copy_(
            result.view(_TILE, _TILE, n, rows, tiles_w, k).permute(2, 3, 0, 4, 1, 5)
        )
    if bias is not None:
        out.add_(bias)
    return _in_layout_of(x, out[:, :h, :w].permute(0, 3, 1, 2))


class WinogradConv2d(nn.Conv2d):
    """A 3x3 ``nn.Conv2d`` that runs :func:`winograd_conv3x3` where
    :func:`winograd_applies`, :func:`gemm_conv3x3` where :func:`gemm_applies`, else the
    direct convolution. Same parameters and state dict as ``nn.Conv2d``; made by
    :func:`use_winograd`, undone by :func:`use_direct_convolution`."""

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if winograd_applies(input, weight):
            return winograd_conv3x3(input, weight, bias)
        if gemm_applies(input, weight):
            return gemm_conv3x3(input, weight, bias)
        return super()._conv_forward(input, weight, bias)


def _convertible(module: nn.Module) -> bool:
    """A plain ``nn.Conv2d`` computing a zero-padded 3x3 'same' convolution."""
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding in ((1, 1), "same")
        and module.padding_mode == "zeros"
        and min(module.in_channels, module.out_channels) >= MIN_CHANNELS
    )


def _swap_class(module: nn.Module, cls: type[nn.Module]) -> None:
    """Change a convolution between ``nn.Conv2d`` and :class:`WinogradConv2d` in place
    (the same object, parameters, buffers and hooks; only the forward differs)."""
    module.__class__ = cls


def _subclass(
    base: type[nn.Module], name: str, forward: Any, doc: str, module: str
) -> type[nn.Module]:
    """``base`` with another ``forward``, named ``name`` in ``module``: a class for
    :func:`_swap_class` (which keeps a module's parameters and hooks)."""
    return type(name, (base,), {"forward": forward, "__doc__": doc, "__module__": module})


def use_winograd(net: nn.Module) -> int:
    """Let ``net``'s wide 3x3 convolutions run by Winograd, or as one matrix product,
    where that is faster.

    The layers are converted in place to :class:`WinogradConv2d` (the same module
    objects, parameters and hooks); each call then chooses by :func:`winograd_applies`
    and :func:`gemm_applies`.

    Returns:
        The number of converted layers.
    """
    converted = 0
    for module in net.modules():
        if _convertible(module):
            _swap_class(module, WinogradConv2d)
            converted += 1
    LOGGER.debug("Winograd convolution for %d layers of %s", converted, type(net).__name__)
    return converted


def use_direct_convolution(net: nn.Module) -> None:
    """Undo :func:`use_winograd`: every :class:`WinogradConv2d` becomes an ``nn.Conv2d``."""
    for module in net.modules():
        if type(module) is WinogradConv2d:
            _swap_class(module, nn.Conv2d)
