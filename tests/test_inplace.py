"""In-place activations for inference (sharpdepth.accel.inplace)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sharpdepth.accel import prepare
from sharpdepth.accel.inplace import use_in_place_geglu, use_in_place_resnets
from sharpdepth.accel.int8 import Int8Linear, int8_available, quantize_int8
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.testing import tiny_unet


def _inputs() -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(1, 8, 16, 12, generator=gen),
        torch.full((1,), 999),
        torch.randn(1, 3, 32, generator=gen),
        torch.zeros(1, 4),
    )


def _geglu_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in net.modules() if type(m).__name__.endswith("GEGLU")]


def test_in_place_geglu_gives_the_same_unet_output() -> None:
    unet = tiny_unet()
    sample, t, context, labels = _inputs()
    keys = list(unet.state_dict())
    with torch.inference_mode():
        ref = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
        assert use_in_place_geglu(unet) == len(_geglu_layers(unet)) > 0
        out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)  # GELU's last bit may differ
    assert list(unet.state_dict()) == keys
    assert {type(m).__name__ for m in _geglu_layers(unet)} == {"InPlaceGEGLU"}


@pytest.mark.skipif(not int8_available(), reason="needs an x86 CPU with FBGEMM")
def test_in_place_geglu_splits_int8_projections() -> None:
    unet = tiny_unet()
    quantize_int8(unet, min_features=16)
    projections = [m.proj for m in _geglu_layers(unet)]
    assert projections and all(isinstance(p, Int8Linear) for p in projections)
    sample, t, context, labels = _inputs()
    with torch.inference_mode():
        ref = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
        use_in_place_geglu(unet)
        out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    assert all(p.groups == 2 for p in projections)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_in_place_geglu_keeps_autograd_working() -> None:
    unet = tiny_unet()
    use_in_place_geglu(unet)
    sample, t, context, labels = _inputs()
    out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    out.square().mean().backward()
    assert all(p.grad is not None for p in unet.parameters() if p.requires_grad)
    with torch.no_grad():
        again = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    torch.testing.assert_close(again, out.detach(), rtol=1e-5, atol=1e-6)


def test_in_place_resnets_give_the_same_unet_output() -> None:
    unet = tiny_unet()
    sample, t, context, labels = _inputs()
    with torch.inference_mode():
        ref = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
        count = use_in_place_resnets(unet)
        out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    assert count == sum(type(m).__name__ == "InPlaceResnetBlock2D" for m in unet.modules()) > 0
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    # with autograd: the original forward, gradients flow
    out = unet(sample, t, encoder_hidden_states=context, class_labels=labels).sample
    out.square().mean().backward()
    torch.testing.assert_close(out.detach(), ref, rtol=1e-5, atol=1e-6)
    assert all(p.grad is not None for p in unet.parameters() if p.requires_grad)


def test_in_place_resnet_keeps_a_scale_factor_and_the_input() -> None:
    from diffusers.models.resnet import ResnetBlock2D

    block = ResnetBlock2D(
        in_channels=8, out_channels=16, temb_channels=4, groups=4, output_scale_factor=2.0
    ).eval()
    x, temb = torch.randn(2, 8, 5, 6), torch.randn(2, 4)
    x_copy, temb_copy = x.clone(), temb.clone()
    with torch.no_grad():
        ref = block(x, temb)
        use_in_place_resnets(block)
        out = block(x, temb)
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(x, x_copy) and torch.equal(temb, temb_copy)  # inputs untouched


def test_prepare_uses_in_place_layers(tiny_checkpoints: dict[str, Path]) -> None:
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    prepare(model)
    assert {type(m).__name__ for m in _geglu_layers(model.unet)} == {"GEGLU"}
    prepare(model, in_place=True)
    layers = _geglu_layers(model.unet)
    assert layers and all(type(m).__name__ == "InPlaceGEGLU" for m in layers)
    names = {type(m).__name__ for m in model.unet.modules()}
    assert "InPlaceResnetBlock2D" in names and "ResnetBlock2D" not in names
    vae_names = {type(m).__name__ for m in model.vae.modules()}
    assert "InPlaceResnetBlock2D" in vae_names and "ResnetBlock2D" not in vae_names
