"""Score nano metric models alone on a synthetic split (quick, no pipeline).

    python experiments/nano/eval_metric.py --data data/nano384 --split val MODEL_DIR ...

Each MODEL_DIR is a NanoMetricNet folder (``final/``) or a run folder holding a
``checkpoint.pt`` of the metric recipe. Prints one JSON line per model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from common import scoring_parser, summary

from sharpdepth.evaluation.evaluator import METRIC_DEPTH, score
from sharpdepth.models.metric.nano_net import NanoMetricNet, read_config
from sharpdepth.synth.dataset import SynthFolderDataset

KEYS = (
    "abs_rel",
    "delta1",
    "absrel_median_scaled",
    "log_scale_error",
    "pdbe_acc",
    "pdbe_comp",
    "boundary_f1",
)


def load(path: Path) -> NanoMetricNet:
    """A final folder, or the latest checkpoint of a run folder."""
    if (path / "model.safetensors").is_file():
        return NanoMetricNet.from_pretrained(path)
    model = NanoMetricNet(read_config(path / "config.json"))
    state = torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state.get("ema", state["model"]))  # the average when kept
    return model.eval()


def main() -> None:
    p = scoring_parser()
    p.add_argument("--boundary", action="store_true")
    args = p.parse_args()
    ds = SynthFolderDataset(args.data, args.split)
    items = [ds[i] for i in range(min(args.n, len(ds)))]
    for path in args.models:
        model = load(path)
        rows = []
        start = time.perf_counter()
        for item in items:
            with torch.no_grad():
                pred = model.predict_resized(item["image"][None], item["K"][None])[0, 0]
            row, _ = score(
                pred.numpy().astype(np.float64),
                item["depth"][0].numpy(),
                item["mask"][0].numpy(),
                METRIC_DEPTH,
                True,
                args.boundary,
            )
            gt, valid = item["depth"][0].numpy(), item["mask"][0].numpy()
            p = pred.numpy().astype(np.float64)
            ratio = np.median(gt[valid] / p[valid]) if valid.any() else 1.0
            row["absrel_median_scaled"] = float(
                np.mean(np.abs(p[valid] * ratio - gt[valid]) / gt[valid])
            )
            row["log_scale_error"] = float(abs(np.log(ratio)))
            rows.append(row)
        mean = summary(rows, items, KEYS)
        print(
            json.dumps(
                {
                    "model": str(path),
                    "n": len(rows),
                    "s": round(time.perf_counter() - start, 1),
                    **mean,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
