"""Image tensors in and out of the pipeline: conversion, resize, pad and their inverses.

One implementation of inference step 1 of ``docs/method.md`` (resize so the longer side
equals the processing resolution, anti-aliased; replicate-pad to a multiple of the
autoencoder's down-sampling factor) and of its undoing in step 9.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

LOGGER = logging.getLogger(__name__)

ImageLike = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor

#: Largest processing resolution (longer side, pixels) the pipeline accepts, also for
#: native-size processing: SD-2-sized networks at 4096 px already need tens of GB.
MAX_PROCESSING_RESOLUTION = 4096


def image_to_tensor(image: ImageLike) -> torch.Tensor:
    """One image as a ``[3, H, W]`` float32 tensor in ``[0, 1]``.

    Accepts a file path (read with EXIF orientation applied), a PIL image (any
    mode: greyscale, RGBA, 16-bit, palette), a numpy array ``[H, W]``,
    ``[H, W, 1|3|4]`` (uint8 scaled by 255, uint16 by 65535, floats taken as
    ``[0, 1]``), or a tensor ``[3, H, W]`` / ``[1, H, W]`` / ``[H, W]`` in ``[0, 1]``.
    """
    from sharpdepth.io import load_image, pil_to_array

    if isinstance(image, str | os.PathLike):
        array = load_image(Path(image)).rgb
    elif isinstance(image, Image.Image):
        array = pil_to_array(image)
    elif isinstance(image, np.ndarray):
        array = _numpy_to_rgb(image)
    elif isinstance(image, torch.Tensor):
        return _tensor_to_rgb(image)
    else:
        raise TypeError(
            f"unsupported image type {type(image).__name__}: pass a path, PIL image, "
            "numpy array or torch tensor"
        )
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()


def _numpy_to_rgb(array: np.ndarray) -> np.ndarray:
    """``[H, W]`` or ``[H, W, C]`` numpy image -> ``[H, W, 3]`` float32 in ``[0, 1]``."""
    from sharpdepth.io import composite_over_white

    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"numpy image must be [H, W] or [H, W, 1|3|4], got {array.shape}")
    if array.dtype == np.uint8:
        out = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        out = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        out = array.astype(np.float32)
    else:
        raise ValueError(f"unsupported numpy image dtype {array.dtype}")
    if out.shape[2] == 4:
        out = composite_over_white(out)  # as for files
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.clip(out, 0.0, 1.0)


def _tensor_to_rgb(tensor: torch.Tensor) -> torch.Tensor:
    """``[3|1, H, W]`` or ``[H, W]`` tensor -> ``[3, H, W]`` float32 in ``[0, 1]``."""
    t = tensor.detach()
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(
            f"tensor image must be [3, H, W], [1, H, W] or [H, W]; got {tuple(t.shape)}"
        )
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float()
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return t.clamp(0.0, 1.0).contiguous()


def images_to_batch(images: ImageLike | Sequence[ImageLike]) -> torch.Tensor:
    """Stack one or more images of the same size into ``[B, 3, H, W]`` in ``[0, 1]``.

    A 4-D tensor is taken as a batch already. Images of different sizes raise
    ``ValueError`` (process them in separate calls).
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        if images.shape[1] != 3:
            raise ValueError(f"batch tensor must be [B, 3, H, W], got {tuple(images.shape)}")
        return _checked(images.detach().float().clamp(0.0, 1.0))
    items: list[Any] = list(images) if isinstance(images, list | tuple) else [images]
    if not items:
        raise ValueError("no images given")
    tensors = [image_to_tensor(im) for im in items]
    sizes = {tuple(t.shape[-2:]) for t in tensors}
    if len(sizes) > 1:
        raise ValueError(
            f"images in one call must share a size, got {sorted(sizes)}; call the pipeline "
            "once per size"
        )
    return _checked(torch.stack(tensors))


def _checked(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` if it holds at least one pixel per image and no NaN, else ``ValueError``."""
    b, _, h, w = batch.shape
    if b == 0:
        raise ValueError("no images given")
    if h == 0 or w == 0:
        raise ValueError(f"image has zero size ({w}x{h})")
    if torch.isnan(batch).any():
        raise ValueError("image contains NaN values")
    return batch


def processing_size(height: int, width: int, processing_resolution: int | None) -> tuple[int, int]:
    """``(h, w)`` with the longer side equal to ``processing_resolution`` (0/None: unchanged).

    The shorter side is rounded down (``h * res // max(h, w)``), as in the released
    pipeline, and is at least 1.
    """
    if not processing_resolution:
        return height, width
    longer = max(height, width)
    return (
        max(1, height * processing_resolution // longer),
        max(1, width * processing_resolution // longer),
    )


@dataclass(frozen=True)
class Geometry:
    """Sizes needed to undo the pre-processing of a batch.

    Attributes:
        input_size: ``(H, W)`` of the input images.
        resized_size: ``(h, w)`` after resizing to the processing resolution.
        padded_size: ``(h + ph, w + pw)`` after bottom/right replicate padding.
    """

    input_size: tuple[int, int]
    resized_size: tuple[int, int]
    padded_size: tuple[int, int]


def resize(x: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of ``[B, C, H, W]`` to ``size`` (no-op when the size matches)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad ``[B, C, H, W]`` at the bottom and right to multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def preprocess(
    images: torch.Tensor, processing_resolution: int | None, multiple: int
) -> tuple[torch.Tensor, torch.Tensor, Geometry]:
    """Inference step 1 (``docs/method.md``): resize, then pad.

    Args:
        images: ``[B, 3, H, W]`` in ``[0, 1]``.
        processing_resolution: target longer side (0/None: keep the input size).
        multiple: the autoencoder's down-sampling factor.

    Returns:
        ``resized`` ``[B, 3, h, w]`` (anti-aliased), ``padded`` ``[B, 3, h', w']`` and
        the :class:`Geometry` to undo both.
    """
    size_in = (int(images.shape[-2]), int(images.shape[-1]))
    size = processing_size(*size_in, processing_resolution)
    resized = resize(images, size, antialias=True)
    padded = pad_to_multiple(resized, multiple)
    geometry = Geometry(size_in, size, (int(padded.shape[-2]), int(padded.shape[-1])))
    return resized, padded, geometry


def truncate_to_8bit(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` values as the 8-bit integers the released pipeline gives its metric model
    (scaled by 255 and truncated, not rounded), back in ``[0, 1]``: ``trunc(255 x) / 255``."""
    return torch.trunc(x.clamp(0.0, 1.0) * 255.0) / 255.0


def postprocess(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Undo :func:`preprocess` for a map ``[B, C, h', w']``: crop the padding, resize back.

    The resize back is bilinear without anti-aliasing (as the released pipeline).
    """
    h, w = geometry.resized_size
    return resize(x[..., :h, :w], geometry.input_size, antialias=False)


def as_output(x: torch.Tensor, output_type: str) -> Any:
    """``[B, 1, H, W]`` -> ``[B, H, W]``: numpy (``"np"``) or a tensor on its device (``"pt"``)."""
    x = x.squeeze(1) if x.ndim == 4 else x
    if output_type == "pt":
        return x.detach()
    return x.detach().cpu().numpy()
