"""Pooled keys and values at the UNet's first attention level (sharpdepth.accel.attention)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sharpdepth import SharpDepthPipeline
from sharpdepth.accel import INFERENCE_MODES
from sharpdepth.accel.attention import (
    PooledKeyValues,
    has_pooled_attention,
    pool_tokens,
    use_full_attention,
    use_pooled_attention,
)
from sharpdepth.models.nano import CROSS_ATTENTION_DIM, nano_unet
from sharpdepth.testing import SmoothMetricModel


def test_pool_tokens_averages_each_window_of_the_grid() -> None:
    grid = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)  # B C H W
    tokens = grid.flatten(2).transpose(1, 2)  # [2, 24, 3], row-major
    pooled = pool_tokens(tokens, (4, 6), 2)
    assert pooled is not None and pooled.shape == (2, 6, 3)
    expected = F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)
    torch.testing.assert_close(pooled, expected)
    torch.testing.assert_close(pooled[0, 0], grid[0, :, :2, :2].mean(dim=(1, 2)))
    assert pool_tokens(tokens, (4, 5), 2) is None  # not H * W tokens
    assert pool_tokens(tokens, (8, 3), 2) is None  # 2 does not divide W


def _unet_call(unet: Any, sample: torch.Tensor) -> torch.Tensor:
    context = torch.randn(1, 8, CROSS_ATTENTION_DIM, generator=torch.Generator().manual_seed(1))
    extra = {"class_labels": torch.zeros(1, 4)} if unet.config.class_embed_type else {}
    with torch.no_grad():
        return unet(sample, torch.tensor([999]), encoder_hidden_states=context, **extra).sample


def _pooled_layers(unet: Any) -> int:
    """How many of ``unet``'s attention layers have pooled keys and values."""
    return sum(isinstance(getattr(m, "processor", None), PooledKeyValues) for m in unet.modules())


def test_only_the_first_attention_level_is_pooled_and_undone_exactly() -> None:
    torch.manual_seed(0)
    unet = nano_unet().eval()  # attention at widths 64 (first level with attention) and 128
    sample = torch.randn(1, 8, 48, 40, generator=torch.Generator().manual_seed(0))
    ref = _unet_call(unet, sample)
    assert use_pooled_attention(unet, 2) == 3  # one down, two up transformer blocks
    assert has_pooled_attention(unet)
    for name, module in unet.named_modules():
        pooled = isinstance(getattr(module, "processor", None), PooledKeyValues)
        if name.endswith("attn1"):  # self-attention: pooled at width 64 only
            assert pooled == (module.to_q.in_features == 64), name
        elif name.endswith("attn2"):  # cross-attention never
            assert not pooled, name
    out = _unet_call(unet, sample)
    assert not torch.equal(out, ref)
    assert float((out - ref).norm() / ref.norm()) < 0.2
    assert use_pooled_attention(unet, 2) == 3  # again: not wrapped twice
    torch.testing.assert_close(_unet_call(unet, sample), out, rtol=0, atol=0)
    use_full_attention(unet)
    assert not has_pooled_attention(unet)
    torch.testing.assert_close(_unet_call(unet, sample), ref, rtol=0, atol=0)
    assert use_pooled_attention(unet, 1) == 0
    with pytest.raises(ValueError, match="positive"):
        use_pooled_attention(unet, 0)
    with pytest.raises(ValueError, match="positive"):
        use_pooled_attention(unet, 2, levels=0)


def test_two_attention_levels_can_be_pooled() -> None:
    torch.manual_seed(0)
    unet = nano_unet().eval()  # attention at widths 64 and 128 only
    sample = torch.randn(1, 8, 48, 40, generator=torch.Generator().manual_seed(0))
    use_pooled_attention(unet, 2)
    first_level = _unet_call(unet, sample)
    self_attention = [m for n, m in unet.named_modules() if n.endswith("attn1")]
    assert use_pooled_attention(unet, 2, levels=2) == len(self_attention) > 3
    assert all(isinstance(m.processor, PooledKeyValues) for m in self_attention)
    both = _unet_call(unet, sample)
    assert not torch.equal(both, first_level)
    assert use_pooled_attention(unet, 2, levels=5) == len(self_attention)  # as many as exist
    use_full_attention(unet)
    assert not has_pooled_attention(unet)


def test_pooled_self_attention_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    unet = nano_unet().eval()
    use_pooled_attention(unet, 2)
    transformer = unet.down_blocks[1].attentions[0]
    attn = transformer.transformer_blocks[0].attn1
    x = torch.randn(2, 6 * 8, attn.to_q.in_features)  # tokens of a 6 x 8 grid
    attn.processor.grid = (6, 8)
    with torch.no_grad():
        out = attn(x)
        keys = F.avg_pool2d(x.transpose(1, 2).reshape(2, -1, 6, 8), 2).flatten(2).transpose(1, 2)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(2, t.shape[1], attn.heads, -1).transpose(1, 2)

        q, k, v = heads(attn.to_q(x)), heads(attn.to_k(keys)), heads(attn.to_v(keys))
        weights = torch.softmax(q @ k.transpose(-1, -2) * attn.scale, dim=-1)  # [2, h, 48, 12]
        expected = attn.to_out[0]((weights @ v).transpose(1, 2).reshape(2, 48, -1))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_a_mode_with_pooled_attention_runs_the_pipeline(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    def load(mode: Any) -> SharpDepthPipeline:
        return SharpDepthPipeline.from_pretrained(
            tiny_checkpoints["sharpdepth"],
            metric_model=SmoothMetricModel(),
            device="cpu",
            dtype="float32",
            processing_resolution=64,
            mode=mode,
            int8=False,
        )

    fast = INFERENCE_MODES["fast"]
    full, pooled = load(replace(fast, attention_pool=1)), load(replace(fast, attention_pool=2))
    assert not has_pooled_attention(full.sharpener.unet)
    assert has_pooled_attention(pooled.sharpener.unet)
    assert not has_pooled_attention(load("exact").sharpener.unet)
    two_levels = load(replace(fast, attention_pool_levels=2)).sharpener.unet
    assert _pooled_layers(two_levels) > _pooled_layers(pooled.sharpener.unet)
    a, b = full(photo, seed=0), pooled(photo, seed=0)
    assert a.depth.shape == b.depth.shape and np.isfinite(b.depth).all()
    assert not np.array_equal(a.depth, b.depth)
    assert np.abs(a.depth - b.depth).mean() < 0.05 * np.abs(a.depth).mean()
