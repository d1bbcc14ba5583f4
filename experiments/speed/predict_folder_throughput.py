"""Speed of ``sharpdepth predict`` on a folder: images/s with and without I/O overlap.

Writes ``--images`` (default 24) real-size photos (1024 x 768 JPEGs cut and resized from
scikit-image's sample photographs, each a different crop) to a temporary folder, loads
the bundled nano models once, then times the decode / predict / write loop of
``sharpdepth predict`` (``cli.predict._predict_all``, every output incl. the point
cloud) with ``--io-workers 0`` (decode, compute, write one after another) and with
``--io-workers N`` (decode ahead and write in the background), alternating the two for
``--repeats`` rounds after one warm-up image. Prints images/s of both and their ratio.

Usage: ``python experiments/speed/predict_folder_throughput.py [--images 24] [--io-workers 2]
[--batch-size 1] [--repeats 1] [--res RES] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
SIZE = (1024, 768)


def write_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` 1024 x 768 JPEGs in ``folder``: random crops of scikit-image photographs."""
    from skimage import data

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(getattr(data, name)()) for name in PHOTOS]
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        photo = src.crop((x, y, x + cw, y + ch)).resize(SIZE, Image.Resampling.BICUBIC)
        path = folder / f"photo{i:03d}.jpg"
        photo.save(path, quality=90)
        paths.append(path)
    return paths


def timed_run(pipe: Any, paths: list[Path], args: argparse.Namespace, out: Path) -> float:
    """Seconds for the predict loop over ``paths`` writing to ``out`` (all must succeed)."""
    from sharpdepth.cli import predict

    args.output = out
    stems = predict._unique_stems(paths)
    settings = {"checkpoint": "nano", "seed": args.seed}
    failures: list[str] = []

    class _NoBar:
        def update(self, n: int = 1) -> None:
            pass

    start = time.perf_counter()
    n_ok = predict._predict_all(pipe, paths, stems, args, settings, failures, _NoBar())
    elapsed = time.perf_counter() - start
    if failures or n_ok != len(paths):
        raise RuntimeError(f"speed run failed: {failures}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--io-workers", type=int, default=2, help="writer threads when on")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="alternating rounds")
    parser.add_argument("--res", type=int, default=None, help="processing resolution")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    opts = parser.parse_args()
    if opts.threads:
        torch.set_num_threads(opts.threads)

    from sharpdepth.cli.main import build_parser
    from sharpdepth.pipeline import SharpDepthPipeline

    with tempfile.TemporaryDirectory(prefix="sharpdepth-speed-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = write_photos(root / "in", opts.images)
        cli = ["predict", str(root / "in"), "--batch-size", str(opts.batch_size)]
        if opts.res is not None:
            cli += ["--processing-res", str(opts.res)]
        args = build_parser().parse_args(cli)
        pipe = SharpDepthPipeline.from_pretrained("nano", device="cpu", dtype="float32")
        args.io_workers = 0
        timed_run(pipe, paths[:1], args, root / "warmup")
        times: dict[int, list[float]] = {0: [], opts.io_workers: []}
        for r in range(opts.repeats):
            for workers in (0, opts.io_workers):
                args.io_workers = workers
                times[workers].append(timed_run(pipe, paths, args, root / f"out-{workers}-{r}"))
        n = len(paths)
        print(
            f"{n} photos {SIZE[0]}x{SIZE[1]} JPEG, nano models, processing resolution "
            f"{pipe.processing_resolution if opts.res is None else opts.res}, batch size "
            f"{opts.batch_size}, {torch.get_num_threads()} torch threads, point clouds on"
        )
        rate = {w: n / statistics.median(t) for w, t in times.items()}
        for w, t in times.items():
            label = "sequential (--io-workers 0)" if w == 0 else f"overlap (--io-workers {w})"
            runs = ", ".join(f"{x:.1f}" for x in t)
            print(f"{label:<28} {rate[w]:6.3f} images/s  (runs: {runs} s)")
        print(f"overlap / sequential: {rate[opts.io_workers] / rate[0]:.2f}x")


if __name__ == "__main__":
    main()
