"""SharpDepthPipeline on tiny random-weight models: contracts and the steps of docs/method.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sharpdepth import SharpDepthPipeline
from sharpdepth.errors import CheckpointError, InvalidMetricDepthError
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.testing import SmoothMetricModel, write_tiny_checkpoint

RES = 64


@pytest.fixture()
def pipe(tiny_checkpoints: dict[str, Path]) -> SharpDepthPipeline:
    return SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"],
        metric_model=SmoothMetricModel(),
        device="cpu",
        processing_resolution=RES,
    )


def test_odd_size_comes_back_at_input_size(pipe: SharpDepthPipeline, photo: np.ndarray) -> None:
    out = pipe(photo, seed=0)
    for name in ("depth", "metric_depth", "gate", "sharpened_depth", "prior_depth"):
        arr = getattr(out, name)
        assert arr.shape == (1, 33, 51), name
        assert arr.dtype == np.float32, name
        assert np.isfinite(arr).all(), name
    assert out.scale.shape == (1,) and out.shift.shape == (1,)
    assert out.gate.min() >= 0.0 and out.gate.max() <= 1.0
    assert out.intrinsics is None and out.intrinsics_source is None


def test_native_resolution_and_odd_shapes(pipe: SharpDepthPipeline) -> None:
    img = np.random.default_rng(1).random((17, 29, 3)).astype(np.float32)
    out = pipe(img, seed=0, processing_resolution=0)
    assert out.depth.shape == (1, 17, 29)
    assert np.isfinite(out.depth).all()


def test_same_seed_same_output_different_seed_differs(
    pipe: SharpDepthPipeline, photo: np.ndarray
) -> None:
    a = pipe(photo, seed=3)
    b = pipe(photo, seed=3)
    c = pipe(photo, seed=4)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.allclose(a.sharpened_depth, c.sharpened_depth)


def test_generator_equals_seed(pipe: SharpDepthPipeline, photo: np.ndarray) -> None:
    a = pipe(photo, seed=5)
    b = pipe(photo, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(a.depth, b.depth)


def test_batch_equals_single_calls(pipe: SharpDepthPipeline, photo: np.ndarray) -> None:
    others = [np.roll(photo, shift, axis=1) for shift in (0, 7, 19)]
    batch = pipe(others, seed=11)
    for i, img in enumerate(others):
        single = pipe(img, seed=11)
        np.testing.assert_allclose(batch.depth[i], single.depth[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(batch.gate[i], single.gate[0], atol=1e-5)


def test_one_generator_batch_equals_consecutive_calls(
    pipe: SharpDepthPipeline, photo: np.ndarray
) -> None:
    imgs = [photo, photo[::-1].copy()]
    batch = pipe(imgs, generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)
    first = pipe(imgs[0], generator=gen)
    second = pipe(imgs[1], generator=gen)
    np.testing.assert_allclose(batch.depth[0], first.depth[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(batch.depth[1], second.depth[0], rtol=1e-4, atol=1e-4)


def test_output_type_pt(pipe: SharpDepthPipeline, photo: np.ndarray) -> None:
    out = pipe(torch.from_numpy(photo).permute(2, 0, 1).float() / 255, seed=0, output_type="pt")
    assert isinstance(out.depth, torch.Tensor) and out.depth.shape == (1, 33, 51)
    ref = pipe(photo, seed=0)
    np.testing.assert_allclose(out.depth.numpy(), ref.depth, rtol=1e-5, atol=1e-5)


def test_paper_variant_differs(pipe: SharpDepthPipeline, photo: np.ndarray) -> None:
    a = pipe(photo, seed=0, gate_variant="released")
    b = pipe(photo, seed=0, gate_variant="paper")
    assert not np.allclose(a.sharpened_depth, b.sharpened_depth)
    np.testing.assert_allclose(a.gate, b.gate)  # the gate comes before the variant


def test_save_load_round_trip(pipe: SharpDepthPipeline, photo: np.ndarray, tmp_path: Path) -> None:
    pipe.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "prompt_embeds.safetensors").is_file()
    assert not (tmp_path / "saved" / "text_encoder").exists()
    again = SharpDepthPipeline.from_pretrained(
        tmp_path / "saved", metric_model=SmoothMetricModel(), device="cpu"
    )
    assert again.processing_resolution == RES
    np.testing.assert_allclose(again(photo, seed=1).depth, pipe(photo, seed=1).depth, rtol=1e-6)
    torch.testing.assert_close(again.sharpener.prompt_embeds, pipe.sharpener.prompt_embeds)


def test_affine_sharpener_recovers_metric_depth(
    pipe: SharpDepthPipeline, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If D(z_hat) is an affine function of the metric depth, step 9 returns the metric depth."""
    model = pipe.sharpener
    seen: dict[str, torch.Tensor] = {}
    real_encode = model.encode

    def encode(x: torch.Tensor) -> torch.Tensor:
        seen["d_n"] = x[x.shape[0] // 2 :, :1].float()
        return real_encode(x)

    def decode_depth(z: torch.Tensor) -> torch.Tensor:
        return 0.37 * seen["d_n"] - 0.21

    monkeypatch.setattr(model, "encode", encode)
    monkeypatch.setattr(model, "decode_depth", decode_depth)
    out = pipe(photo, seed=0)
    np.testing.assert_allclose(out.depth, out.metric_depth, rtol=1e-4, atol=1e-4)


def test_constant_metric_map_gives_no_nan(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"],
        metric_model=lambda img: torch.full_like(img[:, :1], 4.0),
        device="cpu",
        processing_resolution=RES,
    )
    out = pipe(photo, seed=0)
    assert np.isfinite(out.depth).all() and np.isfinite(out.gate).all()
    np.testing.assert_allclose(out.depth, 4.0, rtol=1e-5)
    with pytest.raises(InvalidMetricDepthError, match="constant"):
        pipe(photo, seed=0, allow_constant_metric_depth=False)


def test_nan_metric_map_raises(tiny_checkpoints: dict[str, Path], photo: np.ndarray) -> None:
    def broken(img: torch.Tensor) -> torch.Tensor:
        d = torch.ones_like(img[:, :1])
        d[..., 0, 0] = float("nan")
        return d

    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"], metric_model=broken, device="cpu", processing_resolution=RES
    )
    with pytest.raises(InvalidMetricDepthError, match="NaN"):
        pipe(photo, seed=0)


def test_intrinsics_are_rescaled_for_the_model_and_returned(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    received: list[torch.Tensor | None] = []

    def model(img: torch.Tensor, k: torch.Tensor | None) -> Any:
        received.append(k)
        return {"depth": 1.0 + img.mean(1), "intrinsics": None}

    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"], metric_model=model, device="cpu", processing_resolution=102
    )
    k = np.array([[40.0, 0, 25.0], [0, 40.0, 16.0], [0, 0, 1]], dtype=np.float32)
    out = pipe(photo, intrinsics=k, seed=0)
    assert received[0] is not None
    # 33 x 51 -> 66 x 102: focal doubles, principal point follows pixel centres
    np.testing.assert_allclose(received[0][0, 0, 0].item(), 80.0, rtol=1e-6)
    np.testing.assert_allclose(received[0][0, 0, 2].item(), (25.0 + 0.5) * 2 - 0.5, rtol=1e-6)
    np.testing.assert_allclose(out.intrinsics[0], k)
    assert out.intrinsics_source == "user"


def test_model_intrinsics_are_scaled_back(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    def model(img: torch.Tensor) -> Any:
        h, w = img.shape[-2:]
        k = torch.tensor([[100.0, 0, (w - 1) / 2], [0, 100.0, (h - 1) / 2], [0, 0, 1]])
        return 1.0 + img.mean(1), k.expand(img.shape[0], 3, 3)

    # the unpadded input: a principal point at the centre of what the model sees is then
    # the image's centre (the released input's padding would move it)
    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"],
        metric_model=model,
        device="cpu",
        processing_resolution=102,
        metric_input="resized",
    )
    out = pipe(photo, seed=0)
    assert out.intrinsics_source == "metric_model"
    np.testing.assert_allclose(out.intrinsics[0, 0, 0], 50.0, rtol=1e-5)
    np.testing.assert_allclose(out.intrinsics[0, :2, 2], [25.0, 16.0], rtol=1e-5)


@pytest.mark.parametrize("layout", ["lotus", "marigold", "sharpdepth"])
def test_other_layouts_load_and_run(
    tiny_checkpoints: dict[str, Path], layout: str, photo: np.ndarray
) -> None:
    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints[layout],
        metric_model=SmoothMetricModel(),
        device="cpu",
        processing_resolution=RES,
    )
    expected = {"lotus": "sample", "marigold": "v_prediction", "sharpdepth": "sample"}[layout]
    assert pipe.sharpener.prediction_type == expected
    assert pipe.sharpener.uses_class_label == (layout != "marigold")
    out = pipe(photo, seed=0)
    assert out.depth.shape == (1, 33, 51) and np.isfinite(out.depth).all()


def test_stored_embedding_equals_text_encoder_embedding(tiny_checkpoints: dict[str, Path]) -> None:
    from_text = DiffusionDepthModel.from_pretrained(tiny_checkpoints["released"])
    stored = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    assert from_text.prompt_embeds.shape == (1, 2, 32)  # start + end token, no padding
    torch.testing.assert_close(from_text.prompt_embeds, stored.prompt_embeds)


def test_latent_factors_come_from_the_vae_config(tmp_path: Path, photo: np.ndarray) -> None:
    root = write_tiny_checkpoint(tmp_path / "f4", "released", downsampling_factor=4)
    model = DiffusionDepthModel.from_pretrained(root)
    assert model.downsampling_factor == 4
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    assert model.encode(x).shape == (1, 4, 4, 6)
    model.vae.register_to_config(scaling_factor=0.5)
    z_half = model.encode(x)
    model.vae.register_to_config(scaling_factor=0.25)
    torch.testing.assert_close(model.encode(x), z_half / 2)
    pipe = SharpDepthPipeline(model, SmoothMetricModel(), processing_resolution=50)
    assert pipe(photo, seed=0).depth.shape == (1, 33, 51)


def test_missing_checkpoint_and_component(
    tmp_path: Path, tiny_checkpoints: dict[str, Path]
) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        SharpDepthPipeline.from_pretrained(tmp_path / "nope", metric_model=SmoothMetricModel())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{}")
    with pytest.raises(CheckpointError, match="unet/"):
        SharpDepthPipeline.from_pretrained(broken, metric_model=SmoothMetricModel())


def test_unreachable_hub_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="Hugging Face Hub"):
        SharpDepthPipeline.from_pretrained(
            "nobody/no-such-sharpdepth", metric_model=SmoothMetricModel()
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gate_variant": "other"}, "gate_variant"),
        ({"confidence_threshold": 0.0}, "confidence_threshold"),
        ({"processing_resolution": -1}, "processing_resolution"),
        ({"output_type": "pil"}, "output_type"),
        ({"seed": 0, "generator": torch.Generator()}, "either seed or generator"),
        ({"intrinsics": np.eye(2)}, "intrinsics"),
        ({"intrinsics": np.zeros((3, 3))}, "focal"),
    ],
)
def test_bad_arguments_raise(
    pipe: SharpDepthPipeline, photo: np.ndarray, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        pipe(photo, **kwargs)


def test_images_of_different_sizes_in_one_call_raise(
    pipe: SharpDepthPipeline, photo: np.ndarray
) -> None:
    with pytest.raises(ValueError, match="share a size"):
        pipe([photo, photo[:20]])


def test_bfloat16_weights_run_close_to_float32(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    kwargs: dict[str, Any] = {"metric_model": SmoothMetricModel(), "device": "cpu"}
    p32 = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"], dtype="float32", **kwargs
    )
    p16 = SharpDepthPipeline.from_pretrained(tiny_checkpoints["released"], dtype="bf16", **kwargs)
    assert p16.sharpener.dtype == torch.bfloat16
    a, b = (
        p32(photo, seed=0, processing_resolution=RES),
        p16(photo, seed=0, processing_resolution=RES),
    )
    assert b.depth.dtype == np.float32 and np.isfinite(b.depth).all()
    assert np.abs(a.depth - b.depth).max() < 0.05 * np.abs(a.depth).max()


def test_metric_model_name_is_saved_with_the_pipeline(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray, tmp_path: Path
) -> None:
    from sharpdepth.testing import write_tiny_depth_anything

    metric = str(write_tiny_depth_anything(tmp_path / "metric"))
    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"], metric_model=metric, device="cpu", processing_resolution=RES
    )
    pipe.save_pretrained(tmp_path / "saved")
    again = SharpDepthPipeline.from_pretrained(tmp_path / "saved", device="cpu")
    assert again.metric_model.spec == metric
    np.testing.assert_allclose(again(photo, seed=0).depth, pipe(photo, seed=0).depth, rtol=1e-5)


def test_checkpoint_without_metric_model_needs_one(tiny_checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="metric model"):
        SharpDepthPipeline.from_pretrained(tiny_checkpoints["released"], device="cpu")


class RecordingMetric(SmoothMetricModel):
    """The smooth stand-in metric model, keeping the images it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(image.clone())
        return super().forward(image, intrinsics)


@pytest.mark.parametrize(
    ("metric_input", "size", "eight_bit"),
    [("released", (48, 64), True), ("resized", (41, 64), False)],
)
def test_metric_model_input(
    tiny_checkpoints: dict[str, Path],
    photo: np.ndarray,
    metric_input: str,
    size: tuple[int, int],
    eight_bit: bool,
) -> None:
    """Released input: the padded image (33 x 51 -> 41 x 64 -> 48 x 64), truncated to 8 bits,
    as the authors' release feeds its metric model; resized: the unpadded image as it is."""
    metric = RecordingMetric()
    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"],
        metric_model=metric,
        device="cpu",
        processing_resolution=RES,
        metric_input=metric_input,
    )
    out = pipe(photo, seed=0)
    (seen,) = metric.seen
    assert tuple(seen.shape[-2:]) == size
    codes = seen * 255.0
    assert torch.allclose(codes, codes.round(), atol=1e-4) is eight_bit
    assert out.depth.shape == (1, 33, 51) and np.isfinite(out.depth).all()
    with pytest.raises(ValueError, match="metric_input"):
        SharpDepthPipeline(pipe.sharpener, metric, metric_input="padded")
