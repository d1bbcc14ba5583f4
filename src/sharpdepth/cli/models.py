"""Model options shared by ``predict``, ``demo`` and ``eval``: which sharpener and metric
model, on which device, in which precision and inference mode."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)

#: Where the authors' README puts their released checkpoint (no Hub id published yet).
PUBLISHED_FOLDER = "checkpoints/sharpdepth"
#: Environment variable naming that folder instead.
PUBLISHED_ENV = "SHARPDEPTH_PUBLISHED_CHECKPOINT"
#: The paper's metric model f_D.
PUBLISHED_METRIC_MODEL = "unidepth-v1-vitl14"


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Add ``--checkpoint`` / ``--published``, ``--metric-model``, ``--trust-remote-code``,
    ``--device``, ``--dtype``, ``--fast`` / ``--fastest``, ``--metric-input``, ``--tiny-vae``
    to ``p``."""
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
        "--download",
        action="store_true",
        help="with --published: fetch the authors' checkpoint first when its folder is "
        "missing (what `sharpdepth download published` does); without it, nothing is "
        "downloaded",
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the checkpoint's sharpdepth_config.json name a metric model as "
        "module:attribute or file.py:attribute, which runs that code (default: refused; "
        "--metric-model is always yours to choose)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
    )
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument(
        "--fast",
        action="store_const",
        const="fast",
        dest="mode",
        help="fast mode: coarse depth encode and gate decode, pooled first-level "
        "attention keys, low precision where the device computes it natively, else int8 "
        "layers on x86 CPUs (see docs/speed.md); default: exact",
    )
    speed.add_argument(
        "--fastest",
        action="store_const",
        const="fastest",
        dest="mode",
        help="fast mode with the prior pass at half resolution too (faster, further "
        "from exact; see docs/speed.md)",
    )
    p.add_argument(
        "--metric-input",
        choices=("released", "resized"),
        default="released",
        help="what the metric model sees: released (default: the resized and padded image "
        "truncated to 8 bits, as the authors' release feeds it) or resized (the unpadded "
        "image in full precision; docs/method.md)",
    )
    p.add_argument(
        "--tiny-vae",
        default=None,
        metavar="FOLDER_OR_ID",
        help="encode and decode with this TAESD-style tiny autoencoder instead of the "
        "checkpoint's (much faster, not exact): nano (the bundled family's), "
        "madebyollin/taesd for SD-2-based checkpoints, or a folder",
    )


def published_folder() -> Path:
    """Where the authors' checkpoint lives: ``$SHARPDEPTH_PUBLISHED_CHECKPOINT`` or
    ``./checkpoints/sharpdepth``."""
    return Path(os.environ.get(PUBLISHED_ENV, PUBLISHED_FOLDER)).expanduser()


def choose_models(args: argparse.Namespace) -> tuple[str, str | None]:
    """(checkpoint, metric model) from ``--checkpoint`` / ``--published`` / ``--metric-model``.

    ``--published`` with ``--download`` fetches the authors' checkpoint when its folder
    is missing; without ``--download`` nothing touches the network here.

    Raises:
        CheckpointError: ``--published`` without the authors' checkpoint folder.
        DownloadError: ``--download`` failed.
    """
    from sharpdepth.assets import NANO_CHECKPOINT
    from sharpdepth.errors import CheckpointError

    if not args.published:
        return args.checkpoint or NANO_CHECKPOINT, args.metric_model
    folder = published_folder()
    if not folder.is_dir() and getattr(args, "download", False):
        from sharpdepth.download import download_published

        download_published(folder, progress=not getattr(args, "no_progress", False))
    if not folder.is_dir():
        raise CheckpointError(
            f"--published needs the authors' SharpDepth checkpoint in {folder}: run "
            "`sharpdepth download published` (or add --download), or set "
            f"${PUBLISHED_ENV} to its folder; or pass --checkpoint FOLDER_OR_HUB_ID"
        )
    return str(folder), args.metric_model or PUBLISHED_METRIC_MODEL


#: Printed once per run when the bundled nano family is used.
NANO_NOTICE = (
    "using the bundled nano models: they were trained only on this package's synthetic "
    "scenes, so their depth on real photos is a demonstration, not a measurement. For real "
    "photos use the paper's models (--published) or any other (--checkpoint, --metric-model)"
)


def load_pipeline(args: argparse.Namespace, device: Any = None, **options: Any) -> tuple[Any, str]:
    """The :class:`~sharpdepth.pipeline.SharpDepthPipeline` the model options ask for, and
    the checkpoint it was loaded from.

    Args:
        args: parsed :func:`add_model_options` options.
        device: overrides ``args.device`` (e.g. one GPU per process).
        **options: pipeline options (``processing_resolution``, ...).

    Raises:
        SharpDepthError, ValueError, OSError, ImportError: the models cannot be loaded.
    """
    from sharpdepth.assets import NANO_CHECKPOINT
    from sharpdepth.pipeline import SharpDepthPipeline

    checkpoint, metric_model = choose_models(args)
    if checkpoint == NANO_CHECKPOINT:
        LOGGER.warning("%s", NANO_NOTICE)
    pipe = SharpDepthPipeline.from_pretrained(
        checkpoint,
        metric_model=metric_model,
        device=args.device if device is None else device,
        dtype=args.dtype,
        mode=args.mode or "exact",
        tiny_vae=args.tiny_vae,
        trust_remote_code=getattr(args, "trust_remote_code", False),
        metric_input=getattr(args, "metric_input", "released"),
        **options,
    )
    return pipe, checkpoint
