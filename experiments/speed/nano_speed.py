"""Speed of the bundled nano family: size on disk and one prediction's time.

Prints

* the size of each bundled model folder (the target is at most 60 MB for the whole family);
* the time of one ``SharpDepthPipeline`` call on a real photo (scikit-image's
  ``coffee``, 600 x 400) at a processing resolution of 384 px (target: at most 1 s on
  a 2-core CPU), median of ``--runs`` runs after ``--warmup`` warm-up calls, and the
  time of the metric model alone for comparison.

Usage: ``python experiments/speed/nano_speed.py [--res 384] [--runs 5] [--warmup 2] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def folder_megabytes(folder: Path) -> float:
    """Total size of the files under ``folder`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=384, help="processing resolution")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from skimage import data

    from sharpdepth.assets import NANO_MODELS, bundled_dir
    from sharpdepth.pipeline import SharpDepthPipeline

    total = 0.0
    for name in NANO_MODELS:
        size = folder_megabytes(bundled_dir(name))
        total += size
        print(f"size {name:<11} {size:6.2f} MB")
    print(f"size total       {total:6.2f} MB (target <= 60)")

    image = data.coffee().astype(np.float32) / 255.0
    pipe = SharpDepthPipeline.from_pretrained("nano", device="cpu", dtype="float32")

    def timed(fn) -> list[float]:  # type: ignore[no-untyped-def]
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return times

    full = timed(lambda: pipe(image, processing_resolution=args.res, seed=0))
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None]
    metric = timed(lambda: pipe.metric_model(tensor))
    h, w = image.shape[:2]
    print(f"image {w}x{h}, processing resolution {args.res}, {torch.get_num_threads()} threads")
    print(
        f"predict (metric + 2 encodes + 2 UNet passes + 2 decodes + alignment): median "
        f"{statistics.median(full):.3f} s, min {min(full):.3f} s over {args.runs} runs "
        "(target <= 1 s)"
    )
    print(f"metric model alone: median {statistics.median(metric):.3f} s")


if __name__ == "__main__":
    main()
