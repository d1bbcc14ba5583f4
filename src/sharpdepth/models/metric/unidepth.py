"""UniDepth V1 / V2 as the metric depth model f_D (optional ``unidepth`` package).

UniDepth is not on PyPI; it is installed from its GitHub repository (see
:data:`UNIDEPTH_INSTALL`). Its ``model.infer(rgb, camera)`` takes ``[B, 3, H, W]`` RGB in
``0..255`` (uint8 is the documented input; the model normalises it itself) and an optional
``[B, 3, 3]`` pinhole matrix (V1: ``intrinsics``; V2: ``camera``, a 3x3 tensor being read as
a pinhole camera), and returns a dict with ``"depth"`` ``[B, 1, H, W]`` in metres at the
input size and ``"intrinsics"`` ``[B, 3, 3]``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import Any, Literal, cast

import torch

from sharpdepth.errors import MissingDependencyError
from sharpdepth.models.metric.base import MetricDepthModel, MetricDepthPrediction
from sharpdepth.runtime import resolve_device, resolve_dtype

LOGGER = logging.getLogger(__name__)

#: The one-line install command shown when ``unidepth`` is missing.
UNIDEPTH_INSTALL = "pip install git+https://github.com/lpiccinelli-eth/UniDepth.git"

UniDepthVersion = Literal["v1", "v2"]


def import_unidepth_models() -> Any:
    """Import and return the ``unidepth.models`` module.

    Raises:
        MissingDependencyError: ``unidepth`` is not installed (the message says how to
            install it), or it is installed but fails to import.
    """
    try:
        return importlib.import_module("unidepth.models")
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "unidepth":
            raise MissingDependencyError(
                f"UniDepth metric models need the 'unidepth' package, which is not on PyPI; "
                f"install it with: {UNIDEPTH_INSTALL}"
            ) from exc
        raise MissingDependencyError(
            f"the 'unidepth' package is installed but cannot be imported ({exc}); "
            f"reinstall it with: {UNIDEPTH_INSTALL}"
        ) from exc


def unidepth_version_from_id(hub_id: str) -> UniDepthVersion:
    """``"v1"`` for ids such as ``lpiccinelli/unidepth-v1-vitl14``, else ``"v2"``."""
    return "v1" if "v1" in hub_id.lower() else "v2"


class UniDepthMetricDepth(MetricDepthModel):
    """A UniDepth V1 or V2 network used as f_D; known intrinsics are passed to it.

    Args:
        model: a loaded ``UniDepthV1`` / ``UniDepthV2`` (anything with ``infer(rgb, K)``).
        name: name used in logs and metadata.
        device: see :func:`resolve_device`.
        dtype: compute dtype (see :func:`resolve_dtype`). The weights stay float32 (UniDepth
            normalises its input in float32); a half dtype on CUDA runs under autocast.
        resolution_level: UniDepth V2's ``resolution_level`` in ``[0, 10)`` (higher is
            finer and slower); ``None`` keeps the model's default.
    """

    accepts_intrinsics = True

    def __init__(
        self,
        model: torch.nn.Module,
        name: str = "unidepth",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        resolution_level: int | None = None,
    ) -> None:
        if not callable(getattr(model, "infer", None)):
            raise TypeError("UniDepthMetricDepth needs a UniDepth model with an infer() method")
        self.name = name
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model: Any = cast(Any, model).eval().to(self.device)
        if resolution_level is not None:
            if not 0 <= resolution_level < 10:
                raise ValueError(f"resolution_level must be in [0, 10), got {resolution_level}")
            self.model.resolution_level = resolution_level

    @classmethod
    def from_pretrained(
        cls,
        hub_id: str,
        version: UniDepthVersion | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        resolution_level: int | None = None,
    ) -> UniDepthMetricDepth:
        """Load UniDepth V1/V2 weights by Hub id, e.g. ``lpiccinelli/unidepth-v2-vitl14``.

        Args:
            hub_id: Hub id or local folder understood by UniDepth's ``from_pretrained``.
            version: ``"v1"`` or ``"v2"``; guessed from ``hub_id`` when ``None``.
            device: see :func:`resolve_device`.
            dtype: see the class docstring.
            resolution_level: see the class docstring.

        Raises:
            MissingDependencyError: ``unidepth`` is not installed.
        """
        version = version or unidepth_version_from_id(hub_id)
        if version not in ("v1", "v2"):
            raise ValueError(f"UniDepth version must be 'v1' or 'v2', got {version!r}")
        models = import_unidepth_models()
        class_name = "UniDepthV1" if version == "v1" else "UniDepthV2"
        model_class = getattr(models, class_name, None)
        if model_class is None:
            raise MissingDependencyError(
                f"the installed 'unidepth' package has no {class_name}; update it with: "
                f"{UNIDEPTH_INSTALL}"
            )
        LOGGER.info("loading %s from %s", class_name, hub_id)
        model = model_class.from_pretrained(hub_id)
        return cls(
            model,
            name=f"unidepth:{hub_id}",
            device=device,
            dtype=dtype,
            resolution_level=resolution_level,
        )

    @torch.no_grad()
    def predict(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Predict metric depth with UniDepth.

        Args:
            image: ``[B, 3, H, W]`` float RGB in ``[0, 1]``.
            intrinsics: optional ``[B, 3, 3]`` pinhole matrices in pixels of ``image``.

        Returns:
            depth ``[B, 1, H, W]`` in metres and intrinsics ``[B, 3, 3]``: the given ones
            when ``intrinsics`` is passed, else UniDepth's estimate.
        """
        rgb = (image.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).to(self.device)
        camera = None
        if intrinsics is not None:
            camera = intrinsics.detach().to(device=self.device, dtype=torch.float32)
        with self._autocast():
            out = self.model.infer(rgb) if camera is None else self.model.infer(rgb, camera)
        if "depth" not in out:
            raise ValueError("UniDepth returned no 'depth'")
        estimated = out.get("intrinsics", out.get("K"))
        used = camera if camera is not None else estimated
        return MetricDepthPrediction(depth=out["depth"].float(), intrinsics=used)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to :attr:`dtype` on CUDA for half dtypes; a no-op otherwise."""
        if self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast(device_type="cuda", dtype=self.dtype)
        return contextlib.nullcontext()
