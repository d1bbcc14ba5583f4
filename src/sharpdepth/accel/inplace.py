"""Activations that overwrite buffers nothing else reads, for inference: the same values
without allocating (and, for large activations, faulting in) a new buffer per step.

* :func:`use_in_place_relu`: a TAESD-style ``AutoencoderTiny``'s ReLUs;
  :func:`use_in_place_tiny_blocks`: its residual sums.
* :func:`use_in_place_geglu`: the UNet's GEGLU feed-forward activations (``a * gelu(g)``
  of the two halves of one projection): the GELU and the product are written into the
  projection's output (an int8 projection computes the two halves separately). The
  same values up to the last bit of some GELU outputs (PyTorch's vectorised and scalar
  GELU round differently, and which elements take which path depends on the memory
  layout).
* :func:`use_in_place_resnets`: the UNet's and the autoencoder's residual blocks: SiLUs,
  the time embedding's sum and the residual sum written into tensors just computed for
  them, no division by an ``output_scale_factor`` of 1. The same arithmetic; the sums
  may come out in another memory layout, so later reductions (group norms) can round
  differently.

SD-2 shapes, 768 px, fast+tiny calls on a 2-core AVX2 CPU, alternating, each layer
kind's own time per call (int8 layers included): GEGLU 1.69-2.10 s instead of
2.01-2.30 s (4 calls each), residual blocks 4.06-4.56 s instead of 4.36-4.84 s (3 each).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sharpdepth.accel.int8 import Int8Linear
from sharpdepth.accel.winograd import _subclass, _swap_class

LOGGER = logging.getLogger(__name__)


def use_in_place_relu(vae: nn.Module) -> int:
    """Let a TAESD-style autoencoder's ReLUs overwrite their input (the same result).

    In ``diffusers.AutoencoderTiny`` every ReLU is applied to a tensor just computed (a
    convolution's output or a block's residual sum) and used nowhere else, so each
    activation needs no buffer of its own. SD-2 shapes at 768 px on a 2-core AVX2 CPU
    (an encode and a decode at full and at half resolution, median of 4): 3.97 s
    instead of 4.24 s, and 3.86 s instead of 4.13 s in a second run.

    Returns:
        The number of ReLU modules changed.
    """
    relus = [m for m in vae.modules() if isinstance(m, nn.ReLU)]
    for relu in relus:
        relu.inplace = True
    return len(relus)


def _in_place_tiny_block_forward(module: Any, x: torch.Tensor) -> torch.Tensor:
    """``diffusers`` ``AutoencoderTinyBlock.forward`` adding the skip path into the
    convolutions' output instead of into a new tensor (the same sum); with autograd, the
    original."""
    if torch.is_grad_enabled():
        return _tiny_block_classes()[0].forward(module, x)
    out = module.conv(x)
    out.add_(module.skip(x))
    return module.fuse(out)


@functools.cache
def _tiny_block_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """``diffusers``' ``AutoencoderTinyBlock`` and its in-place subclass."""
    from diffusers.models.unets.unet_2d_blocks import AutoencoderTinyBlock

    doc = "``AutoencoderTinyBlock`` summing into its convolutions' output at inference."
    return AutoencoderTinyBlock, _subclass(
        AutoencoderTinyBlock,
        "InPlaceAutoencoderTinyBlock",
        _in_place_tiny_block_forward,
        doc,
        __name__,
    )


def use_in_place_tiny_blocks(vae: nn.Module) -> int:
    """Let a TAESD-style autoencoder's residual blocks add their skip path into their
    convolutions' output (the same values; only the blocks' class changes). At 768 x 512
    px the full-resolution sum into a new tensor took 36 ms (SD-2 TAESD shapes, 2-core
    AVX2 CPU, ``torch.profiler``), most of it faulting in the new buffer.

    Returns:
        The number of converted blocks.
    """
    return _swap_all(vae, *_tiny_block_classes())


def _in_place_geglu_forward(
    module: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """``diffusers`` ``GEGLU.forward`` writing into its projection's output when no
    gradient is recorded (the output is then a view of the projection's first half,
    rows ``2 * dim_out`` apart, or, for an int8 projection split in two groups, the
    contiguous value half); with autograd, or on devices other than CPU and CUDA, the
    original."""
    if torch.is_grad_enabled() or hidden_states.device.type not in ("cpu", "cuda"):
        original = _geglu_classes()[0].forward
        return original(module, hidden_states, *args, **kwargs)
    if isinstance(module.proj, Int8Linear) and module.proj.groups == 2:
        value, gate = module.proj.forward_groups(hidden_states)
    else:
        value, gate = module.proj(hidden_states).chunk(2, dim=-1)
    torch.ops.aten.gelu_(gate)
    return value.mul_(gate)


@functools.cache
def _geglu_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """``diffusers``' ``GEGLU`` and its in-place subclass (diffusers is imported on first
    use, as elsewhere in the package)."""
    from diffusers.models.activations import GEGLU

    doc = "``GEGLU`` computing into its projection's output at inference."
    return GEGLU, _subclass(GEGLU, "InPlaceGEGLU", _in_place_geglu_forward, doc, __name__)


def use_in_place_geglu(net: nn.Module) -> int:
    """Let ``net``'s ``diffusers`` GEGLU activations compute in place at inference (the
    same values to float rounding; the same module objects, parameters and state dict:
    only their class changes).

    An int8 projection (:class:`~sharpdepth.accel.int8.Int8Linear`) is split in its value and
    gate halves (:meth:`~sharpdepth.accel.int8.Int8Linear.split_outputs`: the same results),
    which then come out as two contiguous tensors: faster products for the SD-2 UNet's
    widest projection, and a contiguous output for the next layer.

    Returns:
        The number of converted layers.
    """
    base, in_place = _geglu_classes()
    for layer in net.modules():
        if type(layer) is base and isinstance(layer.proj, Int8Linear):
            layer.proj.split_outputs(2)
    return _swap_all(net, base, in_place)


def _in_place_resnet_forward(
    module: Any, input_tensor: torch.Tensor, temb: torch.Tensor | None, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """``diffusers`` ``ResnetBlock2D.forward`` for inference: the SiLUs, the time
    embedding's sum and the residual sum are written into the tensors just computed for
    them, and a division by an ``output_scale_factor`` of 1 is skipped (the same
    arithmetic: float addition is commutative). With autograd, in training mode, or for
    blocks that resample or use another time-embedding norm or activation, the original."""
    plain = (
        not torch.is_grad_enabled()
        and not module.training
        and module.upsample is None
        and module.downsample is None
        and module.time_embedding_norm == "default"
        and type(module.nonlinearity) is nn.SiLU
    )
    if not plain:
        original = _resnet_classes()[0].forward
        return original(module, input_tensor, temb, *args, **kwargs)
    hidden = F.silu(module.norm1(input_tensor), inplace=True)
    hidden = module.conv1(hidden)
    if temb is not None:
        if module.time_emb_proj is not None:
            embedding = temb if module.skip_time_act else F.silu(temb)
            temb = module.time_emb_proj(embedding)[:, :, None, None]
        hidden.add_(temb)
    hidden = F.silu(module.norm2(hidden), inplace=True)
    hidden = module.conv2(hidden)
    shortcut = input_tensor if module.conv_shortcut is None else module.conv_shortcut(input_tensor)
    hidden.add_(shortcut)
    if module.output_scale_factor != 1:
        hidden.div_(module.output_scale_factor)
    return hidden


@functools.cache
def _resnet_classes() -> tuple[type[nn.Module], type[nn.Module]]:
    """``diffusers``' ``ResnetBlock2D`` and its in-place subclass."""
    from diffusers.models.resnet import ResnetBlock2D

    doc = "``ResnetBlock2D`` computing its activations and sums in place at inference."
    return ResnetBlock2D, _subclass(
        ResnetBlock2D, "InPlaceResnetBlock2D", _in_place_resnet_forward, doc, __name__
    )


def use_in_place_resnets(net: nn.Module) -> int:
    """Let ``net``'s ``diffusers`` ``ResnetBlock2D`` blocks compute their activations and
    sums in place at inference (the same values; only their class changes).

    Returns:
        The number of converted blocks.
    """
    return _swap_all(net, *_resnet_classes())


def _swap_all(net: nn.Module, base: type[nn.Module], replacement: type[nn.Module]) -> int:
    """Change every module of exactly class ``base`` to ``replacement``, in place."""
    layers = [m for m in net.modules() if type(m) is base]
    for layer in layers:
        _swap_class(layer, replacement)
    LOGGER.debug("%s for %d layers of %s", replacement.__name__, len(layers), type(net).__name__)
    return len(layers)
