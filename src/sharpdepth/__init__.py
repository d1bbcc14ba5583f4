"""sharpdepth: sharp metric depth from one image (SharpDepth, Pham et al., CVPR 2025)."""

from __future__ import annotations

__version__ = "0.1.0"
