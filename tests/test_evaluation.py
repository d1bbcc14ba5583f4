"""The evaluator: alignment by prediction kind, the results table, ``sharpdepth eval``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sharpdepth.cli.main import main
from sharpdepth.evaluation.evaluator import (
    AFFINE_DEPTH,
    METRIC_DEPTH,
    evaluate,
    resolve_methods,
    score,
)
from sharpdepth.pipeline import SharpDepthPipeline
from sharpdepth.testing import SmoothMetricModel, write_tiny_depth_anything


def _step_scene() -> tuple[np.ndarray, np.ndarray]:
    gt = np.full((40, 48), 4.0)
    gt[10:30, 12:30] = 2.0
    return gt, np.ones_like(gt, dtype=bool)


def test_perfect_metric_prediction_scores_zero() -> None:
    gt, valid = _step_scene()
    row, aligned = score(gt.copy(), gt, valid, METRIC_DEPTH, boundary=True)
    assert row["abs_rel"] == 0.0 and row["delta1"] == 1.0
    assert row["pdbe_acc"] == 0.0 and row["pdbe_comp"] == 0.0
    assert row["boundary_f1"] > 0.0
    np.testing.assert_array_equal(aligned, gt)
    edges = np.zeros_like(valid)
    edges[10, 12:30] = edges[29, 12:30] = edges[10:30, 12] = edges[10:30, 29] = True
    with_edges, _ = score(gt.copy(), gt, valid, METRIC_DEPTH, edges=edges)
    assert {"dbe_acc", "dbe_comp"} <= set(with_edges)


def test_metric_prediction_is_not_aligned_but_affine_is() -> None:
    gt, valid = _step_scene()
    scaled, _ = score(1.5 * gt, gt, valid, METRIC_DEPTH)
    assert scaled["abs_rel"] == pytest.approx(0.5)
    affine, _ = score(0.25 * gt - 3.0, gt, valid, AFFINE_DEPTH)
    assert affine["abs_rel"] < 1e-9


def test_disparity_only_ground_truth_aligns_everything_in_disparity() -> None:
    gt, valid = _step_scene()
    metric_scaled, _ = score(3.0 * gt, gt, valid, METRIC_DEPTH, metric_ground_truth=False)
    assert metric_scaled["abs_rel"] < 1e-9
    affine, _ = score(2.0 * gt + 1.0, gt, valid, AFFINE_DEPTH, metric_ground_truth=False)
    assert affine["abs_rel"] < 1e-9


def test_resolve_methods() -> None:
    assert resolve_methods("all")[0].name == "sharpdepth"
    assert [m.name for m in resolve_methods("metric,prior")] == ["metric", "prior"]
    with pytest.raises(ValueError, match="unknown method"):
        resolve_methods("oracle")


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sharpdepth.synth.generate import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    return generate_dataset(root, 12, 40, 48, seed=1, progress=False, contact_sheet=False)


def test_evaluate_writes_tables_for_every_method(
    tiny_checkpoints: dict[str, Path], synth_root: Path, tmp_path: Path
) -> None:
    from sharpdepth.evaluation.benchmarks import load_benchmark

    pipe = SharpDepthPipeline.from_pretrained(
        tiny_checkpoints["released"], metric_model=SmoothMetricModel(), device="cpu"
    )
    benchmark = load_benchmark("synth", root=synth_root, split="train", limit=3)
    result = evaluate(
        pipe,
        benchmark,
        resolve_methods("all"),
        out_dir=tmp_path,
        processing_resolution=48,
        progress=False,
    )
    assert set(result.summary) == {
        "sharpdepth",
        "metric",
        "prior-metric-aligned",
        "prior",
        "guided-filter",
    }
    for row in result.summary.values():
        assert {"abs_rel", "delta1", "pdbe_acc", "pdbe_comp"} <= set(row)
        assert np.isfinite(row["abs_rel"])
    assert len(result.per_sample["metric"]) == 3
    assert (tmp_path / "results.md").read_text().count("|") > 20
    table = json.loads((tmp_path / "results.json").read_text())
    assert table["methods"]["metric"]["abs_rel"] == pytest.approx(
        result.summary["metric"]["abs_rel"]
    )
    assert list(tmp_path.glob("worst_*.png"))


def test_eval_command_on_synth_and_motorcycle(
    tiny_checkpoints: dict[str, Path],
    synth_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metric = write_tiny_depth_anything(tmp_path / "metric")
    common = ["--checkpoint", str(tiny_checkpoints["released"]), "--metric-model", str(metric)]
    common += ["--processing-res", "48", "--no-progress"]
    code = main(
        [
            "-q",
            "eval",
            "--benchmark",
            "synth",
            "--data-root",
            str(synth_root),
            "--split",
            "train",
            "--limit",
            "2",
            "-o",
            str(tmp_path / "synth"),
            *common,
        ]
    )
    assert code == 0 and (tmp_path / "synth" / "results.csv").is_file()
    assert "guided-filter" in capsys.readouterr().out
    pytest.importorskip("skimage")
    code = main(
        [
            "-q",
            "eval",
            "--benchmark",
            "motorcycle",
            "--model",
            "metric,prior-metric-aligned,guided-filter",
            "-o",
            str(tmp_path / "moto"),
            *common,
        ]
    )
    assert code == 0
    rows = json.loads((tmp_path / "moto" / "results.json").read_text())["methods"]
    assert set(rows) == {"metric", "prior-metric-aligned", "guided-filter"}
    assert (
        main(["-q", "eval", "--benchmark", "nyuv2", "--data-root", str(tmp_path / "none"), *common])
        == 2
    )
    assert "SHARPDEPTH_NYUV2" in capsys.readouterr().err  # says which variable to set
