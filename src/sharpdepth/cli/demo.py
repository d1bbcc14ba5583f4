"""``sharpdepth demo``: the pipeline in a browser (gradio, ``pip install "sharpdepth[demo]"``).

With no model options it runs the bundled nano family (offline), like ``predict``; the
model flags are ``predict``'s. It binds to 127.0.0.1 unless ``--host`` or ``--share``
say otherwise.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register the ``demo`` subcommand."""
    from sharpdepth.cli.models import add_model_options
    from sharpdepth.demo.limits import DEFAULT_HOST, DemoLimits

    limits = DemoLimits()
    p = sub.add_parser(
        "demo",
        help="interactive demo in the browser (needs the demo extra)",
        description=(
            "Serve a web page that runs the same pipeline as `predict` on an uploaded photo: "
            "metric vs sharpened depth on one colour scale, confidence, 3D point clouds of "
            "both, and downloads (.npy in metres, 16-bit PNG, PLY). Needs gradio: "
            'pip install "sharpdepth[demo]".'
        ),
    )
    add_model_options(p)
    p.add_argument(
        "--processing-res",
        type=int,
        default=None,
        help="longer side for the networks (default: the checkpoint's; 0 = native)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}: this machine only; 0.0.0.0 serves "
        "your network)",
    )
    p.add_argument(
        "--port", type=int, default=None, help="port (default: the first free one from 7860)"
    )
    p.add_argument(
        "--share",
        action="store_true",
        help="also create a temporary public gradio.live link (needs the internet)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=limits.max_upload_mb,
        help=f"largest accepted upload (default {limits.max_upload_mb:g} MB)",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=limits.max_side,
        help=f"larger uploads are downscaled to this longer side (default {limits.max_side})",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``demo`` until interrupted. Exit code 0, or 2 on a setup error."""
    from sharpdepth.cli.models import load_pipeline
    from sharpdepth.demo.app import build_app, launch_app, require_gradio
    from sharpdepth.demo.limits import DemoLimits
    from sharpdepth.demo.runner import DemoRunner
    from sharpdepth.errors import SharpDepthError

    try:
        require_gradio()
        limits = DemoLimits(max_upload_mb=args.max_upload_mb, max_side=args.max_side)
    except (ImportError, ValueError) as exc:
        LOGGER.error("%s", exc)
        return 2
    try:
        options: dict[str, Any] = {}
        if args.processing_res is not None:
            options["processing_resolution"] = args.processing_res
        pipe, checkpoint = load_pipeline(args, **options)
    except (SharpDepthError, ValueError, OSError, ImportError) as exc:
        LOGGER.error("cannot load the models: %s", exc)
        return 2
    model_info = (
        f"Models: sharpener `{checkpoint}`, metric model `{pipe.metric_model.name}`, "
        f"processing resolution {pipe.processing_resolution} px, {pipe.mode.name} mode, "
        f"seed {args.seed}."
    )
    out_root = Path(tempfile.mkdtemp(prefix="sharpdepth-demo-"))
    runner = DemoRunner(
        pipe,
        out_root,
        limits=limits,
        seed=args.seed,
        settings={"checkpoint": str(checkpoint), "metric_model": pipe.metric_model.name},
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        LOGGER.warning("binding to %s: the demo is reachable from your network", args.host)
    try:
        app = build_app(runner, model_info=model_info)
        launch_app(app, host=args.host, port=args.port, share=args.share, limits=limits)
    except OSError as exc:
        LOGGER.error("cannot start the server: %s", exc)
        return 2
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    return 0
