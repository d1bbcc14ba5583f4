"""The bundled "nano" model family: where its files live (package data).

Five small models, trained here on the synthetic engine, ship under
``sharpdepth/assets/nano``, each in the layout its large published counterpart uses, so
the same loading code serves both:

* ``metric/``: :class:`~sharpdepth.models.metric.nano_net.NanoMetricNet` (``config.json`` +
  ``model.safetensors``), the metric depth model f_D;
* ``vae/``: a diffusers ``AutoencoderKL``;
* ``prior/``: a Lotus-G-style single-step x0 UNet + the autoencoder (diffusers layout
  with a stored empty-prompt embedding), the diffusion prior f_G;
* ``sharpdepth/``: the sharpener trained from them without ground truth; the default
  checkpoint of ``sharpdepth predict``;
* ``tiny-vae/``: a TAESD-style ``AutoencoderTiny`` distilled from ``vae/``, for
  ``--tiny-vae nano`` (its TAESD counterpart for SD-2 checkpoints is
  ``madebyollin/taesd``).

This module only finds them, so that the loaders can depend on it;
:mod:`sharpdepth.training.nano.recipes` trains them (``sharpdepth nano train RECIPE``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: Bundled model folders, by recipe name.
NANO_MODELS = ("metric", "vae", "prior", "sharpdepth", "tiny-vae")

#: Name that selects the bundled family wherever a checkpoint is expected.
NANO_CHECKPOINT = "nano"


def bundled_dir(name: str) -> Path:
    """Package-data folder of the bundled nano model ``name`` (may not exist)."""
    if name not in NANO_MODELS:
        raise ValueError(f"unknown nano model {name!r}; choose from {', '.join(NANO_MODELS)}")
    return Path(str(resources.files("sharpdepth").joinpath("assets", "nano", name)))


def bundled_available(name: str) -> bool:
    """Whether the bundled model ``name`` is installed (its folder holds files)."""
    folder = bundled_dir(name)
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
