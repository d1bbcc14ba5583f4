"""One rendered sample of the synthetic engine, and its on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Files of one sample ``ID`` inside ``DIR/<split>/``.
SAMPLE_FILES = {
    "rgb": "{id}_rgb.png",  # uint8 RGB
    "depth": "{id}_depth.npy",  # float32 [H, W] z-depth in metres, 0 where invalid
    "mask": "{id}_mask.png",  # uint8 [H, W], 255 = valid depth, 0 = sky / no depth
    "instances": "{id}_instances.png",  # uint16 [H, W] instance id, 0 = sky
    "meta": "{id}.json",  # K, style, seed, size
}
#: Name of the index file at the dataset root.
INDEX_FILE = "index.json"
#: Split names. Held-out styles only ever appear in ``zeroshot``.
SPLITS = ("train", "val", "test", "zeroshot")


@dataclass
class SynthSample:
    """A rendered RGB-D sample.

    Attributes:
        rgb: ``uint8 [H, W, 3]`` image (after camera effects).
        depth: ``float32 [H, W]`` z-depth in metres of the ray through each pixel centre;
            0 where there is no surface (sky).
        mask: ``bool [H, W]``, True where ``depth`` is valid.
        K: ``float64 [3, 3]`` intrinsics in pixels (pixel-centre convention).
        instances: ``int32 [H, W]`` object id per pixel, 0 for sky.
        style: style name.
        seed: the seed this sample was rendered from.
    """

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    K: np.ndarray
    instances: np.ndarray
    style: str
    seed: int
