"""Tabletop style: close-ups (0.3–3 m) of a table top with small objects, a wall behind.

A table stands in a small closed room with its far edge near a wall 1–3 m from the
camera. The camera is 0.2–0.8 m above the table top looking down at 15–60 degrees, so
every ray hits the table, the objects, the wall or the floor. Thin structures: pencils
and chopsticks (3–5 mm), cables (2–4 mm), lamp arms, mug handles, plant stems, shelf
brackets. Units: metres, radians.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from sharpdepth.synth.scene import Scene, SceneBuilder

from .common import (
    FLOOR_SCALES,
    STONES,
    WALL_SCALES,
    WHITES,
    WOODS,
    MaterialPalette,
    MaterialRole,
    Pose,
    camera_from_angles,
    choose,
    clipped_normal,
    count,
    random_fov,
    random_light,
    uniform,
    with_variants,
)
from .draft import Draft, Footprints, KeepOut, place, try_commit
from .furniture import (
    FURNITURE_ROLES,
    Room,
    Surface,
    add_cabinet,
    add_picture,
    add_plant,
    add_room,
    add_table,
    add_wall_shelf,
    add_window,
    inside_room,
    push_to_wall,
)
from .props import PROP_ROLES, PROP_WEIGHTS, PROPS, add_cable

LOGGER = logging.getLogger(__name__)

NAME = "tabletop"
DEPTH_RANGE = (0.3, 3.0)

ROLES: dict[str, MaterialRole] = {
    **with_variants(FURNITURE_ROLES, fabric=1, picture=2, leaves=1, pot=1, shade=1),
    **PROP_ROLES,
    "wall": MaterialRole(
        ("plaster", "plain", "concrete", "bricks", "photo_brick", "tiles"),
        WHITES + STONES[2:3],
        (0.3, 1.2),
        scales=WALL_SCALES,
    ),
    "floor": MaterialRole(
        ("wood", "tiles", "checker", "concrete", "fabric"),
        WOODS + STONES[:2],
        (0.3, 1.0),
        scales=FLOOR_SCALES,
    ),
    "ceiling": MaterialRole(("plaster", "plain"), WHITES, (0.5, 1.5)),
    "tabletop": MaterialRole(
        ("wood", "marble", "plain", "fabric", "checker", "photo_gravel"),
        WOODS + WHITES[:1] + STONES[:1],
        (0.2, 0.8),
    ),
}

#: Extra weight for cables on top of :data:`~.props.PROP_WEIGHTS`.
WEIGHTS: dict[str, float] = {**PROP_WEIGHTS, "cable": 1.0}


def _prop_maker(
    rng: np.random.Generator,
    pal: MaterialPalette,
    surface: Surface,
    kind: str,
    ceiling: float,
) -> Callable[[], Draft | None]:
    """A sampler of one prop of ``kind`` at a random spot of ``surface``."""

    def make() -> Draft | None:
        pose = surface.sample(rng, 0.05)
        if pose is None:
            return None
        d = Draft(label=kind)
        if kind == "cable":
            add_cable(d, rng, pal, surface, pose)
            return d
        radius = PROPS[kind](d, rng, pal, pose)
        if radius > 0:
            d.footprint = [(pose.x, pose.y, radius + 0.005)]
        if kind == "desk_lamp":  # its power cable
            add_cable(d, rng, pal, surface, pose.moved(-radius, 0.0, 0.0, math.pi))
        if d.bounds()[1][2] > ceiling - 0.05:
            return None
        return d

    return make


def build(rng: np.random.Generator, height: int, width: int, n_objects: int | None = None) -> Scene:
    """A tabletop scene (see module docstring).

    Args:
        rng: the only source of randomness.
        height: image height in pixels.
        width: image width in pixels.
        n_objects: number of table-top objects to attempt (default: random 8–25).
    """
    pal = MaterialPalette(rng, ROLES)
    builder = SceneBuilder()
    # the table: front edge at y = 0, centred on x = 0; the camera near the front edge
    t_len, t_dep = uniform(rng, 1.0, 2.0), uniform(rng, 0.6, 1.2)
    eye = np.array([uniform(rng, -0.3, 0.3) * t_len, uniform(rng, -0.3, 0.25), 0.0])
    wall_y = max(eye[1] + uniform(rng, 1.0, 3.0), t_dep + uniform(rng, 0.02, 0.1))
    room = Room(
        -t_len / 2 - uniform(rng, 0.6, 2.5),
        t_len / 2 + uniform(rng, 0.6, 2.5),
        eye[1] - uniform(rng, 0.8, 2.5),
        wall_y,
        uniform(rng, 2.4, 3.0),
    )
    walls = (pal.get("wall"), pal.get("wall"), pal.get("wall"), pal.get("wall"))
    add_room(builder, room, pal.get("floor"), pal.get("ceiling"), walls)
    table = Draft(label="table")
    table_pose = Pose(0.0, t_dep / 2, 0.0, 0.0)
    surface = add_table(
        table,
        rng,
        pal,
        table_pose,
        "desk" if rng.random() < 0.3 else "dining",
        (t_len, t_dep),
        "tabletop",
    )
    eye[2] = surface.pose.z + uniform(rng, 0.2, 0.8)
    keepouts = [KeepOut(eye.copy(), 0.15)]
    floor = Footprints()
    table.set_footprint(table_pose.x, table_pose.y, 0.0)
    try_commit(builder, table, keepouts, floor)
    camera = camera_from_angles(
        eye,
        math.pi / 2 + clipped_normal(rng, 0.0, 0.2, -0.45, 0.45),
        -math.radians(uniform(rng, 15.0, 60.0)),
        clipped_normal(rng, 0.0, 3.0, -10.0, 10.0),
        random_fov(rng, 40.0, 90.0),
        height,
        width,
    )
    _decorate_wall(builder, rng, pal, room, keepouts, surface)
    surfaces = [(surface, Footprints())]
    if rng.random() < 0.4:  # a side cabinet against the far wall, next to the table
        cab = _side_cabinet(rng, pal, room, t_len)
        if cab is not None and try_commit(builder, cab[0], keepouts, floor):
            surfaces.append((cab[1], Footprints()))
    n = count(rng, n_objects, 8, 25)
    placed = 0
    for i in range(n):
        kind = choose(rng, WEIGHTS)
        target, taken = surfaces[1] if len(surfaces) > 1 and i % 6 == 5 else surfaces[0]
        ok = (
            place(
                builder, _prop_maker(rng, pal, target, kind, room.height), keepouts, taken, tries=8
            )
            is not None
        )
        placed += int(ok)
    if rng.random() < 0.5:  # a floor plant somewhere free
        place(builder, lambda: _floor_plant(rng, pal, room), keepouts, floor, tries=5)
    LOGGER.debug("tabletop: placed %d of %d objects, %d primitives", placed, n, len(builder))
    light = random_light(rng, elevation_deg=(30.0, 85.0), ambient=(0.3, 0.55))
    return builder.build(camera, light, None, NAME)


def _side_cabinet(
    rng: np.random.Generator, pal: MaterialPalette, room: Room, t_len: float
) -> tuple[Draft, Surface] | None:
    """A cabinet against the far wall beside the table (``None`` if it does not fit)."""
    wall = room.walls[2]  # runs from x1 towards x0
    side = -1.0 if rng.random() < 0.5 else 1.0
    d = Draft(label="cabinet")
    pose = wall.pose(room.x1 - side * (t_len / 2 + uniform(rng, 0.5, 0.9)), 0.0)
    top = add_cabinet(d, rng, pal, pose)
    offset = push_to_wall(d, wall, 0.02)
    x0, x1, _, _ = d.local_extent(0.0, 0.0, 0.0)
    if not inside_room(d, room) or (x1 > -t_len / 2 - 0.05 and x0 < t_len / 2 + 0.05):
        return None
    d.set_footprint(pose.x + offset[0], pose.y + offset[1], pose.yaw)
    tp = top.pose
    return d, Surface(
        Pose(tp.x + offset[0], tp.y + offset[1], tp.z, tp.yaw), top.half_length, top.half_width
    )


def _floor_plant(rng: np.random.Generator, pal: MaterialPalette, room: Room) -> Draft | None:
    """A potted plant at a random spot of the floor (``None`` if it leaves the room)."""
    d = Draft(label="plant")
    pose = Pose(
        uniform(rng, room.x0 + 0.3, room.x1 - 0.3), uniform(rng, room.y0 + 0.3, room.y1 - 0.3)
    )
    add_plant(d, rng, pal, pose, uniform(rng, 0.6, 1.2))
    if not inside_room(d, room):
        return None
    d.set_footprint(pose.x, pose.y, 0.0)
    return d


def _decorate_wall(
    builder: SceneBuilder,
    rng: np.random.Generator,
    pal: MaterialPalette,
    room: Room,
    keepouts: list[KeepOut],
    table: Surface,
) -> None:
    """Up to three fixtures on the far wall: a window, pictures, a shelf with books."""
    wall = room.walls[2]  # the wall the camera faces (local x runs towards world -x)
    spans: list[tuple[float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        kind = choose(rng, {"window": 1.0, "picture": 1.5, "shelf": 1.2})
        w = uniform(rng, 0.6, 1.6) if kind == "window" else uniform(rng, 0.3, 0.9)
        if wall.length < w + 0.6:
            continue
        s = uniform(rng, 0.3 + w / 2, wall.length - 0.3 - w / 2)
        if not all(s + w / 2 + 0.05 <= a or s - w / 2 - 0.05 >= b for a, b in spans):
            continue
        d = Draft(label=kind)
        low = table.pose.z + 0.25
        if kind == "window":
            add_window(
                d,
                rng,
                pal,
                wall,
                s,
                max(low, uniform(rng, 0.9, 1.1)),
                w,
                min(room.height - 1.5, uniform(rng, 0.8, 1.4)),
            )
        elif kind == "picture":
            h = uniform(rng, 0.25, 0.7)
            add_picture(d, rng, pal, wall, s, max(low + h / 2, uniform(rng, 1.2, 1.7)), w, h)
        else:
            w = add_wall_shelf(d, rng, pal, wall, s, uniform(rng, max(low + 0.3, 1.2), 1.7))
        if try_commit(builder, d, keepouts):
            spans.append((s - w / 2, s + w / 2))
