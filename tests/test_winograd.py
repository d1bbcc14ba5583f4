"""Winograd F(4x4, 3x3) convolutions (sharpdepth.accel.winograd) and their use in the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sharpdepth import SharpDepthPipeline
from sharpdepth.accel import prepare, winograd
from sharpdepth.accel.winograd import (
    WinogradConv2d,
    gemm_applies,
    gemm_conv3x3,
    use_direct_convolution,
    use_winograd,
    winograd_applies,
    winograd_conv3x3,
)
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.testing import SmoothMetricModel

#: Largest |difference| from a float64 convolution, relative to the output's largest
#: magnitude (measured: about 1e-5; the direct float32 convolution: about 2e-6).
TOLERANCE = 5e-5


def _relative_error(out: torch.Tensor, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
    ref = F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=1)
    return float((out.double() - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize(
    ("n", "c", "k", "h", "w", "channels_last", "bias", "band_elements"),
    [
        (1, 8, 8, 16, 16, False, True, 2**20),  # whole tiles, one band
        (2, 5, 7, 9, 13, False, True, 64),  # partial tiles, one tile row per band
        (1, 16, 24, 31, 17, True, False, 4096),  # channels-last, several rows per band
        (3, 4, 4, 1, 2, True, True, 2**20),  # smaller than one tile
    ],
)
def test_winograd_equals_the_direct_convolution(
    n: int,
    c: int,
    k: int,
    h: int,
    w: int,
    channels_last: bool,
    bias: bool,
    band_elements: int,
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(k, c, 3, 3, generator=gen)
    b = torch.randn(k, generator=gen) if bias else None
    out = winograd_conv3x3(x, weight, b, band_elements=band_elements)
    assert out.shape == (n, k, h, w) and out.dtype == torch.float32
    assert _relative_error(out, x, weight, b) < TOLERANCE
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)


def test_winograd_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match=r"\[K, 4, 3, 3\]"):
        winograd_conv3x3(torch.zeros(1, 4, 8, 8), torch.zeros(2, 3, 3, 3))


def test_winograd_is_used_only_where_it_pays() -> None:
    wide = torch.zeros(256, 256, 3, 3)
    assert winograd_applies(torch.zeros(1, 256, 44, 48), wide)  # 11 * 12 tiles * 2 >= 256
    assert not winograd_applies(torch.zeros(1, 256, 40, 48), wide)  # 10 * 12 tiles: too few
    assert not winograd_applies(torch.zeros(1, 64, 64, 64), torch.zeros(64, 64, 3, 3))
    assert not winograd_applies(torch.zeros(1, 256, 32, 32, dtype=torch.float64), wide.double())
    assert not winograd_applies(torch.zeros(1, 256, 32, 32).bfloat16(), wide.bfloat16())
    # training: autograd needs the direct convolution
    assert not winograd_applies(torch.zeros(1, 256, 44, 48), wide.clone().requires_grad_())
    with torch.no_grad():
        assert winograd_applies(torch.zeros(1, 256, 44, 48), wide.clone().requires_grad_())


@pytest.mark.parametrize(
    ("n", "channels_last", "bias"), [(1, False, True), (3, True, True), (2, False, False)]
)
def test_gemm_convolution_equals_the_direct_convolution(
    n: int, channels_last: bool, bias: bool
) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, 5, 7, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(20, 12, 3, 3, generator=gen)
    b = torch.randn(20, generator=gen) if bias else None
    out = gemm_conv3x3(x, weight, b)
    assert out.shape == (n, 20, 5, 7) and out.dtype == torch.float32
    assert _relative_error(out, x, weight, b) < 1e-5  # the same arithmetic as direct
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)
    with pytest.raises(ValueError, match=r"\[K, 12, 3, 3\]"):
        gemm_conv3x3(x, torch.zeros(2, 3, 3, 3))


def test_gemm_convolution_is_used_for_wide_layers_on_few_pixels() -> None:
    wide = torch.zeros(1280, 1280, 3, 3)
    assert gemm_applies(torch.zeros(1, 1280, 12, 9), wide)
    assert gemm_applies(torch.zeros(2, 1280, 24, 18), wide)  # 2 * 432 <= 1280 per image
    assert not gemm_applies(torch.zeros(1, 640, 24, 18), torch.zeros(640, 640, 3, 3))
    assert not gemm_applies(torch.zeros(1, 64, 4, 4), torch.zeros(64, 64, 3, 3))  # narrow
    assert not gemm_applies(torch.zeros(1, 1280, 12, 9).bfloat16(), wide.bfloat16())
    assert not gemm_applies(torch.zeros(1, 1280, 12, 9), wide.clone().requires_grad_())
    with torch.no_grad():
        assert gemm_applies(torch.zeros(1, 1280, 12, 9), wide.clone().requires_grad_())


def test_converted_layers_choose_winograd_gemm_or_direct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 8)
    calls: list[str] = []
    for name in ("winograd_conv3x3", "gemm_conv3x3"):
        original = getattr(winograd, name)

        def spy(*args: object, _f: object = original, _n: str = name, **kw: object) -> object:
            calls.append(_n)
            return _f(*args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(winograd, name, spy)
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3, padding=1)
    use_winograd(conv)
    with torch.no_grad():
        for size, path in (((40, 40), "winograd_conv3x3"), ((4, 6), "gemm_conv3x3")):
            x = torch.randn(1, 16, *size)
            calls.clear()
            out = conv(x)
            assert calls == [path]
            assert _relative_error(out, x, conv.weight, conv.bias) < TOLERANCE
        calls.clear()
        conv(torch.randn(1, 16, 8, 6))  # 48 pixels, 2 * 48 > 64 channels; 6 tiles < 32
        assert calls == []


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(8, 8, 3, padding=1),  # wide enough once MIN_CHANNELS is lowered
        nn.Conv2d(8, 8, 3, padding=1, stride=2),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="replicate"),
        nn.Conv2d(8, 4, 3, padding="same"),
    )


def test_use_winograd_converts_only_plain_3x3_convolutions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 4)
    net = _net()
    x = torch.randn(1, 8, 20, 20)
    with torch.no_grad():
        ref = net(x)
    keys = list(net.state_dict())
    assert use_winograd(net) == 2
    assert [type(m) is WinogradConv2d for m in net] == [True, False, False, False, False, True]
    assert list(net.state_dict()) == keys
    with torch.no_grad():
        out = net(x)
    assert (out - ref).abs().max() < TOLERANCE * ref.abs().max()
    assert not torch.equal(out, ref)  # it did take the Winograd path
    use_direct_convolution(net)
    assert all(type(m) is nn.Conv2d for m in net)
    with torch.no_grad():
        assert torch.equal(net(x), ref)


def test_narrow_layers_are_not_converted() -> None:
    net = _net()
    assert use_winograd(net) == 0  # 8 < MIN_CHANNELS channels


def test_converted_layers_train_with_the_direct_convolution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 4)
    ref, net = _net(), _net()
    use_winograd(net)
    x = torch.randn(2, 8, 12, 12)
    ref(x).square().mean().backward()
    net(x).square().mean().backward()
    for a, b in zip(ref.parameters(), net.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.equal(a.grad, b.grad)


def _converted(model: DiffusionDepthModel) -> int:
    return sum(type(m) is WinogradConv2d for m in (*model.unet.modules(), *model.vae.modules()))


def test_pipeline_with_winograd_gives_the_exact_result(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 8)  # the tiny models' widths

    def pipe(**kwargs: object) -> SharpDepthPipeline:
        return SharpDepthPipeline.from_pretrained(
            tiny_checkpoints["released"],
            metric_model=SmoothMetricModel(),
            device="cpu",
            processing_resolution=64,
            **kwargs,
        )

    default, direct = pipe(), pipe(winograd=False)
    assert _converted(default.sharpener) > 0 and _converted(direct.sharpener) == 0
    assert _converted(pipe(mode="released").sharpener) == 0  # the release's costs
    a, b = default(photo, seed=0), direct(photo, seed=0)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.gate, b.gate, atol=1e-4)
    assert not np.array_equal(a.depth, b.depth)  # Winograd did run


def test_winograd_works_with_narrow_weight_storage(
    tiny_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 8)
    root = tiny_checkpoints["sharpdepth"]
    ref = DiffusionDepthModel.from_pretrained(root, torch_dtype=torch.bfloat16)
    prepare(ref, torch.float32, torch.bfloat16, channels_last=True)
    model = DiffusionDepthModel.from_pretrained(root, torch_dtype=torch.bfloat16)
    prepare(model, torch.float32, torch.bfloat16, channels_last=True, winograd=True)
    assert _converted(model) > 0
    x = torch.rand(1, 3, 64, 64)
    d = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        a = ref.decode_depth(ref.predict_x0(*ref.encode_image_and_depth(x, d)))
        b = model.decode_depth(model.predict_x0(*model.encode_image_and_depth(x, d)))
    assert (a - b).abs().max() < 1e-4 * a.abs().max()
    assert not torch.equal(a, b)
