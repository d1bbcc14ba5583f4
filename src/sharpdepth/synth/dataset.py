"""Torch datasets over synthetic RGB-D samples: a rendered folder, or an on-the-fly stream.

Every item is a dict of tensors (see :func:`sample_to_tensors`):

* ``"image"``: ``float32 [3, H, W]`` RGB in ``[0, 1]``;
* ``"depth"``: ``float32 [1, H, W]`` z-depth in metres, ``0`` where invalid;
* ``"mask"``: ``bool [1, H, W]``, ``True`` where ``depth`` is valid;
* ``"K"``: ``float32 [3, 3]`` intrinsics in pixels (pixel-centre convention);
* ``"instances"``: ``int64 [H, W]`` object id, ``0`` for sky;
* ``"id"``, ``"style"`` (strings) and ``"seed"`` (int, the render seed);
* with a sparse mode (:mod:`sharpdepth.synth.sparse`): ``"sparse_depth"`` ``float32
  [1, H, W]`` metres (``0`` = missing) and ``"sparse_mask"`` ``bool [1, H, W]``.

All randomness (augmentation, sparse sampling) is drawn from generators seeded from
``(seed, index, epoch)``, so an item is the same in every run, worker and process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from sharpdepth.geometry import scale_intrinsics
from sharpdepth.io import load_depth_npy, load_gray_png, load_json, load_rgb_png
from sharpdepth.synth.sample import INDEX_FILE, SAMPLE_FILES, SPLITS, SynthSample, sample_files
from sharpdepth.synth.sparse import SPARSE_MODES, sample_sparse

LOGGER = logging.getLogger(__name__)

#: Version of ``index.json`` this module reads.
INDEX_VERSION = 1
#: A renderer: ``(style, seed, height, width) -> SynthSample``.
Renderer = Callable[[str, int, int, int], SynthSample]

_LAYOUT_HINT = (
    "expected layout: ROOT/"
    + INDEX_FILE
    + ' ({"version": 1, "samples": [{"id", "style", "split", "seed"}, ...], ...}) and, for '
    + "each sample ID of split SPLIT, ROOT/SPLIT/"
    + ", ".join(name.format(id="ID") for name in SAMPLE_FILES.values())
)
_SPARSE_STREAM = 1  # SeedSequence tag of the stream's sparse-sampling generator


# --------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------


def sample_to_tensors(sample: SynthSample) -> dict[str, Any]:
    """Convert a :class:`SynthSample` to the item dict of the datasets (without ``"id"``).

    Args:
        sample: ``rgb uint8 [H, W, 3]``, ``depth float32 [H, W]`` metres, ``mask bool
            [H, W]``, ``K [3, 3]``, ``instances int [H, W]``.

    Returns:
        ``{"image": float32 [3, H, W] in [0, 1], "depth": float32 [1, H, W] metres
        (0 invalid), "mask": bool [1, H, W], "K": float32 [3, 3], "instances": int64
        [H, W], "style": str, "seed": int}``. ``mask`` is the sample's mask restricted to
        finite positive depth, and ``depth`` is 0 wherever ``mask`` is False.
    """
    rgb = np.asarray(sample.rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must have shape [H, W, 3], got {tuple(rgb.shape)}")
    height, width = rgb.shape[:2]
    depth = np.asarray(sample.depth, dtype=np.float32)
    for name, array in (("depth", depth), ("mask", sample.mask), ("instances", sample.instances)):
        if np.shape(array) != (height, width):
            raise ValueError(
                f"{name} must have shape {(height, width)} like rgb, got {np.shape(array)}"
            )
    k = np.asarray(sample.K, dtype=np.float32)
    if k.shape != (3, 3):
        raise ValueError(f"K must have shape [3, 3], got {k.shape}")
    with np.errstate(invalid="ignore"):
        mask = np.asarray(sample.mask, dtype=bool) & np.isfinite(depth) & (depth > 0)
    depth = np.where(mask, depth, np.float32(0.0)).astype(np.float32)
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(torch.float32)
    return {
        "image": image / 255.0,
        "depth": torch.from_numpy(depth)[None],
        "mask": torch.from_numpy(mask)[None],
        "K": torch.from_numpy(k.copy()),
        "instances": torch.from_numpy(np.asarray(sample.instances).astype(np.int64)),
        "style": str(sample.style),
        "seed": int(sample.seed),
    }


def add_sparse(
    item: dict[str, Any],
    mode: str,
    rng: np.random.Generator,
    sparse_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Add ``"sparse_depth"`` / ``"sparse_mask"`` (``[1, H, W]``) drawn from the item's depth.

    The sensor is simulated on the item as it is (after any augmentation), using its
    ``"depth"``, ``"mask"`` and ``"K"``. Modifies and returns ``item``.
    """
    depth = item["depth"][0].numpy()
    valid = item["mask"][0].numpy()
    k = item["K"].numpy().astype(np.float64)
    sparse_depth, sparse_mask = sample_sparse(mode, depth, valid, k, rng, **(sparse_kwargs or {}))
    item["sparse_depth"] = torch.from_numpy(sparse_depth)[None]
    item["sparse_mask"] = torch.from_numpy(sparse_mask)[None]
    return item


def _check_sparse_mode(sparse: str | None) -> None:
    """Raise ``ValueError`` unless ``sparse`` is ``None`` or a key of ``SPARSE_MODES``."""
    if sparse is not None and sparse not in SPARSE_MODES:
        known = ", ".join(sorted(SPARSE_MODES))
        raise ValueError(f"unknown sparse mode {sparse!r}; known modes: {known}")


def _check_seed(name: str, value: int) -> int:
    """``value`` checked to be a non-negative int (as :class:`numpy.random.SeedSequence` needs)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def item_generators(
    seed: int, index: int, epoch: int
) -> tuple[torch.Generator, np.random.Generator]:
    """Independent generators of one item: (torch, for augmentation; numpy, for sparse).

    Both derive from ``np.random.SeedSequence([seed, index, epoch])``.
    """
    children = np.random.SeedSequence(
        [_check_seed("seed", seed), _check_seed("index", index), _check_seed("epoch", epoch)]
    ).spawn(2)
    torch_gen = torch.Generator()
    torch_gen.manual_seed(int(children[0].generate_state(1, np.uint64)[0]))
    return torch_gen, np.random.default_rng(children[1])


# --------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings of :class:`SynthFolderDataset`.

    Attributes:
        flip_prob: probability of a horizontal flip.
        scale_range: ``(low, high)`` zoom factor, both ``>= 1``; the zoomed image is
            cropped back to the original size at a random offset.
        brightness: brightness factor drawn in ``[1 - b, 1 + b]``.
        contrast: contrast factor drawn in ``[1 - c, 1 + c]``.
        saturation: saturation factor drawn in ``[1 - s, 1 + s]``.
    """

    flip_prob: float = 0.5
    scale_range: tuple[float, float] = (1.0, 1.25)
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1

    def __post_init__(self) -> None:
        """Validate the ranges."""
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        low, high = self.scale_range
        if not 1.0 <= low <= high:
            raise ValueError(f"scale_range must satisfy 1 <= low <= high, got {self.scale_range}")
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


_GEOMETRIC_KEYS = ("depth", "mask", "instances", "sparse_depth", "sparse_mask")


def flip_horizontal(item: dict[str, Any]) -> dict[str, Any]:
    """Mirror an item left-right; returns a new dict.

    Image and per-pixel maps are flipped along the last axis; intrinsics follow the
    pixel-centre convention: ``cx' = (W - 1) - cx`` and the skew changes sign (the camera
    frame is mirrored, ``x' = -x``), so depth values stay exact.
    """
    out = dict(item)
    width = item["image"].shape[-1]
    out["image"] = item["image"].flip(-1)
    for key in _GEOMETRIC_KEYS:
        if key in item:
            out[key] = item[key].flip(-1)
    k = item["K"].clone()
    k[0, 2] = (width - 1) - item["K"][0, 2]
    k[0, 1] = -item["K"][0, 1]
    out["K"] = k
    return out


def nearest_index(size: int, offset: int, factor: float, source: int | None = None) -> torch.Tensor:
    """Source indices ``int64 [size]`` of output pixels ``offset .. offset + size - 1`` of an
    axis resized by ``factor``, nearest pixel centre: ``floor((i + 0.5) / factor)``, clamped
    to the source axis of length ``source`` (default ``size``)."""
    positions = (torch.arange(size, dtype=torch.float64) + offset + 0.5) / factor
    return positions.floor().long().clamp_(0, (size if source is None else source) - 1)


def scale_crop(item: dict[str, Any], scale: float, top: int, left: int) -> dict[str, Any]:
    """Zoom an item by ``scale`` and crop it back to its size at ``(top, left)``; new dict.

    The zoomed size is ``(Hs, Ws) = (round(H * scale), round(W * scale))`` (at least
    ``(H, W)``) and the actual factors are ``sy = Hs / H``, ``sx = Ws / W``. The image is
    resized bilinearly; depth, masks and instances take the nearest source pixel, so every
    depth value is a stored one. ``K`` becomes ``fx' = fx * sx``, ``cx' = (cx + 0.5) * sx
    - 0.5 - left`` and likewise for ``y`` with ``sy``, ``top``.

    Args:
        item: an item dict (see the module docstring).
        scale: zoom factor ``>= 1``.
        top: crop row offset in ``[0, Hs - H]``.
        left: crop column offset in ``[0, Ws - W]``.
    """
    height, width = item["image"].shape[-2:]
    zoom_h, zoom_w = max(height, round(height * scale)), max(width, round(width * scale))
    if not (0 <= top <= zoom_h - height and 0 <= left <= zoom_w - width):
        raise ValueError(f"crop offset ({top}, {left}) outside the zoomed {zoom_h}x{zoom_w} image")
    if (zoom_h, zoom_w) == (height, width):
        return dict(item)
    sy, sx = zoom_h / height, zoom_w / width
    out = dict(item)
    zoomed = F.interpolate(
        item["image"][None], size=(zoom_h, zoom_w), mode="bilinear", align_corners=False
    )[0]
    out["image"] = zoomed[:, top : top + height, left : left + width].clamp(0.0, 1.0).contiguous()
    rows = nearest_index(height, top, sy)
    cols = nearest_index(width, left, sx)
    for key in _GEOMETRIC_KEYS:
        if key in item:
            out[key] = item[key][..., rows[:, None], cols[None, :]].contiguous()
    k = scale_intrinsics(item["K"], sx, sy)
    k[0, 2] -= left
    k[1, 2] -= top
    out["K"] = k
    return out


def color_jitter(
    image: torch.Tensor, brightness: float, contrast: float, saturation: float
) -> torch.Tensor:
    """Apply brightness, contrast and saturation factors to ``float32 [3, H, W]`` in [0, 1].

    Brightness multiplies; contrast scales about the mean grey level; saturation scales
    about each pixel's grey level (Rec. 601 luma). The result is clamped to ``[0, 1]``.
    """
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(3, 1, 1)
    out = image * brightness
    grey = (out * weights).sum(0, keepdim=True)
    out = (out - grey.mean()) * contrast + grey.mean()
    grey = (out * weights).sum(0, keepdim=True)
    out = (out - grey) * saturation + grey
    return out.clamp(0.0, 1.0)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    """One float drawn uniformly in ``[low, high)`` from ``gen``."""
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def augment_item(
    item: dict[str, Any], gen: torch.Generator, config: AugmentConfig
) -> dict[str, Any]:
    """Random flip, scale-crop and colour jitter of an item, drawn from ``gen``; new dict.

    The same number of values is drawn whatever the outcome, in a fixed order (flip,
    scale, crop row, crop column, brightness, contrast, saturation), so one generator
    state always gives the same augmentation. Colour jitter touches the image only.
    """
    height, width = item["image"].shape[-2:]
    flip = _uniform(gen, 0.0, 1.0) < config.flip_prob
    scale = _uniform(gen, *config.scale_range)
    zoom_h, zoom_w = max(height, round(height * scale)), max(width, round(width * scale))
    top = min(int(_uniform(gen, 0.0, 1.0) * (zoom_h - height + 1)), zoom_h - height)
    left = min(int(_uniform(gen, 0.0, 1.0) * (zoom_w - width + 1)), zoom_w - width)
    factors = [
        _uniform(gen, 1.0 - amount, 1.0 + amount)
        for amount in (config.brightness, config.contrast, config.saturation)
    ]
    out = flip_horizontal(item) if flip else dict(item)
    out = scale_crop(out, scale, top, left)
    if any(f != 1.0 for f in factors):
        out["image"] = color_jitter(out["image"], *factors)
    return out


# --------------------------------------------------------------------------------------
# Reading a rendered folder
# --------------------------------------------------------------------------------------


def _load_index(root: Path) -> dict[str, Any]:
    """Read and check ``root/index.json``; raises with the expected layout on failure."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such dataset folder; {_LAYOUT_HINT}")
    path = root / INDEX_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index file missing; {_LAYOUT_HINT}")
    try:
        index = load_json(path)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); {_LAYOUT_HINT}") from exc
    if not isinstance(index, dict) or not isinstance(index.get("samples"), list):
        raise ValueError(f"{path}: no 'samples' list; {_LAYOUT_HINT}")
    version = index.get("version")
    if version != INDEX_VERSION:
        raise ValueError(
            f"{path}: unsupported index version {version!r} (expected {INDEX_VERSION})"
        )
    for entry in index["samples"]:
        if not isinstance(entry, dict) or "id" not in entry or "split" not in entry:
            raise ValueError(
                f"{path}: sample entry {entry!r} lacks 'id' or 'split'; {_LAYOUT_HINT}"
            )
    return index


def _read_uint_png(path: Path) -> np.ndarray:
    """An 8- or 16-bit single-channel PNG as its raw integer values, ``[H, W]``."""
    with Image.open(path) as image:
        image.load()
        if image.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "P", "1"):
            raise ValueError(f"{path}: expected a single-channel PNG, got mode {image.mode}")
        return np.asarray(image).copy()


def load_synth_sample(folder: str | Path, sample_id: str) -> SynthSample:
    """Read one sample written in the layout of :mod:`sharpdepth.synth.sample`.

    Args:
        folder: the split folder ``ROOT/<split>``.
        sample_id: the sample id.

    Returns:
        The sample; ``K`` is ``float64 [3, 3]``, ``instances`` ``int32 [H, W]``.

    Raises:
        FileNotFoundError: a file of the sample is missing.
        ValueError: the files disagree in size or the metadata lacks ``K``.
    """
    paths = sample_files(folder, sample_id)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"sample {sample_id!r}: missing {', '.join(missing)}; {_LAYOUT_HINT}"
        )
    meta = load_json(paths["meta"])
    if not isinstance(meta, dict) or "K" not in meta:
        raise ValueError(f"{paths['meta']}: metadata without 'K'")
    k = np.asarray(meta["K"], dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"{paths['meta']}: K must be 3x3, got shape {k.shape}")
    rgb = load_rgb_png(paths["rgb"])
    depth = load_depth_npy(paths["depth"])
    mask = load_gray_png(paths["mask"]) >= 0.5
    instances = _read_uint_png(paths["instances"]).astype(np.int32)
    shape = rgb.shape[:2]
    for kind, array in (("depth", depth), ("mask", mask), ("instances", instances)):
        if array.shape != shape:
            raise ValueError(f"{paths[kind]}: shape {array.shape} differs from the image's {shape}")
    expected = (meta.get("height", shape[0]), meta.get("width", shape[1]))
    if tuple(expected) != tuple(shape):
        raise ValueError(f"{paths['meta']}: size {expected} differs from the image's {shape}")
    return SynthSample(
        rgb=rgb,
        depth=depth,
        mask=mask,
        K=k,
        instances=instances,
        style=str(meta.get("style", "")),
        seed=int(meta.get("seed", 0)),
    )


class SynthFolderDataset(Dataset[dict[str, Any]]):
    """Samples of one split of a rendered synthetic dataset folder.

    Items are dicts as described in the module docstring. With ``augment`` on, each item
    gets a random horizontal flip, scale-crop and mild colour jitter (see
    :class:`AugmentConfig`) from a torch generator seeded from ``(seed, index, epoch)``;
    with ``sparse`` set, sparse supervision of that mode is simulated on the (augmented)
    item from a numpy generator seeded the same way. Call :meth:`set_epoch` at every
    epoch to draw new augmentations and sparse samples (with DataLoader workers, use
    non-persistent workers or the change does not reach them).

    Args:
        root: dataset folder holding ``index.json`` and one sub-folder per split.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"zeroshot"``.
        sparse: a key of :data:`sharpdepth.synth.sparse.SPARSE_MODES`, or ``None``.
        augment: enable augmentation (off by default: items are the stored data).
        seed: base seed of augmentation and sparse sampling, ``>= 0``.
        augment_config: augmentation settings (default :class:`AugmentConfig`).
        sparse_kwargs: keyword arguments for the sparse sampler.

    Raises:
        FileNotFoundError: the folder, its index or the split folder is missing.
        ValueError: the index is malformed, the split has no samples, or ``sparse`` is
            unknown.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        sparse: str | None = None,
        augment: bool = False,
        seed: int = 0,
        augment_config: AugmentConfig | None = None,
        sparse_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        _check_sparse_mode(sparse)
        self.root = Path(root)
        self.split = split
        self.sparse = sparse
        self.sparse_kwargs = dict(sparse_kwargs or {})
        self.augment = augment
        self.augment_config = augment_config or AugmentConfig()
        self.seed = _check_seed("seed", seed)
        self.epoch = 0
        index = _load_index(self.root)
        self.index = index
        self.entries: list[dict[str, Any]] = [e for e in index["samples"] if e["split"] == split]
        if not self.entries:
            counts: dict[str, int] = {}
            for entry in index["samples"]:
                counts[str(entry["split"])] = counts.get(str(entry["split"]), 0) + 1
            listed = ", ".join(f"{name}={n}" for name, n in sorted(counts.items())) or "none"
            hint = "" if split in SPLITS else f" (known splits: {', '.join(SPLITS)})"
            raise ValueError(
                f"{self.root / INDEX_FILE}: split {split!r} has no samples{hint}; "
                f"samples per split: {listed}"
            )
        self.folder = self.root / split
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: split folder missing; {_LAYOUT_HINT}")
        LOGGER.debug("%s split %s: %d samples", self.root, split, len(self.entries))

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` (``>= 0``) in the seeds of augmentation and sparse sampling."""
        self.epoch = _check_seed("epoch", epoch)

    def __len__(self) -> int:
        """Number of samples in the split."""
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Item ``index`` of the split (see the module docstring for its keys)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index = index % len(self)
        entry = self.entries[index]
        sample_id = str(entry["id"])
        item = sample_to_tensors(load_synth_sample(self.folder, sample_id))
        item["id"] = sample_id
        if not item["style"]:
            item["style"] = str(entry.get("style", ""))
        if self.augment or self.sparse is not None:
            torch_gen, np_rng = item_generators(self.seed, index, self.epoch)
            if self.augment:
                item = augment_item(item, torch_gen, self.augment_config)
            if self.sparse is not None:
                add_sparse(item, self.sparse, np_rng, self.sparse_kwargs)
        return item


# --------------------------------------------------------------------------------------
# On-the-fly stream
# --------------------------------------------------------------------------------------


def stream_sample_seed(seed: int, index: int) -> int:
    """Render seed of sample ``index`` of a stream: ``SeedSequence([seed, index])`` state."""
    state = np.random.SeedSequence([_check_seed("seed", seed), _check_seed("index", index)])
    return int(state.generate_state(1)[0])


class SynthStreamDataset(IterableDataset[dict[str, Any]]):
    """Samples rendered on the fly, as an endless (or ``length``-long) stream.

    Sample ``i`` has style ``styles[i % len(styles)]`` and render seed
    :func:`stream_sample_seed` ``(seed, i)``; its sparse supervision (if ``sparse`` is
    set) comes from ``SeedSequence([seed, i, 1])``. With DataLoader workers, blocks of
    ``worker_chunk`` consecutive indices go to the workers in turn (worker ``k`` takes
    blocks ``j`` with ``j % num_workers == k``; with the default ``worker_chunk=1``, the
    indices ``i % num_workers == k``). Since the DataLoader takes batches from the
    workers in turn, the stream is identical for any number of workers when
    ``worker_chunk`` equals the DataLoader's ``batch_size``.

    Args:
        styles: style names to cycle through.
        height: image height in pixels.
        width: image width in pixels.
        seed: base seed, ``>= 0``.
        length: number of samples, or ``None`` for an endless stream.
        sparse: a key of :data:`sharpdepth.synth.sparse.SPARSE_MODES`, or ``None``.
        sparse_kwargs: keyword arguments for the sparse sampler.
        worker_chunk: consecutive indices per worker turn, ``>= 1``.
        renderer: ``(style, seed, height, width) -> SynthSample``; by default
            :func:`sharpdepth.synth.render.render_sample`, imported when first needed.
    """

    def __init__(
        self,
        styles: Sequence[str] = ("indoor", "street", "tabletop"),
        height: int = 256,
        width: int = 256,
        seed: int = 0,
        length: int | None = None,
        sparse: str | None = None,
        sparse_kwargs: Mapping[str, Any] | None = None,
        worker_chunk: int = 1,
        renderer: Renderer | None = None,
    ) -> None:
        super().__init__()
        if isinstance(styles, str) or not styles:
            raise ValueError(f"styles must be a non-empty sequence of names, got {styles!r}")
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be positive, got {height}x{width}")
        if length is not None and length < 0:
            raise ValueError(f"length must be >= 0 or None, got {length}")
        if worker_chunk < 1:
            raise ValueError(f"worker_chunk must be >= 1, got {worker_chunk}")
        _check_sparse_mode(sparse)
        self.styles = tuple(str(s) for s in styles)
        self.height = int(height)
        self.width = int(width)
        self.seed = _check_seed("seed", seed)
        self.length = length
        self.sparse = sparse
        self.sparse_kwargs = dict(sparse_kwargs or {})
        self.worker_chunk = int(worker_chunk)
        self.renderer = renderer

    def __len__(self) -> int:
        """The stream's length; ``TypeError`` for an endless stream."""
        if self.length is None:
            raise TypeError("an endless SynthStreamDataset (length=None) has no len()")
        return self.length

    def style_of(self, index: int) -> str:
        """Style of sample ``index``."""
        return self.styles[index % len(self.styles)]

    def _render(self, style: str, seed: int) -> SynthSample:
        """Render one sample with the configured or the default renderer."""
        renderer = self.renderer
        if renderer is None:
            from sharpdepth.synth.render import render_sample

            renderer = render_sample
        return renderer(style, seed, self.height, self.width)

    def get(self, index: int) -> dict[str, Any]:
        """Render and return item ``index`` of the stream (see the module docstring)."""
        style = self.style_of(index)
        seed = stream_sample_seed(self.seed, index)
        sample = self._render(style, seed)
        item = sample_to_tensors(sample)
        if tuple(item["image"].shape[-2:]) != (self.height, self.width):
            raise ValueError(
                f"renderer returned {tuple(item['image'].shape[-2:])} for style {style!r}, "
                f"expected {(self.height, self.width)}"
            )
        item["id"] = f"{style}-{index:08d}"
        item["style"] = style
        item["seed"] = seed
        if self.sparse is not None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, _SPARSE_STREAM]))
            add_sparse(item, self.sparse, rng, self.sparse_kwargs)
        return item

    def worker_indices(self, worker_id: int, num_workers: int) -> Iterator[int]:
        """Indices of the stream handled by worker ``worker_id`` of ``num_workers``."""
        chunk = self.worker_chunk
        block = worker_id
        while True:
            for index in range(block * chunk, (block + 1) * chunk):
                if self.length is not None and index >= self.length:
                    return
                yield index
            block += num_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield this worker's items in increasing index order."""
        info = get_worker_info()
        worker_id, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        for index in self.worker_indices(worker_id, num_workers):
            yield self.get(index)
