"""Ground-truth-free training on tiny random-weight models (CPU)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from sharpdepth import method
from sharpdepth.pipeline import SharpDepthPipeline
from sharpdepth.testing import SmoothMetricModel, write_tiny_checkpoint
from sharpdepth.training.config import load_config
from sharpdepth.training.ema import ema_decay, released_ema_decay
from sharpdepth.training.trainer import Trainer


def test_sds_loss_matches_the_formula_and_its_gradient() -> None:
    z_hat = torch.tensor([[1.0, -2.0], [0.5, 3.0]], requires_grad=True)
    f = torch.tensor([[0.0, -1.0], [0.5, 1.0]])
    sigma2 = 0.25
    loss = method.sds_loss(z_hat, f, sigma2)
    g = sigma2 * (z_hat.detach() - f)  # [[0.25, -0.25], [0, 0.5]]
    assert float(loss.detach()) == pytest.approx(0.5 * float((g**2).mean()))
    loss.backward()
    torch.testing.assert_close(z_hat.grad, g / 4)
    nan = method.sds_loss(torch.zeros(2, 2), torch.full((2, 2), float("nan")), sigma2)
    assert float(nan) == 0.0  # nan_to_num


def test_reconstruction_loss_is_gate_weighted_l1_in_unit_range() -> None:
    d_hat = torch.tensor([[[[1.0, -1.0], [0.0, 0.5]]]])
    d_n = torch.tensor([[[[-1.0, -1.0], [0.0, 0.0]]]])
    gate = torch.tensor([[[[1.0, 0.5], [0.0, 0.5]]]])
    # |d_hat - d_n| / 2 = [1, 0, 0, 0.25]; weighted sum 1 + 0.125 = 1.125 over sum(e) = 2
    assert float(method.reconstruction_loss(d_hat, d_n, gate)) == pytest.approx(1.125 / (2 + 1e-8))


def test_ema_decay_warm_up() -> None:
    assert ema_decay(0.9999, 0) == pytest.approx(0.1)
    assert ema_decay(0.9999, 10**9) == 0.9999


def test_released_ema_schedule() -> None:
    """ema_pytorch's defaults as the released script uses them: an update every tenth
    call, plain copies up to call 100, then the power-2/3 warm-up, capped."""
    assert [released_ema_decay(0.9999, n) for n in (0, 10, 100)] == [0.0, 0.0, 0.0]
    assert all(released_ema_decay(0.9999, n) is None for n in (1, 9, 101, 105))
    assert released_ema_decay(0.9999, 110) == pytest.approx(1.0 - 11.0 ** (-2.0 / 3.0))
    assert released_ema_decay(0.9999, 10**9) == 0.9999


def test_released_config_sets_the_released_batch_choices() -> None:
    released = load_config("released")
    assert released.method.gate_normalization == "batch" and released.method.gate_coin == "batch"
    assert released.optim.ema_schedule == "released"
    default = load_config("default")
    assert (default.method.gate_normalization, default.method.gate_coin) == ("image", "image")
    assert default.optim.ema_schedule == "every_step"
    for bad in ("method.gate_coin=pixel", "method.gate_normalization=all", "optim.ema_schedule=x"):
        with pytest.raises(ValueError, match=bad.split("=")[0]):
            load_config("debug", [bad])


def test_configs_inherit_and_override(tmp_path: Path) -> None:
    debug = load_config("debug")
    assert debug.optim.max_steps == 8 and debug.method.lambda_rec == 0.4  # inherited
    paper = load_config("paper", ["optim.lr=2e-6"])
    assert paper.method.lambda_rec == 0.3 and paper.optim.lr == 2e-6
    with pytest.raises(ValueError, match="unknown config key"):
        load_config("debug", ["optim.learning_rate=1"])
    with pytest.raises(ValueError, match="gate_prior"):
        load_config("debug", ["model.gate_prior=other"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sharpdepth.synth.generate import generate_dataset

    root = tmp_path_factory.mktemp("train")
    prior = write_tiny_checkpoint(root / "prior", "lotus")
    data = generate_dataset(root / "data", 6, 32, 32, seed=0, progress=False, contact_sheet=False)
    return {"prior": prior, "data": data / "train", "root": root}


def _config(setup: dict[str, Path], out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_config(
        "debug",
        [
            f"model.prior={setup['prior']}",
            f"data.train={setup['data']}",
            f"run.output_dir={out}",
            "run.device=cpu",
            "data.height=32",
            "data.width=32",
            "optim.max_steps=4",
            "run.checkpoint_every=2",
            *extra,
        ],
    )


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_steps_train_only_the_student_and_save_a_loadable_sharpener(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    config = _config(
        setup, tmp_path / "run", f"data.val={setup['data'].parent}", "run.validate_every=4"
    )
    trainer = Trainer(config, metric_model=SmoothMetricModel())
    vae, prior_unet = _params(trainer.model.vae), _params(trainer.model.unet)
    student0 = _params(trainer.accelerator.unwrap_model(trainer.student))
    final = trainer.fit()
    for before, module in ((vae, trainer.model.vae), (prior_unet, trainer.model.unet)):
        for key, value in module.state_dict().items():
            assert torch.equal(before[key], value), key  # frozen: bit-identical
    moved = [
        not torch.equal(student0[k], v)
        for k, v in trainer.accelerator.unwrap_model(trainer.student).state_dict().items()
    ]
    assert any(moved)
    assert len(trainer.history) == 4
    for logs in trainer.history:
        assert math.isfinite(logs["loss"]) and 0.0 <= logs["gate_mean"] <= 1.0
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    assert any("val_sharpdepth_abs_rel" in r for r in records)  # validation with ground truth
    assert (tmp_path / "run" / "val" / "step-0000004.png").is_file()
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*"))) == 2  # keep_last
    pipe = SharpDepthPipeline.from_pretrained(final, metric_model=SmoothMetricModel(), device="cpu")
    out = pipe(np.random.default_rng(0).random((24, 40, 3)).astype(np.float32), seed=0)
    assert np.isfinite(out.depth).all()


def test_resume_reaches_the_same_weights(setup: dict[str, Path], tmp_path: Path) -> None:
    straight = Trainer(_config(setup, tmp_path / "a"), metric_model=SmoothMetricModel())
    straight.fit()
    first = Trainer(_config(setup, tmp_path / "b"), metric_model=SmoothMetricModel())
    first.fit(max_steps=2)  # writes step-0000002 and stops, as if interrupted
    resumed = Trainer(_config(setup, tmp_path / "b"), metric_model=SmoothMetricModel())
    assert resumed.load_checkpoint()
    assert resumed.step == 2
    resumed.fit()
    a = straight.accelerator.unwrap_model(straight.student).state_dict()
    b = resumed.accelerator.unwrap_model(resumed.student).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    for key, value in straight.ema.state_dict().items():
        torch.testing.assert_close(value, resumed.ema.state_dict()[key], rtol=0, atol=0)


def test_two_processes_on_cpu_run_and_agree(setup: dict[str, Path], tmp_path: Path) -> None:
    script = tmp_path / "two.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import torch
            from sharpdepth.testing import SmoothMetricModel
            from sharpdepth.training.config import load_config
            from sharpdepth.training.trainer import Trainer

            cfg = load_config("debug", [
                "model.prior={setup["prior"]}", "data.train={setup["data"]}",
                "run.output_dir={tmp_path / "ddp"}", "run.device=cpu", "data.height=32",
                "data.width=32", "optim.max_steps=2", "run.checkpoint_every=0",
            ])
            trainer = Trainer(cfg, metric_model=SmoothMetricModel())
            trainer.fit()
            student = trainer.accelerator.unwrap_model(trainer.student)
            flat = torch.cat([p.detach().flatten() for p in student.parameters()])
            rank = trainer.accelerator.process_index
            print("rank", rank, "of", trainer.accelerator.num_processes, flush=True)
            torch.save(flat, "{tmp_path}/rank%d.pt" % rank)
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # torchrun sets RANK/WORLD_SIZE; Accelerate then runs DDP on CPU with gloo
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd.append(str(script))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    produced = sorted(p.name for p in tmp_path.iterdir())
    assert (tmp_path / "rank1.pt").is_file(), (produced, done.stdout[-2000:], done.stderr[-2000:])
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    torch.testing.assert_close(rank0, rank1, rtol=0, atol=0)  # DDP keeps replicas identical
    assert (tmp_path / "ddp" / "final" / "unet").is_dir()


class CountingMetric(SmoothMetricModel):
    """The smooth stand-in metric model, counting its calls."""

    calls = 0

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        return super().forward(image, intrinsics)


def test_cached_frozen_outputs_give_the_same_training(
    setup: dict[str, Path], tmp_path: Path
) -> None:
    from sharpdepth.training.data import UnlabeledImages

    n_images = len(UnlabeledImages(setup["data"], 32, 32))
    steps = n_images + 2  # batch 1: the last steps revisit images
    plain_metric, cached_metric = CountingMetric(), CountingMetric()
    plain = Trainer(
        _config(setup, tmp_path / "plain", f"optim.max_steps={steps}"), metric_model=plain_metric
    )
    plain.fit()
    cached = Trainer(
        _config(setup, tmp_path / "cached", f"optim.max_steps={steps}", "data.cache=true"),
        metric_model=cached_metric,
    )
    cached.fit()
    assert len(list((tmp_path / "cached" / "cache").glob("*.pt"))) == n_images
    assert plain_metric.calls == steps and cached_metric.calls == n_images  # later epochs: cache
    a = plain.accelerator.unwrap_model(plain.student).state_dict()
    b = cached.accelerator.unwrap_model(cached.student).state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_released_batch_choices_train(setup: dict[str, Path], tmp_path: Path) -> None:
    """One coin per batch, the gate normalised over the batch, and the released EMA: its
    first update copies the student's weights from before the step."""
    config = _config(
        setup,
        tmp_path / "released",
        "optim.batch_size=2",
        "optim.max_steps=3",
        "method.gate_coin=batch",
        "method.gate_normalization=batch",
        "optim.ema_schedule=released",
    )
    trainer = Trainer(config, metric_model=SmoothMetricModel())
    student0 = _params(trainer.accelerator.unwrap_model(trainer.student))
    batches = trainer.batches()
    logs = trainer.optimizer_step(batches)
    assert logs["gated_fraction"] in (0.0, 1.0) and math.isfinite(logs["loss"])
    for key, value in trainer.ema.state_dict().items():
        assert torch.equal(value, student0[key]), key  # call 0: the copy before the step
    trainer.optimizer_step(batches)  # call 1 (the first step had learning rate 0): no update
    student2 = _params(trainer.accelerator.unwrap_model(trainer.student))
    assert any(not torch.equal(student2[k], v) for k, v in student0.items())
    for key, value in trainer.ema.state_dict().items():
        assert torch.equal(value, student0[key]), key
    assert trainer.ema_updates == 2
