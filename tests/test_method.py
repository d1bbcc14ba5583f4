"""The pure steps of docs/method.md, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from sharpdepth import method


def test_depth_task_label_is_sin_cos_of_switch() -> None:
    label = method.depth_task_label(3)
    expected = torch.tensor([math.sin(1.0), 0.0, math.cos(1.0), 1.0])
    assert label.shape == (3, 4)
    torch.testing.assert_close(label[2], expected)


def test_normalize_depth_maps_min_max_to_minus_one_one() -> None:
    d = torch.tensor([[2.0, 4.0], [6.0, 10.0]]).view(1, 1, 2, 2)
    out = method.normalize_depth(d)
    torch.testing.assert_close(out.view(-1), torch.tensor([-1.0, -0.5, 0.0, 1.0]))


def test_normalize_depth_is_per_image() -> None:
    d = torch.stack([torch.arange(4.0), torch.arange(4.0) * 10 + 5]).view(2, 1, 2, 2)
    out = method.normalize_depth(d)
    torch.testing.assert_close(out[0], out[1])


def test_normalize_depth_constant_map_gives_zero_not_nan() -> None:
    out = method.normalize_depth(torch.full((2, 1, 3, 3), 7.0))
    assert torch.equal(out, torch.zeros_like(out))


def test_gate_divides_by_per_image_max_and_clips() -> None:
    prior = torch.tensor([0.0, 0.5, 1.0, -1.0]).view(1, 1, 2, 2)
    norm = torch.zeros(1, 1, 2, 2)
    e = method.noise_aware_gate(prior, norm)
    torch.testing.assert_close(e.view(-1), torch.tensor([0.0, 0.5, 1.0, 1.0]))


def test_gate_normalised_by_the_batch_maximum_as_released_training() -> None:
    prior = torch.tensor([[0.5, 0.25], [1.0, 2.0]]).view(2, 1, 1, 2)
    norm = torch.zeros(2, 1, 1, 2)
    per_image = method.noise_aware_gate(prior, norm)
    per_batch = method.noise_aware_gate(prior, norm, "batch")
    torch.testing.assert_close(per_image.view(-1), torch.tensor([1.0, 0.5, 0.5, 1.0]))
    torch.testing.assert_close(per_batch.view(-1), torch.tensor([0.25, 0.125, 0.5, 1.0]))
    single = prior[:1]  # batch size 1: the two are the same
    torch.testing.assert_close(
        method.noise_aware_gate(single, norm[:1], "batch"),
        method.noise_aware_gate(single, norm[:1]),
    )
    with pytest.raises(ValueError, match="normalization"):
        method.noise_aware_gate(prior, norm, "pixel")


def test_gate_of_agreeing_maps_is_zero() -> None:
    x = torch.rand(2, 1, 4, 4)
    e = method.noise_aware_gate(x, x.clone())
    assert torch.isfinite(e).all() and e.abs().max() == 0


def test_gate_to_latent_uses_nearest_samples() -> None:
    e = torch.arange(64.0).view(1, 1, 8, 8)
    m = method.gate_to_latent(e, (2, 2))
    # nearest with factor 4 samples rows/cols 0 and 4
    torch.testing.assert_close(m.view(-1), torch.tensor([0.0, 4.0, 32.0, 36.0]))


def test_forward_diffuse_formula() -> None:
    x, eps = torch.full((1, 4, 2, 2), 2.0), torch.full((1, 4, 2, 2), -1.0)
    out = method.forward_diffuse(x, eps, 0.25)
    torch.testing.assert_close(out, torch.full_like(x, 0.5 * 2.0 - math.sqrt(0.75)))


@pytest.mark.parametrize("variant", ["released", "paper"])
def test_gated_latent_selects_by_gate(variant: str) -> None:
    z_g, z_d, eps = (
        torch.ones(1, 4, 2, 2),
        torch.full((1, 4, 2, 2), 3.0),
        torch.full((1, 4, 2, 2), 5.0),
    )
    m = torch.tensor([0.0, 1.0, 0.5, 0.0]).view(1, 1, 2, 2)
    ab = 0.36
    out = method.gated_latent(z_g, z_d, m, eps, ab, variant)  # type: ignore[arg-type]
    masked = 0.6 * 1.0 + 0.8 * 5.0 if variant == "released" else 5.0
    expected = torch.tensor([3.0, masked, 0.5 * masked + 1.5, 3.0])
    torch.testing.assert_close(out[0, 0].reshape(-1), expected)
    torch.testing.assert_close(out[0, 3].reshape(-1), expected)


def test_gated_latent_rejects_unknown_variant() -> None:
    z = torch.zeros(1, 4, 2, 2)
    with pytest.raises(ValueError, match="gate variant"):
        method.gated_latent(z, z, z[:, :1], z, 0.5, "other")  # type: ignore[arg-type]


def test_fit_scale_shift_recovers_known_affine_on_mask_only() -> None:
    pred = torch.rand(2, 1, 8, 8)
    target = 3.5 * pred + 1.25
    mask = torch.rand(2, 1, 8, 8) > 0.3
    target[~mask] = 1000.0  # outliers outside the mask must not matter
    scale, shift = method.fit_scale_shift(pred, target, mask)
    torch.testing.assert_close(scale, torch.tensor([3.5, 3.5], dtype=torch.float64))
    torch.testing.assert_close(shift, torch.tensor([1.25, 1.25], dtype=torch.float64))


def test_fit_scale_shift_degenerate_cases_stay_finite() -> None:
    pred = torch.zeros(1, 1, 4, 4)
    target = torch.full((1, 1, 4, 4), 2.0)
    scale, shift = method.fit_scale_shift(pred, target, torch.ones_like(pred, dtype=torch.bool))
    assert float(scale) == 0.0 and float(shift) == pytest.approx(2.0)
    # an empty mask falls back to all pixels
    pred = torch.rand(1, 1, 4, 4)
    scale, shift = method.fit_scale_shift(pred, 2 * pred, torch.zeros_like(pred, dtype=torch.bool))
    assert float(scale) == pytest.approx(2.0) and abs(float(shift)) < 1e-9


def test_apply_scale_shift() -> None:
    pred = torch.ones(2, 1, 2, 2)
    out = method.apply_scale_shift(pred, torch.tensor([2.0, 3.0]), torch.tensor([1.0, -1.0]))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([3.0, 2.0]))
