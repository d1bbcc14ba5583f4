"""Self-attention with pooled keys and values at the UNet's first attention levels.

At 768 px the SD-2 UNet's first level holds 6144-6912 tokens, and its five
self-attentions (every token against every token) are the largest float32 item left in
a fast-mode pass on a CPU (about 2.4 s of a 7-10 s pass on a 2-core AVX2 CPU). With
:func:`use_pooled_attention` their keys and values are computed from the tokens
average-pooled ``k x k`` on their spatial grid, so each query attends to ``k^2`` times
fewer positions; queries, cross-attention and the other levels are unchanged. The
second level (1536-1728 tokens at 768 px) can be pooled too (``levels=2``). This is
the idea of attention with spatially reduced keys and values (PVT; "token
downsampling" for Stable Diffusion UNets). It is not the exact result: what it does to
depth is in ``docs/speed.md``'s quality table.

The processors wrap the attention layers' own ones, so :func:`use_full_attention` restores
them exactly.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

LOGGER = logging.getLogger(__name__)


def pool_tokens(tokens: torch.Tensor, grid: tuple[int, int], factor: int) -> torch.Tensor | None:
    """Average-pool a token sequence on its spatial grid.

    Args:
        tokens: ``[B, H * W, C]`` in row-major grid order.
        grid: ``(H, W)``.
        factor: pooling window and stride ``k``.

    Returns:
        ``[B, (H / k) * (W / k), C]``, or ``None`` when the sequence is not ``H * W`` long
        or ``k`` does not divide ``H`` and ``W`` (the caller then keeps every token).
    """
    batch, count, channels = tokens.shape
    height, width = grid
    if count != height * width or height % factor or width % factor:
        return None
    image = tokens.transpose(1, 2).reshape(batch, channels, height, width)
    return F.avg_pool2d(image, factor).flatten(2).transpose(1, 2)


class PooledKeyValues:
    """Attention processor: self-attention whose keys and values come from the tokens
    pooled ``factor x factor`` (:func:`pool_tokens`); everything else is ``inner``'s.

    ``grid`` is the ``(H, W)`` of the current call's tokens, set by a forward pre-hook
    on the enclosing transformer (see :func:`use_pooled_attention`).
    """

    def __init__(self, inner: Any, factor: int) -> None:
        self.inner = inner
        self.factor = factor
        self.grid: tuple[int, int] | None = None

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        context = encoder_hidden_states
        if context is None and attention_mask is None and self.grid is not None:
            context = pool_tokens(hidden_states, self.grid, self.factor)
        return self.inner(attn, hidden_states, context, attention_mask, **kwargs)


def _first_levels_self_attention(
    unet: nn.Module, levels: int
) -> list[tuple[nn.Module, list[nn.Module]]]:
    """The transformers of the ``levels`` narrowest widths (the first attention levels)
    with their self-attention layers."""
    from diffusers.models.attention_processor import Attention
    from diffusers.models.transformers.transformer_2d import Transformer2DModel

    transformers = [m for m in unet.modules() if isinstance(m, Transformer2DModel)]
    widths = sorted({int(t.in_channels) for t in transformers})[:levels]
    return [
        (t, [a for a in t.modules() if isinstance(a, Attention) and not a.is_cross_attention])
        for t in transformers
        if int(t.in_channels) in widths
    ]


def use_pooled_attention(unet: nn.Module, factor: int = 2, levels: int = 1) -> int:
    """Pool the keys and values of the self-attention at ``unet``'s first ``levels``
    attention levels (its narrowest transformers) ``factor x factor``, in place.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (any module holding
            ``Transformer2DModel`` blocks).
        factor: ``k >= 2``; ``1`` is :func:`use_full_attention`.
        levels: how many attention levels, from the first (highest resolution), to pool.

    Returns:
        The number of self-attention layers now pooled.
    """
    use_full_attention(unet)
    if factor == 1:
        return 0
    if factor < 1 or levels < 1:
        raise ValueError(
            f"the pooling factor and levels must be positive integers: {factor}, {levels}"
        )
    pooled = 0
    for transformer, layers in _first_levels_self_attention(unet, levels):
        processors = []
        for attn in layers:
            processor = PooledKeyValues(attn.processor, factor)
            attn.set_processor(processor)  # type: ignore[operator]
            processors.append(processor)

        def set_grid(
            module: nn.Module,
            args: tuple[Any, ...],
            processors: list[PooledKeyValues] = processors,
        ) -> None:
            grid = (int(args[0].shape[-2]), int(args[0].shape[-1]))
            for processor in processors:
                processor.grid = grid

        transformer._sharpdepth_pool_hook = transformer.register_forward_pre_hook(set_grid)  # type: ignore[assignment]
        pooled += len(processors)
    LOGGER.debug(
        "pooled self-attention (%dx%d, %d levels): %d layers", factor, factor, levels, pooled
    )
    return pooled


def use_full_attention(unet: nn.Module) -> None:
    """Undo :func:`use_pooled_attention`: the original processors, every token a key."""
    for module in unet.modules():
        hook = module.__dict__.pop("_sharpdepth_pool_hook", None)
        if hook is not None:
            hook.remove()
        processor = getattr(module, "processor", None)
        if isinstance(processor, PooledKeyValues):
            module.set_processor(processor.inner)  # type: ignore[operator]


def has_pooled_attention(unet: nn.Module) -> bool:
    """Whether :func:`use_pooled_attention` is in effect on ``unet``."""
    return any(isinstance(getattr(m, "processor", None), PooledKeyValues) for m in unet.modules())
