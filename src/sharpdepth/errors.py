"""Exceptions raised by sharpdepth, so callers can tell our errors from bugs."""

from __future__ import annotations


class SharpDepthError(Exception):
    """Base class of every error sharpdepth raises on purpose."""


class CheckpointError(SharpDepthError):
    """A checkpoint folder or Hub id is missing, incomplete or of an unknown layout."""


class ImageReadError(SharpDepthError):
    """An input image is unreadable, corrupt or of an unsupported kind."""


class InvalidMetricDepthError(SharpDepthError):
    """A metric depth model returned NaN, inf, non-positive or constant depth."""


class MissingDependencyError(SharpDepthError, ImportError):
    """An optional dependency is needed; the message says how to install it."""
