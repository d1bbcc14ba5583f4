"""Fetch the published models: the authors' SharpDepth release and Hub companions.

The authors publish their SharpDepth checkpoint as a gzipped tar archive split in three
parts attached to their GitHub release v1.0. :func:`download_published` fetches the
parts (resuming interrupted downloads with HTTP ranges), checks each one against its
recorded size and SHA-256 (recorded by the first complete download when no digest is
known yet), joins them, and extracts the archive safely into the checkpoint folder:
members with absolute paths, ``..``, links leaving the archive, or devices are
refused, the total size is capped, and the folder appears only when it is complete (a
temporary folder renamed at the end).

Models hosted on the Hugging Face Hub (Lotus-G, UniDepth, Depth Pro, Depth Anything,
ZoeDepth, TAESD) are fetched into the Hub's own cache with :func:`download_hub`, so
that later runs work offline (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sharpdepth.errors import SharpDepthError
from sharpdepth.io import atomic_write, save_json

LOGGER = logging.getLogger(__name__)

#: Where the authors' release v1.0 keeps the archive parts.
PUBLISHED_URL = "https://github.com/Qualcomm-AI-research/SharpDepth/releases/download/v1.0/"
#: Environment variable naming a mirror of the release (a URL ending in ``/``).
PUBLISHED_URL_ENV = "SHARPDEPTH_PUBLISHED_URL"
#: The archive parts, in the order they are joined.
PUBLISHED_PARTS = (
    "sharpdepth.tar.gz.part-aa",
    "sharpdepth.tar.gz.part-ab",
    "sharpdepth.tar.gz.part-ac",
)
#: Digests known in advance (name -> (bytes, sha256)); empty until a maintainer records
#: them. Without one, the first complete download's digest is recorded in the manifest
#: and later downloads must match it.
PUBLISHED_DIGESTS: dict[str, tuple[int, str]] = {}
#: Refuse archives that would extract to more than this many bytes (the release is
#: about 3.5 GB).
MAX_EXTRACTED_BYTES = 16 * 1024**3
#: Name of the manifest of recorded digests in the cache folder.
MANIFEST_FILE = "published-manifest.json"
CHUNK_BYTES = 1 << 20

#: Hub models ``sharpdepth download NAME`` knows besides the metric model registry.
HUB_MODELS: dict[str, str] = {
    "lotus-depth-g-v1-0": "jingheya/lotus-depth-g-v1-0",
    "taesd": "madebyollin/taesd",
}


class DownloadError(SharpDepthError):
    """A download, verification or extraction failed; the message says which file."""


@dataclass(frozen=True)
class Digest:
    """Size in bytes and SHA-256 (hex) of one file."""

    size: int
    sha256: str


def cache_dir() -> Path:
    """sharpdepth's cache folder: ``$SHARPDEPTH_CACHE``, else ``$XDG_CACHE_HOME/sharpdepth``."""
    if os.environ.get("SHARPDEPTH_CACHE"):
        return Path(os.environ["SHARPDEPTH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sharpdepth"


def file_digest(path: Path) -> Digest:
    """Size and SHA-256 of ``path``."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            sha.update(block)
    return Digest(path.stat().st_size, sha.hexdigest())


def _read_manifest(path: Path) -> dict[str, Digest]:
    """Recorded digests by part name; a missing manifest is empty, a broken one an error."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: Digest(int(d["size"]), str(d["sha256"])) for name, d in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DownloadError(
            f"{path}: unreadable manifest ({exc}); delete it to record anew"
        ) from exc


def _write_manifest(path: Path, digests: dict[str, Digest]) -> None:
    """Write the manifest atomically."""
    save_json(path, {n: {"size": d.size, "sha256": d.sha256} for n, d in sorted(digests.items())})


def download_file(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted download.

    Bytes arrive in ``dest + ".partial"``; a later call asks the server for the rest
    (HTTP ``Range``) and appends it, or starts again when the server ignores ranges.
    ``dest`` appears only once the download is complete.

    Raises:
        DownloadError: the server answered with an error or the connection failed.
    """
    from tqdm.auto import tqdm

    if dest.is_file():
        return dest
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file already holds everything
            partial.replace(dest)
            return dest
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        resumed = have > 0 and response.status == 206
        if have and not resumed:
            LOGGER.info("%s: the server does not resume downloads; starting again", url)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(partial, "ab" if resumed else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not progress,
            ) as bar,
        ):
            try:
                for block in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(block)
                    bar.update(len(block))
            except OSError as exc:
                raise DownloadError(
                    f"{url}: connection lost after {out.tell()} bytes ({exc}); "
                    "run the command again to resume"
                ) from exc
    if total is not None and partial.stat().st_size != total:
        raise DownloadError(
            f"{url}: got {partial.stat().st_size} of {total} bytes; run the command again to resume"
        )
    partial.replace(dest)
    return dest


def verify_parts(
    parts: Sequence[Path], manifest: Path, known: dict[str, tuple[int, str]] | None = None
) -> None:
    """Check each part against its known or recorded digest; record the missing ones.

    A part that does not match is deleted (so the next run downloads it again) and
    reported.

    Raises:
        DownloadError: a part's size or SHA-256 differs from the expected one.
    """
    recorded = _read_manifest(manifest)
    expected = {**recorded, **{n: Digest(*d) for n, d in (known or {}).items()}}
    changed = False
    for part in parts:
        got = file_digest(part)
        want = expected.get(part.name)
        if want is None:
            recorded[part.name] = got
            changed = True
            LOGGER.info("%s: recorded size %d, sha256 %s", part.name, got.size, got.sha256)
        elif got != want:
            part.unlink()
            raise DownloadError(
                f"{part.name}: {got.size} bytes with sha256 {got.sha256[:16]}..., expected "
                f"{want.size} bytes with sha256 {want.sha256[:16]}... (recorded in "
                f"{manifest}); the part was deleted, run the command again to fetch it anew"
            )
    if changed:
        _write_manifest(manifest, recorded)


def join_parts(parts: Sequence[Path], dest: Path) -> Path:
    """Concatenate ``parts`` into ``dest`` (written under a temporary name first)."""

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, CHUNK_BYTES)

    return atomic_write(dest, writer)


def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why an archive member may not be extracted, or ``None`` when it is safe."""
    name = PurePosixPath(member.name)
    drive = bool(name.parts) and ":" in name.parts[0]  # "C:..." on Windows
    if name.is_absolute() or member.name.startswith(("/", "\\")) or drive:
        return "absolute path"
    if ".." in name.parts:
        return "path with '..'"
    if member.isdev() or member.isfifo():
        return "device or pipe"
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        if target.is_absolute() or ".." in (base / target).parts:
            return f"link to {member.linkname!r} outside the archive"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "unsupported member type"
    return None


def safe_extract(archive: Path, dest: Path, max_bytes: int = MAX_EXTRACTED_BYTES) -> Path:
    """Extract a tar archive into the new folder ``dest``, refusing unsafe members.

    Every member is checked before anything is written: absolute paths, ``..``,
    links pointing outside the archive, devices and pipes are refused, and the sum of
    the members' sizes must stay under ``max_bytes``. Extraction goes to a temporary
    sibling folder renamed to ``dest`` at the end, so ``dest`` is complete or absent.

    Raises:
        DownloadError: the archive is unreadable, unsafe or too large, or ``dest``
            exists.
    """
    if dest.exists():
        raise DownloadError(f"{dest} already exists; not overwriting it")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                reason = _unsafe_reason(member)
                if reason is not None:
                    raise DownloadError(f"{archive}: refused member {member.name!r} ({reason})")
                total += max(0, member.size)
                if total > max_bytes:
                    raise DownloadError(
                        f"{archive}: members exceed {max_bytes / 1024**3:.1f} GiB; refused"
                    )
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
            # the standard library's "data" filter (Python >= 3.11.4) checks again
            safety = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                tar.extractall(tmp, members=members, **safety)  # type: ignore[arg-type]
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: not a readable tar archive ({exc})") from exc
    tmp.replace(dest)
    return dest


def checkpoint_root(folder: Path) -> Path:
    """The folder inside an extracted release that holds the pipeline.

    The release's archive wraps the checkpoint in one or two folders
    (``checkpoints/sharpdepth``); the root is the shallowest folder holding
    ``model_index.json`` or a ``unet`` folder.

    Raises:
        DownloadError: no such folder.
    """
    candidates = [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]
    for path in sorted(candidates, key=lambda p: len(p.parts)):
        if (path / "model_index.json").is_file() or (path / "unet").is_dir():
            return path
    raise DownloadError(f"{folder}: the archive holds no checkpoint (no model_index.json or unet/)")


def download_published(
    dest: Path,
    base_url: str | None = None,
    parts: Sequence[str] = PUBLISHED_PARTS,
    progress: bool = True,
    max_bytes: int = MAX_EXTRACTED_BYTES,
    manifest: Path | None = None,
    keep_parts: bool = False,
) -> Path:
    """Fetch, verify and extract the authors' SharpDepth checkpoint into ``dest``.

    Parts are kept in ``dest``'s sibling ``.DEST.download`` folder until the checkpoint
    is in place, so an interrupted run resumes where it stopped.

    Args:
        dest: the checkpoint folder to create (e.g. ``checkpoints/sharpdepth``).
        base_url: where the parts are (default: ``$SHARPDEPTH_PUBLISHED_URL``, else the
            authors' release).
        parts: part file names, in the order they are joined.
        progress: progress bars.
        max_bytes: extraction size cap.
        manifest: recorded digests (default: the cache folder's manifest).
        keep_parts: keep the downloaded parts after extraction.

    Returns:
        ``dest``.

    Raises:
        DownloadError: on any failure; the message names the file and the fix.
    """
    dest = Path(dest).expanduser()
    if dest.is_dir() and any(dest.iterdir()):
        LOGGER.info("%s already holds a checkpoint; nothing to download", dest)
        return dest
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"{dest} exists and is not a folder")
    base_url = base_url or os.environ.get(PUBLISHED_URL_ENV) or PUBLISHED_URL
    if not base_url.endswith("/"):
        base_url += "/"
    staging = dest.parent / f".{dest.name}.download"
    files = [download_file(base_url + name, staging / name, progress) for name in parts]
    verify_parts(files, manifest or cache_dir() / MANIFEST_FILE, PUBLISHED_DIGESTS)
    archive = join_parts(files, staging / "archive.tar.gz")
    extracted = staging / "extracted"
    shutil.rmtree(extracted, ignore_errors=True)
    safe_extract(archive, extracted, max_bytes)
    root = checkpoint_root(extracted)
    if dest.is_dir():
        dest.rmdir()  # empty (checked above)
    dest.parent.mkdir(parents=True, exist_ok=True)
    root.replace(dest)
    archive.unlink()
    shutil.rmtree(extracted, ignore_errors=True)
    if not keep_parts:
        shutil.rmtree(staging, ignore_errors=True)
    LOGGER.info("the published checkpoint is in %s", dest)
    return dest


def hub_id(name: str) -> str:
    """Hub id of a registered name (metric model registry or :data:`HUB_MODELS`).

    Raises:
        DownloadError: an unknown name with no ``/`` (a Hub id is passed through).
    """
    from sharpdepth.models.metric import METRIC_MODELS

    if name in HUB_MODELS:
        return HUB_MODELS[name]
    entry = METRIC_MODELS.get(name)
    if entry is not None and entry.hub_id is not None:
        return entry.hub_id
    if "/" in name:
        return name
    known = sorted([*HUB_MODELS, *(n for n, e in METRIC_MODELS.items() if e.hub_id)])
    raise DownloadError(f"unknown model {name!r}; known: published, {', '.join(known)}")


def download_hub(name: str) -> Path:
    """Fetch a Hub model into the Hub cache for offline use; returns its snapshot folder.

    Raises:
        DownloadError: unknown name, or the Hub could not be reached.
    """
    from huggingface_hub import snapshot_download

    repo = hub_id(name)
    try:
        return Path(snapshot_download(repo))
    except Exception as exc:  # huggingface_hub raises many types for network failures
        raise DownloadError(f"{repo}: {exc.__class__.__name__}: {exc}") from exc
