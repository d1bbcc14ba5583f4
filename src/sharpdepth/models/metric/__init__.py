"""Metric depth models (the f_D role) behind one interface.

:func:`load_metric_model` turns what a user names (a registry name such as
``unidepth-v2-vitl14``, ``hf:<hub id or folder>``, ``unidepth:<hub id>``, a local
transformers folder, ``nano``) or passes (a :class:`MetricDepthModel`, a function, a
``torch.nn.Module``) into a :class:`MetricDepthModel`.

Heavy libraries (transformers, unidepth) are imported only when a model is loaded, so
importing this package costs no more than importing torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from sharpdepth.errors import CheckpointError
from sharpdepth.models.metric.base import (
    CallableMetricModel,
    MetricDepthModel,
    MetricDepthPrediction,
    check_metric_depth,
)
from sharpdepth.models.metric.bundled import load_bundled_metric_model, load_nano_metric_model
from sharpdepth.models.metric.nano_net import is_nano_metric_folder
from sharpdepth.models.metric.transformers_models import TransformersMetricDepth
from sharpdepth.models.metric.unidepth import UniDepthMetricDepth
from sharpdepth.runtime import resolve_device

LOGGER = logging.getLogger(__name__)

__all__ = [
    "METRIC_MODELS",
    "CallableMetricModel",
    "MetricDepthModel",
    "MetricDepthPrediction",
    "MetricModelSpec",
    "TransformersMetricDepth",
    "UniDepthMetricDepth",
    "check_metric_depth",
    "list_metric_models",
    "load_bundled_metric_model",
    "load_metric_model",
    "spec_runs_code",
]

MetricModelKind = Literal["transformers", "unidepth", "bundled"]

#: Prefixes of explicit string specs.
HF_PREFIX = "hf:"
UNIDEPTH_PREFIX = "unidepth:"
_BUNDLED_NAMES = ("nano", "bundled")


@dataclass(frozen=True)
class MetricModelSpec:
    """A registry entry: how to load one named metric depth model.

    Attributes:
        kind: ``"transformers"`` (``AutoModelForDepthEstimation``), ``"unidepth"`` (the
            optional ``unidepth`` package) or ``"bundled"`` (sharpdepth's nano model).
        hub_id: Hugging Face Hub id of the weights (``None`` for the bundled model).
        description: one line for ``--help`` and docs.
        accepts_intrinsics: whether known camera intrinsics change the prediction.
    """

    kind: MetricModelKind
    hub_id: str | None
    description: str
    accepts_intrinsics: bool = False


def _depth_anything_entries() -> dict[str, MetricModelSpec]:
    """Registry entries of the six Depth Anything V2 metric checkpoints."""
    entries: dict[str, MetricModelSpec] = {}
    for scene, dataset, max_depth in (
        ("indoor", "Hypersim", 20),
        ("outdoor", "Virtual KITTI 2", 80),
    ):
        for size in ("small", "base", "large"):
            hub_id = f"depth-anything/Depth-Anything-V2-Metric-{scene.title()}-{size.title()}-hf"
            entries[f"depth-anything-v2-metric-{scene}-{size}"] = MetricModelSpec(
                kind="transformers",
                hub_id=hub_id,
                description=(
                    f"Depth Anything V2 metric, {scene} ({dataset} fine-tune, "
                    f"up to {max_depth} m), ViT-{size[0].upper()}"
                ),
            )
    return entries


#: Named metric depth models known to :func:`load_metric_model`.
METRIC_MODELS: dict[str, MetricModelSpec] = {
    "unidepth-v1-vitl14": MetricModelSpec(
        "unidepth", "lpiccinelli/unidepth-v1-vitl14", "UniDepth V1, ViT-L/14", True
    ),
    "unidepth-v1-cnvnxtl": MetricModelSpec(
        "unidepth", "lpiccinelli/unidepth-v1-cnvnxtl", "UniDepth V1, ConvNeXt-L", True
    ),
    "unidepth-v2-vits14": MetricModelSpec(
        "unidepth", "lpiccinelli/unidepth-v2-vits14", "UniDepth V2, ViT-S/14", True
    ),
    "unidepth-v2-vitb14": MetricModelSpec(
        "unidepth", "lpiccinelli/unidepth-v2-vitb14", "UniDepth V2, ViT-B/14", True
    ),
    "unidepth-v2-vitl14": MetricModelSpec(
        "unidepth", "lpiccinelli/unidepth-v2-vitl14", "UniDepth V2, ViT-L/14", True
    ),
    **_depth_anything_entries(),
    "depth-pro": MetricModelSpec(
        "transformers",
        "apple/DepthPro-hf",
        "Apple Depth Pro (estimates the field of view; uses fx when intrinsics are given)",
        True,
    ),
    "zoedepth-nyu": MetricModelSpec(
        "transformers", "Intel/zoedepth-nyu", "ZoeDepth, NYU Depth v2 (indoor)"
    ),
    "zoedepth-kitti": MetricModelSpec(
        "transformers", "Intel/zoedepth-kitti", "ZoeDepth, KITTI (driving)"
    ),
    "zoedepth-nyu-kitti": MetricModelSpec(
        "transformers", "Intel/zoedepth-nyu-kitti", "ZoeDepth, NYU + KITTI (auto-routed)"
    ),
    "nano": MetricModelSpec(
        "bundled", None, "sharpdepth's bundled nano metric model (trained on its synthetic engine)"
    ),
}


def list_metric_models() -> list[str]:
    """Names of the registered metric depth models, in registry order."""
    return list(METRIC_MODELS)


MetricModelLike = MetricDepthModel | Callable[..., Any] | torch.nn.Module | str | os.PathLike[str]


def load_metric_model(
    spec: MetricModelLike,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> MetricDepthModel:
    """Turn ``spec`` into a :class:`MetricDepthModel`.

    Args:
        spec: one of

            * a :class:`MetricDepthModel`: returned as is (moved to ``device`` if given);
            * a function or ``torch.nn.Module``: wrapped in :class:`CallableMetricModel`
              (moved to ``device`` if given);
            * a registry name from :func:`list_metric_models` (``nano``/``bundled`` is
              sharpdepth's own model);
            * ``"hf:<hub id or folder>"``: any transformers depth-estimation checkpoint;
            * ``"unidepth:<hub id>"``: UniDepth V1/V2 (version guessed from the id);
            * a local folder with a transformers ``config.json``.
        device: ``"auto"``/``None``, ``"cpu"``, ``"cuda"``, ... (see
            :func:`sharpdepth.runtime.resolve_device`).
        dtype: network dtype (see :func:`sharpdepth.runtime.resolve_dtype`).

    Raises:
        ValueError: unknown name (the message lists the known ones) or a relative model.
        CheckpointError: a folder without ``config.json``, or the unshipped nano model.
        MissingDependencyError: UniDepth requested without the ``unidepth`` package.
    """
    if isinstance(spec, MetricDepthModel):
        return spec.to(resolve_device(device)) if device is not None else spec
    if isinstance(spec, str | os.PathLike):
        model = _load_from_string(os.fspath(spec), device, dtype)
        model.spec = os.fspath(spec)
        return model
    if callable(spec):
        wrapped = CallableMetricModel(spec)
        return wrapped.to(resolve_device(device)) if device is not None else wrapped
    raise TypeError(
        "metric model must be a MetricDepthModel, a callable, a torch.nn.Module or a name; "
        f"got {type(spec).__name__}"
    )


def _load_from_string(
    spec: str, device: str | torch.device | None, dtype: str | torch.dtype | None
) -> MetricDepthModel:
    """Resolve a string spec (see :func:`load_metric_model`)."""
    key = spec.strip()
    if key.lower() in _BUNDLED_NAMES:
        return load_bundled_metric_model(device=device)
    if key in METRIC_MODELS:
        return _load_registered(key, METRIC_MODELS[key], device, dtype)
    if key.startswith(HF_PREFIX):
        return _load_transformers(key[len(HF_PREFIX) :], device, dtype)
    if key.startswith(UNIDEPTH_PREFIX):
        return UniDepthMetricDepth.from_pretrained(
            key[len(UNIDEPTH_PREFIX) :], device=device, dtype=dtype
        )
    path = Path(key).expanduser()
    if path.is_dir():
        if is_nano_metric_folder(path):
            return load_nano_metric_model(path, device=device)
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"{path} is a folder but has no config.json, so it is not a transformers "
                "depth model; pass a registry name, hf:<hub id>, unidepth:<hub id> or a "
                "folder written by save_pretrained"
            )
        return _load_transformers(str(path), device, dtype)
    if _looks_like_import_spec(key):
        return _load_user_object(key, device)
    raise ValueError(
        f"unknown metric model {spec!r}. Known names: {', '.join(list_metric_models())}; "
        f"or use {HF_PREFIX}<hub id or folder>, {UNIDEPTH_PREFIX}<hub id>, a local "
        "transformers model folder, or module:attribute / file.py:attribute for your own model"
    )


def spec_runs_code(spec: str | os.PathLike[str]) -> bool:
    """Whether :func:`load_metric_model` would import code to load ``spec``: a
    ``module:attribute`` or ``file.py:attribute`` spec (not a registry name, a ``hf:`` /
    ``unidepth:`` id or an existing folder, which load weights only)."""
    key = os.fspath(spec).strip()
    if key.lower() in _BUNDLED_NAMES or key in METRIC_MODELS:
        return False
    if key.startswith((HF_PREFIX, UNIDEPTH_PREFIX)) or Path(key).expanduser().is_dir():
        return False
    return _looks_like_import_spec(key)


def _looks_like_import_spec(key: str) -> bool:
    """``package.module:attr`` or ``path/to/file.py:attr`` (not a Windows drive letter)."""
    target, sep, attr = key.rpartition(":")
    return bool(sep) and len(target) > 1 and attr.isidentifier()


def _load_user_object(key: str, device: str | torch.device | None) -> MetricDepthModel:
    """Import a user's metric model from ``module:attr`` or ``file.py:attr``.

    The attribute may be a :class:`MetricDepthModel`, a callable model or
    ``torch.nn.Module`` instance, or a class / zero-argument factory returning one
    (it is called when it is a class or a function taking no arguments).
    """
    import importlib
    import importlib.util
    import inspect

    target, _, attr = key.rpartition(":")
    try:
        if target.endswith(".py"):
            file = Path(target).expanduser()
            if not file.is_file():
                raise FileNotFoundError(f"no such file {file}")
            module_spec = importlib.util.spec_from_file_location(
                f"_sharpdepth_user_{file.stem}", file
            )
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot import {file}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        obj = getattr(module, attr)
    except (ImportError, FileNotFoundError, AttributeError) as exc:
        raise ValueError(f"cannot load metric model {key!r}: {exc}") from exc
    if inspect.isclass(obj) or (inspect.isfunction(obj) and not inspect.signature(obj).parameters):
        obj = obj()
    model = load_metric_model(obj, device=device)
    if isinstance(model, CallableMetricModel) and model.name in ("forward", "<lambda>"):
        model.name = key
    return model


def _load_registered(
    name: str,
    entry: MetricModelSpec,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
) -> MetricDepthModel:
    """Load a registry entry."""
    LOGGER.info("loading metric model %s (%s)", name, entry.hub_id)
    if entry.kind == "bundled" or entry.hub_id is None:
        return load_bundled_metric_model(device=device)
    if entry.kind == "unidepth":
        model: MetricDepthModel = UniDepthMetricDepth.from_pretrained(
            entry.hub_id, device=device, dtype=dtype
        )
    else:
        model = _load_transformers(entry.hub_id, device, dtype)
    model.name = name
    return model


def _load_transformers(
    name_or_path: str, device: str | torch.device | None, dtype: str | torch.dtype | None
) -> MetricDepthModel:
    """Load a transformers depth checkpoint (Hub id or folder)."""
    if not name_or_path:
        raise ValueError(f"{HF_PREFIX} needs a Hub id or a folder after it")
    try:
        return TransformersMetricDepth.from_pretrained(name_or_path, device=device, dtype=dtype)
    except OSError as exc:  # transformers raises OSError for missing / unreachable repos
        reason = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            f"metric model {name_or_path!r}: not a local folder and cannot be fetched from the "
            f"Hugging Face Hub ({reason})"
        ) from exc
