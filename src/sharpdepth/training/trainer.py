"""The trainer: ``docs/method.md`` training, steps 1-8, on the pipeline's own encode / gate /
decode.

One optimiser step = ``grad_accumulation`` micro-steps of :meth:`Trainer.compute_losses`
(no ground-truth depth anywhere): metric depth and latents from the frozen networks, the
prior pass (EMA student, or the frozen prior) and its gate, the student's pass on the
gated latent (probability 0.8) or pure noise, the SDS loss from the frozen prior and the
noise-aware reconstruction loss through the frozen decoder.

Every random draw (noise, the gate coin, the SDS timestep when sampled) comes from one
generator per process seeded from ``run.seed`` and the process index; the data order
comes from :class:`~sharpdepth.training.data.ResumableSampler`. Resumable checkpoints
hold the student, the EMA copy, optimiser, schedule, generator states and the step.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from sharpdepth import method
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.models.metric import MetricDepthModel, check_metric_depth, load_metric_model
from sharpdepth.training.config import TrainConfig
from sharpdepth.training.data import ResumableSampler, UnlabeledImages
from sharpdepth.training.ema import ema_decay, released_ema_decay, update_ema

LOGGER = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step-"


@dataclass
class Losses:
    """Losses and gate statistics of one micro-batch (``total`` carries the gradient)."""

    total: torch.Tensor
    sds: float
    rec: float
    gate_mean: float
    gate_confident: float
    gated_fraction: float


class Trainer:
    """Train a sharpener from a diffusion prior and a metric model, without ground truth.

    Args:
        config: the run's :class:`~sharpdepth.training.config.TrainConfig`.
        prior: the prior as a :class:`DiffusionDepthModel` (default: loaded from
            ``config.model.prior``); its UNet stays frozen as f_G, the student is a copy.
        metric_model: f_D (default: loaded from ``config.model.metric_model``).
        accelerator: an ``accelerate.Accelerator`` (default: one built from the config).
    """

    def __init__(
        self,
        config: TrainConfig,
        prior: DiffusionDepthModel | None = None,
        metric_model: Any = None,
        accelerator: Any = None,
    ) -> None:
        from accelerate import Accelerator
        from diffusers.optimization import get_cosine_schedule_with_warmup

        self.config = config
        run, optim = config.run, config.optim
        self.accelerator = accelerator or Accelerator(
            mixed_precision=run.mixed_precision,
            cpu=run.device == "cpu",
            project_dir=run.output_dir,
            gradient_accumulation_steps=optim.grad_accumulation,
        )
        acc = self.accelerator
        acc.gradient_accumulation_steps = optim.grad_accumulation
        device = acc.device
        if prior is None:
            prior = DiffusionDepthModel.from_pretrained(
                config.model.prior, prediction_type=config.model.prediction_type
            )
        self.model = prior.to(device)
        self.model.requires_grad_(False)
        self.model.eval()
        spec = metric_model if metric_model is not None else config.model.metric_model
        if not spec:
            raise ValueError("model.metric_model is required")
        self.metric_model: MetricDepthModel = load_metric_model(spec, device=device)
        self.student = copy.deepcopy(self.model.unet).requires_grad_(True).train()
        if run.gradient_checkpointing and hasattr(self.student, "enable_gradient_checkpointing"):
            self.student.enable_gradient_checkpointing()
        self.ema = copy.deepcopy(self.model.unet).requires_grad_(False).eval()
        self.ema_updates = 0
        scale = optim.batch_size * optim.grad_accumulation * acc.num_processes
        lr = optim.lr * scale if optim.scale_lr else optim.lr
        optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=lr, weight_decay=optim.weight_decay
        )
        # accelerate steps a prepared schedule once per process per optimiser step
        schedule = get_cosine_schedule_with_warmup(
            optimizer, optim.warmup_steps * acc.num_processes, optim.max_steps * acc.num_processes
        )
        self.student, self.optimizer, self.schedule = acc.prepare(self.student, optimizer, schedule)
        self.generator = torch.Generator().manual_seed(run.seed * 1000 + acc.process_index)
        self.step = 0  # optimiser steps done
        self.samples_seen = 0  # samples drawn by this process
        self.output_dir = Path(run.output_dir)
        self.history: list[dict[str, float]] = []
        self._cache_checked: Path | None = None

    # ------------------------------------------------------------------ one step
    def _randn(self, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise shaped like ``like`` from the run's generator."""
        noise = torch.randn(like.shape, generator=self.generator, dtype=torch.float32)
        return noise.to(device=like.device, dtype=like.dtype)

    def compute_losses(
        self,
        images: torch.Tensor,
        intrinsics: torch.Tensor | None = None,
        indices: list[int] | None = None,
    ) -> Losses:
        """Losses of one micro-batch (``docs/method.md``, training steps 1-7).

        Args:
            images: ``[B, 3, H, W]`` in ``[0, 1]``, H and W multiples of the VAE factor.
            intrinsics: optional ``[B, 3, 3]`` for metric models that use them.
            indices: dataset indices of the images (keys of the cache, when enabled).
        """
        model, cfg = self.model, self.config.method
        images = images.to(self.accelerator.device)
        with torch.no_grad():
            # 1. metric depth, normalisation, latents (frozen f_D and E; maybe cached)
            b = images.shape[0]
            d, z_i, z_d = self._frozen_inputs(images, intrinsics, indices)
            d_n = method.normalize_depth(d)
            # 2. prior pass and gate (the pipeline's steps 5-7): EMA student (released)
            # or frozen f_G
            gate_unet = self.ema if self.config.model.gate_prior == "ema" else model.unet
            variant = cast(method.GateVariant, cfg.gate_variant)
            eps, eps_gate = self._randn(z_i), self._randn(z_d)
            per = cfg.gate_normalization  # "image", or "batch" as the released script
            gated_pass = model.prior_and_gate(
                z_i, z_d, d_n, eps, eps_gate, variant, unet=gate_unet, gate_normalization=per
            )
            e, gated = gated_pass.gate, gated_pass.gated_latent
            # 3. gated input with probability p, else pure noise (a coin per image, or one
            # for the batch as the released script draws it)
            noise = self._randn(z_d)
            coins = b if cfg.gate_coin == "image" else 1
            coin = (torch.rand(coins, generator=self.generator) < cfg.gate_probability).expand(b)
            use_gate = coin.to(z_d.device).view(-1, 1, 1, 1)
            student_in = torch.where(use_gate, gated, noise)
        # 4. student pass with gradient
        with self.accelerator.autocast():
            z_hat = model.predict_x0(z_i, student_in, unet=self.student)
        # 5. SDS from the frozen prior at t (fixed T - 1 or sampled)
        t = model.timestep
        if cfg.sds_timestep == "sampled":
            t = int(
                torch.randint(20, model.num_train_timesteps - 20, (1,), generator=self.generator)
            )
        alpha_bar = model.alpha_bar_at(t)
        with torch.no_grad():
            x_t = method.forward_diffuse(
                z_hat.detach().float(), self._randn(z_hat).float(), alpha_bar
            )
            f = model.predict_x0(z_i, x_t, timestep=t)
        sds = method.sds_loss(z_hat, f, 1.0 - alpha_bar)
        # 6. reconstruction through the frozen decoder
        d_hat = model.decode_depth(z_hat)
        rec = method.reconstruction_loss(d_hat, d_n, e)
        # 7. total
        total = sds + cfg.lambda_rec * rec
        return Losses(
            total=total,
            sds=float(sds.detach()),
            rec=float(rec.detach()),
            gate_mean=float(e.mean()),
            gate_confident=float((e < 0.5).float().mean()),
            gated_fraction=float(coin.float().mean()),
        )

    def _frozen_inputs(
        self, images: torch.Tensor, intrinsics: torch.Tensor | None, indices: list[int] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Metric depth ``d`` and latents ``z_i``, ``z_d`` of a batch, from the cache if possible.

        Returns ``[B, 1, H, W]`` metres and two ``[B, C, h, w]`` latents.
        """
        folder = self._cache_folder() if indices is not None else None
        if folder is not None and indices is not None:
            files = [folder / f"{i:08d}.pt" for i in indices]
            if all(f.is_file() for f in files):
                items = [torch.load(f, map_location="cpu", weights_only=True) for f in files]
                dev = images.device
                d, z_i, z_d = (
                    torch.stack([it[k] for it in items]).to(dev) for k in ("d", "z_i", "z_d")
                )
                return d, z_i, z_d
        d = self.metric_model(images, intrinsics).depth.to(images.device)
        check_metric_depth(d, allow_constant=True)
        z_i, z_d = self.model.encode_image_and_depth(images, method.normalize_depth(d))
        if folder is not None and indices is not None:
            for j, index in enumerate(indices):
                tmp = folder / f".{index:08d}.{os.getpid()}.tmp"
                torch.save({"d": d[j].cpu(), "z_i": z_i[j].cpu(), "z_d": z_d[j].cpu()}, tmp)
                os.replace(tmp, folder / f"{index:08d}.pt")
        return d, z_i, z_d

    def _cache_folder(self) -> Path | None:
        """The cache folder (created and checked against the run's settings), or ``None``."""
        data = self.config.data
        if not data.cache:
            return None
        if self._cache_checked is not None:
            return self._cache_checked
        folder = Path(data.cache_dir) if data.cache_dir else self.output_dir / "cache"
        key = {
            "prior": self.config.model.prior,
            "metric_model": str(self.config.model.metric_model or self.metric_model.name),
            "train": data.train,
            "height": data.height,
            "width": data.width,
        }
        stamp = folder / "cache.json"
        if not stamp.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps(key, indent=2))
        elif json.loads(stamp.read_text()) != key:
            raise ValueError(
                f"cache {folder} holds other settings; delete it or set data.cache_dir"
            )
        return folder

    def _update_ema(self) -> None:
        """EMA of the student's weights (decay with warm-up; see ``optim.ema_schedule``)."""
        optim = self.config.optim
        if optim.ema_schedule == "released":
            decay = released_ema_decay(optim.ema_decay, self.ema_updates)
        else:
            decay = ema_decay(optim.ema_decay, self.ema_updates)
        if decay is not None:
            update_ema(self.ema, self.accelerator.unwrap_model(self.student), decay)
        self.ema_updates += 1

    def optimizer_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, float]:
        """One optimiser step over ``grad_accumulation`` micro-batches; returns averaged logs."""
        optim = self.config.optim
        released_ema = optim.ema_schedule == "released"
        logs: dict[str, float] = {
            "loss": 0.0,
            "sds": 0.0,
            "rec": 0.0,
            "gate_mean": 0.0,
            "gate_confident": 0.0,
            "gated_fraction": 0.0,
        }
        for _ in range(optim.grad_accumulation):
            batch = next(batches)
            with self.accelerator.accumulate(self.student):
                k = batch["K"] if bool(batch["has_K"].all()) else None
                losses = self.compute_losses(batch["image"], k, [int(i) for i in batch["index"]])
                self.accelerator.backward(losses.total)
                if self.accelerator.sync_gradients:
                    if released_ema:  # the released script averages before the step
                        self._update_ema()
                    self.accelerator.clip_grad_norm_(self.student.parameters(), optim.grad_clip)
                self.optimizer.step()
                self.schedule.step()
                self.optimizer.zero_grad(set_to_none=True)
            self.samples_seen += int(batch["image"].shape[0])
            logs["loss"] += float(losses.total.detach()) / optim.grad_accumulation
            for key in ("sds", "rec", "gate_mean", "gate_confident", "gated_fraction"):
                logs[key] += getattr(losses, key) / optim.grad_accumulation
        if not released_ema:
            self._update_ema()
        self.step += 1
        logs["lr"] = float(self.schedule.get_last_lr()[0])
        logs["step"] = float(self.step)
        return logs

    # ------------------------------------------------------------------ data
    def batches(self) -> Iterator[dict[str, Any]]:
        """Endless micro-batches from ``data.train``, resuming at :attr:`samples_seen`."""
        cfg, acc = self.config, self.accelerator
        dataset = UnlabeledImages(cfg.data.train, cfg.data.height, cfg.data.width)
        sampler = ResumableSampler(
            len(dataset), cfg.run.seed, acc.process_index, acc.num_processes, self.samples_seen
        )
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=cfg.optim.batch_size,
            sampler=sampler,
            num_workers=cfg.data.num_workers,
        )
        yield from loader

    # ------------------------------------------------------------------ loop
    def fit(self, max_steps: int | None = None, progress: bool = True) -> Path:
        """Train to ``optim.max_steps`` (or ``max_steps`` more); returns the output folder.

        ``progress=False`` hides the progress bar (log lines are written either way).
        """
        from tqdm.auto import tqdm

        run = self.config.run
        target = (
            self.config.optim.max_steps
            if max_steps is None
            else min(self.config.optim.max_steps, self.step + max_steps)
        )
        writer = self._log_writer()
        batches = self.batches()
        bar = tqdm(
            total=target,
            initial=self.step,
            desc="train",
            disable=not (progress and self.accelerator.is_main_process),
        )
        while self.step < target:
            logs = self.optimizer_step(batches)
            self.history.append(logs)
            bar.update(1)
            bar.set_postfix(
                loss=f"{logs['loss']:.4f}", sds=f"{logs['sds']:.4f}", rec=f"{logs['rec']:.4f}"
            )
            if self.step % run.log_every == 0 or self.step == target:
                self._log(writer, logs)
            if run.checkpoint_every and self.step % run.checkpoint_every == 0:
                self.save_checkpoint()
            if run.validate_every and self.step % run.validate_every == 0:
                self._log(writer, self.validate(writer))
        bar.close()
        final = (
            self.save_final()
            if self.step >= self.config.optim.max_steps
            else self.save_checkpoint()
        )
        if writer is not None:
            writer.close()
        return final

    def _log_writer(self) -> Any:
        """A TensorBoard writer on the main process when tensorboard is installed."""
        if not self.accelerator.is_main_process:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            LOGGER.info("tensorboard not installed: logging to %s/log.jsonl only", self.output_dir)
            return None
        return SummaryWriter(str(self.output_dir / "tensorboard"))

    def _log(self, writer: Any, logs: dict[str, float]) -> None:
        """One log record: the logger, ``log.jsonl`` and TensorBoard."""
        if not self.accelerator.is_main_process or not logs:
            return
        if "loss" not in logs:  # validation record
            LOGGER.info(
                "step %d validation %s", self.step, {k: round(v, 4) for k, v in logs.items()}
            )
            self._append_log(writer, logs)
            return
        LOGGER.info(
            "step %d loss %.5f sds %.5f rec %.5f lr %.2e gate mean %.3f confident %.3f",
            self.step,
            logs["loss"],
            logs["sds"],
            logs["rec"],
            logs["lr"],
            logs["gate_mean"],
            logs["gate_confident"],
        )
        self._append_log(writer, logs)

    def _append_log(self, writer: Any, logs: dict[str, float]) -> None:
        """Append a record to ``log.jsonl`` and TensorBoard scalars."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "log.jsonl", "a") as handle:
            handle.write(json.dumps({"step": self.step, **logs}) + "\n")
        if writer is not None:
            for key, value in logs.items():
                if key != "step":
                    group = (
                        "val"
                        if key.startswith("val_")
                        else "gate"
                        if key.startswith("gate")
                        else "train"
                    )
                    writer.add_scalar(f"{group}/{key}", value, self.step)

    # ------------------------------------------------------------------ validation
    def validate(self, writer: Any = None, max_images: int = 4) -> dict[str, float]:
        """Run the EMA sharpener on ``data.val``: pictures, and metrics when it has ground truth.

        A synthetic dataset folder (with ``index.json``) is scored with AbsRel, delta1 and
        the boundary metrics for the sharpener and the metric model alone; any other
        folder only gives pictures. Pictures (input | metric depth | gate | sharpened, one
        row per image) go to ``OUTPUT/val/step-N.png`` and TensorBoard.
        """
        from sharpdepth import vis
        from sharpdepth.io import load_image, save_rgb_png
        from sharpdepth.pipeline import SharpDepthPipeline
        from sharpdepth.training.data import list_images

        val = self.config.data.val
        if not val or not self.accelerator.is_main_process:
            return {}
        model = self.model
        sharpener = DiffusionDepthModel(
            self.ema, model.vae, model.scheduler, model.prompt_embeds, model.prediction_type
        )
        pipe = SharpDepthPipeline(sharpener, self.metric_model, processing_resolution=0)
        logs: dict[str, float] = {}
        root = Path(val)
        if (root / "index.json").is_file():
            from sharpdepth.evaluation.benchmarks import load_benchmark
            from sharpdepth.evaluation.evaluator import evaluate, resolve_methods

            benchmark = None
            for split in ("val", "test"):
                try:
                    benchmark = load_benchmark("synth", root=root, split=split, limit=16)
                    break
                except (ValueError, FileNotFoundError):
                    continue
            if benchmark is not None:
                result = evaluate(
                    pipe, benchmark, resolve_methods("sharpdepth,metric"), n_worst=0, progress=False
                )
                for name, row in result.summary.items():
                    for key in ("abs_rel", "delta1", "pdbe_acc", "pdbe_comp"):
                        if key in row:
                            logs[f"val_{name}_{key}"] = float(row[key])
                paths = [Path(s.meta.get("rgb_path", "")) for s in list(benchmark)[:max_images]]
            else:
                paths = []
            paths = [p for p in paths if p.is_file()] or list_images(root)[:max_images]
        else:
            paths = list_images(root)[:max_images]
        rows = []
        for path in paths[:max_images]:
            rgb = load_image(path).rgb
            out = pipe(rgb, seed=0)
            lo, hi = vis.depth_range(out.metric_depth[0])
            rows.append(
                np.concatenate(
                    [
                        (np.clip(rgb, 0, 1) * 255).astype(np.uint8),
                        vis.colorize_depth(out.metric_depth[0], vmin=lo, vmax=hi),
                        vis.colorize_scalar(out.gate[0], cmap="gray"),
                        vis.colorize_depth(out.depth[0], vmin=lo, vmax=hi),
                    ],
                    axis=1,
                )
            )
        if rows:
            width = max(r.shape[1] for r in rows)
            rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
            sheet = np.concatenate(rows, axis=0)
            save_rgb_png(self.output_dir / "val" / f"step-{self.step:07d}.png", sheet)
            if writer is not None:
                writer.add_image("val/input_metric_gate_sharp", sheet, self.step, dataformats="HWC")
        self.student.train()
        return logs

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dir(self) -> Path:
        """Folder of the resumable checkpoints."""
        return self.output_dir / "checkpoints"

    def save_checkpoint(self) -> Path:
        """Write a resumable checkpoint atomically and keep the last ``run.keep_last``."""
        acc = self.accelerator
        folder = self.checkpoint_dir()
        final = folder / f"{CHECKPOINT_PREFIX}{self.step:07d}"
        tmp = folder / f".{final.name}.tmp"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            state = {
                "student": acc.unwrap_model(self.student).state_dict(),
                "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "step": self.step,
                "ema_updates": self.ema_updates,
                "samples_seen": self.samples_seen,
                "config": self.config.to_dict(),
            }
            torch.save(state, tmp / "state.pt")
        acc.wait_for_everyone()
        torch.save({"generator": self.generator.get_state()}, tmp / f"rng-{acc.process_index}.pt")
        acc.wait_for_everyone()
        if acc.is_main_process:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            kept = sorted(folder.glob(f"{CHECKPOINT_PREFIX}*"))
            for old in kept[: max(0, len(kept) - self.config.run.keep_last)]:
                shutil.rmtree(old, ignore_errors=True)
            LOGGER.info("checkpoint %s", final)
        acc.wait_for_everyone()
        return final

    def latest_checkpoint(self) -> Path | None:
        """The newest complete resumable checkpoint, or ``None``."""
        found = sorted(
            p
            for p in self.checkpoint_dir().glob(f"{CHECKPOINT_PREFIX}*")
            if (p / "state.pt").is_file()
        )
        return found[-1] if found else None

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Resume from ``path`` (default: the latest checkpoint); returns whether one was found."""
        folder = Path(path) if path is not None else self.latest_checkpoint()
        if folder is None:
            return False
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=False)
        self.accelerator.unwrap_model(self.student).load_state_dict(state["student"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step = int(state["step"])
        self.ema_updates = int(state["ema_updates"])
        self.samples_seen = int(state["samples_seen"])
        rng = folder / f"rng-{self.accelerator.process_index}.pt"
        self.generator.set_state(torch.load(rng, weights_only=False)["generator"])
        LOGGER.info("resumed from %s at step %d", folder, self.step)
        return True

    def save_final(
        self,
        dtype: torch.dtype | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> Path:
        """Save the EMA sharpener as a folder :class:`~sharpdepth.SharpDepthPipeline` loads.

        Args:
            dtype: weight dtype of the saved UNet and autoencoder (default: as trained).
            extra_config: entries added to (or replacing) ``sharpdepth_config.json``'s
                metric model, gate variant and trained steps.
        """
        folder = self.output_dir / "final"
        if self.accelerator.is_main_process:
            model = self.model
            sharpener = DiffusionDepthModel(
                copy.deepcopy(self.ema),
                copy.deepcopy(model.vae) if dtype is not None else model.vae,
                model.scheduler,
                model.prompt_embeds.cpu(),
                model.prediction_type,
            )
            if dtype is not None:
                sharpener.to(dtype)
            metric = self.config.model.metric_model or None
            config = {
                "metric_model": metric if isinstance(metric, str) else None,
                "gate_variant": self.config.method.gate_variant,
                "trained_steps": self.step,
                **(extra_config or {}),
            }
            sharpener.save_pretrained(folder, extra_config=config)
            LOGGER.info("final sharpener written to %s", folder)
        self.accelerator.wait_for_everyone()
        return folder
