"""The demo without a browser: GLB files, images, limits, the runner, the app's handler, CLI."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sharpdepth import geometry, io, vis
from sharpdepth.demo import glb, visuals
from sharpdepth.demo.limits import DEFAULT_HOST, DemoLimits
from sharpdepth.demo.runner import (
    DOWNLOAD_KINDS,
    DemoInputError,
    DemoRunner,
    check_upload,
    known_intrinsics,
    load_upload,
    prune_runs,
    safe_stem,
    view_point_cloud,
)
from sharpdepth.pipeline import SharpDepthOutput

# ----------------------------------------------------------------------------- helpers


class FakePipe:
    """Stands in for SharpDepthPipeline: a step edge in depth, blurred for the metric model."""

    metric_model = SimpleNamespace(name="fake-metric")
    processing_resolution = 64
    mode = SimpleNamespace(name="exact")

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        rgb: np.ndarray,
        intrinsics: np.ndarray | None = None,
        seed: int | None = None,
        allow_constant_metric_depth: bool = True,
    ) -> SharpDepthOutput:
        self.calls.append({"shape": rgb.shape, "intrinsics": intrinsics, "seed": seed})
        h, w = rgb.shape[:2]
        depth = np.full((h, w), 2.0, np.float32)
        depth[:, w // 2 :] = 4.0
        ramp = np.clip((np.arange(w) - (w // 2 - 4)) / 8.0, 0.0, 1.0).astype(np.float32)
        metric = np.broadcast_to(2.0 + 2.0 * ramp, (h, w)).astype(np.float32)
        gate = np.zeros((h, w), np.float32)
        gate[:, w // 2 - 2 : w // 2 + 2] = 0.9
        k = None if intrinsics is None else np.asarray(intrinsics, np.float32)[None]
        return SharpDepthOutput(
            depth=depth[None],
            metric_depth=metric[None],
            gate=gate[None],
            sharpened_depth=depth[None] / 4.0,
            prior_depth=depth[None] / 4.0,
            scale=np.array([4.0]),
            shift=np.array([0.0]),
            intrinsics=k,
            intrinsics_source=None if k is None else "user",
        )


def _write_photo(path: Path, height: int = 48, width: int = 64, **save: Any) -> Path:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, **save)
    return path


@pytest.fixture()
def runner(tmp_path: Path) -> DemoRunner:
    return DemoRunner(FakePipe(), tmp_path / "runs", settings={"checkpoint": "fake"})


# ----------------------------------------------------------------------------- GLB


def test_glb_round_trip_header_json_and_points() -> None:
    points = np.array([[0.0, 0.0, 1.0], [1.0, -2.0, 3.0], [np.nan, 0, 1], [0.5, 0.5, 2.0]])
    colors = np.array([[0, 0, 0], [255, 255, 255], [1, 2, 3], [128, 64, 32]], np.uint8)
    data = glb.glb_bytes(points, colors, name="cloud")
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    assert data[:4] == b"glTF" and len(data) % 4 == 0
    doc, binary = glb.read_glb(data)
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["mode"] == 0 and set(prim["attributes"]) == {"POSITION", "COLOR_0"}
    assert doc["extensionsUsed"] == ["KHR_materials_unlit"]
    pos = doc["accessors"][prim["attributes"]["POSITION"]]
    assert pos["count"] == 3 and pos["type"] == "VEC3" and pos["componentType"] == 5126
    # OpenCV (x right, y down, z forward) -> glTF (x right, y up, z backward)
    assert pos["min"] == [0.0, -0.5, -3.0] and pos["max"] == [1.0, 2.0, -1.0]
    assert len(binary) == 3 * 12 * 2
    got_points, got_colors = glb.glb_points(data)
    np.testing.assert_allclose(got_points, points[[0, 1, 3]] * [1, -1, -1])
    np.testing.assert_allclose(got_colors[0], 0.0)
    np.testing.assert_allclose(got_colors[1], 1.0)
    np.testing.assert_allclose(got_colors[2], glb.srgb_to_linear(colors[3]), rtol=1e-6)


def test_glb_empty_cloud_is_valid_and_bad_input_raises(tmp_path: Path) -> None:
    path = glb.save_glb(tmp_path / "empty.glb", np.zeros((0, 3)))
    doc, binary = glb.read_glb(path.read_bytes())
    assert doc["scenes"] == [{"nodes": []}] and binary == b""
    assert glb.glb_points(path.read_bytes())[0].shape == (0, 3)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        glb.glb_bytes(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="uint8"):
        glb.glb_bytes(np.zeros((4, 3)), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"glTF 2\.0"):
        glb.read_glb(b"PK\x03\x04" + bytes(20))


def test_srgb_to_linear_endpoints_and_midpoint() -> None:
    lin = glb.srgb_to_linear(np.array([0, 10, 128, 255], np.uint8).repeat(3).reshape(4, 3))
    np.testing.assert_allclose(lin[:, 0], [0.0, 10 / 255 / 12.92, 0.21586, 1.0], rtol=1e-4)


# ----------------------------------------------------------------------------- images


def test_depth_pair_shares_one_colour_scale() -> None:
    metric = np.linspace(1.0, 5.0, 200, dtype=np.float32).reshape(10, 20)
    sharp = metric[:, ::-1].copy()
    vmin, vmax = visuals.depth_color_range(metric, sharp)
    assert (vmin, vmax) == pytest.approx(vis.depth_range(metric))
    a, b = visuals.depth_pair(metric, sharp, vmin, vmax)
    # the same depth gets the same colour in both maps
    np.testing.assert_array_equal(a[:, ::-1], b)
    assert not np.array_equal(a[:, 0], a[:, -1])
    # metric map without a valid pixel: fall back to the sharpened depth's range
    nan = np.full_like(metric, np.nan)
    assert visuals.depth_color_range(nan, sharp) == pytest.approx(vis.depth_range(sharp))
    with pytest.raises(ValueError, match="valid"):
        visuals.depth_color_range(nan, nan)


@pytest.mark.parametrize(("vmin", "vmax"), [(0.345, 0.582), (1.2, 37.5), (0.9, 1.1), (2.0, 80.0)])
def test_legend_ticks_lie_in_range_with_metre_labels(vmin: float, vmax: float) -> None:
    ticks = visuals.legend_ticks(vmin, vmax)
    values = [v for v, _ in ticks]
    assert len(ticks) >= 3 and values == sorted(set(values))
    assert all(vmin <= v <= vmax for v in values)
    assert all(label.endswith(" m") and float(label[:-2]) == pytest.approx(v) for v, label in ticks)
    # spread along the bar (inverse depth), not bunched at one end
    positions = [visuals.inverse_depth_position(v, vmin, vmax) for v in values]
    assert min(positions) < 0.2 and max(positions) > 0.8
    assert visuals.legend_ticks(2.0, 2.0) == [(2.0, "2.00 m")]


def test_depth_legend_bar_colours_match_the_depth_colours() -> None:
    depth = np.linspace(0.5, 6.0, 120 * 160, dtype=np.float32).reshape(120, 160)
    vmin, vmax = 0.6, 5.5
    out = visuals.depth_legend(depth, vmin, vmax)
    assert out.dtype == np.uint8 and out.shape[0] == 120 and out.shape[1] > 160 + 20
    np.testing.assert_array_equal(out[:, :160], vis.colorize_depth(depth, vmin=vmin, vmax=vmax))
    # the bar: each tick's row has the colour of the tick's depth
    lay = visuals.colorbar_layout(120)
    column = out[:, 160 + lay.left + lay.width // 2]
    for value in (vmax, 2.0, vmin):
        row = lay.row(visuals.inverse_depth_position(value, vmin, vmax))
        expected = vis.colorize_depth(np.array([[value]]), vmin=vmin, vmax=vmax)[0, 0]
        assert np.abs(column[row].astype(int) - expected.astype(int)).max() <= 12
    assert (column[lay.row(0.0)] != column[lay.row(1.0)]).any()


def test_confidence_map_is_one_minus_gate() -> None:
    gate = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32).repeat(30, 0).repeat(30, 1)
    out = visuals.confidence_map(gate)
    grey = out[:, :60, 0].astype(float) / 255.0
    np.testing.assert_allclose(grey, 1.0 - gate, atol=1 / 255)
    assert out.shape[1] > 60


# ----------------------------------------------------------------------------- limits


def test_check_upload_refuses_large_non_image_and_huge_files(tmp_path: Path) -> None:
    photo = _write_photo(tmp_path / "a.png")
    assert check_upload(photo, DemoLimits()) == (64, 48)
    with pytest.raises(DemoInputError, match=r"accepts images up to 0\.001 MB"):
        check_upload(photo, DemoLimits(max_upload_mb=0.001))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(DemoInputError, match="not an image"):
        check_upload(text, DemoLimits())
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DemoInputError, match="empty"):
        check_upload(empty, DemoLimits())
    with pytest.raises(DemoInputError, match=r"64x48 \(0\.0 megapixels\).*0\.001 megapixels"):
        check_upload(photo, DemoLimits(max_megapixels=0.001))
    with pytest.raises(ValueError):
        DemoLimits(max_side=8)


def test_load_upload_downscales_and_scales_exif_focal(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x8769] = {0xA405: 35}  # FocalLengthIn35mmFilm
    path = _write_photo(tmp_path / "Big photo (1).jpg", 100, 400, exif=exif)
    full = io.load_image(path)
    assert full.exif_focal_px is not None
    upload = load_upload(path, DemoLimits(max_side=200))
    assert upload.rgb.shape == (50, 200, 3) and upload.rgb.dtype == np.float32
    assert upload.original_size == (100, 400) and upload.scale == 0.5
    assert upload.exif_focal_px == pytest.approx(full.exif_focal_px * 0.5)
    assert upload.name == "Big_photo_1"
    small = load_upload(path, DemoLimits())
    assert small.scale == 1.0 and small.rgb.shape == (100, 400, 3)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(path.read_bytes()[:-200])  # header intact, data cut short
    with pytest.raises(DemoInputError, match=r"cannot read the image: .*truncated") as info:
        load_upload(broken, DemoLimits())
    assert str(tmp_path) not in str(info.value)  # no server paths in user messages


def test_known_intrinsics_from_focal_or_fov() -> None:
    assert known_intrinsics(40, 60) is None
    assert known_intrinsics(40, 60, focal_px=0, fov_deg=None) is None
    k = known_intrinsics(40, 60, focal_px=100.0, scale=0.5)
    assert k is not None and k[0, 0] == pytest.approx(50.0) and k[0, 2] == pytest.approx(29.5)
    k = known_intrinsics(40, 60, fov_deg=90.0)
    assert k is not None and k[0, 0] == pytest.approx(30.0)
    with pytest.raises(DemoInputError, match="not both"):
        known_intrinsics(40, 60, focal_px=100.0, fov_deg=60.0)
    with pytest.raises(DemoInputError, match="positive"):
        known_intrinsics(40, 60, focal_px=-3.0)
    with pytest.raises(DemoInputError, match="180"):
        known_intrinsics(40, 60, fov_deg=200.0)


def test_safe_stem_and_prune(tmp_path: Path) -> None:
    assert safe_stem("/tmp/x/My photo!.JPG") == "My_photo"
    assert safe_stem("....png") == "image"
    old, new = tmp_path / "run-old", tmp_path / "run-new"
    old.mkdir()
    new.mkdir()
    (tmp_path / "keep-me").mkdir()
    now = new.stat().st_mtime
    import os

    os.utime(old, (now - 7200, now - 7200))
    assert prune_runs(tmp_path, 3600, now=now) == 1
    assert not old.exists() and new.exists() and (tmp_path / "keep-me").exists()


# ----------------------------------------------------------------------------- 3D view


def test_view_point_cloud_subsamples_with_exact_intrinsics() -> None:
    h, w = 30, 40
    depth = np.full((h, w), 2.0, np.float32)
    depth[:, 20:] = 5.0
    depth[0, 0] = np.nan
    k = geometry.intrinsics_from_fov(w, h, 60.0).numpy()
    rgb = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    full, full_colors = geometry.point_cloud(depth, k, rgb)
    points, colors = view_point_cloud(depth, k, rgb, max_points=h * w)
    np.testing.assert_allclose(points, full)
    np.testing.assert_array_equal(colors, full_colors)
    # stride 2: exactly the points of the even pixels of the full cloud
    points, colors = view_point_cloud(depth, k, rgb, max_points=300)
    all_points = geometry.depth_to_points(torch.from_numpy(depth), torch.from_numpy(k)).numpy()
    sub = all_points[::2, ::2].reshape(-1, 3)
    sub = sub[np.isfinite(sub).all(axis=1)]
    assert points.shape[0] <= 300
    np.testing.assert_allclose(points, sub, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(colors[0], rgb[0, 2])
    # dropping flying pixels: the two columns at the step go, as in the PLY export
    kept, _ = view_point_cloud(depth, k, rgb, drop_edges=True, max_points=h * w)
    ply_points, _ = geometry.point_cloud(depth, k, rgb, drop_edges=True)
    np.testing.assert_allclose(kept, ply_points)
    assert kept.shape[0] == full.shape[0] - 2 * h


# ----------------------------------------------------------------------------- runner


def test_runner_writes_downloads_views_and_reports_progress(
    runner: DemoRunner, tmp_path: Path
) -> None:
    photo = _write_photo(tmp_path / "desk.png", 48, 64)
    steps: list[tuple[float, str]] = []
    result = runner.run(photo, fov_deg=90.0, progress=lambda f, m: steps.append((f, m)))
    fractions = [f for f, _ in steps]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert all(msg for _, msg in steps)
    # downloads: .npy in metres, 16-bit PNG in millimetres, PLY, JSON
    names = [p.name for p in result.downloads]
    assert names == ["desk_depth.npy", "desk_depth.png", "desk.ply", "desk.json"]
    assert len(DOWNLOAD_KINDS) == len(names)
    depth = io.load_depth_npy(result.downloads[0])
    assert depth.shape == (48, 64) and depth[0, 0] == 2.0 and depth[0, -1] == 4.0
    np.testing.assert_allclose(io.load_depth_png16(result.downloads[1]), depth, atol=5e-4)
    ply_points, ply_colors = io.load_ply(result.downloads[2])
    assert ply_points.shape == (48 * 64, 3) and ply_colors is not None
    meta = io.load_json(result.downloads[3])
    assert meta["intrinsics_source"] == "user" and meta["checkpoint"] == "fake"
    assert meta["intrinsics"][0][0] == pytest.approx(32.0)  # 90 degrees over 64 px
    # the pipeline got the user's intrinsics
    call = runner.pipe.calls[-1]
    assert call["intrinsics"][0, 0] == pytest.approx(32.0) and call["seed"] == 0
    # images: same shape as the photo, same colour scale, legend and confidence panels
    assert result.metric_rgb.shape == result.depth_rgb.shape == (48, 64, 3)
    np.testing.assert_array_equal(result.metric_rgb[:, 0], result.depth_rgb[:, 0])
    assert result.depth_legend.shape[0] == 48 and result.depth_legend.shape[1] > 64
    assert result.confidence.shape[0] == 48
    # 3D views: both depths, OpenCV -> glTF frame
    metric_pts, _ = glb.glb_points(result.glb_metric.read_bytes())
    sharp_pts, _ = glb.glb_points(result.glb_depth.read_bytes())
    assert metric_pts.shape == sharp_pts.shape == (48 * 64, 3)
    assert set(np.unique(-sharp_pts[:, 2]).round(3)) == {2.0, 4.0}
    assert len(np.unique(-metric_pts[:, 2]).round(3)) > 2  # the metric model's ramp
    assert "fx = 32.0 px" in result.summary and "2.00 to 4.00 m" in result.summary
    assert result.folder.parent == runner.out_root


def test_runner_drop_edges_and_default_intrinsics(runner: DemoRunner, tmp_path: Path) -> None:
    photo = _write_photo(tmp_path / "p.png", 48, 64)
    result = runner.run(photo, drop_edges=True)
    n_ply = io.load_ply(result.downloads[2])[0].shape[0]
    assert n_ply == 48 * 64 - 2 * 48  # the two columns at the step
    assert glb.glb_points(result.glb_depth.read_bytes())[0].shape[0] == n_ply
    meta = json.loads(result.downloads[3].read_text())
    assert meta["intrinsics_source"] == "default_fov" and meta["drop_edges"] is True
    assert "assumed 60° horizontal field of view" in result.summary
    assert runner.pipe.calls[-1]["intrinsics"] is None
    # each run has its own folder
    again = runner.run(photo)
    assert again.folder != result.folder and result.folder.exists()


def test_runner_refuses_bad_uploads_before_running_the_model(
    runner: DemoRunner, tmp_path: Path
) -> None:
    text = tmp_path / "x.png"
    text.write_text("hello")
    with pytest.raises(DemoInputError, match="not an image"):
        runner.run(text)
    photo = _write_photo(tmp_path / "p.png")
    with pytest.raises(DemoInputError, match="not both"):
        runner.run(photo, focal_px=50.0, fov_deg=50.0)
    assert runner.pipe.calls == []


def test_runner_with_the_bundled_nano_models(tmp_path: Path) -> None:
    from skimage import data

    from sharpdepth.pipeline import SharpDepthPipeline

    photo = tmp_path / "coffee.jpg"
    Image.fromarray(data.coffee()[::2, ::2]).save(photo, quality=90)
    pipe = SharpDepthPipeline.from_pretrained("nano", device="cpu")
    result = DemoRunner(pipe, tmp_path / "runs").run(photo)
    depth = result.prediction.depth
    assert depth.shape == (200, 300) and np.isfinite(depth).all() and (depth > 0).all()
    assert result.color_range[0] < result.color_range[1]
    assert result.prediction.intrinsics_source == "default_fov"
    assert glb.glb_points(result.glb_depth.read_bytes())[0].shape == (200 * 300, 3)


# ----------------------------------------------------------------------------- app and CLI


def test_require_gradio_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from sharpdepth.demo.app import require_gradio
    from sharpdepth.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "sharpdepth\[demo\]"'):
        require_gradio()


def test_example_photos_are_bundled_and_small() -> None:
    from sharpdepth.demo.app import example_photos

    photos = example_photos()
    assert [p.name for p in photos] == ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert sum(p.stat().st_size for p in photos) < 200_000
    for p in photos:
        assert io.load_image(p).rgb.shape[2] == 3


def test_handler_outputs_and_clear_errors(runner: DemoRunner, tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from sharpdepth.demo.app import make_handler

    handler = make_handler(runner)
    photo = _write_photo(tmp_path / "p.png", 48, 64)
    pair, legend, confidence, cloud_metric, cloud_depth, files, summary = handler(
        str(photo), None, None, False
    )
    assert pair[0].shape == pair[1].shape == (48, 64, 3)
    assert legend.shape[0] == confidence.shape[0] == 48
    assert cloud_metric.endswith("_metric.glb") and cloud_depth.endswith("_sharpdepth.glb")
    assert [Path(f).suffix for f in files] == [".npy", ".png", ".ply", ".json"]
    assert "p" in summary
    with pytest.raises(gr.Error) as info:
        handler(None, None, None, False)
    assert info.value.message.startswith("Upload a photo first")
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(gr.Error) as info:
        handler(str(text), None, None, False)
    assert info.value.message.startswith("This file is not an image")
    with pytest.raises(gr.Error) as info:
        handler(str(photo), 100.0, 60.0, False)
    assert info.value.message.startswith("Give either the focal length")


def test_photo_input_turns_unreadable_files_into_a_clear_error(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from gradio.data_classes import ImageData

    from sharpdepth.demo.app import NOT_AN_IMAGE, photo_input

    component = photo_input(type="filepath", image_mode=None)
    assert isinstance(component, gr.Image) and component.get_block_name() == "image"
    photo = _write_photo(tmp_path / "p.png")
    assert component.preprocess(ImageData(path=str(photo), orig_name="p.png")) == str(photo)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(gr.Error) as info:
        component.preprocess(ImageData(path=str(text), orig_name="notes.jpg"))
    assert info.value.message == NOT_AN_IMAGE


def test_build_app_has_every_part(runner: DemoRunner) -> None:
    gr = pytest.importorskip("gradio")
    from sharpdepth.demo.app import ELEM_IDS, build_app

    app = build_app(runner, model_info="Models: fake")
    assert isinstance(app, gr.Blocks)
    by_id = {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}
    assert set(ELEM_IDS.values()) <= set(by_id)
    assert isinstance(by_id["depth-slider"], gr.ImageSlider)
    assert isinstance(by_id["cloud-metric"], gr.Model3D)
    assert isinstance(by_id["cloud-sharpdepth"], gr.Model3D)
    assert isinstance(by_id["downloads"], gr.File)
    assert app.analytics_enabled is False
    run_fns = [fn for fn in app.fns.values() if fn.name == "estimate_depth"]
    assert len(run_fns) == 1 and len(run_fns[0].outputs) == 7


def test_cli_demo_binds_localhost_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gradio")
    import sharpdepth.demo.app as demo_app
    from sharpdepth.cli.main import main
    from sharpdepth.pipeline import SharpDepthPipeline

    seen: dict[str, Any] = {}

    def fake_from_pretrained(checkpoint: str, **kwargs: Any) -> FakePipe:
        seen["checkpoint"], seen["load"] = checkpoint, kwargs
        return FakePipe()

    def fake_launch(app: Any, **kwargs: Any) -> str:
        seen["launch"] = kwargs
        return "http://127.0.0.1:1/"

    monkeypatch.setattr(SharpDepthPipeline, "from_pretrained", fake_from_pretrained)
    monkeypatch.setattr(demo_app, "launch_app", fake_launch)
    assert main(["-q", "demo", "--device", "cpu"]) == 0
    assert seen["checkpoint"] == "nano" and seen["load"]["device"] == "cpu"
    assert seen["launch"]["host"] == DEFAULT_HOST == "127.0.0.1"
    assert seen["launch"]["share"] is False and seen["launch"]["port"] is None
    assert main(["-q", "demo", "--host", "0.0.0.0", "--port", "8123", "--share"]) == 0
    assert seen["launch"]["host"] == "0.0.0.0" and seen["launch"]["port"] == 8123
    assert seen["launch"]["share"] is True
    assert seen["launch"]["limits"].max_upload_mb == DemoLimits().max_upload_mb


def test_cli_demo_without_gradio_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from sharpdepth.cli.main import main

    monkeypatch.setitem(sys.modules, "gradio", None)
    assert main(["-q", "demo"]) == 2


def test_cli_demo_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from sharpdepth.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["demo", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--checkpoint", "--metric-model", "--published", "--host", "--port", "--share"):
        assert flag in text
