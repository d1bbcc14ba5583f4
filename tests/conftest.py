"""Shared fixtures: tiny random-weight checkpoints in the published layouts (no network)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny checkpoint folder per layout: released, lotus, marigold, sharpdepth."""
    from sharpdepth.testing import LAYOUTS, write_tiny_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {layout: write_tiny_checkpoint(root / layout, layout) for layout in LAYOUTS}


@pytest.fixture()
def photo() -> np.ndarray:
    """A 33 x 51 uint8 RGB test image with a few sharp-edged shapes."""
    rng = np.random.default_rng(0)
    img = np.full((33, 51, 3), 200, dtype=np.uint8)
    img[5:25, 8:20] = (30, 60, 90)
    img[10:30, 30:45] = (220, 40, 40)
    img[:, 24:26] = 10
    noise = rng.integers(-10, 10, size=img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)
