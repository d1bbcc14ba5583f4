"""Int8 linear and convolution layers with dynamically quantised inputs, for fast mode
on x86 CPUs.

On CPUs without native bfloat16 (AVX2 and older AVX-512) the fastest arithmetic PyTorch
offers is 8-bit integer products (8-bit multiplies summed in pairs, with four times as
many lanes as float32 fused multiply-adds). Both layers keep their weights as int8 with
one symmetric scale per output channel (``scale = max|w| / 127``), quantise their input
on every call (nothing needs calibrating), accumulate in int32 and return float32 with
the float bias added:

* :class:`Int8Linear` (FBGEMM) quantises each row (token) of its input on its own
  scale: rows are divided by their largest magnitude before the call and the outputs
  multiplied back, so one token with large activations does not coarsen the others.
  It differs from the float32 layer by 1.5-1.8% (relative L2, random weights and inputs
  of the SD-2 UNet's layer shapes, ``experiments/speed/int8_layers.py``). oneDNN's int8
  linear operator with the same quantisation was tried instead: faster in isolated
  UNet passes (6.08 s against 6.55 s), but SD-2 fast+tiny calls in ``sharpdepth speed``
  took 16.9-17.6 s with it against 16.0-16.6 s with FBGEMM (four runs against three).
* :class:`Int8Conv2d` (oneDNN) quantises its whole input on one asymmetric scale
  (its minimum to 0, its maximum to 127) and gets a float32 output straight from the
  int32 sums. It differs from the float32 convolution by 1.7-2.2% (the SD-2 UNet's
  convolution shapes, random weights, inputs after a SiLU).

What they do to a whole model's depth is in ``docs/speed.md``'s quality table. Inference only:
no gradients, and the layers cannot be saved. Made by :func:`quantize_int8`, in place,
for linear layers of at least :data:`MIN_FEATURES` input and output features and
convolutions of at least :data:`MIN_CONV_CHANNELS` channels in a UNet, and of at least
:data:`MIN_TINY_AUTOENCODER_CHANNELS` in a tiny autoencoder.

PyTorch's dynamically quantised convolution (``quantized::conv2d_dynamic``) is not used:
it re-quantises its output to 8 bits and returned zeros for every negative output in our
tests (an error of 30-80% for inputs that are mostly positive, as after SiLU); the
oneDNN operator used here returns float32. Going through unfolded patches and the int8
linear was 0.26-0.47x as fast as the float32 convolution from 48 x 36 pixels on.

PyTorch marks its quantised tensor functions as deprecated (they still work in the
pinned 2.13); :func:`int8_available` and :func:`int8_convolution_available` report
whether the operators exist.
"""

from __future__ import annotations

import logging
import platform
import warnings

import torch
from torch import nn

from sharpdepth.accel.upsampling import (
    UpsampleConv2d,
    interleave_phases,
    subpixel_bias,
    subpixel_weight,
)

LOGGER = logging.getLogger(__name__)

#: Layers with fewer input or output features than this stay float32: on narrow layers
#: the per-row scaling and the input's quantisation cost more than the int8 products save
#: (the nano UNet, 32-128 features: 0.091 s per pass in int8 against 0.075-0.080 s; the
#: SD-2 UNet's narrowest, 320 features on 6144 tokens: 1.05-1.48x faster in int8).
MIN_FEATURES = 256

#: Convolutions with fewer input or output channels than this stay float32 (they are
#: then the nano models' narrow layers or the autoencoder's 128-channel ones at full
#: resolution, where the int8 convolution measured 0.47x as fast as float32). The SD-2
#: UNet's (320-1280 channels) are converted.
MIN_CONV_CHANNELS = 256

#: A TAESD-style tiny autoencoder's convolutions of at least this many input and output
#: channels are converted too (all but its first and last). On a 2-core AVX2 CPU, in
#: int8 against float32 (channels-last, sub-pixel up-sampling): SD-2's TAESD shapes (64
#: channels) at 768 x 512 px, encode 0.97-1.10 s against 1.34-1.55 s, decode 1.09-1.14 s
#: against 1.42-1.58 s; the nano family's (32 channels) 0.32-0.34 s against 0.40-0.44 s
#: and 0.36-0.38 s against 0.45-0.48 s.
MIN_TINY_AUTOENCODER_CHANNELS = 32

_QMAX = 127  # symmetric int8 weights
#: Input codes of :class:`Int8Conv2d`: 0..127. With 8-bit codes, AVX2's multiply-add of
#: unsigned by signed bytes saturates its 16-bit pair sums (2 x 255 x 127 > 32767):
#: errors of 10% were measured on inputs spread over their whole range.
_INPUT_CODES = 127
_ENGINES = ("x86", "fbgemm")


def int8_available() -> bool:
    """Whether this machine runs the int8 layers: an x86-64 CPU and a PyTorch build with
    the FBGEMM (``x86``) quantised engine."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    ops = torch.ops.quantized
    if not (hasattr(ops, "linear_prepack") and hasattr(ops, "linear_dynamic")):
        return False
    return any(engine in torch.backends.quantized.supported_engines for engine in _ENGINES)


def int8_convolution_available() -> bool:
    """Whether :class:`Int8Conv2d` runs here: :func:`int8_available` and PyTorch's oneDNN
    quantised convolution operators."""
    ops = torch.ops.onednn
    return (
        int8_available()
        and torch.backends.mkldnn.is_available()
        and hasattr(ops, "qconv_prepack")
        and hasattr(ops, "qconv2d_pointwise")
    )


def _require_engine() -> None:
    """Select the x86 quantised engine (ARM's QNNPACK would round differently) or fail."""
    if not int8_available():
        raise RuntimeError("int8 layers need an x86-64 CPU and PyTorch's FBGEMM engine")
    if torch.backends.quantized.engine not in _ENGINES:
        supported = torch.backends.quantized.supported_engines
        torch.backends.quantized.engine = "x86" if "x86" in supported else "fbgemm"


def quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """Symmetric per-output-channel int8 quantisation.

    Args:
        weight: ``[out, ...]`` float weights (any float dtype, on the CPU).

    Returns:
        A ``torch.qint8`` per-channel quantised tensor of the same shape (axis 0), scale
        ``max|w| / 127`` per output channel (a tiny positive scale for all-zero channels).
    """
    w = weight.detach().float().contiguous()
    absmax = w.reshape(w.shape[0], -1).abs().amax(dim=1).double()
    scales = torch.clamp(absmax / _QMAX, min=1e-12)
    zero_points = torch.zeros(w.shape[0], dtype=torch.long)
    with warnings.catch_warnings():  # deprecated in PyTorch, see the module docstring
        warnings.filterwarnings("ignore", message=".*quantize_per_channel.*deprecated")
        return torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)


def _float_bias(bias: torch.Tensor | None) -> torch.Tensor | None:
    return None if bias is None else bias.detach().float().contiguous()


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights and per-row dynamically quantised int8 inputs, on
    the CPU.

    Input ``[..., in_features]``, output ``[..., out_features]`` in the input's dtype
    (computed from float32). The output features can be packed as several groups
    (:meth:`split_outputs`), each computed by its own product: :meth:`forward_groups`
    returns them as separate contiguous tensors (e.g. a GEGLU's value and gate halves).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        _require_engine()
        self.out_features, self.in_features = (int(s) for s in weight.shape)
        self._groups: list[tuple[torch.Tensor, torch.Tensor | None]] = [
            (torch.ops.quantized.linear_prepack(quantize_weight(weight), None), _float_bias(bias))
        ]

    @classmethod
    def from_float(cls, layer: nn.Linear) -> Int8Linear:
        """Quantise a float ``nn.Linear`` (its weights are copied, not kept)."""
        return cls(layer.weight, layer.bias)

    @property
    def groups(self) -> int:
        """How many groups the output features are packed in (1 unless split)."""
        return len(self._groups)

    def split_outputs(self, groups: int) -> Int8Linear:
        """Pack the output features as ``groups`` equal consecutive groups, each one
        product (the same int8 weights and scales: the same results). On a 2-core AVX2
        CPU the SD-2 UNet's first-level GEGLU projection (6144 x 320 -> 2560) took
        37.7-40.9 ms as two or four groups against 66-76 ms as one (FBGEMM).

        Returns:
            ``self``.
        """
        if groups < 1 or self.out_features % groups:
            raise ValueError(f"cannot split {self.out_features} output features in {groups} groups")
        unpacked = [self._unpacked_weight(packed) for packed, _ in self._groups]
        weight_codes = torch.cat([codes for codes, _ in unpacked])
        weight_scales = torch.cat([scales for _, scales in unpacked])
        biases = [bias for _, bias in self._groups if bias is not None]
        bias = torch.cat(biases) if biases else None
        size = self.out_features // groups
        groups_: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for i in range(groups):
            part = slice(i * size, (i + 1) * size)
            weight = torch._make_per_channel_quantized_tensor(
                weight_codes[part].contiguous(),
                weight_scales[part].contiguous(),
                torch.zeros(size, dtype=torch.long),
                0,
            )
            packed = torch.ops.quantized.linear_prepack(weight, None)
            groups_.append((packed, None if bias is None else bias[part].contiguous()))
        self._groups = groups_
        return self

    @staticmethod
    def _unpacked_weight(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The int8 codes ``[out, in]`` and per-output-channel scales ``[out]`` (float64)
        of a packed FBGEMM weight."""
        weight, _ = torch.ops.quantized.linear_unpack(packed)
        return weight.int_repr(), weight.q_per_channel_scales()

    def forward_groups(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outputs of each group of output features (see :meth:`split_outputs`).

        Args:
            x: ``[..., in_features]``.

        Returns:
            :attr:`groups` contiguous ``[..., out_features / groups]`` tensors in ``x``'s
            dtype.
        """
        rows = x.reshape(-1, self.in_features).float()
        # each row on its own scale: normalise to max |x| = 1, rescale the products
        scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
        normalised = rows / scale
        outputs = []
        for packed, bias in self._groups:
            out = torch.ops.quantized.linear_dynamic(normalised, packed, True)
            out.mul_(scale)
            if bias is not None:
                out.add_(bias)
            outputs.append(out.view(*x.shape[:-1], out.shape[-1]).to(x.dtype))
        return tuple(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self.forward_groups(x)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups > 1 else ""
        return f"in_features={self.in_features}, out_features={self.out_features}{groups}, int8"


class Int8Conv2d(nn.Module):
    """``nn.Conv2d`` with int8 weights and an int8 input quantised on every call, on the
    CPU (oneDNN).

    The input is mapped to 0..127 on one asymmetric scale per call (its minimum and
    maximum, widened to include 0, so that zero padding stays exact; 7 bits, see
    ``_INPUT_CODES``); the int32 sums come back as float32. Input ``[N, in_channels, H,
    W]``, output ``[N, out_channels, H', W']`` in the input's dtype and in channels-last
    memory layout (what oneDNN returns; the values are those of a contiguous tensor).
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> None:
        super().__init__()
        if not int8_convolution_available():
            raise RuntimeError("int8 convolutions need an x86-64 CPU and PyTorch's oneDNN")
        self.out_channels = int(weight.shape[0])
        self.in_channels = int(weight.shape[1]) * groups
        self.kernel_size = (int(weight.shape[2]), int(weight.shape[3]))
        self._geometry = ([*stride], [*padding], [*dilation], groups)
        q = quantize_weight(weight)
        self._weight_scales = q.q_per_channel_scales().float()
        self._weight_zero_points = torch.zeros(self.out_channels, dtype=torch.long)
        self.bias: torch.Tensor | None = _float_bias(bias)
        self._packed = torch.ops.onednn.qconv_prepack(
            q.int_repr(), self._weight_scales, 1.0, 0, *self._geometry, None
        )

    @classmethod
    def from_float(cls, layer: nn.Conv2d) -> Int8Conv2d:
        """Quantise a float ``nn.Conv2d`` with zero padding given as numbers (its weights
        are copied, not kept)."""
        if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
            raise ValueError("Int8Conv2d takes convolutions with numeric zero padding")
        return cls(
            layer.weight,
            layer.bias,
            _pair(layer.stride),
            _pair(layer.padding),
            _pair(layer.dilation),
            layer.groups,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        low, high = (float(v) for v in _dense_view(xf).aminmax())
        low, high = min(low, 0.0), max(high, 0.0)
        scale = max(high - low, 1e-30) / _INPUT_CODES
        zero_point = min(_INPUT_CODES, max(0, round(-low / scale)))
        with warnings.catch_warnings():  # deprecated in PyTorch, see the module docstring
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated")
            codes = torch.quantize_per_tensor(xf, scale, zero_point, torch.quint8).int_repr()
        out = torch.ops.onednn.qconv2d_pointwise(
            codes,
            scale,
            zero_point,
            self._packed,
            self._weight_scales,
            self._weight_zero_points,
            self.bias,
            *self._geometry,
            1.0,  # output scale and zero point: unused for a float32 output
            0,
            torch.float32,
            "none",
            [],
            "",
        )
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        stride, padding, _, groups = self._geometry
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={tuple(stride)}, padding={tuple(padding)}, groups={groups}, int8"
        )


class Int8UpsampleConv2d(nn.Module):
    """An :class:`~sharpdepth.accel.upsampling.UpsampleConv2d` (nearest 2x up-sampling, then a
    3x3 convolution) with :class:`Int8Conv2d` layers.

    The up-sampled convolution runs in sub-pixel form (one int8 2x2 convolution with
    four times the output channels on the low-resolution input, see
    :mod:`sharpdepth.accel.upsampling`); ``upsample=False`` runs the plain int8 3x3 convolution
    on an input that is already up-sampled (for output sizes other than 2x), so both
    weight sets are kept. Input ``[N, C, H, W]``, output ``[N, K, 2 H, 2 W]``
    (channels-last memory layout, as :class:`Int8Conv2d`).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_channels, self.in_channels = (int(s) for s in weight.shape[:2])
        self.plain = Int8Conv2d(weight, bias, (1, 1), (1, 1), (1, 1), 1)
        folded = subpixel_weight(weight.detach().float())
        bias4 = subpixel_bias(None if bias is None else bias.detach().float())
        self.phases = Int8Conv2d(folded, bias4, (1, 1), (1, 1), (1, 1), 1)

    @classmethod
    def from_float(cls, layer: UpsampleConv2d) -> Int8UpsampleConv2d:
        """Quantise a float :class:`~sharpdepth.accel.upsampling.UpsampleConv2d` (its weights
        are copied, not kept)."""
        return cls(layer.weight, layer.bias)

    def forward(self, x: torch.Tensor, upsample: bool = True) -> torch.Tensor:
        if not upsample:
            return self.plain(x)
        return interleave_phases(self.phases(x), x.shape[2], x.shape[3])

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, upsample=2x, int8"


def _dense_view(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a 1-D view of its elements in memory order when it is dense in the
    contiguous or the channels-last layout (else ``x``): whole-tensor reductions of a
    channels-last tensor are much slower in its 4-D shape (``aminmax`` of a
    ``[1, 64, 256, 384]`` float32 tensor: 22 ms against 0.45 ms, 2-core AVX2 CPU)."""
    if x.is_contiguous():
        return x.view(-1)
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x.permute(0, 2, 3, 1).reshape(-1)  # a view: NHWC is its memory order
    return x


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


def _convertible_linear(module: nn.Module, min_features: int) -> bool:
    """A float linear layer wide enough to convert."""
    return (
        isinstance(module, nn.Linear)
        and min(module.in_features, module.out_features) >= min_features
    )


def _convertible_conv(module: nn.Module, min_channels: int) -> bool:
    """A float 2-D convolution with numeric zero padding, wide enough to convert."""
    return (
        isinstance(module, nn.Conv2d)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
        and min(module.in_channels, module.out_channels) >= min_channels
    )


def quantize_int8(
    net: nn.Module, min_features: int | None = None, min_channels: int | None = None
) -> int:
    """Replace ``net``'s linear layers by :class:`Int8Linear` and its 2-D convolutions by
    :class:`Int8Conv2d` (:class:`Int8UpsampleConv2d` for a
    :class:`~sharpdepth.accel.upsampling.UpsampleConv2d`), in place (the float weights are
    released).

    Linear layers with fewer than ``min_features`` (default :data:`MIN_FEATURES`) input or
    output features and convolutions with fewer than ``min_channels`` (default
    :data:`MIN_CONV_CHANNELS`) input or output channels stay float; convolutions also stay
    float where :func:`int8_convolution_available` is false. Forward hooks of the replaced
    layers are not carried over.

    Returns:
        The number of replaced layers.
    """
    _require_engine()
    if min_features is None:
        min_features = MIN_FEATURES
    if min_channels is None:
        min_channels = MIN_CONV_CHANNELS
    convolutions = int8_convolution_available()
    replaced = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            layer: nn.Module
            if _convertible_linear(child, min_features):
                layer = Int8Linear.from_float(child)  # type: ignore[arg-type]
            elif convolutions and isinstance(child, UpsampleConv2d):
                if not _convertible_conv(child, min_channels):
                    continue
                layer = Int8UpsampleConv2d.from_float(child)
            elif convolutions and _convertible_conv(child, min_channels):
                layer = Int8Conv2d.from_float(child)  # type: ignore[arg-type]
            else:
                continue
            setattr(parent, name, layer)
            replaced += 1
    LOGGER.debug("int8 layers: %d in %s", replaced, type(net).__name__)
    return replaced


def has_int8_layers(net: nn.Module) -> bool:
    """Whether :func:`quantize_int8` converted any of ``net``'s layers."""
    return any(isinstance(m, (Int8Linear, Int8Conv2d, Int8UpsampleConv2d)) for m in net.modules())
