"""Inference modes (exact, fast, fastest, released cost structure) and the stage profiler."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sharpdepth import SharpDepthPipeline
from sharpdepth.accel import ReleasedPrompt, memory, modes, prepare
from sharpdepth.accel.memory import HUGE_PAGES_VARIABLE, reusing_heap, use_huge_pages, use_lean_heap
from sharpdepth.accel.profiling import StageTimer, peak_rss_bytes, stage
from sharpdepth.accel.speed import TUNED_GLIBC, worker_environment
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.testing import SmoothMetricModel

RES = 64
#: Fast modes against exact on tiny random weights: mean |relative depth difference|.
FAST_TOLERANCE = 0.05
#: The same through ``sharpdepth speed``, whose pipelines use the bundled nano metric
#: model: the random sharpener's noise is scaled onto that model's depth range on the
#: photo, so the bound is looser (0.08 measured with the retrained family; the tight
#: comparison is ``test_fast_modes_stay_close_to_exact`` with a smooth metric model).
FAST_TOLERANCE_COMMAND = 0.15


def _pipe(root: Path, mode: str, **kwargs: Any) -> SharpDepthPipeline:
    return SharpDepthPipeline.from_pretrained(
        root,
        metric_model=SmoothMetricModel(),
        device="cpu",
        processing_resolution=RES,
        mode=mode,
        **kwargs,
    )


def test_released_cost_structure_gives_the_exact_result(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    exact = _pipe(tiny_checkpoints["released"], "exact")
    released = _pipe(tiny_checkpoints["released"], "released")
    assert [type(hook) for hook in released.before_encode] == [ReleasedPrompt]
    assert exact.before_encode == []
    a, b = exact(photo, seed=3), released(photo, seed=3)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(a.gate, b.gate, atol=1e-4)


def test_released_mode_needs_a_text_encoder(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    with pytest.raises(Exception, match="text_encoder"):
        _pipe(tiny_checkpoints["sharpdepth"], "released")


def test_channels_last_is_the_same_result(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    a = _pipe(tiny_checkpoints["released"], "exact", channels_last=False)(photo, seed=0)
    b = _pipe(tiny_checkpoints["released"], "exact", channels_last=True)(photo, seed=0)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ["fast", "fastest"])
def test_fast_modes_stay_close_to_exact(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray, mode: str
) -> None:
    exact = _pipe(tiny_checkpoints["released"], "exact")(photo, seed=0)
    fast_pipe = _pipe(tiny_checkpoints["released"], mode)
    fast = fast_pipe(photo, seed=0)
    assert fast.depth.shape == exact.depth.shape and np.isfinite(fast.depth).all()
    rel = np.abs(fast.depth - exact.depth) / exact.depth
    assert rel.mean() < FAST_TOLERANCE
    assert not np.array_equal(fast.depth, exact.depth)  # it does take the cheaper path


def test_fastest_mode_differs_from_fast_only_by_the_coarse_prior_pass(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    from sharpdepth.accel import INFERENCE_MODES

    fast, fastest = INFERENCE_MODES["fast"], INFERENCE_MODES["fastest"]
    assert (fast.prior_factor, fastest.prior_factor) == (1, 2)
    assert dataclasses.replace(fastest, name="fast", prior_factor=1) == fast
    a = _pipe(tiny_checkpoints["released"], "fast")(photo, seed=0)
    b = _pipe(tiny_checkpoints["released"], "fastest")(photo, seed=0)
    assert not np.array_equal(a.depth, b.depth)


def test_coarse_prior_pass_runs_the_unet_at_half_resolution(
    tiny_checkpoints: dict[str, Path],
) -> None:
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    gen = torch.Generator().manual_seed(0)
    z_i = torch.randn(1, 4, 8, 12, generator=gen)
    z_d = torch.randn(1, 4, 8, 12, generator=gen)
    eps = torch.randn(1, 4, 8, 12, generator=gen)
    eps_gate = torch.randn(1, 4, 8, 12, generator=gen)
    f = model.downsampling_factor
    d_n = torch.rand(1, 1, 8 * f, 12 * f) * 2 - 1
    seen: list[torch.Tensor] = []
    unet_forward = model.unet.forward

    def spy(sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        seen.append(sample.detach().clone())
        return unet_forward(sample, *args, **kwargs)

    model.unet.forward = spy  # type: ignore[method-assign]
    with torch.no_grad():
        exact = model.prior_and_gate(z_i, z_d, d_n, eps, eps_gate, "released")
        coarse = model.prior_and_gate(
            z_i, z_d, d_n, eps, eps_gate, "released", decode_factor=2, prior_factor=2
        )
    assert [tuple(x.shape) for x in seen] == [(1, 8, 8, 12), (1, 8, 4, 6)]
    # [pooled z_i, pooled eps rescaled to unit variance]
    pool = torch.nn.functional.avg_pool2d
    torch.testing.assert_close(seen[1], torch.cat([pool(z_i, 2), pool(eps, 2) * 2], dim=1))
    for a, b in ((exact.prior_latent, coarse.prior_latent), (exact.gate, coarse.gate)):
        assert a.shape == b.shape and torch.isfinite(b).all()
    assert coarse.prior_depth.shape == d_n.shape


def test_fast_mode_batch_equals_single_calls(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    pipe = _pipe(tiny_checkpoints["released"], "fast")
    other = photo[::-1].copy()
    batch = pipe([photo, other], seed=5)
    # On CPUs with native bfloat16 (AVX-512 BF16 / AMX) fast mode computes in bfloat16,
    # where a batch and a single call round differently (8-bit mantissa); elsewhere it
    # computes in float32.
    tol = 1e-4 if pipe.sharpener.dtype == torch.float32 else 2e-2
    for i, img in enumerate((photo, other)):
        single = pipe(img, seed=5)
        np.testing.assert_allclose(batch.depth[i], single.depth[0], rtol=tol, atol=tol)


def test_unknown_mode_is_a_clear_error(tiny_checkpoints: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        _pipe(tiny_checkpoints["released"], "turbo")


def test_narrow_weight_storage_keeps_float32_arithmetic(
    tiny_checkpoints: dict[str, Path],
) -> None:
    root = tiny_checkpoints["sharpdepth"]
    ref = DiffusionDepthModel.from_pretrained(root)
    model = DiffusionDepthModel.from_pretrained(root, torch_dtype=torch.bfloat16)
    prepare(model, torch.float32, torch.bfloat16)
    assert model.dtype == torch.float32
    convs = [m for m in model.unet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.dtype == torch.bfloat16 for c in convs)
    gen = torch.Generator().manual_seed(0)  # not the global one: other tests move it
    x = torch.rand(1, 3, 32, 32, generator=gen)
    d = torch.rand(1, 1, 32, 32, generator=gen) * 2 - 1
    with torch.no_grad():
        a = ref.decode_depth(ref.predict_x0(*ref.encode_image_and_depth(x, d)))
        b = model.decode_depth(model.predict_x0(*model.encode_image_and_depth(x, d)))
    assert b.dtype == torch.float32
    assert all(c.weight.dtype == torch.bfloat16 for c in convs)  # narrowed back after use
    assert (a - b).abs().max() < 0.05 * a.abs().max()


def test_stage_timer_records_the_cost_structure(
    tiny_checkpoints: dict[str, Path], photo: np.ndarray
) -> None:
    exact = _pipe(tiny_checkpoints["released"], "exact")
    released = _pipe(tiny_checkpoints["released"], "released")
    with StageTimer() as t_exact:
        exact(photo, seed=0)
    with StageTimer() as t_released:
        released(photo, seed=0)
    names_exact = [n for n, _ in t_exact.records]
    names_released = [n for n, _ in t_released.records]
    assert names_exact.count("unet") == 2 and names_exact.count("decode") == 2
    # on the CPU the two encodes are separate calls (as fast as one batch, less memory)
    assert names_exact.count("encode") == 2 and "text encoder" not in names_exact
    assert names_released.count("encode") == 2 and names_released.count("text encoder") == 1
    assert "metric model" in names_exact and "align" in names_exact
    numbered = dict(t_exact.numbered())
    assert {"unet 1", "unet 2", "decode 1", "decode 2", "encode 1", "encode 2"} <= set(numbered)
    assert all(s >= 0 for _, s in t_exact.records)


def test_stages_cost_nothing_without_a_timer_and_do_not_nest() -> None:
    with stage("outside"):
        pass
    with StageTimer() as timer, stage("outer"), stage("inner"):
        pass
    assert [n for n, _ in timer.records] == ["outer"]
    assert peak_rss_bytes() > 10 * 2**20


def test_speed_command_measures_every_mode_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from sharpdepth.cli.main import main

    out = tmp_path / "speed.json"
    code = main(
        [
            "speed",
            "--size",
            "tiny",
            "--processing-res",
            "64",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(out),
            "--keep-outputs",
            str(tmp_path / "outputs"),
            "--modes",
            "released,exact,fast,fast+tiny,exact+direct,fast+float",
        ]
    )
    assert code == 0
    assert (tmp_path / "outputs" / "fast" / "fast_0_depth.npy").is_file()
    table = capsys.readouterr().out
    for row in ("unet 1", "decode 2", "text encoder", "speed-up vs released", "peak memory"):
        assert row in table
    report = json.loads(out.read_text())
    modes = ["released", "exact", "fast", "fast+tiny", "exact+direct", "fast+float"]
    assert [r["mode"] for r in report["results"]] == modes
    diffs = report["differences_vs_exact"]
    assert diffs["exact"]["max_abs_m"] == 0.0
    assert diffs["released"]["mean_rel"] < 1e-4  # same result, other cost structure
    assert 0.0 < diffs["fast"]["mean_rel"] < FAST_TOLERANCE_COMMAND
    assert diffs["fast+tiny"]["max_abs_m"] > 0.0  # another (random) decoder
    # no layer is wide enough for Winograd; exact's up-sampling in sub-pixel form rounds
    # differently from +direct's plain up-sampling. Measured 1e-8 on an idle 2-core CPU,
    # 7e-7 to 1e-5 when another process shares the cores (threaded reductions split
    # differently): rounding either way, far below any real difference (fast: 1e-2)
    assert diffs["exact+direct"]["mean_rel"] < 1e-4
    # the tiny models are narrower than int8.MIN_FEATURES: fast has no int8 layers either
    assert diffs["fast+float"] == diffs["fast"]
    assert all(r["peak_rss_bytes"] > 0 and r["images_per_second"] > 0 for r in report["results"])


def test_speed_rejects_unknown_modes(tmp_path: Path) -> None:
    from sharpdepth.accel.speed import SpeedSettings, measure_speed

    with pytest.raises(ValueError, match="unknown mode"):
        measure_speed(SpeedSettings(size="tiny", cache=tmp_path), tmp_path / "work", ["turbo"])


def test_speed_rounds_pool_every_run(tmp_path: Path) -> None:
    from sharpdepth.accel.speed import SpeedSettings, format_report, measure_speed

    settings = SpeedSettings(
        size="tiny", resolution=64, runs=1, warmup=0, rounds=2, cache=tmp_path / "cache"
    )
    results = measure_speed(settings, tmp_path / "work", ["released", "exact"])
    assert [r.mode for r in results] == ["released", "exact"]
    for r in results:
        assert len(r.run_seconds) == len(r.run_stages) == 2
        assert r.seconds == pytest.approx(sum(r.run_seconds) / 2)  # median of two
        assert set(r.stages) == set(r.run_stages[0])
    assert "1 runs after 0 warm-up in each of 2 rounds" in format_report(settings, results)
    with pytest.raises(ValueError, match="rounds"):
        measure_speed(
            SpeedSettings(size="tiny", rounds=0, cache=tmp_path), tmp_path / "w", ["exact"]
        )


def test_pooled_rounds_take_medians_over_runs_and_the_largest_peak() -> None:
    from sharpdepth.accel.speed import ModeResult, pool_rounds

    def result(walls: list[float], peak: int, load: float) -> ModeResult:
        stages = [{"unet 1": w / 2, "decode 1": w / 4} for w in walls]
        return ModeResult(
            mode="fast",
            stages={},
            seconds=sorted(walls)[len(walls) // 2],
            images_per_second=2.0 / sorted(walls)[len(walls) // 2],
            peak_rss_bytes=peak,
            load_seconds=load,
            depth_file=f"{load}.npy",
            run_seconds=walls,
            run_stages=stages,
        )

    pooled = pool_rounds(
        [result([4.0, 9.0], 100, 1.0), result([5.0], 300, 3.0), result([1.0], 200, 2.0)]
    )
    assert pooled.seconds == 4.5  # median of 1, 4, 5, 9
    assert pooled.stages == {"unet 1": 2.25, "decode 1": 1.125}
    assert pooled.images_per_second == pytest.approx(2.0 / 4.5)  # batch 2
    assert (pooled.peak_rss_bytes, pooled.load_seconds, pooled.depth_file) == (300, 2.0, "2.0.npy")
    with pytest.raises(ValueError, match="per-run"):
        pool_rounds([ModeResult("fast", {}, 1.0, 1.0, 1, 1.0, "x.npy")])


def test_narrow_storage_keeps_the_channels_last_layout(tiny_checkpoints: dict[str, Path]) -> None:
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    prepare(model, torch.float32, torch.bfloat16, channels_last=True)
    conv = next(m for m in model.vae.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.dtype == torch.bfloat16
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_batched_and_separate_encodes_agree(tiny_checkpoints: dict[str, Path]) -> None:
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"])
    x = torch.rand(2, 3, 32, 48)
    d = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        a = model.encode_image_and_depth(x, d, batched=True)
        b = model.encode_image_and_depth(x, d, batched=False)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-5)


def test_streamed_cast_loading_equals_diffusers_loading(
    tiny_checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    from diffusers import UNet2DConditionModel

    from sharpdepth.models.checkpoints import _load_component, read_safetensors_as

    root = tiny_checkpoints["sharpdepth"]
    streamed = _load_component(UNet2DConditionModel, root, "unet", torch.bfloat16)
    reference = UNet2DConditionModel.from_pretrained(root, subfolder="unet").to(torch.bfloat16)
    ref_state = reference.state_dict()
    state = streamed.state_dict()
    assert state.keys() == ref_state.keys()
    for key, value in state.items():
        assert value.dtype == torch.bfloat16 and torch.equal(value, ref_state[key]), key
    # a truncated file is a clear error, not garbage weights
    bad = tmp_path / "bad.safetensors"
    data = (root / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception, match="truncated"):
        read_safetensors_as(bad, torch.bfloat16)


_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

#: With the lean heap: frees a 32 MB tensor, then 40 tensors of 8 MB held together;
#: prints whether the heap setting applied and the resident memory (MB) still held.
_HEAP_SCRIPT = """
import torch
from sharpdepth.accel.memory import use_lean_heap
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
applied = use_lean_heap()
base = rss()
x = torch.ones(8_000_000)
del x
ts = [torch.ones(2_000_000) for _ in range(40)]
del ts
print(applied, rss() - base)
"""


def _python_output(script: str, env: dict[str, str]) -> str:
    """What ``script`` prints, run in a fresh interpreter with environment ``env``."""
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return run.stdout


def _without_allocator_settings() -> dict[str, str]:
    """This process's environment without the user's glibc allocator settings."""
    return {
        k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_")
    }


def _lean_heap_retained_mb() -> tuple[bool, float]:
    """(applied, MB still resident) from :data:`_HEAP_SCRIPT` in a fresh interpreter."""
    out = _python_output(_HEAP_SCRIPT, _without_allocator_settings()).split()
    return out[0] == "True", float(out[1])


@pytest.mark.skipif(not _GLIBC, reason="glibc allocator only")
def test_lean_heap_returns_freed_buffers_to_the_os() -> None:
    applied, retained = _lean_heap_retained_mb()
    assert applied
    assert retained < 16  # of 352 MB allocated and freed


@pytest.mark.skipif(not _GLIBC, reason="glibc allocator only")
def test_lean_heap_leaves_a_users_allocator_settings_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=33554432")
    assert use_lean_heap() is False


#: With the lean heap: 40 tensors of 8 MB allocated and freed inside ``reusing_heap``;
#: prints the resident memory (MB) still held inside the block and after it.
_REUSE_SCRIPT = """
import torch
from sharpdepth.accel.memory import reusing_heap, use_lean_heap
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
assert use_lean_heap()
base = rss()
with reusing_heap():
    ts = [torch.ones(2_000_000) for _ in range(40)]
    del ts
    inside = rss() - base
print(inside, rss() - base)
"""


@pytest.mark.skipif(not _GLIBC, reason="glibc allocator only")
def test_reusing_heap_keeps_freed_memory_only_inside_the_block() -> None:
    out = _python_output(_REUSE_SCRIPT, _without_allocator_settings()).split()
    inside, after = float(out[0]), float(out[1])
    assert inside > 200  # of 320 MB freed: kept for reuse
    assert after < 16  # given back when the block ends


#: Prints how many kB of this process's memory are in transparent huge pages after
#: filling a fresh 64 MiB tensor.
_HUGE_PAGE_SCRIPT = """
import torch
t = torch.ones(64 << 20, dtype=torch.uint8)
with open("/proc/self/smaps") as f:
    print(sum(int(line.split()[1]) for line in f if line.startswith("AnonHugePages")))
"""


def _transparent_huge_pages_mode() -> str | None:
    """The kernel's THP setting (``always``, ``madvise`` or ``never``), None if unknown."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return None
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else None


@pytest.mark.skipif(
    _transparent_huge_pages_mode() != "madvise", reason="needs huge pages given on request"
)
@pytest.mark.parametrize("setting", ["1", "0"])
def test_huge_page_variable_is_what_torch_reads(setting: str) -> None:
    huge_kb = int(_python_output(_HUGE_PAGE_SCRIPT, {**os.environ, HUGE_PAGES_VARIABLE: setting}))
    if setting == "1":
        assert huge_kb >= 32 * 1024
    else:
        assert huge_kb < 8 * 1024


def test_use_huge_pages_respects_the_users_choice() -> None:
    env: dict[str, str] = {}
    assert use_huge_pages(env) is True and env == {HUGE_PAGES_VARIABLE: "1"}
    env = {HUGE_PAGES_VARIABLE: "0"}
    assert use_huge_pages(env) is False and env == {HUGE_PAGES_VARIABLE: "0"}


def test_speed_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HUGE_PAGES_VARIABLE, raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")
    released = worker_environment("released", "tuned")
    assert released[HUGE_PAGES_VARIABLE] == "0" and "GLIBC_TUNABLES" not in released
    fast = worker_environment("fast+tiny", "tuned")
    assert fast[HUGE_PAGES_VARIABLE] == "1" and fast["GLIBC_TUNABLES"] == TUNED_GLIBC
    assert "GLIBC_TUNABLES" not in worker_environment("exact", "system")
    monkeypatch.setenv(HUGE_PAGES_VARIABLE, "0")  # a user measuring without them
    assert worker_environment("fast", "system")[HUGE_PAGES_VARIABLE] == "0"
    with pytest.raises(ValueError, match="allocator"):
        worker_environment("fast", "jemalloc")


class _FakeLibc:
    """Records ``mallopt`` / ``malloc_trim`` calls instead of changing the allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("trim", pad, 0))
        return 1


def test_reusing_heap_restores_the_lean_thresholds_once_for_nested_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    libc = _FakeLibc()
    monkeypatch.setattr(memory, "_HEAP", memory._LeanHeap())
    with reusing_heap():  # lean heap not applied: nothing changes
        pass
    assert libc.calls == [] and not memory.lean_heap_active()
    memory._HEAP.applied = (libc, 4096)  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="inner"), reusing_heap(), reusing_heap():
        raise RuntimeError("inner")
    trim, mmap = memory._M_TRIM_THRESHOLD, memory._M_MMAP_THRESHOLD
    assert libc.calls == [
        ("mallopt", trim, memory._REUSE_TRIM_THRESHOLD),
        ("mallopt", mmap, memory._REUSE_MMAP_THRESHOLD),
        ("mallopt", mmap, 4096),
        ("mallopt", trim, memory._DEFAULT_TRIM_THRESHOLD),
        ("trim", 0, 0),
    ]
    assert memory._HEAP.depth == 0


@pytest.mark.parametrize(("tiny_vae", "passes_reusing"), [(True, 2), (False, 0)])
def test_unet_passes_reuse_the_heap_with_a_tiny_autoencoder(
    tiny_checkpoints: dict[str, Path],
    taesd_dir: Path,
    photo: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    tiny_vae: bool,
    passes_reusing: int,
) -> None:
    pipe = _pipe(tiny_checkpoints["sharpdepth"], "fast", tiny_vae=taesd_dir if tiny_vae else None)
    assert pipe.sharpener.reuse_heap_in_unet is tiny_vae
    libc = _FakeLibc()
    monkeypatch.setattr(memory, "_HEAP", memory._LeanHeap())
    memory._HEAP.applied = (libc, 4096)  # type: ignore[assignment]
    pipe(photo, seed=0)
    assert [c for c in libc.calls if c[0] == "trim"] == [("trim", 0, 0)] * passes_reusing


@pytest.mark.parametrize(
    ("mode", "large_model", "expected"),
    [("exact", True, 0), ("fast", True, 1), ("fastest", True, 1), ("fast", False, 0)],
)
def test_fast_modes_use_the_lean_heap_for_large_models_on_the_cpu(
    tiny_checkpoints: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    large_model: bool,
    expected: int,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(modes, "use_lean_heap", lambda: calls.append(1) or True)
    if large_model:  # the tiny UNet counts as large
        monkeypatch.setattr(modes, "LEAN_HEAP_MIN_UNET_BYTES", 1)
    _pipe(tiny_checkpoints["sharpdepth"], mode)
    assert len(calls) == expected


def test_narrow_storage_computes_exactly_with_the_rounded_weights(
    tiny_checkpoints: dict[str, Path],
) -> None:
    """The shared widening buffer gives every layer its own weights: the same result as
    the bfloat16-rounded weights held in float32."""
    root = tiny_checkpoints["sharpdepth"]
    rounded = DiffusionDepthModel.from_pretrained(root, torch_dtype=torch.bfloat16)
    prepare(rounded, torch.float32)
    narrow = DiffusionDepthModel.from_pretrained(root, torch_dtype=torch.bfloat16)
    prepare(narrow, torch.float32, torch.bfloat16)
    x = torch.rand(2, 3, 32, 48)
    d = torch.rand(2, 1, 32, 48) * 2 - 1
    with torch.no_grad():
        a = rounded.decode_depth(rounded.predict_x0(*rounded.encode_image_and_depth(x, d)))
        b = narrow.decode_depth(narrow.predict_x0(*narrow.encode_image_and_depth(x, d)))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.equal(a, torch.zeros_like(a))


@pytest.fixture(scope="module")
def taesd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight AutoencoderTiny saved in the layout of madebyollin/taesd."""
    from sharpdepth.testing import taesd_like

    folder = tmp_path_factory.mktemp("taesd")
    taesd_like(seed=5).save_pretrained(folder)
    return folder


def test_tiny_vae_encodes_and_decodes_in_the_scaled_latent_space(
    tiny_checkpoints: dict[str, Path], taesd_dir: Path
) -> None:
    from sharpdepth.models.checkpoints import is_tiny_vae, load_tiny_vae

    tiny = load_tiny_vae(taesd_dir)
    model = DiffusionDepthModel.from_pretrained(tiny_checkpoints["sharpdepth"], vae=tiny)
    assert is_tiny_vae(model.vae) and model.downsampling_factor == 8
    assert model.latent_scaling == 1.0 and model.latent_shift == 0.0
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        torch.testing.assert_close(z, tiny.encode(x).latents)
        depth = model.decode_depth(z)
        torch.testing.assert_close(depth, tiny.decode(z).sample.mean(dim=1, keepdim=True))
    assert z.shape == (1, 4, 4, 6) and depth.shape == (1, 1, 32, 48)
    with pytest.raises(ValueError, match="tiny autoencoder"):
        model.save_pretrained(taesd_dir.parent / "never-written")
    assert not (taesd_dir.parent / "never-written").exists()


def test_prepared_tiny_vae_overwrites_its_activations_with_the_same_result(
    tiny_checkpoints: dict[str, Path], taesd_dir: Path
) -> None:
    from sharpdepth.models.checkpoints import load_tiny_vae

    model = DiffusionDepthModel.from_pretrained(
        tiny_checkpoints["sharpdepth"], vae=load_tiny_vae(taesd_dir)
    )
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        z = model.encode(x)
        depth = model.decode_depth(z)
        prepare(model, in_place=True)
        relus = [m for m in model.vae.modules() if isinstance(m, torch.nn.ReLU)]
        assert relus and all(relu.inplace for relu in relus)
        blocks = {type(m).__name__ for m in model.vae.modules() if "TinyBlock" in type(m).__name__}
        assert blocks == {"InPlaceAutoencoderTinyBlock"}
        torch.testing.assert_close(model.encode(x), z, rtol=0, atol=0)
        torch.testing.assert_close(model.decode_depth(z), depth, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["exact", "fast", "fastest"])
def test_pipeline_runs_with_a_tiny_vae(
    tiny_checkpoints: dict[str, Path], taesd_dir: Path, photo: np.ndarray, mode: str
) -> None:
    pipe = _pipe(tiny_checkpoints["sharpdepth"], mode, tiny_vae=taesd_dir)
    with StageTimer() as timer:
        out = pipe(photo, seed=0)
    names = [n for n, _ in timer.records]
    assert names.count("encode") == 2 and names.count("decode") == 2
    assert out.depth.shape == (1, *photo.shape[:2]) and np.isfinite(out.depth).all()
    reference = _pipe(tiny_checkpoints["sharpdepth"], mode)(photo, seed=0)
    assert not np.allclose(out.sharpened_depth, reference.sharpened_depth)  # another decoder
    np.testing.assert_array_equal(out.metric_depth, reference.metric_depth)


def test_tiny_vae_is_checked_when_loaded(
    tiny_checkpoints: dict[str, Path], taesd_dir: Path, tmp_path: Path
) -> None:
    from sharpdepth.errors import CheckpointError
    from sharpdepth.models.checkpoints import load_tiny_vae

    with pytest.raises(CheckpointError, match="not an AutoencoderTiny"):
        load_tiny_vae(tiny_checkpoints["sharpdepth"])  # its vae/ is an AutoencoderKL
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_tiny_vae(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_tiny_vae(tmp_path / "missing")
    with pytest.raises(ValueError, match="released"):
        _pipe(tiny_checkpoints["released"], "released", tiny_vae=taesd_dir)


def test_speed_modes_with_variants_are_parsed() -> None:
    from sharpdepth.accel.speed import SpeedMode, parse_mode

    assert parse_mode("fast+tiny") == SpeedMode("fast", tiny=True)
    assert parse_mode("exact") == SpeedMode("exact")
    assert parse_mode("exact+direct") == SpeedMode("exact", direct=True)
    assert parse_mode("fastest+direct+tiny") == SpeedMode("fastest", tiny=True, direct=True)
    assert parse_mode("fast+float") == SpeedMode("fast", float=True)
    for bad in (
        "released+tiny",
        "released+direct",
        "released+float",
        "fast+small",
        "turbo",
        "fast+tiny+tiny",
    ):
        with pytest.raises(ValueError, match="unknown mode"):
            parse_mode(bad)


def test_bench_is_the_former_name_of_the_speed_command() -> None:
    from sharpdepth.cli import speed
    from sharpdepth.cli.main import build_parser

    args = build_parser().parse_args(["bench", "--size", "tiny", "--runs", "2"])
    assert args.run is speed.run and args.size == "tiny" and args.runs == 2
