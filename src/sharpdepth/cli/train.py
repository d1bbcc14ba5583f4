"""``sharpdepth train --config FILE [section.key=value ...]``: train a sharpener without GT."""

from __future__ import annotations

import argparse
import logging
from typing import Any

LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train a sharpener for a metric model on unlabeled images",
        description=(
            "Ground-truth-free SharpDepth training. Configs: a YAML file or a bundled name "
            "(default, debug, paper); overrides as section.key=value. The same command runs "
            "on many GPUs with `accelerate launch -m sharpdepth.cli.main train ...`. An "
            "interrupted run resumes from its latest checkpoint with --resume."
        ),
    )
    p.add_argument("--config", default="default", help="YAML file or bundled config name")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many more steps")
    p.add_argument(
        "--published",
        action="store_true",
        help="start from the authors' SharpDepth checkpoint (model.prior = its folder, "
        "model.metric_model = unidepth-v1-vitl14 unless set), e.g. to fine-tune it on your "
        "images; the folder must exist (`sharpdepth download published`) or use --download",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="with --published: fetch the authors' checkpoint first when it is missing",
    )
    p.set_defaults(run=run)


def published_overrides(args: argparse.Namespace) -> list[str]:
    """``model.prior`` / ``model.metric_model`` overrides for ``--published`` (placed
    before the user's own overrides, which win).

    Raises:
        CheckpointError: the checkpoint folder is missing (and not downloaded).
    """
    from sharpdepth.cli.models import choose_models

    if not args.published:
        return []
    query = argparse.Namespace(
        published=True, download=args.download, metric_model=None, checkpoint=None
    )
    checkpoint, metric = choose_models(query)
    return [f"model.prior={checkpoint}", f"model.metric_model={metric}"]


def run(args: argparse.Namespace) -> int:
    """Run ``train``: exit code 0 on success, 2 on configuration errors."""
    from sharpdepth.errors import SharpDepthError
    from sharpdepth.training.config import load_config
    from sharpdepth.training.trainer import Trainer

    try:
        config = load_config(args.config, [*published_overrides(args), *args.overrides])
        if not config.model.prior or not config.data.train:
            raise ValueError(
                "model.prior and data.train must be set (in the config or as overrides)"
            )
        trainer = Trainer(config)
    except (ValueError, FileNotFoundError, SharpDepthError, ImportError) as exc:
        LOGGER.error("%s", exc)
        return 2
    if args.resume and not trainer.load_checkpoint():
        LOGGER.info("no checkpoint in %s: starting from scratch", trainer.checkpoint_dir())
    out = trainer.fit(max_steps=args.max_steps)
    LOGGER.info("done: %s", out)
    return 0
