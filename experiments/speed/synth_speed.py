"""Speed of the synthetic engine: images per second at 256 x 256, ~100 objects.

Prints, for each configuration, the images/s of

* ``render``: building and rendering scenes in this process (one core), per style, with
  the mean number of objects (instances) and primitives per scene;
* ``dataset``: ``generate_dataset`` end to end (scene building, rendering, camera
  effects and writing every file) with 1 and 2 worker processes, all styles mixed.

``n_objects`` means different things per style (indoor counts pieces of furniture, a
shelf of books holding many objects), so by default each style gets the setting that
gives about 100 objects per scene (``OBJECTS_FOR_100``); ``--objects N`` forces one
value for every style.

Usage: ``python experiments/speed/synth_speed.py [--n 40] [--size 256 256] [--objects N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping

import numpy as np

#: ``n_objects`` per style that gives about 100 objects (instances) per scene.
OBJECTS_FOR_100: dict[str, int | None] = {
    "indoor": None,
    "street": 75,
    "tabletop": 100,
    "forest": 100,
}


def bench_render(
    styles: list[str], n: int, size: tuple[int, int], objects: Mapping[str, int | None], ss: int
) -> None:
    """Time scene building + rendering + camera effects in-process, per style."""
    from sharpdepth.synth.render import render_sample
    from sharpdepth.synth.styles import build_scene

    render_sample(styles[0], 0, *size)  # warm-up: texture bank, imports
    all_times = []
    for style in styles:
        times, prims, instances = [], [], []
        for i in range(n):
            scene = build_scene(style, np.random.default_rng(i), *size, objects[style])
            prims.append(scene.num_primitives)
            instances.append(scene.num_instances)
            t0 = time.perf_counter()
            render_sample(style, i, *size, n_objects=objects[style], supersample=ss)
            times.append(time.perf_counter() - t0)
        all_times += times
        print(
            f"render  {style:<9} supersample={ss} objects={np.mean(instances):5.1f} "
            f"primitives={np.mean(prims):6.1f} median {1e3 * statistics.median(times):6.1f} ms"
            f" -> {1 / statistics.mean(times):5.1f} img/s"
        )
    print(f"render  all styles, one core: {1 / statistics.mean(all_times):5.1f} img/s")


def bench_dataset(
    n: int, size: tuple[int, int], objects: Mapping[str, int | None], workers: int, ss: int
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
            supersample=ss,
            progress=False,
            contact_sheet=False,
        )
        rate = n / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        f"dataset n={n} workers={workers} supersample={ss}: {rate:5.1f} img/s (all files written)"
    )
    return rate


def main() -> None:
    """Parse arguments and run the measurements."""
    from sharpdepth.synth.styles import STYLES

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="images per dataset measurement")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256))
    parser.add_argument("--objects", type=int, default=None, help="n_objects for every style")
    parser.add_argument("--supersample", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    size = (args.size[0], args.size[1])
    styles = list(STYLES)
    objects = {
        s: args.objects if args.objects is not None else OBJECTS_FOR_100.get(s) for s in styles
    }
    print(f"machine: {os.cpu_count()} cores; size {size[0]}x{size[1]}; n_objects {objects}")
    for ss in args.supersample:
        bench_render(styles, max(4, args.n // 8), size, objects, ss)
        for workers in (1, 2):
            bench_dataset(args.n, size, objects, workers, ss)


if __name__ == "__main__":
    main()
