"""Does a sharpener follow the metric model or the prior? Distances inside the pipeline.

    python experiments/nano/sharpener_agreement.py --data data/nano-synth --split val \
        --n 30 --metric runs/nano-metric/final SHARPENER_FINAL ...

For each sharpener checkpoint, the pipeline is run at the images' own size (with their
intrinsics) and, in the normalised units of step 3 (``[-1, 1]``), these are averaged:

* ``prior_vs_metric``: ``|d_g - d_n|``, how far the prior pass is from the metric depth;
* ``sharp_vs_metric``: ``|d_hat - d_n|`` (and ``..._confident`` on pixels with gate < 0.5);
* ``sharp_vs_prior``: ``|d_hat - d_g|``;

and the AbsRel of the output against the ground truth (``sharpdepth_abs_rel``) and of the
sharpener's un-aligned depth least-squares aligned to the ground truth (``shape_abs_rel``).
A sharpener that ignores its metric input stays at ``sharp_vs_prior`` ~ 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from sharpdepth.evaluation.alignment import align_lstsq
from sharpdepth.method import normalize_depth
from sharpdepth.pipeline import SharpDepthPipeline
from sharpdepth.synth.dataset import SynthFolderDataset


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--metric", required=True, type=Path)
    args = p.parse_args()
    ds = SynthFolderDataset(args.data, args.split)
    items = [ds[i] for i in range(min(args.n, len(ds)))]
    for checkpoint in args.checkpoints:
        pipe = SharpDepthPipeline.from_pretrained(checkpoint, metric_model=str(args.metric))
        stats: dict[str, list[float]] = {}
        for item in items:
            out = pipe(item["image"], intrinsics=item["K"], processing_resolution=0, seed=0)
            metric = torch.from_numpy(out.metric_depth[0])
            d_n = normalize_depth(metric[None, None])[0, 0].numpy()
            hat, prior, gate = out.sharpened_depth[0], out.prior_depth[0], out.gate[0]
            gt, mask = item["depth"][0].numpy(), item["mask"][0].numpy().astype(bool)
            shape, _ = align_lstsq(hat.astype(np.float64), gt, mask)
            values = {
                "prior_vs_metric": np.abs(prior - d_n).mean(),
                "sharp_vs_metric": np.abs(hat - d_n).mean(),
                "sharp_vs_metric_confident": np.abs(hat - d_n)[gate < 0.5].mean(),
                "sharp_vs_prior": np.abs(hat - prior).mean(),
                "sharpdepth_abs_rel": (np.abs(out.depth[0] - gt) / gt)[mask].mean(),
                "shape_abs_rel": (np.abs(shape - gt) / gt)[mask].mean(),
            }
            for key, value in values.items():
                stats.setdefault(key, []).append(float(value))
        means = {k: round(float(np.mean(v)), 4) for k, v in stats.items()}
        print(json.dumps({"checkpoint": str(checkpoint), "n": len(items), **means}), flush=True)


if __name__ == "__main__":
    main()
