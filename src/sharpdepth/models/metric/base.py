"""The one small interface every metric depth model (the f_D role) is used through.

A metric depth model maps an RGB image, optionally with known camera intrinsics, to
depth in metres, and may also estimate the intrinsics. Everything in sharpdepth
(inference, training, evaluation) talks to f_D only through :class:`MetricDepthModel`.
"""

from __future__ import annotations

import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from sharpdepth.errors import InvalidMetricDepthError

LOGGER = logging.getLogger(__name__)


@dataclass
class MetricDepthPrediction:
    """What a metric depth model returns for a batch.

    Attributes:
        depth: ``[B, 1, H, W]`` float32, z-depth in metres at the input image's size.
        intrinsics: ``[B, 3, 3]`` float32 pinhole matrices in pixels of the input
            image, when the model estimates (or was given) them; else ``None``.
    """

    depth: torch.Tensor
    intrinsics: torch.Tensor | None = None


class MetricDepthModel(ABC):
    """Base class of metric depth models: ``image [+ intrinsics] -> depth in metres``.

    Subclasses implement :meth:`predict`; callers use ``model(image, intrinsics)``,
    which also checks the output's shape. ``accepts_intrinsics`` says whether known
    intrinsics change the prediction (UniDepth, Depth Pro) or are ignored.
    """

    #: Short human-readable name, used in logs and output metadata.
    name: str = "metric-model"
    #: Whether :meth:`predict` uses the ``intrinsics`` argument.
    accepts_intrinsics: bool = False
    #: The string it was loaded from (registry name, Hub id, ...), recorded in saved
    #: pipelines; ``None`` for objects passed in directly.
    spec: str | None = None

    @abstractmethod
    def predict(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Predict metric depth.

        Args:
            image: ``[B, 3, H, W]`` float32 RGB in ``[0, 1]`` on :attr:`device`.
            intrinsics: optional ``[B, 3, 3]`` float32 pinhole matrices in pixels of
                ``image``; models that cannot use them ignore them.

        Returns:
            :class:`MetricDepthPrediction` with depth ``[B, 1, H, W]`` in metres.
        """

    def to(self, device: torch.device | str) -> MetricDepthModel:
        """Move the model (its ``model`` attribute, if a ``torch.nn.Module``) to ``device``."""
        self.device = torch.device(device)
        network = getattr(self, "model", None)
        if isinstance(network, torch.nn.Module):
            network.to(self.device)
        return self

    device: torch.device = torch.device("cpu")

    def __call__(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Run :meth:`predict` without gradients and validate the output's shape."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"metric model input must be [B, 3, H, W], got {tuple(image.shape)}")
        with torch.no_grad():
            pred = self.predict(image, intrinsics if self.accepts_intrinsics else None)
        return _standardize(pred, image)


def _standardize(pred: MetricDepthPrediction, image: torch.Tensor) -> MetricDepthPrediction:
    """Bring a prediction to ``[B, 1, H, W]`` float32 depth and ``[B, 3, 3]`` intrinsics."""
    b, _, h, w = image.shape
    depth = pred.depth
    if depth.ndim == 2:
        depth = depth[None, None]
    elif depth.ndim == 3:
        depth = depth[:, None]
    if depth.ndim != 4 or depth.shape[1] != 1 or depth.shape[0] != b:
        raise ValueError(
            f"metric model returned depth of shape {tuple(pred.depth.shape)}; "
            f"expected [B, 1, H, W] with B={b}"
        )
    if depth.shape[-2:] != (h, w):
        depth = torch.nn.functional.interpolate(
            depth.float(), size=(h, w), mode="bilinear", align_corners=False
        )
    intrinsics = pred.intrinsics
    if intrinsics is not None:
        intrinsics = intrinsics.to(device=depth.device, dtype=torch.float32)
        if intrinsics.ndim == 2:
            intrinsics = intrinsics[None].expand(b, 3, 3)
        if intrinsics.shape != (b, 3, 3):
            raise ValueError(
                f"metric model returned intrinsics of shape {tuple(intrinsics.shape)}; "
                f"expected [{b}, 3, 3]"
            )
    return MetricDepthPrediction(depth=depth.float(), intrinsics=intrinsics)


class CallableMetricModel(MetricDepthModel):
    """Wrap a user's function or ``torch.nn.Module`` as a :class:`MetricDepthModel`.

    The callable receives ``image`` (``[B, 3, H, W]`` float32 in ``[0, 1]``) and, if its
    signature has a second parameter (or ``accepts_intrinsics=True`` is given), the
    ``[B, 3, 3]`` intrinsics or ``None``. It may return a depth tensor (``[B, H, W]`` or
    ``[B, 1, H, W]``, metres), a ``(depth, intrinsics)`` tuple, a mapping with keys
    ``"depth"`` and optionally ``"intrinsics"``, or a :class:`MetricDepthPrediction`.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        accepts_intrinsics: bool | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"metric model must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", type(fn).__name__))
        if accepts_intrinsics is None:
            accepts_intrinsics = _takes_second_argument(fn)
        self.accepts_intrinsics = accepts_intrinsics
        if isinstance(fn, torch.nn.Module):
            fn.eval()
            try:
                self.device = next(fn.parameters()).device
            except StopIteration:
                self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> CallableMetricModel:
        """Move a wrapped module (if any) to ``device``."""
        self.device = torch.device(device)
        if isinstance(self.fn, torch.nn.Module):
            self.fn.to(self.device)
        return self

    def predict(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Call the wrapped function and convert what it returns."""
        out = self.fn(image, intrinsics) if self.accepts_intrinsics else self.fn(image)
        return _coerce_output(out)


def _takes_second_argument(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called with two positional arguments."""
    target = fn.forward if isinstance(fn, torch.nn.Module) else fn
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _coerce_output(out: Any) -> MetricDepthPrediction:
    """Accept the return types documented in :class:`CallableMetricModel`."""
    if isinstance(out, MetricDepthPrediction):
        return out
    if isinstance(out, torch.Tensor):
        return MetricDepthPrediction(depth=out)
    if isinstance(out, Mapping):
        if "depth" not in out:
            raise ValueError("metric model returned a mapping without a 'depth' key")
        return MetricDepthPrediction(depth=out["depth"], intrinsics=out.get("intrinsics"))
    if isinstance(out, tuple | list) and len(out) == 2:
        return MetricDepthPrediction(depth=out[0], intrinsics=out[1])
    raise TypeError(
        "metric model must return a tensor, (depth, intrinsics), a mapping with 'depth' "
        f"or a MetricDepthPrediction; got {type(out).__name__}"
    )


def check_metric_depth(
    depth: torch.Tensor, allow_constant: bool = False, names: list[str] | None = None
) -> None:
    """Raise :class:`InvalidMetricDepthError` if a metric depth map is unusable.

    Args:
        depth: ``[B, 1, H, W]`` depth in metres.
        allow_constant: if ``False``, a map whose values are all equal (to a relative
            tolerance of 1e-6) is rejected; if ``True`` it is only logged.
        names: optional per-image names for the error message.

    Rejects, per image: any NaN or inf, and maps with no positive value.
    """
    for i in range(depth.shape[0]):
        d = depth[i]
        if names is not None and i < len(names):
            label = f"{names[i]}: "
        else:
            label = f"image {i} of the batch: " if depth.shape[0] > 1 else ""
        if not torch.isfinite(d).all():
            n_bad = int((~torch.isfinite(d)).sum())
            raise InvalidMetricDepthError(
                f"{label}metric depth model returned {n_bad} NaN/inf values"
            )
        dmax = float(d.max())
        if dmax <= 0:
            raise InvalidMetricDepthError(
                f"{label}metric depth model returned no positive depth (max {dmax:g} m)"
            )
        if float(d.max() - d.min()) <= 1e-6 * abs(dmax):
            msg = f"{label}metric depth model returned a constant map ({dmax:g} m)"
            if not allow_constant:
                raise InvalidMetricDepthError(msg)
            LOGGER.warning("%s; the result will carry no depth structure", msg)
