"""The nano family: metric network, training loop, a few steps of every recipe."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from sharpdepth.cli.main import main
from sharpdepth.errors import CheckpointError
from sharpdepth.models.metric import load_metric_model
from sharpdepth.models.metric.bundled import NanoMetricDepth
from sharpdepth.models.metric.nano_net import NanoMetricConfig, NanoMetricNet, ray_channels
from sharpdepth.training.nano.loop import CHECKPOINT_FILE, LoopConfig, lr_factor, train_loop
from sharpdepth.training.nano.recipes import (
    NANO_PROCESSING_RESOLUTION,
    NanoData,
    RecipeOptions,
    crop_latents,
    near_weights,
    normalize_dense_depth,
    preload_split,
    resize_item,
    sensor_batches,
    silog_loss,
    step_batches,
    train_metric,
    train_prior,
    train_sharpdepth,
    train_vae,
)

TINY_DATA = NanoData(n=10, height=64, width=64, seed=3)

#: Mean relative depth difference allowed between the bundled tiny autoencoder and the
#: nano AutoencoderKL on the coffee photo (measured 0.014 with the shipped models).
TINY_VAE_TOLERANCE = 0.05


def _k(width: int, height: int, focal: float) -> torch.Tensor:
    return torch.tensor([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])


def test_ray_channels_are_normalised_pixel_offsets() -> None:
    k = _k(8, 6, 4.0)[None]
    rays = ray_channels(k, 6, 8)
    assert rays.shape == (1, 2, 6, 8)
    assert torch.allclose(rays[0, 0, 0], (torch.arange(8.0) - 3.5) / 4.0)
    assert torch.allclose(rays[0, 1, :, 0], (torch.arange(6.0) - 2.5) / 4.0)


def test_metric_net_scales_depth_with_focal_length() -> None:
    torch.manual_seed(0)
    net = NanoMetricNet(NanoMetricConfig(channels=(8, 8, 8, 8, 8))).eval()
    # no ray input: the canonical-camera transform alone must make depth proportional to fx
    with torch.no_grad():
        net.stem[0].weight[:, 3:] = 0
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        near = net(image, _k(64, 64, 50.0)[None])
        far = net(image, _k(64, 64, 100.0)[None])
    assert near.shape == (1, 1, 64, 64) and bool((near > 0).all())
    assert torch.allclose(far, 2 * near, rtol=1e-4)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 40, 64), _k(64, 40, 50.0)[None])


def test_metric_folder_round_trip_and_registry(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = NanoMetricNet(NanoMetricConfig(channels=(8, 8, 8, 8, 8), resolution=64)).eval()
    net.save_pretrained(tmp_path / "metric", dtype=torch.float16)
    assert json.loads((tmp_path / "metric" / "config.json").read_text())["resolution"] == 64
    model = load_metric_model(str(tmp_path / "metric"), device="cpu")
    assert isinstance(model, NanoMetricDepth) and model.accepts_intrinsics
    image = torch.rand(2, 3, 45, 77)  # any size: resized to the network's resolution and back
    pred = model(image)
    assert pred.depth.shape == (2, 1, 45, 77) and pred.intrinsics is None
    with torch.no_grad():
        reference = net.predict_resized(image, _k(77, 45, 60.0).expand(2, 3, 3))
    k = _k(77, 45, 60.0).expand(2, 3, 3)
    assert torch.allclose(model(image, k).depth, reference, rtol=1e-2, atol=1e-3)  # fp16 weights
    (tmp_path / "metric" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError):
        NanoMetricNet.from_pretrained(tmp_path / "metric")


def test_silog_is_scale_invariant_only_with_lambda_one() -> None:
    target = torch.rand(2, 1, 8, 8) + 0.5
    mask = torch.ones_like(target, dtype=torch.bool)
    assert float(silog_loss(target * 2, target, mask, lam=1.0)) < 1e-3
    assert float(silog_loss(target * 2, target, mask, lam=0.5)) == pytest.approx(
        np.sqrt(0.5) * np.log(2), rel=1e-4
    )
    mask[:, :, :4] = False  # unmasked errors do not count
    pred = target.clone()
    pred[:, :, :4] *= 3
    assert float(silog_loss(pred, target, mask, lam=0.5)) < 1e-3


def test_normalize_dense_depth_puts_sky_at_the_far_end() -> None:
    depth = torch.tensor([[[[1.0, 3.0], [0.0, 2.0]]]])
    out = normalize_dense_depth(depth, depth > 0)
    assert torch.allclose(out, torch.tensor([[[[-1.0, 1.0], [1.0, 0.0]]]]))


def test_lr_schedule_warms_up_then_decays() -> None:
    config = LoopConfig(steps=100, warmup=10, min_lr_ratio=0.1)
    assert lr_factor(0, config) == pytest.approx(0.1)
    assert lr_factor(10, config) == pytest.approx(1.0)
    assert lr_factor(100, config) == pytest.approx(0.1)


def test_lr_schedule_with_a_stable_phase_can_be_lengthened() -> None:
    short = LoopConfig(steps=100, warmup=10, min_lr_ratio=0.1, decay_steps=20)
    long = LoopConfig(steps=300, warmup=10, min_lr_ratio=0.1, decay_steps=20)
    assert [lr_factor(s, short) for s in range(80)] == [lr_factor(s, long) for s in range(80)]
    assert lr_factor(50, short) == 1.0 and lr_factor(250, long) == 1.0
    assert lr_factor(90, short) < 1.0 and lr_factor(100, short) == pytest.approx(0.1)
    assert lr_factor(300, long) == pytest.approx(0.1)


def test_train_loop_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    data = torch.randn(64, 3)
    target = data @ torch.tensor([1.0, -2.0, 0.5])

    def run(out: Path, steps: int) -> torch.nn.Module:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)

        def make(step: int) -> dict[str, torch.Tensor]:
            idx = torch.from_numpy(np.random.default_rng([1, step]).choice(64, 8))
            return {"x": data[idx], "y": target[idx]}

        def loss_fn(batch, gen):  # type: ignore[no-untyped-def]
            noise = 0.01 * torch.randn(8, generator=gen)
            return ((model(batch["x"])[:, 0] - batch["y"] + noise) ** 2).mean(), {}

        config = LoopConfig(steps=steps, lr=0.05, warmup=2, checkpoint_every=3, log_every=2)
        result = train_loop(model, loss_fn, make, config, out, progress=False)
        assert result.steps == steps
        return model

    straight = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)  # "interrupted" after its checkpoint at step 3
    assert (tmp_path / "b" / CHECKPOINT_FILE).is_file()
    resumed = run(tmp_path / "b", 6)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)
    lines = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 6


#: What every checkpoint.pt of a nano run holds (runs written before and after the loop
#: moved to sharpdepth.training.nano must resume from each other's files).
LEGACY_CHECKPOINT_KEYS = {"model", "optimizer", "generator", "step", "seconds", "ema", "config"}


def test_train_loop_resumes_a_checkpoint_in_the_runs_format(tmp_path: Path) -> None:
    """A checkpoint.pt rebuilt key by key in the format earlier runs wrote (plain state
    dicts, the generator state and ``asdict(LoopConfig)``) resumes to the weights of an
    uninterrupted run, with the warm-up / constant / decay schedule and the average."""
    data = torch.randn(32, 2)
    target = data @ torch.tensor([0.5, -1.0])
    config = LoopConfig(
        steps=8, lr=0.05, warmup=2, decay_steps=3, checkpoint_every=4, log_every=2, ema_decay=0.9
    )

    def run(out: Path, stop_at: int | None = None) -> torch.nn.Module:
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)

        def make(step: int) -> dict[str, torch.Tensor]:
            if step == stop_at:
                raise KeyboardInterrupt  # an interrupted session
            idx = torch.from_numpy(np.random.default_rng([2, step]).choice(32, 8))
            return {"x": data[idx], "y": target[idx]}

        def loss_fn(batch, gen):  # type: ignore[no-untyped-def]
            noise = 0.01 * torch.randn(8, generator=gen)
            return ((model(batch["x"])[:, 0] - batch["y"] + noise) ** 2).mean(), {}

        train_loop(model, loss_fn, make, config, out, progress=False)
        return model

    straight = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=5)  # after the checkpoint of step 4
    path = tmp_path / "b" / CHECKPOINT_FILE
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert set(state) == LEGACY_CHECKPOINT_KEYS and state["step"] == 4
    assert state["config"] == asdict(config)
    legacy = {
        "model": {k: v.clone() for k, v in state["model"].items()},
        "optimizer": state["optimizer"],
        "generator": state["generator"].clone(),
        "step": 4,
        "seconds": float(state["seconds"]),
        "ema": {k: v.clone() for k, v in state["ema"].items()},
        "config": dict(state["config"]),
    }
    torch.save(legacy, path)
    resumed = run(tmp_path / "b")
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_train_loop_keeps_an_average_that_resumes_and_is_returned(tmp_path: Path) -> None:
    def run(
        out: Path, decay: float, stop_at: int | None = None
    ) -> tuple[torch.nn.Module, list[float]]:
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1, bias=False)
        seen: list[float] = []

        def make(step: int) -> dict[str, torch.Tensor]:
            if step == stop_at:
                raise KeyboardInterrupt  # an interrupted session
            return {"target": torch.tensor([[float(step)]])}

        def loss_fn(batch, gen):  # type: ignore[no-untyped-def]
            return (model.weight - batch["target"]).pow(2).sum(), {}

        def validate() -> dict[str, float]:
            seen.append(model.weight.item())
            return {"w": model.weight.item()}

        config = LoopConfig(
            steps=6, lr=0.1, warmup=1, checkpoint_every=2, validate_every=2, ema_decay=decay
        )
        train_loop(model, loss_fn, make, config, out, progress=False, validate=validate)
        return model, seen

    raw, raw_seen = run(tmp_path / "raw", 0.0)
    averaged, seen = run(tmp_path / "ema", 0.9)
    # the average lags the raw weights chasing a growing target, and is what validation saw
    assert averaged.weight.item() < raw.weight.item()
    assert seen[-1] == pytest.approx(averaged.weight.item()) and raw_seen[-1] == raw.weight.item()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", 0.9, stop_at=5)  # after the checkpoint of step 4
    resumed, _ = run(tmp_path / "resumed", 0.9)
    assert torch.equal(resumed.weight, averaged.weight)


def test_metric_net_head_level_follows_the_output_stride() -> None:
    image, k = torch.rand(1, 3, 64, 64), _k(64, 64, 50.0)[None]
    for stride, levels in ((2, 4), (4, 3), (8, 2)):
        net = NanoMetricNet(NanoMetricConfig(channels=(8, 8, 8, 8, 8), output_stride=stride))
        assert len(net.up) == levels
        with torch.no_grad():
            assert net(image, k).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError, match="power of two"):
        NanoMetricNet(NanoMetricConfig(output_stride=3))


def test_metric_net_patch_stem_sees_the_full_input_at_the_default_cost() -> None:
    """A stem stride of 4 on a 2x larger input gives the default network's feature sizes."""
    small = NanoMetricConfig(channels=(8, 8, 8, 8, 8), output_stride=4)
    patch = NanoMetricConfig(channels=(8, 8, 8, 8, 8), output_stride=8, stem_stride=4)
    assert (small.stride, patch.stride) == (32, 64)
    assert small.head_level == patch.head_level == 1
    sizes = []
    for config, side in ((small, 64), (patch, 128)):
        net = NanoMetricNet(config)
        image, k = torch.rand(1, 3, side, side), _k(side, side, side * 0.8)[None]
        with torch.no_grad():
            sizes.append(tuple(net.stem(torch.cat([image, image[:, :2]], dim=1)).shape))
            assert net(image, k).shape == (1, 1, side, side)
    assert sizes[0] == sizes[1] == (1, 8, 32, 32)
    with pytest.raises(ValueError, match="finer than stem_stride"):
        NanoMetricNet(NanoMetricConfig(output_stride=2, stem_stride=4))
    with pytest.raises(ValueError, match="stem_stride must be a power of two"):
        NanoMetricNet(NanoMetricConfig(stem_stride=3))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sharpdepth.synth.generate import generate_dataset

    root = tmp_path_factory.mktemp("nano-data")
    generate_dataset(
        root,
        n=TINY_DATA.n,
        height=TINY_DATA.height,
        width=TINY_DATA.width,
        seed=TINY_DATA.seed,
        progress=False,
    )
    return root


def _options(data: Path, out: Path, **kwargs: object) -> RecipeOptions:
    return RecipeOptions(
        data=data,
        output=out,
        steps=2,
        batch_size=2,
        progress=False,
        data_settings=TINY_DATA,
        **kwargs,  # type: ignore[arg-type]
    )


def test_step_batches_are_a_function_of_the_step(tiny_data: Path) -> None:
    from sharpdepth.synth.dataset import SynthFolderDataset

    ds = SynthFolderDataset(tiny_data, "train", sparse="lidar32", augment=True, seed=0)
    make = step_batches(ds, 2, seed=0, crop=48)
    a, b, c = make(5), make(6), make(5)
    assert a["image"].shape == (2, 3, 48, 48) and a["sparse_depth"].shape == (2, 1, 48, 48)
    assert torch.equal(a["image"], c["image"]) and torch.equal(a["sparse_mask"], c["sparse_mask"])
    assert not torch.equal(a["image"], b["image"])


def test_resize_item_keeps_rendered_depth_values_and_moves_the_intrinsics(
    tiny_data: Path,
) -> None:
    from sharpdepth.geometry import scale_intrinsics
    from sharpdepth.synth.dataset import SynthFolderDataset

    item = SynthFolderDataset(tiny_data, "train")[0]
    small = resize_item(item, 32)
    assert small["image"].shape == (3, 32, 32) and small["depth"].shape == (1, 32, 32)
    assert set(small["depth"].unique().tolist()) <= set(item["depth"].unique().tolist())
    assert torch.allclose(small["K"], scale_intrinsics(item["K"], 0.5, 0.5))


def test_sensor_batches_are_a_function_of_the_step(tiny_data: Path) -> None:
    items = preload_split(tiny_data, "train", 32)
    make = sensor_batches(items, 2, seed=0, sensors=("lidar32", "random"))
    a, b, c = make(5), make(6), make(5)
    assert a["image"].shape == (2, 3, 32, 32) and a["sparse_depth"].shape == (2, 1, 32, 32)
    assert torch.equal(a["sparse_depth"], c["sparse_depth"])
    assert not torch.equal(a["image"], b["image"])
    dense = sensor_batches(items, 2, seed=0, sensors=None)(5)
    assert torch.equal(dense["sparse_depth"], dense["depth"])


def test_crop_latents_cuts_matching_windows() -> None:
    latents = {
        "image": torch.arange(2 * 4 * 6 * 6.0).view(2, 4, 6, 6),
        "dense": torch.arange(2 * 1 * 48 * 48.0).view(2, 1, 48, 48),
    }
    out = crop_latents(latents, [1, 0], 4, np.random.default_rng(0))
    assert out["image"].shape == (2, 4, 4, 4) and out["dense"].shape == (2, 1, 32, 32)
    # the dense window starts 8 pixels per latent cell where the latent window starts
    first = out["image"][0, 0, 0, 0] - latents["image"][1, 0, 0, 0]
    row, col = divmod(int(first), 6)
    assert torch.equal(
        out["dense"][0], latents["dense"][1, :, row * 8 : row * 8 + 32, col * 8 : col * 8 + 32]
    )
    whole = crop_latents(latents, [1], None, np.random.default_rng(0))
    assert torch.equal(whole["image"][0], latents["image"][1])


def test_every_recipe_runs_a_few_steps_and_the_result_predicts(
    tiny_data: Path, tmp_path: Path
) -> None:
    from diffusers import AutoencoderKL

    from sharpdepth.models.checkpoints import read_checkpoint_config
    from sharpdepth.pipeline import SharpDepthPipeline

    metric = train_metric(_options(tiny_data, tmp_path / "metric"))
    info = json.loads((metric / "training.json").read_text())
    assert info["recipe"] == "metric" and info["steps"] == 2 and info["train_seconds"] > 0
    vae_dir = train_vae(_options(tiny_data, tmp_path / "vae"))
    vae = AutoencoderKL.from_pretrained(vae_dir)
    assert vae.config.latent_channels == 4 and len(vae.config.block_out_channels) == 4
    assert vae.config.scaling_factor > 0
    prior = train_prior(_options(tiny_data, tmp_path / "prior", inputs={"vae": vae_dir}))
    assert (prior / "prompt_embeds.safetensors").is_file()
    sharp = train_sharpdepth(
        _options(tiny_data, tmp_path / "sharp", inputs={"prior": prior, "metric": metric})
    )
    config = read_checkpoint_config(sharp)
    assert config["metric_model"] == "nano" and config["family"] == "nano"
    assert config["processing_resolution"] == NANO_PROCESSING_RESOLUTION
    assert config["trained_steps"] == 2
    from safetensors import safe_open

    with safe_open(str(sharp / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        names = list(f.keys())
        assert {f.get_tensor(k).dtype for k in names} == {torch.float16}  # shipped in fp16
    assert json.loads((sharp / "training.json").read_text())["steps"] == 2
    pipe = SharpDepthPipeline.from_pretrained(sharp, metric_model=str(metric), device="cpu")
    out = pipe(np.random.default_rng(0).random((40, 56, 3)).astype(np.float32), seed=0)
    assert out.depth.shape == (1, 40, 56) and np.isfinite(out.depth).all()


def test_recipe_needs_its_inputs(tiny_data: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sharpdepth.assets as nano

    monkeypatch.setattr(nano, "bundled_dir", lambda name: tmp_path / "missing" / name)
    with pytest.raises(FileNotFoundError, match="--vae"):
        train_prior(_options(tiny_data, tmp_path / "prior"))


def test_nano_cli_trains_the_metric_recipe(tiny_data: Path, tmp_path: Path) -> None:
    code = main(
        [
            "-q",
            "nano",
            "train",
            "metric",
            "--data",
            str(tiny_data),
            "-o",
            str(tmp_path / "run"),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_predict_runs_the_bundled_family_on_a_photo_with_no_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image
    from skimage import data

    from sharpdepth import io

    photo = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()).save(photo, quality=95)
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "predict", "--no-progress", str(photo)]) == 0
    out = tmp_path / "sharpdepth-output"
    depth = io.load_depth_npy(out / "coffee_depth.npy")
    assert depth.shape == (400, 600) and np.isfinite(depth).all() and (depth > 0).all()
    assert (out / "coffee_confidence.png").is_file()
    meta = json.loads((out / "coffee.json").read_text())
    assert meta["checkpoint"] == "nano"
    ply = (out / "coffee.ply").read_bytes()
    assert ply.startswith(b"ply") and b"element vertex" in ply


def test_published_flag_explains_where_the_checkpoint_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(photo)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARPDEPTH_PUBLISHED_CHECKPOINT", raising=False)
    assert main(["predict", "--no-progress", "--published", str(photo)]) == 2
    err = capsys.readouterr().err
    assert "checkpoints/sharpdepth" in err and "SHARPDEPTH_PUBLISHED_CHECKPOINT" in err


def test_prior_decoded_depth_loss_and_latent_cache(tiny_data: Path, tmp_path: Path) -> None:
    from sharpdepth.assets import bundled_dir
    from sharpdepth.training.nano.recipes import decoded_depth_loss

    out = tmp_path / "prior"
    opts = _options(tiny_data, out, inputs={"vae": bundled_dir("vae")}, edge_weight=1.0)
    final = train_prior(opts)
    assert json.loads((final / "training.json").read_text())["edge_weight"] == 1.0
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    train_logs = [r for r in logs if "loss" in r]
    assert "decoded" in train_logs[-1] and train_logs[-1]["decoded"] > 0
    assert logs[-1]["step"] == 2 and logs[-1]["val_latent_mse"] > 0  # held-out loss at the end
    cache = out / "latents.pt"
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    more = _options(tiny_data, out, inputs={"vae": bundled_dir("vae")}, edge_weight=1.0)
    more.steps = 3
    train_prior(more)
    assert cache.stat().st_mtime_ns == stamp  # reused, not encoded again

    # the loss reaches the predicted latent through the frozen decoder
    from sharpdepth.models.diffusion import DiffusionDepthModel

    model = DiffusionDepthModel.from_pretrained(bundled_dir("prior"))
    x0 = torch.randn(2, 4, 4, 6, requires_grad=True)
    dense = torch.rand(2, 1, 32, 48) * 2 - 1
    loss = decoded_depth_loss(model, x0, dense, crop=3, rng=np.random.default_rng(0))
    loss.backward()
    assert x0.grad is not None and x0.grad.abs().sum() > 0


def test_near_weights_favour_near_pixels_of_deep_scenes() -> None:
    depth = torch.full((2, 1, 16, 16), 4.0)
    depth[0, :, 8:] = 1.0  # a deep scene: near half at 1 m, far half at 4 m
    depth[1, :, :, :8] = 0.0  # sky (no depth) on the left half of a flat scene
    mask = depth > 0
    w = near_weights(depth, mask, factor=8, cap=100.0)
    assert w.shape == (2, 1, 2, 2)
    assert torch.allclose(w.flatten(1).mean(1), torch.ones(2))  # mean 1 per image
    # relative error per unit of normalised depth: (4 - 1) / (2 d), i.e. 1.5 at 1 m, 0.375 at 4 m
    assert torch.allclose(w[0, 0, 1] / w[0, 0, 0], torch.tensor(4.0))
    # a flat scene (and its sky at the far end) gets equal weights, not NaN
    assert torch.isfinite(w[1]).all() and torch.allclose(w[1], torch.ones_like(w[1]))
    capped = near_weights(depth, mask, factor=8, cap=0.5)  # 1.5 capped to 0.5
    assert torch.allclose(capped[0, 0, 1] / capped[0, 0, 0], torch.tensor(0.5 / 0.375))


def test_prior_recipe_with_near_weights(tiny_data: Path, tmp_path: Path) -> None:
    from sharpdepth.assets import bundled_dir

    out = tmp_path / "prior"
    opts = _options(tiny_data, out, inputs={"vae": bundled_dir("vae")}, prior_near_weight=8.0)
    final = train_prior(opts)
    assert json.loads((final / "training.json").read_text())["near_weight_cap"] == 8.0
    stored = torch.load(out / "near_weights.pt", weights_only=True)
    assert stored["weights"].shape[1:] == (1, 8, 8) and stored["cap"] == 8.0


def test_tiny_vae_recipe_distils_the_nano_autoencoder(tiny_data: Path, tmp_path: Path) -> None:
    from sharpdepth.assets import bundled_dir
    from sharpdepth.models.checkpoints import is_tiny_vae, load_tiny_vae
    from sharpdepth.models.diffusion import DiffusionDepthModel
    from sharpdepth.training.nano.recipes import train_tiny_vae

    out = tmp_path / "tiny-vae"
    final = train_tiny_vae(_options(tiny_data, out, inputs={"vae": bundled_dir("vae")}))
    info = json.loads((final / "training.json").read_text())
    assert info["recipe"] == "tiny-vae" and info["steps"] == 2
    logs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"latent_mse", "image_l1", "depth_l1"} <= set(logs[-1])
    tiny = load_tiny_vae(final)
    assert is_tiny_vae(tiny)
    model = DiffusionDepthModel.from_pretrained(bundled_dir("prior"), vae=tiny)
    with torch.no_grad():
        z = model.encode(torch.rand(1, 3, 32, 48) * 2 - 1)
        assert z.shape == (1, 4, 4, 6) and model.decode_depth(z).shape == (1, 1, 32, 48)


def test_bundled_tiny_vae_stays_close_to_the_bundled_autoencoder() -> None:
    """The shipped distilled tiny autoencoder (``--tiny-vae nano``) gives nearly the
    depth of the nano ``AutoencoderKL`` on a real photo."""
    from skimage import data

    from sharpdepth import SharpDepthPipeline
    from sharpdepth.models.checkpoints import is_tiny_vae

    photo = data.coffee()
    exact = SharpDepthPipeline.from_pretrained("nano", device="cpu")
    tiny = SharpDepthPipeline.from_pretrained("nano", device="cpu", tiny_vae="nano")
    assert is_tiny_vae(tiny.sharpener.vae) and not is_tiny_vae(exact.sharpener.vae)
    a, b = exact(photo, seed=0), tiny(photo, seed=0)
    rel = np.abs(b.depth - a.depth) / a.depth
    assert 0.0 < float(rel.mean()) < TINY_VAE_TOLERANCE
    np.testing.assert_array_equal(a.metric_depth, b.metric_depth)
