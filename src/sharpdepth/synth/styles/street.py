"""Street style: a street canyon with facades, poles, overhead wires, trees, cars and signs.

The street runs along world ``+y``. Buildings line both sides (with balconies,
awnings, rooftop masts), a back row closes the gaps between them and a cross row
closes the far end 45–85 m ahead, so ground rays end at finite depth and only the
sky above the roofs has no depth. The camera stands 1.2–2.5 m high looking along the
street. Thin structures: overhead wires (1–2 cm), lamp posts, sign poles, fences,
balcony railings, branches, antennas, bicycles. Units: metres, radians.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sharpdepth.synth.scene import Scene, SceneBuilder

from .common import (
    STONES,
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
    add_bench,
    add_bicycle,
    add_bin,
    add_bollards,
    add_building,
    add_car,
    add_fence,
    add_lamp_post,
    add_sign,
    add_traffic_light,
    add_tree,
    add_utility_pole,
    add_wire,
)

LOGGER = logging.getLogger(__name__)

NAME = "street"
DEPTH_RANGE = (1.0, 80.0)

ROLES: dict[str, MaterialRole] = {
    **OUTDOOR_ROLES,
    "road": MaterialRole(("asphalt",), ((0.35, 0.35, 0.37), (0.45, 0.44, 0.42)), (1.0, 3.0)),
    "sidewalk": MaterialRole(
        ("tiles", "concrete", "photo_gravel", "bricks"),
        STONES,
        (1.0, 3.0),
        scales={"tiles": (2.4, 4.0), "bricks": (0.5, 0.8)},
    ),
    "marking": MaterialRole(("plain",), ((0.95, 0.95, 0.92), (0.95, 0.8, 0.2)), (1.0, 1.0)),
}

#: Sidewalk object kinds and sampling weights (utility poles and wires are planned separately).
WEIGHTS: dict[str, float] = {
    "lamp_post": 2.0,
    "tree": 2.0,
    "car": 2.5,
    "sign": 1.5,
    "bollards": 0.8,
    "fence": 0.8,
    "bench": 0.6,
    "bin": 0.8,
    "bicycle": 0.8,
    "traffic_light": 0.3,
}


@dataclass
class _Street:
    """Street geometry and placement state.

    Attributes:
        half_road: half the road width, metres.
        sidewalk: sidewalk width, metres.
        curb: sidewalk height, metres.
        y0: street start (behind the camera), metres.
        y1: position of the closing cross row of buildings, metres.
    """

    builder: SceneBuilder
    rng: np.random.Generator
    pal: MaterialPalette
    half_road: float
    sidewalk: float
    curb: float
    y0: float
    y1: float
    keepouts: list[KeepOut]
    ground: Footprints = field(default_factory=Footprints)

    @property
    def facade_x(self) -> float:
        """Distance of the facade line from the street axis, metres."""
        return self.half_road + self.sidewalk


def _add_ground(st: _Street) -> None:
    """Road plane, raised sidewalks and dashed centre-line markings."""
    pal, b = st.pal, st.builder
    b.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), pal.get("road"))
    length = st.y1 - st.y0 + 20.0
    cy = (st.y0 + st.y1) / 2
    walk = pal.get("sidewalk")
    for side in (-1.0, 1.0):
        x = side * (st.half_road + st.sidewalk / 2 + 1.0)
        b.box((x, cy, st.curb / 2), (st.sidewalk + 2.0, length, st.curb), walk)
    mark = pal.get("marking")
    dash, gap = uniform(st.rng, 2.0, 4.0), uniform(st.rng, 3.0, 8.0)
    inst = b.new_instance()
    y = st.y0 + uniform(st.rng, 0.0, gap)
    while y < st.y1 - dash:
        b.box((0.0, y + dash / 2, 0.003), (0.12, dash, 0.006), mark, instance=inst)
        y += dash + gap


def _add_buildings(st: _Street) -> None:
    """Rows of buildings on both sides, a back row behind them, and a cross row at the end."""
    rng = st.rng
    for side in (-1.0, 1.0):
        y = st.y0
        yaw = -math.pi / 2 if side < 0 else math.pi / 2  # local +y (front) faces the street
        while y < st.y1:
            w = uniform(rng, 6.0, 20.0)
            gap = uniform(rng, 0.0, 5.0) if rng.random() < 0.3 else 0.0
            x = side * (st.facade_x + uniform(rng, 0.0, 0.6))
            front = Pose(x, y + w / 2, 0.0, yaw)
            d = Draft(label="building")
            add_building(
                d,
                rng,
                st.pal,
                front,
                w,
                uniform(rng, 8.0, 14.0),
                uniform(rng, 6.0, 28.0),
                details=y + w > -5.0 and y < 60.0,
            )
            try_commit(st.builder, d, st.keepouts)
            y += w + gap
        back = Draft(label="back row")
        x = side * (st.facade_x + 16.0)
        add_building(
            back,
            rng,
            st.pal,
            Pose(x, (st.y0 + st.y1) / 2, 0.0, yaw),
            st.y1 - st.y0 + 10.0,
            10.0,
            uniform(rng, 10.0, 30.0),
            details=False,
        )
        try_commit(st.builder, back, st.keepouts)
    x = -st.facade_x - 10.0
    while x < st.facade_x + 10.0:
        w = uniform(rng, 6.0, 18.0)
        d = Draft(label="end building")
        add_building(
            d, rng, st.pal, Pose(x + w / 2, st.y1, 0.0, math.pi), w, 10.0, uniform(rng, 8.0, 35.0)
        )
        try_commit(st.builder, d, st.keepouts)
        x += w


def _add_utility_lines(st: _Street) -> int:
    """Utility poles along one or both sidewalks with sagging wires between them.

    Also adds some wires across the street and service drops to the facades. Returns
    the number of poles.
    """
    rng = st.rng
    sides = (-1.0, 1.0) if rng.random() < 0.4 else ((-1.0,) if rng.random() < 0.5 else (1.0,))
    spacing = uniform(rng, 18.0, 32.0)
    wire_mat = st.pal.get("wire")
    tops: dict[float, list[list[np.ndarray]]] = {}
    n_poles = 0
    for side in sides:
        x = side * (st.half_road + 0.5)
        y = st.y0 + uniform(rng, 0.0, spacing)
        tops[side] = []
        while y < st.y1 - 3.0:
            d = Draft(label="utility pole")
            # crossarms across the street (local +y = world +x), wires along it
            attach = add_utility_pole(d, rng, st.pal, Pose(x, y, st.curb, -math.pi / 2))
            if try_commit(st.builder, d, st.keepouts):
                st.ground.add(x, y, 0.6)
                tops[side].append(attach)
                n_poles += 1
            y += spacing * uniform(rng, 0.85, 1.15)
    for side, poles in tops.items():
        for a, b in itertools.pairwise(poles):
            wires = Draft(label="wires")
            radius = uniform(rng, 0.01, 0.02)
            for p, q in zip(a, b, strict=False):
                add_wire(wires, p, q, uniform(rng, 0.3, 1.2), radius, wire_mat, segments=10)
            if rng.random() < 0.4:  # service drop to the facade
                facade = np.array(
                    [side * st.facade_x, a[0][1] + uniform(rng, -4, 4), uniform(rng, 4.0, 6.0)]
                )
                add_wire(
                    wires,
                    a[-1 if side > 0 else 0],
                    facade,
                    uniform(rng, 0.1, 0.4),
                    0.01,
                    wire_mat,
                    segments=6,
                )
            try_commit(st.builder, wires, st.keepouts)
    if len(tops) == 2 and tops[-1.0] and tops[1.0]:  # a few wires across the street
        for _ in range(int(rng.integers(0, 3))):
            a = tops[-1.0][int(rng.integers(len(tops[-1.0])))]
            b = tops[1.0][int(rng.integers(len(tops[1.0])))]
            d = Draft(label="cross wire")
            add_wire(
                d,
                a[0],
                b[-1],
                uniform(rng, 0.5, 1.5),
                uniform(rng, 0.01, 0.02),
                wire_mat,
                segments=12,
            )
            try_commit(st.builder, d, st.keepouts)
    return n_poles


def _maker(st: _Street, kind: str) -> Callable[[], Draft | None]:
    """A sampler of one street object of ``kind`` on a sidewalk or at the road edge."""
    rng, pal = st.rng, st.pal

    def make() -> Draft | None:
        side = -1.0 if rng.random() < 0.5 else 1.0
        y = uniform(rng, st.y0 + 5.0, st.y1 - 5.0)
        curb_x = side * (st.half_road + uniform(rng, 0.4, 0.9))
        # a sidewalk pose whose local +x points across the road
        walk = Pose(curb_x, y, st.curb, 0.0 if side < 0 else math.pi)
        d = Draft(label=kind)
        if kind == "car":
            pose = Pose(
                side * (st.half_road - uniform(rng, 1.0, 1.4)),
                y,
                0.0,
                math.pi / 2 + (0.0 if rng.random() < 0.5 else math.pi) + uniform(rng, -0.04, 0.04),
            )
            add_car(d, rng, pal, pose)
        elif kind == "lamp_post":
            pose = walk
            add_lamp_post(d, rng, pal, walk)
        elif kind == "tree":
            pose = Pose(
                side * (st.half_road + st.sidewalk * uniform(rng, 0.3, 0.6)),
                y,
                st.curb,
                uniform(rng, 0, 2 * math.pi),
            )
            add_tree(
                d,
                rng,
                pal,
                pose,
                uniform(rng, 5.0, 12.0),
                "deciduous" if rng.random() < 0.8 else "bare",
            )
        elif kind == "sign":
            pose = Pose(
                curb_x,
                y,
                st.curb,
                walk.yaw + uniform(rng, -0.3, 0.3) + (math.pi if rng.random() < 0.3 else 0.0),
            )
            add_sign(d, rng, pal, pose)
        elif kind == "bollards":
            pose = Pose(curb_x, y, st.curb, math.pi / 2)
            add_bollards(d, rng, pal, pose, int(rng.integers(3, 8)))
        elif kind == "fence":
            x = side * (st.facade_x - uniform(rng, 0.3, 1.0)) if rng.random() < 0.5 else curb_x
            length = uniform(rng, 3.0, 12.0)
            pose = Pose(x, y, st.curb, math.pi / 2)
            add_fence(
                d,
                rng,
                pal,
                (x, y - length / 2, st.curb),
                (x, y + length / 2, st.curb),
                choose(rng, {"rail": 1.0, "picket": 1.0, "railing": 1.5}),
            )
        elif kind == "bench":
            pose = Pose(
                side * (st.facade_x - uniform(rng, 0.5, 1.0)), y, st.curb, walk.yaw - math.pi / 2
            )
            add_bench(d, rng, pal, pose)
        elif kind == "bin":
            pose = walk
            add_bin(d, rng, pal, walk)
        elif kind == "bicycle":
            pose = Pose(
                side * (st.half_road + st.sidewalk * uniform(rng, 0.2, 0.8)),
                y,
                st.curb,
                math.pi / 2 + uniform(rng, -0.4, 0.4),
            )
            add_bicycle(d, rng, pal, pose)
        else:
            pose = walk
            add_traffic_light(d, rng, pal, walk, uniform(rng, 2.5, st.half_road))
        if kind in ("tree", "lamp_post", "traffic_light"):  # only the base stands in the way
            d.footprint = [(pose.x, pose.y, 0.6)]
        else:
            d.set_footprint(pose.x, pose.y, pose.yaw, pad=0.1)
        return d

    return make


def build(rng: np.random.Generator, height: int, width: int, n_objects: int | None = None) -> Scene:
    """A street scene (see module docstring).

    Args:
        rng: the only source of randomness.
        height: image height in pixels.
        width: image width in pixels.
        n_objects: number of sidewalk/road objects to attempt (default: random 20–45);
            buildings, utility poles and wires come on top.
    """
    pal = MaterialPalette(rng, ROLES)
    builder = SceneBuilder()
    half_road, sidewalk = uniform(rng, 3.0, 7.0), uniform(rng, 2.0, 4.5)
    curb = uniform(rng, 0.1, 0.18)
    on_walk = rng.random() < 0.3
    side = -1.0 if rng.random() < 0.5 else 1.0
    cam_x = (
        side * (half_road + sidewalk * uniform(rng, 0.3, 0.7))
        if on_walk
        else uniform(rng, -half_road + 1.0, half_road - 1.0)
    )
    eye = np.array(
        [cam_x, uniform(rng, 0.0, 5.0), uniform(rng, 1.2, 2.5) + (curb if on_walk else 0.0)]
    )
    st = _Street(
        builder,
        rng,
        pal,
        half_road,
        sidewalk,
        curb,
        -30.0,
        eye[1] + uniform(rng, 45.0, 85.0),
        [KeepOut(eye, 0.5)],
    )
    st.ground.add(float(eye[0]), float(eye[1]), 1.0)
    turn = clipped_normal(rng, 0.0, 0.2, -0.45, 0.45)
    if on_walk:  # on a sidewalk, turn towards the street rather than into the near facade
        turn = side * abs(turn)
    yaw = math.pi / 2 + turn
    camera = camera_from_angles(
        eye,
        yaw,
        math.radians(clipped_normal(rng, 3.0, 5.0, -10.0, 15.0)),
        clipped_normal(rng, 0.0, 2.5, -8.0, 8.0),
        random_fov(rng),
        height,
        width,
    )
    _add_ground(st)
    _add_buildings(st)
    n_poles = _add_utility_lines(st)
    n = count(rng, n_objects, 20, 45)
    placed = 0
    for _ in range(n):
        placed += int(
            place(builder, _maker(st, choose(rng, WEIGHTS)), st.keepouts, st.ground, tries=8)
            is not None
        )
    LOGGER.debug(
        "street: %d poles, placed %d of %d objects, %d primitives", n_poles, placed, n, len(builder)
    )
    light = random_light(rng, elevation_deg=(15.0, 70.0))
    return builder.build(camera, light, random_sky(rng), NAME)
