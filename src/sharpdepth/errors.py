"""Exceptions raised by sharpdepth, so callers can tell our errors from bugs."""

from __future__ import annotations

#: Longest reason :func:`one_line` keeps, in characters.
ONE_LINE_LIMIT = 300


class SharpDepthError(Exception):
    """Base class of every error sharpdepth raises on purpose."""


class CheckpointError(SharpDepthError):
    """A checkpoint folder or Hub id is missing, incomplete, corrupt or of an unknown layout,
    or it asks for something a checkpoint may not do (run code)."""


class ImageReadError(SharpDepthError):
    """An input image is unreadable, corrupt or of an unsupported kind."""


class InvalidMetricDepthError(SharpDepthError):
    """A metric depth model returned NaN, inf, non-positive or constant depth."""


class MissingDependencyError(SharpDepthError, ImportError):
    """An optional dependency is needed; the message says how to install it."""


class OutputExistsError(SharpDepthError, FileExistsError):
    """An output would replace a file that sharpdepth did not write; it is left alone."""


class NoSpaceError(SharpDepthError, OSError):
    """The output folder's file system is full (``errno`` is ``ENOSPC``)."""


class FolderInUseError(SharpDepthError, OSError):
    """Another sharpdepth run holds the output folder's lock."""


def one_line(exc: BaseException, limit: int = ONE_LINE_LIMIT) -> str:
    """``str(exc)`` on one line (whitespace collapsed), cut to ``limit`` characters; the
    exception's type name when it has no message."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
