"""Does the image autoencoder limit the prior? Train it on the RGB pixels instead.

The nano prior sees the image only through the autoencoder's latent (4 channels at
1/8, PSNR about 21 dB). This trains the same UNet for a short run on the same depth
latents, its image input being either

* ``latent``: the autoencoder's image latent (the recipe), or
* ``pixels-C``: the RGB pixels themselves, folded 8 x 8 into 192 channels at 1/8
  (pixel unshuffle) and mapped to ``C`` channels by a learned two-layer 1 x 1 stem
  trained with the UNet (an image encoder that loses nothing the depth needs),

and prints the held-out latent MSE at every validation. If the pixel inputs learn
much faster at the same steps, a better image autoencoder is worth its cost.

    python experiments/nano/prior_input_oracle.py --latents runs/nano-prior/latents.pt \
        --input pixels-4 -o runs/abl/prior-pixels4 --steps 1000

``--latents`` is a prior run's cache (training and ``val_latents.pt`` beside it), whose
samples are the first training (validation) samples of ``--data`` in index order.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.models.nano import empty_prompt_embedding, nano_scheduler, nano_unet
from sharpdepth.synth.dataset import SynthFolderDataset
from sharpdepth.training.nano.loop import LoopConfig, train_loop

LOGGER = logging.getLogger("prior_input_oracle")


class PixelStem(nn.Module):
    """RGB ``[B, 3, H, W]`` in [-1, 1] -> ``[B, C, H/8, W/8]`` (unshuffle + 1x1 MLP)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(192, 64, 1), nn.SiLU(), nn.Conv2d(64, channels, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.mlp(F.pixel_unshuffle(rgb, 8))


class Prior(nn.Module):
    """The UNet and (for pixel inputs) its stem, trained together."""

    def __init__(self, image_channels: int, pixels: bool) -> None:
        super().__init__()
        from diffusers import UNet2DConditionModel

        base = nano_unet()
        config = {**dict(base.config), "in_channels": image_channels + 4}
        self.unet = UNet2DConditionModel.from_config(config)
        self.stem = PixelStem(image_channels) if pixels else None


def rgb_tensor(data: Path, split: str, n: int) -> torch.Tensor:
    """The first ``n`` images of ``split`` as uint8 ``[n, 3, H, W]``."""
    dataset = SynthFolderDataset(data, split)
    images = [(dataset[i]["image"].clamp(0, 1) * 255).round().to(torch.uint8) for i in range(n)]
    return torch.stack(images)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--data", default="data/nano-synth", type=Path)
    p.add_argument("--latents", required=True, type=Path)
    p.add_argument("--vae", default="src/sharpdepth/assets/nano/vae", type=Path)
    p.add_argument("--input", default="latent", help="latent, or pixels-C (C channels)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--limit", type=int, default=None, help="first N training samples only")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)
    train = torch.load(args.latents, map_location="cpu", weights_only=True)
    val = torch.load(args.latents.parent / "val_latents.pt", map_location="cpu", weights_only=True)
    pixels = args.input.startswith("pixels")
    n, n_val = train["image"].shape[0], val["image"].shape[0]
    if args.limit is not None:
        n = min(n, args.limit)
    if train.get("with_flips"):
        raise SystemExit("use a cache without flips")
    image_channels = int(args.input.split("-")[1]) if pixels else train["image"].shape[1]
    if pixels:
        LOGGER.info("reading %d + %d images", n, n_val)
        train_rgb, val_rgb = rgb_tensor(args.data, "train", n), rgb_tensor(args.data, "val", n_val)
    prior = Prior(image_channels, pixels)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(args.vae).requires_grad_(False)  # not run here
    # the model supplies the method's UNet call (timestep, prompt, class label); the
    # UNet it runs is passed per call, since a pixel stem may widen its input
    model = DiffusionDepthModel(
        nano_unet(), vae, nano_scheduler(), empty_prompt_embedding(0), prediction_type="sample"
    )

    def image_input(picks: torch.Tensor, split: dict[str, torch.Tensor], rgb: Any) -> torch.Tensor:
        if prior.stem is None:
            return split["image"][picks]
        return prior.stem(rgb[picks].float() / 127.5 - 1.0)

    def make(step: int) -> dict[str, Any]:
        rng = np.random.default_rng([0, step])
        return {"picks": torch.as_tensor(rng.choice(n, args.batch_size, replace=False))}

    def loss_fn(batch: dict[str, Any], gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        picks = batch["picks"]
        target = train["depth"][picks]
        noise = torch.randn(target.shape, generator=gen)
        z_i = image_input(picks, train, train_rgb if pixels else None)
        x0 = model.predict_x0(z_i, noise, unet=prior.unet)
        return F.mse_loss(x0.float(), target), {}

    @torch.no_grad()
    def validate() -> dict[str, float]:
        gen = torch.Generator().manual_seed(0)
        errors = []
        for start in range(0, n_val, 16):
            picks = torch.arange(start, min(n_val, start + 16))
            z_d = val["depth"][picks]
            z_i = image_input(picks, val, val_rgb if pixels else None)
            x0 = model.predict_x0(z_i, torch.randn(z_d.shape, generator=gen), unet=prior.unet)
            errors.append(((x0.float() - z_d) ** 2).flatten(1).mean(1))
        return {"val_latent_mse": float(torch.cat(errors).mean())}

    loop = LoopConfig(
        steps=args.steps,
        lr=args.lr,
        warmup=100,
        weight_decay=1e-2,
        checkpoint_every=args.steps,
        validate_every=250,
        ema_decay=0.0,
    )
    result = train_loop(prior, loss_fn, make, loop, args.output, False, "prior", validate)
    logs = [json.loads(line) for line in (args.output / "log.jsonl").read_text().splitlines()]
    curve = [(r["step"], round(r["val_latent_mse"], 4)) for r in logs if "val_latent_mse" in r]
    print(json.dumps({"input": args.input, "seconds": round(result.seconds), "val": curve}))


if __name__ == "__main__":
    main()
