"""The one entry point of the CPU speed work: :func:`prepare` a loaded model for inference.

It sets the networks' precision (weights optionally stored narrower than they compute),
memory layout and allocator use, and swaps layers for faster equivalents (Winograd and
matrix-product convolutions, sub-pixel up-sampling, in-place activations) or faster
approximations (int8 layers, pooled attention keys). The modes' choices come from
:func:`sharpdepth.accel.modes.plan_inference`; measurements are in ``docs/speed.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from sharpdepth.accel import int8 as int8_layers
from sharpdepth.accel.attention import use_pooled_attention
from sharpdepth.accel.inplace import (
    use_in_place_geglu,
    use_in_place_relu,
    use_in_place_resnets,
    use_in_place_tiny_blocks,
)
from sharpdepth.accel.int8 import quantize_int8
from sharpdepth.accel.upsampling import use_plain_upsampling, use_subpixel_upsampling
from sharpdepth.accel.winograd import use_direct_convolution, use_winograd
from sharpdepth.models.checkpoints import is_tiny_vae

if TYPE_CHECKING:
    from sharpdepth.models.diffusion import DiffusionDepthModel


def prepare(
    model: DiffusionDepthModel,
    compute_dtype: torch.dtype | None = None,
    storage_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    reuse_heap_in_unet: bool = False,
    winograd: bool = False,
    int8: bool = False,
    attention_pool: int = 1,
    attention_pool_levels: int = 1,
    in_place: bool = False,
) -> DiffusionDepthModel:
    """Set the networks' precision, memory layout and allocator use for inference.

    Args:
        model: the loaded diffusion depth model (changed in place).
        compute_dtype: dtype the layers compute in (``None``: keep the current one).
        storage_dtype: keep the weights in this narrower dtype and cast each layer to
            ``compute_dtype`` just before it runs (halves weight memory, e.g. bfloat16
            storage with float32 compute on CPUs without bfloat16 arithmetic).
            ``None``: weights are stored in ``compute_dtype``.
        channels_last: NHWC memory layout for the autoencoder's convolutions (1.17x
            faster encodes and decodes on a 2-core AVX2 CPU at 768 px; the UNet is not
            converted: it was slightly slower in that layout there).
        reuse_heap_in_unet: under the lean heap (:func:`~sharpdepth.accel.memory.use_lean_heap`),
            let each UNet pass reuse freed heap memory instead of faulting in fresh
            mappings (:func:`~sharpdepth.accel.memory.reusing_heap`). Faster passes, but
            about 0.1-0.25 GB more stays resident afterwards, which adds to a
            full-resolution ``AutoencoderKL`` decode's peak (SD-2 shapes on a 2-core
            CPU: 3.42 -> 3.67 GB in fastest mode); with a tiny autoencoder the peak
            moved 2.43 -> 2.56 GB while a call went from 20-25 s to 16-21 s.
        winograd: faster convolution algorithms: the wide 3x3 convolutions of the UNet
            and the autoencoder by Winograd's algorithm or as one matrix product
            where that is faster (float32 on the CPU; see :mod:`sharpdepth.accel.winograd`),
            and every up-sampling stage (nearest 2x, then a 3x3 convolution) in
            sub-pixel form (:mod:`sharpdepth.accel.upsampling`): the same result up to float
            rounding. ``False`` restores the direct convolution and plain
            up-sampling (except in int8 layers).
        int8: replace the UNet's wide linear layers and convolutions, and a tiny
            autoencoder's convolutions, by int8 ones with dynamically quantised
            inputs (:func:`~sharpdepth.accel.int8.quantize_int8`; x86 CPUs): faster, not
            the exact result, and cannot be undone or saved.
        attention_pool: ``k > 1``: the UNet's first-level self-attention takes its keys
            and values from the tokens pooled ``k x k``
            (:func:`~sharpdepth.accel.attention.use_pooled_attention`; not the exact
            result); ``1`` restores full attention.
        attention_pool_levels: how many attention levels, from the first, are pooled.
        in_place: activations and sums that overwrite tensors nothing else reads
            (:mod:`sharpdepth.accel.inplace`: the UNet's GEGLUs, both networks' residual
            blocks, a tiny autoencoder's ReLUs): the same values to float rounding,
            fewer new buffers. Not undone by ``False``.

    Returns:
        ``model``.
    """
    for net in (model.unet, model.vae):  # before int8: made in sub-pixel form too
        if winograd:
            use_subpixel_upsampling(net)
        else:
            use_plain_upsampling(net)
    if int8:  # first: the float weights of the replaced layers are then not narrowed
        quantize_int8(model.unet)
        if is_tiny_vae(model.vae):
            quantize_int8(model.vae, min_channels=int8_layers.MIN_TINY_AUTOENCODER_CHANNELS)
    if channels_last:  # first: the narrow weight store keeps the layout it is given
        model.vae.to(memory_format=torch.channels_last)
    if compute_dtype is not None and storage_dtype not in (None, compute_dtype):
        for net in (model.unet, model.vae):
            _store_weights_narrow(net, storage_dtype, compute_dtype)
        model.compute_dtype = compute_dtype
    elif compute_dtype is not None:
        for net in (model.unet, model.vae):
            if next(net.parameters()).dtype != compute_dtype:
                net.to(compute_dtype)
        model.compute_dtype = None
    if in_place:
        if is_tiny_vae(model.vae):
            use_in_place_relu(model.vae)
            use_in_place_tiny_blocks(model.vae)
        use_in_place_geglu(model.unet)
        for net in (model.unet, model.vae):
            use_in_place_resnets(net)
    use_pooled_attention(model.unet, attention_pool, attention_pool_levels)
    for net in (model.unet, model.vae):
        if winograd:
            use_winograd(net)
        else:
            use_direct_convolution(net)
    model.prompt_embeds = model.prompt_embeds.to(model.dtype)
    model.reuse_heap_in_unet = reuse_heap_in_unet
    return model


_ARENA_ALIGN = 16  # elements: each widened tensor starts on a 64-byte boundary (float32)


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t`` covers its elements without gaps (contiguous or channels-last)."""
    return t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last))


def _arena_size(params: list[torch.Tensor]) -> int:
    """Elements of the arena holding one layer's widened parameters (aligned offsets)."""
    return sum(-(-p.numel() // _ARENA_ALIGN) * _ARENA_ALIGN for p in params)


def _store_weights_narrow(
    net: torch.nn.Module, storage_dtype: torch.dtype, compute_dtype: torch.dtype
) -> None:
    """Keep convolution and linear weights in ``storage_dtype``, computing in ``compute_dtype``.

    Each convolution / linear layer's weights are widened into one ``compute_dtype``
    buffer (the size of the largest layer's) just before it runs and swapped back right
    after, so one layer's weights are held in the wide dtype at a time and the widening
    does not allocate per layer (no page faults; SD-2's UNet pass on a 2-core CPU, two
    runs each: 14.0-15.4 s with a fresh allocation per layer, 11.8-14.5 s with the
    buffer). The buffer is allocated at the first layer and released when ``net``'s
    ``forward`` returns (the UNet's 118 MB are not kept during the decodes; the
    autoencoder, run through ``encode`` / ``decode``, keeps its small one). The small
    remaining layers (norms, embeddings) are kept in ``compute_dtype``. Works whatever
    dtype the network was loaded in (load it in ``storage_dtype`` to keep the peak low).
    The network then runs one forward pass at a time (the pipeline, the CLI and the demo
    call it so).
    """
    heavy = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    size = max((_arena_size(list(m.parameters(recurse=False))) for m in heavy), default=0)
    device = next(net.parameters()).device
    arena: list[torch.Tensor] = []  # the buffer while ``net`` runs
    heavy_ids = {id(m) for m in heavy}
    held: dict[int, list[torch.Tensor]] = {}  # narrow weights of the layer running now

    def widen(module: torch.nn.Module, args: Any) -> None:
        params = list(module.parameters(recurse=False))
        held[id(module)] = [param.data for param in params]
        if not arena:
            arena.append(torch.empty(size, dtype=compute_dtype, device=device))
        offset = 0
        for param in params:
            narrow = param.data
            if not _dense(narrow):
                param.data = narrow.to(compute_dtype)
                continue
            wide = arena[0][offset : offset + narrow.numel()].as_strided(
                narrow.shape, narrow.stride()
            )
            param.data = wide.copy_(narrow)
            offset += _arena_size([narrow])

    def narrow_again(module: torch.nn.Module, args: Any, output: Any) -> None:
        narrow = held.pop(id(module))
        for param, data in zip(module.parameters(recurse=False), narrow, strict=True):
            param.data = data

    def release(module: torch.nn.Module, args: Any, output: Any) -> None:
        arena.clear()

    net.register_forward_hook(release)
    for module in net.modules():
        params = list(module.parameters(recurse=False))
        if id(module) in heavy_ids:
            for param in params:
                param.data = param.data.to(storage_dtype)
            module.register_forward_pre_hook(widen)
            module.register_forward_hook(narrow_again)
        else:
            for param in params:
                param.data = param.data.to(compute_dtype)
            for name, buf in module.named_buffers(recurse=False):
                if buf.is_floating_point():
                    module.register_buffer(name, buf.to(compute_dtype))
