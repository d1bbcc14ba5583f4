"""The demo's limits and defaults (no heavy imports: the CLI's parser reads them)."""

from __future__ import annotations

from dataclasses import dataclass

#: Where the demo binds by default: this machine only.
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoLimits:
    """Limits on what the demo accepts and how much it sends to the browser.

    Attributes:
        max_upload_mb: largest accepted file, in megabytes of 2**20 bytes (as gradio counts).
        max_megapixels: largest accepted image, in millions of pixels (checked from the
            file header, before decoding).
        max_side: images with a longer side above this many pixels are downscaled to it
            (anti-aliased) before anything else; outputs have the downscaled size.
        max_points: most points in each 3D view (the depth map is subsampled with a
            regular stride to fit); the PLY download keeps every pixel.
    """

    max_upload_mb: float = 25.0
    max_megapixels: float = 50.0
    max_side: int = 1280
    max_points: int = 200_000

    def __post_init__(self) -> None:
        if not (self.max_upload_mb > 0 and self.max_megapixels > 0):
            raise ValueError("upload limits must be positive")
        if self.max_side < 32 or self.max_points < 1:
            raise ValueError("max_side must be at least 32 and max_points at least 1")

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 2**20)
