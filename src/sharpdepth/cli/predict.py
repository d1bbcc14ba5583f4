"""``sharpdepth predict INPUT... [-o OUT]``: sharp metric depth for files, folders and globs.

With no model options it runs the bundled nano family (offline); ``--published`` selects
the paper's large models and ``--checkpoint`` / ``--metric-model`` any others.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

LOGGER = logging.getLogger(__name__)

#: Output folder when ``-o`` is not given (relative to the working directory).
DEFAULT_OUTPUT = Path("sharpdepth-output")
#: Where the authors' README puts their released checkpoint; ``--published`` looks there.
PUBLISHED_FOLDER = "checkpoints/sharpdepth"
#: Environment variable naming another folder for the authors' checkpoint.
PUBLISHED_ENV = "SHARPDEPTH_PUBLISHED_CHECKPOINT"
#: The paper's metric model f_D.
PUBLISHED_METRIC_MODEL = "unidepth-v1-vitl14"


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
    models = p.add_mutually_exclusive_group()
    models.add_argument(
        "--checkpoint",
        default=None,
        help="sharpener checkpoint: folder or Hugging Face Hub id (SharpDepth or Lotus-G "
        "layout); default: the bundled nano family ('nano'), which runs offline",
    )
    models.add_argument(
        "--published",
        action="store_true",
        help="use the paper's large models instead of the bundled nano family: the authors' "
        f"SharpDepth checkpoint (folder in ${PUBLISHED_ENV}, default ./{PUBLISHED_FOLDER}, "
        f"where their README puts it) with {PUBLISHED_METRIC_MODEL} as the metric model",
    )
    p.add_argument(
        "--metric-model",
        default=None,
        help="metric depth model: a registry name, hf:<id or folder>, "
        "unidepth:<id>, a folder, or module:attribute / file.py:attribute of your own model "
        "(default: the one recorded in the checkpoint; `sharpdepth models` lists the names)",
    )
    p.add_argument(
        "--processing-res",
        type=int,
        default=None,
        help="longer side for the networks (default 768; 0 = native)",
    )
    p.add_argument("--gate-variant", choices=["released", "paper"], default=None)
    p.add_argument(
        "--confidence-threshold",
        type=float,
        default=None,
        help="gate threshold for metric recovery (default 0.5)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0: reproducible)")
    p.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
    )
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    p.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images per forward pass (same-size images are batched)",
    )
    known = p.add_mutually_exclusive_group()
    known.add_argument(
        "--intrinsics",
        type=float,
        nargs=4,
        metavar=("FX", "FY", "CX", "CY"),
        help="known intrinsics in input pixels (all images)",
    )
    known.add_argument("--focal-px", type=float, help="known focal length in pixels (all images)")
    known.add_argument("--fov", type=float, help="known horizontal field of view in degrees")
    p.add_argument(
        "--ply",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a coloured point cloud (.ply; default on, --no-ply to skip)",
    )
    p.add_argument(
        "--ply-drop-edges",
        action="store_true",
        help="drop flying pixels at depth edges in the point cloud",
    )
    p.add_argument("--recursive", action="store_true", help="search folders recursively")
    p.add_argument(
        "--skip-existing", action="store_true", help="skip images whose outputs all exist"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def _choose_models(args: argparse.Namespace) -> tuple[str, str | None]:
    """(checkpoint, metric model) from ``--checkpoint`` / ``--published`` / ``--metric-model``.

    Raises:
        CheckpointError: ``--published`` without the authors' checkpoint folder.
    """
    from sharpdepth.errors import CheckpointError
    from sharpdepth.nano import NANO_CHECKPOINT

    if not args.published:
        return args.checkpoint or NANO_CHECKPOINT, args.metric_model
    folder = Path(os.environ.get(PUBLISHED_ENV, PUBLISHED_FOLDER)).expanduser()
    if not folder.is_dir():
        raise CheckpointError(
            f"--published needs the authors' SharpDepth checkpoint in {folder} (download it "
            "from their repository Qualcomm-AI-research/SharpDepth and put it there, or set "
            f"${PUBLISHED_ENV}); or pass --checkpoint FOLDER_OR_HUB_ID, e.g. a Lotus-G id"
        )
    return str(folder), args.metric_model or PUBLISHED_METRIC_MODEL


def _check_output_folder(folder: Path) -> None:
    """Create ``folder`` and make sure it is writable, or raise ``OSError``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    os.close(fd)
    os.unlink(probe)


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


def _unique_stems(paths: list[Path]) -> dict[Path, str]:
    """Output stems, disambiguated with ``_2``, ``_3``... when file names collide."""
    seen: dict[str, int] = defaultdict(int)
    stems: dict[Path, str] = {}
    for path in paths:
        seen[path.stem] += 1
        stems[path] = path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}"
        if seen[path.stem] > 1:
            LOGGER.warning(
                "%s: name collides with an earlier input; writing as %s", path, stems[path]
            )
    return stems


def run(args: argparse.Namespace) -> int:
    """Run ``predict``. Exit code: 0 all images done, 1 some failed, 2 setup error."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from sharpdepth import io
    from sharpdepth.errors import SharpDepthError
    from sharpdepth.export import output_paths, write_prediction
    from sharpdepth.pipeline import SharpDepthPipeline

    if not LOGGER.isEnabledFor(logging.DEBUG):
        import diffusers
        import transformers

        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
    if args.batch_size < 1:
        LOGGER.error("--batch-size must be at least 1")
        return 2
    paths, input_errors = io.find_images(args.inputs, recursive=args.recursive)
    failures: list[str] = list(input_errors)
    for msg in input_errors:
        LOGGER.error("%s", msg)
    if not paths:
        LOGGER.error("no images to process")
        return 2
    try:
        _check_output_folder(args.output)
    except OSError as exc:
        LOGGER.error("output folder %s is not writable: %s", args.output, exc)
        return 2
    try:
        options: dict[str, Any] = {}
        for key, value in (
            ("processing_resolution", args.processing_res),
            ("gate_variant", args.gate_variant),
            ("confidence_threshold", args.confidence_threshold),
        ):
            if value is not None:
                options[key] = value
        checkpoint, metric_model = _choose_models(args)
        pipe = SharpDepthPipeline.from_pretrained(
            checkpoint,
            metric_model=metric_model,
            device=args.device,
            dtype=args.dtype,
            **options,
        )
    except (SharpDepthError, ValueError, OSError, ImportError) as exc:
        LOGGER.error("cannot load the models: %s", exc)
        return 2

    stems = _unique_stems(paths)
    if args.skip_existing:
        todo = [
            p
            for p in paths
            if not all(q.exists() for q in output_paths(args.output, stems[p], args.ply).values())
        ]
        LOGGER.info("skipping %d images with existing outputs", len(paths) - len(todo))
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
    }
    n_ok = 0
    with (
        logging_redirect_tqdm(),
        tqdm(total=len(paths), unit="img", disable=args.no_progress, desc="predict") as bar,
    ):
        for start in range(0, len(paths), args.batch_size):
            chunk = paths[start : start + args.batch_size]
            loaded = []
            for path in chunk:
                try:
                    loaded.append(io.load_image(path))
                except SharpDepthError as exc:
                    failures.append(str(exc))
                    LOGGER.error("%s", exc)
                    bar.update(1)
            groups: dict[tuple[int, int], list[Any]] = defaultdict(list)
            for item in loaded:
                groups[item.rgb.shape[:2]].append(item)
            for group in groups.values():
                for item, result in _predict_group(pipe, group, args, settings, failures):
                    if result is None:
                        bar.update(1)
                        continue
                    try:
                        write_prediction(
                            args.output,
                            stems[item.path],
                            result,
                            ply=args.ply,
                            drop_edges=args.ply_drop_edges,
                            metadata={"input": str(item.path), **settings},
                        )
                        n_ok += 1
                    except OSError as exc:
                        failures.append(f"{item.path}: cannot write outputs: {exc}")
                        LOGGER.error("%s", failures[-1])
                    bar.update(1)
    total = len(paths)
    if failures:
        LOGGER.error("%d of %d images done; %d failures:", n_ok, total, len(failures))
        for msg in failures:
            LOGGER.error("  %s", msg)
        return 1
    LOGGER.info("%d images done; outputs in %s", n_ok, args.output)
    return 0


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
    from sharpdepth.export import ImagePrediction, choose_intrinsics

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
        k, source = choose_intrinsics(
            h,
            w,
            user=user_k,
            model=None if out.intrinsics is None else out.intrinsics[i],
            exif_focal_px=item.exif_focal_px,
        )
        if source in ("exif", "default_fov"):
            LOGGER.info("%s: intrinsics from %s (fx = %.1f px)", item.path, source, k[0, 0])
        results.append(
            (
                item,
                ImagePrediction(
                    rgb=item.rgb,
                    depth=out.depth[i],
                    metric_depth=out.metric_depth[i],
                    gate=out.gate[i],
                    scale=float(out.scale[i]),
                    shift=float(out.shift[i]),
                    intrinsics=k,
                    intrinsics_source=source,
                ),
            )
        )
    return results
