"""sharpdepth's own bundled "nano" metric depth model (the f_D of the nano family).

The weights ship as package data under ``sharpdepth/assets/nano/metric`` (``config.json``
+ ``model.safetensors``, see :mod:`sharpdepth.models.metric.nano_net`) and are reproduced with
``sharpdepth nano train metric``. Any folder in that layout loads the same way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sharpdepth.errors import CheckpointError
from sharpdepth.models.metric.base import MetricDepthModel, MetricDepthPrediction
from sharpdepth.runtime import resolve_device
from sharpdepth.weights import check_weight_folder, loading_errors, read_json_object

if TYPE_CHECKING:
    from sharpdepth.models.metric.nano_net import NanoMetricNet

LOGGER = logging.getLogger(__name__)

_ALTERNATIVES = "depth-anything-v2-metric-indoor-small, unidepth-v2-vits14 or depth-pro"


def bundled_metric_weights_dir() -> Path:
    """The package data folder of the bundled nano metric model (may not exist)."""
    from sharpdepth.assets import bundled_dir

    return bundled_dir("metric")


def bundled_metric_model_available() -> bool:
    """Whether the bundled nano metric model is installed."""
    from sharpdepth.assets import bundled_available

    return bundled_available("metric")


class NanoMetricDepth(MetricDepthModel):
    """:class:`~sharpdepth.models.metric.nano_net.NanoMetricNet` behind the metric-model interface.

    Known intrinsics set the metric scale; without them the network assumes a
    horizontal field of view of ``default_fov_deg`` (the intrinsics are then not
    reported as estimated: :attr:`MetricDepthPrediction.intrinsics` is ``None``).

    Args:
        model: the network.
        default_fov_deg: field of view assumed when no intrinsics are given.
    """

    name = "nano"
    accepts_intrinsics = True

    def __init__(self, model: NanoMetricNet, default_fov_deg: float = 60.0) -> None:
        self.model = model.eval()
        self.default_fov_deg = float(default_fov_deg)

    def predict(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Depth ``[B, 1, H, W]`` in metres for ``[B, 3, H, W]`` RGB in ``[0, 1]``."""
        from sharpdepth.geometry import intrinsics_from_fov

        b, _, h, w = image.shape
        if intrinsics is None:
            k = intrinsics_from_fov(w, h, self.default_fov_deg).expand(b, 3, 3)
        else:
            k = intrinsics.float()
        param = next(self.model.parameters())
        depth = self.model.predict_resized(
            image.to(device=param.device, dtype=torch.float32), k.to(param.device)
        )
        return MetricDepthPrediction(depth=depth, intrinsics=None)


def load_nano_metric_model(
    path: str | os.PathLike[str], device: str | torch.device | None = None
) -> NanoMetricDepth:
    """Load a nano metric model folder (``config.json`` + ``model.safetensors``).

    Raises:
        CheckpointError: missing, corrupt or mismatched files (one line naming the file).
    """
    from sharpdepth.models.metric.nano_net import NanoMetricNet

    root = Path(path).expanduser()
    check_weight_folder(root)
    if (root / "config.json").is_file():
        read_json_object(root / "config.json")
    with loading_errors(f"nano metric model {root}"):
        model = NanoMetricNet.from_pretrained(root)
    wrapped = NanoMetricDepth(model)
    wrapped.to(resolve_device(device))
    LOGGER.info("loaded nano metric model from %s", path)
    return wrapped


def load_bundled_metric_model(device: str | torch.device | None = None) -> MetricDepthModel:
    """Load the bundled nano metric model.

    Args:
        device: where to put the model (see :func:`sharpdepth.runtime.resolve_device`).

    Raises:
        CheckpointError: the package was installed without its model files.
    """
    folder = bundled_metric_weights_dir()
    if not bundled_metric_model_available():
        raise CheckpointError(
            f"the bundled nano metric model is missing from {folder} (was the package "
            "installed without its data files?); reinstall sharpdepth or choose a metric "
            f"model with --metric-model, e.g. {_ALTERNATIVES}"
        )
    return load_nano_metric_model(folder, device=device)
