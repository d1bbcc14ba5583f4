"""Int8 linear and convolution layers (sharpdepth.accel.int8) and their use in the pipeline's fast
modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sharpdepth import SharpDepthPipeline
from sharpdepth.accel import int8, modes, prepare
from sharpdepth.accel.int8 import (
    Int8Conv2d,
    Int8Linear,
    has_int8_layers,
    int8_available,
    int8_convolution_available,
    quantize_int8,
)
from sharpdepth.testing import SmoothMetricModel

pytestmark = pytest.mark.skipif(not int8_available(), reason="needs an x86 CPU with FBGEMM")


def _relative_l2(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).norm() / ref.norm())


def test_int8_linear_is_close_to_the_float_layer() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(96, 40)
    q = Int8Linear.from_float(layer)
    x = torch.randn(2, 7, 96)
    with torch.no_grad():
        ref, out = layer(x), q(x)
    assert out.shape == (2, 7, 40) and out.dtype == torch.float32
    assert _relative_l2(out, ref) < 0.03
    assert not torch.equal(out, ref)
    with torch.no_grad():  # the input's dtype is kept
        assert q(x.bfloat16()).dtype == torch.bfloat16
    no_bias = nn.Linear(96, 40, bias=False)
    with torch.no_grad():
        assert _relative_l2(Int8Linear.from_float(no_bias)(x), no_bias(x)) < 0.03


def test_each_row_is_quantised_on_its_own_scale() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(64, 32)
    q = Int8Linear.from_float(layer)
    x = torch.randn(16, 64)
    x[0] *= 1000.0  # one token with large activations
    with torch.no_grad():
        ref, out = layer(x), q(x)
    # the small rows stay accurate (one scale for all would round them to nothing)
    assert _relative_l2(out[1:], ref[1:]) < 0.03


def test_split_outputs_gives_the_same_results_as_contiguous_groups() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(48, 40)
    q = Int8Linear.from_float(layer)
    x = torch.randn(2, 7, 48)
    with torch.no_grad():
        ref = q(x)
        assert q.split_outputs(2) is q and q.groups == 2
        value, gate = q.forward_groups(x)
        assert torch.equal(q(x), ref)  # the same int8 weights and scales
        assert value.shape == gate.shape == (2, 7, 20)
        assert value.is_contiguous() and gate.is_contiguous()
        assert torch.equal(torch.cat([value, gate], dim=-1), ref)
        assert torch.equal(q.split_outputs(4)(x), ref)
        assert torch.equal(q.split_outputs(1)(x), ref)
    assert "groups" not in repr(q)
    with pytest.raises(ValueError, match="groups"):
        q.split_outputs(3)
    no_bias = Int8Linear.from_float(nn.Linear(48, 40, bias=False))
    with torch.no_grad():
        ref = no_bias(x)
        assert torch.equal(no_bias.split_outputs(2)(x), ref)


def test_quantize_int8_replaces_the_wide_linear_layers() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 32), nn.SiLU(), nn.Linear(32, 32), nn.Sequential(nn.Linear(32, 32))
    )
    net.append(nn.Linear(32, 2))
    x = torch.randn(5, 4)
    with torch.no_grad():
        ref = net(x)
    assert not has_int8_layers(net)
    assert quantize_int8(net, min_features=16) == 2
    assert has_int8_layers(net)
    kinds = [type(m) for m in (net[0], net[2], net[3][0], net[4])]
    assert kinds == [nn.Linear, Int8Linear, Int8Linear, nn.Linear]  # 4 and 2 < 16 features
    narrow, wide = nn.Sequential(nn.Linear(128, 512)), nn.Sequential(nn.Linear(256, 256))
    assert quantize_int8(narrow) == 0 and quantize_int8(wide) == 1  # default MIN_FEATURES
    with torch.no_grad():
        out = net(x)
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


needs_int8_conv = pytest.mark.skipif(
    not int8_convolution_available(), reason="needs PyTorch's oneDNN int8 convolution"
)


@needs_int8_conv
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "groups", "bias"),
    [(3, 1, 1, 1, True), (3, 2, 1, 1, True), (1, 1, 0, 1, False), (3, 1, 2, 2, True)],
)
def test_int8_conv_is_close_to_the_float_layer(
    kernel: int, stride: int, padding: int, groups: int, bias: bool
) -> None:
    torch.manual_seed(0)
    layer = nn.Conv2d(32, 48, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    q = Int8Conv2d.from_float(layer)
    # inputs far from zero-mean: the zero point is far from 0, so zero padding must be
    # encoded as the zero point (padding with code 0 would be -low, not 0)
    x = torch.rand(2, 32, 17, 23) * 3.0 + 0.5
    with torch.no_grad():
        ref, out = layer(x), q(x)
        channels_last = q(x.contiguous(memory_format=torch.channels_last))
        strided = q(x.transpose(2, 3).contiguous().transpose(2, 3))  # dense in no layout
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert not torch.equal(out, ref)
    assert _relative_l2(out, ref) < 0.03
    if padding:  # the border rows and columns, which see the padding, are as accurate
        border = torch.ones_like(ref, dtype=torch.bool)
        border[..., 1:-1, 1:-1] = False
        assert _relative_l2(out[border], ref[border]) < 0.03
    torch.testing.assert_close(channels_last, out)
    torch.testing.assert_close(strided, out)
    with torch.no_grad():  # the input's dtype is kept
        assert q(x.bfloat16()).dtype == torch.bfloat16


@needs_int8_conv
def test_int8_conv_takes_only_numeric_zero_padding() -> None:
    with pytest.raises(ValueError, match="zero padding"):
        Int8Conv2d.from_float(nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(ValueError, match="zero padding"):
        Int8Conv2d.from_float(nn.Conv2d(8, 8, 3, padding="same"))
    net = nn.Sequential(
        nn.Conv2d(32, 32, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(32, 32, 3, padding="same"),
        nn.Conv2d(32, 32, 3, padding=1),
    )
    assert quantize_int8(net, min_channels=16) == 1
    assert [type(m) for m in net] == [nn.Conv2d, nn.Conv2d, Int8Conv2d]


@needs_int8_conv
def test_quantize_int8_replaces_the_wide_convolutions() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 32, 3, padding=1), nn.SiLU(), nn.Conv2d(32, 32, 3, padding=1))
    net.append(nn.Sequential(nn.Conv2d(32, 32, 1)))
    net.append(nn.Conv2d(32, 2, 3, padding=1))
    x = torch.randn(1, 4, 12, 12)
    with torch.no_grad():
        ref = net(x)
    assert quantize_int8(net, min_features=16, min_channels=16) == 2
    assert has_int8_layers(net)
    kinds = [type(m) for m in (net[0], net[2], net[3][0], net[4])]
    assert kinds == [nn.Conv2d, Int8Conv2d, Int8Conv2d, nn.Conv2d]  # 4 and 2 < 16 channels
    narrow, wide = nn.Sequential(nn.Conv2d(128, 512, 3)), nn.Sequential(nn.Conv2d(256, 256, 3))
    assert quantize_int8(narrow) == 0 and quantize_int8(wide) == 1  # MIN_CONV_CHANNELS
    with torch.no_grad():
        out = net(x)
    assert _relative_l2(out, ref) < 0.05


def _pipe(root: Path, **kwargs: object) -> SharpDepthPipeline:
    return SharpDepthPipeline.from_pretrained(
        root, metric_model=SmoothMetricModel(), device="cpu", processing_resolution=64, **kwargs
    )


@pytest.fixture
def float32_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast modes pick float32 arithmetic with bfloat16 storage, as on a CPU without
    native bfloat16 (where they use int8 layers)."""
    monkeypatch.setattr(modes, "fast_precision", lambda device: (torch.float32, torch.bfloat16))


def test_fast_mode_uses_int8_where_the_cpu_computes_float32(
    tiny_checkpoints: dict[str, Path],
    photo: np.ndarray,
    float32_cpu: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(int8, "MIN_FEATURES", 16)  # the tiny models' widths
    monkeypatch.setattr(int8, "MIN_CONV_CHANNELS", 16)
    root = tiny_checkpoints["sharpdepth"]
    fast, fast_float = _pipe(root, mode="fast"), _pipe(root, mode="fast", int8=False)
    assert has_int8_layers(fast.sharpener.unet)
    kinds = {type(m) for m in fast.sharpener.unet.modules()}
    assert Int8Linear in kinds and (Int8Conv2d in kinds) == int8_convolution_available()
    assert not has_int8_layers(fast_float.sharpener.unet)
    assert not has_int8_layers(fast.sharpener.vae)
    assert not has_int8_layers(_pipe(root).sharpener.unet)  # exact mode
    a, b = fast(photo, seed=0), fast_float(photo, seed=0)
    assert not np.array_equal(a.depth, b.depth)  # int8 did run
    assert np.abs(a.depth - b.depth).mean() < 0.02 * np.abs(b.depth).mean()
    with pytest.raises(ValueError, match="int8"):
        fast.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()


def test_int8_is_off_with_native_reduced_precision_and_in_released_mode(
    tiny_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(modes, "fast_precision", lambda device: (torch.bfloat16,) * 2)
    monkeypatch.setattr(int8, "MIN_FEATURES", 16)  # would convert the tiny models' layers
    monkeypatch.setattr(int8, "MIN_CONV_CHANNELS", 16)
    assert not has_int8_layers(_pipe(tiny_checkpoints["sharpdepth"], mode="fast").sharpener.unet)
    with pytest.raises(ValueError, match="int8"):
        _pipe(tiny_checkpoints["released"], mode="released", int8=True)


@needs_int8_conv
def test_int8_converts_a_tiny_autoencoders_inner_convolutions(
    tiny_checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sharpdepth.models.diffusion import DiffusionDepthModel
    from sharpdepth.testing import taesd_like

    monkeypatch.setattr(int8, "MIN_TINY_AUTOENCODER_CHANNELS", 8)  # taesd_like's width
    root = tiny_checkpoints["sharpdepth"]
    reference = DiffusionDepthModel.from_pretrained(root, vae=taesd_like(seed=3))
    model = DiffusionDepthModel.from_pretrained(root, vae=taesd_like(seed=3))
    prepare(model, torch.float32, int8=True)
    vae = model.vae
    assert has_int8_layers(vae)
    # the first and last convolutions (3 or 4 channels) stay float
    floats = [m for m in vae.modules() if isinstance(m, nn.Conv2d)]
    assert floats and all(min(m.in_channels, m.out_channels) < 8 for m in floats)
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        z, z_ref = model.encode(x), reference.encode(x)
        depth, depth_ref = model.decode_depth(z_ref), reference.decode_depth(z_ref)
    assert not torch.equal(z, z_ref)  # int8 did run
    assert _relative_l2(z, z_ref) < 0.05
    assert _relative_l2(depth, depth_ref) < 0.05
    monkeypatch.setattr(int8, "MIN_TINY_AUTOENCODER_CHANNELS", 16)  # wider than its layers
    narrow = DiffusionDepthModel.from_pretrained(root, vae=taesd_like(seed=3))
    assert not has_int8_layers(prepare(narrow, torch.float32, int8=True).vae)


@needs_int8_conv
def test_fast_mode_runs_a_tiny_autoencoder_in_int8(
    tiny_checkpoints: dict[str, Path],
    photo: np.ndarray,
    float32_cpu: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from sharpdepth.testing import taesd_like

    monkeypatch.setattr(int8, "MIN_TINY_AUTOENCODER_CHANNELS", 8)  # taesd_like's width
    taesd_like(seed=5).save_pretrained(tmp_path / "taesd")
    root, tiny = tiny_checkpoints["sharpdepth"], tmp_path / "taesd"
    fast = _pipe(root, mode="fast", tiny_vae=tiny)
    fast_float = _pipe(root, mode="fast", tiny_vae=tiny, int8=False)
    assert has_int8_layers(fast.sharpener.vae)
    assert not has_int8_layers(fast_float.sharpener.vae)
    assert not has_int8_layers(_pipe(root, tiny_vae=tiny).sharpener.vae)  # exact mode
    a, b = fast(photo, seed=0), fast_float(photo, seed=0)
    assert not np.array_equal(a.depth, b.depth)
    assert np.abs(a.depth - b.depth).mean() < 0.02 * np.abs(b.depth).mean()
