"""The nano metric depth network (the f_D role of the bundled family).

A small convolutional encoder-decoder that maps an RGB image and its pinhole
intrinsics to z-depth in metres. The intrinsics enter twice, so metric scale can be
learned across fields of view:

* two extra input channels hold each pixel's normalised ray ``((u - cx) / fx,
  (v - cy) / fy)``;
* the network predicts log depth of a *canonical camera* with focal length
  ``canonical_focal`` image widths, and the output is rescaled by
  ``(fx / W) / canonical_focal`` (the canonical-camera transform of Metric3D).

Stored like a transformers model: ``config.json`` (``"model_type":
"sharpdepth-nano-metric"``) + ``model.safetensors`` (see :meth:`NanoMetricNet.save_pretrained`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sharpdepth.errors import CheckpointError
from sharpdepth.geometry import scale_intrinsics
from sharpdepth.image_ops import resize
from sharpdepth.io import atomic_write_folder

LOGGER = logging.getLogger(__name__)

#: ``model_type`` written to ``config.json``; the metric-model registry recognises it.
MODEL_TYPE = "sharpdepth-nano-metric"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


@dataclass
class NanoMetricConfig:
    """Architecture of :class:`NanoMetricNet`.

    Attributes:
        channels: feature widths of the encoder levels, at 1/``stem_stride`` of the
            input and then halving (1/2 ... 1/32 with the default stem).
        blocks: residual blocks per encoder stage.
        canonical_focal: focal length of the canonical camera, in image widths.
        resolution: longer image side the network runs at (a multiple of :attr:`stride`).
        max_depth: upper clamp of predicted depth, metres.
        output_stride: resolution of the depth head relative to the network's input
            (2, 4, 8 ...: the decoder stops at that level and the head's output is
            up-sampled bilinearly). A coarse head makes the model accurate but soft,
            like the patch-token heads of real metric models.
        stem_stride: down-sampling of the first level (2, 4, 8 ...). Above 2 the
            stem folds ``stem_stride / 2`` x ``stem_stride / 2`` pixel blocks into
            channels (space-to-depth, like a ViT's patch embedding) before its
            stride-2 convolution, so a larger input costs the rest of the network
            nothing.
    """

    channels: tuple[int, ...] = (24, 32, 48, 96, 128)
    blocks: int = 1
    canonical_focal: float = 1.0
    resolution: int = 256
    max_depth: float = 200.0
    output_stride: int = 2
    stem_stride: int = 2
    model_type: str = field(default=MODEL_TYPE)

    @property
    def stride(self) -> int:
        """Total down-sampling of the encoder (input sides must be multiples of it)."""
        return int(2 ** (len(self.channels) - 1)) * self.stem_stride

    @property
    def head_level(self) -> int:
        """Index into :attr:`channels` of the level the depth head reads (0 = the stem's)."""
        for name, value in (
            ("stem_stride", self.stem_stride),
            ("output_stride", self.output_stride),
        ):
            if value < 2 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 2, got {value}")
        if self.output_stride < self.stem_stride:
            raise ValueError(
                f"output_stride {self.output_stride} is finer than stem_stride {self.stem_stride}"
            )
        level = int(self.output_stride // self.stem_stride).bit_length() - 1
        if level >= len(self.channels) - 1:
            raise ValueError(f"output_stride {self.output_stride} leaves no decoder level")
        return level


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class _ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))`` at constant width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Up(nn.Module):
    """Bilinear x2, concatenate the skip, fuse with a conv and a residual block."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int) -> None:
        super().__init__()
        self.fuse = nn.Conv2d(in_ch + skip_ch, out_ch, 3, padding=1)
        self.block = _ResBlock(out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(self.fuse(torch.cat([x, skip], dim=1)))


def ray_channels(K: torch.Tensor, height: int, width: int) -> torch.Tensor:  # noqa: N803
    """Per-pixel normalised ray ``((u - cx) / fx, (v - cy) / fy)``.

    Args:
        K: ``[B, 3, 3]`` intrinsics in pixels of a ``height x width`` image.

    Returns:
        ``[B, 2, height, width]`` float32.
    """
    k = K.float()
    u = torch.arange(width, device=k.device, dtype=torch.float32).view(1, 1, width)
    v = torch.arange(height, device=k.device, dtype=torch.float32).view(1, height, 1)
    x = (u - k[:, 0, 2].view(-1, 1, 1)) / k[:, 0, 0].view(-1, 1, 1)
    y = (v - k[:, 1, 2].view(-1, 1, 1)) / k[:, 1, 1].view(-1, 1, 1)
    return torch.stack([x.expand(-1, height, width), y.expand(-1, height, width)], dim=1)


def _stem(channels: int, stride: int) -> nn.Sequential:
    """First level: ``[B, 5, H, W]`` -> ``[B, channels, H / stride, W / stride]``."""
    fold = stride // 2
    if fold == 1:
        return nn.Sequential(nn.Conv2d(5, channels, 3, stride=2, padding=1), _ResBlock(channels))
    return nn.Sequential(
        nn.PixelUnshuffle(fold),
        nn.Conv2d(5 * fold * fold, channels, 3, stride=2, padding=1),
        _ResBlock(channels),
    )


class NanoMetricNet(nn.Module):
    """Image + intrinsics -> metric depth (see the module docstring).

    Args:
        config: architecture; default :class:`NanoMetricConfig`.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, config: NanoMetricConfig | None = None) -> None:
        super().__init__()
        self.config = config or NanoMetricConfig()
        ch = list(self.config.channels)
        self.stem = _stem(ch[0], self.config.stem_stride)
        self.down = nn.ModuleList()
        for c_in, c_out in itertools.pairwise(ch):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)]
            layers += [_ResBlock(c_out) for _ in range(self.config.blocks)]
            self.down.append(nn.Sequential(*layers))
        self.context = nn.Linear(ch[-1], ch[-1])
        level = self.config.head_level
        self.up = nn.ModuleList(
            _Up(c_deep, c_skip, c_skip)
            for c_deep, c_skip in zip(
                ch[:level:-1], ch[-2 : level - 1 if level else None : -1], strict=True
            )
        )
        self.head = nn.Sequential(
            _norm(ch[level]), nn.SiLU(), nn.Conv2d(ch[level], 1, 3, padding=1)
        )
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> torch.Tensor:  # noqa: N803
        """Metric depth at the input resolution.

        Args:
            image: ``[B, 3, H, W]`` RGB in ``[0, 1]``; ``H, W`` multiples of
                :attr:`NanoMetricConfig.stride`.
            K: ``[B, 3, 3]`` intrinsics in pixels of ``image``.

        Returns:
            ``[B, 1, H, W]`` float32 depth in metres (positive).
        """
        b, _, h, w = image.shape
        stride = self.config.stride
        if h % stride or w % stride:
            raise ValueError(f"image sides must be multiples of {stride}, got {h}x{w}")
        x = torch.cat([(image - self.mean) / self.std, ray_channels(K, h, w)], dim=1)
        skips = [self.stem(x)]
        for stage in self.down:
            skips.append(stage(skips[-1]))
        deep = skips.pop()
        deep = deep + self.context(deep.mean(dim=(2, 3))).view(b, -1, 1, 1)
        for up in self.up:
            deep = up(deep, skips.pop())
        log_canonical = F.interpolate(
            self.head(deep), size=(h, w), mode="bilinear", align_corners=False
        )
        focal_widths = (K[:, 0, 0].float() / w).view(b, 1, 1, 1)
        depth = torch.exp(log_canonical.float()) * focal_widths / self.config.canonical_focal
        return depth.clamp(1e-3, self.config.max_depth)

    def predict_resized(self, image: torch.Tensor, K: torch.Tensor) -> torch.Tensor:  # noqa: N803
        """Run at :attr:`NanoMetricConfig.resolution` and resize back.

        The image is resized so its longer side is ``resolution`` and both sides are
        multiples of the encoder stride; ``K`` is scaled to match and depth is
        resized back bilinearly.

        Args:
            image: ``[B, 3, H, W]`` in ``[0, 1]``, any size.
            K: ``[B, 3, 3]`` intrinsics in pixels of ``image``.

        Returns:
            ``[B, 1, H, W]`` depth in metres.
        """
        h, w = image.shape[-2:]
        stride = self.config.stride
        scale = self.config.resolution / max(h, w)
        nh = max(stride, round(h * scale / stride) * stride)
        nw = max(stride, round(w * scale / stride) * stride)
        resized = resize(image.float(), (nh, nw), antialias=True)
        k = scale_intrinsics(K.float(), nw / w, nh / h)
        depth = self(resized.clamp(0, 1), k)
        return resize(depth, (h, w), antialias=False)

    # ------------------------------------------------------------------ I/O
    def save_pretrained(
        self, path: str | os.PathLike[str], dtype: torch.dtype | None = None
    ) -> None:
        """Write ``config.json`` + ``model.safetensors`` into ``path`` atomically.

        Args:
            path: destination folder (replaced when complete).
            dtype: store the weights in this dtype (default: as they are).
        """

        def write(tmp: Path) -> None:
            self.write_config(tmp)
            state = {
                k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
                .detach()
                .cpu()
                .contiguous()
                for k, v in self.state_dict().items()
            }
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})

        atomic_write_folder(path, write)

    def write_config(self, folder: str | os.PathLike[str]) -> None:
        """Write the architecture as ``config.json`` into ``folder``."""
        config = asdict(self.config)
        config["channels"] = list(self.config.channels)
        (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> NanoMetricNet:
        """Load a folder written by :meth:`save_pretrained` (weights as float32).

        Raises:
            CheckpointError: missing files, another model type, mismatched weights.
        """
        root = Path(path).expanduser()
        config_path, weights_path = root / CONFIG_FILE, root / WEIGHTS_FILE
        if not config_path.is_file() or not weights_path.is_file():
            raise CheckpointError(f"{root}: expected {CONFIG_FILE} and {WEIGHTS_FILE}")
        model = cls(read_config(config_path))
        state = {k: v.float() for k, v in load_file(str(weights_path)).items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{weights_path}: {exc}") from exc
        return model.eval()


def read_config(config_path: Path) -> NanoMetricConfig:
    """The :class:`NanoMetricConfig` stored in a ``config.json`` (unknown keys ignored).

    Raises:
        CheckpointError: the file is not a nano metric model's configuration.
    """
    raw: dict[str, Any] = json.loads(config_path.read_text())
    if raw.get("model_type") != MODEL_TYPE:
        raise CheckpointError(
            f"{config_path}: model_type {raw.get('model_type')!r} is not {MODEL_TYPE!r}"
        )
    known = set(NanoMetricConfig.__dataclass_fields__)
    values = {k: v for k, v in raw.items() if k in known}
    if "channels" in values:
        values["channels"] = tuple(int(c) for c in values["channels"])
    return NanoMetricConfig(**values)


def is_nano_metric_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a :class:`NanoMetricNet` ``config.json``."""
    config_path = Path(path).expanduser() / CONFIG_FILE
    if not config_path.is_file():
        return False
    try:
        return json.loads(config_path.read_text()).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False
