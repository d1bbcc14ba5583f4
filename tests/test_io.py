"""Tests of sharpdepth.io: image loading, finding, atomic writing and result files."""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharpdepth import io
from sharpdepth.errors import ImageReadError


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


# ------------------------------------------------------------------ load_image


def test_load_rgb_png_values(tmp_path: Path) -> None:
    arr = np.array([[[0, 128, 255], [10, 20, 30]]], dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = io.load_image(tmp_path / "a.png")
    assert img.rgb.shape == (1, 2, 3) and img.rgb.dtype == np.float32
    np.testing.assert_allclose(img.rgb, arr / 255.0, atol=1e-6)
    assert img.bit_depth == 8 and img.exif_focal_px is None
    assert img.path == tmp_path / "a.png"
    assert (img.height, img.width) == (1, 2)


def test_load_rgba_composited_over_white(tmp_path: Path) -> None:
    arr = np.array([[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    rgb = io.load_image(tmp_path / "a.png").rgb
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(rgb[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(rgb[0, 2], [1 - 128 / 255] * 3, atol=1e-6)


def test_load_la_composited_over_white(tmp_path: Path) -> None:
    arr = np.array([[[0, 0], [0, 255]]], dtype=np.uint8)
    Image.fromarray(arr, "LA").save(tmp_path / "a.png")
    rgb = io.load_image(tmp_path / "a.png").rgb
    np.testing.assert_allclose(rgb[0, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(rgb[0, 1], [0, 0, 0], atol=1e-6)


def test_load_greyscale_8bit(tmp_path: Path) -> None:
    arr = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "g.png")
    img = io.load_image(tmp_path / "g.png")
    assert img.rgb.shape == (2, 2, 3)
    for ch in range(3):
        np.testing.assert_allclose(img.rgb[..., ch], arr / 255.0, atol=1e-6)


def test_load_greyscale_16bit(tmp_path: Path) -> None:
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = io.load_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.rgb.dtype == np.float32
    for ch in range(3):
        np.testing.assert_allclose(img.rgb[..., ch], arr / 65535.0, atol=1e-6)


def test_load_32bit_int_image_as_16bit(tmp_path: Path) -> None:
    arr = np.array([[0, 65535]], dtype=np.int32)
    Image.fromarray(arr).save(tmp_path / "i.tif")
    img = io.load_image(tmp_path / "i.tif")
    np.testing.assert_allclose(img.rgb[0, :, 0], [0, 1], atol=1e-6)


def test_load_palette(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1])
    pal.save(tmp_path / "p.png")
    rgb = io.load_image(tmp_path / "p.png").rgb
    np.testing.assert_allclose(rgb[0], [[1, 0, 0], [0, 0, 1]], atol=1e-6)


def test_load_palette_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1])
    pal.save(tmp_path / "p.png", transparency=1)
    rgb = io.load_image(tmp_path / "p.png").rgb
    np.testing.assert_allclose(rgb[0], [[1, 0, 0], [1, 1, 1]], atol=1e-6)


def _write_png16_rgb(path: Path, arr: np.ndarray) -> None:
    """Minimal encoder of a 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    path.write_bytes(png + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_load_16bit_rgb_png(tmp_path: Path) -> None:
    arr = np.array([[[0, 30000, 65535], [1000, 2000, 3000]]], dtype=np.uint16)
    _write_png16_rgb(tmp_path / "c16.png", arr)
    img = io.load_image(tmp_path / "c16.png")
    assert img.rgb.shape == (1, 2, 3) and img.rgb.dtype == np.float32
    np.testing.assert_allclose(img.rgb, arr / 65535.0, atol=1 / 255)


def test_load_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (3, 2), (0, 255, 0, 0)).save(tmp_path / "c.jpg")
    rgb = io.load_image(tmp_path / "c.jpg").rgb
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 1], atol=0.05)


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :10] = 255  # left quarter white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif.get_ifd(0x8769)[0xA405] = 28  # FocalLengthIn35mmFilm
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif, quality=95)
    img = io.load_image(tmp_path / "r.jpg")
    assert img.rgb.shape == (40, 20, 3)
    # the white left columns become the top rows after a clockwise rotation
    assert img.rgb[:8].mean() > 0.9 and img.rgb[12:].mean() < 0.1
    expected = 28 * math.hypot(20, 40) / math.hypot(36, 24)
    assert img.exif_focal_px == pytest.approx(expected)


def test_exif_zero_focal_is_none(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 0
    Image.new("RGB", (4, 4)).save(tmp_path / "z.jpg", exif=exif)
    assert io.load_image(tmp_path / "z.jpg").exif_focal_px is None


@pytest.mark.parametrize("name", ["t.png", "t.jpg"])
def test_truncated_image_raises(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / ("full" + Path(name).suffix)
    Image.fromarray(arr).save(full)
    data = full.read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=re.escape(str(tmp_path / name))):
        io.load_image(tmp_path / name)


def test_non_image_and_garbage_raise(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage garbage")
    (tmp_path / "empty.jpg").write_bytes(b"")
    for name in ("notes.txt", "fake.png", "empty.jpg"):
        with pytest.raises(ImageReadError) as info:
            io.load_image(tmp_path / name)
        message = str(info.value)
        assert message.startswith(str(tmp_path / name) + ": ") and "\n" not in message


def test_missing_and_directory_raise(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        io.load_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="directory"):
        io.load_image(tmp_path)


# ------------------------------------------------------------------ find_images


def _touch_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"x")


def test_find_images_folder_sorted_and_case_insensitive(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["b.PNG", "a.jpg", "c.txt", ".hidden.png", "d.JPEG"])
    _touch_images(tmp_path / "sub", ["e.png"])
    paths, errors = io.find_images([tmp_path])
    assert errors == []
    assert [p.name for p in paths] == ["a.jpg", "b.PNG", "d.JPEG"]
    paths, _ = io.find_images([tmp_path], recursive=True)
    assert [p.name for p in paths] == ["a.jpg", "b.PNG", "d.JPEG", "e.png"]


def test_find_images_files_globs_dedup_and_errors(tmp_path: Path) -> None:
    _touch_images(tmp_path, ["a.png", "b.png", "c.jpg", "data.bin"])
    empty = tmp_path / "empty"
    empty.mkdir()
    inputs = [
        tmp_path / "c.jpg",
        str(tmp_path / "*.png"),
        tmp_path / "a.png",  # duplicate
        tmp_path / "data.bin",  # explicit non-image file is kept
        tmp_path / "missing.png",
        empty,
        str(tmp_path / "*.webp"),
    ]
    paths, errors = io.find_images(inputs)
    assert [p.name for p in paths] == ["c.jpg", "a.png", "b.png", "data.bin"]
    assert len(errors) == 3
    assert "missing.png" in errors[0] and "no such" in errors[0]
    assert str(empty) in errors[1] and "no image" in errors[1]
    assert "*.webp" in errors[2]
    assert all("\n" not in e for e in errors)


def test_find_images_recursive_glob(tmp_path: Path) -> None:
    _touch_images(tmp_path / "x" / "y", ["deep.png"])
    _touch_images(tmp_path, ["top.png"])
    paths, errors = io.find_images([str(tmp_path / "**" / "*.png")])
    assert errors == []
    assert sorted(p.name for p in paths) == ["deep.png", "top.png"]


# ------------------------------------------------------------------ atomic_write


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.png"

    def bad(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.atomic_write(target, bad)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keyboard_interrupt_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")

    def interrupted(tmp: Path) -> None:
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.atomic_write(target, interrupted)
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    seen: list[Path] = []

    def good(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".out.tmp-") and tmp.suffix == ".txt"
        tmp.write_text("new")

    io.atomic_write(target, good)
    assert target.read_text() == "new"
    assert not seen[0].exists()
    assert _leftovers(target.parent) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_atomic_write_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(folder))):
            io.save_json(folder / "x.json", {"a": 1})
    finally:
        folder.chmod(0o700)


def test_atomic_write_permission_error_names_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io.os, "open", deny)
    with pytest.raises(PermissionError, match=re.escape(f"{tmp_path} is not writable")):
        io.save_json(tmp_path / "x.json", {"a": 1})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_output_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="not a folder"):
        io.save_json(tmp_path / "file" / "x.json", {})


# ------------------------------------------------------------------ depth and image files


def test_depth_npy_round_trip(tmp_path: Path) -> None:
    depth = np.array([[1.5, np.nan], [np.inf, 0.25]], dtype=np.float32)
    io.save_depth_npy(tmp_path / "d.npy", depth)
    back = io.load_depth_npy(tmp_path / "d.npy")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, depth)
    # a non-.npy suffix is kept as is
    io.save_depth_npy(tmp_path / "d.depth", depth)
    assert (tmp_path / "d.depth").exists()


def test_depth_exr_round_trip(tmp_path: Path) -> None:
    depth = np.random.default_rng(0).uniform(0.1, 80.0, (7, 11)).astype(np.float32)
    depth[0, 0], depth[1, 1] = np.nan, np.inf
    path = io.save_depth_exr(tmp_path / "d.exr", depth, software="me")
    back = io.load_depth_exr(path)
    assert back.dtype == np.float32 and back.shape == (7, 11)
    np.testing.assert_array_equal(back, depth)  # bit-exact, NaN and inf included
    assert io.exr_header(path)["software"] == "me"
    assert io.exr_header(tmp_path / "missing.exr") == {}
    assert [p.name for p in tmp_path.iterdir()] == ["d.exr"]  # no temporary file left


def test_depth_png16_round_trip_invalid_and_clipping(tmp_path: Path) -> None:
    depth = np.array(
        [[1.2344, 0.0, -1.0], [np.nan, np.inf, 70.0], [65.535, 0.0001, 3.0]], dtype=np.float32
    )
    io.save_depth_png16(tmp_path / "d.png", depth)
    with Image.open(tmp_path / "d.png") as im:
        stored = np.asarray(im)
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, [[1234, 0, 0], [0, 0, 65535], [65535, 1, 3000]])
    back = io.load_depth_png16(tmp_path / "d.png")
    assert back.dtype == np.float32
    expected = np.array([[1.234, np.nan, np.nan], [np.nan, np.nan, 65.535], [65.535, 0.001, 3.0]])
    np.testing.assert_allclose(back, expected, atol=1e-6)
    # custom scale (centimetres)
    io.save_depth_png16(tmp_path / "c.png", np.array([[2.5]], np.float32), scale=100.0)
    np.testing.assert_allclose(io.load_depth_png16(tmp_path / "c.png", scale=100.0), [[2.5]])


def test_depth_png16_rejects_8bit(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "e.png")
    with pytest.raises(ValueError, match="16-bit"):
        io.load_depth_png16(tmp_path / "e.png")


def test_writer_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        io.save_depth_npy(tmp_path / "d.npy", np.zeros((2, 2, 1), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        io.save_depth_png16(tmp_path / "d.png", np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="uint8"):
        io.save_rgb_png(tmp_path / "r.png", np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        io.save_rgb_png(tmp_path / "r.png", np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="bits"):
        io.save_gray_png(tmp_path / "g.png", np.zeros((2, 2)), bits=12)
    with pytest.raises(ValueError, match="scale"):
        io.save_depth_png16(tmp_path / "d.png", np.ones((2, 2), np.float32), scale=0)
    assert list(tmp_path.iterdir()) == []


def test_rgb_and_gray_png_round_trip(tmp_path: Path) -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    io.save_rgb_png(tmp_path / "r.png", rgb)
    np.testing.assert_array_equal(io.load_rgb_png(tmp_path / "r.png"), rgb)
    values = np.array([[0.0, 0.5], [1.0, np.nan]])
    io.save_gray_png(tmp_path / "g8.png", values)
    np.testing.assert_allclose(
        io.load_gray_png(tmp_path / "g8.png"), [[0, 0.5], [1, 0]], atol=1 / 255
    )
    io.save_gray_png(tmp_path / "g16.png", np.array([[0.25, 2.0]]), bits=16)
    with Image.open(tmp_path / "g16.png") as im:
        assert np.asarray(im).dtype == np.uint16
    np.testing.assert_allclose(io.load_gray_png(tmp_path / "g16.png"), [[0.25, 1.0]], atol=1e-4)


def test_ply_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(50, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (50, 3), dtype=np.uint8)
    io.save_ply(tmp_path / "c.ply", points, colors)
    header = (tmp_path / "c.ply").read_bytes()[:200]
    assert b"binary_little_endian" in header and b"property uchar red" in header
    p2, c2 = io.load_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(p2, points)
    assert c2 is not None
    np.testing.assert_array_equal(c2, colors)
    io.save_ply(tmp_path / "n.ply", points.astype(np.float64))
    p3, c3 = io.load_ply(tmp_path / "n.ply")
    np.testing.assert_array_equal(p3, points)
    assert c3 is None
    io.save_ply(tmp_path / "e.ply", np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8))
    p4, c4 = io.load_ply(tmp_path / "e.ply")
    assert p4.shape == (0, 3) and c4 is not None and c4.shape == (0, 3)


def test_ply_validation_and_truncation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        io.save_ply(tmp_path / "x.ply", np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="colors"):
        io.save_ply(tmp_path / "x.ply", np.zeros((4, 3), np.float32), np.zeros((3, 3), np.uint8))
    io.save_ply(tmp_path / "t.ply", np.ones((10, 3), np.float32))
    data = (tmp_path / "t.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="truncated"):
        io.load_ply(tmp_path / "t.ply")


def test_json_round_trip(tmp_path: Path) -> None:
    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "p": tmp_path, "t": (1, 2)}
    io.save_json(tmp_path / "m.json", obj)
    back = io.load_json(tmp_path / "m.json")
    assert back == {"a": 1.5, "b": [0, 1, 2], "c": None, "p": str(tmp_path), "t": [1, 2]}
    assert "NaN" not in (tmp_path / "m.json").read_text()


def test_atomic_write_folder_replaces_on_success_and_keeps_the_old_on_failure(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "model"
    io.atomic_write_folder(dest, lambda tmp: (tmp / "a.txt").write_text("one"))
    assert (dest / "a.txt").read_text() == "one"

    def failing(tmp: Path) -> None:
        (tmp / "a.txt").write_text("two")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.atomic_write_folder(dest, failing)
    assert (dest / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers
    io.atomic_write_folder(dest, lambda tmp: (tmp / "b.txt").write_text("three"))
    assert sorted(p.name for p in dest.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
