"""Reliability: nothing a user gives sharpdepth may crash it, run code or destroy a file.

The corpus is built here: broken and hostile weights and configurations, bad camera and
pipeline options, folders with symlink loops, a user's photo named like an output,
SIGKILL at several points followed by a resume, two runs into one folder, a full file
system (a real tiny tmpfs where user namespaces allow one, and a simulated ENOSPC), bad
images through the Python API and a decompression bomb uploaded to the demo. Each case
asserts a clear one-line error naming the file, the documented exit code, no traceback,
no file outside the output folder touched and no partial or mixed output set.

The command runs in this process; the SIGKILL and concurrency cases fork it, so the tiny
models are loaded once (torch runs one thread here, so forked children compute the same
bytes as the parent).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import struct
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sharpdepth import export, io
from sharpdepth.cli import predict
from sharpdepth.cli.main import main
from sharpdepth.errors import CheckpointError
from sharpdepth.export import OUTPUT_SUFFIXES, outputs_complete
from sharpdepth.models.metric import load_metric_model
from sharpdepth.pipeline import SharpDepthPipeline
from sharpdepth.testing import SmoothMetricModel, write_tiny_checkpoint, write_tiny_depth_anything

RES = "32"
UNET = "unet/diffusion_pytorch_model.safetensors"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX fork")


# --------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: forked children then compute exactly what the parent does."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight checkpoint in our own layout."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "sharpdepth")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The user's own metric model as ``file.py:attribute`` (allowed on the command line)."""
    path = tmp_path_factory.mktemp("plugin") / "smooth.py"
    path.write_text(
        "from sharpdepth.testing import SmoothMetricModel\nmodel = SmoothMetricModel()\n"
    )
    return f"{path}:model"


@pytest.fixture(scope="module")
def pipe(ckpt: Path) -> SharpDepthPipeline:
    return SharpDepthPipeline.from_pretrained(
        ckpt, metric_model=SmoothMetricModel(), device="cpu", processing_resolution=int(RES)
    )


@pytest.fixture()
def cached(monkeypatch: pytest.MonkeyPatch, pipe: SharpDepthPipeline) -> None:
    """``predict`` uses the module's loaded pipeline (the file tests need no fresh load)."""
    monkeypatch.setattr(predict, "load_pipeline", lambda args, device=None, **kw: (pipe, "tiny"))


def _photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _predict(*args: str) -> int:
    return main(["-q", "predict", "--no-progress", "--processing-res", RES, *args])


def _tree(root: Path, skip: Path | None = None) -> dict[str, str]:
    """Every file, folder and link under ``root`` (not following links), with its content
    hash or target; ``skip`` and what is under it left out."""
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(folder) / name
            if skip is not None and path == skip:
                continue
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir"
    return found


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _assert_clean_error(err: str, *needles: str) -> None:
    """One ``ERROR:`` line with every needle in it, and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert any(all(n in line for n in needles) for line in lines), err


def _assert_whole_sets(out: Path, stems: list[str]) -> None:
    """Every image's outputs are a complete set or absent, with no hidden debris."""
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for stem in stems:
        present = [
            p for p in out.iterdir() if p.name.startswith(stem) and not p.name[len(stem)].isdigit()
        ]
        assert not present or outputs_complete(out, stem, ply=True), (stem, present)


class DeadlineError(Exception):
    """Not an ``OSError`` (as ``TimeoutError`` is), which a directory walk would swallow."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging."""

    def expire(signum: int, frame: Any) -> None:
        raise DeadlineError(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _fork(work: Callable[[], int], log: Path) -> int:
    """Run ``work`` in a forked child (its log in ``log``) and start it; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 98
    try:  # the child: never return into pytest
        sys.stderr = open(log, "w")  # noqa: SIM115 - the child ends with os._exit
        code = work()
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float = 120.0) -> int:
    """The child's exit code (negative: killed by that signal)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise TimeoutError("child did not finish")


# --------------------------------------------------------------------------------------
# 1. a checkpoint may not run code
# --------------------------------------------------------------------------------------


def _hostile_checkpoint(ckpt: Path, folder: Path, spec: str) -> Path:
    hostile = folder / "hostile"
    shutil.copytree(ckpt, hostile)
    config = json.loads((hostile / "sharpdepth_config.json").read_text())
    config["metric_model"] = spec
    (hostile / "sharpdepth_config.json").write_text(json.dumps(config))
    return hostile


def _evil_code(sentinel: Path) -> str:
    return (
        "from pathlib import Path\n"
        f"Path({str(sentinel)!r}).write_text('ran')\n"
        "from sharpdepth.testing import SmoothMetricModel\n"
        "model = SmoothMetricModel()\n"
    )


@pytest.mark.parametrize("kind", ["file", "module"])
def test_a_checkpoint_may_not_run_code(
    kind: str,
    ckpt: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentinel = tmp_path / "code-ran"
    if kind == "file":
        (tmp_path / "evil.py").write_text(_evil_code(sentinel))
        spec = f"{tmp_path / 'evil.py'}:model"
    else:
        (tmp_path / "sharpdepth_evil_mod.py").write_text(_evil_code(sentinel))
        monkeypatch.syspath_prepend(str(tmp_path))
        spec = "sharpdepth_evil_mod:model"
    hostile = _hostile_checkpoint(ckpt, tmp_path, spec)
    (photo,) = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert _predict(str(photo), "--checkpoint", str(hostile), "-o", str(out)) == 2
    _assert_clean_error(capsys.readouterr().err, "sharpdepth_config.json", "may not run code")
    assert not sentinel.exists()
    assert not out.exists() or not list(out.iterdir())
    # asked for explicitly, it is allowed
    pipe = SharpDepthPipeline.from_pretrained(hostile, device="cpu", trust_remote_code=True)
    assert sentinel.read_text() == "ran" and pipe.metric_model is not None


# --------------------------------------------------------------------------------------
# 3. corrupt weights and hostile configurations: one line naming the file, exit 2
# --------------------------------------------------------------------------------------


def _rewrite_header(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    change(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + blob[8 + n :])


def _double_a_shape(header: dict[str, Any]) -> None:
    name = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 1)
    header[name]["shape"] = [header[name]["shape"][0] * 2]


def _edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _wider_unet(root: Path) -> None:
    config = json.loads((root / "unet/config.json").read_text())
    _edit_json(
        root / "unet/config.json", block_out_channels=[2 * c for c in config["block_out_channels"]]
    )


def _sharded_outside(root: Path) -> None:
    (root / UNET).unlink()
    index = {"weight_map": {"conv_in.weight": "../../secret.safetensors"}}
    (root / "unet/diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))


RANDOM = np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes()

#: (name, change to a copy of the checkpoint, extra options, words the error must hold)
CHECKPOINT_CORPUS: list[tuple[str, Callable[[Path], object], tuple[str, ...], tuple[str, ...]]] = [
    (
        "huge header length",
        lambda r: (r / UNET).write_bytes(
            (2**63 - 5).to_bytes(8, "little") + (r / UNET).read_bytes()[8:]
        ),
        (),
        (UNET, "header length"),
    ),
    ("random bytes", lambda r: (r / UNET).write_bytes(RANDOM), (), (UNET, "not a safetensors")),
    ("empty file", lambda r: (r / UNET).write_bytes(b""), (), (UNET, "0 bytes")),
    ("four bytes", lambda r: (r / UNET).write_bytes(b"abcd"), (), (UNET, "4 bytes")),
    (
        "truncated",
        lambda r: (r / UNET).write_bytes((r / UNET).read_bytes()[:5000]),
        (),
        (UNET, "truncated"),
    ),
    ("shape vs data", lambda r: _rewrite_header(r / UNET, _double_a_shape), (), (UNET, "needs")),
    ("config vs weights", _wider_unet, (), ("unet", "do not match the configuration")),
    (
        "config vs weights, fast",
        _wider_unet,
        ("--fast",),
        ("unet", "do not match the configuration"),
    ),
    ("garbage unet config", lambda r: (r / "unet/config.json").write_text("{"), (), ("unet",)),
    (
        "random prompt embedding",
        lambda r: (r / "prompt_embeds.safetensors").write_bytes(RANDOM[:100]),
        (),
        ("prompt_embeds.safetensors",),
    ),
    (
        "empty vae",
        lambda r: (r / "vae/diffusion_pytorch_model.safetensors").write_bytes(b""),
        (),
        ("vae/diffusion_pytorch_model.safetensors", "0 bytes"),
    ),
    (
        "config not JSON",
        lambda r: (r / "sharpdepth_config.json").write_text("{"),
        (),
        ("sharpdepth_config.json", "JSON"),
    ),
    (
        "config not an object",
        lambda r: (r / "sharpdepth_config.json").write_text("[1]"),
        (),
        ("sharpdepth_config.json", "object"),
    ),
    (
        "metric model not a name",
        lambda r: _edit_json(r / "sharpdepth_config.json", metric_model=[1]),
        ("--metric-model", ""),
        ("sharpdepth_config.json", "metric_model"),
    ),
    (
        "huge processing resolution",
        lambda r: _edit_json(r / "sharpdepth_config.json", processing_resolution=100000),
        (),
        ("sharpdepth_config.json", "processing_resolution"),
    ),
    (
        "bad threshold",
        lambda r: _edit_json(r / "sharpdepth_config.json", confidence_threshold="abc"),
        (),
        ("sharpdepth_config.json", "confidence_threshold"),
    ),
    (
        "bad prediction type",
        lambda r: _edit_json(r / "sharpdepth_config.json", prediction_type="bogus"),
        (),
        ("bogus",),
    ),
    ("shard outside the folder", _sharded_outside, ("--fast",), ("weight_map",)),
]


@pytest.mark.parametrize(
    ("change", "extra", "needles"),
    [case[1:] for case in CHECKPOINT_CORPUS],
    ids=[case[0] for case in CHECKPOINT_CORPUS],
)
def test_broken_checkpoints_are_one_line_errors(
    change: Callable[[Path], object],
    extra: tuple[str, ...],
    needles: tuple[str, ...],
    ckpt: Path,
    plugin: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(ckpt, broken)
    change(broken)
    (photo,) = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    before = _tree(tmp_path, skip=out)
    metric = () if "--metric-model" in extra else ("--metric-model", plugin)
    extra = tuple(e for e in extra if e not in ("--metric-model", ""))
    code = _predict(str(photo), "--checkpoint", str(broken), *metric, *extra, "-o", str(out))
    assert code == 2
    err = capsys.readouterr().err
    _assert_clean_error(err, "cannot load the models", *(n.replace("/", os.sep) for n in needles))
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert _tree(tmp_path, skip=out) == before
    assert not out.exists() or not list(out.iterdir())


@pytest.fixture(scope="module")
def metric_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sharpdepth.models.metric.bundled import bundled_metric_weights_dir

    root = tmp_path_factory.mktemp("metric")
    return {
        "nano": Path(shutil.copytree(bundled_metric_weights_dir(), root / "nano")),
        "transformers": write_tiny_depth_anything(root / "transformers"),
    }


METRIC_CORPUS = [
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
    ("random bytes", lambda p: p.write_bytes(RANDOM), "not a safetensors"),
    ("empty file", lambda p: p.write_bytes(b""), "0 bytes"),
    ("four bytes", lambda p: p.write_bytes(b"\x01\x02\x03\x04"), "4 bytes"),
    ("shape vs data", lambda p: _rewrite_header(p, _double_a_shape), "needs"),
]


@pytest.mark.parametrize("kind", ["nano", "transformers"])
@pytest.mark.parametrize(
    ("change", "needle"), [c[1:] for c in METRIC_CORPUS], ids=[c[0] for c in METRIC_CORPUS]
)
def test_broken_metric_model_folders_are_one_line_errors(
    kind: str,
    change: Callable[[Path], object],
    needle: str,
    metric_folders: dict[str, Path],
    tmp_path: Path,
) -> None:
    folder = Path(shutil.copytree(metric_folders[kind], tmp_path / kind))
    weights = folder / "model.safetensors"
    change(weights)
    with pytest.raises(CheckpointError) as info:
        load_metric_model(str(folder), device="cpu")
    message = str(info.value)
    assert str(weights) in message and needle in message and "\n" not in message


def test_nano_metric_config_that_does_not_fit_its_weights(
    metric_folders: dict[str, Path], tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(metric_folders["nano"], tmp_path / "nano"))
    config = json.loads((folder / "config.json").read_text())
    _edit_json(folder / "config.json", channels=[2 * c for c in config["channels"]])
    with pytest.raises(CheckpointError, match="do not match the configuration") as info:
        load_metric_model(str(folder), device="cpu")
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


def test_broken_metric_model_through_the_command(
    metric_folders: dict[str, Path],
    ckpt: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command's own loading path: exit 2, one line naming the file."""
    folder = Path(shutil.copytree(metric_folders["transformers"], tmp_path / "m"))
    (folder / "model.safetensors").write_bytes(RANDOM)
    (photo,) = _photos(tmp_path / "in", 1)
    args = ["--checkpoint", str(ckpt), "--metric-model", str(folder), "-o", str(tmp_path / "o")]
    code = _predict(str(photo), *args)
    assert code == 2
    _assert_clean_error(capsys.readouterr().err, str(folder / "model.safetensors"))


# --------------------------------------------------------------------------------------
# 4. options are checked when parsed
# --------------------------------------------------------------------------------------

OPTION_CORPUS = [
    (["--fov", "0"], "--fov"),
    (["--fov", "180"], "--fov"),
    (["--fov", "-30"], "--fov"),
    (["--fov", "nan"], "--fov"),
    (["--fov", "inf"], "--fov"),
    (["--fov", "wide"], "--fov"),
    (["--focal-px", "-1"], "--focal-px"),
    (["--focal-px", "0"], "--focal-px"),
    (["--focal-px", "inf"], "--focal-px"),
    (["--focal-px", "nan"], "--focal-px"),
    (["--intrinsics", "0", "100", "10", "10"], "--intrinsics"),
    (["--intrinsics", "100", "-100", "10", "10"], "--intrinsics"),
    (["--intrinsics", "100", "100", "nan", "10"], "--intrinsics"),
    (["--intrinsics", "100", "100", "10"], "--intrinsics"),
    (["--processing-res", "-1"], "--processing-res"),
    (["--processing-res", "100000"], "--processing-res"),
    (["--processing-res", "big"], "--processing-res"),
    (["--confidence-threshold", "0"], "--confidence-threshold"),
    (["--confidence-threshold", "1.5"], "--confidence-threshold"),
    (["--confidence-threshold", "nan"], "--confidence-threshold"),
    (["--seed", str(2**70)], "--seed"),
    (["--seed", "1.5"], "--seed"),
]


@pytest.mark.parametrize(
    ("options", "flag"), OPTION_CORPUS, ids=[" ".join(o) for o, _ in OPTION_CORPUS]
)
def test_bad_options_are_refused_when_parsed(
    options: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo,) = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["predict", str(photo), "-o", str(out), *options])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"argument {flag}" in err.splitlines()[-1]
    assert not out.exists()


# --------------------------------------------------------------------------------------
# 5. symlink loops end the search
# --------------------------------------------------------------------------------------


@pytest.fixture()
def looped(tmp_path: Path) -> Path:
    """``photos/`` with loops (``up -> ..``, ``self -> .``, ``me -> me``), a broken link and
    a genuine symlinked folder outside it."""
    root = tmp_path / "photos"
    _photos(root, 1)
    _photos(root / "sub", 2, seed=1)
    _photos(tmp_path / "elsewhere", 1, seed=2)
    (root / "sub" / "up").symlink_to("..")
    (root / "self").symlink_to(".")
    (root / "me").symlink_to("me")
    (root / "gone.png").symlink_to("missing.png")
    (root / "more").symlink_to(tmp_path / "elsewhere")
    return root


@pytest.mark.parametrize("how", ["glob", "recursive"])
def test_symlink_loops_do_not_hang(
    how: str, looped: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _deadline(20), caplog.at_level(logging.WARNING, logger="sharpdepth"):
        if how == "glob":
            paths, errors = io.find_images([str(looped / "**" / "*.png")])
        else:
            paths, errors = io.find_images([looped], recursive=True)
    names = sorted(str(p.relative_to(looped)) for p in paths)
    assert names == ["more/p0.png", "p0.png", "sub/p0.png", "sub/p1.png"]
    assert errors == []
    assert "symlink loop" in caplog.text and "up" in caplog.text


def test_predict_over_a_glob_with_loops(
    looped: Path, cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    before = _tree(tmp_path, skip=out)
    with _deadline(60):
        assert _predict(str(looped / "**" / "*.png"), "-o", str(out)) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.stem for p in out.glob("*.json")) == ["p0", "p0_2", "p0_3", "p1"]
    assert _tree(tmp_path, skip=out) == before


# --------------------------------------------------------------------------------------
# 2. a file we did not write is never overwritten; our outputs are never inputs
# --------------------------------------------------------------------------------------


def test_a_users_photo_named_like_an_output_is_kept(
    cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    x, y = _photos(folder, 2)
    x.rename(folder / "x.png")
    y.rename(folder / "y.png")
    _photos(tmp_path / "other", 1, seed=5)[0].rename(folder / "x_depth.png")  # a photo
    (folder / "y.json").write_text('{"my": "notes"}')  # the user's own file
    theirs = {name: (folder / name).read_bytes() for name in ("x_depth.png", "y.json")}
    inputs = ["x.png", "x_depth.png", "y.png"]

    for _ in range(2):  # the second run sees the first one's outputs in the folder
        assert _predict(str(folder), "-o", str(folder)) == 1
        err = capsys.readouterr().err
        _assert_clean_error(err, str(folder / "x_depth.png"), "not written by sharpdepth")
        _assert_clean_error(err, str(folder / "y.json"), "not written by sharpdepth")
        for name, blob in theirs.items():
            assert (folder / name).read_bytes() == blob
        assert outputs_complete(folder, "x_depth", ply=True)
        assert not (folder / "x.ply").exists() and not (folder / "y_depth.npy").exists()
        found, _ = io.find_images([folder], exclude=export.is_prediction_output)
        assert sorted(p.name for p in found) == inputs
    assert not list(folder.glob("*_depth_depth_depth*"))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------------------
# 6. SIGKILL at several points, then a resume equal to an uninterrupted run
# --------------------------------------------------------------------------------------


def _kill_at(point: str, nth: int) -> None:
    """In a child: SIGKILL this process at the ``nth`` temp-file creation or rename."""
    calls = {"n": 0}
    if point == "temp":
        real_create = io._create_temp

        def create(path: Path) -> Path:
            tmp = real_create(path)
            calls["n"] += 1
            if calls["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return tmp

        io._create_temp = create
        return
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        last_json = (
            point == "json" and str(dst).endswith(".json") and not Path(dst).name.startswith(".")
        )
        if calls["n"] == nth or last_json:
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    os.replace = replace  # type: ignore[assignment]


def _set_of(folder: Path, stem: str) -> dict[str, bytes]:
    """The bytes of ``stem``'s outputs in ``folder``."""
    names = [f"{stem}{suffix}" for suffix in OUTPUT_SUFFIXES.values()]
    return {n: (folder / n).read_bytes() for n in names if (folder / n).exists()}


#: (where the child is killed, at which call, --io-workers)
KILLS = [
    ("temp", 3, "0"),
    ("replace", 5, "0"),
    ("replace", 13, "2"),
    ("json", 0, "0"),
    ("replace", 22, "1"),
]


@pytest.mark.parametrize(("point", "nth", "workers"), KILLS)
def test_sigkill_then_resume_equals_an_uninterrupted_run(
    point: str, nth: int, workers: str, cached: None, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 3)
    stems = ["p0", "p1", "p2"]
    refs = {}
    for seed in ("0", "7"):
        refs[seed] = tmp_path / f"ref{seed}"
        assert _predict(str(photos), "-o", str(refs[seed]), "--seed", seed) == 0
    inputs = _tree(photos)

    def killed_run(out: Path) -> Callable[[], int]:
        def run() -> int:
            _kill_at(point, nth)
            return _predict(str(photos), "-o", str(out), "--io-workers", workers)

        return run

    # from an empty folder: the resume equals the uninterrupted run, byte for byte
    out = tmp_path / "out"
    assert _wait(_fork(killed_run(out), tmp_path / "a.log")) == -signal.SIGKILL
    assert _predict(str(photos), "-o", str(out), "--skip-existing") == 0
    assert _files(out) == _files(refs["0"])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    # over an earlier run with another seed: the image being rewritten is redone, every
    # set is one run's, never a mix
    out = Path(shutil.copytree(refs["7"], tmp_path / "over"))
    assert _wait(_fork(killed_run(out), tmp_path / "b.log")) == -signal.SIGKILL
    interrupted = [s for s in stems if not outputs_complete(out, s, ply=True)]
    assert interrupted
    assert _predict(str(photos), "-o", str(out), "--skip-existing") == 0
    for stem in stems:
        got = _set_of(out, stem)
        assert got in (_set_of(refs["0"], stem), _set_of(refs["7"], stem)), stem
        if stem in interrupted:
            assert got == _set_of(refs["0"], stem), stem
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert _tree(photos) == inputs


def test_interrupted_set_is_incomplete_and_debris_is_removed(cached: None, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 1)
    out = tmp_path / "out"

    def killed_run() -> int:
        _kill_at("temp", 4)
        return _predict(str(photos), "-o", str(out), "--io-workers", "0")

    assert _wait(_fork(killed_run, tmp_path / "child.log")) == -signal.SIGKILL
    hidden = [p for p in out.iterdir() if p.name.startswith(".")]
    assert any(".tmp-" in p.name and p.stat().st_size == 0 for p in hidden)
    assert not outputs_complete(out, "p0", ply=True)
    assert _predict(str(photos), "-o", str(out), "--skip-existing") == 0
    _assert_whole_sets(out, ["p0"])
    assert outputs_complete(out, "p0", ply=True)


# --------------------------------------------------------------------------------------
# 7. two runs into one folder
# --------------------------------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_is_refused(
    cached: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo,) = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    with io.lock_folder(out):
        assert _predict(str(photo), "-o", str(out)) == 2
    _assert_clean_error(capsys.readouterr().err, str(out), "in use by another sharpdepth run")
    assert list(out.iterdir()) == []
    assert _predict(str(photo), "-o", str(out)) == 0  # released: the folder is free again


def test_concurrent_runs_with_different_seeds_never_mix(
    cached: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    _photos(photos, 3)
    refs = {}
    for seed in ("0", "7"):
        refs[seed] = tmp_path / f"ref{seed}"
        assert _predict(str(photos), "-o", str(refs[seed]), "--seed", seed) == 0
    out = tmp_path / "out"
    real_write = export.write_prediction

    def slow_write(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(export, "write_prediction", slow_write)
    first = _fork(lambda: _predict(str(photos), "-o", str(out), "--seed", "0"), tmp_path / "a.log")
    end = time.monotonic() + 60
    while not (out / ".sharpdepth.lock").exists() and time.monotonic() < end:
        time.sleep(0.01)
    second = _fork(lambda: _predict(str(photos), "-o", str(out), "--seed", "7"), tmp_path / "b.log")
    assert (_wait(first), _wait(second)) == (0, 2)
    assert "in use by another sharpdepth run" in (tmp_path / "b.log").read_text()
    assert _files(out) == _files(refs["0"])


# --------------------------------------------------------------------------------------
# 6. a full disk: "no space left on <folder>", stop, no partial set
# --------------------------------------------------------------------------------------


class _Quota:
    """A file whose writes fail with ENOSPC once the folder's byte budget is spent."""

    def __init__(self, handle: Any, disk: _FullDisk) -> None:
        self._handle, self._disk = handle, disk

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B")) if not isinstance(data, str) else len(data)
        if self._disk.used + size > self._disk.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._disk.used += size
        return int(self._handle.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _Quota:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class _FullDisk:
    """``open`` for files under ``folder`` that share a budget of ``budget`` bytes."""

    def __init__(self, folder: Path, budget: int) -> None:
        self.folder, self.budget, self.used = folder, budget, 0
        self.real_open = builtins.open

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self.real_open(file, mode, *args, **kwargs)
        inside = isinstance(file, str | os.PathLike) and Path(file).parent == self.folder
        return _Quota(handle, self) if inside and any(c in mode for c in "wax+") else handle


def test_a_full_disk_stops_the_run_simulated(
    cached: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ENOSPC simulated: every write into the output folder shares a 30 kB budget."""
    photos = tmp_path / "photos"
    _photos(photos, 4)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(builtins, "open", _FullDisk(out, 30_000).open)
    assert _predict(str(photos), "-o", str(out), "--io-workers", "0") == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    _assert_clean_error(err, f"no space left on {out}", "stopped")
    assert err.count("ERROR:") == 1, err  # stopped at the first full write
    _assert_whole_sets(out, ["p0", "p1", "p2", "p3"])
    assert sorted(p.stem for p in out.glob("*.json")) == ["p0"]


def _private_tmpfs(target: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` on ``target`` in a new user and mount namespace (no root
    needed where unprivileged user namespaces are allowed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    if libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", 0, f"size={size}".encode()) != 0:
        raise OSError(ctypes.get_errno(), "mount")


@pytest.mark.skipif(sys.platform != "linux", reason="needs Linux namespaces")
def test_a_full_disk_stops_the_run_real_tmpfs(cached: None, tmp_path: Path) -> None:
    """A real 64 kB tmpfs as output folder, mounted in a forked child's own namespace."""
    photos = tmp_path / "photos"
    _photos(photos, 4)
    out = tmp_path / "out"
    out.mkdir()
    report = tmp_path / "report.json"

    def run_on_tmpfs() -> int:
        try:
            _private_tmpfs(out, "64k")
        except OSError as exc:
            report.write_text(json.dumps({"skip": str(exc)}))
            return 0
        code = _predict(str(photos), "-o", str(out), "--io-workers", "0")
        stems = ["p0", "p1", "p2", "p3"]
        listing = {
            "code": code,
            "hidden": [p.name for p in out.iterdir() if p.name.startswith(".")],
            "complete": [s for s in stems if outputs_complete(out, s, ply=True)],
            "present": sorted({s for s in stems for p in out.iterdir() if p.name.startswith(s)}),
        }
        report.write_text(json.dumps(listing))
        return 0

    log = tmp_path / "child.log"
    assert _wait(_fork(run_on_tmpfs, log)) == 0, log.read_text()
    result = json.loads(report.read_text())
    if "skip" in result:
        pytest.skip(f"no private tmpfs here: {result['skip']}")
    text = log.read_text()
    assert result["code"] == 1 and "Traceback" not in text
    assert f"no space left on {out}" in text and "requested and" not in text
    assert result["hidden"] == []
    assert result["present"] == result["complete"]  # complete sets or nothing
    assert 0 < len(result["complete"]) < 4


# --------------------------------------------------------------------------------------
# 8. what a folder search skips is said
# --------------------------------------------------------------------------------------


def test_animated_and_avif_images_are_read_and_others_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    frames = [Image.new("RGB", (12, 10), c) for c in ("red", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    expected = ["anim.gif"]
    if ".avif" in io.IMAGE_EXTENSIONS:
        Image.new("RGB", (12, 10), "green").save(folder / "pic.avif")
        expected.append("pic.avif")
    (folder / "phone.heic").write_bytes(b"not decodable here")
    (folder / "notes.txt").write_text("hi")
    with caplog.at_level(logging.INFO, logger="sharpdepth"):
        paths, errors = io.find_images([folder])
        loaded = io.load_image(folder / "anim.gif")
    assert [p.name for p in paths] == expected and errors == []
    assert "1 .heic" in caplog.text and "not images" in caplog.text
    assert "first frame" in caplog.text
    np.testing.assert_allclose(loaded.rgb[0, 0], [1.0, 0.0, 0.0])


# --------------------------------------------------------------------------------------
# 9. the Python API refuses bad images and resolutions with ValueError
# --------------------------------------------------------------------------------------

API_CORPUS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("empty image", np.zeros((0, 0, 3)), {}, "zero size"),
    ("empty width", np.zeros((5, 0, 3), np.uint8), {}, "zero size"),
    ("empty batch tensor", torch.zeros(1, 3, 0, 4), {}, "zero size"),
    ("NaN pixel", np.where(np.eye(8)[..., None] > 0, np.nan, 0.5).repeat(3, 2), {}, "NaN"),
    ("NaN tensor", torch.full((3, 8, 8), float("nan")), {}, "NaN"),
    ("huge resolution", np.zeros((8, 8, 3)), {"processing_resolution": 100_000}, "4096"),
    (
        "bool resolution",
        np.zeros((8, 8, 3)),
        {"processing_resolution": True},
        "processing_resolution",
    ),
    ("native too large", np.zeros((1, 4097, 3), np.uint8), {"processing_resolution": 0}, "4096"),
    ("NaN threshold", np.zeros((8, 8, 3)), {"confidence_threshold": float("nan")}, "confidence"),
    ("string threshold", np.zeros((8, 8, 3)), {"confidence_threshold": "0.5"}, "confidence"),
]


@pytest.mark.parametrize(
    ("image", "kwargs", "match"), [c[1:] for c in API_CORPUS], ids=[c[0] for c in API_CORPUS]
)
def test_api_refuses_bad_images_and_resolutions(
    image: Any, kwargs: dict[str, Any], match: str, pipe: SharpDepthPipeline
) -> None:
    with pytest.raises(ValueError, match=match):
        pipe(image, seed=0, **kwargs)


# --------------------------------------------------------------------------------------
# 10. the demo: a decompression bomb gets the same one line as other refused uploads
# --------------------------------------------------------------------------------------


def _png_bomb(path: Path, side: int = 30_000) -> Path:
    """A 400-byte PNG claiming ``side x side`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * (side + 1))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def test_demo_refuses_a_decompression_bomb_in_one_line(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from gradio.data_classes import ImageData

    from sharpdepth.demo.app import photo_input, too_many_pixels
    from sharpdepth.demo.limits import DemoLimits
    from sharpdepth.demo.runner import DemoInputError, check_upload

    bomb = _png_bomb(tmp_path / "bomb.png")
    limits = DemoLimits()
    component = photo_input(limits, type="filepath", image_mode=None)
    with pytest.raises(gr.Error) as info:
        component.preprocess(ImageData(path=str(bomb), orig_name="bomb.png"))
    assert info.value.message == too_many_pixels(limits)
    assert info.value.print_exception is False
    with pytest.raises(DemoInputError, match="too many pixels"):
        check_upload(bomb, limits)
