"""Indoor style: a closed room (6 planes) with furniture, wall fixtures and small props.

Rooms are 3–8 m wide and 2.4–3.2 m high; the camera stands inside at 1.0–1.8 m,
looking roughly horizontally across the room, so every ray hits a surface and depths
are about 0.5–10 m. Thin structures: table/chair legs (1.5–3 cm), lamp poles, shelf
boards, window grids and frames, plant stems, pencils. Units: metres, radians.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

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
    add_ball,
    add_box_stack,
    add_cabinet,
    add_chair,
    add_coat_rack,
    add_door,
    add_floor_lamp,
    add_hanging_lamp,
    add_picture,
    add_plant,
    add_room,
    add_rug,
    add_shelf,
    add_sofa,
    add_table,
    add_wall_screen,
    add_window,
    inside_room,
    push_to_wall,
)
from .props import PROP_ROLES, PROP_WEIGHTS, PROPS

LOGGER = logging.getLogger(__name__)

NAME = "indoor"
DEPTH_RANGE = (0.5, 10.0)

#: Material roles: furniture + props with fewer variants, plus the room surfaces.
ROLES: dict[str, MaterialRole] = {
    **with_variants(FURNITURE_ROLES, book=4, plastic=3, fabric=2, picture=2, leaves=1, pot=1),
    **with_variants(PROP_ROLES, ceramic=2, glass=1, fruit=2),
    "wall": MaterialRole(
        ("plaster", "plain", "concrete", "bricks", "photo_brick", "tiles"),
        WHITES + STONES[2:3],
        (0.4, 1.5),
        variants=2,
        scales=WALL_SCALES,
    ),
    "floor": MaterialRole(
        ("wood", "tiles", "checker", "marble", "concrete", "fabric"),
        WOODS + STONES[:2],
        (0.3, 1.2),
        scales=FLOOR_SCALES,
    ),
    "ceiling": MaterialRole(("plaster", "plain"), WHITES, (0.5, 1.5)),
}

#: Object kinds and their sampling weights.
WEIGHTS: dict[str, float] = {
    "window": 1.4,
    "picture": 1.4,
    "door": 0.4,
    "screen": 0.25,
    "sofa": 0.7,
    "shelf": 1.3,
    "cabinet": 1.1,
    "table": 1.6,
    "chair": 2.5,
    "floor_lamp": 0.9,
    "hanging_lamp": 0.6,
    "coat_rack": 0.3,
    "plant": 1.3,
    "boxes": 0.9,
    "ball": 0.7,
    "rug": 0.3,
    "prop": 3.0,
}
#: Placement order: fixtures and big furniture first, small things last.
ORDER = tuple(WEIGHTS)
AGAINST_WALL = {"sofa", "shelf", "cabinet"}
WALL_FIXTURES = {"window", "picture", "door", "screen"}


@dataclass
class _Layout:
    """Mutable state of one room while it is being furnished."""

    builder: SceneBuilder
    rng: np.random.Generator
    pal: MaterialPalette
    room: Room
    keepouts: list[KeepOut]
    floor: Footprints
    wall_spans: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    surfaces: list[tuple[Surface, Footprints]] = field(default_factory=list)
    tables: list[Surface] = field(default_factory=list)


def _span_free(spans: list[tuple[float, float]], s0: float, s1: float) -> bool:
    """True when ``[s0, s1]`` overlaps none of ``spans``."""
    return all(s1 <= a or s0 >= b for a, b in spans)


def _add_fixture(lay: _Layout, kind: str) -> bool:
    """A window, picture, door or screen on a random wall; returns success."""
    rng = lay.rng
    for _ in range(8):
        wall_i = int(rng.integers(4))
        wall = lay.room.walls[wall_i]
        if kind == "window":
            width = uniform(rng, 0.6, min(2.2, wall.length - 0.8))
        elif kind == "picture":
            width = uniform(rng, 0.25, 1.2)
        elif kind == "door":
            width = 1.15
        else:
            width = 1.45
        if wall.length < width + 0.6:
            continue
        s = uniform(rng, 0.3 + width / 2, wall.length - 0.3 - width / 2)
        spans = lay.wall_spans.setdefault(wall_i, [])
        if not _span_free(spans, s - width / 2 - 0.05, s + width / 2 + 0.05):
            continue
        d = Draft(label=kind)
        if kind == "window":
            bottom = uniform(rng, 0.6, 1.0)
            height = min(wall.height - bottom - 0.35, uniform(rng, 1.0, 1.8))
            add_window(d, rng, lay.pal, wall, s, bottom, width, height)
        elif kind == "picture":
            height = uniform(rng, 0.25, 0.9)
            add_picture(
                d,
                rng,
                lay.pal,
                wall,
                s,
                min(uniform(rng, 1.3, 1.8), wall.height - height / 2 - 0.2),
                width,
                height,
            )
        elif kind == "door":
            add_door(d, rng, lay.pal, wall, s)
        else:
            add_wall_screen(d, rng, lay.pal, wall, s, uniform(rng, 1.2, 1.6))
        if try_commit(lay.builder, d, lay.keepouts):
            spans.append((s - width / 2, s + width / 2))
            if kind == "door":  # nothing may stand in front of a door
                front = wall.pose(s, 0.5)
                lay.floor.add(front.x, front.y, 0.55)
            return True
    return False


#: Stop trying floor furniture after this many consecutive failures (a full room).
MAX_FLOOR_FAILURES = 3


def _add_furniture(lay: _Layout, kind: str, tries: int = 12) -> bool:
    """Place one piece of floor furniture; registers its top surface; returns success."""
    make, pending = _furniture_maker(lay, kind)
    if place(lay.builder, make, lay.keepouts, lay.floor, tries=tries) is None:
        return False
    if pending:
        if kind == "table":
            lay.tables.append(pending[-1])
        lay.surfaces.append((pending[-1], Footprints()))
    return True


def _furniture_maker(lay: _Layout, kind: str) -> tuple[Callable[[], Draft | None], list[Surface]]:
    """A sampler of one piece of floor furniture (pose, geometry, fit checks).

    Returns the sampler and a list that holds the top surface of the last sample.
    """
    rng, room = lay.rng, lay.room
    pending: list[Surface] = []

    def make() -> Draft | None:
        pending.clear()
        d = Draft(label=kind)
        surface: Surface | None = None
        if kind in AGAINST_WALL:
            wall = room.walls[int(rng.integers(4))]
            if wall.length < 1.2:
                return None
            s = uniform(rng, 0.5, wall.length - 0.5)
            pose = wall.pose(s, 0.0)
            if kind == "sofa":
                add_sofa(d, rng, lay.pal, pose)
            elif kind == "shelf":
                surface = add_shelf(d, rng, lay.pal, pose, room.height)
            else:
                surface = add_cabinet(d, rng, lay.pal, pose)
            offset = push_to_wall(d, wall, uniform(rng, 0.01, 0.05))
            pose = Pose(pose.x + offset[0], pose.y + offset[1], pose.z, pose.yaw)
            if surface is not None:
                sp = surface.pose
                surface = Surface(
                    Pose(sp.x + offset[0], sp.y + offset[1], sp.z, sp.yaw),
                    surface.half_length,
                    surface.half_width,
                )
        else:
            pose = Pose(
                uniform(rng, room.x0 + 0.4, room.x1 - 0.4),
                uniform(rng, room.y0 + 0.4, room.y1 - 0.4),
                room.z0,
                uniform(rng, -math.pi, math.pi),
            )
            if kind == "table":
                surface = add_table(
                    d,
                    rng,
                    lay.pal,
                    pose,
                    choose(rng, {"dining": 2.0, "coffee": 1.0, "round": 1.0, "desk": 1.0}),
                )
            elif kind == "chair":
                pose = _chair_pose(lay) or pose
                add_chair(d, rng, lay.pal, pose)
            elif kind == "floor_lamp":
                add_floor_lamp(d, rng, lay.pal, pose)
            elif kind == "hanging_lamp":
                add_hanging_lamp(d, rng, lay.pal, pose, room.z0 + room.height)
            elif kind == "coat_rack":
                add_coat_rack(d, rng, lay.pal, pose)
            elif kind == "plant":
                add_plant(d, rng, lay.pal, pose, uniform(rng, 0.7, 1.5))
            elif kind == "boxes":
                add_box_stack(d, rng, lay.pal, pose)
            elif kind == "ball":
                add_ball(d, rng, lay.pal, pose)
            else:
                add_rug(d, rng, lay.pal, pose)
        if not inside_room(d, room):
            return None
        if kind not in ("hanging_lamp", "rug"):
            d.set_footprint(pose.x, pose.y, pose.yaw, pad=0.03)
        if surface is not None:
            pending.append(surface)
        return d

    return make, pending


def _chair_pose(lay: _Layout) -> Pose | None:
    """A pose next to a random table, facing it, or ``None`` when there is no table."""
    if not lay.tables:
        return None
    rng = lay.rng
    table = lay.tables[int(rng.integers(len(lay.tables)))]
    side = int(rng.integers(4))
    along = table.half_length if side < 2 else table.half_width
    across = table.half_width if side < 2 else table.half_length
    t = uniform(rng, -along * 0.7, along * 0.7)
    dist = across + uniform(rng, 0.2, 0.4)
    lx, ly = (t, dist) if side < 2 else (dist, t)
    if side % 2:
        lx, ly = -lx, -ly
    pos = table.pose.point(lx, ly, 0.0)
    outward = math.atan2(pos[1] - table.pose.y, pos[0] - table.pose.x)
    # the chair's front (local +y) faces the table: yaw + pi/2 = outward + pi
    return Pose(
        float(pos[0]), float(pos[1]), lay.room.z0, outward + math.pi / 2 + uniform(rng, -0.25, 0.25)
    )


def _add_prop(lay: _Layout) -> bool:
    """A small prop on a random surface (table, cabinet, low shelf); returns success."""
    if not lay.surfaces:
        return False
    rng = lay.rng
    surface, taken = lay.surfaces[int(rng.integers(len(lay.surfaces)))]
    kind = choose(rng, PROP_WEIGHTS)

    def make() -> Draft | None:
        pose = surface.sample(rng, 0.06)
        if pose is None:
            return None
        d = Draft(label=kind)
        radius = PROPS[kind](d, rng, lay.pal, pose)
        if radius > 0:
            d.footprint = [(pose.x, pose.y, radius + 0.01)]
        if d.bounds()[1][2] > lay.room.z0 + lay.room.height - 0.05:
            return None
        return d

    return place(lay.builder, make, lay.keepouts, taken, tries=6) is not None


def _camera_pose(rng: np.random.Generator, room: Room) -> tuple[np.ndarray, float]:
    """Camera centre inside ``room`` (0.5 m from walls, 1.0–1.8 m high) and heading (radians).

    The heading points at a random spot in the far part of the room, plus jitter.
    """
    eye = np.array(
        [
            uniform(rng, room.x0 + 0.5, room.x1 - 0.5),
            uniform(rng, room.y0 + 0.5, room.y1 - 0.5),
            room.z0 + uniform(rng, 1.0, 1.8),
        ]
    )
    cx, cy = (room.x0 + room.x1) / 2, (room.y0 + room.y1) / 2
    target = np.array([2 * cx - eye[0], 2 * cy - eye[1]]) + rng.normal(size=2) * 0.5
    if np.linalg.norm(target - eye[:2]) < 0.5:
        target = eye[:2] + rng.normal(size=2)
    yaw = math.atan2(target[1] - eye[1], target[0] - eye[0]) + clipped_normal(
        rng, 0.0, 0.3, -0.8, 0.8
    )
    return eye, yaw


def build(rng: np.random.Generator, height: int, width: int, n_objects: int | None = None) -> Scene:
    """An indoor scene (see module docstring).

    Args:
        rng: the only source of randomness.
        height: image height in pixels.
        width: image width in pixels.
        n_objects: number of objects to attempt (default: random 15–35).
    """
    room = Room(0.0, uniform(rng, 3.0, 8.0), 0.0, uniform(rng, 3.0, 8.0), uniform(rng, 2.4, 3.2))
    pal = MaterialPalette(rng, ROLES)
    builder = SceneBuilder()
    wall_mat = pal.get("wall")
    walls = tuple(wall_mat if rng.random() < 0.7 else pal.get("wall") for _ in range(4))
    add_room(
        builder,
        room,
        pal.get("floor"),
        pal.get("ceiling"),
        (walls[0], walls[1], walls[2], walls[3]),
    )
    eye, yaw = _camera_pose(rng, room)
    camera = camera_from_angles(
        eye,
        yaw,
        math.radians(clipped_normal(rng, -5.0, 8.0, -30.0, 20.0)),
        clipped_normal(rng, 0.0, 3.0, -10.0, 10.0),
        random_fov(rng),
        height,
        width,
    )
    floor = Footprints()
    floor.add(float(eye[0]), float(eye[1]), 0.35)
    lay = _Layout(builder, rng, pal, room, [KeepOut(eye, 0.3)], floor)
    n = count(rng, n_objects, 15, 35)
    kinds = sorted((choose(rng, WEIGHTS) for _ in range(n)), key=ORDER.index)
    if kinds.count("rug") > 1:  # one rug per room (rugs would overlap)
        first = kinds.index("rug")
        kinds = [k for i, k in enumerate(kinds) if k != "rug" or i == first]
    placed = 0
    floor_failures = 0  # consecutive failed floor placements: the floor is full
    for kind in kinds:
        if kind in WALL_FIXTURES:
            ok = _add_fixture(lay, kind)
        elif kind == "prop":
            ok = _add_prop(lay) or _add_furniture(lay, "ball", tries=6)
        elif floor_failures >= MAX_FLOOR_FAILURES:
            ok = False  # skip: every further try would cost a full object build
        else:
            ok = _add_furniture(lay, kind)
            if not ok and kind not in ("boxes", "ball"):  # room full: try something small
                ok = _add_furniture(lay, "boxes", tries=6)
            floor_failures = 0 if ok else floor_failures + 1
        placed += int(ok)
    LOGGER.debug("indoor: placed %d of %d objects, %d primitives", placed, n, len(builder))
    light = random_light(rng, elevation_deg=(25.0, 85.0), ambient=(0.3, 0.55))
    return builder.build(camera, light, None, NAME)
