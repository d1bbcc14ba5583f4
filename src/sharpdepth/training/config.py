"""Training configuration: dataclasses with documented defaults, YAML files with inheritance.

A YAML file may name a parent with ``inherit: other.yaml`` (relative to itself, or a
bundled config name such as ``default``); its keys override the parent's. Command-line
overrides are ``section.key=value`` strings parsed as YAML scalars.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelConfig:
    """The frozen networks and where the student starts.

    Attributes:
        prior: diffusion prior checkpoint f_G (folder or Hub id); the student starts from it.
        metric_model: metric depth model f_D (see ``sharpdepth models``).
        prediction_type: override the prior's UNet parametrisation (default: from it).
        gate_prior: ``"ema"`` (released: the EMA student runs the prior pass) or ``"frozen"``.
    """

    prior: str = ""
    metric_model: str = ""
    prediction_type: str | None = None
    gate_prior: str = "ema"


@dataclass
class DataConfig:
    """Unlabeled training images.

    Attributes:
        train: a folder of images (recursive) or a text file listing image paths.
        val: optional folder / list, or a synthetic dataset folder with ground truth.
        height: training crop height in pixels (a multiple of the VAE factor).
        width: training crop width in pixels.
        num_workers: DataLoader workers.
        cache: keep the frozen networks' outputs (metric depth, image and depth latents)
            on disk so later epochs skip the metric model and the encoder.
        cache_dir: where (default ``OUTPUT/cache``).
    """

    train: str = ""
    val: str | None = None
    height: int = 512
    width: int = 512
    num_workers: int = 2
    cache: bool = False
    cache_dir: str | None = None


@dataclass
class MethodConfig:
    """Loss and gating (``docs/method.md``, training steps 3-7).

    Attributes:
        lambda_rec: weight of the reconstruction loss (released 0.4; paper text 0.3).
        gate_probability: probability of the gated input (else pure noise).
        gate_variant: ``"released"`` or ``"paper"`` (see inference step 7).
        sds_timestep: ``"fixed"`` (t = T - 1, released) or ``"sampled"`` (uniform t).
        gate_normalization: ``"image"``: the gate's error divided by each image's largest
            error; ``"batch"``: by the largest over the batch, as the released script at
            batch size > 1.
        gate_coin: ``"image"``: each image draws its own gated-or-noise coin; ``"batch"``:
            one coin for the whole batch, as the released script.
    """

    lambda_rec: float = 0.4
    gate_probability: float = 0.8
    gate_variant: str = "released"
    sds_timestep: str = "fixed"
    gate_normalization: str = "image"
    gate_coin: str = "image"


@dataclass
class OptimConfig:
    """Optimiser, schedule and batch.

    Attributes:
        lr: base learning rate, multiplied by the effective batch when ``scale_lr``.
        scale_lr: multiply ``lr`` by batch size x accumulation x processes.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up of the cosine schedule.
        max_steps: optimiser steps.
        batch_size: images per process and micro-step.
        grad_accumulation: micro-steps per optimiser step.
        grad_clip: max gradient norm.
        ema_decay: maximum EMA decay.
        ema_schedule: ``"every_step"``: an update after every optimiser step, decay with
            warm-up ``(1 + n) / (10 + n)``; ``"released"``: the released script's, an
            update at every tenth step before it is taken, plain copies up to step 100,
            then warm-up ``1 - (1 + k) ** (-2/3)``
            (:func:`sharpdepth.training.ema.released_ema_decay`).
    """

    lr: float = 1e-6
    scale_lr: bool = True
    weight_decay: float = 1e-2
    warmup_steps: int = 200
    max_steps: int = 13000
    batch_size: int = 1
    grad_accumulation: int = 16
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    ema_schedule: str = "every_step"


@dataclass
class RunConfig:
    """Bookkeeping.

    Attributes:
        output_dir: where checkpoints, logs and the final model go.
        seed: seeds data order, noise and the gate coin (per process offset).
        checkpoint_every: optimiser steps between resumable checkpoints.
        keep_last: resumable checkpoints kept.
        log_every: optimiser steps between log lines.
        validate_every: optimiser steps between validations (0 = never).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (GPU only).
        gradient_checkpointing: trade compute for memory in the student UNet.
        device: ``"auto"`` or a device (single-process runs).
    """

    output_dir: str = "runs/sharpdepth"
    seed: int = 0
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    validate_every: int = 0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    device: str = "auto"


@dataclass
class TrainConfig:
    """Everything a training run needs."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for saving next to checkpoints)."""
        return asdict(self)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config with its ``inherit`` chain resolved."""
    import yaml

    path = path.resolve()
    if path in seen:
        raise ValueError(f"config inheritance loop at {path}")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping")
    parent = data.pop("inherit", None)
    if parent is None:
        return data
    parent_path = _find_config(str(parent), path.parent)
    return _merge(_read_yaml(parent_path, (*seen, path)), data)


def _find_config(name: str, base: Path | None = None) -> Path:
    """A config path from a file path (relative to ``base``) or a bundled config name."""
    candidates = [Path(name)]
    if base is not None:
        candidates.insert(0, base / name)
    candidates.append(CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    bundled = ", ".join(p.stem for p in sorted(CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"config {name!r} not found (bundled configs: {bundled})")


def _apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override in place (value parsed as YAML)."""
    import yaml

    if "=" not in override:
        raise ValueError(f"override {override!r} must look like section.key=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {override!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(raw)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate a config dataclass, rejecting unknown keys with a clear message."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"unknown config key(s) {unknown} in {where or 'config'}; known: {sorted(known)}"
        )
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if is_dataclass(default) and isinstance(value, dict):
            kwargs[name] = _build(type(default), value, f"{where}.{name}".lstrip("."))
        else:
            kwargs[name] = _coerce(value, default, f"{where}.{name}".lstrip("."))
    return cls(**kwargs)


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Convert ``value`` to the type of ``default`` (YAML reads ``1e-6`` as a string)."""
    if default is None or value is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: cannot read {value!r} as {type(default).__name__}") from exc
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a config file (or the defaults) and apply ``section.key=value`` overrides."""
    data: dict[str, Any] = _read_yaml(_find_config(str(path))) if path else {}
    for override in overrides or []:
        _apply_override(data, override)
    config = _build(TrainConfig, data, "")
    validate_config(config)
    return config


def validate_config(config: TrainConfig) -> None:
    """Raise ``ValueError`` for inconsistent settings."""
    if config.model.gate_prior not in ("ema", "frozen"):
        raise ValueError("model.gate_prior must be 'ema' or 'frozen'")
    if config.method.gate_variant not in ("released", "paper"):
        raise ValueError("method.gate_variant must be 'released' or 'paper'")
    if config.method.sds_timestep not in ("fixed", "sampled"):
        raise ValueError("method.sds_timestep must be 'fixed' or 'sampled'")
    for key in ("gate_normalization", "gate_coin"):
        if getattr(config.method, key) not in ("image", "batch"):
            raise ValueError(f"method.{key} must be 'image' or 'batch'")
    if config.optim.ema_schedule not in ("every_step", "released"):
        raise ValueError("optim.ema_schedule must be 'every_step' or 'released'")
    if not 0.0 <= config.method.gate_probability <= 1.0:
        raise ValueError("method.gate_probability must be in [0, 1]")
    if (
        config.optim.max_steps < 1
        or config.optim.batch_size < 1
        or config.optim.grad_accumulation < 1
    ):
        raise ValueError("optim.max_steps, batch_size and grad_accumulation must be >= 1")
    if config.run.mixed_precision not in ("no", "bf16", "fp16"):
        raise ValueError("run.mixed_precision must be 'no', 'bf16' or 'fp16'")
