"""Score nano priors alone (aligned to ground truth) on a synthetic split, quickly.

    python experiments/nano/eval_prior.py --data data/nano-synth --split val \
        --vae runs/nano-vae/final RUN_OR_FINAL ...

Each argument is a prior ``final/`` folder (diffusers layout) or a prior run folder
(``unet/config.json`` + ``checkpoint.pt``, scored with the autoencoder ``--vae``).
Depth is predicted at the images' own size (a multiple of 8), least-squares aligned to
the ground truth like the "prior" row of ``sharpdepth eval``. One JSON line per model;
with ``--depth-bins`` also the AbsRel of each style by ground-truth depth (metres), to
see where an affine-invariant prediction loses (the near road of a street scene).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from common import scoring_parser, summary

from sharpdepth.evaluation.alignment import align_lstsq
from sharpdepth.evaluation.evaluator import AFFINE_DEPTH, score
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.models.nano import empty_prompt_embedding, nano_scheduler
from sharpdepth.synth.dataset import SynthFolderDataset

KEYS = ("abs_rel", "delta1", "pdbe_acc", "pdbe_comp", "boundary_f1")
#: Edges (metres) of the ground-truth depth bins of ``--depth-bins``.
DEPTH_BINS = (0.0, 3.0, 6.0, 10.0, 20.0, 40.0, float("inf"))


def depth_bin_errors(
    depth: np.ndarray, gt: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Summed relative error and pixel count per :data:`DEPTH_BINS` bin, after alignment.

    Args:
        depth: ``[H, W]`` affine-invariant prediction; gt: ``[H, W]`` metres;
        mask: ``[H, W]`` bool, valid ground truth.
    """
    aligned, _ = align_lstsq(depth, gt, mask)
    rel = np.abs(aligned - gt) / np.maximum(gt, 1e-6)
    sums, counts = np.zeros(len(DEPTH_BINS) - 1), np.zeros(len(DEPTH_BINS) - 1)
    for b in range(len(DEPTH_BINS) - 1):
        chosen = mask & (gt >= DEPTH_BINS[b]) & (gt < DEPTH_BINS[b + 1])
        sums[b], counts[b] = rel[chosen].sum(), chosen.sum()
    return sums, counts


def load(path: Path, vae_path: Path | None) -> DiffusionDepthModel:
    """A prior final folder, or the latest checkpoint of a prior run folder."""
    if (path / "model_index.json").is_file():
        return DiffusionDepthModel.from_pretrained(path).float().eval()
    from diffusers import AutoencoderKL, UNet2DConditionModel

    if vae_path is None:
        raise SystemExit(f"{path}: a run folder needs --vae")
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(path / "unet"))
    state = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=False)
    unet.load_state_dict(state.get("ema", state["model"]))  # the average when kept
    vae = AutoencoderKL.from_pretrained(vae_path).float()
    model = DiffusionDepthModel(unet, vae, nano_scheduler(), empty_prompt_embedding(0))
    return model.eval()


def main() -> None:
    p = scoring_parser()
    p.add_argument("--vae", type=Path, default=None)
    p.add_argument("--depth-bins", action="store_true", help="AbsRel by ground-truth depth")
    args = p.parse_args()
    ds = SynthFolderDataset(args.data, args.split)
    items = [ds[i] for i in range(min(args.n, len(ds)))]
    for path in args.models:
        model = load(path, args.vae)
        rows, start = [], time.perf_counter()
        bins: dict[str, list[np.ndarray]] = {}
        gen = torch.Generator().manual_seed(0)
        for item in items:
            with torch.no_grad():
                z_i = model.encode(item["image"][None] * 2 - 1)
                noise = torch.randn(z_i.shape, generator=gen)
                depth = model.decode_depth(model.predict_x0(z_i, noise))[0, 0]
            pred, gt = depth.numpy().astype(np.float64), item["depth"][0].numpy()
            mask = item["mask"][0].numpy().astype(bool)
            row, _ = score(pred, gt, mask, AFFINE_DEPTH, True, True)
            rows.append(row)
            if args.depth_bins:
                sums, counts = depth_bin_errors(pred, gt, mask)
                acc = bins.setdefault(item["style"], [np.zeros_like(sums), np.zeros_like(counts)])
                acc[0] += sums
                acc[1] += counts
        mean = summary(rows, items, KEYS)
        seconds = round(time.perf_counter() - start, 1)
        print(json.dumps({"model": str(path), "n": len(rows), "s": seconds, **mean}), flush=True)
        for style, (sums, counts) in sorted(bins.items()):
            cells = [
                f"{lo:g}-{hi:g} m: {s / c:.3f} ({c / counts.sum():.0%})"
                for lo, hi, s, c in zip(DEPTH_BINS[:-1], DEPTH_BINS[1:], sums, counts, strict=True)
                if c > 0
            ]
            print(f"  {style}: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
