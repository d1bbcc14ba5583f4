"""Our pipeline against an independent step-by-step re-derivation of the released one.

The reference below follows the authors' released inference literally (their
pre-processing, encoder + quant_conv means, ``scheduler.add_noise``, nearest gate
down-sampling by 1/8, post_quant_conv + decoder, alignment at input resolution by
``numpy.linalg.lstsq`` on ``(1 - e) > 0.5``) with the noise drawn from one generator
in the documented order (``docs/method.md``): same weights, same seed -> same output to
float rounding. The metric model sees what the release gives it: the resized and padded
image as 8-bit values truncated from ``255 x``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from sharpdepth import SharpDepthPipeline


def pointwise_metric(img: torch.Tensor) -> torch.Tensor:
    """A per-pixel metric model, so padding the image or the depth gives the same map."""
    return 1.0 + 3.0 * (1.0 - img.mean(dim=1, keepdim=True))


def neighbourhood_metric(img: torch.Tensor) -> torch.Tensor:
    """A metric model that looks at 5 x 5 neighbourhoods, so the padded border and the
    8-bit truncation of its input change its depth."""
    grey = img.mean(dim=1, keepdim=True)
    smooth = F.avg_pool2d(grey, 5, stride=1, padding=2, count_include_pad=False)
    return 1.0 + 3.0 * (1.0 - smooth) + 0.5 * grey


METRIC_MODELS = {"pointwise": pointwise_metric, "neighbourhood": neighbourhood_metric}


@torch.no_grad()
def released_reference(
    root: Path, rgb: torch.Tensor, res: int, seed: int, metric: str = "pointwise"
) -> np.ndarray:
    unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet").eval()
    vae = AutoencoderKL.from_pretrained(root, subfolder="vae").eval()
    scheduler = DDIMScheduler.from_pretrained(root, subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(root / "text_encoder").eval()
    ids = tokenizer("", padding="do_not_pad", max_length=77, truncation=True, return_tensors="pt")
    empty = text_encoder(ids.input_ids)[0]
    s = 0.18215
    gen = torch.Generator().manual_seed(seed)

    h, w = rgb.shape[-2:]
    nh, nw = h * res // max(h, w), w * res // max(h, w)
    image = F.interpolate(rgb, (nh, nw), mode="bilinear", antialias=True)
    ph, pw = -nh % 8, -nw % 8
    image = F.pad(image, (0, pw, 0, ph), mode="replicate")
    depth = METRIC_MODELS[metric]((image * 255).int().float() / 255)
    dmin, dmax = depth.min(), depth.max()
    norm = ((depth - dmin) / (dmax - dmin) * 2 - 1).clip(-1, 1)

    def encode(x: torch.Tensor) -> torch.Tensor:
        mean, _ = vae.quant_conv(vae.encoder(x)).chunk(2, dim=1)
        return mean * s

    def decode(z: torch.Tensor) -> torch.Tensor:
        return vae.decoder(vae.post_quant_conv(z / s)).mean(dim=1, keepdim=True)

    z_d = encode(norm.repeat(1, 3, 1, 1))
    z_i = encode(image * 2 - 1)
    t = torch.full((1,), 999, dtype=torch.long)
    task = torch.tensor([[1.0, 0.0]])
    label = torch.cat([torch.sin(task), torch.cos(task)], dim=-1)

    eps = torch.randn(z_i.shape, generator=gen)
    prior = unet(torch.cat([z_i, eps], 1), t, empty, class_labels=label).sample
    err = (decode(prior) - norm).abs()
    err = (err / err.max()).clip(0, 1)
    mask = F.interpolate(err, scale_factor=1 / 8)
    noise = torch.randn(z_d.shape, generator=gen)
    gated = scheduler.add_noise(prior, noise, t) * mask + z_d * (1 - mask)
    sharp = decode(unet(torch.cat([z_i, gated], 1), t, empty, class_labels=label).sample)

    def back(x: torch.Tensor) -> np.ndarray:
        return F.interpolate(x[..., :nh, :nw], (h, w), mode="bilinear").squeeze().numpy()

    pred, ref, e = back(sharp), back(depth), back(err)
    valid = (1 - e) > 0.5
    a = np.stack([pred[valid], np.ones(int(valid.sum()))], axis=-1).astype(np.float64)
    (scale, shift), *_ = np.linalg.lstsq(a, ref[valid].astype(np.float64), rcond=None)
    return pred * scale + shift


@pytest.mark.parametrize("metric", ["pointwise", "neighbourhood"])
@pytest.mark.parametrize(("size", "res"), [((48, 64), 64), ((33, 51), 64), ((40, 30), 56)])
def test_matches_released_pipeline(
    tiny_checkpoints: dict[str, Path], size: tuple[int, int], res: int, metric: str
) -> None:
    root = tiny_checkpoints["released"]
    rgb = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(7))
    expected = released_reference(root, rgb, res, seed=13, metric=metric)
    pipe = SharpDepthPipeline.from_pretrained(
        root, metric_model=METRIC_MODELS[metric], device="cpu", processing_resolution=res
    )
    out = pipe(rgb, seed=13)
    np.testing.assert_allclose(out.depth[0], expected, rtol=1e-4, atol=1e-4)


def test_resized_metric_input_departs_from_the_release_near_the_padding(
    tiny_checkpoints: dict[str, Path],
) -> None:
    """``metric_input="resized"`` (the unpadded image, not truncated) is not the release."""
    root = tiny_checkpoints["released"]
    rgb = torch.rand(1, 3, 33, 51, generator=torch.Generator().manual_seed(7))
    expected = released_reference(root, rgb, 64, seed=13, metric="neighbourhood")
    pipe = SharpDepthPipeline.from_pretrained(
        root,
        metric_model=neighbourhood_metric,
        device="cpu",
        processing_resolution=64,
        metric_input="resized",
    )
    out = pipe(rgb, seed=13)
    assert np.abs(out.depth[0] - expected).max() > 1e-3
