"""``sharpdepth predict INPUT... [-o OUT]``: sharp metric depth for files, folders and globs.

With no model options it runs the bundled nano family (offline); ``--published`` selects
the paper's large models and ``--checkpoint`` / ``--metric-model`` any others.
"""

from __future__ import annotations

import argparse
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sharpdepth.cli import options as types
from sharpdepth.cli.models import add_model_options, load_pipeline
from sharpdepth.image_ops import MAX_PROCESSING_RESOLUTION
from sharpdepth.parallel import (
    OrderedExecutor,
    Prefetcher,
    ProcessInfo,
    TaskOutcome,
    process_device,
    process_info,
    shard,
    share_from_rank0,
)

LOGGER = logging.getLogger(__name__)

#: Output folder when ``-o`` is not given (relative to the working directory).
DEFAULT_OUTPUT = Path("sharpdepth-output")
#: Default ``--io-workers``: threads writing outputs in the background.
DEFAULT_IO_WORKERS = 2
#: Chunks of ``--batch-size`` images decoded ahead of the one computing.
PREFETCH_CHUNKS = 2


def add_parser(sub: Any) -> None:
    """Register the ``predict`` subcommand."""
    p = sub.add_parser(
        "predict",
        help="sharp metric depth for images, folders or globs",
        description=(
            "Write per image: depth in metres (.npy float32), 16-bit PNG in millimetres, a "
            "colourised PNG, the metric model's depth, a confidence PNG, a JSON sidecar and, "
            "with --ply, a coloured point cloud."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"output folder (default ./{DEFAULT_OUTPUT})",
    )
    add_model_options(p)
    p.add_argument(
        "--processing-res",
        type=types.processing_resolution,
        default=None,
        help="longer side for the networks (default 768; 0 = native; at most "
        f"{MAX_PROCESSING_RESOLUTION})",
    )
    p.add_argument("--gate-variant", choices=["released", "paper"], default=None)
    p.add_argument(
        "--confidence-threshold",
        type=types.unit_threshold,
        default=None,
        help="gate threshold for metric recovery, in (0, 1] (default 0.5)",
    )
    p.add_argument(
        "--seed", type=types.seed, default=0, help="noise seed (default 0: reproducible)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images per forward pass (same-size images are batched)",
    )
    known = p.add_mutually_exclusive_group()
    known.add_argument(
        "--intrinsics",
        type=types.finite_float,
        nargs=4,
        action=types.IntrinsicsAction,
        metavar=("FX", "FY", "CX", "CY"),
        help="known intrinsics in input pixels (all images; FX, FY positive)",
    )
    known.add_argument(
        "--focal-px",
        type=types.positive_float,
        help="known focal length in pixels (all images; positive)",
    )
    known.add_argument(
        "--fov",
        type=types.fov_degrees,
        help="known horizontal field of view in degrees (between 0 and 180)",
    )
    p.add_argument(
        "--ply",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a coloured point cloud (.ply; default on, --no-ply to skip)",
    )
    p.add_argument(
        "--exr",
        action="store_true",
        help="also write the depth as a one-channel float32 OpenEXR file (STEM_depth.exr, "
        'metres) for graphics tools; needs pip install "sharpdepth[exr]"',
    )
    p.add_argument(
        "--ply-drop-edges",
        action="store_true",
        help="drop flying pixels at depth edges in the point cloud",
    )
    p.add_argument("--recursive", action="store_true", help="search folders recursively")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip images whose output set is complete (an interrupted image is redone)",
    )
    p.add_argument(
        "--io-workers",
        type=int,
        default=DEFAULT_IO_WORKERS,
        help="threads writing outputs while the next images compute; a further thread "
        f"decodes images ahead (default {DEFAULT_IO_WORKERS}; 0 = decode, compute and write "
        "one after another)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def _claim_output_folder(folder: Path, started: float) -> Any:
    """Create ``folder``, lock it for this run and remove what interrupted runs left there.

    Returns:
        The :class:`~sharpdepth.io.FolderLock` (its creation also proves the folder is
        writable).

    Raises:
        FolderInUseError: another run holds the folder.
        OSError: the folder cannot be created or written.
    """
    from sharpdepth import io
    from sharpdepth.export import clean_debris

    folder.mkdir(parents=True, exist_ok=True)
    lock = io.lock_folder(folder)
    removed = clean_debris(folder, before=started)
    if removed:
        LOGGER.info("%s: removed %d files left by an interrupted run", folder, removed)
    return lock


def _user_intrinsics(args: argparse.Namespace, height: int, width: int) -> np.ndarray | None:
    """Intrinsics from ``--intrinsics``, ``--focal-px`` or ``--fov`` for an ``H x W`` image."""
    from sharpdepth import geometry

    if args.intrinsics is not None:
        fx, fy, cx, cy = args.intrinsics
        return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float32)
    if args.focal_px is not None:
        return geometry.intrinsics_from_focal(args.focal_px, width, height).numpy()
    if args.fov is not None:
        return geometry.intrinsics_from_fov(width, height, args.fov).numpy()
    return None


def _unique_stems(paths: list[Path], warn: bool = True) -> dict[Path, str]:
    """Output stems, disambiguated with ``_2``, ``_3``... when file names collide.

    Computed on the full input list (before sharding), so all processes agree on names;
    ``warn=False`` keeps all but one process from repeating the collision warnings.
    """
    seen: dict[str, int] = defaultdict(int)
    stems: dict[Path, str] = {}
    for path in paths:
        seen[path.stem] += 1
        stems[path] = path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}"
        if seen[path.stem] > 1 and warn:
            LOGGER.warning(
                "%s: name collides with an earlier input; writing as %s", path, stems[path]
            )
    return stems


def _find_inputs(
    args: argparse.Namespace, proc: ProcessInfo, locks: list[Any]
) -> tuple[list[Path], list[str], str | None]:
    """Claim the output folder and list the inputs; in a multi-process run process 0 does
    both and sends the outcome to every process.

    Returns:
        ``(paths, input errors, setup error)``: our own outputs are never inputs; the
        setup error (folder in use or not writable) is ``None`` if the folder is ours,
        and the lock is appended to ``locks``.
    """
    from sharpdepth import io
    from sharpdepth.errors import FolderInUseError
    from sharpdepth.export import is_prediction_output

    started = time.time()

    def make() -> tuple[list[Path], list[str], str | None]:
        paths, errors = io.find_images(
            args.inputs, recursive=args.recursive, exclude=is_prediction_output
        )
        if proc.rank == 0 and paths:
            try:
                locks.append(_claim_output_folder(args.output, started))
            except FolderInUseError as exc:
                return [], errors, str(exc)
            except OSError as exc:
                return [], errors, f"output folder {args.output} is not writable: {exc}"
        return paths, errors, None

    return share_from_rank0(make, proc)


def run(args: argparse.Namespace) -> int:
    """Run ``predict``. Exit code: 0 all images done, 1 some failed (or the disk filled
    up), 2 setup error (bad inputs or models, output folder unwritable or in use).

    Under ``torchrun`` / ``accelerate launch`` each process takes its share of the inputs
    (:func:`sharpdepth.parallel.shard`) and reports its own images and exit code; the
    output folder is locked by process 0.
    """
    locks: list[Any] = []  # process 0's lock on the output folder, held until we return
    try:
        return _run(args, locks)
    finally:
        for lock in locks:
            lock.release()


def _run(args: argparse.Namespace, locks: list[Any]) -> int:
    """:func:`run` with the lock it releases."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from sharpdepth.errors import NoSpaceError, SharpDepthError, one_line
    from sharpdepth.export import outputs_complete

    if not LOGGER.isEnabledFor(logging.DEBUG):
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    if args.batch_size < 1:
        LOGGER.error("--batch-size must be at least 1")
        return 2
    if args.io_workers < 0:
        LOGGER.error("--io-workers must be at least 0")
        return 2
    try:
        proc = process_info()
    except ValueError as exc:
        LOGGER.error("%s", exc)
        return 2
    all_paths, input_errors, setup_error = _find_inputs(args, proc, locks)
    # input errors are the same in every process: process 0 reports them
    failures: list[str] = list(input_errors) if proc.rank == 0 else []
    for msg in failures:
        LOGGER.error("%s", msg)
    if setup_error is not None:
        LOGGER.error("%s", setup_error)
        return 2
    if not all_paths:
        LOGGER.error("no images to process")
        return 2
    device = process_device(args.device, proc)
    try:
        options: dict[str, Any] = {}
        for key, value in (
            ("processing_resolution", args.processing_res),
            ("gate_variant", args.gate_variant),
            ("confidence_threshold", args.confidence_threshold),
        ):
            if value is not None:
                options[key] = value
        pipe, checkpoint = load_pipeline(args, device=device, **options)
    except (SharpDepthError, ValueError, OSError, ImportError) as exc:
        LOGGER.error("cannot load the models: %s", one_line(exc))
        return 2

    stems = _unique_stems(all_paths, warn=proc.rank == 0)
    # the shard comes from the full list, before --skip-existing looks at the outputs,
    # so no two processes ever take the same image
    paths = shard(all_paths, proc.rank, proc.world_size)
    if proc.distributed:
        LOGGER.info(
            "%s on %s: %d of %d images", proc.label, pipe.device, len(paths), len(all_paths)
        )
    if args.skip_existing:
        todo = [p for p in paths if not outputs_complete(args.output, stems[p], args.ply, args.exr)]
        LOGGER.info("skipping %d images with complete outputs", len(paths) - len(todo))
        paths = todo
    settings = {
        "checkpoint": str(checkpoint),
        "metric_model": pipe.metric_model.name,
        "processing_resolution": pipe.processing_resolution
        if args.processing_res is None
        else args.processing_res,
        "gate_variant": args.gate_variant or pipe.gate_variant,
        "confidence_threshold": pipe.confidence_threshold
        if args.confidence_threshold is None
        else args.confidence_threshold,
        "seed": args.seed,
        "mode": pipe.mode.name,
        "tiny_vae": args.tiny_vae,
    }
    if proc.distributed:
        settings.update(rank=proc.rank, world_size=proc.world_size)
    with (
        logging_redirect_tqdm(),
        tqdm(
            total=len(paths),
            unit="img",
            disable=args.no_progress or proc.local_rank != 0,
            desc=f"predict ({proc.label})" if proc.distributed else "predict",
        ) as bar,
    ):
        try:
            n_ok = _predict_all(pipe, paths, stems, args, settings, failures, bar)
        except NoSpaceError as exc:
            LOGGER.error(
                "%s; stopped (free some space, then rerun with --skip-existing to finish)", exc
            )
            return 1
    total = len(paths)
    where = f"{proc.label}: " if proc.distributed else ""
    if failures:
        LOGGER.error("%s%d of %d images done; %d failures:", where, n_ok, total, len(failures))
        for msg in failures:
            LOGGER.error("  %s", msg)
        return 1
    LOGGER.info("%s%d images done; outputs in %s", where, n_ok, args.output)
    return 0


def _load_chunks(paths: list[Path], batch_size: int) -> Iterator[tuple[list[Any], list[str]]]:
    """Decode ``paths`` in chunks of ``batch_size``: ``(loaded images, error messages)``."""
    from sharpdepth import io
    from sharpdepth.errors import SharpDepthError

    for start in range(0, len(paths), batch_size):
        loaded: list[Any] = []
        errors: list[str] = []
        for path in paths[start : start + batch_size]:
            try:
                loaded.append(io.load_image(path))
            except SharpDepthError as exc:
                errors.append(str(exc))
        yield loaded, errors


def _predict_all(
    pipe: Any,
    paths: list[Path],
    stems: dict[Path, str],
    args: argparse.Namespace,
    settings: dict[str, Any],
    failures: list[str],
    bar: Any,
) -> int:
    """Decode, predict and write ``paths``; returns how many were written.

    With ``--io-workers N > 0`` a thread decodes up to :data:`PREFETCH_CHUNKS` chunks
    ahead and ``N`` threads write outputs while the next images compute. Failures are
    appended to ``failures`` (input order per stage) and the bar advances per image.
    Every write handed to the writers is finished before this returns, also when it
    raises (``KeyboardInterrupt`` included), and its failure reported.
    """
    from sharpdepth.export import write_prediction

    workers = args.io_workers
    n_ok = 0
    with (
        Prefetcher(
            _load_chunks(paths, args.batch_size), PREFETCH_CHUNKS if workers else 0
        ) as chunks,
        OrderedExecutor[Path](workers, max_pending=args.batch_size + workers) as writer,
    ):
        try:
            for loaded, errors in chunks:
                for msg in errors:
                    failures.append(msg)
                    LOGGER.error("%s", msg)
                    bar.update(1)
                groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
                for item in loaded:
                    groups[item.rgb.shape[:2]].append(item)
                for group in groups.values():
                    for item, result in _predict_group(pipe, group, args, settings, failures):
                        if result is None:
                            bar.update(1)
                            continue
                        task = functools.partial(
                            write_prediction,
                            args.output,
                            stems[item.path],
                            result,
                            ply=args.ply,
                            drop_edges=args.ply_drop_edges,
                            metadata={"input": str(item.path), **settings},
                            exr=args.exr,
                        )
                        n_ok += _settle(writer.submit(item.path, task), failures, bar)
        except BaseException:
            if writer.pending:
                LOGGER.warning("finishing %d pending writes", writer.pending)
            _settle(writer.drain(), failures, bar, strict=False)
            raise
        n_ok += _settle(writer.drain(), failures, bar)
    return n_ok


def _settle(
    outcomes: list[TaskOutcome[Path]], failures: list[str], bar: Any, strict: bool = True
) -> int:
    """Report finished writes; returns how many succeeded.

    A write's ``OSError`` is an image failure, except a full disk
    (:class:`~sharpdepth.errors.NoSpaceError`), which is re-raised once all outcomes are
    reported, so the run stops. Anything else is a bug: if ``strict`` the first one is
    re-raised likewise, else (already unwinding from another exception) it is reported as
    a failure.
    """
    from sharpdepth.errors import NoSpaceError

    n_ok = 0
    unexpected: BaseException | None = None
    for outcome in outcomes:
        bar.update(1)
        if outcome.error is None:
            n_ok += 1
        elif strict and (
            isinstance(outcome.error, NoSpaceError) or not isinstance(outcome.error, OSError)
        ):
            unexpected = unexpected or outcome.error
        else:
            failures.append(f"{outcome.key}: cannot write outputs: {outcome.error}")
            LOGGER.error("%s", failures[-1])
    if unexpected is not None:
        raise unexpected
    return n_ok


def _predict_group(
    pipe: Any,
    group: list[Any],
    args: argparse.Namespace,
    settings: dict[str, Any],
    failures: list[str],
) -> list[tuple[Any, Any]]:
    """Run the pipeline on same-size images; on failure, retry one by one to isolate it.

    Returns ``(loaded_image, ImagePrediction | None)`` pairs; failures are appended to
    ``failures`` with a one-line message.
    """
    from sharpdepth.errors import SharpDepthError
    from sharpdepth.export import prediction_of

    h, w = group[0].rgb.shape[:2]
    user_k = _user_intrinsics(args, h, w)
    try:
        out = pipe(
            [item.rgb for item in group],
            intrinsics=user_k,
            processing_resolution=args.processing_res,
            gate_variant=args.gate_variant,
            confidence_threshold=args.confidence_threshold,
            seed=args.seed,
            allow_constant_metric_depth=False,
        )
    except (SharpDepthError, ValueError, RuntimeError) as exc:
        if len(group) > 1:
            results: list[tuple[Any, Any]] = []
            for item in group:
                results.extend(_predict_group(pipe, [item], args, settings, failures))
            return results
        failures.append(f"{group[0].path}: {exc}")
        LOGGER.error("%s", failures[-1])
        return [(group[0], None)]
    results = []
    for i, item in enumerate(group):
        pred = prediction_of(out, i, item.rgb, user_k, item.exif_focal_px)
        if pred.intrinsics_source in ("exif", "default_fov"):
            LOGGER.info(
                "%s: intrinsics from %s (fx = %.1f px)",
                item.path,
                pred.intrinsics_source,
                pred.intrinsics[0, 0],
            )
        results.append((item, pred))
    return results
