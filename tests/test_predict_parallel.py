"""Many-image ``predict``: sharding across processes and overlapping I/O with compute."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharpdepth import export, parallel
from sharpdepth.cli.main import main
from sharpdepth.parallel import OrderedExecutor, Prefetcher, ProcessInfo
from sharpdepth.testing import write_tiny_depth_anything

SUFFIXES = (
    "_depth.npy",
    "_depth.png",
    "_depth_color.png",
    "_metric_depth.npy",
    "_metric_depth_color.png",
    "_confidence.png",
    ".json",
    ".ply",
)
DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start as a single process even if pytest itself runs under a launcher."""
    for name in DIST_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def metric_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_depth_anything(tmp_path_factory.mktemp("metric"))


def _write_images(folder: Path, n: int, size: tuple[int, int] = (32, 48)) -> list[Path]:
    """``n`` random RGB PNGs ``im0.png``... in ``folder``, the odd ones in another size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = size if i % 2 == 0 else (size[0] + 8, size[1])
        path = folder / f"im{i}.png"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture()
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    _write_images(folder, 5)
    return folder


def _args(ckpt: Path, metric: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--checkpoint",
        str(ckpt),
        "--metric-model",
        str(metric),
        "-o",
        str(out),
        "--processing-res",
        "64",
        *extra,
    ]


def _predict(*args: str) -> int:
    return main(["-q", "predict", "--no-progress", *args])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------------------
# Sharding
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 5, 6, 17])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_disjoint_covering_and_deterministic(n: int, world: int) -> None:
    items = [f"img{i:02d}" for i in range(n)]
    shards = [parallel.shard(items, rank, world) for rank in range(world)]
    flat = [x for s in shards for x in s]
    assert sorted(flat) == items  # covering, and disjoint (no duplicates)
    assert len(set(flat)) == len(flat)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
    assert shards == [parallel.shard(list(items), rank, world) for rank in range(world)]
    for s in shards:  # each shard keeps the input order
        assert s == sorted(s, key=items.index)


@pytest.mark.parametrize(("rank", "world"), [(2, 2), (-1, 2), (0, 0)])
def test_shard_rejects_bad_ranks(rank: int, world: int) -> None:
    with pytest.raises(ValueError, match="rank"):
        parallel.shard([1, 2, 3], rank, world)


def test_process_info_from_launcher_variables() -> None:
    assert parallel.process_info({}) == ProcessInfo(0, 1, 0)
    info = parallel.process_info({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert info == ProcessInfo(rank=3, world_size=4, local_rank=1)
    assert info.distributed and info.label == "process 4/4"
    assert parallel.process_info({"WORLD_SIZE": "2", "RANK": "1"}).local_rank == 1
    with pytest.raises(ValueError, match="RANK"):
        parallel.process_info({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(ValueError, match="not an integer"):
        parallel.process_info({"WORLD_SIZE": "two"})


def test_process_device_picks_the_local_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    info = ProcessInfo(rank=3, world_size=4, local_rank=3)
    assert parallel.process_device("auto", info) == "cuda:1"
    assert parallel.process_device("cuda", info) == "cuda:1"
    assert parallel.process_device("cuda:0", info) == "cuda:0"
    assert parallel.process_device("cpu", info) == "cpu"
    assert parallel.process_device("auto", ProcessInfo()) == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert parallel.process_device("auto", info) == "auto"


def test_share_from_rank0_without_rendezvous_evaluates_locally() -> None:
    calls = []
    info = ProcessInfo(rank=1, world_size=2, local_rank=1)
    assert parallel.share_from_rank0(lambda: calls.append(1) or "listing", info) == "listing"
    assert calls == [1]


# --------------------------------------------------------------------------------------
# Prefetcher and OrderedExecutor
# --------------------------------------------------------------------------------------


def test_prefetcher_keeps_order_and_stays_bounded() -> None:
    produced: list[int] = []

    def items():  # type: ignore[no-untyped-def]
        for i in range(10):
            produced.append(i)
            yield i

    with Prefetcher(items(), depth=2) as pre:
        it = iter(pre)
        assert next(it) == 0
        time.sleep(0.3)
        assert len(produced) <= 1 + 2 + 1  # consumed + queued + one in hand
        assert list(it) == list(range(1, 10))


def test_prefetcher_reraises_at_the_failing_item_and_stops_early() -> None:
    def failing():  # type: ignore[no-untyped-def]
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"), Prefetcher(failing(), depth=2) as pre:
        got.extend(pre)
    assert got == [1]

    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            yield i
            i += 1

    pre2 = Prefetcher(endless(), depth=2)
    for x in pre2:
        if x == 3:
            break
    pre2.close()
    assert pre2._thread is not None and not pre2._thread.is_alive()


def test_prefetcher_depth_zero_runs_in_the_caller() -> None:
    threads = []

    def items():  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        yield 1

    with Prefetcher(items(), depth=0) as pre:
        assert list(pre) == [1]
    assert threads == [threading.current_thread()]


def test_ordered_executor_reports_in_submission_order_and_bounds_pending() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def task(delay: float, fail: bool = False):  # type: ignore[no-untyped-def]
        def run() -> None:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(delay)
            with lock:
                running -= 1
            if fail:
                raise OSError("no space left")

        return run

    outcomes = []
    with OrderedExecutor[int](workers=3, max_pending=3) as ex:
        for i in range(9):
            outcomes += ex.submit(i, task(0.05 * (9 - i) / 9, fail=i == 4))
            assert ex.pending <= 3
        outcomes += ex.drain()
    assert [o.key for o in outcomes] == list(range(9))
    assert [o.key for o in outcomes if o.error is not None] == [4]
    assert isinstance(outcomes[4].error, OSError)
    assert peak <= 3


def test_ordered_executor_without_workers_runs_inline() -> None:
    seen = []
    ex = OrderedExecutor[str](workers=0, max_pending=4)
    out = ex.submit("a", lambda: seen.append(threading.current_thread()))
    assert [(o.key, o.error) for o in out] == [("a", None)]
    assert seen == [threading.current_thread()]
    bad = ex.submit("b", lambda: 1 / 0)
    assert isinstance(bad[0].error, ZeroDivisionError)
    assert ex.drain() == []


# --------------------------------------------------------------------------------------
# predict with overlap, and sharded in-process
# --------------------------------------------------------------------------------------


def test_overlap_gives_identical_files(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, images: Path, tmp_path: Path
) -> None:
    ckpt = tiny_checkpoints["released"]
    seq, ovl = tmp_path / "sequential", tmp_path / "overlap"
    assert _predict(str(images), *_args(ckpt, metric_dir, seq, "--io-workers", "0")) == 0
    assert (
        _predict(
            str(images), *_args(ckpt, metric_dir, ovl, "--io-workers", "2", "--batch-size", "1")
        )
        == 0
    )
    a, b = _files(seq), _files(ovl)
    assert len(a) == 5 * len(SUFFIXES)
    assert a.keys() == b.keys()
    differing = [name for name in a if a[name] != b[name]]
    assert differing == []  # bit-identical, npy and PNG and PLY and JSON


def test_failures_are_reported_with_overlap(
    tiny_checkpoints: dict[str, Path],
    metric_dir: Path,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (images / "im2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # unreadable, mid-list
    out = tmp_path / "out"
    out.mkdir()
    (out / "im3_depth.npy").mkdir()  # im3's outputs cannot be written
    code = _predict(
        str(images),
        *_args(tiny_checkpoints["released"], metric_dir, out, "--io-workers", "2"),
        "--batch-size",
        "2",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "im2.png" in err and "cannot write outputs" in err and "im3.png" in err
    assert "3 of 5 images done; 2 failures" in err
    for stem in ("im0", "im1", "im4"):
        assert all((out / f"{stem}{s}").is_file() for s in SUFFIXES)
    assert not (out / "im2.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_interrupt_finishes_pending_writes(
    tiny_checkpoints: dict[str, Path],
    metric_dir: Path,
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sharpdepth.cli import predict

    real_write = export.write_prediction
    real_group = predict._predict_group
    calls = 0

    def slow_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # with one writer, im1's write is still queued at the interrupt
        return real_write(*args, **kwargs)

    def interrupting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return real_group(*args, **kwargs)

    monkeypatch.setattr(export, "write_prediction", slow_write)
    monkeypatch.setattr(predict, "_predict_group", interrupting)
    out = tmp_path / "out"
    code = _predict(
        str(images), *_args(tiny_checkpoints["released"], metric_dir, out, "--io-workers", "1")
    )
    assert code == 130
    for stem in ("im0", "im1"):  # computed before the interrupt: written in full
        assert all((out / f"{stem}{s}").is_file() for s in SUFFIXES), stem
    assert not list(out.glob("im2*"))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_each_shard_writes_its_own_images(
    tiny_checkpoints: dict[str, Path],
    metric_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RANK / WORLD_SIZE set by hand (no rendezvous): shards by position, names agree."""
    _write_images(tmp_path / "a", 3)
    _write_images(tmp_path / "b", 2)  # im0 and im1 again: written as im0_2, im1_2
    out = tmp_path / "out"
    args = [str(tmp_path / "a"), str(tmp_path / "b")]
    common = _args(tiny_checkpoints["released"], metric_dir, out, "--no-ply")
    expected = ["im0", "im1", "im2", "im0_2", "im1_2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert _predict(*args, *common) == 0
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(expected[1::2])
    monkeypatch.setenv("RANK", "0")
    assert _predict(*args, *common, "--skip-existing") == 0
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(expected)
    for i, stem in enumerate(expected):
        meta = json.loads((out / f"{stem}.json").read_text())
        assert (meta["rank"], meta["world_size"]) == (i % 2, 2)


# --------------------------------------------------------------------------------------
# accelerate launch, two CPU processes
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_accelerate_launch_writes_every_image_once(
    tiny_checkpoints: dict[str, Path], metric_dir: Path, tmp_path: Path
) -> None:
    pytest.importorskip("accelerate")
    paths = _write_images(tmp_path / "images", 6)
    out = tmp_path / "out"
    # --multi_gpu is accelerate's torchrun-based launcher; it runs on CPU-only machines
    # too (--cpu alone starts one process unless MPI is set up)
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "sharpdepth.cli.main",
        "predict",
        str(tmp_path / "images"),
        *_args(tiny_checkpoints["released"], metric_dir, out, "--no-progress", "--no-ply"),
        "--device",
        "cpu",
    ]
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stderr
    assert "process 1/2 on cpu: 3 of 6 images" in log, log[-3000:]
    assert "process 2/2 on cpu: 3 of 6 images" in log
    writers = set()
    for i, path in enumerate(paths):
        stem = path.stem
        assert all((out / f"{stem}{s}").is_file() for s in SUFFIXES if s != ".ply")
        meta = json.loads((out / f"{stem}.json").read_text())
        assert meta["world_size"] == 2 and meta["rank"] == i % 2
        writers.add(meta["rank"])
        # the per-image log line appears once: one process computed it
        assert len(re.findall(rf"{re.escape(str(path))}: intrinsics from", log)) == 1
    assert writers == {0, 1}
    assert len(list(out.glob("*.json"))) == 6
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
