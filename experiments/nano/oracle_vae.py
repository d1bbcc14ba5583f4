"""Oracle: how much of the depth edges survive the autoencoder (and pooling).

Scores, on N samples of a synthetic split, ground-truth depth that went through
(a) average pooling by 4 and 8 and bilinear up-sampling, (b) the autoencoder
(min-max normalised as the pipeline does, encoded, decoded), each least-squares
aligned to the ground truth like the "prior" row of ``sharpdepth eval``.

    python experiments/nano/oracle_vae.py --data data/nano384 --vae PATH [--n 40]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from sharpdepth.evaluation.evaluator import AFFINE_DEPTH, score
from sharpdepth.synth.dataset import SynthFolderDataset
from sharpdepth.training.nano.recipes import normalize_dense_depth


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--vae", action="append", default=[])
    p.add_argument("--n", type=int, default=40)
    args = p.parse_args()
    from diffusers import AutoencoderKL

    vaes = {path: AutoencoderKL.from_pretrained(path).float().eval() for path in args.vae}
    ds = SynthFolderDataset(args.data, args.split)
    rows: dict[str, list[dict[str, float]]] = {}
    for i in range(min(args.n, len(ds))):
        item = ds[i]
        depth, mask = item["depth"][None], item["mask"][None]
        gt, valid = depth[0, 0].numpy(), mask[0, 0].numpy()
        dn = normalize_dense_depth(depth, mask)
        preds = {}
        for k in (4, 8):
            preds[f"pool{k}"] = F.interpolate(
                F.avg_pool2d(dn, k), size=dn.shape[-2:], mode="bilinear", align_corners=False
            )
        with torch.no_grad():
            for path, vae in vaes.items():
                z = vae.encode(dn.repeat(1, 3, 1, 1)).latent_dist.mean
                preds[f"vae:{path}"] = vae.decode(z).sample.mean(1, keepdim=True)
            for path, vae in vaes.items():
                x = item["image"][None] * 2 - 1
                recon = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
                mse = float(((recon - x) / 2).pow(2).mean())
                rows.setdefault(f"image:{path}", []).append({"psnr": -10 * np.log10(mse)})
        for name, pred in preds.items():
            row, _ = score(
                pred[0, 0].numpy().astype(np.float64), gt, valid, AFFINE_DEPTH, True, True
            )
            rows.setdefault(name, []).append({**row, "style": item["style"]})
    for name, rs in rows.items():
        keys = ("abs_rel", "delta1", "pdbe_acc", "pdbe_comp", "boundary_f1", "psnr")
        mean = {k: float(np.nanmean([r[k] for r in rs])) for k in keys if k in rs[0]}
        for style in sorted({r["style"] for r in rs if "style" in r}):
            mean[f"{style}_abs_rel"] = float(
                np.mean([r["abs_rel"] for r in rs if r["style"] == style])
            )
        print(json.dumps({"what": name, "n": len(rs), **{k: round(v, 4) for k, v in mean.items()}}))


if __name__ == "__main__":
    main()
