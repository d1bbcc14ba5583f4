"""Score nano priors alone (aligned to ground truth) on a synthetic split, quickly.

    python experiments/nano/eval_prior.py --data data/nano-synth --split val \
        --vae runs/nano-vae/final RUN_OR_FINAL ...

Each argument is a prior ``final/`` folder (diffusers layout) or a prior run folder
(``unet/config.json`` + ``checkpoint.pt``, scored with the autoencoder ``--vae``).
Depth is predicted at the images' own size (a multiple of 8), least-squares aligned to
the ground truth like the "prior" row of ``sharpdepth eval``. One JSON line per model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from common import scoring_parser, summary

from sharpdepth.evaluation.evaluator import AFFINE_DEPTH, score
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.models.nano import empty_prompt_embedding, nano_scheduler
from sharpdepth.synth.dataset import SynthFolderDataset

KEYS = ("abs_rel", "delta1", "pdbe_acc", "pdbe_comp", "boundary_f1")


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
    args = p.parse_args()
    ds = SynthFolderDataset(args.data, args.split)
    items = [ds[i] for i in range(min(args.n, len(ds)))]
    for path in args.models:
        model = load(path, args.vae)
        rows, start = [], time.perf_counter()
        gen = torch.Generator().manual_seed(0)
        for item in items:
            with torch.no_grad():
                z_i = model.encode(item["image"][None] * 2 - 1)
                noise = torch.randn(z_i.shape, generator=gen)
                depth = model.decode_depth(model.predict_x0(z_i, noise))[0, 0]
            row, _ = score(
                depth.numpy().astype(np.float64),
                item["depth"][0].numpy(),
                item["mask"][0].numpy(),
                AFFINE_DEPTH,
                True,
                True,
            )
            rows.append(row)
        mean = summary(rows, items, KEYS)
        seconds = round(time.perf_counter() - start, 1)
        print(json.dumps({"model": str(path), "n": len(rows), "s": seconds, **mean}), flush=True)


if __name__ == "__main__":
    main()
