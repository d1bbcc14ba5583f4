"""Int8 linear layers with dynamically quantised inputs, for fast mode on x86 CPUs.

On CPUs without native bfloat16 (AVX2 and older AVX-512) the fastest arithmetic PyTorch
offers is 8-bit integer matrix products (FBGEMM: 8-bit multiplies summed in pairs, with
four times as many lanes as float32 fused multiply-adds). An :class:`Int8Linear` keeps
its weights as int8 with one scale per output channel (symmetric, ``scale = max|w| /
127``). On every call it quantises its input to 7-bit unsigned integers, each row
(token) on its own scale: rows are divided by their largest magnitude before the call
and the outputs multiplied back, so one token with large activations does not coarsen
the others and nothing needs calibrating. The products are accumulated in int32 and the
float32 result is rescaled, with the float bias added.

The result differs from the float32 layer by 1.5-1.8% (relative L2, random weights and
inputs of the SD-2 UNet's layer shapes, ``benchmarks/int8_layers.py``); what it does to
a whole model's depth is in the README's quality table. Inference only: no gradients,
and the layers cannot be saved. Made by :func:`quantize_int8`, in place, for layers of
at least :data:`MIN_FEATURES` input and output features.

Convolutions stay float32: PyTorch's dynamically quantised convolution
(``quantized::conv2d_dynamic``) re-quantises its output to 8 bits and returned zeros for
every negative output in our tests (an error of 30-80% for inputs that are mostly
positive, as after SiLU), and going through unfolded patches was 0.26-0.47x as fast as
the float32 convolution from 48 x 36 pixels on.

PyTorch marks its quantised tensor functions as deprecated (they still work in the
pinned 2.13); :func:`int8_available` reports whether they exist.
"""

from __future__ import annotations

import logging
import platform
import warnings

import torch
from torch import nn

LOGGER = logging.getLogger(__name__)

#: Layers with fewer input or output features than this stay float32: on narrow layers
#: the per-row scaling and the input's quantisation cost more than the int8 products save
#: (the nano UNet, 32-128 features: 0.091 s per pass in int8 against 0.075-0.080 s; the
#: SD-2 UNet's narrowest, 320 features on 6144 tokens: 1.05-1.48x faster in int8).
MIN_FEATURES = 256

_QMAX = 127  # symmetric int8 weights
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
    (computed from float32).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        _require_engine()
        self.out_features, self.in_features = (int(s) for s in weight.shape)
        self.bias: torch.Tensor | None = _float_bias(bias)
        self._packed = torch.ops.quantized.linear_prepack(quantize_weight(weight), None)

    @classmethod
    def from_float(cls, layer: nn.Linear) -> Int8Linear:
        """Quantise a float ``nn.Linear`` (its weights are copied, not kept)."""
        return cls(layer.weight, layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        # each row on its own scale: normalise to max |x| = 1, rescale the products
        scale = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
        out = torch.ops.quantized.linear_dynamic(rows / scale, self._packed, True)
        out.mul_(scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.view(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def _convertible(module: nn.Module, min_features: int) -> bool:
    """A float linear layer wide enough to convert."""
    return (
        isinstance(module, nn.Linear)
        and min(module.in_features, module.out_features) >= min_features
    )


def quantize_int8(net: nn.Module, min_features: int | None = None) -> int:
    """Replace ``net``'s linear layers by :class:`Int8Linear`, in place (the float weights
    are released).

    Layers with fewer than ``min_features`` (default :data:`MIN_FEATURES`) input or output
    features stay float. Forward hooks of the replaced layers are not carried over.

    Returns:
        The number of replaced layers.
    """
    _require_engine()
    if min_features is None:
        min_features = MIN_FEATURES
    replaced = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if not _convertible(child, min_features):
                continue
            setattr(parent, name, Int8Linear.from_float(child))  # type: ignore[arg-type]
            replaced += 1
    LOGGER.debug("int8 layers: %d in %s", replaced, type(net).__name__)
    return replaced


def has_int8_layers(net: nn.Module) -> bool:
    """Whether :func:`quantize_int8` converted any of ``net``'s layers."""
    return any(isinstance(m, Int8Linear) for m in net.modules())
