"""Reading images and writing results: the only module that touches image and result files.

Conventions
-----------
* Images come back as ``float32`` arrays of shape ``[H, W, 3]`` with values in ``[0, 1]``,
  already rotated according to their EXIF orientation.
* Depth maps are ``float32`` arrays of shape ``[H, W]`` in metres; ``NaN`` marks an invalid
  pixel in memory.
* Every writer is atomic: it writes a hidden temporary file next to the target (named
  ``.<stem>.tmp-<random><suffix>``) and moves it into place with :func:`os.replace`, so an
  interrupted run never leaves a half-written file at the target path.
* 16-bit PNG depth (:func:`save_depth_png16`) stores ``round(depth * scale)`` as ``uint16``
  (millimetres at the default ``scale=1000``) with ``0`` meaning "invalid"; the reader
  (:func:`load_depth_png16`) turns ``0`` back into ``NaN``, so ``NaN`` round-trips.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import logging
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, features

from sharpdepth.errors import FolderInUseError, ImageReadError, NoSpaceError

LOGGER = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
    | ({".avif"} if features.check("avif") else set())
)
"""Lower-case file suffixes (with the dot) recognised as images; matching is case-insensitive.
Animated images (GIF, WebP, AVIF) are read as their first frame."""

UNSUPPORTED_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".heic", ".heif", ".avif", ".jxl", ".jp2", ".svg", ".psd", ".raw", ".dng", ".cr2", ".nef"}
    - IMAGE_EXTENSIONS
)
"""Image formats sharpdepth cannot read: a folder search reports them with a warning."""

_EXIF_IFD_POINTER = 0x8769
_EXIF_FOCAL_35MM = 0xA405  # FocalLengthIn35mmFilm
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_PNG16_MAX = 65535
_GLOB_MAGIC = ("*", "?", "[")


# --------------------------------------------------------------------------------------
# Reading images
# --------------------------------------------------------------------------------------


@dataclass
class LoadedImage:
    """An image decoded for the pipeline.

    Attributes:
        rgb: ``float32`` array ``[H, W, 3]`` with values in ``[0, 1]``, EXIF orientation
            applied, alpha composited over white.
        path: the file the image was read from.
        exif_focal_px: focal length in pixels of the (rotated) image, derived from the EXIF
            tag ``FocalLengthIn35mmFilm`` with the diagonal rule
            ``f_px = f35 * sqrt(W**2 + H**2) / sqrt(36**2 + 24**2)``; ``None`` if the tag is
            absent or zero.
        bit_depth: bits per sample of the decoded data (1, 8, 16 or 32).
    """

    rgb: np.ndarray
    path: Path
    exif_focal_px: float | None
    bit_depth: int

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.rgb.shape[1])


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` as suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _exif_focal_35mm(image: Image.Image) -> float | None:
    """``FocalLengthIn35mmFilm`` in millimetres from the EXIF of ``image``, or ``None``."""
    try:
        exif = image.getexif()
    except Exception:  # malformed EXIF must never make a readable image unreadable
        LOGGER.debug("could not parse EXIF", exc_info=True)
        return None
    value: Any = None
    try:
        value = exif.get_ifd(_EXIF_IFD_POINTER).get(_EXIF_FOCAL_35MM)
    except Exception:
        LOGGER.debug("could not parse the EXIF sub-IFD", exc_info=True)
    if value is None:
        value = exif.get(_EXIF_FOCAL_35MM)
    if value is None:
        return None
    try:
        focal = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(focal) or focal <= 0:
        return None
    return focal


def composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """``[H, W, 4]`` float RGBA in ``[0, 1]`` composited over white -> ``[H, W, 3]``."""
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def _to_float_rgb(image: Image.Image) -> tuple[np.ndarray, int]:
    """Convert a decoded PIL image of any mode to (``float32 [H, W, 3]`` in [0, 1], bit depth)."""
    mode = image.mode
    grey: np.ndarray
    if mode.startswith("I;16"):
        grey = np.asarray(image).astype(np.float32) / _PNG16_MAX
        return np.repeat(grey[..., None], 3, axis=2), 16
    if mode == "I":
        data = np.asarray(image)
        if data.size and (data.min() < 0 or data.max() > _PNG16_MAX):
            LOGGER.warning("32-bit integer image has values outside [0, 65535]; clipping")
        grey = np.clip(data.astype(np.float32) / _PNG16_MAX, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2), 16
    if mode == "F":
        data = np.asarray(image).astype(np.float32)
        finite = data[np.isfinite(data)]
        peak = float(finite.max()) if finite.size else 0.0
        if peak > 1.0:
            divisor = 255.0 if peak <= 255.0 else float(_PNG16_MAX)
            LOGGER.warning("float image with values above 1; dividing by %g", divisor)
            data = data / divisor
        grey = np.clip(np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2), 32
    bits = 1 if mode == "1" else 8
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA")).astype(np.float32) / 255.0
        return composite_over_white(rgba), bits
    if mode in ("L", "1"):
        grey = np.asarray(image.convert("L")).astype(np.float32) / 255.0
        return np.repeat(grey[..., None], 3, axis=2), bits
    return np.asarray(image.convert("RGB")).astype(np.float32) / 255.0, bits


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A decoded PIL image of any mode as ``float32 [H, W, 3]`` in ``[0, 1]``.

    Same conversions as :func:`load_image` (alpha over white, greyscale replicated,
    16-bit divided by 65535); the EXIF orientation is *not* applied here.
    """
    rgb, _ = _to_float_rgb(image)
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def _note_animation(image: Image.Image, path: Path) -> None:
    """Log that only the first frame of an animated image is used."""
    try:
        animated = bool(getattr(image, "is_animated", False))
    except Exception:  # a broken later frame does not matter: only the first is used
        animated = True
    if animated:
        LOGGER.info("%s: animated image; using its first frame", path)


def load_image(path: str | Path) -> LoadedImage:
    """Read an image file into a :class:`LoadedImage`.

    The EXIF orientation is applied, RGBA/LA/transparent-palette images are composited
    over white, greyscale images (``L``, ``I;16``, ``I``, ``F``) are replicated to three
    channels, 8-bit data are divided by 255 and 16-bit data by 65535. 16-bit *colour*
    PNGs are reduced to 8 bits per channel by Pillow itself, so they load with
    ``bit_depth=8``.

    Args:
        path: the image file.

    Returns:
        The decoded image; ``rgb`` is ``float32 [H, W, 3]`` in ``[0, 1]``.

    Raises:
        ImageReadError: the file is missing, unreadable, truncated, corrupt or not an
            image; the message starts with the path.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()  # force a full decode so that truncation is caught here
            focal_35 = _exif_focal_35mm(opened)
            oriented = ImageOps.exif_transpose(opened)
            rgb, bit_depth = _to_float_rgb(oriented)
            _note_animation(opened, path)
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"{path}: is a directory, not an image file") from exc
    except PermissionError as exc:
        raise ImageReadError(f"{path}: permission denied") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not an image or an unsupported image format") from exc
    except MemoryError as exc:
        raise ImageReadError(f"{path}: image too large to decode in memory") from exc
    except Exception as exc:  # Pillow raises many kinds: OSError, SyntaxError, ValueError...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageReadError(f"{path}: cannot decode image ({reason})") from exc

    rgb = np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise ImageReadError(f"{path}: image has zero size ({width}x{height})")
    focal_px = None
    if focal_35 is not None:
        focal_px = focal_35 * math.hypot(width, height) / _FULL_FRAME_DIAGONAL_MM
    LOGGER.debug(
        "loaded %s: %dx%d, %d-bit, EXIF focal %s px", path, width, height, bit_depth, focal_px
    )
    return LoadedImage(rgb=rgb, path=path, exif_focal_px=focal_px, bit_depth=bit_depth)


# --------------------------------------------------------------------------------------
# Finding images
# --------------------------------------------------------------------------------------


@dataclass
class _Scan:
    """What a folder or glob search skipped, for one summary line per input.

    Attributes:
        excluded: files the caller's ``exclude`` refused (e.g. our own outputs).
        unsupported: image-like files of a format we cannot read, by suffix.
        other: count of other files that are not images.
        loops: symlinked folders not followed because they lead back up the tree.
    """

    excluded: int = 0
    unsupported: dict[str, int] = field(default_factory=dict)
    other: int = 0
    loops: list[str] = field(default_factory=list)

    def report(self, where: str) -> None:
        """Log what was skipped under ``where`` (nothing if nothing was)."""
        for link in self.loops:
            LOGGER.warning("%s: symlink loop (leads back to a folder above it); not followed", link)
        if self.unsupported:
            kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(self.unsupported.items()))
            LOGGER.warning("%s: skipped files of formats sharpdepth cannot read (%s)", where, kinds)
        if self.excluded:
            LOGGER.info("%s: skipped %d files written by sharpdepth", where, self.excluded)
        if self.other:
            LOGGER.info("%s: skipped %d files that are not images", where, self.other)


def _keep(path: Path, scan: _Scan, exclude: Callable[[Path], bool] | None) -> bool:
    """Whether a file found in a folder or by a glob is an input image; counts the rest."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        if suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
            scan.unsupported[suffix] = scan.unsupported.get(suffix, 0) + 1
        else:
            scan.other += 1
        return False
    if exclude is not None and exclude(path):
        scan.excluded += 1
        return False
    return True


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder``, sorted by name; an unreadable folder is logged and empty."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        LOGGER.warning("%s: cannot list folder (%s); skipped", folder, exc.strerror or exc)
        return []


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """Whether ``entry`` is a folder (following a symlink); ``False`` if it cannot be read."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _walk_dirs(root: Path, scan: _Scan, recursive: bool = True) -> Iterator[Path]:
    """``root`` and (if ``recursive``) its sub-folders, depth first, sorted, hidden skipped.

    Symlinked folders are followed, each real folder at most once, except one that leads
    back to a folder above it (a loop such as ``up -> ..``): that one is reported in
    ``scan.loops`` and not followed, so the walk always ends.
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, ancestors: tuple[str, ...]) -> Iterator[Path]:
        try:
            info = folder.stat()
        except OSError:
            return
        if (info.st_dev, info.st_ino) in seen:
            return
        seen.add((info.st_dev, info.st_ino))
        yield folder
        if not recursive:
            return
        here = (*ancestors, os.path.realpath(folder))
        for entry in _scandir(folder):
            if entry.name.startswith(".") or not _is_dir(entry):
                continue
            if entry.is_symlink() and _leads_up(entry.path, here):
                scan.loops.append(entry.path)
                continue
            yield from visit(Path(entry.path), here)

    root_real = os.path.realpath(root)
    above = tuple(str(p) for p in Path(root_real).parents)
    yield from visit(root, above)


def _leads_up(link: str, ancestors: tuple[str, ...]) -> bool:
    """Whether the symlinked folder ``link`` resolves to one of ``ancestors``."""
    return os.path.realpath(link) in ancestors


def _images_in_dir(
    folder: Path, recursive: bool, scan: _Scan, exclude: Callable[[Path], bool] | None
) -> list[Path]:
    """Image files in ``folder`` (recursively if asked), sorted; hidden files are skipped."""
    found: list[Path] = []
    for sub in _walk_dirs(folder, scan, recursive):
        for entry in _scandir(sub):
            if entry.name.startswith(".") or _is_dir(entry):
                continue
            path = Path(entry.path)
            if _keep(path, scan, exclude) and path.is_file():
                found.append(path)
    return sorted(found)


def _has_magic(part: str) -> bool:
    """Whether a path component is a glob pattern."""
    return any(ch in part for ch in _GLOB_MAGIC)


def _glob_paths(pattern: str, scan: _Scan) -> Iterator[Path]:
    """Paths matching ``pattern`` as :func:`glob.glob` with ``recursive=True`` finds them
    (hidden names only matched by a pattern starting with ``.``), but with ``**`` walking
    :func:`_walk_dirs`, so symlink loops end the walk instead of hanging it."""
    path = Path(pattern)
    parts = path.parts
    index = 0
    base = Path(parts[0]) if path.anchor else Path()
    index = 1 if path.anchor else 0
    while index < len(parts) - 1 and not _has_magic(parts[index]):
        base /= parts[index]
        index += 1
    yield from _match(base, list(parts[index:]), scan)


def _match(folder: Path, parts: list[str], scan: _Scan) -> Iterator[Path]:
    """Paths under ``folder`` matching the pattern components ``parts``."""
    if not parts:
        yield folder
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        for sub in _walk_dirs(folder, scan):
            if rest:
                yield from _match(sub, rest, scan)
            else:
                yield from (Path(e.path) for e in _scandir(sub) if not e.name.startswith("."))
        return
    if not _has_magic(head):
        candidate = folder / head
        if rest:
            if candidate.is_dir():
                yield from _match(candidate, rest, scan)
        elif os.path.lexists(candidate):
            yield candidate
        return
    for entry in _scandir(folder):
        if entry.name.startswith(".") and not head.startswith("."):
            continue
        if not fnmatch.fnmatch(entry.name, head):
            continue
        if rest:
            if _is_dir(entry):
                yield from _match(Path(entry.path), rest, scan)
        else:
            yield Path(entry.path)


def find_images(
    inputs: Sequence[str | Path],
    recursive: bool = False,
    exclude: Callable[[Path], bool] | None = None,
) -> tuple[list[Path], list[str]]:
    """Expand files, folders and glob patterns into a list of image files.

    Each input may be:

    * an existing file: returned as is, even with a non-image suffix (it then fails at
      load time with a clear :class:`ImageReadError`);
    * a folder: its image files (:data:`IMAGE_EXTENSIONS`), sorted, hidden files (names
      starting with ``.``, e.g. our own temporary files) skipped, sub-folders searched
      only if ``recursive``;
    * a glob pattern (``*``, ``?``, ``[...]``, ``**``), expanded like
      ``glob.glob(pattern, recursive=True)``: its matching image files, sorted.

    Folders and ``**`` follow symlinked folders, each real folder once, but not a
    symlink loop (a link to a folder above it), which is reported instead. Files a
    folder or pattern turns up but that are not used are reported in one line per input
    (a warning for image formats sharpdepth cannot read, e.g. HEIC; information for the
    rest).

    Args:
        inputs: paths, folders or glob patterns.
        recursive: search folders recursively.
        exclude: files found in folders or by patterns for which this returns ``True``
            are skipped (e.g. ``predict``'s own outputs); explicitly named files never are.

    Returns:
        ``(paths, errors)``: the image paths, each input's matches sorted, inputs
        concatenated in the order given, duplicates (same resolved file) dropped after
        their first appearance; and one one-line message per input that does not exist,
        is a folder without images, or is a pattern matching no image.
    """
    paths: list[Path] = []
    errors: list[str] = []
    seen: set[Path] = set()

    def add(candidate: Path) -> None:
        try:
            key = candidate.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop on Python < 3.13
            key = candidate.absolute()
        if key not in seen:
            seen.add(key)
            paths.append(candidate)

    for raw in inputs:
        text = str(raw)
        item = Path(raw)
        scan = _Scan()
        if item.is_file():
            add(item)
        elif item.is_dir():
            found = _images_in_dir(item, recursive, scan, exclude)
            scan.report(text)
            if not found:
                where = "folder (recursively)" if recursive else "folder"
                errors.append(f"{text}: {where} contains no image files")
            for p in found:
                add(p)
        elif _has_magic(text):
            candidates = sorted(set(_glob_paths(text, scan)))
            matches = [m for m in candidates if m.is_file() and _keep(m, scan, exclude)]
            scan.report(text)
            if not matches:
                errors.append(f"{text}: pattern matches no image files")
            for p in matches:
                add(p)
        elif os.path.lexists(item) and not item.exists():
            errors.append(f"{text}: broken symlink or symlink loop")
        elif item.exists():
            errors.append(f"{text}: not a regular file or folder")
        else:
            errors.append(f"{text}: no such file or folder")
    return paths, errors


# --------------------------------------------------------------------------------------
# Atomic writing
# --------------------------------------------------------------------------------------


def _prepare_folder(folder: Path) -> None:
    """Create ``folder`` if needed; raise a clear error if that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise PermissionError(f"cannot create output folder {folder}: permission denied") from exc
    except FileExistsError as exc:
        raise NotADirectoryError(f"output folder {folder} exists but is not a folder") from exc
    except OSError as exc:
        raise OSError(f"cannot create output folder {folder}: {exc.strerror or exc}") from exc


def _create_temp(path: Path) -> Path:
    """Create a new empty hidden temporary file next to ``path`` and return its path."""
    folder = path.parent
    for _ in range(100):
        tmp = folder / f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise PermissionError(f"output folder {folder} is not writable") from exc
        except OSError as exc:
            if exc.errno in _NO_SPACE_ERRNOS:
                raise no_space_error(folder) from exc
            raise OSError(f"cannot write in output folder {folder}: {exc.strerror or exc}") from exc
        os.close(fd)
        return tmp
    raise OSError(f"cannot create a temporary file in {folder}")


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically.

    ``writer`` is called with the path of a new, empty, hidden temporary file in the same
    folder (``.<stem>.tmp-<random><suffix>``, so suffix-based format detection works) and
    must write the full content there. On success the temporary file replaces ``path``
    with :func:`os.replace`; on any exception, ``KeyboardInterrupt`` included, it is
    removed and the exception re-raised, so ``path`` is either untouched or complete.
    The parent folder is created if missing.

    Args:
        path: the destination file.
        writer: callable writing the content to the path it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        PermissionError: the output folder is not writable (the message names it).
        OSError: other file-system failures.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    _prepare_folder(path.parent)
    tmp = _create_temp(path)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            LOGGER.warning("could not remove temporary file %s", tmp)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE_ERRNOS:
            raise no_space_error(path.parent) from exc
        raise
    return path


#: ``errno`` values meaning "the file system (or the user's quota) is full".
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def no_space_error(folder: Path) -> NoSpaceError:
    """The :class:`NoSpaceError` for ``folder`` (``errno`` set to ``ENOSPC``)."""
    exc = NoSpaceError(f"no space left on {folder}")
    exc.errno = errno.ENOSPC
    return exc


def atomic_write_folder(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Write the folder ``path`` atomically (the folder counterpart of :func:`atomic_write`).

    ``writer`` fills a new hidden temporary folder next to ``path``; on success an
    existing ``path`` is moved aside, the temporary folder renamed to ``path`` and the old
    one deleted. On any exception the temporary folder is removed and ``path`` is left
    as it was.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    dest = Path(path).expanduser()
    _prepare_folder(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        writer(tmp)
        backup = None
        if dest.exists():
            backup = dest.parent / f".{dest.name}.old-{os.getpid()}"
            os.replace(dest, backup)
        os.replace(tmp, dest)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


# --------------------------------------------------------------------------------------
# Locking a folder
# --------------------------------------------------------------------------------------


class FolderLock:
    """An exclusive lock on a folder, held until :meth:`release` or the process ends.

    The operating system drops it when the process dies in any way (``SIGKILL``
    included), so a lock is never stale; :meth:`release` also removes the lock file
    (one left by a killed run is simply taken over).
    """

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Remove the lock file and release the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: see lock_folder
        except OSError:
            LOGGER.debug("cannot remove %s", self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_folder(folder: str | Path, name: str = ".sharpdepth.lock") -> FolderLock:
    """Take the exclusive lock ``folder/name`` (a hidden file, created if missing).

    Raises:
        FolderInUseError: another process holds it; the message names the folder and,
            when known, that process's id.
        OSError: the lock file cannot be created (e.g. the folder is not writable).
    """
    folder = Path(folder)
    path = folder / name
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        LOGGER.debug("no fcntl: %s is not locked against concurrent runs", folder)
        return FolderLock(path, None)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise FolderInUseError(
                f"output folder {folder} is in use by another sharpdepth run{holder}; wait "
                "for it to finish or choose another output folder"
            ) from None
        except OSError as exc:  # e.g. a file system without locks
            os.close(fd)
            LOGGER.warning("cannot lock %s (%s); concurrent runs are not detected", folder, exc)
            return FolderLock(path, None)
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder removed the file as we locked it: lock the new one
    else:
        raise FolderInUseError(f"output folder {folder}: cannot take its lock {path}")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:  # the lock is held all the same
        LOGGER.debug("cannot write the process id into %s", path)
    return FolderLock(path, fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the one at ``path``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _lock_holder(fd: int) -> str:
    """`` (process N)`` from a lock file's content, or ``""``."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_real(name: str, array: np.ndarray) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name} must have a real numeric dtype, got {array.dtype}")


def _check_depth(depth: np.ndarray) -> np.ndarray:
    _check_real("depth", depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape [H, W], got {tuple(depth.shape)}")
    if depth.shape[0] == 0 or depth.shape[1] == 0:
        raise ValueError(f"depth must not be empty, got shape {tuple(depth.shape)}")
    return np.ascontiguousarray(depth, dtype=np.float32)


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    return scale


def _save_pil(
    path: str | Path,
    image: Image.Image,
    compress_level: int = 6,
    text: Mapping[str, str] | None = None,
) -> Path:
    """Save ``image`` as PNG atomically, with ``text`` as ``tEXt`` chunks before the pixels."""
    info = None
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)

    def writer(tmp: Path) -> None:
        image.save(tmp, format="PNG", compress_level=compress_level, pnginfo=info)

    return atomic_write(path, writer)


def png_text(path: str | Path) -> dict[str, str]:
    """The ``tEXt`` chunks before a PNG's pixels (``{}`` for anything unreadable or not PNG)."""
    try:
        with Image.open(Path(path)) as image:
            if image.format != "PNG":
                return {}
            return {str(k): v for k, v in image.info.items() if isinstance(v, str)}
    except Exception:  # any unreadable file simply carries no text
        return {}


# --------------------------------------------------------------------------------------
# Depth maps
# --------------------------------------------------------------------------------------


def save_depth_npy(path: str | Path, depth: np.ndarray) -> Path:
    """Save a depth map as a ``.npy`` file, atomically.

    Args:
        path: destination (any suffix; ``.npy`` is conventional and never appended).
        depth: ``[H, W]`` depth in metres; stored as ``float32``, ``NaN``/``inf`` kept.

    Returns:
        ``path``.
    """
    data = _check_depth(depth)

    def writer(tmp: Path) -> None:
        # the same bytes as np.save, but written by Python's file object, which reports a
        # full disk as ENOSPC (numpy's tofile says only "N requested and M written")
        with open(tmp, "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, np.lib.format.header_data_from_array_1_0(data)
            )
            handle.write(data.data.cast("B"))

    return atomic_write(path, writer)


#: The single channel of the depth EXR files (the usual name of depth in EXR tools).
EXR_CHANNEL = "Z"


def _openexr() -> Any:
    """The ``OpenEXR`` module (``pip install "sharpdepth[exr]"``)."""
    try:
        import OpenEXR
    except ImportError as exc:
        from sharpdepth.errors import MissingDependencyError

        raise MissingDependencyError(
            'EXR output needs OpenEXR: pip install "sharpdepth[exr]"'
        ) from exc
    return OpenEXR


def save_depth_exr(path: str | Path, depth: np.ndarray, software: str | None = None) -> Path:
    """Save a depth map as a one-channel float32 OpenEXR file (channel ``Z``), atomically.

    Args:
        path: destination (``.exr``).
        depth: ``[H, W]`` depth in metres; ``NaN``/``inf`` kept.
        software: optional ``software`` header attribute (who wrote the file).

    Returns:
        ``path``.
    """
    exr = _openexr()
    data = np.ascontiguousarray(_check_depth(depth))
    header: dict[str, Any] = {"compression": exr.ZIP_COMPRESSION, "type": exr.scanlineimage}
    if software is not None:
        header["software"] = software

    def writer(tmp: Path) -> None:
        exr.File(header, {EXR_CHANNEL: data}).write(str(tmp))

    return atomic_write(path, writer)


def exr_header(path: str | Path) -> dict[str, Any]:
    """The header attributes of an OpenEXR file; ``{}`` if it cannot be read."""
    try:
        exr = _openexr()
        with exr.File(str(path)) as f:
            return dict(f.header())
    except Exception:  # any unreadable file: not ours
        return {}


def load_depth_exr(path: str | Path) -> np.ndarray:
    """Read a depth map written by :func:`save_depth_exr`: ``[H, W]`` float32 metres.

    Raises:
        ValueError: the file has no ``Z`` channel.
    """
    exr = _openexr()
    with exr.File(str(path)) as f:
        channels = f.channels()
        if EXR_CHANNEL not in channels:
            raise ValueError(f"{path}: no {EXR_CHANNEL!r} channel (has {sorted(channels)})")
        return np.asarray(channels[EXR_CHANNEL].pixels, dtype=np.float32)


def load_depth_npy(path: str | Path) -> np.ndarray:
    """Read a depth map written by :func:`save_depth_npy`.

    Returns:
        ``float32 [H, W]`` depth in metres.

    Raises:
        ValueError: the file does not hold a 2-D real array.
    """
    data = np.load(Path(path), allow_pickle=False)
    if not isinstance(data, np.ndarray) or data.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D depth array")
    _check_real(f"{path}: depth", data)
    return np.ascontiguousarray(data, dtype=np.float32)


def save_depth_png16(
    path: str | Path,
    depth: np.ndarray,
    scale: float = 1000.0,
    text: Mapping[str, str] | None = None,
) -> Path:
    """Save a depth map as a 16-bit greyscale PNG, atomically.

    Each pixel stores ``round(depth * scale)`` as ``uint16`` (millimetres at the default
    ``scale=1000``). ``0`` means invalid: non-finite or non-positive depths are written as
    ``0``. Valid depths are clipped to ``[1, 65535]``, i.e. at the default scale the
    largest representable depth is 65.535 m and positive depths below 0.5 mm are stored
    as 1 mm so that they stay valid.

    Args:
        path: destination PNG.
        depth: ``[H, W]`` depth in metres.
        scale: units per metre stored in the PNG (1000 = millimetres).
        text: ``tEXt`` chunks to store (e.g. which program wrote the file).

    Returns:
        ``path``.
    """
    data = _check_depth(depth).astype(np.float64)
    scale = _check_scale(scale)
    valid = np.isfinite(data) & (data > 0)
    scaled = np.where(valid, data, 0.0) * scale
    n_clipped = int(np.count_nonzero(valid & (scaled > _PNG16_MAX + 0.5)))
    if n_clipped:
        LOGGER.warning(
            "%s: %d depth values above %.3f m clipped", path, n_clipped, _PNG16_MAX / scale
        )
    stored = np.where(valid, np.clip(np.rint(scaled), 1, _PNG16_MAX), 0).astype(np.uint16)
    return _save_pil(path, Image.fromarray(np.ascontiguousarray(stored)), text=text)


def load_depth_png16(path: str | Path, scale: float = 1000.0) -> np.ndarray:
    """Read a depth map written by :func:`save_depth_png16`.

    Args:
        path: a 16-bit greyscale PNG.
        scale: units per metre used when saving.

    Returns:
        ``float32 [H, W]`` depth in metres, stored ``0`` (invalid) returned as ``NaN``.

    Raises:
        ValueError: the file is not a 16-bit greyscale image.
    """
    scale = _check_scale(scale)
    with Image.open(Path(path)) as image:
        image.load()
        if not (image.mode.startswith("I;16") or image.mode == "I"):
            raise ValueError(f"{path}: not a 16-bit greyscale PNG (mode {image.mode})")
        stored = np.asarray(image).astype(np.float64)
    depth = np.where(stored > 0, stored / scale, np.nan)
    return depth.astype(np.float32)


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def save_rgb_png(
    path: str | Path,
    rgb: np.ndarray,
    compress_level: int = 6,
    text: Mapping[str, str] | None = None,
) -> Path:
    """Save a ``uint8 [H, W, 3]`` RGB image as PNG (with ``text`` chunks), atomically.
    Returns ``path``."""
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"rgb must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"rgb must have dtype uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"rgb must have shape [H, W, 3], got {tuple(rgb.shape)}")
    return _save_pil(path, Image.fromarray(np.ascontiguousarray(rgb)), compress_level, text)


def load_rgb_png(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8 [H, W, 3]`` RGB (no EXIF rotation), the reader of
    :func:`save_rgb_png`."""
    with Image.open(Path(path)) as image:
        return np.asarray(image.convert("RGB")).copy()


def save_gray_png(
    path: str | Path,
    values: np.ndarray,
    bits: int = 8,
    compress_level: int = 6,
    text: Mapping[str, str] | None = None,
) -> Path:
    """Save ``[H, W]`` values in ``[0, 1]`` as an 8- or 16-bit greyscale PNG, atomically.

    Values are clipped to ``[0, 1]`` (``NaN`` becomes 0) and stored as
    ``round(v * (2**bits - 1))``.

    Args:
        path: destination PNG.
        values: ``[H, W]`` real array.
        bits: 8 or 16.
        text: ``tEXt`` chunks to store.

    Returns:
        ``path``.
    """
    _check_real("values", values)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"values must have shape [H, W], got {tuple(values.shape)}")
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = 255 if bits == 8 else _PNG16_MAX
    clean = np.clip(np.nan_to_num(values.astype(np.float64), nan=0.0), 0.0, 1.0)
    stored = np.rint(clean * top).astype(np.uint8 if bits == 8 else np.uint16)
    return _save_pil(path, Image.fromarray(np.ascontiguousarray(stored)), compress_level, text)


def save_label_png16(path: str | Path, labels: np.ndarray, compress_level: int = 6) -> Path:
    """Save integer labels ``[H, W]`` in ``[0, 65535]`` (e.g. instance ids) as a 16-bit PNG.

    Raises:
        ValueError: labels are not integers or fall outside ``[0, 65535]``.
    """
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be an integer numpy array")
    if labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"labels must have shape [H, W], got {tuple(labels.shape)}")
    if labels.min() < 0 or labels.max() > _PNG16_MAX:
        raise ValueError("labels must lie in [0, 65535] to fit a 16-bit PNG")
    return _save_pil(
        path, Image.fromarray(np.ascontiguousarray(labels.astype(np.uint16))), compress_level
    )


def load_label_png16(path: str | Path) -> np.ndarray:
    """Read labels written by :func:`save_label_png16` as ``int32 [H, W]``."""
    with Image.open(Path(path)) as image:
        return np.asarray(image).astype(np.int32)


def load_gray_png(path: str | Path) -> np.ndarray:
    """Read a PNG written by :func:`save_gray_png` as ``float32 [H, W]`` in ``[0, 1]``."""
    with Image.open(Path(path)) as image:
        image.load()
        if image.mode.startswith("I;16") or image.mode == "I":
            return (np.asarray(image).astype(np.float32) / _PNG16_MAX).astype(np.float32)
        return np.asarray(image.convert("L")).astype(np.float32) / 255.0


# --------------------------------------------------------------------------------------
# Point clouds
# --------------------------------------------------------------------------------------

_PLY_TYPES: dict[str, str] = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def save_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> Path:
    """Save a point cloud as a binary little-endian PLY, atomically.

    The vertex element has ``float x, y, z`` (metres) and, if ``colors`` is given,
    ``uchar red, green, blue``.

    Args:
        path: destination ``.ply``.
        points: ``[N, 3]`` real array (stored as float32); ``N`` may be 0.
        colors: optional ``uint8 [N, 3]`` RGB.

    Returns:
        ``path``.
    """
    _check_real("points", points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {tuple(points.shape)}")
    n = points.shape[0]
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        if not isinstance(colors, np.ndarray):
            raise TypeError(f"colors must be a numpy array, got {type(colors).__name__}")
        if colors.dtype != np.uint8:
            raise ValueError(f"colors must have dtype uint8, got {colors.dtype}")
        if colors.shape != (n, 3):
            raise ValueError(f"colors must have shape [{n}, 3], got {tuple(colors.shape)}")
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(n, dtype=np.dtype(fields))
    pts = points.astype(np.float32)
    vertices["x"], vertices["y"], vertices["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by sharpdepth",
        f"element vertex {n}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if colors is not None:
        vertices["red"], vertices["green"], vertices["blue"] = (
            colors[:, 0],
            colors[:, 1],
            colors[:, 2],
        )
        header += ["property uchar red", "property uchar green", "property uchar blue"]
    header.append("end_header")
    blob = ("\n".join(header) + "\n").encode("ascii")

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(blob)
            handle.write(vertices.tobytes())

    return atomic_write(path, writer)


def load_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the vertices of a binary PLY such as :func:`save_ply` writes.

    Supports binary little- and big-endian files whose first element is ``vertex`` with
    scalar properties including ``x, y, z`` (and optionally ``red, green, blue``).

    Returns:
        ``(points, colors)``: ``float32 [N, 3]`` and ``uint8 [N, 3]`` or ``None``.

    Raises:
        ValueError: the file is not a PLY of that kind, or it is truncated.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        if handle.readline().strip() != b"ply":
            raise ValueError(f"{path}: not a PLY file")
        fmt = ""
        count: int | None = None
        props: list[tuple[str, str]] = []
        first_element: str | None = None
        while True:
            line = handle.readline()
            if not line:
                raise ValueError(f"{path}: PLY header has no end_header")
            words = line.decode("ascii", errors="replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "end_header":
                break
            if words[0] == "format" and len(words) >= 2:
                fmt = words[1]
            elif words[0] == "element" and len(words) == 3:
                if first_element is None:
                    first_element = words[1]
                    count = int(words[2])
            elif words[0] == "property" and first_element == "vertex" and count is not None:
                if len(words) != 3 or words[1] == "list" or words[1] not in _PLY_TYPES:
                    raise ValueError(f"{path}: unsupported vertex property {' '.join(words[1:])}")
                if words[2] in {name for name, _ in props}:
                    continue
                props.append((words[2], _PLY_TYPES[words[1]]))
        if fmt not in ("binary_little_endian", "binary_big_endian"):
            raise ValueError(f"{path}: unsupported PLY format {fmt or '(none)'}")
        if first_element != "vertex" or count is None:
            raise ValueError(f"{path}: first PLY element is not 'vertex'")
        names = [name for name, _ in props]
        if not {"x", "y", "z"} <= set(names):
            raise ValueError(f"{path}: PLY vertices lack x, y, z")
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(name, order + code) for name, code in props])
        raw = handle.read(dtype.itemsize * count)
    if len(raw) != dtype.itemsize * count:
        raise ValueError(f"{path}: PLY file is truncated")
    vertices = np.frombuffer(raw, dtype=dtype, count=count)
    points = np.stack([vertices[c] for c in ("x", "y", "z")], axis=1).astype(np.float32)
    colors = None
    if {"red", "green", "blue"} <= set(names):
        colors = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return points.reshape(count, 3), None if colors is None else colors.reshape(count, 3)


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    """Recursively convert numpy/torch/Path values to plain JSON types; non-finite -> None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # e.g. torch tensors
        return _jsonable(obj.tolist())
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def save_json(path: str | Path, obj: Any) -> Path:
    """Save ``obj`` as indented UTF-8 JSON, atomically.

    numpy scalars/arrays, tensors and paths are converted to plain values; non-finite
    floats (``NaN``, ``inf``) become ``null`` so the file is strict JSON.

    Returns:
        ``path``.
    """
    text = json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def writer(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, writer)


def load_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`save_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
