"""Metric depth models from ``transformers``: Depth Anything V2 metric, ZoeDepth, Depth Pro.

:class:`TransformersMetricDepth` wraps an ``AutoModelForDepthEstimation`` checkpoint (a Hub
id or a local folder written by ``save_pretrained``) as a :class:`MetricDepthModel`. Three
output conventions are handled:

* DPT family (Depth Anything V2 metric, DPT-DINOv2, GLPN, ...): ``predicted_depth`` is
  already z-depth in metres at the network's resolution; it is resized to the input.
* ZoeDepth: metres as well, but the processor reflect-pads the image before resizing, so
  the padding is cut off the prediction again.
* Depth Pro: the network predicts *canonical* inverse depth plus a horizontal field of
  view; metric depth is ``f_px / (W * inv)`` with ``f_px = 0.5 W / tan(fov / 2)``, or
  with ``f_px = fx`` when the caller passes intrinsics.

The image processor of DPT and ZoeDepth checkpoints is used for the preprocessing (with
``do_rescale=False``, as inputs are already in ``[0, 1]``). Depth Pro's processor needs
torchvision, which sharpdepth does not depend on, and ZoeDepth's padding removal in
``post_process_depth_estimation`` needs it too; both steps are therefore done here in
torch, following the processors' documented behaviour and reading their settings
(size, mean, std, padding) from the checkpoint's ``preprocessor_config.json``.

``transformers`` itself is imported only inside functions, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sharpdepth.geometry import intrinsics_from_focal
from sharpdepth.models.metric.base import MetricDepthModel, MetricDepthPrediction
from sharpdepth.runtime import resolve_device, resolve_dtype
from sharpdepth.weights import check_weight_folder, loading_errors

LOGGER = logging.getLogger(__name__)

#: ``config.model_type`` of the two checkpoints that need their own output handling.
DEPTH_PRO_TYPE = "depth_pro"
ZOEDEPTH_TYPE = "zoedepth"

#: Depth Pro preprocessing defaults (``DepthProImageProcessor``), used when a checkpoint
#: has no ``preprocessor_config.json`` values for them.
_DEPTH_PRO_DEFAULT_SIZE = (1536, 1536)
_DEPTH_PRO_DEFAULT_MEAN = (0.5, 0.5, 0.5)
_DEPTH_PRO_DEFAULT_STD = (0.5, 0.5, 0.5)
#: Bounds on Depth Pro's metric inverse depth (1/m), as in transformers' post-processing.
_INVERSE_DEPTH_RANGE = (1e-4, 1e4)
#: Horizontal fields of view (degrees) outside this range are clamped into it.
_FOV_RANGE = (1.0, 179.0)

#: Model types whose public checkpoints are mostly *relative* (affine-invariant) depth.
_MOSTLY_RELATIVE_TYPES = {"dpt"}


def check_metric_config(config: Any) -> None:
    """Raise ``ValueError`` if a transformers depth config describes a relative-depth model.

    Depth Anything (V1 and V2) checkpoints carry ``depth_estimation_type``; the
    ``"relative"`` ones predict affine-invariant disparity, not metres, and cannot be f_D.
    """
    kind = getattr(config, "depth_estimation_type", None)
    if kind == "relative":
        model_type = getattr(config, "model_type", "depth")
        raise ValueError(
            f"this {model_type} checkpoint is a relative depth model "
            "(config.depth_estimation_type='relative'): it predicts affine-invariant "
            "disparity, not metric depth in metres. Use a metric checkpoint instead, e.g. "
            "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf "
            "(registry name depth-anything-v2-metric-indoor-small)."
        )
    if getattr(config, "model_type", None) in _MOSTLY_RELATIVE_TYPES:
        LOGGER.warning(
            "%s checkpoints such as Intel/dpt-large predict relative inverse depth, not "
            "metres; make sure this one is a metric model (e.g. a DPT-DINOv2 NYU/KITTI head)",
            config.model_type,
        )


class TransformersMetricDepth(MetricDepthModel):
    """A transformers depth-estimation model used as the metric depth model f_D.

    Build it with :meth:`from_pretrained`, or directly from an already-built model and its
    image processor (tests build tiny random-weight models this way).

    Args:
        model: a ``*ForDepthEstimation`` transformers model (Depth Anything, DPT, ZoeDepth,
            Depth Pro, ...) whose ``predicted_depth`` is metric.
        processor: its image processor. Required for DPT-family and ZoeDepth models. For
            Depth Pro it may be a ``DepthProImageProcessor``, a mapping holding its
            ``preprocessor_config.json`` values, or ``None`` for the stock settings.
        name: name used in logs and metadata; defaults to the model's ``name_or_path``.
        device: ``"auto"``/``None``, ``"cpu"``, ``"cuda"``, ... (see :func:`resolve_device`).
        dtype: network dtype (see :func:`resolve_dtype`); depth is always returned float32.

    Raises:
        ValueError: the checkpoint is a relative depth model, or a needed processor is missing.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any | None = None,
        name: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> None:
        config = getattr(model, "config", None)
        if config is None:
            raise TypeError("TransformersMetricDepth needs a transformers model with a .config")
        check_metric_config(config)
        self.model_type: str = str(getattr(config, "model_type", ""))
        if processor is None and self.model_type != DEPTH_PRO_TYPE:
            raise ValueError(
                f"a {self.model_type or 'transformers'} depth model needs its image processor "
                "(the checkpoint's preprocessor_config.json)"
            )
        self.processor = processor
        self.name = name or str(getattr(config, "_name_or_path", "") or self.model_type)
        self.accepts_intrinsics = self.model_type == DEPTH_PRO_TYPE
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.eval().to(device=self.device, dtype=self.dtype)
        LOGGER.debug(
            "metric model %s (%s) on %s/%s", self.name, self.model_type, self.device, self.dtype
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        **hf_kwargs: Any,
    ) -> TransformersMetricDepth:
        """Load a depth model and its image processor from a Hub id or a local folder.

        Args:
            name_or_path: Hub id (``"depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"``)
                or a folder with ``config.json``, weights and ``preprocessor_config.json``.
            device: see :func:`resolve_device`.
            dtype: see :func:`resolve_dtype`.
            **hf_kwargs: passed to transformers' ``from_pretrained`` (``revision``,
                ``cache_dir``, ``local_files_only``, ``token``, ...).

        Raises:
            ValueError: the checkpoint is a relative depth model.
        """
        from transformers import AutoConfig, AutoModelForDepthEstimation

        local = Path(name_or_path).expanduser().is_dir()
        if local:
            check_weight_folder(Path(name_or_path).expanduser())
        # a Hub id's OSError means "cannot fetch it": the caller reports that itself
        what, keep = f"metric model {name_or_path}", () if local else (OSError,)
        with loading_errors(what, keep=keep):
            config = AutoConfig.from_pretrained(name_or_path, **hf_kwargs)
        check_metric_config(config)
        with loading_errors(what, keep=keep):
            processor = _load_processor(name_or_path, config.model_type, hf_kwargs)
            model = AutoModelForDepthEstimation.from_pretrained(
                name_or_path, config=config, **hf_kwargs
            )
        return cls(model, processor, name=str(name_or_path), device=device, dtype=dtype)

    @torch.no_grad()
    def predict(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None = None
    ) -> MetricDepthPrediction:
        """Predict metric depth.

        Args:
            image: ``[B, 3, H, W]`` float RGB in ``[0, 1]``.
            intrinsics: ``[B, 3, 3]`` pinhole matrices in pixels of ``image``; used only by
                Depth Pro (its ``fx`` replaces the estimated focal length).

        Returns:
            depth ``[B, 1, H, W]`` float32 in metres; intrinsics ``[B, 3, 3]`` for Depth Pro
            (the estimated ones, or ``intrinsics`` when given), else ``None``.
        """
        if self.model_type == DEPTH_PRO_TYPE:
            return self._predict_depth_pro(image, intrinsics)
        size = (int(image.shape[-2]), int(image.shape[-1]))
        pixel_values = self._preprocess_with_processor(image)
        predicted = self.model(pixel_values=pixel_values).predicted_depth.float()
        if predicted.ndim == 3:
            predicted = predicted[:, None]
        if self.model_type == ZOEDEPTH_TYPE and bool(_get(self.processor, "do_pad", True)):
            depth = _unpad_zoedepth(predicted, size)
        else:
            depth = _resize(predicted, size)
        return MetricDepthPrediction(depth=depth)

    def _preprocess_with_processor(self, image: torch.Tensor) -> torch.Tensor:
        """Run the checkpoint's image processor on ``[B, 3, H, W]`` floats in ``[0, 1]``.

        Returns ``pixel_values`` ``[B, 3, h, w]`` on :attr:`device` in :attr:`dtype`.
        """
        assert self.processor is not None
        batch = image.detach().to(device="cpu", dtype=torch.float32).clamp(0.0, 1.0)
        inputs = self.processor(images=batch, do_rescale=False, return_tensors="pt")
        pixel_values: torch.Tensor = inputs["pixel_values"]
        return pixel_values.to(device=self.device, dtype=self.dtype)

    def _predict_depth_pro(
        self, image: torch.Tensor, intrinsics: torch.Tensor | None
    ) -> MetricDepthPrediction:
        """Depth Pro: canonical inverse depth + focal length -> metric depth ``[B, 1, H, W]``."""
        b, _, h, w = image.shape
        x = image.to(device=self.device, dtype=torch.float32)
        if bool(_get(self.processor, "do_normalize", True)):
            mean = _channel_vector(_get(self.processor, "image_mean", _DEPTH_PRO_DEFAULT_MEAN), x)
            std = _channel_vector(_get(self.processor, "image_std", _DEPTH_PRO_DEFAULT_STD), x)
            x = (x - mean) / std
        if bool(_get(self.processor, "do_resize", True)):
            net_size = _size_hw(_get(self.processor, "size", None), _DEPTH_PRO_DEFAULT_SIZE)
            x = F.interpolate(x, size=net_size, mode="bilinear", align_corners=False)
        out = self.model(pixel_values=x.to(self.dtype))
        canonical = out.predicted_depth.float()
        if canonical.ndim == 3:
            canonical = canonical[:, None]
        canonical = _resize(canonical, (h, w))

        if intrinsics is not None:
            focal = intrinsics[:, 0, 0].to(device=canonical.device, dtype=torch.float32)
            if not bool((focal > 0).all()):
                raise ValueError(f"intrinsics must have fx > 0, got {focal.tolist()}")
            used: torch.Tensor | None = intrinsics.to(device=canonical.device, dtype=torch.float32)
        elif out.field_of_view is not None:
            fov = out.field_of_view.float().reshape(b)
            if not bool(((fov > _FOV_RANGE[0]) & (fov < _FOV_RANGE[1])).all()):
                LOGGER.warning(
                    "%s estimated a field of view of %s degrees; clamping to %s",
                    self.name,
                    [round(v, 2) for v in fov.tolist()],
                    _FOV_RANGE,
                )
                fov = fov.clamp(*_FOV_RANGE)
            focal = depth_pro_focal_from_fov(fov, w)
            used = torch.stack([intrinsics_from_focal(float(f), w, h) for f in focal]).to(
                canonical.device
            )
        else:
            LOGGER.warning(
                "%s has no field-of-view head and no intrinsics were given: assuming a "
                "focal length equal to the image width, so the depth scale is a guess",
                self.name,
            )
            focal = torch.full((b,), float(w), device=canonical.device)
            used = None
        depth = depth_pro_metric_depth(canonical, focal, w)
        return MetricDepthPrediction(depth=depth, intrinsics=used)


def depth_pro_focal_from_fov(fov_degrees: torch.Tensor, width: int) -> torch.Tensor:
    """Focal length in pixels from Depth Pro's horizontal field of view.

    Args:
        fov_degrees: ``[B]`` horizontal field of view in degrees.
        width: image width in pixels.

    Returns:
        ``[B]`` focal length ``0.5 * W / tan(fov / 2)`` in pixels.
    """
    return 0.5 * width / torch.tan(0.5 * torch.deg2rad(fov_degrees))


def depth_pro_metric_depth(
    canonical_inverse: torch.Tensor, focal_px: torch.Tensor, width: int
) -> torch.Tensor:
    """Convert Depth Pro's canonical inverse depth to metric depth.

    Args:
        canonical_inverse: ``[B, 1, H, W]`` canonical inverse depth (network output).
        focal_px: ``[B]`` focal length in pixels of an image ``width`` pixels wide.
        width: image width in pixels.

    Returns:
        ``[B, 1, H, W]`` depth in metres, ``f_px / (W * inv)``, with the inverse depth
        clamped to ``[1e-4, 1e4]`` 1/m as transformers does.
    """
    inverse = canonical_inverse * (width / focal_px.reshape(-1, 1, 1, 1))
    return 1.0 / inverse.clamp(*_INVERSE_DEPTH_RANGE)


def _unpad_zoedepth(predicted: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo ZoeDepth's reflect padding: ``[B, 1, h, w]`` prediction -> ``[B, 1, H, W]`` metres.

    The processor pads each side by ``int(sqrt(H / 2) * 3)`` rows and ``int(sqrt(W / 2) * 3)``
    columns before resizing, so the prediction is resized to the padded source size and
    the padding cut off (as ``ZoeDepthImageProcessor.post_process_depth_estimation`` does).
    """
    h, w = size
    pad_h = int(math.sqrt(h / 2) * 3)
    pad_w = int(math.sqrt(w / 2) * 3)
    padded = _resize(predicted, (h + 2 * pad_h, w + 2 * pad_w))
    return padded[..., pad_h : pad_h + h, pad_w : pad_w + w]


def _resize(depth: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize ``[B, 1, h, w]`` depth to ``size``.

    Bilinear rather than the processors' bicubic, so that depth cannot overshoot below
    zero next to sharp edges.
    """
    if tuple(depth.shape[-2:]) == size:
        return depth
    return F.interpolate(depth, size=size, mode="bilinear", align_corners=False)


def _load_processor(name_or_path: str, model_type: str, hf_kwargs: dict[str, Any]) -> Any:
    """The checkpoint's image processor, or for Depth Pro its settings as a dict.

    ``DepthProImageProcessor`` cannot be built without torchvision; only its size, mean
    and std are needed, so they are read from ``preprocessor_config.json`` directly.
    """
    if model_type == DEPTH_PRO_TYPE:
        from transformers.image_processing_base import ImageProcessingMixin

        try:
            settings, _ = ImageProcessingMixin.get_image_processor_dict(name_or_path, **hf_kwargs)
        except OSError:
            LOGGER.warning(
                "%s has no preprocessor_config.json; using Depth Pro's stock preprocessing",
                name_or_path,
            )
            return None
        return settings
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(name_or_path, **hf_kwargs)


def _get(source: Any, key: str, default: Any) -> Any:
    """Setting ``key`` of a processor object or a settings mapping (``default`` if absent)."""
    if source is None:
        return default
    value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
    return default if value is None else value


def _size_hw(size: Any, default: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` from a processor ``size`` (dict, ``SizeDict`` or int)."""
    if size is None:
        return default
    if isinstance(size, int):
        return (size, size)
    height = size.get("height") if isinstance(size, Mapping) else getattr(size, "height", None)
    width = size.get("width") if isinstance(size, Mapping) else getattr(size, "width", None)
    if height is None or width is None:
        raise ValueError(f"expected an image processor size with height and width, got {size!r}")
    return (int(height), int(width))


def _channel_vector(values: Any, like: torch.Tensor) -> torch.Tensor:
    """Per-channel constants as a ``[1, 3, 1, 1]`` tensor on ``like``'s device."""
    vec = torch.as_tensor(values, dtype=torch.float32, device=like.device).reshape(-1)
    if vec.numel() == 1:
        vec = vec.expand(3)
    return vec.reshape(1, -1, 1, 1)
