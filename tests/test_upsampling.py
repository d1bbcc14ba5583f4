"""Nearest 2x up-sampling + 3x3 convolution in sub-pixel form (sharpdepth.accel.upsampling)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sharpdepth.accel import int8, prepare, upsampling
from sharpdepth.accel.int8 import Int8UpsampleConv2d, int8_convolution_available, quantize_int8
from sharpdepth.accel.upsampling import (
    UpsampleConv2d,
    interleave_phases,
    subpixel_applies,
    subpixel_weight,
    upsample_conv3x3,
    use_plain_upsampling,
    use_subpixel_upsampling,
)
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.testing import taesd_like, tiny_unet


def _reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, b, padding=1)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("size", [(1, 1), (5, 7), (8, 6)])
def test_subpixel_form_equals_upsampling_then_convolving(
    channels_last: bool, bias: bool, size: tuple[int, int]
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, *size, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(3, 5, 3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64) if bias else None
    out = upsample_conv3x3(x, w, b)
    ref = _reference(x, w, b)
    assert out.shape == (2, 3, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    layout = torch.channels_last if channels_last and size != (1, 1) else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)


def test_subpixel_weights_fold_the_taps_per_phase() -> None:
    w = torch.arange(9.0).view(1, 1, 3, 3)  # rows [0 1 2], [3 4 5], [6 7 8]
    folded = subpixel_weight(w)
    assert folded.shape == (4, 1, 2, 2)
    # phase (0, 0): rows [w0, w1 + w2], columns [w0, w1 + w2]
    assert folded[0, 0].tolist() == [[0.0, 1 + 2], [3 + 6, 4 + 5 + 7 + 8]]
    # phase (1, 1): rows [w0 + w1, w2], columns [w0 + w1, w2]
    assert folded[3, 0].tolist() == [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]]
    with pytest.raises(ValueError, match="3, 3"):
        subpixel_weight(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="phases"):
        interleave_phases(torch.zeros(1, 4, 3, 3), 3, 3)


def test_subpixel_form_is_chosen_except_where_winograd_has_many_tiles() -> None:
    x = torch.empty(1, 64, 8, 8)
    assert subpixel_applies(x, torch.empty(64, 64, 3, 3))  # narrow: no Winograd
    # 512 channels at 72 x 96 -> 144 x 192: 1728 tiles, 3.4 per channel
    assert not subpixel_applies(torch.empty(1, 512, 72, 96), torch.empty(512, 512, 3, 3))
    # 640 channels at 32 x 48 -> 64 x 96: 384 tiles, 0.6 per channel
    assert subpixel_applies(torch.empty(1, 640, 32, 48), torch.empty(640, 640, 3, 3))
    assert subpixel_applies(x.double(), torch.empty(64, 64, 3, 3, dtype=torch.float64))
    # 1280 channels at 8 x 12 -> 16 x 24: the up-sampled input is one matrix product
    assert not subpixel_applies(torch.empty(1, 1280, 8, 12), torch.empty(1280, 1280, 3, 3))


@pytest.mark.parametrize("tiles_per_channel", [0, 10**6])
def test_upsample_conv_layer_gives_the_same_result_either_way(
    tiles_per_channel: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upsampling, "WINOGRAD_TILES_PER_CHANNEL", tiles_per_channel)
    torch.manual_seed(0)
    conv = nn.Conv2d(128, 128, 3, padding=1)
    x = torch.randn(1, 128, 16, 16)
    with torch.no_grad():
        ref = _reference(x, conv.weight, conv.bias)
        plain = conv(ref[:, :, :8, :8].contiguous())
        conv.__class__ = UpsampleConv2d
        out = conv(x)
        assert torch.equal(conv(ref[:, :, :8, :8].contiguous(), upsample=False), plain)
        assert subpixel_applies(x, conv.weight) == (tiles_per_channel > 0)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def _sample(height: int, width: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(1)
    return (
        torch.randn(1, 8, height, width, generator=gen),
        torch.full((1,), 999),
        torch.randn(1, 3, 32, generator=gen),
        torch.zeros(1, 4),
    )


@pytest.mark.parametrize("size", [(16, 12), (9, 11)])  # (9, 11): up-sampling to odd sizes
def test_unet_with_subpixel_upsampling_gives_the_same_result(size: tuple[int, int]) -> None:
    unet = tiny_unet()
    sample, t, context, labels = _sample(*size)
    keys = list(unet.state_dict())
    with torch.no_grad():
        ref = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
        assert use_subpixel_upsampling(unet) == 1  # the tiny UNet has one up-sampler
        assert list(unet.state_dict()) == keys
        out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        use_plain_upsampling(unet)
        assert not any(isinstance(m, UpsampleConv2d) for m in unet.modules())
        back = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    assert torch.equal(back, ref)


def test_tiny_autoencoder_decoder_with_subpixel_upsampling_gives_the_same_result() -> None:
    vae = taesd_like(channels=8, blocks=1)
    latents = torch.randn(1, 4, 5, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = vae.decode(latents).sample
        assert use_subpixel_upsampling(vae) == 3
        out = vae.decode(latents).sample
        use_plain_upsampling(vae)
        back = vae.decode(latents).sample
    assert out.shape == ref.shape == (1, 3, 40, 48)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(back, ref)
    assert sum(type(m) is nn.Upsample for m in vae.modules()) == 3


@pytest.mark.skipif(not int8_convolution_available(), reason="needs oneDNN int8 convolutions")
def test_int8_upsample_conv_is_close_to_the_float_layer() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 24, 3, padding=1)
    conv.__class__ = UpsampleConv2d
    net = nn.Sequential(conv)
    x = torch.randn(1, 32, 6, 5).relu()
    with torch.no_grad():
        ref = conv(x)
        up = F.interpolate(x, scale_factor=2.0, mode="nearest")
        assert quantize_int8(net, min_channels=16) == 1
        layer = net[0]
        assert isinstance(layer, Int8UpsampleConv2d)
        out, plain = layer(x), layer(up, upsample=False)
    for result in (out, plain):
        assert result.shape == (1, 24, 12, 10)
        assert float((result - ref).norm() / ref.norm()) < 0.04
    assert not torch.equal(out, ref)


@pytest.mark.skipif(not int8_convolution_available(), reason="needs oneDNN int8 convolutions")
def test_narrow_upsample_convs_stay_float() -> None:
    conv = nn.Conv2d(8, 8, 3, padding=1)
    conv.__class__ = UpsampleConv2d
    net = nn.Sequential(conv)
    assert quantize_int8(net, min_channels=16) == 0
    assert type(net[0]) is UpsampleConv2d


def test_prepare_switches_subpixel_upsampling_with_winograd(
    tiny_checkpoints: dict[str, Path],
) -> None:
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])

    def fused() -> int:
        return sum(type(m) is UpsampleConv2d for m in (*model.unet.modules(), *model.vae.modules()))

    plain = fused()
    prepare(model, torch.float32, winograd=True)
    converted = fused()
    prepare(model, torch.float32, winograd=False)
    assert plain == 0 and converted > 0 and fused() == 0


@pytest.mark.skipif(not int8_convolution_available(), reason="needs oneDNN int8 convolutions")
def test_int8_unet_upsamplers_are_made_in_subpixel_form(
    tiny_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(int8, "MIN_CONV_CHANNELS", 16)
    monkeypatch.setattr(int8, "MIN_FEATURES", 16)
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    prepare(model, torch.float32, winograd=True, int8=True)
    assert sum(isinstance(m, Int8UpsampleConv2d) for m in model.unet.modules()) == 1
    prepare(model, torch.float32, winograd=False)  # int8 layers cannot go back
    assert sum(isinstance(m, Int8UpsampleConv2d) for m in model.unet.modules()) == 1
    x = torch.rand(1, 3, 64, 64)
    d = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        out = model.predict_x0(*model.encode_image_and_depth(x, d))
    assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all()
