"""``sharpdepth speed``: speed and peak memory of the inference modes, measured in one run.

For a model size (``sd2``: the SD-2 / Lotus-G / SharpDepth shapes; ``nano``: the bundled
nano family's shapes; ``tiny``: test-sized) a random-weight checkpoint is built once in
the authors' released layout (with a text encoder) and cached. Each mode then runs in a
fresh worker process, so that its peak resident memory is its own:

* ``released``: the cost structure of the authors' implementation (float32, text
  encoder kept and run on every call, image and depth encoded separately);
* ``exact``: our default (same result to float rounding);
* ``fast`` and ``fastest``: the fast modes (see :data:`sharpdepth.accel.INFERENCE_MODES`;
  ``fastest`` only when asked for with ``modes``);
* ``MODE+tiny`` (e.g. ``fast+tiny``, on request): that mode with a random-weight
  TAESD-style tiny autoencoder of the size's shapes (``tiny_vae=``) in place of the
  checkpoint's;
* ``MODE+direct`` (e.g. ``exact+direct``, on request): that mode without Winograd
  or matrix-product convolutions (:mod:`sharpdepth.accel.winograd`) and with plain
  up-sampling (:mod:`sharpdepth.accel.upsampling`);
* ``MODE+float`` (e.g. ``fast+float``, on request): that mode without int8 linear
  layers and convolutions (:mod:`sharpdepth.accel.int8`).

A worker loads the pipeline, runs ``warmup`` untimed calls, then ``runs`` timed ones,
each reading the photo, running the pipeline and writing every output (depth ``.npy``,
16-bit PNG, confidence, PLY), with per-stage times from
:class:`~sharpdepth.accel.profiling.StageTimer`. The metric model is the bundled nano one
(real weights) in every size. The report gives per-stage medians, images per second,
peak memory, the ratios against ``released`` and how far each output is from exact's.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sharpdepth.accel.memory import HUGE_PAGES_VARIABLE, use_huge_pages

LOGGER = logging.getLogger(__name__)

SIZES = ("sd2", "nano", "tiny")
MODES = ("released", "exact", "fast", "fastest")
#: Variants a mode can be run with (``fast+tiny``, ``exact+direct``, ``fast+float``), see
#: :class:`SpeedMode`.
VARIANTS = ("tiny", "direct", "float")
#: What ``sharpdepth speed`` measures unless ``--modes`` says otherwise.
DEFAULT_MODES = ("released", "exact", "fast")
#: glibc malloc settings of ``--allocator tuned``: keep freed memory for reuse instead of
#: returning it to the system after every large activation.
TUNED_GLIBC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"


@dataclass
class SpeedSettings:
    """What to measure.

    Attributes:
        size: ``sd2``, ``nano`` or ``tiny`` (random weights of those shapes).
        resolution: processing resolution (longer side, pixels).
        image: the photo (default: scikit-image's ``coffee``, 600 x 400).
        runs: timed calls per mode (the median is reported).
        warmup: untimed calls before them.
        batch: copies of the photo per call.
        threads: torch threads in the workers (default: torch's choice).
        allocator: ``system`` or ``tuned`` (:data:`TUNED_GLIBC`) for the exact and fast
            workers; released always runs with the system allocator. With ``system``
            the fast modes set up their own lean heap
            (:func:`~sharpdepth.accel.memory.use_lean_heap`); ``tuned`` replaces it.
        cache: folder for the random-weight checkpoints.
        seed: weight and noise seed.
        rounds: how many times the modes are measured in turn, each time by a fresh
            worker per mode (``warmup`` + ``runs`` calls); the report pools every round's
            runs (medians; peak memory: the largest). With more than one, a drift of
            the machine's speed during a long run reaches every mode alike instead of
            only the modes measured last.
    """

    size: str = "nano"
    resolution: int = 384
    image: Path | None = None
    runs: int = 3
    warmup: int = 1
    batch: int = 1
    threads: int | None = None
    allocator: str = "system"
    cache: Path = field(default_factory=lambda: default_cache())
    seed: int = 0
    rounds: int = 1


@dataclass
class ModeResult:
    """One mode's measurements (seconds are medians over the timed runs).

    Attributes:
        mode: the mode's name.
        stages: ``{stage: seconds}`` per call, stages numbered by occurrence.
        seconds: wall time of one call including reading and writing.
        images_per_second: ``batch / seconds``.
        peak_rss_bytes: the worker's peak resident memory.
        load_seconds: time to load the pipeline.
        depth_file: the first image's depth (metres) of the last run, ``.npy``.
        run_seconds: every timed call's wall time.
        run_stages: every timed call's ``{stage: seconds}``.
    """

    mode: str
    stages: dict[str, float]
    seconds: float
    images_per_second: float
    peak_rss_bytes: int
    load_seconds: float
    depth_file: str
    run_seconds: list[float] = field(default_factory=list)
    run_stages: list[dict[str, float]] = field(default_factory=list)


def default_cache() -> Path:
    """``$SHARPDEPTH_CACHE/speed`` or ``~/.cache/sharpdepth/speed``."""
    base = os.environ.get("SHARPDEPTH_CACHE") or Path.home() / ".cache" / "sharpdepth"
    return Path(base) / "speed"


# --------------------------------------------------------------------------------------
# random-weight checkpoints
# --------------------------------------------------------------------------------------


def _components(size: str, seed: int) -> tuple[Any, Any, Any, Any]:
    """``(unet, vae, text_encoder, tokenizer)`` with random weights of ``size``'s shapes."""
    from sharpdepth import testing

    if size == "sd2":
        return (
            testing.sd2_unet(seed),
            testing.sd2_vae(seed + 1),
            testing.sd2_text_encoder(seed + 2),
            testing.tiny_clip_tokenizer(),
        )
    if size == "nano":
        import torch

        from sharpdepth.models.nano import CROSS_ATTENTION_DIM, nano_unet, nano_vae

        torch.manual_seed(seed)
        unet, vae = nano_unet().eval(), nano_vae().eval()
        encoder = testing.clip_text_encoder(
            CROSS_ATTENTION_DIM, layers=4, heads=4, intermediate_size=256, seed=seed + 2
        )
        return unet, vae, encoder, testing.tiny_clip_tokenizer()
    if size == "tiny":
        encoder, tokenizer = testing.tiny_text_encoder(seed=seed + 2)
        return testing.tiny_unet(seed=seed), testing.tiny_vae(seed=seed + 1), encoder, tokenizer
    raise ValueError(f"size must be one of {SIZES}, got {size!r}")


def build_checkpoint(size: str, cache: Path, seed: int = 0) -> Path:
    """The random-weight checkpoint of ``size`` in the released layout, built once.

    Returns:
        ``cache / f"{size}-seed{seed}"``, written atomically (a complete folder or none).
    """
    from sharpdepth.io import atomic_write_folder
    from sharpdepth.testing import tiny_scheduler, write_released_layout

    root = cache / f"{size}-seed{seed}"
    if (root / "model_index.json").is_file():
        return root
    LOGGER.info("building random-weight %s models in %s (once)", size, root)
    unet, vae, encoder, tokenizer = _components(size, seed)

    def write(tmp: Path) -> None:
        write_released_layout(tmp, unet, vae, tiny_scheduler(), encoder, tokenizer)

    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_folder(root, write)
    return root


def _tiny_vae(size: str, seed: int) -> Any:
    """A random-weight tiny autoencoder for ``size``'s latent space."""
    from sharpdepth import testing

    if size == "sd2":
        return testing.taesd_like(channels=64, blocks=3, seed=seed)  # madebyollin/taesd's
    if size == "nano":
        import torch

        from sharpdepth.models.nano import nano_tiny_vae

        torch.manual_seed(seed)
        return nano_tiny_vae().eval()
    return testing.taesd_like(seed=seed)


def build_tiny_vae(size: str, cache: Path, seed: int = 0) -> Path:
    """The random-weight tiny autoencoder of ``size``, built once (like the checkpoint)."""
    from sharpdepth.io import atomic_write_folder

    root = cache / f"{size}-tiny-vae-seed{seed}"
    if (root / "config.json").is_file():
        return root
    tiny = _tiny_vae(size, seed + 3)
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_folder(root, tiny.save_pretrained)
    return root


@dataclass(frozen=True)
class SpeedMode:
    """A ``--modes`` entry: an inference mode plus variants, ``MODE[+VARIANT...]``.

    Attributes:
        base: one of :data:`MODES`.
        tiny: ``+tiny``, a random-weight tiny autoencoder instead of the checkpoint's.
        direct: ``+direct``, the direct convolution everywhere (no Winograd layers, plain
            up-sampling), to measure what :mod:`sharpdepth.accel.winograd` and
            :mod:`sharpdepth.accel.upsampling` give.
        float: ``+float``, no int8 layers, to measure what :mod:`sharpdepth.accel.int8` gives
            (the pipeline's default otherwise).
    """

    base: str
    tiny: bool = False
    direct: bool = False
    float: bool = False


def parse_mode(mode: str) -> SpeedMode:
    """``"fast+tiny"`` -> ``SpeedMode("fast", tiny=True)``; ``"exact"`` -> ``SpeedMode("exact")``.

    Raises:
        ValueError: not a known mode or variant, a variant twice, or a variant of
            released (released is the reference).
    """
    base, *variants = mode.split("+")
    known = base in MODES and all(v in VARIANTS for v in variants)
    if not known or len(set(variants)) != len(variants) or (variants and base == "released"):
        raise ValueError(
            f"unknown mode {mode!r}; choose from {MODES}, each but released optionally "
            f"with " + " and/or ".join(f"+{v}" for v in VARIANTS)
        )
    return SpeedMode(
        base, tiny="tiny" in variants, direct="direct" in variants, float="float" in variants
    )


def default_photo() -> Path:
    """scikit-image's ``coffee`` photo (600 x 400) written as a PNG in the temp folder."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - skimage is in the synth/dev extras
        raise ValueError("no --image given and scikit-image is not installed") from exc
    from PIL import Image

    path = Path(tempfile.gettempdir()) / "sharpdepth-speed-coffee.png"
    if not path.is_file():
        Image.fromarray(data.coffee()).save(path)
    return path


# --------------------------------------------------------------------------------------
# worker (one mode, one process)
# --------------------------------------------------------------------------------------


def run_worker(spec: dict[str, Any]) -> ModeResult:
    """Measure one mode in this process (see the module docstring); ``spec`` from
    :func:`_worker_spec`."""
    import torch

    from sharpdepth import io
    from sharpdepth.accel.profiling import StageTimer, peak_rss_bytes, stage
    from sharpdepth.export import prediction_of, write_prediction
    from sharpdepth.pipeline import SharpDepthPipeline

    if spec["threads"]:
        torch.set_num_threads(int(spec["threads"]))
    start = time.perf_counter()
    variant = parse_mode(spec["mode"])
    pipe = SharpDepthPipeline.from_pretrained(
        spec["checkpoint"],
        metric_model="nano",
        device="cpu",
        mode=variant.base,
        tiny_vae=spec.get("tiny_vae"),
        winograd=False if variant.direct else None,
        int8=False if variant.float else None,
        processing_resolution=int(spec["resolution"]),
    )
    load_seconds = time.perf_counter() - start
    path = Path(spec["image"])
    out_dir = Path(spec["out_dir"])
    batch = int(spec["batch"])

    def one_call() -> Any:
        with stage("read image"):
            loaded = [io.load_image(path) for _ in range(batch)]
        out = pipe([item.rgb for item in loaded], seed=int(spec["seed"]))
        with stage("write outputs"):
            for i, item in enumerate(loaded):
                pred = prediction_of(out, i, item.rgb, exif_focal_px=item.exif_focal_px)
                write_prediction(out_dir, f"{spec['mode']}_{i}", pred, ply=True)
        return out

    for _ in range(int(spec["warmup"])):
        one_call()
    stage_runs: list[dict[str, float]] = []
    walls: list[float] = []
    out = None
    for _ in range(int(spec["runs"])):
        with StageTimer() as timer:
            t0 = time.perf_counter()
            out = one_call()
            walls.append(time.perf_counter() - t0)
        stage_runs.append(dict(timer.numbered()))
    assert out is not None
    depth_file = out_dir / f"{spec['mode']}_depth_result.npy"
    np.save(depth_file, np.asarray(out.depth[0], dtype=np.float32))
    seconds = statistics.median(walls)
    return ModeResult(
        mode=spec["mode"],
        stages=_median_stages(stage_runs),
        seconds=seconds,
        images_per_second=batch / seconds,
        peak_rss_bytes=peak_rss_bytes(),
        load_seconds=load_seconds,
        depth_file=str(depth_file),
        run_seconds=walls,
        run_stages=stage_runs,
    )


def _median_stages(stage_runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """``{stage: median seconds}`` over runs, stages in the first run's order."""
    names = list(stage_runs[0])
    return {name: statistics.median(run.get(name, 0.0) for run in stage_runs) for name in names}


def pool_rounds(rounds: Sequence[ModeResult]) -> ModeResult:
    """One mode's results of several rounds as one: medians over every round's runs, the
    largest peak memory, the median load time and the last round's depth."""
    walls = [t for r in rounds for t in r.run_seconds]
    stage_runs = [stages for r in rounds for stages in r.run_stages]
    if not walls or len(stage_runs) != len(walls):
        raise ValueError("pooling needs each round's per-run times")
    last = rounds[-1]
    seconds = statistics.median(walls)
    return ModeResult(
        mode=last.mode,
        stages=_median_stages(stage_runs),
        seconds=seconds,
        images_per_second=last.images_per_second * last.seconds / seconds,
        peak_rss_bytes=max(r.peak_rss_bytes for r in rounds),
        load_seconds=statistics.median(r.load_seconds for r in rounds),
        depth_file=last.depth_file,
        run_seconds=walls,
        run_stages=stage_runs,
    )


def _worker_spec(
    settings: SpeedSettings, mode: str, checkpoint: Path, out_dir: Path
) -> dict[str, Any]:
    """The JSON-serialisable job of one worker."""
    tiny = parse_mode(mode).tiny
    return {
        "mode": mode,
        "checkpoint": str(checkpoint),
        "tiny_vae": str(build_tiny_vae(settings.size, settings.cache, settings.seed))
        if tiny
        else None,
        "resolution": settings.resolution,
        "image": str(settings.image or default_photo()),
        "runs": settings.runs,
        "warmup": settings.warmup,
        "batch": settings.batch,
        "threads": settings.threads,
        "seed": settings.seed,
        "out_dir": str(out_dir),
    }


def worker_environment(mode: str, allocator: str) -> dict[str, str]:
    """The environment of a mode's worker process: the allocator setting, and huge pages
    for large tensors (:func:`~sharpdepth.accel.memory.use_huge_pages`, as the ``sharpdepth``
    command asks for them) in every mode but released, which keeps PyTorch's default."""
    if allocator not in ("system", "tuned"):
        raise ValueError(f"allocator must be system or tuned, got {allocator!r}")
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if mode == "released":
        env[HUGE_PAGES_VARIABLE] = "0"
        return env
    if allocator == "tuned":
        env["GLIBC_TUNABLES"] = TUNED_GLIBC
    use_huge_pages(env)
    return env


def run_mode(settings: SpeedSettings, mode: str, checkpoint: Path, work: Path) -> ModeResult:
    """Run one mode's worker in a fresh process and return its measurements."""
    out_dir = work / mode
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = work / f"{mode}.spec.json", work / f"{mode}.result.json"
    spec_file.write_text(json.dumps(_worker_spec(settings, mode, checkpoint, out_dir)))
    cmd = [sys.executable, "-m", "sharpdepth.accel.speed", str(spec_file), str(result_file)]
    LOGGER.info("speed: %s mode (%d warm-up + %d runs)", mode, settings.warmup, settings.runs)
    proc = subprocess.run(cmd, env=worker_environment(mode, settings.allocator), check=False)
    if proc.returncode != 0 or not result_file.is_file():
        raise RuntimeError(f"the {mode} worker failed (exit code {proc.returncode})")
    return ModeResult(**json.loads(result_file.read_text()))


def measure_speed(
    settings: SpeedSettings, work: Path, modes: Sequence[str] = DEFAULT_MODES
) -> list[ModeResult]:
    """Build (or reuse) the checkpoint and measure each mode in its own process.

    Args:
        settings: what to measure.
        work: folder for the workers' outputs (each mode's files in ``work / mode``).
        modes: which modes, in order.
    """
    for mode in modes:
        parse_mode(mode)
    if settings.runs < 1 or settings.warmup < 0 or settings.batch < 1 or settings.rounds < 1:
        raise ValueError("runs, rounds and batch must be at least 1, warmup at least 0")
    checkpoint = build_checkpoint(settings.size, settings.cache, settings.seed)
    work.mkdir(parents=True, exist_ok=True)
    by_mode: dict[str, list[ModeResult]] = {mode: [] for mode in modes}
    for number in range(settings.rounds):
        if settings.rounds > 1:
            LOGGER.info("speed: round %d of %d", number + 1, settings.rounds)
        for mode in modes:
            by_mode[mode].append(run_mode(settings, mode, checkpoint, work))
    return [pool_rounds(by_mode[mode]) for mode in modes]


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------


def output_differences(results: Sequence[ModeResult]) -> dict[str, dict[str, float]]:
    """Each mode's depth against exact's: max |difference| (m) and mean relative difference."""
    by_mode = {r.mode: np.load(r.depth_file) for r in results}
    if "exact" not in by_mode:
        return {}
    ref = by_mode["exact"]
    diffs = {}
    for mode, depth in by_mode.items():
        delta = np.abs(depth - ref)
        diffs[mode] = {
            "max_abs_m": float(delta.max()),
            "mean_rel": float((delta / np.maximum(np.abs(ref), 1e-6)).mean()),
        }
    return diffs


def _workers_use_huge_pages(settings: SpeedSettings) -> bool:
    """Whether the non-released workers run with huge pages (:func:`worker_environment`)."""
    return worker_environment("exact", settings.allocator)[HUGE_PAGES_VARIABLE] == "1"


def _runs_text(settings: SpeedSettings) -> str:
    """``"2 runs after 1 warm-up"``, with the rounds when there are several."""
    text = f"{settings.runs} runs after {settings.warmup} warm-up"
    if settings.rounds > 1:
        text += f" in each of {settings.rounds} rounds (modes in turn, pooled)"
    return text


def format_report(settings: SpeedSettings, results: Sequence[ModeResult]) -> str:
    """A Markdown table: stages by mode, totals, throughput, memory and the ratios."""
    modes = [r.mode for r in results]
    stage_names: list[str] = []
    for r in results:
        stage_names += [s for s in r.stages if s not in stage_names]
    header = "| stage (s, median) | " + " | ".join(modes) + " |"
    lines = [
        f"size {settings.size}, {settings.resolution} px, batch {settings.batch}, "
        f"{_runs_text(settings)}, allocator {settings.allocator}, "
        f"huge pages {'on (not released)' if _workers_use_huge_pages(settings) else 'off'}, "
        f"threads {settings.threads or 'default'}",
        "",
        header,
        "| --- |" + " --- |" * len(modes),
    ]
    for name in stage_names:
        cells = [f"{r.stages[name]:.3f}" if name in r.stages else "-" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **total per call** | " + " | ".join(f"{r.seconds:.3f}" for r in results) + " |")
    lines.append("| images/s | " + " | ".join(f"{r.images_per_second:.3f}" for r in results) + " |")
    lines.append(
        "| peak memory (GB) | "
        + " | ".join(f"{r.peak_rss_bytes / 2**30:.2f}" for r in results)
        + " |"
    )
    base = next((r for r in results if r.mode == "released"), None)
    if base is not None:
        lines.append(
            "| speed-up vs released | "
            + " | ".join(f"{base.seconds / r.seconds:.2f}x" for r in results)
            + " |"
        )
        lines.append(
            "| memory vs released | "
            + " | ".join(f"{r.peak_rss_bytes / base.peak_rss_bytes:.2f}" for r in results)
            + " |"
        )
    diffs = output_differences(results)
    if diffs:
        lines.append(
            "| depth vs exact: max abs (m) / mean rel | "
            + " | ".join(
                f"{diffs[m]['max_abs_m']:.2e} / {diffs[m]['mean_rel']:.2e}" if m in diffs else "-"
                for m in modes
            )
            + " |"
        )
    lines.append("| load time (s) | " + " | ".join(f"{r.load_seconds:.1f}" for r in results) + " |")
    return "\n".join(lines)


def results_json(settings: SpeedSettings, results: Sequence[ModeResult]) -> dict[str, Any]:
    """Settings, results and output differences as one JSON-serialisable dict."""
    return {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        "results": [asdict(r) for r in results],
        "differences_vs_exact": output_differences(results),
    }


def _main(argv: Sequence[str]) -> int:
    """Worker entry point: ``python -m sharpdepth.accel.speed SPEC.json RESULT.json``."""
    spec_file, result_file = Path(argv[0]), Path(argv[1])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    result = run_worker(json.loads(spec_file.read_text()))
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result)))
    tmp.replace(result_file)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
