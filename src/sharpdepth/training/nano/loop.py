"""A small resumable training loop shared by the nano recipes.

Every step's batch is a pure function of ``(seed, step)`` and the run's random
generator is saved in each checkpoint, so a run interrupted and resumed gives the
same weights as an uninterrupted one. Checkpoints are written atomically.

It stays apart from the sharpener's :class:`~sharpdepth.training.trainer.Trainer`
(``accelerate``, folder checkpoints, diffusers' cosine schedule): the nano runs resume
from their ``checkpoint.pt`` and follow :func:`lr_factor`'s warm-up / constant / decay
schedule bit for bit, which the Trainer's format cannot hold. Both use
:mod:`sharpdepth.training.ema`; ``docs/method.md`` ("The two training loops") says more.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sharpdepth.io import atomic_write
from sharpdepth.training.ema import ema_decay, update_ema

LOGGER = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.jsonl"

#: ``loss_fn(batch, generator) -> (loss, {name: value})``.
LossFn = Callable[[dict[str, Any], torch.Generator], tuple[torch.Tensor, dict[str, float]]]
#: ``make_batch(step) -> batch``; must depend only on the step (and the recipe's seed).
BatchFn = Callable[[int], dict[str, Any]]


@dataclass
class LoopConfig:
    """Optimisation settings of one recipe.

    Attributes:
        steps: optimiser steps.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        warmup: linear warm-up steps, then cosine decay to ``min_lr_ratio * lr``.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        decay_steps: ``None``: the cosine decay spans the whole run after the warm-up.
            Else the learning rate stays at ``lr`` and only the last ``decay_steps``
            steps decay (warm-up, stable, decay). A run still in its stable phase can
            then be lengthened by raising ``steps``: its past steps are exactly those
            of a run started with the longer schedule.
        grad_clip: gradient norm clip (0 = off).
        checkpoint_every: steps between checkpoints.
        log_every: steps between log lines.
        seed: seed of the run's generator (noise draws).
        validate_every: steps between calls of the run's validation (0 = never; it
            also runs at the last step).
        ema_decay: keep an exponential moving average of the weights with this
            maximum decay (with warm-up, :func:`sharpdepth.training.ema.ema_decay`); validation
            and the returned model use it. 0 = no average.
    """

    steps: int = 1000
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    min_lr_ratio: float = 0.05
    decay_steps: int | None = None
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    log_every: int = 25
    seed: int = 0
    validate_every: int = 500
    ema_decay: float = 0.0


def lr_factor(step: int, config: LoopConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, [constant,] cosine decay."""
    if step < config.warmup:
        return (step + 1) / max(1, config.warmup)
    start = config.warmup
    if config.decay_steps is not None:
        start = max(start, config.steps - config.decay_steps)
        if step < start:
            return 1.0
    span = max(1, config.steps - start)
    progress = min(1.0, (step - start) / span)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine


@dataclass
class LoopResult:
    """What :func:`train_loop` did: steps run in total, seconds spent (all sessions)."""

    steps: int
    seconds: float
    last_logs: dict[str, float]


@contextlib.contextmanager
def swapped_weights(model: nn.Module, other: nn.Module) -> Iterator[None]:
    """Temporarily give ``model`` the weights of ``other`` (same architecture)."""
    kept = copy.deepcopy(model.state_dict())
    model.load_state_dict(other.state_dict())
    try:
        yield
    finally:
        model.load_state_dict(kept)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def train_loop(
    model: nn.Module,
    loss_fn: LossFn,
    make_batch: BatchFn,
    config: LoopConfig,
    output_dir: str | Path,
    progress: bool = True,
    name: str = "train",
    validate: Callable[[], dict[str, float]] | None = None,
) -> LoopResult:
    """Optimise ``model`` with AdamW for ``config.steps`` steps, resuming if possible.

    Args:
        model: the trainable module (its parameters with ``requires_grad``); with
            ``config.ema_decay`` it holds the averaged weights on return.
        loss_fn: loss of one batch.
        make_batch: the batch of a step.
        config: :class:`LoopConfig`.
        output_dir: where ``checkpoint.pt`` and ``log.jsonl`` go; an existing
            checkpoint there is resumed from.
        progress: show a progress bar.
        name: label of the progress bar and log lines.
        validate: optional ``() -> {name: value}`` (held-out losses), run in eval mode
            every ``config.validate_every`` steps and at the end, written to the log.

    Returns:
        :class:`LoopResult` (total steps, cumulative seconds, the last logged values).
    """
    from tqdm.auto import tqdm

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    step, seconds = 0, 0.0
    ema = copy.deepcopy(model).requires_grad_(False).eval() if config.ema_decay > 0 else None
    ckpt_path = out / CHECKPOINT_FILE
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, seconds = int(state["step"]), float(state["seconds"])
        if ema is not None:
            ema.load_state_dict(state.get("ema", state["model"]))
        LOGGER.info("%s: resumed from %s at step %d", name, ckpt_path, step)

    def validated() -> dict[str, float]:
        """Validation of the averaged weights (if any), in eval mode."""
        assert validate is not None
        if ema is None:
            model.eval()
            values = validate()
        else:
            with swapped_weights(model, ema):
                model.eval()
                values = validate()
        model.train()
        return values

    def checkpoint() -> None:
        _save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "step": step,
                "seconds": seconds,
                **({"ema": ema.state_dict()} if ema is not None else {}),
                "config": asdict(config),
            },
        )

    model.train()
    logs: dict[str, float] = {}
    running: dict[str, float] = {}
    bar = tqdm(total=config.steps, initial=step, desc=name, disable=not progress)
    with (out / LOG_FILE).open("a") as log_file:
        while step < config.steps:
            start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = config.lr * lr_factor(step, config)
            batch = make_batch(step)
            loss, values = loss_fn(batch, generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            if ema is not None:
                update_ema(ema, model, ema_decay(config.ema_decay, step))
            step += 1
            seconds += time.perf_counter() - start
            for key, value in {"loss": float(loss.detach()), **values}.items():
                running[key] = running.get(key, 0.0) + value
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                n = config.log_every if step % config.log_every == 0 else step % config.log_every
                logs = {k: v / n for k, v in running.items()}
                running = {}
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()})
                record = {"step": step, "seconds": round(seconds, 1), **logs}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                LOGGER.info("%s step %d: %s", name, step, record)
            every = config.validate_every
            if validate is not None and ((every and step % every == 0) or step == config.steps):
                record = {"step": step, **validated()}
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                LOGGER.info("%s step %d: %s", name, step, record)
            if step % config.checkpoint_every == 0 or step == config.steps:
                checkpoint()
    bar.close()
    if ema is not None:
        model.load_state_dict(ema.state_dict())
    model.eval()
    return LoopResult(steps=step, seconds=seconds, last_logs=logs)
