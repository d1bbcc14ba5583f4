"""Tests of the metric depth model adapters (f_D), on tiny random-weight models; no network."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from sharpdepth.errors import CheckpointError, InvalidMetricDepthError, MissingDependencyError
from sharpdepth.models.metric import (
    METRIC_MODELS,
    CallableMetricModel,
    MetricDepthModel,
    MetricDepthPrediction,
    check_metric_depth,
    list_metric_models,
    load_metric_model,
)
from sharpdepth.models.metric.transformers_models import TransformersMetricDepth
from sharpdepth.models.metric.unidepth import UniDepthMetricDepth
from sharpdepth.testing import (
    perturb_weights,
    tiny_depth_anything,
    tiny_dinov2_config,
    tiny_dpt_processor,
    write_tiny_depth_anything,
)

H, W = 37, 53


def _image(batch: int = 2, seed: int = 0) -> torch.Tensor:
    """``[B, 3, 37, 53]`` random RGB in ``[0, 1]``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, H, W, generator=gen)


_perturb = perturb_weights
_dinov2 = tiny_dinov2_config
_depth_anything = tiny_depth_anything
_dpt_processor = tiny_dpt_processor


@pytest.fixture(scope="module")
def depth_anything_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_depth_anything(tmp_path_factory.mktemp("depth_anything_metric"))


@pytest.fixture(scope="module")
def zoedepth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import ZoeDepthConfig, ZoeDepthForDepthEstimation, ZoeDepthImageProcessor

    config = ZoeDepthConfig(
        backbone_config=_dinov2(
            image_size=32,
            patch_size=16,
            hidden_size=8,
            intermediate_size=16,
            out_features=["stage1", "stage2"],
        ),
        backbone=None,
        neck_hidden_sizes=[4, 4],
        reassemble_factors=[2, 1],
        fusion_hidden_size=8,
        bottleneck_features=8,
        num_out_features=[8, 8, 8, 8],
        bin_embedding_dim=8,
        num_relative_features=8,
        bin_configurations=[{"n_bins": 8, "min_depth": 0.001, "max_depth": 10.0}],
    )
    torch.manual_seed(0)
    model = ZoeDepthForDepthEstimation(config)
    _perturb(model)
    path = tmp_path_factory.mktemp("zoedepth")
    model.save_pretrained(path)
    ZoeDepthImageProcessor(
        size={"height": 32, "width": 32}, keep_aspect_ratio=True, ensure_multiple_of=16
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def depth_pro_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import DepthProConfig, DepthProForDepthEstimation

    encoder = {"model_type": "dinov2", "num_hidden_layers": 2, "hidden_size": 16,
               "num_attention_heads": 1, "patch_size": 4}  # fmt: skip
    config = DepthProConfig(
        patch_size=16,
        fusion_hidden_size=16,
        intermediate_hook_ids=[1, 0],
        intermediate_feature_dims=[8, 8],
        scaled_images_ratios=[0.5, 1.0],
        scaled_images_overlap_ratios=[0.0, 0.2],
        scaled_images_feature_dims=[8, 8],
        use_fov_model=True,
        image_model_config=dict(encoder),
        patch_model_config=dict(encoder),
        fov_model_config=dict(encoder),
    )
    torch.manual_seed(0)
    model = DepthProForDepthEstimation(config)
    _perturb(model, std=0.02)
    with torch.no_grad():
        # Random weights give zero inverse depth (ReLU) and a near-zero field of view. Both
        # last layers read ReLU outputs, so small non-negative weights and a positive bias
        # give a positive canonical inverse depth (about 1) and a field of view of ~60 deg.
        for layer, bias in ((model.head.layers[-2], 1.0), (model.fov_model.head.layers[-1], 60.0)):
            layer.weight.abs_().mul_(1e-2)
            layer.bias.fill_(bias)
    path = tmp_path_factory.mktemp("depth_pro")
    model.save_pretrained(path)
    # DepthProImageProcessor needs torchvision, so its config file is written by hand.
    settings = {
        "image_processor_type": "DepthProImageProcessor",
        "size": {"height": 32, "width": 32},
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_normalize": True,
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "resample": 2,
    }
    (path / "preprocessor_config.json").write_text(json.dumps(settings))
    return path


def _assert_good_depth(depth: torch.Tensor, batch: int) -> None:
    assert depth.shape == (batch, 1, H, W)
    assert depth.dtype == torch.float32
    assert torch.isfinite(depth).all()


def _assert_batch_equals_singles(model: MetricDepthModel, image: torch.Tensor) -> None:
    batched = model(image).depth
    singles = torch.cat([model(image[i : i + 1]).depth for i in range(image.shape[0])])
    torch.testing.assert_close(batched, singles, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- transformers


def test_depth_anything_metric_from_folder(depth_anything_dir: Path) -> None:
    model = load_metric_model(str(depth_anything_dir), device="cpu")
    assert isinstance(model, TransformersMetricDepth)
    assert not model.accepts_intrinsics
    image = _image()
    pred = model(image)
    _assert_good_depth(pred.depth, 2)
    assert pred.intrinsics is None
    assert (pred.depth > 0).all() and (pred.depth <= 20).all()  # sigmoid * max_depth
    check_metric_depth(pred.depth)
    _assert_batch_equals_singles(model, image)


def test_depth_anything_hf_prefix_and_dtype(depth_anything_dir: Path) -> None:
    model = load_metric_model(f"hf:{depth_anything_dir}", device="cpu", dtype="bfloat16")
    assert isinstance(model, TransformersMetricDepth)
    assert next(model.model.parameters()).dtype == torch.bfloat16
    _assert_good_depth(model(_image(1)).depth, 1)


def test_relative_depth_anything_is_rejected(tmp_path: Path) -> None:
    _depth_anything("relative").save_pretrained(tmp_path)
    _dpt_processor().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="relative depth model"):
        load_metric_model(str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="not metric depth"):
        TransformersMetricDepth(_depth_anything("relative"), _dpt_processor(), device="cpu")


def test_transformers_needs_processor() -> None:
    with pytest.raises(ValueError, match="image processor"):
        TransformersMetricDepth(_depth_anything("metric"), None, device="cpu")


def test_zoedepth_from_folder(zoedepth_dir: Path) -> None:
    model = load_metric_model(str(zoedepth_dir), device="cpu")
    assert isinstance(model, TransformersMetricDepth)
    image = _image()
    pred = model(image)
    _assert_good_depth(pred.depth, 2)
    check_metric_depth(pred.depth)
    _assert_batch_equals_singles(model, image)


def test_depth_pro_estimated_intrinsics(depth_pro_dir: Path) -> None:
    model = load_metric_model(f"hf:{depth_pro_dir}", device="cpu")
    assert model.accepts_intrinsics
    image = _image()
    pred = model(image)
    _assert_good_depth(pred.depth, 2)
    assert (pred.depth > 0).all()
    check_metric_depth(pred.depth)
    assert pred.intrinsics is not None and pred.intrinsics.shape == (2, 3, 3)
    k = pred.intrinsics
    assert torch.allclose(k[:, 0, 2], torch.full((2,), (W - 1) / 2))
    assert torch.allclose(k[:, 1, 2], torch.full((2,), (H - 1) / 2))
    assert torch.allclose(k[:, 0, 0], k[:, 1, 1]) and (k[:, 0, 0] > 0).all()
    _assert_batch_equals_singles(model, image)


def test_depth_pro_user_focal_scales_depth(depth_pro_dir: Path) -> None:
    model = load_metric_model(str(depth_pro_dir), device="cpu")
    image = _image()
    k = torch.tensor([[40.0, 0.0, W / 2], [0.0, 40.0, H / 2], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    k2 = k.clone()
    k2[:, 0, 0] *= 2
    pred = model(image, k)
    pred2 = model(image, k2)
    torch.testing.assert_close(pred2.depth, 2 * pred.depth, rtol=1e-5, atol=1e-6)
    assert pred.intrinsics is not None
    torch.testing.assert_close(pred.intrinsics, k)
    with pytest.raises(ValueError, match="fx > 0"):
        model(image, k * torch.tensor([-1.0, 1.0, 1.0])[None, :, None])


def test_folder_without_config_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_metric_model(str(tmp_path))


# --------------------------------------------------------------------------- callables


def test_callable_one_argument_function() -> None:
    model = load_metric_model(lambda img: img.mean(1) + 1.0)
    assert isinstance(model, CallableMetricModel) and not model.accepts_intrinsics
    _assert_good_depth(model(_image()).depth, 2)


def test_callable_two_arguments_tuple_return() -> None:
    seen: list[torch.Tensor | None] = []

    def fn(img: torch.Tensor, k: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(k)
        b = img.shape[0]
        return img[:, :1] + 1.0, torch.eye(3).expand(b, 3, 3) * 2

    model = load_metric_model(fn)
    assert model.accepts_intrinsics
    k = torch.eye(3).expand(2, 3, 3)
    pred = model(_image(), k)
    assert seen[0] is k
    _assert_good_depth(pred.depth, 2)
    assert pred.intrinsics is not None and pred.intrinsics.shape == (2, 3, 3)


def test_callable_dict_return_and_resize() -> None:
    def fn(img: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"depth": torch.ones(img.shape[0], 1, 10, 12) * 3.0}

    pred = load_metric_model(fn)(_image())
    _assert_good_depth(pred.depth, 2)
    assert torch.allclose(pred.depth, torch.full_like(pred.depth, 3.0))


def test_callable_nn_module() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, img: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.softplus(self.conv(img)) + 0.1

    net = Net().train()
    model = load_metric_model(net, device="cpu")
    assert isinstance(model, CallableMetricModel)
    assert not net.training and not model.accepts_intrinsics
    _assert_good_depth(model(_image()).depth, 2)


def test_metric_depth_model_is_returned_as_is() -> None:
    class Fixed(MetricDepthModel):
        def predict(
            self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
        ) -> MetricDepthPrediction:
            return MetricDepthPrediction(depth=torch.ones(image.shape[0], 1, H, W))

    fixed = Fixed()
    assert load_metric_model(fixed) is fixed
    assert load_metric_model(fixed, device="cpu") is fixed


def test_load_metric_model_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        load_metric_model(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- check_metric_depth


def _ramp() -> torch.Tensor:
    return torch.linspace(1.0, 5.0, H * W).reshape(1, 1, H, W)


def test_check_metric_depth_passes_on_normal_depth() -> None:
    check_metric_depth(_ramp())


@pytest.mark.parametrize(
    ("value", "message"),
    [(float("nan"), "NaN/inf"), (float("inf"), "NaN/inf")],
)
def test_check_metric_depth_rejects_non_finite(value: float, message: str) -> None:
    depth = _ramp()
    depth[0, 0, 3, 4] = value
    with pytest.raises(InvalidMetricDepthError, match=message):
        check_metric_depth(depth)


def test_check_metric_depth_rejects_constant_and_nonpositive() -> None:
    with pytest.raises(InvalidMetricDepthError, match="constant"):
        check_metric_depth(torch.full((1, 1, H, W), 2.0))
    check_metric_depth(torch.full((1, 1, H, W), 2.0), allow_constant=True)
    with pytest.raises(InvalidMetricDepthError, match="no positive depth"):
        check_metric_depth(-_ramp())
    with pytest.raises(InvalidMetricDepthError, match="no positive depth"):
        check_metric_depth(torch.zeros(1, 1, H, W))


# --------------------------------------------------------------------------- unidepth


def test_unidepth_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "unidepth", None)
    monkeypatch.delitem(sys.modules, "unidepth.models", raising=False)
    with pytest.raises(MissingDependencyError, match="pip install") as info:
        load_metric_model("unidepth-v2-vits14", device="cpu")
    assert "github.com/lpiccinelli-eth/UniDepth" in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ImportError)


class _FakeUniDepth(torch.nn.Module):
    """Stands in for UniDepthV1/V2: records its inputs, returns depth and intrinsics."""

    loaded: ClassVar[list[tuple[str, str]]] = []

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    @classmethod
    def from_pretrained(cls, hub_id: str) -> _FakeUniDepth:
        cls.loaded.append((cls.__name__, hub_id))
        return cls()

    def infer(self, rgb: torch.Tensor, camera: torch.Tensor | None = None) -> dict[str, Any]:
        self.calls.append((rgb, camera))
        b, _, h, w = rgb.shape
        depth = rgb.float().mean(1, keepdim=True) / 255.0 + self.weight
        estimated = torch.tensor([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]]).expand(b, 3, 3)
        return {"depth": depth, "intrinsics": estimated, "points": torch.zeros(b, 3, h, w)}


@pytest.fixture
def fake_unidepth(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    package = types.ModuleType("unidepth")
    models = types.ModuleType("unidepth.models")
    models.UniDepthV1 = type("UniDepthV1", (_FakeUniDepth,), {})  # type: ignore[attr-defined]
    models.UniDepthV2 = type("UniDepthV2", (_FakeUniDepth,), {})  # type: ignore[attr-defined]
    package.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "unidepth", package)
    monkeypatch.setitem(sys.modules, "unidepth.models", models)
    monkeypatch.setattr(_FakeUniDepth, "loaded", [])
    return models


def test_unidepth_adapter_with_fake_package(fake_unidepth: types.ModuleType) -> None:
    model = load_metric_model("unidepth-v2-vits14", device="cpu")
    assert isinstance(model, UniDepthMetricDepth)
    assert model.accepts_intrinsics and model.name == "unidepth-v2-vits14"
    assert _FakeUniDepth.loaded == [("UniDepthV2", "lpiccinelli/unidepth-v2-vits14")]
    image = _image()

    pred = model(image)
    _assert_good_depth(pred.depth, 2)
    assert pred.intrinsics is not None and pred.intrinsics.shape == (2, 3, 3)
    assert float(pred.intrinsics[0, 0, 0]) == 50.0
    rgb, camera = model.model.calls[-1]
    assert rgb.dtype == torch.uint8 and rgb.shape == (2, 3, H, W) and camera is None
    assert int(rgb.max()) > 200  # 0..255, not 0..1

    k = torch.tensor([[70.0, 0, 26.0], [0, 70.0, 18.0], [0, 0, 1]]).expand(2, 3, 3)
    pred = model(image, k)
    _, camera = model.model.calls[-1]
    assert camera is not None and torch.equal(camera, k)
    assert pred.intrinsics is not None
    torch.testing.assert_close(pred.intrinsics, k)


def test_unidepth_prefix_picks_version(fake_unidepth: types.ModuleType) -> None:
    model = load_metric_model("unidepth:lpiccinelli/unidepth-v1-vitl14", device="cpu")
    assert isinstance(model, UniDepthMetricDepth)
    assert _FakeUniDepth.loaded == [("UniDepthV1", "lpiccinelli/unidepth-v1-vitl14")]


# --------------------------------------------------------------------------- registry


def test_registry_names_and_entries() -> None:
    names = list_metric_models()
    expected = {
        "unidepth-v1-vitl14", "unidepth-v1-cnvnxtl", "unidepth-v2-vits14",
        "unidepth-v2-vitb14", "unidepth-v2-vitl14", "depth-pro", "zoedepth-nyu",
        "zoedepth-kitti", "zoedepth-nyu-kitti", "nano",
    }  # fmt: skip
    for scene in ("indoor", "outdoor"):
        for size in ("small", "base", "large"):
            expected.add(f"depth-anything-v2-metric-{scene}-{size}")
    assert set(names) == expected
    assert (
        METRIC_MODELS["depth-anything-v2-metric-outdoor-base"].hub_id
        == "depth-anything/Depth-Anything-V2-Metric-Outdoor-Base-hf"
    )
    assert METRIC_MODELS["depth-pro"].hub_id == "apple/DepthPro-hf"
    assert METRIC_MODELS["zoedepth-nyu-kitti"].hub_id == "Intel/zoedepth-nyu-kitti"
    assert METRIC_MODELS["depth-pro"].accepts_intrinsics
    assert METRIC_MODELS["unidepth-v1-cnvnxtl"].accepts_intrinsics
    assert not METRIC_MODELS["zoedepth-nyu"].accepts_intrinsics


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(ValueError, match="unknown metric model") as info:
        load_metric_model("no-such-model")
    assert "unidepth-v2-vitl14" in str(info.value) and "depth-pro" in str(info.value)


@pytest.mark.parametrize("name", ["nano", "bundled"])
def test_bundled_nano_metric_model_loads_by_name(name: str) -> None:
    from sharpdepth.models.metric.bundled import NanoMetricDepth

    model = load_metric_model(name, device="cpu")
    assert isinstance(model, NanoMetricDepth) and model.spec == name
    pred = model(torch.rand(1, 3, 48, 64))
    assert pred.depth.shape == (1, 1, 48, 64) and bool((pred.depth > 0).all())


def test_missing_bundled_files_give_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import sharpdepth.assets as nano

    monkeypatch.setattr(nano, "bundled_dir", lambda name: tmp_path / name)
    with pytest.raises(CheckpointError, match="missing") as info:
        load_metric_model("nano")
    assert "--metric-model" in str(info.value)
