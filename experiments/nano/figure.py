"""The README's nano figure: the first test-split scenes, and one point cloud from the side.

Rows are the first ``--rows`` samples of the split (in index order, not picked):
RGB | ground truth | metric model | SharpDepth | gate, depth in one colour scale per row
(the ground truth's). Below, a side view (depth to the right, height up) of the point
clouds of one scene from the metric model and from SharpDepth, ground truth in grey
behind each: points floating between objects and background are the flying pixels a
soft metric model makes.

    python experiments/nano/figure.py --data data/nano-synth -o docs/images/nano_results.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from sharpdepth import io, vis
from sharpdepth.geometry import depth_to_points
from sharpdepth.pipeline import SharpDepthPipeline
from sharpdepth.synth.dataset import SynthFolderDataset

TILE = 192
COLUMNS = ("RGB", "ground truth", "metric model", "SharpDepth", "gate")


def _tile(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).resize((TILE, TILE), Image.Resampling.BILINEAR)


def _row(
    rgb: np.ndarray, gt: np.ndarray, valid: np.ndarray, out: Any, with_prior: bool
) -> list[Image.Image]:
    lo, hi = vis.depth_range(gt, valid)
    tiles = [
        _tile((np.clip(rgb, 0, 1) * 255).astype(np.uint8)),
        _tile(vis.colorize_depth(gt, valid=valid, vmin=lo, vmax=hi)),
        _tile(vis.colorize_depth(out.metric_depth[0], vmin=lo, vmax=hi)),
        _tile(vis.colorize_depth(out.depth[0], vmin=lo, vmax=hi)),
        _tile(vis.colorize_scalar(out.gate[0], cmap="turbo")),
    ]
    if with_prior:  # the prior pass in normalised units, near = warm
        prior = (1.0 - out.prior_depth[0]) / 2.0
        tiles.append(_tile(vis.colorize_scalar(np.clip(prior, 0, 1), cmap="turbo")))
    return tiles


def side_view(
    clouds: list[np.ndarray],
    colours: list[tuple[int, int, int]],
    size: tuple[int, int],
    bounds: tuple[float, float, float, float],
) -> Image.Image:
    """Points ``[N, 3]`` (x, y, z) drawn as pixels at (z, -y) inside ``bounds``."""
    width, height = size
    z0, z1, y0, y1 = bounds
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for points, colour in zip(clouds, colours, strict=True):
        u = ((points[:, 2] - z0) / (z1 - z0) * (width - 1)).round().astype(int)
        v = ((points[:, 1] - y0) / (y1 - y0) * (height - 1)).round().astype(int)
        keep = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        canvas[v[keep], u[keep]] = colour
    return Image.fromarray(canvas)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/nano-synth"))
    p.add_argument("--split", default="test")
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--cloud-row", type=int, default=0, help="which row's scene to view")
    p.add_argument("--checkpoint", default="nano")
    p.add_argument("--metric-model", default=None)
    p.add_argument("--with-prior", action="store_true", help="add the prior pass (diagnosis)")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/images/nano_results.png"))
    args = p.parse_args()
    pipe = SharpDepthPipeline.from_pretrained(
        args.checkpoint, metric_model=args.metric_model, device="cpu"
    )
    dataset = SynthFolderDataset(args.data, args.split)
    rows, cloud = [], None
    for i in range(min(args.rows, len(dataset))):
        item = dataset[i]
        rgb = item["image"].permute(1, 2, 0).numpy()
        gt, valid = item["depth"][0].numpy(), item["mask"][0].numpy()
        out = pipe(rgb, intrinsics=item["K"].numpy(), seed=0)
        rows.append(_row(rgb, gt, valid, out, args.with_prior))
        if i == args.cloud_row:
            k = item["K"]
            cloud = [
                depth_to_points(torch.from_numpy(d.astype(np.float32)), k)[valid].numpy()
                for d in (gt, out.metric_depth[0], out.depth[0])
            ]
    header = 22
    columns = (*COLUMNS, "prior pass") if args.with_prior else COLUMNS
    sheet = Image.new("RGB", (TILE * len(columns), header + TILE * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((c * TILE + 6, 5), name, fill="black")
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * TILE, header + r * TILE))
    if cloud is not None:
        gt_points = cloud[0]
        z0, z1 = np.percentile(gt_points[:, 2], [0.5, 99.5])
        y0, y1 = np.percentile(gt_points[:, 1], [0.5, 99.5])
        pad_z, pad_y = 0.05 * (z1 - z0), 0.05 * (y1 - y0)
        bounds = (float(z0 - pad_z), float(z1 + pad_z), float(y0 - pad_y), float(y1 + pad_y))
        panel_w = sheet.width // 2
        views = []
        for name, points, colour in (
            ("metric model", cloud[1], (200, 40, 40)),
            ("SharpDepth", cloud[2], (30, 90, 200)),
        ):
            view = side_view(
                [gt_points, points], [(190, 190, 190), colour], (panel_w, 2 * TILE), bounds
            )
            ImageDraw.Draw(view).text(
                (6, 5), f"{name} (grey: ground truth); side view, depth ->", fill="black"
            )
            views.append(view)
        full = Image.new("RGB", (sheet.width, sheet.height + 2 * TILE + 4), "white")
        full.paste(sheet, (0, 0))
        for k, view in enumerate(views):
            full.paste(view, (k * panel_w, sheet.height + 4))
        sheet = full
    args.output.parent.mkdir(parents=True, exist_ok=True)
    io.save_rgb_png(args.output, np.asarray(sheet))
    print(args.output)


if __name__ == "__main__":
    main()
