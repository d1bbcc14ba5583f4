"""Fetching the published checkpoint from a local HTTP server (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import random
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sharpdepth.download import (
    DownloadError,
    download_file,
    download_published,
    hub_id,
    safe_extract,
)

PARTS = ("sd.tar.gz.part-aa", "sd.tar.gz.part-ab", "sd.tar.gz.part-ac")


def _archive(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A gzipped tar holding ``members`` (name -> bytes) and symlinks (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


CHECKPOINT = {
    "checkpoints/sharpdepth/model_index.json": b'{"_class_name": "x"}',
    "checkpoints/sharpdepth/unet/config.json": b"{}",
    "checkpoints/sharpdepth/unet/weights.bin": random.Random(0).randbytes(30_000),
}


def _split(data: bytes) -> dict[str, bytes]:
    third = len(data) // 3 + 1
    return {name: data[i * third : (i + 1) * third] for i, name in enumerate(PARTS)}


class _Server:
    """Serves ``files``; optional range support and a connection cut after N bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.cut: dict[str, int] = {}  # name -> bytes sent before closing (once)
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((name, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[name], 0
                header = self.headers.get("Range")
                if header and server.ranges:
                    start = int(header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[: server.cut.pop(name)]
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/release/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _fetch(server: _Server, tmp_path: Path, **kwargs: Any) -> Path:
    return download_published(
        tmp_path / "checkpoints" / "sharpdepth",
        base_url=server.url,
        parts=PARTS,
        progress=False,
        manifest=tmp_path / "manifest.json",
        **kwargs,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_full_download_extracts_the_checkpoint_and_records_digests(
    server: _Server, tmp_path: Path
) -> None:
    data = _archive(CHECKPOINT)
    server.files = _split(data)
    dest = _fetch(server, tmp_path)
    assert _tree(dest) == {
        k.removeprefix("checkpoints/sharpdepth/"): v for k, v in CHECKPOINT.items()
    }
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest[PARTS[1]]["sha256"] == hashlib.sha256(server.files[PARTS[1]]).hexdigest()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["sharpdepth"]  # no debris
    assert _fetch(server, tmp_path) == dest  # already there: nothing fetched again
    assert len(server.requests) == 3


def test_interrupted_download_resumes_to_identical_bytes(server: _Server, tmp_path: Path) -> None:
    server.files = _split(_archive(CHECKPOINT))
    server.cut = {PARTS[1]: 1000}
    with pytest.raises(DownloadError, match="run the command again to resume"):
        _fetch(server, tmp_path)
    assert not (tmp_path / "checkpoints" / "sharpdepth").exists()
    dest = _fetch(server, tmp_path)
    assert (PARTS[1], "bytes=1000-") in server.requests  # resumed, not restarted
    assert (dest / "unet" / "weights.bin").read_bytes() == CHECKPOINT[
        "checkpoints/sharpdepth/unet/weights.bin"
    ]


def test_server_without_range_support_restarts_the_part(server: _Server, tmp_path: Path) -> None:
    data = _archive(CHECKPOINT)
    server.files = {"one": data}
    server.ranges = False
    partial = tmp_path / "one.partial"
    partial.write_bytes(b"stale bytes from elsewhere")
    download_file(server.url + "one", tmp_path / "one", progress=False)
    assert (tmp_path / "one").read_bytes() == data
    assert not partial.exists()


def test_corrupted_part_is_a_clear_error_and_nothing_is_extracted(
    server: _Server, tmp_path: Path
) -> None:
    server.files = _split(_archive(CHECKPOINT))
    _fetch(server, tmp_path, keep_parts=False)  # records the digests
    dest = tmp_path / "checkpoints" / "sharpdepth"
    for p in sorted(dest.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    dest.rmdir()
    bad = bytearray(server.files[PARTS[2]])
    bad[10] ^= 0xFF
    server.files[PARTS[2]] = bytes(bad)
    with pytest.raises(DownloadError, match=r"sd\.tar\.gz\.part-ac: .* expected"):
        _fetch(server, tmp_path)
    assert not dest.exists()
    staging = tmp_path / "checkpoints" / ".sharpdepth.download"
    assert not (staging / "extracted").exists() and not (staging / PARTS[2]).exists()


@pytest.mark.parametrize(
    ("members", "links", "reason"),
    [
        ({"ok/model_index.json": b"{}", "../evil": b"x"}, None, "'..'"),
        ({"ok/model_index.json": b"{}", "/tmp/evil-abs": b"x"}, None, "absolute path"),
        ({"ok/model_index.json": b"{}"}, {"ok/escape": "../../evil"}, "outside the archive"),
        ({"ok/model_index.json": b"{}"}, {"ok/abs": "/etc/passwd"}, "outside the archive"),
    ],
)
def test_unsafe_archive_members_are_refused(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None, reason: str
) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_archive(members, links))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(DownloadError, match=reason):
        safe_extract(archive, work / "out")
    assert list(work.iterdir()) == []  # nothing written, not even a temporary folder
    assert not (tmp_path / "evil").exists()


def test_extraction_size_is_capped(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_archive({"big": b"0" * 5000}))
    with pytest.raises(DownloadError, match="exceed"):
        safe_extract(archive, tmp_path / "out", max_bytes=4096)
    assert not (tmp_path / "out").exists()


def test_a_release_without_a_checkpoint_is_refused(server: _Server, tmp_path: Path) -> None:
    server.files = _split(_archive({"readme.txt": b"hello"}))
    with pytest.raises(DownloadError, match="holds no checkpoint"):
        _fetch(server, tmp_path)
    assert not (tmp_path / "checkpoints" / "sharpdepth").exists()


def test_missing_part_names_the_url(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        _fetch(server, tmp_path)


def test_hub_names_resolve_to_ids() -> None:
    assert hub_id("depth-pro") == "apple/DepthPro-hf"
    assert hub_id("lotus-depth-g-v1-0") == "jingheya/lotus-depth-g-v1-0"
    assert hub_id("someone/model") == "someone/model"
    with pytest.raises(DownloadError, match="unknown model"):
        hub_id("no-such-model")


def _tar_folder(folder: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()


def test_download_then_predict_published_is_the_whole_set_up(
    server: _Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_checkpoints: dict[str, Path],
) -> None:
    """`sharpdepth download published && sharpdepth predict photo --published`, with a
    local mirror serving a tiny checkpoint in the authors' layout."""
    from PIL import Image

    from sharpdepth import download
    from sharpdepth.cli.main import main

    data = _tar_folder(tiny_checkpoints["released"], "checkpoints/sharpdepth")
    server.files = dict(zip(download.PUBLISHED_PARTS, _split(data).values(), strict=True))
    monkeypatch.setenv("SHARPDEPTH_PUBLISHED_URL", server.url)
    monkeypatch.setenv("SHARPDEPTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "download", "published", "--no-progress"]) == 0
    assert (tmp_path / "checkpoints" / "sharpdepth" / "model_index.json").is_file()
    assert (tmp_path / "cache" / download.MANIFEST_FILE).is_file()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(tmp_path / "photo.png")
    args = ["-q", "predict", "--no-progress", "photo.png", "--published", "--metric-model"]
    assert main([*args, "nano", "-o", "out", "--processing-res", "64"]) == 0
    assert (tmp_path / "out" / "photo_depth.npy").is_file()


def test_published_without_its_folder_names_the_command_and_stays_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import urllib.request

    from sharpdepth.cli.main import main

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setenv("SHARPDEPTH_PUBLISHED_CHECKPOINT", str(tmp_path / "missing"))
    (tmp_path / "p.png").write_bytes(b"")
    code = main(["predict", "--no-progress", str(tmp_path / "p.png"), "--published"])
    assert code == 2
    assert "run `sharpdepth download published`" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_published_with_download_fetches_the_missing_folder(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from sharpdepth import download
    from sharpdepth.cli.models import choose_models

    parts = _split(_archive(CHECKPOINT)).values()
    server.files = dict(zip(download.PUBLISHED_PARTS, parts, strict=True))
    monkeypatch.setenv("SHARPDEPTH_PUBLISHED_URL", server.url)
    monkeypatch.setenv("SHARPDEPTH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SHARPDEPTH_PUBLISHED_CHECKPOINT", str(tmp_path / "ckpt"))
    args = argparse.Namespace(published=True, download=True, metric_model=None, no_progress=True)
    checkpoint, metric = choose_models(args)
    assert Path(checkpoint) == tmp_path / "ckpt"
    assert (tmp_path / "ckpt" / "model_index.json").is_file()
    assert metric == "unidepth-v1-vitl14"


def test_train_published_needs_its_folder_and_starts_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from sharpdepth.cli.main import main
    from sharpdepth.cli.train import published_overrides

    monkeypatch.setenv("SHARPDEPTH_PUBLISHED_CHECKPOINT", str(tmp_path / "ckpt"))
    assert main(["train", "--published", "data.train=" + str(tmp_path)]) == 2
    assert "run `sharpdepth download published`" in capsys.readouterr().err
    (tmp_path / "ckpt").mkdir()
    args = argparse.Namespace(published=True, download=False)
    assert published_overrides(args) == [
        f"model.prior={tmp_path / 'ckpt'}",
        "model.metric_model=unidepth-v1-vitl14",
    ]
