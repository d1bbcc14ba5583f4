"""One evaluator for every method: run the pipeline once per sample, score all methods.

A method is a way of turning one :class:`~sharpdepth.pipeline.SharpDepthOutput` (and
the input image) into a prediction, and declares what kind of prediction it is, so the
evaluator picks the alignment to the ground truth:

==========================  ==================  ===========================================
method                      kind                what
==========================  ==================  ===========================================
``sharpdepth``              metric depth        the pipeline's output
``metric``                  metric depth        the metric model alone
``prior-metric-aligned``    metric depth        the prior pass aligned (least squares, all
                                                pixels) to the metric model: the paper's
                                                "UD-aligned Lotus"
``prior``                   affine depth        the prior pass, least-squares aligned to
                                                the ground truth (the paper's Lotus row)
``guided-filter``           metric depth        the metric depth refined by a guided filter
                                                on the image: the classical baseline
==========================  ==================  ===========================================

Metric depth is scored as is ("none" alignment) when the benchmark has metric ground
truth; affine depth is aligned by least squares in depth. Benchmarks whose ground truth
is only known up to an affine map of disparity are scored in disparity for everything.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sharpdepth import io, vis
from sharpdepth.evaluation import alignment, baselines, metrics
from sharpdepth.method import apply_scale_shift, fit_scale_shift

LOGGER = logging.getLogger(__name__)

METRIC_DEPTH, AFFINE_DEPTH = "metric_depth", "affine_depth"


@dataclass(frozen=True)
class Method:
    """A method to evaluate.

    Attributes:
        name: short name used on the command line and in tables.
        kind: ``"metric_depth"`` or ``"affine_depth"``.
        description: one line for the results table.
        predict: ``(output, index, rgb [H, W, 3]) -> [H, W]`` prediction.
    """

    name: str
    kind: str
    description: str
    predict: Callable[[Any, int, np.ndarray], np.ndarray]


def _prior_aligned_to_metric(out: Any, i: int, rgb: np.ndarray) -> np.ndarray:
    """The prior's depth mapped to metres by least squares against the metric depth."""
    prior = torch.from_numpy(out.prior_depth[i][None, None])
    metric = torch.from_numpy(out.metric_depth[i][None, None])
    scale, shift = fit_scale_shift(prior, metric, torch.ones_like(prior, dtype=torch.bool))
    return apply_scale_shift(prior, scale, shift)[0, 0].numpy()


def _guided(out: Any, i: int, rgb: np.ndarray) -> np.ndarray:
    """The metric depth refined by a guided filter with the image as guide."""
    radius = max(2, round(0.01 * max(rgb.shape[:2])))
    return baselines.guided_filter(rgb, out.metric_depth[i], radius=radius, eps=1e-3)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "sharpdepth", METRIC_DEPTH, "SharpDepth (sharpened, metric)", lambda o, i, r: o.depth[i]
        ),
        Method(
            "metric", METRIC_DEPTH, "metric depth model alone", lambda o, i, r: o.metric_depth[i]
        ),
        Method(
            "prior-metric-aligned",
            METRIC_DEPTH,
            "prior aligned to the metric model (UD-aligned Lotus)",
            _prior_aligned_to_metric,
        ),
        Method(
            "prior",
            AFFINE_DEPTH,
            "prior, aligned to ground truth",
            lambda o, i, r: o.prior_depth[i],
        ),
        Method("guided-filter", METRIC_DEPTH, "metric depth + guided filter (baseline)", _guided),
    )
}


def resolve_methods(names: str | Sequence[str]) -> list[Method]:
    """Methods from ``"all"``, a comma-separated string or a list of names."""
    items = [
        n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()
    ]
    if items == ["all"]:
        return list(METHODS.values())
    unknown = [n for n in items if n not in METHODS]
    if unknown or not items:
        raise ValueError(f"unknown method(s) {unknown}; choose from all, {', '.join(METHODS)}")
    return [METHODS[n] for n in items]


def alignment_mode(kind: str, metric_ground_truth: bool) -> str:
    """Alignment used for a prediction ``kind`` on a benchmark (see the module docstring)."""
    if not metric_ground_truth:
        return "lstsq_disparity"
    return "none" if kind == METRIC_DEPTH else "lstsq"


def score(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    kind: str,
    metric_ground_truth: bool = True,
    boundary: bool = False,
    edges: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Align one prediction and compute its metrics.

    Args:
        pred: ``[H, W]`` prediction (metres for metric depth).
        gt: ``[H, W]`` ground-truth depth (metres, or any affine-of-disparity units when
            ``metric_ground_truth`` is False it is still depth-like: larger = farther).
        valid: ``[H, W]`` bool evaluation mask.
        kind: the prediction's kind.
        metric_ground_truth: whether ``gt`` is in metres.
        boundary: also compute the boundary metrics of dense ground truth (the paper's
            PDBE and Depth Pro's boundary F1).
        edges: ``[H, W]`` bool annotated depth edges (iBims-1): adds the iBims DBE.

    Returns:
        The metrics and the aligned prediction.
    """
    mode = alignment_mode(kind, metric_ground_truth)
    if kind == AFFINE_DEPTH and mode == "lstsq_disparity":
        # an affine-invariant depth has no meaningful inverse until its shift is known:
        # bring it to depth units first, then align in disparity like everything else
        pred, _ = alignment.align(pred, gt, valid, "lstsq")
        pred = np.maximum(pred, 1e-3)
    aligned, info = alignment.align(pred, gt, valid, mode)
    result = dict(metrics.depth_metrics(aligned, gt, valid))
    if boundary:
        result.update(metrics.pseudo_boundary_error(aligned, gt, valid))
        result["boundary_f1"] = float(metrics.boundary_f1(aligned, gt, valid))
    if edges is not None:
        result.update(metrics.ibims_dbe(aligned, edges, valid))
    result["scale"] = float(info.get("scale", 1.0))
    result["shift"] = float(info.get("shift", 0.0))
    return result, aligned


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every numeric column over samples (ignoring NaN)."""
    keys = [k for k in rows[0] if isinstance(rows[0][k], int | float)]
    out = {}
    for k in keys:
        values = np.array([r[k] for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


def _write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""

    def writer(tmp: Path) -> None:
        tmp.write_text(text)

    io.atomic_write(path, writer)


def write_tables(results: dict[str, dict[str, float]], out_dir: Path, title: str) -> None:
    """Write the summary as Markdown, CSV and JSON (one row per method)."""
    columns = [c for c in next(iter(results.values())) if c not in ("scale", "shift")]
    lines = [
        f"# {title}",
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    csv = ["method," + ",".join(columns)]
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.4g}" for c in columns) + " |")
        csv.append(name + "," + ",".join(f"{row[c]:.6g}" for c in columns))
    _write_text(out_dir / "results.md", "\n".join(lines) + "\n")
    _write_text(out_dir / "results.csv", "\n".join(csv) + "\n")
    io.save_json(out_dir / "results.json", {"title": title, "methods": results})


def save_worst(
    out_dir: Path, samples: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
) -> None:
    """Visualise samples: RGB | ground truth | prediction | |error| (ground-truth colours)."""
    for value, sid, rgb, gt, pred, valid in samples:
        lo, hi = vis.depth_range(gt, valid) if valid.any() else (0.1, 1.0)
        err = np.where(valid, np.abs(pred - gt) / np.maximum(gt, 1e-6), 0.0)
        panels = [
            (np.clip(rgb, 0, 1) * 255).astype(np.uint8),
            vis.colorize_depth(gt, valid=valid, vmin=lo, vmax=hi),
            vis.colorize_depth(pred, vmin=lo, vmax=hi),
            vis.colorize_scalar(np.clip(err, 0, 0.5) / 0.5, cmap="turbo", valid=valid),
        ]
        io.save_rgb_png(
            out_dir / f"worst_{sid}_absrel{value:.3f}.png", np.concatenate(panels, axis=1)
        )


@dataclass
class EvaluationResult:
    """Summary and per-sample metrics of one evaluation run.

    Attributes:
        summary: method name -> metric name -> mean over samples.
        per_sample: method name -> one dict of metrics per sample (with ``"id"``).
        title: benchmark title.
    """

    summary: dict[str, dict[str, float]]
    per_sample: dict[str, list[dict[str, Any]]]
    title: str


def evaluate(
    pipe: Any,
    benchmark: Any,
    methods: Sequence[Method],
    out_dir: str | Path | None = None,
    seed: int = 0,
    processing_resolution: int | None = None,
    use_intrinsics: bool = False,
    n_worst: int = 3,
    progress: bool = True,
) -> EvaluationResult:
    """Run ``pipe`` once per sample of ``benchmark`` and score every method.

    Args:
        pipe: a :class:`~sharpdepth.pipeline.SharpDepthPipeline`.
        benchmark: from :func:`sharpdepth.evaluation.benchmarks.load_benchmark`.
        methods: what to score (see :data:`METHODS`).
        out_dir: where to write ``results.{md,csv,json}``, ``per_sample.json`` and
            ``worst_*.png`` (nothing is written when ``None``).
        seed: noise seed of the pipeline.
        processing_resolution: the pipeline's processing resolution (its default when
            ``None``).
        use_intrinsics: pass the benchmark's intrinsics to the metric model.
        n_worst: visualisations of the samples with the highest AbsRel (first method).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    description = benchmark.description
    metric_gt = bool(description.metric) and description.alignment != "disparity"
    boundary = bool(description.sharpness)
    per_sample: dict[str, list[dict[str, Any]]] = {m.name: [] for m in methods}
    worst: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for sample in tqdm(
        benchmark, total=len(benchmark), desc=description.name, disable=not progress
    ):
        gt = np.nan_to_num(sample.depth, nan=0.0)
        if not sample.valid.any():
            LOGGER.warning("%s: no valid ground truth; skipped", sample.id)
            continue
        out = pipe(
            sample.rgb,
            intrinsics=sample.K if (use_intrinsics and sample.K is not None) else None,
            processing_resolution=processing_resolution,
            seed=seed,
        )
        for index, method in enumerate(methods):
            pred = method.predict(out, 0, sample.rgb)
            row, aligned = score(
                pred, gt, sample.valid, method.kind, metric_gt, boundary, sample.edges
            )
            per_sample[method.name].append({"id": sample.id, **row})
            if index == 0 and n_worst > 0:
                worst.append((row["abs_rel"], sample.id, sample.rgb, gt, aligned, sample.valid))
                worst = sorted(worst, key=lambda w: -w[0] if math.isfinite(w[0]) else 0.0)[:n_worst]
    if not any(per_sample.values()):
        raise ValueError(f"{description.name}: no sample with valid ground truth")
    summary = {name: _mean(rows) for name, rows in per_sample.items() if rows}
    alignment_note = "disparity (affine)" if not metric_gt else "metric: none, affine: lstsq depth"
    count = len(next(iter(per_sample.values())))
    title = f"{description.title} ({count} samples; alignment {alignment_note})"
    result = EvaluationResult(summary=summary, per_sample=per_sample, title=title)
    if out_dir is not None:
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        write_tables(summary, folder, title)
        io.save_json(folder / "per_sample.json", per_sample)
        save_worst(folder, worst)
    return result
