"""Rendering every style, writing datasets, and the ``sharpdepth synth`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sharpdepth import io
from sharpdepth.cli.main import main
from sharpdepth.synth.generate import SampleSpec, generate_dataset, plan_samples, sample_paths
from sharpdepth.synth.render import render_sample
from sharpdepth.synth.styles import HELD_OUT_STYLES, STYLES


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_renders_valid_images(style: str) -> None:
    a = render_sample(style, 5, 48, 64)
    assert a.rgb.shape == (48, 64, 3) and a.rgb.dtype == np.uint8
    assert a.depth.shape == (48, 64) and a.depth.dtype == np.float32
    assert np.isfinite(a.depth).all()
    np.testing.assert_array_equal(a.mask, a.depth > 0)
    np.testing.assert_array_equal(a.mask, a.instances > 0)
    assert a.mask.mean() > 0.3  # mostly surfaces, some sky at most
    near, far = STYLES[style].depth_range
    assert a.depth[a.mask].min() > 0.5 * near * 0.1 and a.depth[a.mask].max() < 10 * far
    assert a.rgb.std() > 5  # not a flat image
    b = render_sample(style, 5, 48, 64)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    c = render_sample(style, 6, 48, 64)
    assert not np.array_equal(a.depth, c.depth)


def test_plan_assigns_held_out_styles_to_zeroshot_only() -> None:
    specs = plan_samples(200, list(STYLES), 0, HELD_OUT_STYLES)
    for spec in specs:
        assert (spec.split == "zeroshot") == (spec.style in HELD_OUT_STYLES)
    splits = {s.split for s in specs}
    assert {"train", "val", "test", "zeroshot"} <= splits
    assert plan_samples(200, list(STYLES), 0, HELD_OUT_STYLES) == specs
    assert plan_samples(200, list(STYLES), 1, HELD_OUT_STYLES) != specs


def test_dataset_files_index_and_determinism(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", 6, 24, 32, seed=3, progress=False)
    index = json.loads((a / "index.json").read_text())
    assert len(index["samples"]) == 6 and (a / "contact_sheet.png").is_file()
    for entry in index["samples"]:
        paths = sample_paths(a, SampleSpec(**entry))
        depth = io.load_depth_npy(paths["depth"])
        mask = io.load_gray_png(paths["mask"]) > 0.5
        instances = io.load_label_png16(paths["instances"])
        meta = io.load_json(paths["meta"])
        assert depth.shape == (24, 32) and io.load_rgb_png(paths["rgb"]).shape == (24, 32, 3)
        np.testing.assert_array_equal(mask, depth > 0)
        np.testing.assert_array_equal(mask, instances > 0)
        assert np.asarray(meta["K"]).shape == (3, 3) and meta["style"] == entry["style"]
    b = generate_dataset(tmp_path / "b", 6, 24, 32, seed=3, workers=2, progress=False)
    for entry in index["samples"]:
        pa, pb = sample_paths(a, SampleSpec(**entry)), sample_paths(b, SampleSpec(**entry))
        for kind in ("rgb", "depth", "mask", "instances"):
            assert pa[kind].read_bytes() == pb[kind].read_bytes(), kind


def test_resume_and_settings_mismatch(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "d", 4, 16, 16, seed=0, progress=False, contact_sheet=False)
    index = json.loads((root / "index.json").read_text())
    first, second = (sample_paths(root, SampleSpec(**e)) for e in index["samples"][:2])
    first["meta"].unlink()  # as if interrupted before the sidecar was written
    kept = second["depth"].stat().st_mtime_ns
    generate_dataset(root, 4, 16, 16, seed=0, progress=False, contact_sheet=False)
    assert first["meta"].is_file()
    assert second["depth"].stat().st_mtime_ns == kept
    with pytest.raises(ValueError, match="other settings"):
        generate_dataset(root, 4, 16, 16, seed=1, progress=False)
    with pytest.raises(ValueError, match="unknown style"):
        generate_dataset(tmp_path / "e", 2, 16, 16, styles=["moon"], progress=False)


def test_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["-q", "synth", "-n", "3", "--size", "20", "28", "--seed", "2", "-o", str(out)]
    assert main([*args, "--no-progress", "--workers", "1", "--style", "indoor,tabletop"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert {s["style"] for s in index["samples"]} == {"indoor", "tabletop"}
    assert (out / "contact_sheet.png").is_file()
    assert main(["synth", "--list-styles", "-n", "1"]) == 0
    assert "street" in capsys.readouterr().out
    assert main(["-q", "synth", "-n", "1", "-o", str(tmp_path / "x"), "--style", "moon"]) == 2
