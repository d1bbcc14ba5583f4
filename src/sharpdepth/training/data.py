"""Unlabeled training images and an exactly resumable, process-sharded sample order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sharpdepth import geometry, io

LOGGER = logging.getLogger(__name__)


def list_images(source: str | Path) -> list[Path]:
    """Images of a folder (recursive) or of a text file with one path per line.

    Raises:
        FileNotFoundError: nothing usable at ``source``.
    """
    path = Path(source)
    if path.is_file() and path.suffix.lower() in (".txt", ".lst", ".list"):
        base = path.parent
        items = [base / line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [p for p in items if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path}: {len(missing)} listed images are missing, e.g. {missing[0]}"
            )
        return items
    images, errors = io.find_images([path], recursive=True)
    if not images:
        raise FileNotFoundError(f"no training images in {path} ({'; '.join(errors)})")
    return images


class UnlabeledImages(torch.utils.data.Dataset):
    """Images resized (shorter side) and centre-cropped to ``height x width``.

    An optional sidecar ``STEM.json`` with ``"K"`` (3 x 3, pixels of the original image)
    gives the intrinsics, adjusted for the resize and crop; the engine's datasets have one.

    Items: ``{"image": [3, H, W] float32 in [0, 1], "K": [3, 3] float32 (zeros when
    unknown), "has_K": bool tensor, "index": int}``.
    """

    def __init__(self, source: str | Path, height: int, width: int) -> None:
        self.paths = list_images(source)
        self.height, self.width = int(height), int(width)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        rgb = torch.from_numpy(io.load_image(path).rgb).permute(2, 0, 1)[None]
        h, w = rgb.shape[-2:]
        scale = max(self.height / h, self.width / w)
        rh, rw = max(self.height, round(h * scale)), max(self.width, round(w * scale))
        rgb = F.interpolate(
            rgb, size=(rh, rw), mode="bilinear", antialias=True, align_corners=False
        )
        top, left = (rh - self.height) // 2, (rw - self.width) // 2
        image = rgb[0, :, top : top + self.height, left : left + self.width].clamp(0, 1)
        k = torch.zeros(3, 3)
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():  # the engine's layout: ID_rgb.png + ID.json
            sidecar = path.with_name(path.stem.removesuffix("_rgb") + ".json")
        has_k = False
        if sidecar.is_file():
            meta = io.load_json(sidecar)
            if isinstance(meta, dict) and "K" in meta:
                k = geometry.scale_intrinsics(
                    torch.tensor(meta["K"], dtype=torch.float32), rw / w, rh / h
                )
                k[0, 2] -= left
                k[1, 2] -= top
                has_k = True
        return {"image": image.contiguous(), "K": k, "has_K": torch.tensor(has_k), "index": index}


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Sample order: a seeded permutation per epoch, sharded across processes.

    Position ``p`` (counted in samples drawn by this process) fully determines what
    comes next, so a resumed run sees exactly the samples an uninterrupted run would.
    Every process sees ``len(dataset) // world`` samples per epoch (the remainder is
    dropped so processes stay in step).
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        if size < world:
            raise ValueError(f"{size} images for {world} processes")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world
        self.per_rank = size // world
        self.start = start

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=gen)

    def __iter__(self) -> Iterator[int]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.per_rank)
            order = self._epoch_order(epoch)
            yield int(order[offset * self.world + self.rank])
            position += 1

    def __len__(self) -> int:  # endless; len() is the per-epoch count
        return self.per_rank
