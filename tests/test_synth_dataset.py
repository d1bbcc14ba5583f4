"""Tests of the synthetic torch datasets (sharpdepth.synth.dataset)."""

from __future__ import annotations

import itertools
import multiprocessing
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sharpdepth.io import save_depth_npy, save_gray_png, save_json, save_rgb_png
from sharpdepth.synth.dataset import (
    AugmentConfig,
    SynthFolderDataset,
    SynthStreamDataset,
    flip_horizontal,
    sample_to_tensors,
    scale_crop,
    stream_sample_seed,
)
from sharpdepth.synth.sample import SynthSample

H, W = 16, 24
FX, FY, CX, CY = 20.0, 21.0, 11.0, 7.25
SPLITS_OF = {"s000": "train", "s001": "train", "s002": "val"}


def _code_depth(offset: float) -> np.ndarray:
    """Depth that encodes its pixel: ``offset + 0.01 * (u + W * v)`` metres, ``[H, W]``."""
    v, u = np.mgrid[0:H, 0:W]
    return (offset + 0.01 * (u + W * v)).astype(np.float32)


def _decode(depth: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Source pixel ``(u, v)`` of each value of :func:`_code_depth`."""
    code = np.rint((depth.astype(np.float64) - offset) * 100).astype(np.int64)
    return code % W, code // W


def _fake_sample(index: int) -> SynthSample:
    """The sample stored as ``s00{index}``: coded depth, a sky row for index 1."""
    rng = np.random.default_rng(index)
    depth = _code_depth(1.0 + index)
    mask = np.ones((H, W), dtype=bool)
    if index == 1:
        mask[0] = False
        depth[0] = 0.0
    instances = rng.integers(0, 700, size=(H, W)).astype(np.int32)
    instances[~mask] = 0
    return SynthSample(
        rgb=rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8),
        depth=depth,
        mask=mask,
        K=np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]]),
        instances=instances,
        style="indoor" if index % 2 == 0 else "street",
        seed=100 + index,
    )


def _write_fixture(root: Path) -> dict[str, SynthSample]:
    """Write three 16 x 24 samples in the documented layout; returns them by id."""
    samples: dict[str, SynthSample] = {}
    entries = []
    for index, (sample_id, split) in enumerate(SPLITS_OF.items()):
        sample = _fake_sample(index)
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        save_rgb_png(folder / f"{sample_id}_rgb.png", sample.rgb)
        save_depth_npy(folder / f"{sample_id}_depth.npy", sample.depth)
        save_gray_png(folder / f"{sample_id}_mask.png", sample.mask.astype(np.float32))
        Image.fromarray(sample.instances.astype(np.uint16)).save(
            folder / f"{sample_id}_instances.png"
        )
        save_json(
            folder / f"{sample_id}.json",
            {
                "id": sample_id,
                "style": sample.style,
                "seed": sample.seed,
                "split": split,
                "height": H,
                "width": W,
                "K": sample.K.tolist(),
            },
        )
        entries.append(
            {"id": sample_id, "style": sample.style, "split": split, "seed": sample.seed}
        )
        samples[sample_id] = sample
    save_json(
        root / "index.json",
        {
            "version": 1,
            "height": H,
            "width": W,
            "seed": 0,
            "styles": ["indoor", "street"],
            "held_out_styles": [],
            "samples": entries,
        },
    )
    return samples


@pytest.fixture()
def dataset_root(tmp_path: Path) -> tuple[Path, dict[str, SynthSample]]:
    """A tiny dataset folder and the samples it holds."""
    root = tmp_path / "synth"
    return root, _write_fixture(root)


# --------------------------------------------------------------------------------------
# folder dataset: plain reading and errors
# --------------------------------------------------------------------------------------


def test_folder_without_augment_returns_stored_data(
    dataset_root: tuple[Path, dict[str, SynthSample]],
) -> None:
    root, samples = dataset_root
    train = SynthFolderDataset(root, "train")
    assert len(train) == 2 and len(SynthFolderDataset(root, "val")) == 1
    for i, sample_id in enumerate(["s000", "s001"]):
        item = train[i]
        stored = samples[sample_id]
        assert item["id"] == sample_id and item["style"] == stored.style
        assert item["seed"] == stored.seed
        assert item["image"].dtype == torch.float32 and item["image"].shape == (3, H, W)
        torch.testing.assert_close(
            item["image"], torch.from_numpy(stored.rgb).permute(2, 0, 1).float() / 255.0
        )
        assert item["depth"].dtype == torch.float32 and item["depth"].shape == (1, H, W)
        assert torch.equal(item["depth"][0], torch.from_numpy(stored.depth))
        assert item["mask"].dtype == torch.bool and item["mask"].shape == (1, H, W)
        assert torch.equal(item["mask"][0], torch.from_numpy(stored.mask))
        assert item["K"].dtype == torch.float32 and item["K"].shape == (3, 3)
        assert torch.equal(item["K"], torch.from_numpy(stored.K).float())
        assert item["instances"].dtype == torch.int64 and item["instances"].shape == (H, W)
        assert torch.equal(item["instances"], torch.from_numpy(stored.instances).long())
        assert "sparse_depth" not in item
    assert train[-1]["id"] == "s001"
    with pytest.raises(IndexError):
        train[2]


def test_folder_errors_name_the_layout(
    tmp_path: Path, dataset_root: tuple[Path, dict[str, SynthSample]]
) -> None:
    root, _ = dataset_root
    with pytest.raises(FileNotFoundError, match=r"index\.json"):
        SynthFolderDataset(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"index file missing.*_depth\.npy"):
        SynthFolderDataset(empty)
    with pytest.raises(ValueError, match=r"split 'test' has no samples.*train=2, val=1"):
        SynthFolderDataset(root, "test")
    with pytest.raises(ValueError, match="unknown sparse mode"):
        SynthFolderDataset(root, sparse="sonar")
    (root / "train" / "s001_depth.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"s001_depth\.npy"):
        SynthFolderDataset(root)[1]
    (root / "index.json").write_text('{"version": 1}')
    with pytest.raises(ValueError, match="samples"):
        SynthFolderDataset(root)


# --------------------------------------------------------------------------------------
# folder dataset: augmentation
# --------------------------------------------------------------------------------------


def _assert_k_consistent(item: dict[str, Any], offset: float, sign: float) -> None:
    """Back-projection invariant of geometric augmentation.

    Each output pixel ``(u', v')`` carries the depth of a source pixel ``(us, vs)``
    (decoded from the coded depth). The ray of ``(u', v')`` under the new ``K'``, mapped
    back through the source ``K``, must land within half a source pixel of ``(us, vs)``
    (``sign = -1`` when the image was mirrored, since then ``x' = -x``).
    """
    k = item["K"].double().numpy()
    depth = item["depth"][0].numpy()
    valid = item["mask"][0].numpy()
    us, vs = _decode(depth, offset)
    v_out, u_out = np.mgrid[0:H, 0:W]
    x_n = (u_out - k[0, 2]) / k[0, 0]
    y_n = (v_out - k[1, 2]) / k[1, 1]
    u_src = CX + FX * sign * x_n
    v_src = CY + FY * y_n
    assert np.abs(u_src - us)[valid].max() <= 0.5 + 1e-4
    assert np.abs(v_src - vs)[valid].max() <= 0.5 + 1e-4


def test_flip_only(dataset_root: tuple[Path, dict[str, SynthSample]]) -> None:
    root, _ = dataset_root
    config = AugmentConfig(
        flip_prob=1.0, scale_range=(1.0, 1.0), brightness=0, contrast=0, saturation=0
    )
    item = SynthFolderDataset(root, augment=True, augment_config=config)[0]
    plain = SynthFolderDataset(root)[0]
    for key in ("image", "depth", "mask", "instances"):
        assert torch.equal(item[key], plain[key].flip(-1))
    assert item["K"][0, 2].item() == pytest.approx((W - 1) - CX)
    assert torch.equal(item["K"][[0, 1, 1], [0, 1, 2]], plain["K"][[0, 1, 1], [0, 1, 2]])
    _assert_k_consistent(item, offset=1.0, sign=-1.0)
    assert torch.equal(flip_horizontal(flip_horizontal(plain))["K"], plain["K"])


def test_scale_crop_keeps_depth_exact_and_k_consistent(
    dataset_root: tuple[Path, dict[str, SynthSample]],
) -> None:
    root, samples = dataset_root
    config = AugmentConfig(
        flip_prob=0.0, scale_range=(1.2, 1.6), brightness=0, contrast=0, saturation=0
    )
    data = SynthFolderDataset(root, augment=True, augment_config=config, seed=3)
    stored_values = set(samples["s000"].depth.ravel().tolist())
    changed = 0
    for epoch in range(6):
        data.set_epoch(epoch)
        item = data[0]
        assert set(item["depth"].unique().tolist()) <= stored_values
        _assert_k_consistent(item, offset=1.0, sign=1.0)
        changed += int(item["K"][0, 0].item() != FX)
    assert changed == 6

    plain = SynthFolderDataset(root)[0]
    zoomed = scale_crop(plain, 2.0, top=16, left=24)  # the bottom-right quarter
    torch.testing.assert_close(
        zoomed["K"],
        torch.tensor(
            [
                [2 * FX, 0, (CX + 0.5) * 2 - 0.5 - 24],
                [0, 2 * FY, (CY + 0.5) * 2 - 0.5 - 16],
                [0, 0, 1],
            ]
        ),
    )
    expected = plain["depth"][0, H // 2 :, W // 2 :].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(zoomed["depth"][0], expected)


def test_default_augment_reproducible_and_consistent(
    dataset_root: tuple[Path, dict[str, SynthSample]],
) -> None:
    root, _ = dataset_root
    data = SynthFolderDataset(root, augment=True, seed=11)
    flips = set()
    for epoch in range(8):
        data.set_epoch(epoch)
        item = data[1]
        again = data[1]
        for key in ("image", "depth", "mask", "K", "instances"):
            assert torch.equal(item[key], again[key])
        assert item["image"].min() >= 0 and item["image"].max() <= 1
        sign = 1.0
        try:
            _assert_k_consistent(item, offset=2.0, sign=sign)
        except AssertionError:
            sign = -1.0  # mirrored
            _assert_k_consistent(item, offset=2.0, sign=sign)
        flips.add(sign)
        assert (item["depth"] > 0).eq(item["mask"]).all()
    assert flips == {1.0, -1.0}
    data.set_epoch(0)
    first = data[1]
    data.set_epoch(1)
    assert not torch.equal(first["image"], data[1]["image"])


# --------------------------------------------------------------------------------------
# folder dataset: sparse supervision
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("augment", [False, True])
def test_folder_sparse(dataset_root: tuple[Path, dict[str, SynthSample]], augment: bool) -> None:
    root, _ = dataset_root
    data = SynthFolderDataset(
        root, sparse="random", augment=augment, seed=2, sparse_kwargs={"density": 0.2}
    )
    item = data[1]
    sparse, sparse_mask = item["sparse_depth"], item["sparse_mask"]
    assert sparse.shape == (1, H, W) and sparse.dtype == torch.float32
    assert sparse_mask.shape == (1, H, W) and sparse_mask.dtype == torch.bool
    assert not (sparse_mask & ~item["mask"]).any()
    assert torch.equal(sparse[sparse_mask], item["depth"][sparse_mask])
    assert sparse_mask.sum().item() == round(0.2 * item["mask"].sum().item())
    assert torch.equal(data[1]["sparse_mask"], sparse_mask)
    data.set_epoch(1)
    assert not torch.equal(data[1]["sparse_mask"], sparse_mask)

    lidar = SynthFolderDataset(root, sparse="lidar32")[0]
    assert lidar["sparse_mask"].any()


def test_folder_dataloader_collates(dataset_root: tuple[Path, dict[str, SynthSample]]) -> None:
    root, _ = dataset_root
    loader = DataLoader(SynthFolderDataset(root, sparse="structured_light"), batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, H, W) and batch["K"].shape == (2, 3, 3)
    assert batch["sparse_depth"].shape == (2, 1, H, W)
    assert batch["id"] == ["s000", "s001"]


# --------------------------------------------------------------------------------------
# stream dataset
# --------------------------------------------------------------------------------------


def fake_render_sample(style: str, seed: int, height: int, width: int) -> SynthSample:
    """A deterministic stand-in for ``sharpdepth.synth.render.render_sample``."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 8.0, size=(height, width)).astype(np.float32)
    mask = np.ones((height, width), dtype=bool)
    mask[0, :] = False
    depth[~mask] = 0.0
    focal = 0.8 * width
    return SynthSample(
        rgb=rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
        depth=depth,
        mask=mask,
        K=np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]]),
        instances=rng.integers(0, 5, size=(height, width)).astype(np.int32),
        style=style,
        seed=seed,
    )


@pytest.fixture()
def fake_renderer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Install a fake ``sharpdepth.synth.render`` module exposing ``render_sample``."""
    module = types.ModuleType("sharpdepth.synth.render")
    module.render_sample = fake_render_sample  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sharpdepth.synth.render", module)


@pytest.mark.usefixtures("fake_renderer")
def test_stream_is_deterministic_and_seeded() -> None:
    stream = SynthStreamDataset(styles=("indoor", "street"), height=8, width=12, seed=5, length=5)
    items = list(stream)
    assert [it["id"] for it in items] == [
        "indoor-00000000",
        "street-00000001",
        "indoor-00000002",
        "street-00000003",
        "indoor-00000004",
    ]
    for i, item in enumerate(items):
        expected = int(np.random.SeedSequence([5, i]).generate_state(1)[0])
        assert item["seed"] == expected == stream_sample_seed(5, i)
        reference = sample_to_tensors(fake_render_sample(item["style"], expected, 8, 12))
        assert torch.equal(item["depth"], reference["depth"])
        assert item["image"].shape == (3, 8, 12)
    again = list(stream)
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(items, again, strict=True))
    assert len(stream) == 5

    endless = SynthStreamDataset(height=8, width=12, sparse="random")
    head = list(itertools.islice(iter(endless), 4))
    assert [it["style"] for it in head] == ["indoor", "street", "tabletop", "indoor"]
    assert head[0]["sparse_mask"].any() and not (head[0]["sparse_mask"] & ~head[0]["mask"]).any()
    with pytest.raises(TypeError):
        len(endless)


def test_stream_explicit_renderer_and_size_check() -> None:
    stream = SynthStreamDataset(height=8, width=12, length=2, renderer=fake_render_sample)
    assert [it["seed"] for it in stream] == [stream_sample_seed(0, 0), stream_sample_seed(0, 1)]

    def wrong_size(style: str, seed: int, height: int, width: int) -> SynthSample:
        return fake_render_sample(style, seed, height + 1, width)

    with pytest.raises(ValueError, match="expected"):
        next(iter(SynthStreamDataset(height=8, width=12, renderer=wrong_size)))


def _collect(loader: DataLoader) -> list[tuple[list[str], torch.Tensor, torch.Tensor]]:
    """(ids, depth, sparse mask) of every batch of ``loader``."""
    return [(b["id"], b["depth"], b["sparse_mask"]) for b in loader]


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
@pytest.mark.usefixtures("fake_renderer")
@pytest.mark.parametrize("batch_size", [1, 2])
def test_stream_identical_across_worker_counts(batch_size: int) -> None:
    stream = SynthStreamDataset(
        height=8, width=12, seed=1, length=7, sparse="lidar32", worker_chunk=batch_size
    )
    serial = _collect(DataLoader(stream, batch_size=batch_size, num_workers=0))
    parallel = _collect(
        DataLoader(
            stream,
            batch_size=batch_size,
            num_workers=2,
            multiprocessing_context=multiprocessing.get_context("fork"),
        )
    )
    assert len(serial) == len(parallel) == -(-7 // batch_size)
    for (ids_a, depth_a, sparse_a), (ids_b, depth_b, sparse_b) in zip(
        serial, parallel, strict=True
    ):
        assert ids_a == ids_b
        assert torch.equal(depth_a, depth_b) and torch.equal(sparse_a, sparse_b)
    assert [i for ids, _, _ in serial for i in ids][-1].endswith("00000006")
