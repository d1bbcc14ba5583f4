"""Benchmark of the synthetic engine: images per second at 256 x 256, ~100 objects.

Prints, for each measured configuration, the images/s of

* ``render``: building and rendering scenes in this process (one core);
* ``dataset``: ``generate_dataset`` end to end (render + camera effects + writing every
  file) with 1 and 2 worker processes.

Usage: ``python benchmarks/synth_speed.py [--n 40] [--size 256 256] [--objects 100]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np


def bench_render(
    styles: list[str], n: int, size: tuple[int, int], objects: int, supersample: int
) -> None:
    """Time :func:`render_sample` in-process, per style and overall."""
    from sharpdepth.synth.render import render_sample
    from sharpdepth.synth.styles import build_scene

    render_sample(styles[0], 0, *size, n_objects=objects)  # warm-up: texture bank, imports
    per_style = {}
    for style in styles:
        times, prims = [], []
        for i in range(n):
            prims.append(
                build_scene(style, np.random.default_rng(i), *size, objects).num_primitives
            )
            t0 = time.perf_counter()
            render_sample(style, i, *size, n_objects=objects, supersample=supersample)
            times.append(time.perf_counter() - t0)
        per_style[style] = times
        print(
            f"render  style={style:<9} supersample={supersample} primitives={np.mean(prims):6.1f} "
            f"median {1e3 * statistics.median(times):6.1f} ms"
            f"  -> {1 / statistics.mean(times):5.1f} img/s"
        )
    all_times = [t for ts in per_style.values() for t in ts]
    print(f"render  all styles, 1 core: {1 / statistics.mean(all_times):5.1f} img/s")


def bench_dataset(
    n: int, size: tuple[int, int], objects: int, workers: int, supersample: int
) -> float:
    """Time ``generate_dataset`` end to end; returns images/s."""
    from sharpdepth.synth.generate import generate_dataset

    out = tempfile.mkdtemp(prefix="synth-bench-")
    try:
        t0 = time.perf_counter()
        generate_dataset(
            out,
            n,
            *size,
            seed=1,
            n_objects=objects,
            workers=workers,
            supersample=supersample,
            progress=False,
            contact_sheet=False,
        )
        rate = n / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        f"dataset n={n} workers={workers} supersample={supersample}: "
        f"{rate:5.1f} img/s (render + effects + write)"
    )
    return rate


def main() -> None:
    """Parse arguments and run the benchmarks."""
    from sharpdepth.synth.styles import STYLES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="images per measurement")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256))
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--supersample", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    size = (args.size[0], args.size[1])
    print(f"machine: {os.cpu_count()} cores; size {size[0]}x{size[1]}; objects ~{args.objects}")
    for ss in args.supersample:
        bench_render(list(STYLES), max(4, args.n // 8), size, args.objects, ss)
        for workers in (1, 2):
            bench_dataset(args.n, size, args.objects, workers, ss)


if __name__ == "__main__":
    main()
