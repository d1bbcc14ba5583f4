"""Scene styles of the synthetic engine and their registry.

Each style turns a random generator into a :class:`~sharpdepth.synth.scene.Scene` with
its own layout logic and metric scale:

* ``indoor``: a closed room with furniture, wall fixtures and small props (0.5–10 m);
* ``street``: a street canyon with facades, poles, wires, trees and cars (1–80 m);
* ``tabletop``: close-ups of a table with small objects in front of a wall (0.3–3 m);
* ``forest`` (held out, for zero-shot tests): trees, bushes, rocks and logs (1–50 m).

Use :func:`build_scene` (or :data:`STYLES`) to make a scene::

    scene = build_scene("street", np.random.default_rng(0), 480, 640)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sharpdepth.synth.scene import Scene

from . import forest, indoor, street, tabletop

LOGGER = logging.getLogger(__name__)

#: ``build(rng, height, width, n_objects)`` signature of a style.
BuildFn = Callable[[np.random.Generator, int, int, int | None], Scene]


@dataclass(frozen=True)
class StyleSpec:
    """A registered scene style.

    Attributes:
        name: style name.
        build: ``(rng, height, width, n_objects) -> Scene``; ``n_objects`` (``None`` for
            a style-dependent random amount) roughly sets how many objects are placed.
        depth_range: typical ``(min, max)`` depth of its scenes, metres.
        held_out: True for styles kept out of training (zero-shot evaluation only).
        description: one-line summary.
    """

    name: str
    build: BuildFn
    depth_range: tuple[float, float]
    held_out: bool
    description: str


STYLES: dict[str, StyleSpec] = {
    spec.name: spec
    for spec in (
        StyleSpec(
            indoor.NAME,
            indoor.build,
            indoor.DEPTH_RANGE,
            False,
            "furnished room, closed by six planes",
        ),
        StyleSpec(
            street.NAME,
            street.build,
            street.DEPTH_RANGE,
            False,
            "street canyon with poles, wires, trees and cars; sky",
        ),
        StyleSpec(
            tabletop.NAME,
            tabletop.build,
            tabletop.DEPTH_RANGE,
            False,
            "close-up of small objects on a table before a wall",
        ),
        StyleSpec(
            forest.NAME,
            forest.build,
            forest.DEPTH_RANGE,
            True,
            "trees with thin branches, bushes, rocks, logs; sky",
        ),
    )
}
#: Styles used for training, validation and test splits.
TRAIN_STYLES: tuple[str, ...] = tuple(name for name, spec in STYLES.items() if not spec.held_out)
#: Styles only used for zero-shot evaluation.
HELD_OUT_STYLES: tuple[str, ...] = tuple(name for name, spec in STYLES.items() if spec.held_out)


def build_scene(
    style: str,
    rng: np.random.Generator,
    height: int,
    width: int,
    n_objects: int | None = None,
) -> Scene:
    """Build a scene of ``style`` for a ``height`` x ``width`` camera.

    Args:
        style: a key of :data:`STYLES`.
        rng: the only source of randomness (same seed, same scene).
        height: image height in pixels.
        width: image width in pixels.
        n_objects: roughly how many objects to place (default: style-dependent random).

    Raises:
        ValueError: for an unknown style (the message lists the known ones).
    """
    spec = STYLES.get(style)
    if spec is None:
        raise ValueError(f"unknown scene style {style!r}; known styles: {', '.join(STYLES)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scene = spec.build(rng, height, width, n_objects)
    LOGGER.debug(
        "built %s scene: %d primitives, %d instances",
        style,
        scene.num_primitives,
        scene.num_instances,
    )
    return scene


__all__ = ["HELD_OUT_STYLES", "STYLES", "TRAIN_STYLES", "StyleSpec", "build_scene"]
