"""Slot for sharpdepth's own bundled "nano" metric depth model.

The nano model is trained in a later release and will ship as package data under
``sharpdepth/assets/nano/metric``. Until then :func:`load_bundled_metric_model` only checks
for that folder and explains how to pick another metric model.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import torch

from sharpdepth.errors import CheckpointError
from sharpdepth.metric_models.base import MetricDepthModel

LOGGER = logging.getLogger(__name__)

#: Where the bundled weights live, relative to the ``sharpdepth`` package.
BUNDLED_METRIC_SUBDIR = ("assets", "nano", "metric")

_ALTERNATIVES = "depth-anything-v2-metric-indoor-small, unidepth-v2-vits14 or depth-pro"


def bundled_metric_weights_dir() -> Path:
    """The package data folder the bundled nano metric model is looked up in (may not exist)."""
    return Path(str(resources.files("sharpdepth").joinpath(*BUNDLED_METRIC_SUBDIR)))


def bundled_metric_model_available() -> bool:
    """Whether the bundled nano metric model's folder exists and holds any file."""
    folder = bundled_metric_weights_dir()
    return folder.is_dir() and any(p.is_file() for p in folder.iterdir())


def load_bundled_metric_model(device: str | torch.device | None = None) -> MetricDepthModel:
    """Load the bundled nano metric model.

    Args:
        device: where to put the model (see :func:`sharpdepth.runtime.resolve_device`).

    Raises:
        CheckpointError: always in this version: the weights are not shipped yet (or a
            folder is present that this version cannot read).
    """
    folder = bundled_metric_weights_dir()
    if not bundled_metric_model_available():
        raise CheckpointError(
            "the bundled nano metric model is not shipped in this version of sharpdepth yet; "
            f"choose a metric model with --metric-model, e.g. {_ALTERNATIVES} "
            "(sharpdepth.metric_models.list_metric_models() lists them all)"
        )
    LOGGER.debug("found bundled metric model files in %s (device %s)", folder, device)
    raise CheckpointError(
        f"found bundled nano metric model files in {folder}, but this version of sharpdepth "
        f"cannot load them; choose a metric model with --metric-model, e.g. {_ALTERNATIVES}"
    )
