"""``sharpdepth predict`` end to end on tiny random-weight models (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharpdepth import io
from sharpdepth.cli.main import main
from sharpdepth.testing import write_tiny_depth_anything

SUFFIXES = (
    "_depth.npy",
    "_depth.png",
    "_depth_color.png",
    "_metric_depth.npy",
    "_metric_depth_color.png",
    "_confidence.png",
    ".json",
)


@pytest.fixture(scope="module")
def metric_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_depth_anything(tmp_path_factory.mktemp("metric"))


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    """A folder with RGB, RGBA, greyscale, 16-bit and EXIF-rotated images of odd sizes."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (33, 51, 3), dtype=np.uint8)
    rgb[8:20, 10:30] = 240
    Image.fromarray(rgb).save(folder / "rgb.png")
    rgba = np.dstack([rgb, np.full((33, 51), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(folder / "grey.png")
    Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(folder / "grey16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif.tobytes())
    return folder


def _run(*args: str) -> int:
    return main(["-q", "predict", "--no-progress", *args])


def _common(ckpt: Path, metric: Path | str, out: Path) -> list[str]:
    return [
        "--checkpoint",
        str(ckpt),
        "--metric-model",
        str(metric),
        "-o",
        str(out),
        "--processing-res",
        "64",
    ]


def test_predict_writes_every_output(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = _run(str(images), *_common(tiny_checkpoints["released"], metric_dir, out), "--ply")
    assert code == 0
    expected_sizes = {
        "rgb": (33, 51),
        "rgba": (33, 51),
        "grey": (33, 51),
        "grey16": (33, 51),
        "rotated": (51, 33),
    }
    for stem, size in expected_sizes.items():
        for suffix in (*SUFFIXES, ".ply"):
            assert (out / f"{stem}{suffix}").is_file(), f"{stem}{suffix}"
        depth = io.load_depth_npy(out / f"{stem}_depth.npy")
        assert depth.shape == size and depth.dtype == np.float32
        assert np.isfinite(depth).all()
        png = io.load_depth_png16(out / f"{stem}_depth.png")
        ok = np.isfinite(png)
        np.testing.assert_allclose(png[ok], depth[ok], atol=6e-4)
        meta = json.loads((out / f"{stem}.json").read_text())
        assert meta["intrinsics_source"] == "default_fov"
        assert meta["depth_units"] == "metres" and meta["seed"] == 0
        points, colors = io.load_ply(out / f"{stem}.ply")
        assert points.shape[1] == 3 and colors is not None and len(points) == len(colors)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_batching_does_not_change_results(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    common = _common(tiny_checkpoints["released"], metric_dir, tmp_path / "a")
    assert _run(str(images), *common) == 0
    common = _common(tiny_checkpoints["released"], metric_dir, tmp_path / "b")
    assert _run(str(images), *common, "--batch-size", "4") == 0
    for stem in ("rgb", "rgba", "grey", "grey16"):
        a = np.load(tmp_path / "a" / f"{stem}_depth.npy")
        b = np.load(tmp_path / "b" / f"{stem}_depth.npy")
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_user_intrinsics_are_recorded(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = _run(
        str(images / "rgb.png"),
        *_common(tiny_checkpoints["released"], metric_dir, out),
        "--fov",
        "90",
    )
    assert code == 0
    meta = json.loads((out / "rgb.json").read_text())
    assert meta["intrinsics_source"] == "user"
    assert meta["intrinsics"][0][0] == pytest.approx(51 / 2)


def test_bad_files_are_reported_and_the_rest_processed(
    tiny_checkpoints: dict[str, Path],
    metric_dir: Path,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    png = (images / "rgb.png").read_bytes()
    (images / "truncated.png").write_bytes(png[: len(png) // 2])
    out = tmp_path / "out"
    code = _run(
        str(images),
        str(tmp_path / "missing.png"),
        *_common(tiny_checkpoints["released"], metric_dir, out),
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "corrupt.jpg" in err and "truncated.png" in err and "missing.png" in err
    assert "5 of 7 images done; 3 failures" in err
    assert (out / "rgb_depth.npy").is_file()
    assert not (out / "corrupt_depth.npy").exists()


def test_bad_metric_output_fails_only_that_image(
    tiny_checkpoints: dict[str, Path],
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plugin = tmp_path / "my_metric.py"
    plugin.write_text(
        "import torch\n"
        "def model(image):\n"
        "    depth = 1.0 + image.mean(dim=1, keepdim=True)\n"
        "    for i in range(image.shape[0]):\n"
        "        if image.shape[-1] < image.shape[-2]:  # the rotated (portrait) image\n"
        "            depth[i, :, 0, 0] = float('nan')\n"
        "        if (image[i, 0] - image[i, 1]).abs().max() < 1e-6:  # greyscale: constant\n"
        "            depth[i] = 3.0\n"
        "    return depth\n"
    )
    out = tmp_path / "out"
    code = _run(
        str(images),
        *_common(tiny_checkpoints["released"], f"{plugin}:model", out),
        "--batch-size",
        "5",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "rotated.jpg" in err and "NaN" in err
    assert "grey.png" in err and "constant" in err
    assert (out / "rgb_depth.npy").is_file() and (out / "rgba_depth.npy").is_file()
    assert not (out / "rotated_depth.npy").exists()


def test_setup_errors_exit_2(
    tiny_checkpoints: dict[str, Path],
    metric_dir: Path,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _run(str(empty), *_common(tiny_checkpoints["released"], metric_dir, tmp_path / "o")) == 2
    assert "no image" in capsys.readouterr().err

    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert (
        _run(str(images), *_common(tiny_checkpoints["released"], metric_dir, blocker / "out")) == 2
    )
    assert "not writable" in capsys.readouterr().err

    assert _run(str(images), *_common(tmp_path / "no-ckpt", metric_dir, tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "cannot load the models" in err and "not found" in err

    assert (
        _run(str(images), *_common(tiny_checkpoints["released"], "no-such-model", tmp_path / "o"))
        == 2
    )
    assert "unknown metric model" in capsys.readouterr().err


def test_skip_existing(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert (
        _run(str(images / "rgb.png"), *_common(tiny_checkpoints["released"], metric_dir, out)) == 0
    )
    before = (out / "rgb_depth.npy").stat().st_mtime_ns
    assert (
        _run(
            str(images / "rgb.png"),
            *_common(tiny_checkpoints["released"], metric_dir, out),
            "--skip-existing",
        )
        == 0
    )
    assert (out / "rgb_depth.npy").stat().st_mtime_ns == before


def test_models_command_lists_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "depth-pro" in listing and "unidepth-v2-vitl14" in listing


def test_exif_focal_length_is_used_for_the_point_cloud(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, tmp_path: Path
) -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 28  # FocalLengthIn35mmFilm
    Image.fromarray(rgb).save(tmp_path / "exif.jpg", exif=exif.tobytes())
    out = tmp_path / "out"
    assert (
        _run(str(tmp_path / "exif.jpg"), *_common(tiny_checkpoints["released"], metric_dir, out))
        == 0
    )
    meta = json.loads((out / "exif.json").read_text())
    assert meta["intrinsics_source"] == "exif"
    assert meta["intrinsics"][0][0] == pytest.approx(
        28 * np.hypot(30, 40) / np.hypot(36, 24), rel=1e-4
    )


def test_real_photo_end_to_end(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, tmp_path: Path
) -> None:
    """A real photograph (scikit-image's coffee.png, 600 x 400) through the whole command."""
    skimage = pytest.importorskip("skimage")
    photo = Path(skimage.__file__).parent / "data" / "coffee.png"
    out = tmp_path / "out"
    code = _run(str(photo), *_common(tiny_checkpoints["released"], metric_dir, out), "--ply")
    assert code == 0
    for suffix in (*SUFFIXES, ".ply"):
        assert (out / f"coffee{suffix}").is_file()
    depth = np.load(out / "coffee_depth.npy")
    assert depth.shape == (400, 600) and np.isfinite(depth).all()
    assert np.asarray(Image.open(out / "coffee_depth_color.png")).shape == (400, 600, 3)


def test_fast_flag_selects_fast_mode(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    exact_out, fast_out = tmp_path / "exact", tmp_path / "fast"
    rgb = str(images / "rgb.png")
    assert _run(rgb, *_common(tiny_checkpoints["released"], metric_dir, exact_out)) == 0
    assert _run(rgb, *_common(tiny_checkpoints["released"], metric_dir, fast_out), "--fast") == 0
    assert json.loads((exact_out / "rgb.json").read_text())["mode"] == "exact"
    assert json.loads((fast_out / "rgb.json").read_text())["mode"] == "fast"
    exact = np.load(exact_out / "rgb_depth.npy")
    fast = np.load(fast_out / "rgb_depth.npy")
    assert fast.shape == exact.shape and not np.array_equal(fast, exact)
    assert (np.abs(fast - exact) / exact).mean() < 0.05


def test_fastest_flag_selects_fastest_mode_and_excludes_fast(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    rgb, out = str(images / "rgb.png"), tmp_path / "fastest"
    assert _run(rgb, *_common(tiny_checkpoints["released"], metric_dir, out), "--fastest") == 0
    assert json.loads((out / "rgb.json").read_text())["mode"] == "fastest"
    with pytest.raises(SystemExit):
        _run(rgb, *_common(tiny_checkpoints["released"], metric_dir, out), "--fast", "--fastest")


def test_tiny_vae_option_reaches_the_pipeline(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    from sharpdepth.testing import taesd_like

    taesd = tmp_path / "taesd"
    taesd_like(seed=1).save_pretrained(taesd)
    rgb, out = str(images / "rgb.png"), tmp_path / "tiny"
    common = _common(tiny_checkpoints["released"], metric_dir, out)
    assert _run(rgb, *common, "--fast", "--tiny-vae", str(taesd)) == 0
    settings = json.loads((out / "rgb.json").read_text())
    assert settings["mode"] == "fast" and settings["tiny_vae"] == str(taesd)
    assert np.isfinite(np.load(out / "rgb_depth.npy")).all()
    assert _run(rgb, *common, "--tiny-vae", str(tmp_path / "missing")) != 0


def test_exr_output_equals_the_npy_and_counts_in_the_set(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, tmp_path: Path
) -> None:
    from sharpdepth.export import outputs_complete

    Image.new("RGB", (40, 30), (120, 80, 40)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    common = _common(tiny_checkpoints["released"], metric_dir, out)
    assert _run(str(tmp_path / "p.png"), *common, "--no-ply", "--exr") == 0
    depth = io.load_depth_npy(out / "p_depth.npy")
    exr = io.load_depth_exr(out / "p_depth.exr")
    assert exr.dtype == np.float32 and np.array_equal(exr, depth)
    assert io.exr_header(out / "p_depth.exr")["software"] == "sharpdepth"
    meta = json.loads((out / "p.json").read_text())
    assert meta["files"]["depth_exr"]["name"] == "p_depth.exr"
    assert outputs_complete(out, "p", ply=False, exr=True)
    (out / "p_depth.exr").unlink()
    assert not outputs_complete(out, "p", ply=False, exr=True)
    assert _run(str(tmp_path / "p.png"), *common, "--no-ply", "--exr", "--skip-existing") == 0
    assert np.array_equal(io.load_depth_exr(out / "p_depth.exr"), depth)  # redone


def test_exr_of_another_program_is_not_overwritten(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, tmp_path: Path
) -> None:
    Image.new("RGB", (40, 30), (120, 80, 40)).save(tmp_path / "p.png")
    out = tmp_path / "out"
    out.mkdir()
    io.save_depth_exr(out / "p_depth.exr", np.ones((3, 3), np.float32))  # no "software"
    before = (out / "p_depth.exr").read_bytes()
    common = _common(tiny_checkpoints["released"], metric_dir, out)
    assert _run(str(tmp_path / "p.png"), *common, "--no-ply", "--exr") != 0
    assert (out / "p_depth.exr").read_bytes() == before
