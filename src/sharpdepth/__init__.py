"""sharpdepth: sharp metric depth from one image (SharpDepth, Pham et al., CVPR 2025).

Quick start::

    from sharpdepth import SharpDepthPipeline

    pipe = SharpDepthPipeline.from_pretrained(CHECKPOINT, metric_model="unidepth-v2-vitl14")
    out = pipe("photo.jpg", seed=0)
    out.depth  # [1, H, W] float32, metres

Heavy modules are imported on first use, so ``import sharpdepth`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DiffusionDepthModel",
    "MetricDepthModel",
    "SharpDepthOutput",
    "SharpDepthPipeline",
    "__version__",
    "load_metric_model",
]

_LAZY = {
    "SharpDepthPipeline": "sharpdepth.pipeline",
    "SharpDepthOutput": "sharpdepth.pipeline",
    "DiffusionDepthModel": "sharpdepth.models.diffusion",
    "MetricDepthModel": "sharpdepth.models.metric",
    "load_metric_model": "sharpdepth.models.metric",
}

if TYPE_CHECKING:
    from sharpdepth.models.diffusion import DiffusionDepthModel
    from sharpdepth.models.metric import MetricDepthModel, load_metric_model
    from sharpdepth.pipeline import SharpDepthOutput, SharpDepthPipeline


def __getattr__(name: str) -> Any:
    """Import the public classes lazily."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sharpdepth' has no attribute {name!r}")
