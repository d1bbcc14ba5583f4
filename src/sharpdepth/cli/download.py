"""``sharpdepth download``: fetch the published models once, for offline use later."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``download`` subcommand."""
    from sharpdepth.cli.models import PUBLISHED_ENV, PUBLISHED_FOLDER

    p = sub.add_parser(
        "download",
        help="fetch the published models (the authors' checkpoint, Hub models)",
        description=(
            "`published`: the authors' SharpDepth checkpoint from their GitHub release "
            "(three archive parts; resumes interrupted downloads, checks each part's size "
            "and SHA-256, extracts safely into the checkpoint folder). Any other NAME: a "
            "Hugging Face Hub model (a name from `sharpdepth models`, lotus-depth-g-v1-0, "
            "taesd, or a Hub id) fetched into the Hub cache, so later runs work with "
            "HF_HUB_OFFLINE=1."
        ),
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="published, or Hub model names")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"checkpoint folder for `published` (default ${PUBLISHED_ENV} or "
        f"./{PUBLISHED_FOLDER}, where --published looks)",
    )
    p.add_argument(
        "--keep-parts", action="store_true", help="keep the archive parts after extraction"
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fetch every named model; returns 0, or 2 on the first failure (message logged)."""
    from sharpdepth.cli.models import published_folder
    from sharpdepth.download import DownloadError, download_hub, download_published

    for name in args.names:
        try:
            if name == "published":
                folder = download_published(
                    args.dir or published_folder(),
                    progress=not args.no_progress,
                    keep_parts=args.keep_parts,
                )
                print(f"published checkpoint: {folder}")
            else:
                print(f"{name}: {download_hub(name)}")
        except (DownloadError, OSError) as exc:
            LOGGER.error("%s", exc)
            return 2
    return 0
