"""The recipes that train the bundled nano family on the synthetic engine's data.

Five recipes, run in this order (each later one reads the earlier ones' output):

* ``metric``: :class:`~sharpdepth.models.metric.nano_net.NanoMetricNet`, supervised only by
  simulated sensors (64-beam LiDAR, structured light with holes at depth edges, random
  points; SILog loss), like real metric models;
* ``vae``: a diffusers ``AutoencoderKL`` (8x down-sampling, 4 latent channels)
  reconstructing engine images and min-max normalised dense depth maps;
* ``prior``: a diffusers ``UNet2DConditionModel`` trained the Lotus-G way (single step
  at ``t = T - 1``, x0 prediction, input ``[image latent, noise]``, depth task class
  label, a stored empty-prompt embedding) on dense depth;
* ``sharpdepth``: the ground-truth-free trainer (:class:`sharpdepth.training.Trainer`)
  from the three, on the engine's images only;
* ``tiny-vae`` (optional, after ``vae``): a TAESD-style ``AutoencoderTiny`` distilled
  from the autoencoder, for the ``tiny_vae`` inference option.

Each recipe writes ``OUTPUT/final`` in the layout the package loads (the same layouts
as the large published models) plus ``OUTPUT/final/training.json`` (data, command,
steps, CPU seconds). All randomness comes from the recipe's seed.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sharpdepth import method
from sharpdepth.io import atomic_write_folder
from sharpdepth.models.metric.nano_net import NanoMetricConfig, NanoMetricNet
from sharpdepth.models.nano import (
    empty_prompt_embedding,
    nano_scheduler,
    nano_tiny_vae,
    nano_unet,
    nano_vae,
)
from sharpdepth.training.nano.loop import LoopConfig, LoopResult, train_loop

LOGGER = logging.getLogger(__name__)

RECIPES = ("metric", "vae", "prior", "sharpdepth", "tiny-vae")


@dataclass(frozen=True)
class NanoData:
    """The synthetic dataset every nano recipe trains on (rendered if missing)."""

    n: int = 40000
    height: int = 256
    width: int = 256
    seed: int = 0


NANO_DATA = NanoData()

#: Default processing resolution (longer side) of the shipped nano prior and sharpener:
#: the size they are trained at, so that depth edges are placed at the pixel scale they
#: learned (2.25x cheaper to train than 384 px; docs/nano.md).
NANO_PROCESSING_RESOLUTION = 256


@dataclass
class RecipeOptions:
    """Options common to the recipes.

    Attributes:
        data: folder of the engine dataset (rendered with :data:`NANO_DATA` if missing).
        output: the recipe's run folder (``final/`` is written inside).
        seed: seed of every random draw.
        steps: override the recipe's number of steps (smoke runs).
        batch_size: override the recipe's batch size.
        workers: rendering processes when the dataset has to be rendered.
        progress: progress bars.
        inputs: folders of earlier recipes' ``final`` outputs, by recipe name.
        data_limit: use only the first N training samples (smoke runs).
        data_settings: what to render when ``data`` is missing (tests use tiny ones).
        edge_weight: prior recipe: weight of the decoded-depth loss
            (:func:`decoded_depth_loss`); 0 trains on latent MSE alone.
        metric_config: metric recipe: the network (default :data:`METRIC_CONFIG`).
        metric_dense: metric recipe: supervise with dense depth instead of the
            simulated sensors (an oracle for ablations, not the shipped model).
        prior_channels, prior_layers: prior recipe: the UNet (default
            :data:`PRIOR_CHANNELS`, :data:`PRIOR_LAYERS`).
        prior_crop: prior recipe: training window side in latent pixels (default
            :data:`PRIOR_CROP`).
        prior_near_weight: prior recipe: cap of the near-depth weights of the latent
            loss (:func:`near_weights`; default :data:`PRIOR_NEAR_WEIGHT`, 0 = plain MSE).
    """

    data: Path
    output: Path
    seed: int = 0
    steps: int | None = None
    batch_size: int | None = None
    workers: int = 2
    progress: bool = True
    inputs: dict[str, Path] = field(default_factory=dict)
    data_limit: int | None = None
    data_settings: NanoData = NANO_DATA
    edge_weight: float = 0.0
    metric_config: NanoMetricConfig | None = None
    metric_dense: bool = False
    prior_channels: tuple[int, ...] | None = None
    prior_layers: int | None = None
    prior_crop: int | None = None
    prior_near_weight: float | None = None


def split_size(data: Path, split: str) -> int:
    """Number of samples of ``split`` in the engine dataset at ``data`` (by its index)."""
    index = json.loads((data / "index.json").read_text())
    return sum(1 for sample in index.get("samples", []) if sample.get("split") == split)


def ensure_dataset(options: RecipeOptions) -> Path:
    """The training data folder: rendered (or resumed) with ``options.data_settings``.

    A complete dataset rendered with other settings (another size, seed or count) is
    used as it is, with a log line: the recipes train on any engine dataset.
    """
    from sharpdepth.synth.generate import generate_dataset

    settings = options.data_settings
    index = options.data / "index.json"
    if index.is_file():
        meta = json.loads(index.read_text())
        ours = (settings.height, settings.width, settings.seed, settings.n)
        theirs = (
            meta.get("height"),
            meta.get("width"),
            meta.get("seed"),
            len(meta.get("samples", [])),
        )
        if ours != theirs:
            LOGGER.info(
                "using the existing dataset %s (height, width, seed, n = %s; the recipe's "
                "default is %s)",
                options.data,
                theirs,
                ours,
            )
            return options.data
    generate_dataset(
        options.data,
        n=settings.n,
        height=settings.height,
        width=settings.width,
        seed=settings.seed,
        workers=options.workers,
        progress=options.progress,
    )
    return options.data


# --------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------


def _stack(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensor entries of dataset items into a batch."""
    return {
        k: torch.stack([it[k] for it in items]) for k, v in items[0].items() if torch.is_tensor(v)
    }


def step_batches(
    dataset: Any | Sequence[Any],
    batch_size: int,
    seed: int,
    crop: int | None = None,
    limit: int | None = None,
) -> Callable[[int], dict[str, Any]]:
    """A ``make_batch(step)`` over :class:`~sharpdepth.synth.dataset.SynthFolderDataset` s.

    ``dataset`` may be a list of views of the same samples (e.g. one per simulated
    sensor); each item then comes from one of them at random. The samples, the view,
    their augmentation (``set_epoch(step)``) and the optional random square crop of side
    ``crop`` are drawn from generators seeded by ``(seed, step)``, so a step's batch is
    the same in every run.
    """
    views: list[Any] = list(dataset) if isinstance(dataset, list | tuple) else [dataset]
    size = len(views[0]) if limit is None else min(limit, len(views[0]))

    def make(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([seed, step])
        picks = rng.choice(size, size=min(batch_size, size), replace=False)
        sources = rng.integers(0, len(views), size=len(picks))
        for view in views:
            view.set_epoch(step)
        batch = _stack([views[int(v)][int(i)] for i, v in zip(picks, sources, strict=True)])
        h, w = batch["image"].shape[-2:]
        if crop is not None and crop < min(h, w):
            top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            for key, value in batch.items():
                if value.ndim == 4:
                    batch[key] = value[..., top : top + crop, left : left + crop]
        return batch

    return make


def normalize_dense_depth(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Min-max normalise dense depth to ``[-1, 1]`` with invalid pixels (sky) as the far end.

    The same normalisation as :func:`sharpdepth.method.normalize_depth` (which the
    pipeline applies to metric depth), after filling pixels without depth with the
    image's largest valid depth.

    Args:
        depth: ``[B, 1, H, W]`` metres, 0 where invalid.
        mask: ``[B, 1, H, W]`` bool, valid pixels.
    """
    return method.normalize_depth(fill_invalid_far(depth, mask))


def fill_invalid_far(depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Depth with the pixels outside ``mask`` (sky) set to the image's largest valid depth.

    Args:
        depth: ``[B, 1, H, W]`` metres.
        mask: ``[B, 1, H, W]`` bool, valid pixels (an image without any is filled with 0).
    """
    far = torch.where(mask, depth, torch.zeros_like(depth)).flatten(1).max(dim=1).values
    return torch.where(mask, depth, far.view(-1, 1, 1, 1))


# --------------------------------------------------------------------------------------
# 1. metric
# --------------------------------------------------------------------------------------

#: Warm-up, a constant rate, then the last ``decay_steps`` decay: the length was
#: chosen from the held-out curve while the run was in its constant phase (docs/nano.md).
METRIC_LOOP = LoopConfig(
    steps=31500,
    lr=1e-3,
    warmup=200,
    decay_steps=6000,
    checkpoint_every=500,
    validate_every=1000,
    ema_decay=0.999,
)
METRIC_BATCH = 16
#: The nano metric network: runs at 128 px (longer side) with a depth head at 1/4 of
#: that, so its depth is accurate but soft, like a ViT's patch-token head.
METRIC_CONFIG = NanoMetricConfig(resolution=128, output_stride=4)
#: Simulated sensors; each training image gets one of them at random.
METRIC_SENSORS = ("lidar64", "structured_light", "random")
#: SILog variance weight; 0.5 (instead of the usual 0.85) weighs absolute scale more.
METRIC_SILOG_LAMBDA = 0.5
#: Validation images whose AbsRel is logged.
METRIC_VAL_SAMPLES = 64


def silog_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float = 0.85
) -> torch.Tensor:
    """Scale-invariant log loss ``sqrt(mean g^2 - lam (mean g)^2)`` per image, averaged.

    Args:
        pred, target: ``[B, 1, H, W]`` depth in metres.
        mask: ``[B, 1, H, W]`` bool, pixels with a target.
    """
    m = mask.float()
    count = m.flatten(1).sum(1).clamp_min(1.0)
    g = (torch.log(pred.clamp_min(1e-3)) - torch.log(target.clamp_min(1e-3))) * m
    mean_g = g.flatten(1).sum(1) / count
    mean_g2 = (g * g).flatten(1).sum(1) / count
    return torch.sqrt((mean_g2 - lam * mean_g * mean_g).clamp_min(1e-8)).mean()


def dense_abs_rel(pred: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over images of the AbsRel on valid pixels (monitoring; ``[B, 1, H, W]`` metres)."""
    m = mask.float()
    err = (pred - depth).abs() / depth.clamp_min(1e-3) * m
    return (err.flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1.0)).mean()


def resize_item(item: dict[str, Any], side: int) -> dict[str, Any]:
    """An item resized so its longer side is ``side`` px; a new dict.

    The image is resized with anti-aliasing; depth, mask (and any per-pixel map) take
    the nearest source pixel, so every depth value is a rendered one; ``K`` follows.
    """
    from sharpdepth.geometry import scale_intrinsics
    from sharpdepth.image_ops import resize
    from sharpdepth.synth.dataset import nearest_index

    h, w = item["image"].shape[-2:]
    scale = side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = dict(item)
    out["image"] = resize(item["image"][None], (nh, nw), antialias=True)[0].clamp(0, 1)
    rows = nearest_index(nh, 0, nh / h, source=h)
    cols = nearest_index(nw, 0, nw / w, source=w)
    for key in ("depth", "mask", "instances"):
        if key in item:
            out[key] = item[key][..., rows[:, None], cols[None, :]].contiguous()
    out["K"] = scale_intrinsics(item["K"], nw / w, nh / h)
    return out


def preload_split(
    data: Path, split: str, side: int, limit: int | None = None, progress: bool = False
) -> list[dict[str, Any]]:
    """Every item of a split resized to ``side`` px (:func:`resize_item`), in memory."""
    from tqdm.auto import tqdm

    from sharpdepth.synth.dataset import SynthFolderDataset

    dataset = SynthFolderDataset(data, split)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    keys = ("image", "depth", "mask", "K")
    return [
        {k: v for k, v in resize_item(dataset[i], side).items() if k in keys}
        for i in tqdm(range(n), desc=f"load {split}", disable=not progress)
    ]


def sensor_batches(
    items: Sequence[dict[str, Any]],
    batch_size: int,
    seed: int,
    sensors: Sequence[str] | None,
) -> Callable[[int], dict[str, Any]]:
    """``make_batch(step)`` over preloaded items, augmented, each seen by one sensor.

    Every item is flipped, zoom-cropped and colour-jittered
    (:func:`~sharpdepth.synth.dataset.augment_item`), then gets ``sparse_depth`` /
    ``sparse_mask`` from one of ``sensors`` drawn at random (``None``: the dense depth
    itself, an oracle for ablations). All draws come from generators seeded by
    ``(seed, step)``.
    """
    from sharpdepth.synth.dataset import AugmentConfig, add_sparse, augment_item

    config = AugmentConfig()

    def make(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([seed, step])
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        picks = rng.choice(len(items), size=min(batch_size, len(items)), replace=False)
        batch = []
        for i in picks:
            item = augment_item(items[int(i)], gen, config)
            if sensors:
                add_sparse(item, sensors[int(rng.integers(0, len(sensors)))], rng)
            else:
                item["sparse_depth"], item["sparse_mask"] = item["depth"], item["mask"]
            batch.append(item)
        return _stack(batch)

    return make


def train_metric(options: RecipeOptions) -> Path:
    """Recipe 1: the nano metric model from sparse sensor-like supervision only."""
    ensure_dataset(options)
    torch.manual_seed(options.seed)
    config = options.metric_config or METRIC_CONFIG
    model = NanoMetricNet(config)
    options.output.mkdir(parents=True, exist_ok=True)
    model.write_config(options.output)
    items = preload_split(
        options.data, "train", config.resolution, options.data_limit, options.progress
    )
    batch_size = options.batch_size or METRIC_BATCH
    sensors = None if options.metric_dense else METRIC_SENSORS
    make = sensor_batches(items, batch_size, options.seed, sensors)

    def loss_fn(
        batch: dict[str, Any], _gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(batch["image"], batch["K"])
        loss = silog_loss(pred, batch["sparse_depth"], batch["sparse_mask"], METRIC_SILOG_LAMBDA)
        with torch.no_grad():  # monitoring only: dense depth never reaches the loss
            absrel = dense_abs_rel(pred, batch["depth"], batch["mask"])
        return loss, {"dense_absrel": float(absrel)}

    val = None
    if split_size(options.data, "val"):
        val = _stack(preload_split(options.data, "val", config.resolution, METRIC_VAL_SAMPLES))

    @torch.no_grad()
    def validate() -> dict[str, float]:
        assert val is not None
        pred = torch.cat(
            [
                model(val["image"][i : i + 16], val["K"][i : i + 16])
                for i in range(0, val["image"].shape[0], 16)
            ]
        )
        return {"val_absrel": float(dense_abs_rel(pred, val["depth"], val["mask"]))}

    loop = _loop(METRIC_LOOP, options)
    result = train_loop(
        model,
        loss_fn,
        make,
        loop,
        options.output,
        options.progress,
        "metric",
        validate if val is not None else None,
    )
    final = options.output / "final"
    model.save_pretrained(final, dtype=torch.float16)
    _write_training_info(
        final, "metric", options, loop, result, batch_size, {"sensors": list(sensors or ["dense"])}
    )
    return final


# --------------------------------------------------------------------------------------
# 2. autoencoder
# --------------------------------------------------------------------------------------

VAE_LOOP = LoopConfig(steps=2000, lr=1e-3, warmup=100, checkpoint_every=250)
VAE_BATCH = 4
VAE_CROP = 96
VAE_KL_WEIGHT = 1e-6
VAE_DEPTH_WEIGHT = 2.0


def _gradient_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 difference of horizontal and vertical finite differences (keeps edges sharp)."""
    dx = (pred[..., :, 1:] - pred[..., :, :-1]) - (target[..., :, 1:] - target[..., :, :-1])
    dy = (pred[..., 1:, :] - pred[..., :-1, :]) - (target[..., 1:, :] - target[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def autoencoder_batch(batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
    """A batch's images and normalised dense depth maps as one autoencoder input.

    Returns:
        ``[2B, 3, H, W]`` in ``[-1, 1]`` (the ``B`` images, then the ``B`` depth maps
        repeated on 3 channels) and ``B``.
    """
    depth = normalize_dense_depth(batch["depth"], batch["mask"]).repeat(1, 3, 1, 1)
    return torch.cat([batch["image"] * 2.0 - 1.0, depth]), int(batch["image"].shape[0])


def autoencoder_loss(
    recon: torch.Tensor, target: torch.Tensor, n_images: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Autoencoder reconstruction loss of a batch of images followed by depth maps.

    Image L1 on the first ``n_images`` items, plus ``VAE_DEPTH_WEIGHT`` x (L1 +
    gradient L1) of the channel-mean depth of the rest.

    Args:
        recon: ``[B, 3, H, W]`` decoded batch.
        target: ``[B, 3, H, W]`` what it should be (depth maps repeated on 3 channels).
        n_images: how many of the ``B`` items are images.

    Returns:
        The loss and its logged terms (``image_l1``, ``depth_l1``).
    """
    image_l1 = (recon[:n_images] - target[:n_images]).abs().mean()
    depth_pred = recon[n_images:].mean(dim=1, keepdim=True)
    depth_ref = target[n_images:].mean(dim=1, keepdim=True)
    depth_l1 = (depth_pred - depth_ref).abs().mean()
    depth_grad = _gradient_l1(depth_pred, depth_ref)
    loss = image_l1 + VAE_DEPTH_WEIGHT * (depth_l1 + depth_grad)
    return loss, {"image_l1": float(image_l1.detach()), "depth_l1": float(depth_l1.detach())}


def train_vae(options: RecipeOptions) -> Path:
    """Recipe 2: the nano autoencoder on engine images and normalised dense depth."""
    from sharpdepth.synth.dataset import SynthFolderDataset

    ensure_dataset(options)
    torch.manual_seed(options.seed)
    vae = nano_vae(NANO_DATA.height)
    dataset = SynthFolderDataset(options.data, "train", augment=True, seed=options.seed)
    batch_size = options.batch_size or VAE_BATCH
    make = step_batches(dataset, batch_size, options.seed, crop=VAE_CROP, limit=options.data_limit)

    def loss_fn(
        batch: dict[str, Any], gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        x, b = autoencoder_batch(batch)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen)
        recon_loss, logs = autoencoder_loss(vae.decode(z).sample, x, b)
        kl = posterior.kl().mean()  # summed over latent elements, as SD's autoencoder
        return recon_loss + VAE_KL_WEIGHT * kl, {**logs, "kl": float(kl.detach())}

    loop = _loop(VAE_LOOP, options)
    result = train_loop(vae, loss_fn, make, loop, options.output, options.progress, "vae")
    eval_set = SynthFolderDataset(options.data, "train", seed=options.seed)
    scaling = latent_scaling_factor(vae, eval_set, n=min(64, len(eval_set)))
    vae.register_to_config(scaling_factor=scaling)
    LOGGER.info("vae: latent scaling factor %.5f", scaling)
    final = options.output / "final"
    atomic_write_folder(final, vae.to(torch.float16).save_pretrained)
    vae.float()
    _write_training_info(
        final,
        "vae",
        options,
        loop,
        result,
        batch_size,
        {"scaling_factor": scaling, "crop": VAE_CROP},
    )
    return final


@torch.no_grad()
def latent_scaling_factor(vae: Any, dataset: Any, n: int) -> float:
    """``1 / std`` of the latent means of ``n`` images and their normalised depth maps."""
    items = _stack([dataset[i] for i in range(n)])
    depth = normalize_dense_depth(items["depth"], items["mask"]).repeat(1, 3, 1, 1)
    latents = []
    for x in torch.cat([items["image"] * 2.0 - 1.0, depth]).split(16):
        latents.append(vae.encode(x).latent_dist.mean)
    return float(1.0 / torch.cat(latents).std())


TINY_VAE_LOOP = LoopConfig(steps=1500, lr=1e-3, warmup=100, checkpoint_every=250)
TINY_VAE_BATCH = 4
TINY_VAE_CROP = 96
#: Standard deviation of the noise added to the teacher's latents before the student
#: decodes them (the UNet's latents are not exactly the encoder's).
TINY_VAE_LATENT_NOISE = 0.05


def train_tiny_vae(options: RecipeOptions) -> Path:
    """Recipe ``tiny-vae`` (optional): a tiny autoencoder distilled from the nano one.

    The student's encoder is fitted to the teacher's scaled latent means (MSE) and its
    decoder, fed the teacher's latents plus a little noise, to the teacher's decodes (L1
    on images; L1 + gradient L1 on the channel-mean depth, as the ``vae`` recipe).
    Used by ``from_pretrained(..., tiny_vae=...)``; see ``docs/speed.md``.
    """
    from diffusers import AutoencoderKL

    from sharpdepth.synth.dataset import SynthFolderDataset

    ensure_dataset(options)
    teacher: Any = AutoencoderKL.from_pretrained(_input(options, "vae"), torch_dtype=torch.float32)
    teacher.eval().requires_grad_(False)
    scale = float(teacher.config.scaling_factor)
    shift = float(getattr(teacher.config, "shift_factor", None) or 0.0)
    torch.manual_seed(options.seed)
    student = nano_tiny_vae()
    dataset = SynthFolderDataset(options.data, "train", augment=True, seed=options.seed)
    batch_size = options.batch_size or TINY_VAE_BATCH
    make = step_batches(
        dataset, batch_size, options.seed, crop=TINY_VAE_CROP, limit=options.data_limit
    )

    def loss_fn(
        batch: dict[str, Any], gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        x, b = autoencoder_batch(batch)
        with torch.no_grad():
            z_t = (teacher.encode(x).latent_dist.mean - shift) * scale
            z_in = z_t + TINY_VAE_LATENT_NOISE * torch.randn(z_t.shape, generator=gen)
            y_t = teacher.decode(z_in / scale + shift).sample
        latent_mse = F.mse_loss(student.encode(x).latents, z_t)
        recon_loss, logs = autoencoder_loss(student.decode(z_in).sample, y_t, b)
        return latent_mse + recon_loss, {"latent_mse": float(latent_mse.detach()), **logs}

    loop = _loop(TINY_VAE_LOOP, options)
    result = train_loop(student, loss_fn, make, loop, options.output, options.progress, "tiny-vae")
    final = options.output / "final"
    atomic_write_folder(final, student.to(torch.float16).save_pretrained)
    student.float()
    _write_training_info(
        final,
        "tiny-vae",
        options,
        loop,
        result,
        batch_size,
        {"teacher": str(_input(options, "vae")), "crop": TINY_VAE_CROP},
    )
    return final


# --------------------------------------------------------------------------------------
# 3. prior
# --------------------------------------------------------------------------------------

PRIOR_LOOP = LoopConfig(
    steps=32500,
    lr=5e-4,
    warmup=200,
    decay_steps=3000,
    checkpoint_every=250,
    weight_decay=1e-2,
    validate_every=500,
    ema_decay=0.999,
)
PRIOR_BATCH = 8
#: Side (latent pixels) of a random window each training sample is cut to; None keeps
#: whole images. Windows hurt: the target is depth normalised by the whole image's
#: minimum and maximum, which a window does not show (docs/nano.md).
PRIOR_CROP: int | None = None
#: Also train on mirrored images (encoded separately: twice the encoding time).
PRIOR_FLIPS = False
#: Validation samples whose latent MSE is logged.
PRIOR_VAL_SAMPLES = 64
#: Side (latent pixels) of the random crop decoded for the prior's decoded-depth loss.
PRIOR_EDGE_CROP = 12
#: Cap of the near-depth weights of the prior's latent loss (:func:`near_weights`);
#: 0 trains on the plain latent MSE.
PRIOR_NEAR_WEIGHT = 0.0


#: Feature widths of the nano prior UNet's levels (the last two with cross-attention).
PRIOR_CHANNELS = (32, 64, 128)
#: Residual blocks per UNet level.
PRIOR_LAYERS = 1


@torch.no_grad()
def encode_split(
    model: Any,
    dataset: Any,
    limit: int | None,
    progress: bool,
    flips: bool = True,
    dense: bool = True,
) -> dict[str, torch.Tensor]:
    """Image and depth latents of every sample of ``dataset`` (and of its mirror image).

    Args:
        flips: also encode every sample mirrored left-right.
        dense: also keep the normalised dense depth maps.

    Returns:
        ``{"image": [N', C, h, w], "depth": [N', C, h, w]}`` scaled latents (float32),
        ``N' = 2N`` with ``flips``, and with ``dense`` ``"dense": [N', 1, H, W]`` the
        normalised dense depth maps (float16, in ``[-1, 1]``), mirrored like the latents.
    """
    from tqdm.auto import tqdm

    n = len(dataset) if limit is None else min(limit, len(dataset))
    out: dict[str, list[torch.Tensor]] = {"image": [], "depth": [], "dense": []}
    for start in tqdm(range(0, n, 8), desc="encode", disable=not progress):
        items = _stack([dataset[i] for i in range(start, min(n, start + 8))])
        depth = normalize_dense_depth(items["depth"], items["mask"])
        for flip in (False, True) if flips else (False,):
            img, dep = items["image"], depth
            if flip:
                img, dep = img.flip(-1), dep.flip(-1)
            z_i, z_d = model.encode_image_and_depth(img, dep)
            out["image"].append(z_i.float())
            out["depth"].append(z_d.float())
            if dense:
                out["dense"].append(dep.half())
    return {k: torch.cat(v) for k, v in out.items() if v}


def cached_latents(
    model: Any,
    dataset: Any,
    limit: int | None,
    progress: bool,
    cache: Path,
    flips: bool = True,
    dense: bool = True,
) -> dict[str, torch.Tensor]:
    """:func:`encode_split`, stored in ``cache`` so a resumed run does not encode again.

    The cache is keyed by the number of samples and the options; another one is
    re-encoded.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    key = {"samples": n, "with_flips": flips, "with_dense": dense}
    stored = _read_keyed_cache(cache, key)
    if stored is not None:
        LOGGER.info("prior: latents read from %s", cache)
        return stored
    latents = encode_split(model, dataset, limit, progress, flips, dense)
    _write_keyed_cache(cache, latents, key)
    return latents


def _read_keyed_cache(cache: Path, key: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The tensors stored in ``cache`` if it exists and was written with ``key``, else None."""
    if not cache.is_file():
        return None
    stored = torch.load(cache, map_location="cpu", weights_only=True)
    if not all(stored.get(k) == v for k, v in key.items()):
        return None
    return {k: v for k, v in stored.items() if torch.is_tensor(v)}


def _write_keyed_cache(cache: Path, tensors: dict[str, torch.Tensor], key: dict[str, Any]) -> None:
    """Store ``tensors`` and ``key`` in ``cache`` (written whole, then moved into place)."""
    tmp = cache.with_suffix(".tmp")
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**tensors, **key}, tmp)
    tmp.replace(cache)


def near_weights(depth: torch.Tensor, mask: torch.Tensor, factor: int, cap: float) -> torch.Tensor:
    """Per-latent-pixel weights of the prior's latent loss that favour near depth.

    An error ``delta`` in min-max normalised depth (range 2) is a relative depth error
    of ``delta * (d_max - d_min) / (2 d)``: large on near pixels of deep scenes (a
    street's road at 2 m when the far end is at 60 m), which the least-squares alignment
    of the evaluation then turns into a large AbsRel. The weight of a pixel is that
    factor, capped at ``cap``; pixels without depth (sky) count as the far end. Weights
    are averaged over each latent pixel's ``factor x factor`` block and scaled to mean 1
    per image, so they move the loss within an image, not between images.

    Args:
        depth: ``[B, 1, H, W]`` metres, 0 where invalid.
        mask: ``[B, 1, H, W]`` bool, valid pixels.
        factor: the autoencoder's down-sampling factor (``H`` and ``W`` multiples of it).
        cap: largest weight before the per-image scaling (> 0).

    Returns:
        ``[B, 1, H / factor, W / factor]`` float32 weights, mean 1 per image.
    """
    filled = fill_invalid_far(depth, mask & (depth > 0))
    flat = filled.flatten(1)  # sky at the far end: its minimum is the nearest valid depth
    span = (flat.max(dim=1).values - flat.min(dim=1).values).view(-1, 1, 1, 1)
    weights = (span / (2 * filled.clamp_min(1e-6))).clamp(1e-3, cap)
    pooled = F.avg_pool2d(weights.float(), factor)
    return pooled / pooled.flatten(1).mean(dim=1).view(-1, 1, 1, 1)


@torch.no_grad()
def cached_near_weights(
    dataset: Any, limit: int | None, factor: int, cap: float, progress: bool, cache: Path
) -> torch.Tensor:
    """:func:`near_weights` of every sample, stored in ``cache`` (keyed by count and cap).

    Returns:
        ``[N, 1, h, w]`` float32 weights.
    """
    from tqdm.auto import tqdm

    n = len(dataset) if limit is None else min(limit, len(dataset))
    key = {"samples": n, "factor": factor, "cap": cap}
    stored = _read_keyed_cache(cache, key)
    if stored is not None:
        return stored["weights"].float()
    out = []
    for start in tqdm(range(0, n, 32), desc="near weights", disable=not progress):
        items = _stack([dataset[i] for i in range(start, min(n, start + 32))])
        out.append(near_weights(items["depth"], items["mask"], factor, cap).half())
    weights = torch.cat(out)
    _write_keyed_cache(cache, {"weights": weights}, key)
    return weights.float()


def decoded_depth_loss(
    model: Any, x0: torch.Tensor, dense: torch.Tensor, crop: int, rng: np.random.Generator
) -> torch.Tensor:
    """L1 + finite-difference L1 between decoded predicted depth and dense depth.

    Decodes one random ``crop x crop`` latent window (the same for the batch) through
    the frozen decoder, with gradient, so the prior is pushed towards depth edges that
    survive decoding; latent MSE alone lets it regress to blurry means.

    Args:
        x0: ``[B, C, h, w]`` predicted scaled latents.
        dense: ``[B, 1, h * f, w * f]`` normalised dense depth in ``[-1, 1]``.
        crop: window side in latent pixels (clamped to the latent size).
        rng: draws the window position.
    """
    h, w = x0.shape[-2:]
    f = dense.shape[-1] // w
    ch, cw = min(crop, h), min(crop, w)
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    window = x0[..., top : top + ch, left : left + cw]
    target = dense[..., top * f : (top + ch) * f, left * f : (left + cw) * f].float()
    pred = model.decode_depth(window)
    return (pred - target).abs().mean() + _gradient_l1(pred, target)


def crop_latents(
    latents: dict[str, torch.Tensor],
    picks: Sequence[int],
    crop: int | None,
    rng: np.random.Generator,
) -> dict[str, torch.Tensor]:
    """The picked samples, each cut to a random ``crop x crop`` latent window.

    Windows are drawn per sample from ``rng``; ``"dense"`` maps (if present) are cut to
    the matching pixel window. ``crop=None`` (or a crop at least the latent size) keeps
    the whole latents.
    """
    h, w = latents["image"].shape[-2:]
    if crop is None or crop >= min(h, w):
        index = torch.as_tensor(list(picks))
        return {k: v[index] for k, v in latents.items()}
    out: dict[str, list[torch.Tensor]] = {k: [] for k in latents}
    for i in picks:
        top, left = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        for key, value in latents.items():
            f = value.shape[-1] // w
            out[key].append(
                value[int(i), :, top * f : (top + crop) * f, left * f : (left + crop) * f]
            )
    return {k: torch.stack(v) for k, v in out.items()}


def train_prior(options: RecipeOptions) -> Path:
    """Recipe 3: the nano Lotus-G-style prior on dense normalised depth latents."""
    from sharpdepth.models.diffusion import DiffusionDepthModel
    from sharpdepth.synth.dataset import SynthFolderDataset

    ensure_dataset(options)
    vae_dir = _input(options, "vae")
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir, torch_dtype=torch.float32).eval()
    vae.to(memory_format=torch.channels_last)  # encodes the data 1.3x faster on CPUs
    torch.manual_seed(options.seed)
    channels = options.prior_channels or PRIOR_CHANNELS
    unet = nano_unet(channels, options.prior_layers or PRIOR_LAYERS, NANO_DATA.height // 8)
    model = DiffusionDepthModel(
        unet, vae, nano_scheduler(), empty_prompt_embedding(options.seed), prediction_type="sample"
    )
    vae.requires_grad_(False)
    options.output.mkdir(parents=True, exist_ok=True)
    unet.save_config(options.output / "unet")  # what the run's checkpoints hold
    edge_weight = options.edge_weight
    latents = cached_latents(
        model,
        SynthFolderDataset(options.data, "train", seed=options.seed),
        options.data_limit,
        options.progress,
        options.output / "latents.pt",
        flips=PRIOR_FLIPS,
        dense=edge_weight > 0,
    )
    val = None
    if split_size(options.data, "val"):
        val = cached_latents(
            model,
            SynthFolderDataset(options.data, "val", seed=options.seed),
            PRIOR_VAL_SAMPLES,
            options.progress,
            options.output / "val_latents.pt",
            flips=False,
            dense=False,
        )
    near_cap = PRIOR_NEAR_WEIGHT if options.prior_near_weight is None else options.prior_near_weight
    if near_cap > 0:
        if PRIOR_FLIPS:
            raise ValueError("near-depth weights are not computed for mirrored samples")
        latents["weight"] = cached_near_weights(
            SynthFolderDataset(options.data, "train", seed=options.seed),
            options.data_limit,
            model.downsampling_factor,
            near_cap,
            options.progress,
            options.output / "near_weights.pt",
        )
    total = latents["image"].shape[0]
    batch_size = min(options.batch_size or PRIOR_BATCH, total)
    crop = options.prior_crop if options.prior_crop is not None else PRIOR_CROP

    def make(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([options.seed, step])
        picks = rng.choice(total, batch_size, replace=False)
        batch: dict[str, Any] = crop_latents(latents, picks.tolist(), crop, rng)
        batch["window_seed"] = int(rng.integers(0, 2**31))
        return batch

    def loss_fn(
        batch: dict[str, Any], gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]:
        noise = torch.randn(batch["depth"].shape, generator=gen)
        x0 = model.predict_x0(batch["image"], noise)
        if "weight" in batch:
            latent_mse = (batch["weight"] * (x0.float() - batch["depth"]) ** 2).mean()
        else:
            latent_mse = F.mse_loss(x0.float(), batch["depth"])
        if edge_weight <= 0:
            return latent_mse, {}
        rng = np.random.default_rng(batch["window_seed"])
        decoded = decoded_depth_loss(model, x0, batch["dense"], PRIOR_EDGE_CROP, rng)
        loss = latent_mse + edge_weight * decoded
        return loss, {"latent_mse": float(latent_mse.detach()), "decoded": float(decoded.detach())}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        assert val is not None
        gen = torch.Generator().manual_seed(options.seed)
        errors = []
        for start in range(0, val["image"].shape[0], 16):
            z_i, z_d = val["image"][start : start + 16], val["depth"][start : start + 16]
            x0 = model.predict_x0(z_i, torch.randn(z_d.shape, generator=gen))
            errors.append(((x0.float() - z_d) ** 2).flatten(1).mean(1))
        return {"val_latent_mse": float(torch.cat(errors).mean())}

    loop = _loop(PRIOR_LOOP, options)
    result = train_loop(
        unet,
        loss_fn,
        make,
        loop,
        options.output,
        options.progress,
        "prior",
        validate if val is not None else None,
    )
    final = options.output / "final"
    model.half()
    model.save_pretrained(
        final,
        extra_config={
            "family": "nano",
            "role": "prior",
            "metric_model": "nano",
            "processing_resolution": NANO_PROCESSING_RESOLUTION,
        },
    )
    _write_training_info(
        final,
        "prior",
        options,
        loop,
        result,
        batch_size,
        {
            "edge_weight": edge_weight,
            "near_weight_cap": near_cap,
            "crop": crop,
            "channels": list(unet.config.block_out_channels),
            "layers_per_block": unet.config.layers_per_block,
        },
    )
    return final


# --------------------------------------------------------------------------------------
# 4. SharpDepth
# --------------------------------------------------------------------------------------


#: Side (px) the sharpener's training images are resized to (shorter side) and cropped to.
SHARPDEPTH_TRAIN_SIDE = 256


def image_list(data: Path, split: str = "train", limit: int | None = None) -> Path:
    """Write ``DATA/SPLIT_images.txt`` listing the split's RGB images (no depth files)."""
    paths = sorted((data / split).glob("*_rgb.png"))
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise FileNotFoundError(f"no *_rgb.png images in {data / split}")
    listing = data / f"{split}_images.txt"
    listing.write_text("".join(f"{p.relative_to(data)}\n" for p in paths))
    return listing


def train_sharpdepth(options: RecipeOptions, overrides: list[str] | None = None) -> Path:
    """Recipe 4: the nano sharpener with the ground-truth-free trainer (images only)."""
    from sharpdepth.training.config import load_config
    from sharpdepth.training.trainer import Trainer

    ensure_dataset(options)
    prior_dir, metric_dir = _input(options, "prior"), _input(options, "metric")
    meta = json.loads((options.data / "index.json").read_text())
    settings = [
        f"model.prior={prior_dir}",
        f"model.metric_model={metric_dir}",
        f"data.train={image_list(options.data, 'train', options.data_limit)}",
        f"data.val={options.data}",
        f"run.output_dir={options.output}",
        f"run.seed={options.seed}",
        f"data.height={min(meta['height'], SHARPDEPTH_TRAIN_SIDE)}",
        f"data.width={min(meta['width'], SHARPDEPTH_TRAIN_SIDE)}",
    ]
    if options.steps is not None:
        settings.append(f"optim.max_steps={options.steps}")
    if options.batch_size is not None:
        settings.append(f"optim.batch_size={options.batch_size}")
    config = load_config("nano", settings + list(overrides or []))
    trainer = Trainer(config)
    trainer.load_checkpoint()
    start_step, start = trainer.step, time.perf_counter()
    trainer.fit(progress=options.progress)
    seconds = _previous_seconds(options.output) + time.perf_counter() - start
    (options.output / "seconds.json").write_text(json.dumps({"seconds": seconds}) + "\n")
    # shipped in float16, pointing at the bundled metric model by name
    final = trainer.save_final(
        dtype=torch.float16,
        extra_config={
            "metric_model": "nano",
            "family": "nano",
            "processing_resolution": NANO_PROCESSING_RESOLUTION,
        },
    )
    loop = LoopConfig(steps=config.optim.max_steps, lr=config.optim.lr, seed=options.seed)
    LOGGER.info("sharpdepth: steps %d..%d in %.0f s", start_step, trainer.step, seconds)
    _write_training_info(
        final,
        "sharpdepth",
        options,
        loop,
        LoopResult(trainer.step, seconds, trainer.history[-1] if trainer.history else {}),
        config.optim.batch_size,
        {"trainer_config": config.to_dict()},
    )
    return final


def _previous_seconds(output: Path) -> float:
    """Training seconds recorded by earlier (interrupted) sessions of a run."""
    path = output / "seconds.json"
    if not path.is_file():
        return 0.0
    return float(json.loads(path.read_text()).get("seconds", 0.0))


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _loop(default: LoopConfig, options: RecipeOptions) -> LoopConfig:
    """The recipe's loop settings with the run's seed and optional step override."""
    steps = options.steps if options.steps is not None else default.steps
    return replace(
        default,
        steps=steps,
        seed=options.seed,
        warmup=min(default.warmup, max(1, steps // 10)),
        checkpoint_every=min(default.checkpoint_every, steps),
        log_every=min(default.log_every, steps),
    )


def _input(options: RecipeOptions, recipe: str) -> Path:
    """The ``final`` folder of an earlier recipe (option, or the bundled model)."""
    from sharpdepth.assets import bundled_dir

    path = options.inputs.get(recipe) or bundled_dir(recipe)
    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"the {recipe!r} model is needed first: pass --{recipe} FOLDER (an earlier "
            f"recipe's OUTPUT/final), or run `sharpdepth nano train {recipe}`"
        )
    return Path(path)


def _write_training_info(
    final: Path,
    recipe: str,
    options: RecipeOptions,
    loop: LoopConfig,
    result: LoopResult,
    batch_size: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """``final/training.json``: what was trained on, how, for how long."""
    from sharpdepth import __version__

    info = {
        "recipe": recipe,
        "command": " ".join(["sharpdepth", *sys.argv[1:]]) if sys.argv else "",
        "data": {**asdict(options.data_settings), "split": "train", "limit": options.data_limit},
        "seed": options.seed,
        "steps": result.steps,
        "batch_size": batch_size,
        "loop": asdict(loop),
        "train_seconds": round(result.seconds, 1),
        "last_logs": result.last_logs,
        "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()},
        "sharpdepth_version": __version__,
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    (final / "training.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


RECIPE_FUNCTIONS: dict[str, Callable[[RecipeOptions], Path]] = {
    "metric": train_metric,
    "vae": train_vae,
    "prior": train_prior,
    "sharpdepth": train_sharpdepth,
    "tiny-vae": train_tiny_vae,
}
