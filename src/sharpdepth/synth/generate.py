"""Writing a synthetic dataset to disk: splits, per-sample files, index and contact sheet.

Layout (see :mod:`sharpdepth.synth.sample`)::

    DIR/index.json                 settings and the list of samples with split and seed
    DIR/contact_sheet.png          a few samples: RGB above colourised depth
    DIR/<split>/<id>_rgb.png       uint8 RGB
    DIR/<split>/<id>_depth.npy     float32 z-depth in metres, 0 = no depth (sky)
    DIR/<split>/<id>_mask.png      255 where depth is valid
    DIR/<split>/<id>_instances.png uint16 object ids, 0 = sky
    DIR/<split>/<id>.json          K (3 x 3, pixels), style, seed, split, size

Sample ``i`` is rendered from seed ``SeedSequence([seed, i])``, so a dataset is
deterministic for the same arguments whatever the number of worker processes, and an
interrupted run resumes where it stopped (samples whose files are complete are kept).
Held-out styles only appear in the ``zeroshot`` split; the others are split into
``train``/``val``/``test`` by a hash of the sample seed.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sharpdepth import io
from sharpdepth.synth.sample import INDEX_FILE, SynthSample, sample_files

LOGGER = logging.getLogger(__name__)

INDEX_VERSION = 1
#: zlib level of the dataset's PNGs: lossless either way; 1 writes several times faster
#: than the default 6 for files about 10 % larger.
PNG_COMPRESS_LEVEL = 1
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class SampleSpec:
    """What to render for one sample.

    Attributes:
        id: zero-padded sample number.
        style: style name.
        split: ``train``, ``val``, ``test`` or ``zeroshot``.
        seed: render seed.
    """

    id: str
    style: str
    split: str
    seed: int


@dataclass(frozen=True)
class RenderSettings:
    """Settings shared by every sample of a dataset."""

    height: int
    width: int
    n_objects: int | Mapping[str, int | None] | None = None
    supersample: int = 1
    effects: float = 1.0


def sample_seed(seed: int, index: int) -> int:
    """The render seed of sample ``index`` of a dataset with base ``seed`` (uint32)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def plan_samples(
    n: int,
    styles: Sequence[str],
    seed: int,
    held_out: Sequence[str],
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
) -> list[SampleSpec]:
    """Assign a style, split and seed to each of ``n`` samples.

    Styles cycle in the given order; held-out styles go to ``zeroshot``; the others to
    ``train``/``val``/``test`` with probabilities ``fractions`` (by the seed's value).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not styles:
        raise ValueError("no styles given")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    width = max(6, len(str(n - 1)))
    specs = []
    for i in range(n):
        style = styles[i % len(styles)]
        s = sample_seed(seed, i)
        if style in held_out:
            split = "zeroshot"
        else:
            u = s / 2**32
            split = (
                "train"
                if u < fractions[0]
                else "val"
                if u < fractions[0] + fractions[1]
                else "test"
            )
        specs.append(SampleSpec(id=f"{i:0{width}d}", style=style, split=split, seed=s))
    return specs


def sample_paths(root: Path, spec: SampleSpec) -> dict[str, Path]:
    """The files of the planned sample ``spec`` in the dataset at ``root``, by kind."""
    return sample_files(root / spec.split, spec.id)


def write_sample(root: Path, spec: SampleSpec, sample: SynthSample) -> None:
    """Write one sample's files atomically; the JSON sidecar last (it marks completion)."""
    paths = sample_paths(root, spec)
    fast = PNG_COMPRESS_LEVEL
    io.save_rgb_png(paths["rgb"], sample.rgb, compress_level=fast)
    io.save_depth_npy(paths["depth"], sample.depth)
    io.save_gray_png(paths["mask"], sample.mask.astype(np.float32), bits=8, compress_level=fast)
    io.save_label_png16(paths["instances"], sample.instances, compress_level=fast)
    meta = {
        **asdict(spec),
        "height": int(sample.depth.shape[0]),
        "width": int(sample.depth.shape[1]),
        "K": sample.K.tolist(),
        "depth_units": "metres",
    }
    io.save_json(paths["meta"], meta)


def _is_complete(root: Path, spec: SampleSpec) -> bool:
    """Whether every file of a sample exists (the sidecar is written last)."""
    return all(p.is_file() for p in sample_paths(root, spec).values())


def _render_and_write(job: tuple[Path, SampleSpec, RenderSettings]) -> SampleSpec:
    """Worker: render one sample and write it (module-level so it pickles)."""
    from sharpdepth.synth.render import render_sample

    root, spec, settings = job
    n_objects = settings.n_objects
    if isinstance(n_objects, Mapping):
        n_objects = n_objects.get(spec.style)
    sample = render_sample(
        spec.style,
        spec.seed,
        settings.height,
        settings.width,
        n_objects=n_objects,
        supersample=settings.supersample,
        effects=settings.effects,
    )
    write_sample(root, spec, sample)
    return spec


def _single_threaded() -> None:
    """Worker initialiser: one BLAS/OpenMP thread per process (workers share the cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it workers may oversubscribe the cores
        return
    threadpool_limits(1)


def _run_jobs(
    jobs: list[tuple[Path, SampleSpec, RenderSettings]], workers: int
) -> Iterator[SampleSpec]:
    """Run jobs in this process or a pool of ``workers`` processes, yielding as they finish."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _render_and_write(job)
        return
    ctx = multiprocessing.get_context()  # fork on Linux: no re-import per worker
    with ctx.Pool(processes=workers, initializer=_single_threaded) as pool:
        yield from pool.imap_unordered(_render_and_write, jobs, chunksize=1)


def generate_dataset(
    out_dir: str | Path,
    n: int,
    height: int,
    width: int,
    styles: Sequence[str] | None = None,
    seed: int = 0,
    n_objects: int | Mapping[str, int | None] | None = None,
    supersample: int = 1,
    effects: float = 1.0,
    workers: int = 1,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    progress: bool = True,
    contact_sheet: bool = True,
) -> Path:
    """Render ``n`` samples into ``out_dir`` (resuming a previous run with the same settings).

    Args:
        out_dir: dataset folder (created).
        n: number of samples.
        height: image height in pixels.
        width: image width in pixels.
        styles: style names (default: every style, held-out ones included).
        seed: dataset seed.
        n_objects: the styles' object-count setting (style default when ``None``), or a
            mapping from style name to it.
        supersample: RGB sub-samples per pixel side.
        effects: camera-effect strength (0 = none).
        workers: rendering processes.
        fractions: train / val / test fractions of the non-held-out samples.
        progress: show a progress bar.
        contact_sheet: write ``contact_sheet.png``.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: unknown style, bad sizes, or ``out_dir`` holds a dataset made with
            other settings.
    """
    from tqdm.auto import tqdm

    from sharpdepth.synth.styles import HELD_OUT_STYLES, STYLES

    if height < 8 or width < 8:
        raise ValueError(f"image size must be at least 8 x 8, got {height} x {width}")
    chosen = list(styles) if styles else list(STYLES)
    unknown = [s for s in chosen if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown style(s) {unknown}; known: {', '.join(STYLES)}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    settings = RenderSettings(height, width, n_objects, supersample, effects)
    header = {
        "version": INDEX_VERSION,
        "height": height,
        "width": width,
        "seed": seed,
        "styles": chosen,
        "held_out_styles": [s for s in chosen if s in HELD_OUT_STYLES],
        "n_objects": dict(n_objects) if isinstance(n_objects, Mapping) else n_objects,
        "supersample": supersample,
        "effects": effects,
        "fractions": list(fractions),
    }
    index_path = root / INDEX_FILE
    if index_path.is_file():
        previous = io.load_json(index_path)
        differs = {k: (previous.get(k), v) for k, v in header.items() if previous.get(k) != v}
        if differs:
            raise ValueError(
                f"{root} already holds a dataset made with other settings {differs}; "
                "use another folder"
            )
    specs = plan_samples(n, chosen, seed, HELD_OUT_STYLES, fractions)
    todo = [spec for spec in specs if not _is_complete(root, spec)]
    if len(todo) < len(specs):
        LOGGER.info(
            "resuming: %d of %d samples already written", len(specs) - len(todo), len(specs)
        )
    for split in {spec.split for spec in todo}:
        (root / split).mkdir(parents=True, exist_ok=True)
    jobs = [(root, spec, settings) for spec in todo]
    with tqdm(total=len(jobs), unit="img", desc="synth", disable=not progress) as bar:
        for _ in _run_jobs(jobs, workers):
            bar.update(1)
    index: dict[str, Any] = {**header, "samples": [asdict(spec) for spec in specs]}
    io.save_json(index_path, index)
    if contact_sheet:
        write_contact_sheet(root, root / "contact_sheet.png")
    counts = {
        split: sum(s.split == split for s in specs)
        for split in ("train", "val", "test", "zeroshot")
    }
    LOGGER.info("wrote %d samples to %s (%s)", len(specs), root, counts)
    return root


def write_contact_sheet(root: Path, path: Path, per_style: int = 2, tile: int = 160) -> Path:
    """A PNG grid of a few samples per style: RGB on top, colourised depth below.

    Args:
        root: a dataset folder.
        path: the PNG to write.
        per_style: samples shown per style.
        tile: tile width and height in pixels.
    """
    from PIL import Image

    from sharpdepth import vis

    index = io.load_json(root / INDEX_FILE)
    chosen: list[dict[str, Any]] = []
    for style in index["styles"]:
        chosen += [s for s in index["samples"] if s["style"] == style][:per_style]
    if not chosen:
        raise ValueError(f"{root}: no samples to show")
    columns = []
    for entry in chosen:
        spec = SampleSpec(**{k: entry[k] for k in ("id", "style", "split", "seed")})
        paths = sample_paths(root, spec)
        if not paths["rgb"].is_file():
            continue
        rgb = io.load_rgb_png(paths["rgb"])
        depth = io.load_depth_npy(paths["depth"])
        valid = depth > 0
        color = vis.colorize_depth(depth, valid=valid) if valid.any() else np.zeros_like(rgb)
        pair = [
            Image.fromarray(a).resize((tile, tile), Image.Resampling.NEAREST) for a in (rgb, color)
        ]
        columns.append(np.concatenate([np.asarray(p) for p in pair], axis=0))
    sheet = np.concatenate(columns, axis=1)
    return io.save_rgb_png(path, sheet)
