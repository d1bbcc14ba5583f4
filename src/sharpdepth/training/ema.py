"""Exponential moving average of a network's weights, shared by every trainer."""

from __future__ import annotations

import torch
from torch import nn

#: The released training script's EMA (``ema_pytorch.EMA`` with its defaults): an update
#: at every ``RELEASED_EMA_EVERY``-th call, a plain copy up to call ``RELEASED_EMA_AFTER``.
RELEASED_EMA_EVERY = 10
RELEASED_EMA_AFTER = 100
#: Its warm-up exponent: decay ``1 - (1 + k) ** -power`` after ``k`` calls past the copies.
RELEASED_EMA_POWER = 2.0 / 3.0


def ema_decay(max_decay: float, updates: int) -> float:
    """EMA decay with warm-up: ``min(max_decay, (1 + n) / (10 + n))`` after ``n`` updates."""
    return min(max_decay, (1.0 + updates) / (10.0 + updates))


def released_ema_decay(max_decay: float, calls: int) -> float | None:
    """The released script's EMA decay at its ``calls``-th update call (counted from 0).

    Returns ``None`` when that call leaves the average alone (all but every tenth), 0.0
    for a plain copy of the weights (up to call 100), else
    ``min(max_decay, 1 - (calls - 99) ** (-2/3))``.
    """
    if calls % RELEASED_EMA_EVERY:
        return None
    if calls <= RELEASED_EMA_AFTER:
        return 0.0
    warmup = 1.0 - (1.0 + calls - RELEASED_EMA_AFTER) ** -RELEASED_EMA_POWER
    return min(max_decay, warmup)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameter by parameter (same layout)."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.mul_(decay).add_(p.detach().to(p_ema.dtype), alpha=1.0 - decay)
