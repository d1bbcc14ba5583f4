"""One rendered sample of the synthetic engine, and its on-disk layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def sample_files(split_dir: str | Path, sample_id: str) -> dict[str, Path]:
    """The files of sample ``sample_id`` in ``split_dir`` (``DIR/<split>``), by kind.

    Kinds: ``rgb``, ``depth``, ``mask``, ``instances``, ``meta`` (see :data:`SAMPLE_FILES`).
    """
    return {
        kind: Path(split_dir) / name.format(id=sample_id) for kind, name in SAMPLE_FILES.items()
    }
