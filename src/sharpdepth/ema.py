"""Exponential moving average of a network's weights, shared by every trainer."""

from __future__ import annotations

import torch
from torch import nn


def ema_decay(max_decay: float, updates: int) -> float:
    """EMA decay with warm-up: ``min(max_decay, (1 + n) / (10 + n))`` after ``n`` updates."""
    return min(max_decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameter by parameter (same layout)."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.mul_(decay).add_(p.detach().to(p_ema.dtype), alpha=1.0 - decay)
