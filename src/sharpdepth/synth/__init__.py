"""A synthetic RGB-D scene engine with exact metric depth and crisp depth edges.

Scenes of analytic primitives in several styles (indoor rooms, streets, table-top
close-ups, and a held-out forest style for zero-shot tests) are ray-cast in closed
form: every depth pixel is the exact z-depth of the ray through its centre. RGB is
textured, lit by a key light with cast shadows and passed through camera effects.

Entry points: :func:`render_sample` (one sample in memory),
:func:`~sharpdepth.synth.generate.generate_dataset` (a dataset on disk, also
``sharpdepth synth``), :class:`~sharpdepth.synth.dataset.SynthFolderDataset` and
:class:`~sharpdepth.synth.dataset.SynthStreamDataset` (torch datasets), and
:mod:`sharpdepth.synth.sparse` (sensor-like sparse depth).
"""

from __future__ import annotations

from sharpdepth.synth.render import render_sample
from sharpdepth.synth.sample import SynthSample

__all__ = ["SynthSample", "render_sample"]
