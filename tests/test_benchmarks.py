"""Benchmark readers: each dataset's layout and file formats on tiny fixtures written here."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharpdepth.errors import MissingDependencyError
from sharpdepth.evaluation.benchmarks import (
    DATA_ROOT_ENV,
    EvalSample,
    crop_box,
    get_description,
    list_benchmarks,
    load_benchmark,
    read_dpt,
    read_pfm,
    write_dpt,
    write_pfm,
)
from sharpdepth.evaluation.benchmarks.description import CropSpec

ALL = {
    "diode",
    "eth3d",
    "ibims",
    "kitti",
    "middlebury2014",
    "motorcycle",
    "nyuv2",
    "sintel",
    "spring",
    "synth",
    "unrealstereo4k",
}
ENV_VARS = [
    DATA_ROOT_ENV,
    "SHARPDEPTH_NYUV2",
    "SHARPDEPTH_KITTI",
    "SHARPDEPTH_SYNTH",
]


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the user's data folders."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------------------
# Fixture writers
# --------------------------------------------------------------------------------------


def _rgb(path: Path, height: int, width: int, mode: str = "RGB", seed: int = 0) -> np.ndarray:
    """Write a small random image; returns its uint8 pixels ``[H, W, C]``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


def _flat_rgb(path: Path, height: int, width: int) -> None:
    """Write a constant grey image (compresses to nothing, for large fixtures)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(path)


def _png16(path: Path, values: np.ndarray) -> None:
    """Write ``uint16 [H, W]`` as a 16-bit greyscale PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(values.astype(np.uint16))).save(path)


def _png8(path: Path, values: np.ndarray) -> None:
    """Write ``uint8 [H, W]`` as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(values.astype(np.uint8))).save(path)


def _npy(path: Path, values: np.ndarray) -> None:
    """Write a ``.npy`` file (any suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.save(handle, values)


# --------------------------------------------------------------------------------------
# Descriptions and errors
# --------------------------------------------------------------------------------------


def test_packaged_descriptions_parse_and_aliases_resolve() -> None:
    assert set(list_benchmarks()) == ALL
    assert get_description("NYU").name == "nyuv2"
    assert get_description("unreal").name == "unrealstereo4k"
    assert get_description("ibims-1").name == "ibims"
    sharp = {n for n in ALL if get_description(n).sharpness}
    assert sharp == {"ibims", "sintel", "spring", "synth", "unrealstereo4k"}
    kitti = get_description("kitti")
    assert (kitti.min_depth, kitti.max_depth) == (1e-3, 80.0)
    nyu = get_description("nyuv2")
    assert (nyu.min_depth, nyu.max_depth) == (1e-3, 10.0)
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_description("no-such-benchmark")


def test_missing_dataset_error_names_variables_and_layout() -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_benchmark("nyuv2")
    message = str(info.value)
    for text in ("SHARPDEPTH_NYUV2", DATA_ROOT_ENV, "--data-root", "rgb_<NNNN>.png", "depth_"):
        assert text in message


def test_missing_root_and_empty_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_benchmark("kitti", root=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no samples matching"):
        load_benchmark("kitti", root=tmp_path)


def test_custom_description_file_and_unknown_key(tmp_path: Path) -> None:
    _rgb(tmp_path / "data" / "a.png", 4, 5)
    _npy(tmp_path / "data" / "a_gt.npy", np.full((4, 5), 2.0, np.float32))
    desc = tmp_path / "mine.toml"
    desc.write_text(
        'name = "mine"\ntitle = "Mine"\n[samples]\nglob = ["*.png"]\n'
        '[gt]\npath = "{stem}_gt.npy"\ndecoder = "npy"\n'
    )
    benchmark = load_benchmark(desc, root=tmp_path / "data")
    assert len(benchmark) == 1 and benchmark[0].id == "a"
    assert np.allclose(benchmark[0].depth, 2.0) and benchmark[0].valid.all()
    desc.write_text('name = "mine"\ntitle = "Mine"\nsharpnes = true\n')
    with pytest.raises(ValueError, match="unknown key"):
        load_benchmark(desc, root=tmp_path / "data")


def test_crop_box_kinds() -> None:
    eigen = CropSpec("pixels", 45, 471, 41, 601, reference=(480, 640))
    assert crop_box(eigen, (480, 640)) == (45, 471, 41, 601)
    with pytest.raises(ValueError, match="480x640"):
        crop_box(eigen, (240, 320))
    garg = CropSpec("fraction", 0.40810811, 0.99189189, 0.03594771, 0.96405229)
    assert crop_box(garg, (352, 1216)) == (143, 349, 43, 1172)
    assert crop_box(CropSpec("bottom_center", height=352, width=1216), (375, 1242)) == (
        23,
        375,
        13,
        1229,
    )


# --------------------------------------------------------------------------------------
# NYUv2 / KITTI
# --------------------------------------------------------------------------------------


def _nyu(root: Path) -> np.ndarray:
    """Two NYU test frames; returns the first frame's depth in millimetres."""
    depth_mm = np.full((480, 640), 2500, np.uint16)
    depth_mm[100, 100] = 0  # no depth
    depth_mm[200, 200] = 12000  # beyond 10 m
    for scene, index in (("kitchen_0004", "0001"), ("office_0005", "0009")):
        _flat_rgb(root / "test" / scene / f"rgb_{index}.png", 480, 640)
        _png16(root / "test" / scene / f"depth_{index}.png", depth_mm)
    return depth_mm


def test_nyuv2_reader_applies_eigen_crop_and_range(tmp_path: Path) -> None:
    _nyu(tmp_path / "nyuv2")
    benchmark = load_benchmark("nyuv2", root=tmp_path)  # a folder holding nyuv2/
    assert len(benchmark) == 2 and benchmark.ids == ["kitchen_0004/0001", "office_0005/0009"]
    assert not benchmark.is_sharpness and benchmark.metric
    sample = benchmark[0]
    assert isinstance(sample, EvalSample)
    assert sample.rgb.shape == (480, 640, 3) and sample.rgb.dtype == np.float32
    assert sample.depth.dtype == np.float32 and sample.depth[300, 300] == pytest.approx(2.5)
    assert np.isnan(sample.depth[100, 100]) and not sample.valid[100, 100]
    assert sample.depth[200, 200] == pytest.approx(12.0) and not sample.valid[200, 200]
    inside = np.zeros((480, 640), bool)
    inside[45:471, 41:601] = True
    assert not sample.valid[~inside].any()
    assert sample.valid.sum() == inside.sum() - 2
    assert sample.K is not None and sample.K[0, 0] == pytest.approx(518.8579)
    assert len(load_benchmark("nyuv2", root=tmp_path / "nyuv2", limit=1)) == 1


def test_nyuv2_found_through_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _nyu(tmp_path / "nyuv2")
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert len(load_benchmark("nyuv2")) == 2
    monkeypatch.delenv(DATA_ROOT_ENV)
    monkeypatch.setenv("SHARPDEPTH_NYUV2", str(tmp_path / "nyuv2"))
    assert load_benchmark("nyuv2").root == tmp_path / "nyuv2"


def test_kitti_reader_benchmark_crop_garg_crop_and_missing_gt(tmp_path: Path) -> None:
    root = tmp_path / "kitti"
    drive = "2011_09_26_drive_0002_sync"
    for frame in ("0000000069", "0000000070"):
        _flat_rgb(root / "2011_09_26" / drive / "image_02" / "data" / f"{frame}.png", 375, 1242)
    gt = np.zeros((375, 1242), np.uint16)
    gt[300, 600] = 10 * 256  # 10 m, inside the Garg crop after the benchmark crop
    gt[30, 600] = 10 * 256  # cut by the benchmark crop (top 23 rows)
    gt[200, 600] = 10 * 256  # row 177 after the crop: inside the Garg crop (rows 143..348)
    gt[100, 600] = 10 * 256  # row 77 after the crop: outside the Garg crop
    gt[300, 700] = 90 * 256  # beyond 80 m
    _png16(root / drive / "proj_depth" / "groundtruth" / "image_02" / "0000000069.png", gt)
    benchmark = load_benchmark("kitti", root=root)
    assert benchmark.ids == [f"{drive}/0000000069"]  # the frame without ground truth is skipped
    sample = benchmark[0]
    assert sample.rgb.shape == (352, 1216, 3) and sample.depth.shape == (352, 1216)
    assert sample.depth[300 - 23, 600 - 13] == pytest.approx(10.0)
    assert sample.valid[277, 587] and sample.valid[177, 587]
    assert not sample.valid[77, 587] and np.isfinite(sample.depth[77, 587])
    assert not sample.valid[277, 687]  # 90 m
    assert sample.valid.sum() == 2
    assert sample.meta["crop_box"] == (143, 349, 43, 1172)
    assert sample.K is not None
    assert sample.K[0, 2] == pytest.approx(609.5593 - 13)
    assert sample.K[1, 2] == pytest.approx(172.854 - 23)

    # A split list at the root (Marigold's eigen_test_files_with_gt.txt) replaces the glob.
    listed = f"2011_09_26/{drive}/image_02/data/0000000069.png {drive}/proj_depth/x.png 721.5\n"
    (root / "eigen_test_files_with_gt.txt").write_text(listed)
    assert load_benchmark("kitti", root=root).ids == [f"{drive}/0000000069"]
    (root / "eigen_test_files_with_gt.txt").write_text(listed.replace("0069.png", "0071.png", 1))
    with pytest.raises(FileNotFoundError, match="listed in"):
        load_benchmark("kitti", root=root)


# --------------------------------------------------------------------------------------
# ETH3D / DIODE / iBims-1
# --------------------------------------------------------------------------------------


def test_eth3d_reader_raw_float32(tmp_path: Path) -> None:
    rgb_path = tmp_path / "rgb" / "courtyard" / "images" / "dslr_images" / "DSC_0286.JPG"
    rgb_path.parent.mkdir(parents=True)
    Image.fromarray(np.full((6, 9, 3), 90, np.uint8)).save(rgb_path, format="JPEG")
    depth = np.linspace(1.0, 20.0, 54, dtype=np.float32).reshape(6, 9)
    depth[0, 0] = np.inf
    gt = tmp_path / "depth" / "courtyard_dslr_depth" / "courtyard" / "ground_truth_depth"
    gt = gt / "dslr_images" / "DSC_0286.JPG"
    gt.parent.mkdir(parents=True)
    depth.astype("<f4").tofile(gt)
    sample = load_benchmark("eth3d", root=tmp_path)[0]
    assert sample.id == "courtyard/DSC_0286"
    assert np.allclose(sample.depth[1:], depth[1:]) and not sample.valid[0, 0]
    assert sample.valid.sum() == 53 and sample.K is None
    depth[:, :8].astype("<f4").tofile(gt)  # wrong size
    with pytest.raises(ValueError, match="bytes"):
        load_benchmark("eth3d", root=tmp_path)[0]


def test_diode_reader_mask_range_and_splits(tmp_path: Path) -> None:
    for place, seed in (("indoors", 0), ("outdoors", 1)):
        folder = tmp_path / "val" / place / "scene_00019" / "scan_00183"
        stem = f"00019_00183_{place}_000_010"
        _rgb(folder / f"{stem}.png", 4, 6, seed=seed)
        depth = np.full((4, 6, 1), 5.0, np.float32)
        depth[0, 0, 0] = 0.3  # below 0.6 m
        mask = np.ones((4, 6), np.float32)
        mask[1, 1] = 0
        _npy(folder / f"{stem}_depth.npy", depth)
        _npy(folder / f"{stem}_depth_mask.npy", mask)
    benchmark = load_benchmark("diode", root=tmp_path)
    assert len(benchmark) == 2
    sample = benchmark[0]
    assert sample.id == "indoors/00019_00183_indoors_000_010"
    assert sample.depth.shape == (4, 6) and sample.valid.sum() == 22
    assert not sample.valid[0, 0] and not sample.valid[1, 1]
    assert sample.K is not None and sample.K[1, 1] == pytest.approx(927.06)
    assert load_benchmark("diode", root=tmp_path, split="outdoors").ids == [
        "outdoors/00019_00183_outdoors_000_010"
    ]
    with pytest.raises(ValueError, match="no split"):
        load_benchmark("diode", root=tmp_path, split="test")


def test_ibims_reader_edges_masks_and_calib(tmp_path: Path) -> None:
    root = tmp_path / "ibims1_core_raw"
    name = "corridor_01"
    _rgb(root / "rgb" / f"{name}.png", 6, 8)
    raw = np.full((6, 8), 2 * 65535 // 50, np.uint16)  # about 2 m
    raw[0, 0] = 0
    _png16(root / "depth" / f"{name}.png", raw)
    edges = np.zeros((6, 8), np.uint8)
    edges[:, 4] = 255
    _png8(root / "edges" / f"{name}.png", edges)
    invalid = np.full((6, 8), 255, np.uint8)
    invalid[5, 5] = 0
    _png8(root / "mask_invalid" / f"{name}.png", invalid)
    transp = np.full((6, 8), 255, np.uint8)
    transp[2, 2] = 0
    _png8(root / "mask_transp" / f"{name}.png", transp)
    (root / "calib").mkdir()
    (root / "calib" / f"{name}.txt").write_text("559.6,558.4,320.0,240.5\n")
    benchmark = load_benchmark("ibims", root=tmp_path)
    assert benchmark.is_sharpness and len(benchmark) == 1
    sample = benchmark[0]
    assert sample.depth[3, 3] == pytest.approx(float(raw[3, 3]) * 50 / 65535, rel=1e-6)
    assert sample.edges is not None and sample.edges.dtype == bool
    assert sample.edges[:, 4].all() and sample.edges.sum() == 6
    assert not sample.valid[0, 0] and not sample.valid[5, 5] and not sample.valid[2, 2]
    assert sample.valid.sum() == 45
    assert sample.K is not None and sample.K[0, 0] == pytest.approx(559.6)


# --------------------------------------------------------------------------------------
# Sintel / Spring / UnrealStereo4K / Middlebury 2014
# --------------------------------------------------------------------------------------


def _sintel_cam(path: Path, k: np.ndarray) -> None:
    """Write a Sintel ``.cam`` file: tag, M (3x3), N (3x4) as float64."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = np.array([202021.25], "<f4").tobytes() + k.astype("<f8").tobytes()
    path.write_bytes(blob + np.zeros((3, 4), "<f8").tobytes())


def test_dpt_and_pfm_round_trip(tmp_path: Path) -> None:
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(read_dpt(write_dpt(tmp_path / "a.dpt", data)), data)
    data[0, 1] = np.inf
    back = read_pfm(write_pfm(tmp_path / "a.pfm", data))
    assert np.array_equal(back, data)  # rows stored bottom-up, flipped back
    raw = (tmp_path / "a.pfm").read_bytes()
    assert raw.startswith(b"Pf\n4 3\n-1\n")
    bottom_row_first = np.frombuffer(raw[len(b"Pf\n4 3\n-1\n") :], "<f4")[:4]
    assert np.array_equal(bottom_row_first, data[2])
    (tmp_path / "bad.dpt").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="tag"):
        read_dpt(tmp_path / "bad.dpt")


def test_sintel_reader_dpt_and_cam(tmp_path: Path) -> None:
    root = tmp_path / "sintel"
    depth = np.linspace(0.5, 300.0, 30, dtype=np.float32).reshape(5, 6)
    k = np.array([[688.0, 0, 511.5], [0, 688.0, 217.5], [0, 0, 1]])
    for scene in ("alley_1", "market_5"):
        for pass_ in ("final", "clean"):
            _rgb(root / "training" / pass_ / scene / "frame_0001.png", 5, 6)
        (root / "training" / "depth" / scene).mkdir(parents=True)
        write_dpt(root / "training" / "depth" / scene / "frame_0001.dpt", depth)
    _sintel_cam(root / "training" / "camdata_left" / "alley_1" / "frame_0001.cam", k)
    benchmark = load_benchmark("sintel", root=root)
    assert benchmark.split == "final" and benchmark.is_sharpness
    assert benchmark.ids == ["alley_1/frame_0001", "market_5/frame_0001"]
    first, second = benchmark[0], benchmark[1]
    assert np.allclose(first.depth, depth)
    assert first.valid.sum() == int(((depth > 1e-3) & (depth < 200)).sum())
    assert first.K is not None and np.allclose(first.K, k)
    assert second.K is None  # no camera file: intrinsics are optional
    clean = load_benchmark("sintel", root=root, split="clean")
    assert "clean" in clean[0].meta["rgb_path"]


def test_spring_reader_needs_h5py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = tmp_path / "spring" / "train" / "0001"
    _rgb(scene / "frame_left" / "frame_left_0002.png", 4, 6)
    disparity = np.full((8, 12), 20.0, np.float32)  # stored at twice the resolution
    disparity[0, 0] = np.nan
    disparity[2, 2] = 0.0  # sky: infinite depth
    _npy(scene / "disp1_left" / "disp1_left_0002.dsp5", disparity)
    (scene / "cam_data").mkdir()
    (scene / "cam_data" / "intrinsics.txt").write_text(
        "1000.0 1000.0 3.0 2.0\n2181.8181818181815 2181.8181818181815 3.0 2.0\n"
    )
    benchmark = load_benchmark("spring", root=tmp_path)
    assert benchmark.ids == ["0001/0002"]
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if h5py were not installed
    with pytest.raises(MissingDependencyError, match="h5py"):
        benchmark[0]

    class _File:
        """Stand-in for ``h5py.File``: the fixture's .dsp5 is really a .npy file."""

        def __init__(self, path: Path, mode: str) -> None:
            self.data = {"disparity": np.load(path)}

        def __enter__(self) -> dict[str, np.ndarray]:
            return self.data

        def __exit__(self, *args: object) -> None:
            return None

    monkeypatch.setitem(sys.modules, "h5py", types.SimpleNamespace(File=_File))
    sample = benchmark[0]
    assert sample.depth.shape == (4, 6)
    expected = 2181.8181818181815 * 0.065 / 20.0  # line frame-1 of intrinsics.txt
    assert sample.depth[2, 2] == pytest.approx(expected, rel=1e-5)
    assert np.isnan(sample.depth[0, 0]) and np.isnan(sample.depth[1, 1])  # NaN, zero disparity
    assert sample.valid.sum() == 22
    assert sample.meta["disparity"].shape == (4, 6)


def test_unrealstereo4k_reader_rgba_and_splits(tmp_path: Path) -> None:
    root = tmp_path / "unrealstereo4k"
    for scene in ("00008", "00001"):
        _rgb(root / scene / "Image0" / "00000.png", 4, 6, mode="RGBA")
        disparity = np.full((4, 6), 96.0, np.float32)
        disparity[0, 0] = 0.0
        _npy(root / scene / "Disp0" / "00000.npy", disparity)
    benchmark = load_benchmark("unrealstereo4k", root=tmp_path)
    assert benchmark.split == "paper" and benchmark.ids == ["00008/00000"]
    sample = benchmark[0]
    assert sample.rgb.shape == (4, 6, 3)
    assert sample.depth[1, 1] == pytest.approx(10.0) and not sample.valid[0, 0]
    assert sample.K is not None and sample.K[0, 2] == pytest.approx(1920.0)
    assert len(load_benchmark("unrealstereo4k", root=root, split="all")) == 2


def test_middlebury2014_reader_calib_conversion(tmp_path: Path) -> None:
    root = tmp_path / "middlebury2014"
    calib = (
        "cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]\n"
        "cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]\n"
        "doffs=124.343\nbaseline=193.001\nwidth=2964\nheight=2000\nndisp=270\nisint=0\n"
    )
    disparity = np.linspace(30.0, 240.0, 20, dtype=np.float32).reshape(4, 5)
    disparity[3, 4] = np.inf
    for variant in ("perfect", "imperfect"):
        folder = root / f"Motorcycle-{variant}"
        _rgb(folder / "im0.png", 4, 5)
        write_pfm(folder / "disp0GT.pfm", disparity)
        (folder / "calib.txt").write_text(calib)
    benchmark = load_benchmark("middlebury2014", root=root)
    assert benchmark.ids == ["Motorcycle-perfect"] and benchmark.metric
    sample = benchmark[0]
    expected = 0.193001 * 3979.911 / (disparity[:3] + 124.343)
    assert np.allclose(sample.depth[:3], expected, rtol=1e-6)
    assert not sample.valid[3, 4] and sample.valid.sum() == 19
    assert sample.K is not None and sample.K[0, 2] == pytest.approx(1244.772)
    assert np.allclose(sample.meta["disparity"][:3], disparity[:3])
    assert len(load_benchmark("middlebury2014", root=root, split="all")) == 2


# --------------------------------------------------------------------------------------
# Our engine and the offline real image
# --------------------------------------------------------------------------------------


def test_synth_reader_on_generated_folder(tmp_path: Path) -> None:
    from sharpdepth.io import load_json
    from sharpdepth.synth.dataset import load_synth_sample
    from sharpdepth.synth.generate import generate_dataset

    root = generate_dataset(tmp_path / "synth", 3, 16, 16, progress=False)
    index = load_json(Path(root) / "index.json")
    splits = sorted({e["split"] for e in index["samples"]})
    for split in splits:
        benchmark = load_benchmark("synth", root=root, split=split)
        expected = [e["id"] for e in index["samples"] if e["split"] == split]
        assert benchmark.ids == expected and benchmark.is_sharpness and benchmark.metric
        sample = benchmark[0]
        truth = load_synth_sample(Path(root) / split, expected[0])
        assert sample.rgb.shape == (16, 16, 3) and sample.K is not None
        assert np.allclose(sample.K, truth.K)
        assert np.array_equal(sample.valid, truth.mask & (truth.depth > 1e-3))
        assert np.allclose(sample.depth[sample.valid], truth.depth[sample.valid])
    if "test" in splits:
        assert load_benchmark("synth", root=root).split == "test"
    absent = {"train", "val", "test", "zeroshot"} - set(splits)
    for split in absent:
        with pytest.raises(ValueError, match="has no samples"):
            load_benchmark("synth", root=root, split=split)


def test_motorcycle_benchmark_matches_calibration() -> None:
    pytest.importorskip("skimage")
    benchmark = load_benchmark("motorcycle")
    assert len(benchmark) == 1 and benchmark.alignment == "disparity" and benchmark.metric
    assert not benchmark.is_sharpness and benchmark.gt_kind == "disparity"
    with pytest.raises(ValueError, match="no splits"):
        load_benchmark("motorcycle", split="test")
    sample = benchmark[0]
    assert sample.rgb.shape == (500, 741, 3) and sample.depth.shape == (500, 741)
    disparity = sample.meta["disparity"]
    assert disparity.shape == (500, 741)
    focal, baseline, doffs = 994.978, 0.193001, 31.086
    assert sample.meta["focal_baseline"] == pytest.approx(focal * baseline)
    known = np.isfinite(disparity)
    assert 0.9 < known.mean() < 0.95 and np.array_equal(sample.valid, known)
    depth = sample.depth[known].astype(np.float64)
    assert np.allclose(depth * (disparity[known] + doffs), focal * baseline, rtol=1e-5)
    assert 2.0 < depth.min() < depth.max() < 5.5  # the scene spans about 2.1..5.0 m
    assert sample.K is not None and sample.K[0, 2] == pytest.approx(1244.772 / 4, abs=1e-3)

    # The disparity is in pixels of these images: right[y, x - d] matches left[y, x].
    from skimage import data as skdata

    left, right, _ = skdata.stereo_motorcycle()
    ys, xs = np.nonzero(known)

    def photometric_error(factor: float) -> float:
        """Mean |left - right| after shifting by ``factor`` times the disparity."""
        xr = np.rint(xs - factor * disparity[ys, xs]).astype(int)
        ok = (xr >= 0) & (xr < left.shape[1])
        return float(np.abs(left[ys[ok], xs[ok]].astype(float) - right[ys[ok], xr[ok]]).mean())

    matched = photometric_error(1.0)
    assert matched < 12.0
    assert photometric_error(0.0) > 3 * matched and photometric_error(2.0) > 3 * matched
