"""CPU speed work, kept apart from the method: the inference modes and their plan, the one
:func:`prepare` entry point, layer swaps, int8, memory handling, per-stage timing and the
speed harness (``sharpdepth speed``). ``docs/speed.md`` describes the modes, the levers
and what they measured.

The rest of the package uses only the names exported here:

* :class:`InferenceMode`, :data:`INFERENCE_MODES`, :func:`resolve_mode` and
  :func:`plan_inference` (:mod:`~sharpdepth.accel.modes`): what a mode changes;
* :func:`prepare` (:mod:`~sharpdepth.accel.preparation`): apply speed settings to a loaded
  :class:`~sharpdepth.models.diffusion.DiffusionDepthModel`;
* :class:`ReleasedPrompt` (:mod:`~sharpdepth.accel.released`): the release's per-call text
  encoding, for the speed reference;
* :func:`stage` (:mod:`~sharpdepth.accel.profiling`), :func:`reusing_heap`
  (:mod:`~sharpdepth.accel.memory`) and :func:`has_int8_layers`
  (:mod:`~sharpdepth.accel.int8`): hooks the model's steps call.

Importing this package imports nothing heavy (the command line reads
:mod:`~sharpdepth.accel.memory` before torch); each name loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "INFERENCE_MODES",
    "InferenceMode",
    "ReleasedPrompt",
    "has_int8_layers",
    "plan_inference",
    "prepare",
    "resolve_mode",
    "reusing_heap",
    "stage",
]

_LAZY = {
    "INFERENCE_MODES": "sharpdepth.accel.modes",
    "InferenceMode": "sharpdepth.accel.modes",
    "plan_inference": "sharpdepth.accel.modes",
    "resolve_mode": "sharpdepth.accel.modes",
    "prepare": "sharpdepth.accel.preparation",
    "ReleasedPrompt": "sharpdepth.accel.released",
    "stage": "sharpdepth.accel.profiling",
    "reusing_heap": "sharpdepth.accel.memory",
    "has_int8_layers": "sharpdepth.accel.int8",
}

if TYPE_CHECKING:
    from sharpdepth.accel.int8 import has_int8_layers
    from sharpdepth.accel.memory import reusing_heap
    from sharpdepth.accel.modes import INFERENCE_MODES, InferenceMode, plan_inference, resolve_mode
    from sharpdepth.accel.preparation import prepare
    from sharpdepth.accel.profiling import stage
    from sharpdepth.accel.released import ReleasedPrompt


def __getattr__(name: str) -> Any:
    """Import the exported names lazily."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sharpdepth.accel' has no attribute {name!r}")
