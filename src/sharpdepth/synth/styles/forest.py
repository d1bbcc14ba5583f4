"""Forest style (held out for zero-shot tests): trees, bushes, rocks, logs, fences; sky.

Objects are scattered around a camera standing 1.2–2.0 m above flat ground, denser in
the viewing direction. A ring of distant hills/tree line 35–50 m away closes the
horizon, so ground rays end at finite depth and only the sky has no depth (typical
depths 1–50 m). Thin structures: branches in many directions, twigs, grass blades,
fence rails. Units: metres, radians.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from sharpdepth.synth.scene import Scene, SceneBuilder

from .common import (
    MaterialPalette,
    MaterialRole,
    Pose,
    camera_from_angles,
    choose,
    clipped_normal,
    count,
    random_fov,
    random_light,
    random_sky,
    uniform,
)
from .draft import Draft, Footprints, KeepOut, place, try_commit
from .outdoor import (
    OUTDOOR_ROLES,
    add_bush,
    add_fence,
    add_grass_tuft,
    add_log,
    add_rock,
    add_stump,
    add_tree,
)

LOGGER = logging.getLogger(__name__)

NAME = "forest"
DEPTH_RANGE = (1.0, 50.0)

ROLES: dict[str, MaterialRole] = {
    **OUTDOOR_ROLES,
    "ground": MaterialRole(
        ("photo_grass", "leaves", "noise", "photo_gravel"),
        ((0.55, 0.5, 0.35), (0.45, 0.55, 0.3), (0.5, 0.42, 0.3)),
        (1.0, 3.0),
    ),
    "hill": MaterialRole(
        ("leaves", "noise"), ((0.2, 0.3, 0.18), (0.28, 0.35, 0.22)), (4.0, 10.0), variants=2
    ),
}

#: Object kinds and sampling weights.
WEIGHTS: dict[str, float] = {
    "tree": 4.0,
    "bush": 2.0,
    "rock": 1.5,
    "log": 0.8,
    "stump": 0.5,
    "grass": 1.5,
    "fence": 0.25,
}
TREE_KINDS: dict[str, float] = {"deciduous": 0.45, "conifer": 0.3, "bare": 0.15, "sapling": 0.1}


def _add_horizon(
    builder: SceneBuilder, rng: np.random.Generator, pal: MaterialPalette, keepouts: list[KeepOut]
) -> None:
    """A closed ring of half-buried ellipsoid hills 35–50 m from the camera, plus low mounds."""
    radius = uniform(rng, 35.0, 50.0)
    n = 22
    hill = Draft(label="horizon")
    for i in range(n):
        a = 2 * math.pi * (i + uniform(rng, -0.2, 0.2)) / n
        r = radius + uniform(rng, 0.0, 8.0)
        centre = (r * math.cos(a), r * math.sin(a), 0.0)
        tangential = 1.4 * math.pi * r / n
        hill.ellipsoid(
            centre,
            (uniform(rng, 6.0, 12.0), tangential, uniform(rng, 6.0, 18.0)),
            pal.get("hill"),
            yaw=a,
        )
    try_commit(builder, hill, keepouts)
    for _ in range(int(rng.integers(0, 5))):  # low mounds of the forest floor
        mound = Draft(label="mound")
        a, r = uniform(rng, -math.pi, math.pi), uniform(rng, 6.0, 30.0)
        size = uniform(rng, 3.0, 10.0)
        mound.ellipsoid(
            (r * math.cos(a), r * math.sin(a), -0.3),
            (size, size * uniform(rng, 0.5, 1.0), uniform(rng, 0.5, 1.3)),
            pal.get("ground"),
            yaw=uniform(rng, 0, math.pi),
        )
        try_commit(builder, mound, keepouts)


def _maker(
    rng: np.random.Generator, pal: MaterialPalette, kind: str, view_yaw: float, half_view: float
) -> Callable[[], Draft | None]:
    """A sampler of one forest object; positions favour the viewing direction."""

    def make() -> Draft | None:
        near = kind == "grass"
        dist = uniform(rng, 1.0, 8.0) if near else 1.5 + 33.0 * float(rng.random()) ** 1.5
        az = (
            view_yaw + uniform(rng, -half_view, half_view)
            if rng.random() < 0.85
            else uniform(rng, -math.pi, math.pi)
        )
        pose = Pose(dist * math.cos(az), dist * math.sin(az), 0.0, uniform(rng, -math.pi, math.pi))
        d = Draft(label=kind)
        radius = 0.3
        if kind == "tree":
            tree_kind = choose(rng, TREE_KINDS)
            height = (
                uniform(rng, 8.0, 20.0)
                if tree_kind == "conifer"
                else uniform(rng, 2.0, 5.0)
                if tree_kind == "sapling"
                else uniform(rng, 4.0, 16.0)
            )
            radius = add_tree(d, rng, pal, pose, height, tree_kind) + 0.3
        elif kind == "bush":
            size = uniform(rng, 0.3, 1.2)
            add_bush(d, rng, pal, pose, size)
            radius = size
        elif kind == "rock":
            size = uniform(rng, 0.2, 1.5)
            add_rock(d, rng, pal, pose, size)
            radius = size
        elif kind == "log":
            half = add_log(d, rng, pal, pose)
            d.set_footprint(pose.x, pose.y, pose.yaw)
            return d if half > 0 else None
        elif kind == "stump":
            radius = add_stump(d, rng, pal, pose)
        elif kind == "grass":
            add_grass_tuft(d, rng, pal, pose)
            return d  # no footprint: grass grows around things
        else:
            length = uniform(rng, 4.0, 15.0)
            start = pose.point(-length / 2, 0.0, 0.0)
            end = pose.point(length / 2, 0.0, 0.0)
            add_fence(d, rng, pal, start, end, "rail" if rng.random() < 0.7 else "picket")
            d.set_footprint(pose.x, pose.y, pose.yaw, pad=0.1)
            return d
        d.footprint = [(pose.x, pose.y, radius)]
        return d

    return make


def build(rng: np.random.Generator, height: int, width: int, n_objects: int | None = None) -> Scene:
    """A forest scene (see module docstring).

    Args:
        rng: the only source of randomness.
        height: image height in pixels.
        width: image width in pixels.
        n_objects: number of objects to attempt (default: random 30–60).
    """
    pal = MaterialPalette(rng, ROLES)
    builder = SceneBuilder()
    eye = np.array([0.0, 0.0, uniform(rng, 1.2, 2.0)])
    keepouts = [KeepOut(eye, 0.5)]
    ground = Footprints()
    ground.add(0.0, 0.0, 0.8)
    yaw = uniform(rng, -math.pi, math.pi)
    fov = random_fov(rng)
    camera = camera_from_angles(
        eye,
        yaw,
        math.radians(clipped_normal(rng, 0.0, 6.0, -20.0, 15.0)),
        clipped_normal(rng, 0.0, 3.0, -10.0, 10.0),
        fov,
        height,
        width,
    )
    builder.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), pal.get("ground"))
    _add_horizon(builder, rng, pal, keepouts)
    half_view = math.radians(fov / 2 + 25.0)
    n = count(rng, n_objects, 30, 60)
    placed, fences = 0, 0
    for _ in range(n):
        kind = choose(rng, WEIGHTS)
        if kind == "fence":
            if fences >= 2:
                kind = "bush"
            fences += 1
        placed += int(
            place(builder, _maker(rng, pal, kind, yaw, half_view), keepouts, ground, tries=8)
            is not None
        )
    LOGGER.debug("forest: placed %d of %d objects, %d primitives", placed, n, len(builder))
    light = random_light(rng, elevation_deg=(15.0, 70.0))
    return builder.build(camera, light, random_sky(rng), NAME)
