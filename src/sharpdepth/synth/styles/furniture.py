"""Indoor parts: rooms, wall fixtures (windows, doors, pictures) and furniture.

Every ``add_*`` function writes one object into a :class:`~.draft.Draft` at a
:class:`~.common.Pose` (floor point + yaw). Furniture convention: the object's front
faces local ``+y``, its back is at local ``-y`` (so furniture "against a wall" uses the
wall's pose, whose local ``+y`` points into the room).

Materials are looked up by role in a :class:`~.common.MaterialPalette`; the roles used
here are listed in :data:`FURNITURE_ROLES`. Units: metres, angles in radians.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from sharpdepth.synth.scene import Material, SceneBuilder

from .common import (
    BRIGHTS,
    GREENS,
    METALS,
    PASTELS,
    STONES,
    WHITES,
    WOODS,
    MaterialPalette,
    MaterialRole,
    Pose,
    uniform,
)
from .draft import Draft

LOGGER = logging.getLogger(__name__)

#: Material roles used by the furniture parts (styles may override any of them).
FURNITURE_ROLES: dict[str, MaterialRole] = {
    "wood": MaterialRole(("wood",), WOODS, (0.3, 1.0), variants=3),
    "metal": MaterialRole(("plain", "noise"), METALS, (0.2, 0.5), variants=2),
    "fabric": MaterialRole(
        ("fabric", "noise", "stripes", "checker"), BRIGHTS + PASTELS, (0.1, 0.4), variants=3
    ),
    "book": MaterialRole(("paper",), BRIGHTS + WHITES, (0.2, 0.3), variants=5, jitter=0.12),
    "window": MaterialRole(("window",), WHITES, (0.8, 1.5)),
    "frame": MaterialRole(("plain", "wood"), WHITES + WOODS[:2], (0.3, 0.6), variants=2),
    "picture": MaterialRole(
        (
            "photo_astronaut",
            "photo_coffee",
            "photo_chelsea",
            "photo_rocket",
            "photo_grass",
            "marble",
        ),
        WHITES,
        (0.4, 0.9),
        variants=3,
    ),
    "leaves": MaterialRole(("leaves", "plain"), GREENS, (0.1, 0.3), variants=2),
    "stem": MaterialRole(("plain", "bark"), ((0.3, 0.45, 0.2), (0.4, 0.3, 0.2)), (0.1, 0.2)),
    "pot": MaterialRole(
        ("plain", "concrete", "tiles"),
        ((0.75, 0.4, 0.25), *WHITES[:1], *STONES[:2]),
        (0.2, 0.4),
        variants=2,
    ),
    "plastic": MaterialRole(
        ("plain", "checker", "stripes", "noise"), BRIGHTS, (0.1, 0.4), variants=4, jitter=0.1
    ),
    "shade": MaterialRole(
        ("fabric", "plain", "paper"), WHITES + PASTELS[:1], (0.2, 0.4), variants=2
    ),
}


# --- geometry helpers -------------------------------------------------------------------


def rotation_from_axes(x_axis: np.ndarray, z_axis: np.ndarray) -> np.ndarray:
    """``[3, 3]`` rotation with columns (x, y, z) from a ``z`` axis and an approximate ``x``."""
    z = np.asarray(z_axis, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.asarray(x_axis, dtype=np.float64)
    x = x - (x @ z) * z
    if np.linalg.norm(x) < 1e-9:
        x = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        x = x - (x @ z) * z
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z], axis=1)


def tilted(pose: Pose, pitch: float) -> np.ndarray:
    """Rotation of ``pose``'s frame tilted by ``pitch`` radians about its local ``x`` axis."""
    c, s = math.cos(pitch), math.sin(pitch)
    y_axis = pose.direction(0.0, c, s)
    z_axis = pose.direction(0.0, -s, c)
    x_axis = pose.direction(1.0, 0.0, 0.0)
    return np.stack([x_axis, y_axis, z_axis], axis=1)


@dataclass(frozen=True)
class Surface:
    """A horizontal rectangle small items can stand on.

    Attributes:
        pose: centre of the rectangle (``z`` = top height) and its yaw.
        half_length: half extent along local ``x``, metres.
        half_width: half extent along local ``y``, metres.
    """

    pose: Pose
    half_length: float
    half_width: float

    def sample(self, rng: np.random.Generator, margin: float) -> Pose | None:
        """A random pose on the surface, ``margin`` from its edges (``None`` if too small)."""
        hx, hy = self.half_length - margin, self.half_width - margin
        if hx <= 0 or hy <= 0:
            return None
        return self.pose.moved(
            uniform(rng, -hx, hx), uniform(rng, -hy, hy), 0.0, uniform(rng, -math.pi, math.pi)
        )


# --- rooms and walls -----------------------------------------------------------------------


@dataclass(frozen=True)
class Wall:
    """A vertical wall plane seen from inside a room.

    Attributes:
        origin: ``[3]`` floor-level point at the start of the wall, metres.
        yaw: heading of the wall direction; the inward normal is the local ``+y``.
        length: wall length, metres.
        height: wall height, metres.
    """

    origin: np.ndarray
    yaw: float
    length: float
    height: float

    def pose(self, s: float, offset: float = 0.0, z: float = 0.0) -> Pose:
        """Pose at ``s`` metres along the wall, ``offset`` into the room, height ``z``."""
        base = Pose(float(self.origin[0]), float(self.origin[1]), float(self.origin[2]), self.yaw)
        return base.moved(s, offset, z)

    @property
    def normal(self) -> np.ndarray:
        """Unit inward normal."""
        return np.array([-math.sin(self.yaw), math.cos(self.yaw), 0.0])


@dataclass(frozen=True)
class Room:
    """An axis-aligned room ``[x0, x1] x [y0, y1] x [z0, z0 + height]`` (metres)."""

    x0: float
    x1: float
    y0: float
    y1: float
    height: float
    z0: float = 0.0

    @property
    def walls(self) -> tuple[Wall, Wall, Wall, Wall]:
        """The four walls (south, east, north, west), each with its inward normal as ``+y``."""
        z0 = self.z0
        return (
            Wall(np.array([self.x0, self.y0, z0]), 0.0, self.x1 - self.x0, self.height),
            Wall(np.array([self.x1, self.y0, z0]), math.pi / 2, self.y1 - self.y0, self.height),
            Wall(np.array([self.x1, self.y1, z0]), math.pi, self.x1 - self.x0, self.height),
            Wall(np.array([self.x0, self.y1, z0]), -math.pi / 2, self.y1 - self.y0, self.height),
        )

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """True when ``(x, y)`` lies inside the room, ``margin`` metres from every wall."""
        return (
            self.x0 + margin <= x <= self.x1 - margin and self.y0 + margin <= y <= self.y1 - margin
        )


def inside_room(d: Draft, room: Room, margin: float = 0.01) -> bool:
    """True when the draft's extent lies inside ``room`` (``margin`` metres from the walls)."""
    pts = d.corners()
    return bool(
        pts[:, 0].min() >= room.x0 + margin
        and pts[:, 0].max() <= room.x1 - margin
        and pts[:, 1].min() >= room.y0 + margin
        and pts[:, 1].max() <= room.y1 - margin
        and pts[:, 2].max() <= room.z0 + room.height - 0.02
    )


def push_to_wall(d: Draft, wall: Wall, gap: float) -> np.ndarray:
    """Translate ``d`` along the wall normal so its back is ``gap`` metres from the wall.

    Returns the applied offset ``[3]`` in metres.
    """
    n = wall.normal
    back = float((d.corners() @ n).min() - wall.origin @ n)
    offset = (gap - back) * n
    d.translate(offset)
    return offset


def add_room(
    builder: SceneBuilder,
    room: Room,
    floor: Material,
    ceiling: Material,
    walls: tuple[Material, Material, Material, Material],
) -> None:
    """Add the six planes of ``room`` (floor, ceiling, four walls), one instance each."""
    z0 = room.z0
    builder.plane((0.0, 0.0, z0), (0.0, 0.0, 1.0), floor)
    builder.plane((0.0, 0.0, z0 + room.height), (0.0, 0.0, -1.0), ceiling)
    for wall, mat in zip(room.walls, walls, strict=True):
        builder.plane(wall.origin, wall.normal, mat)


def add_frame_bars(
    d: Draft,
    pose: Pose,
    width: float,
    height: float,
    bar: float,
    depth: float,
    mat: Material,
) -> None:
    """Four bars framing a ``width`` x ``height`` opening centred at ``pose`` (in local x-z).

    ``pose`` is the opening centre; bars stand ``depth`` metres out along local ``+y``.
    """
    y = depth / 2
    outer = width + 2 * bar
    d.box(pose.point(0, y, height / 2 + bar / 2), (outer, depth, bar), mat, yaw=pose.yaw)
    d.box(pose.point(0, y, -height / 2 - bar / 2), (outer, depth, bar), mat, yaw=pose.yaw)
    d.box(pose.point(-width / 2 - bar / 2, y, 0), (bar, depth, height), mat, yaw=pose.yaw)
    d.box(pose.point(width / 2 + bar / 2, y, 0), (bar, depth, height), mat, yaw=pose.yaw)


def add_window(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    wall: Wall,
    s: float,
    z_bottom: float,
    width: float,
    height: float,
) -> None:
    """A window on ``wall`` at ``s`` metres along it: pane, frame, mullion grid, sill, maybe a rod.

    The pane is a thin box 1 cm in front of the wall with the "window" texture; frame
    and mullions are thin boxes standing out a few centimetres.
    """
    centre = wall.pose(s, 0.0, z_bottom + height / 2)
    d.box(centre.point(0, 0.007, 0), (width, 0.01, height), pal.get("window"), yaw=centre.yaw)
    frame = pal.get("frame")
    bar, depth = uniform(rng, 0.04, 0.08), uniform(rng, 0.04, 0.07)
    add_frame_bars(d, centre, width, height, bar, depth, frame)
    mull = uniform(rng, 0.015, 0.03)
    for i in range(int(rng.integers(0, 4))):
        x = (
            -width / 2 + width * (i + 1) / (i + 2)
            if i == 0
            else uniform(rng, -width / 2.5, width / 2.5)
        )
        d.box(centre.point(x, depth * 0.4, 0), (mull, depth * 0.8, height), frame, yaw=centre.yaw)
    for _ in range(int(rng.integers(0, 3))):
        z = uniform(rng, -height / 3, height / 3)
        d.box(centre.point(0, depth * 0.4, z), (width, depth * 0.8, mull), frame, yaw=centre.yaw)
    sill_depth = uniform(rng, 0.1, 0.22)
    d.box(
        centre.point(0, sill_depth / 2, -height / 2 - bar - 0.015),
        (width + 2 * bar + 0.1, sill_depth, 0.03),
        frame,
        yaw=centre.yaw,
    )
    if rng.random() < 0.4:  # curtain rod on two brackets, maybe with curtains
        rod_z, rod_y, half = (
            height / 2 + bar + 0.12,
            uniform(rng, 0.08, 0.14),
            width / 2 + bar + 0.2,
        )
        rod_r = uniform(rng, 0.008, 0.015)
        metal = pal.get("metal")
        d.cylinder(
            centre.point(-half, rod_y, rod_z), centre.point(half, rod_y, rod_z), rod_r, metal
        )
        for sx in (-1.0, 1.0):
            d.cylinder(
                centre.point(sx * (half - 0.05), 0.0, rod_z),
                centre.point(sx * (half - 0.05), rod_y, rod_z),
                rod_r * 0.7,
                metal,
            )
        if rng.random() < 0.6:
            cloth = pal.get("fabric")
            drop = min(rod_z + height / 2 + z_bottom - 0.02, height + 0.6)
            for sx in (-1.0, 1.0):
                cw = uniform(rng, 0.15, 0.35)
                d.box(
                    centre.point(sx * (half - cw / 2 - 0.02), rod_y, rod_z - drop / 2 - 0.03),
                    (cw, 0.03, drop),
                    cloth,
                    yaw=centre.yaw,
                )


def add_picture(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    wall: Wall,
    s: float,
    z_centre: float,
    width: float,
    height: float,
) -> None:
    """A framed picture (photo/marble canvas in four thin bars) hung on ``wall``."""
    centre = wall.pose(s, 0.0, z_centre)
    canvas_depth = uniform(rng, 0.01, 0.03)
    d.box(
        centre.point(0, canvas_depth / 2, 0),
        (width, canvas_depth, height),
        pal.get("picture"),
        yaw=centre.yaw,
    )
    bar = uniform(rng, 0.015, 0.05)
    add_frame_bars(
        d, centre, width, height, bar, canvas_depth + uniform(rng, 0.005, 0.02), pal.get("frame")
    )


def add_door(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, wall: Wall, s: float
) -> float:
    """A closed door with casing and a lever handle on ``wall``; returns its width (metres)."""
    width, height = uniform(rng, 0.8, 0.95), uniform(rng, 1.98, 2.1)
    centre = wall.pose(s, 0.0, height / 2)
    d.box(
        centre.point(0, 0.02, 0),
        (width, 0.04, height),
        pal.get("wood" if rng.random() < 0.5 else "frame"),
        yaw=centre.yaw,
    )
    casing = pal.get("frame")
    bar = uniform(rng, 0.05, 0.09)
    d.box(
        centre.point(0, 0.0125, height / 2 + bar / 2),
        (width + 2 * bar, 0.025, bar),
        casing,
        yaw=centre.yaw,
    )
    for sx in (-1.0, 1.0):
        d.box(
            centre.point(sx * (width / 2 + bar / 2), 0.0125, 0),
            (bar, 0.025, height),
            casing,
            yaw=centre.yaw,
        )
    metal = pal.get("metal")
    hx, hz = width / 2 - 0.07, 1.0 - height / 2
    d.cylinder(centre.point(hx, 0.04, hz), centre.point(hx, 0.09, hz), 0.008, metal)
    d.cylinder(centre.point(hx, 0.09, hz), centre.point(hx - 0.12, 0.09, hz), 0.009, metal)
    return width + 2 * bar


def add_wall_screen(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, wall: Wall, s: float, z_centre: float
) -> float:
    """A flat screen on a wall bracket; returns its width (metres)."""
    width = uniform(rng, 0.7, 1.4)
    height = width * uniform(rng, 0.55, 0.62)
    centre = wall.pose(s, 0.0, z_centre)
    d.box(centre.point(0, 0.05, 0), (0.2, 0.1, 0.2), pal.get("metal"), yaw=centre.yaw)
    d.box(
        centre.point(0, 0.12, 0),
        (width, 0.04, height),
        Material("plain", (0.05, 0.05, 0.06), 1.0),
        yaw=centre.yaw,
    )
    return width


# --- furniture ------------------------------------------------------------------------------


def add_legs(
    d: Draft,
    pose: Pose,
    half_x: float,
    half_y: float,
    z_top: float,
    radius: float,
    mat: Material,
    splay: float = 0.0,
) -> None:
    """Four cylindrical legs under the corners ``(+-half_x, +-half_y)`` up to ``z_top``.

    ``splay`` moves the feet outwards by that many metres (mid-century style legs).
    """
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            top = pose.point(sx * half_x, sy * half_y, z_top)
            foot = pose.point(sx * (half_x + splay), sy * (half_y + splay), 0.0)
            d.cylinder(foot, top, radius, mat)


def add_table(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    pose: Pose,
    kind: str = "dining",
    size: tuple[float, float] | None = None,
    top_role: str = "wood",
) -> Surface:
    """A table with a top board and thin legs (1.5–3 cm radius); returns its top surface.

    Args:
        d: draft to write into.
        rng: generator.
        pal: materials (roles "wood", "metal" and ``top_role``).
        pose: floor centre and yaw.
        kind: "dining", "coffee", "round" or "desk".
        size: ``(length, width)`` of a rectangular top in metres (default: random).
        top_role: material role of the top.
    """
    height = uniform(rng, 0.4, 0.5) if kind == "coffee" else uniform(rng, 0.7, 0.78)
    thick = uniform(rng, 0.025, 0.05)
    top_mat = pal.get(top_role)
    leg_mat = pal.get("wood") if rng.random() < 0.6 else pal.get("metal")
    leg_r = uniform(rng, 0.015, 0.03)
    if kind == "round":
        radius = uniform(rng, 0.4, 0.65)
        d.cylinder(pose.point(0, 0, height - thick), pose.point(0, 0, height), radius, top_mat)
        if rng.random() < 0.5:  # pedestal
            d.cylinder(
                pose.point(0, 0, 0.02), pose.point(0, 0, height - thick), leg_r * 2.0, leg_mat
            )
            d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, 0.03), radius * 0.5, leg_mat)
        else:
            n_legs = int(rng.integers(3, 5))
            for i in range(n_legs):
                a = 2 * math.pi * i / n_legs
                top = pose.point(
                    0.6 * radius * math.cos(a), 0.6 * radius * math.sin(a), height - thick
                )
                foot = pose.point(0.75 * radius * math.cos(a), 0.75 * radius * math.sin(a), 0.0)
                d.cylinder(foot, top, leg_r, leg_mat)
        half = radius / math.sqrt(2)
        return Surface(Pose(pose.x, pose.y, pose.z + height, pose.yaw), half, half)
    if kind == "coffee":
        length, width = uniform(rng, 0.8, 1.3), uniform(rng, 0.45, 0.7)
    elif kind == "desk":
        length, width = uniform(rng, 1.0, 1.6), uniform(rng, 0.55, 0.8)
    else:
        length, width = uniform(rng, 0.9, 2.0), uniform(rng, 0.7, 1.0)
    if size is not None:
        length, width = size
    d.box(pose.point(0, 0, height - thick / 2), (length, width, thick), top_mat, yaw=pose.yaw)
    inset = uniform(rng, 0.04, 0.1)
    splay = uniform(rng, 0.0, 0.05) if rng.random() < 0.3 else 0.0
    add_legs(d, pose, length / 2 - inset, width / 2 - inset, height - thick, leg_r, leg_mat, splay)
    if rng.random() < 0.35:  # stretchers between the legs
        z = uniform(rng, 0.12, 0.25)
        for sy in (-1.0, 1.0):
            y = sy * (width / 2 - inset)
            d.cylinder(
                pose.point(-length / 2 + inset, y, z),
                pose.point(length / 2 - inset, y, z),
                leg_r * 0.6,
                leg_mat,
            )
    if kind == "desk" and rng.random() < 0.6:  # drawer block
        bw = uniform(rng, 0.3, 0.45)
        x = (length / 2 - inset - bw / 2) * (1 if rng.random() < 0.5 else -1)
        d.box(
            pose.point(x, 0, height - thick - 0.09),
            (bw, width - 2 * inset, 0.18),
            top_mat,
            yaw=pose.yaw,
        )
    return Surface(Pose(pose.x, pose.y, pose.z + height, pose.yaw), length / 2, width / 2)


def add_chair(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A chair or stool: seat, four thin legs, and a back of slats or spindles at local ``-y``."""
    seat_h, w, dep = uniform(rng, 0.42, 0.48), uniform(rng, 0.4, 0.5), uniform(rng, 0.4, 0.5)
    thick = uniform(rng, 0.02, 0.05)
    mat = pal.get("wood")
    leg_mat = mat if rng.random() < 0.6 else pal.get("metal")
    seat_mat = mat if rng.random() < 0.6 else pal.get("fabric")
    leg_r = uniform(rng, 0.012, 0.025)
    stool = rng.random() < 0.15
    if stool:
        seat_h = uniform(rng, 0.45, 0.75)
        d.cylinder(pose.point(0, 0, seat_h - thick), pose.point(0, 0, seat_h), w / 2, seat_mat)
        add_legs(d, pose, w / 3, w / 3, seat_h - thick, leg_r, leg_mat, uniform(rng, 0.0, 0.06))
        ring_z = seat_h * 0.35
        for sx in (-1.0, 1.0):
            d.cylinder(
                pose.point(sx * w / 3, -w / 3, ring_z),
                pose.point(sx * w / 3, w / 3, ring_z),
                leg_r * 0.6,
                leg_mat,
            )
        return
    d.box(pose.point(0, 0, seat_h - thick / 2), (w, dep, thick), seat_mat, yaw=pose.yaw)
    inset = 0.03
    add_legs(d, pose, w / 2 - inset, dep / 2 - inset, seat_h - thick, leg_r, leg_mat)
    back_h = uniform(rng, 0.35, 0.5)
    y_back = -dep / 2 + inset
    top_z = seat_h + back_h
    for sx in (-1.0, 1.0):  # uprights continue the back legs
        d.cylinder(
            pose.point(sx * (w / 2 - inset), y_back, seat_h),
            pose.point(sx * (w / 2 - inset), y_back - 0.03, top_z),
            leg_r,
            leg_mat,
        )
    if rng.random() < 0.5:  # horizontal slats
        n = int(rng.integers(1, 4))
        for i in range(n):
            z = top_z - 0.04 - i * (back_h * 0.8 / n)
            d.box(
                pose.point(0, y_back - 0.03 * (z - seat_h) / back_h, z),
                (w - 2 * inset, 0.02, uniform(rng, 0.04, 0.1)),
                mat,
                yaw=pose.yaw,
            )
    else:  # top rail and vertical spindles
        d.box(
            pose.point(0, y_back - 0.03, top_z - 0.03),
            (w - 2 * inset + 0.02, 0.025, 0.06),
            mat,
            yaw=pose.yaw,
        )
        n = int(rng.integers(2, 7))
        for i in range(n):
            x = -w / 2 + inset + (w - 2 * inset) * (i + 1) / (n + 1)
            d.cylinder(
                pose.point(x, y_back, seat_h),
                pose.point(x, y_back - 0.03, top_z - 0.06),
                uniform(rng, 0.006, 0.012),
                leg_mat,
            )


def add_books_row(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    pose: Pose,
    length: float,
    max_height: float,
    depth: float,
    fill: float,
    max_books: int = 40,
) -> int:
    """Books standing (and sometimes leaning or lying) on a board; returns how many.

    ``pose`` is the centre of the board top (local ``x`` along the row, ``+y`` the
    front), ``length`` the usable row length, ``fill`` the fraction filled (0..1).
    Each book is its own instance.
    """
    x = -length / 2 + uniform(rng, 0.0, 0.1)
    end = -length / 2 + fill * length
    n = 0
    while x < end and n < max_books:
        if rng.random() < 0.08:  # a gap
            x += uniform(rng, 0.05, 0.2)
            continue
        t = uniform(rng, 0.015, 0.06)
        h = min(max_height * uniform(rng, 0.6, 0.95), 0.34)
        bd = min(depth * uniform(rng, 0.65, 0.95), 0.3)
        if h < 0.1 or x + t > length / 2:
            break
        d.new_part()
        mat = pal.get("book")
        y = -depth / 2 + bd / 2 + 0.01
        if rng.random() < 0.08 and x + h < length / 2:  # lying stack of 1-4 books
            z = 0.0
            for _ in range(int(rng.integers(1, 5))):
                bt = uniform(rng, 0.02, 0.05)
                d.box(
                    pose.point(x + h / 2, y, z + bt / 2),
                    (h, bd, bt),
                    mat,
                    yaw=pose.yaw + uniform(rng, -0.08, 0.08),
                )
                z += bt
                d.new_part()
                mat = pal.get("book")
            x += h + 0.01
        elif rng.random() < 0.06 and x + h * 0.6 < length / 2:  # leaning book
            ang = uniform(rng, 0.15, 0.45)
            cx = x + (h * math.sin(ang) + t * math.cos(ang)) / 2
            cz = (h * math.cos(ang) + t * math.sin(ang)) / 2
            rot = tilted(Pose(0, 0, 0, pose.yaw + math.pi / 2), -ang)  # top leans on the row
            d.box(pose.point(cx, y, cz), (bd, t, h), mat, rotation=rot)
            x += h * math.sin(ang) + t + 0.01
        else:
            d.box(pose.point(x + t / 2, y, h / 2), (t, bd, h), mat, yaw=pose.yaw)
            x += t + uniform(rng, 0.0, 0.004)
        n += 1
    d.new_part()
    return n


def add_shelf(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, max_height: float
) -> Surface | None:
    """A bookshelf (side boards, shelves, optional back) filled with books.

    Its back is at local ``-y``. Returns the top surface when the shelf is low enough
    to put things on (< 1.3 m), else ``None``.
    """
    width, depth = uniform(rng, 0.6, 1.6), uniform(rng, 0.25, 0.4)
    height = min(uniform(rng, 0.8, 2.2), max_height - 0.1)
    board = uniform(rng, 0.018, 0.03)
    mat = pal.get("wood")
    levels = max(2, round(height / uniform(rng, 0.3, 0.4)))
    for sx in (-1.0, 1.0):
        d.box(
            pose.point(sx * (width / 2 - board / 2), 0, height / 2),
            (board, depth, height),
            mat,
            yaw=pose.yaw,
        )
    if rng.random() < 0.5:
        d.box(
            pose.point(0, -depth / 2 + 0.005, height / 2), (width, 0.01, height), mat, yaw=pose.yaw
        )
    inner = width - 2 * board
    spacing = (height - board) / levels
    for i in range(levels + 1):
        z = 0.05 + i * (height - 0.05 - board) / levels
        d.box(pose.point(0, 0, z + board / 2), (inner, depth, board), mat, yaw=pose.yaw)
        if i < levels and rng.random() < 0.85:
            add_books_row(
                d,
                rng,
                pal,
                pose.moved(0, 0, z + board),
                inner,
                spacing - board - 0.02,
                depth,
                uniform(rng, 0.25, 0.9),
                max_books=14,
            )
    if height < 1.3:
        return Surface(
            Pose(pose.x, pose.y, pose.z + height + board * 0.5, pose.yaw), width / 2, depth / 2
        )
    return None


def add_floor_lamp(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A floor lamp: base disc, thin pole (0.8–1.8 cm radius), shade (drum, globe or arc)."""
    metal = pal.get("metal")
    shade = pal.get("shade")
    base_r = uniform(rng, 0.1, 0.18)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, uniform(rng, 0.02, 0.04)), base_r, metal)
    pole_r = uniform(rng, 0.008, 0.018)
    height = uniform(rng, 1.2, 1.7)
    d.cylinder(pose.point(0, 0, 0.02), pose.point(0, 0, height), pole_r, metal)
    variant = rng.random()
    if variant < 0.5:  # drum shade around the pole top
        r, h = uniform(rng, 0.12, 0.22), uniform(rng, 0.18, 0.3)
        d.cylinder(pose.point(0, 0, height - h * 0.6), pose.point(0, 0, height + h * 0.4), r, shade)
    elif variant < 0.75:  # globe
        d.sphere(pose.point(0, 0, height + 0.1), uniform(rng, 0.1, 0.18), shade)
    else:  # arc arm with hanging shade
        reach = uniform(rng, 0.4, 0.9)
        top = height + uniform(rng, 0.1, 0.3)
        d.cylinder(pose.point(0, 0, height), pose.point(reach * 0.5, 0, top), pole_r, metal)
        d.cylinder(pose.point(reach * 0.5, 0, top), pose.point(reach, 0, top - 0.1), pole_r, metal)
        r = uniform(rng, 0.1, 0.2)
        d.cylinder(pose.point(reach, 0, top - 0.32), pose.point(reach, 0, top - 0.1), r, shade)


def add_hanging_lamp(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, ceiling: float
) -> None:
    """A pendant lamp: thin cable (3–6 mm) from the ceiling at ``ceiling`` metres and a shade."""
    drop = uniform(rng, 0.3, min(1.2, ceiling - 1.9)) if ceiling > 2.3 else 0.3
    z = ceiling - drop
    d.cylinder(
        pose.point(0, 0, z), pose.point(0, 0, ceiling), uniform(rng, 0.003, 0.006), pal.get("metal")
    )
    d.cylinder(pose.point(0, 0, ceiling - 0.03), pose.point(0, 0, ceiling), 0.06, pal.get("metal"))
    shade = pal.get("shade")
    if rng.random() < 0.5:
        r = uniform(rng, 0.12, 0.3)
        d.cylinder(pose.point(0, 0, z - uniform(rng, 0.1, 0.25)), pose.point(0, 0, z), r, shade)
    else:
        r = uniform(rng, 0.1, 0.22)
        d.ellipsoid(pose.point(0, 0, z - r * 0.6), (r, r, r * 0.7), shade)


def add_sofa(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A sofa of boxes (base, cushions, back, arms) on short legs; back at local ``-y``."""
    length, depth = uniform(rng, 1.4, 2.4), uniform(rng, 0.8, 1.0)
    fabric = pal.get("fabric")
    leg_h = uniform(rng, 0.06, 0.14)
    base_h = uniform(rng, 0.2, 0.28)
    add_legs(d, pose, length / 2 - 0.06, depth / 2 - 0.06, leg_h, 0.02, pal.get("wood"))
    d.box(pose.point(0, 0, leg_h + base_h / 2), (length, depth, base_h), fabric, yaw=pose.yaw)
    arm_w = uniform(rng, 0.12, 0.25)
    arm_h = uniform(rng, 0.55, 0.7)
    back_t = uniform(rng, 0.15, 0.25)
    for sx in (-1.0, 1.0):
        d.box(
            pose.point(sx * (length / 2 - arm_w / 2), 0, leg_h + arm_h / 2),
            (arm_w, depth, arm_h),
            fabric,
            yaw=pose.yaw,
        )
    back_h = uniform(rng, 0.75, 0.95)
    d.box(
        pose.point(0, -depth / 2 + back_t / 2, leg_h + back_h / 2),
        (length - 2 * arm_w, back_t, back_h),
        fabric,
        yaw=pose.yaw,
    )
    n = int(rng.integers(2, 4))
    cw = (length - 2 * arm_w) / n
    ch = uniform(rng, 0.1, 0.16)
    for i in range(n):
        x = -length / 2 + arm_w + cw * (i + 0.5)
        d.box(
            pose.point(x, back_t / 2, leg_h + base_h + ch / 2),
            (cw - 0.015, depth - back_t - 0.02, ch),
            fabric,
            yaw=pose.yaw,
        )
    for _ in range(int(rng.integers(0, 3))):  # throw pillows
        x = uniform(rng, -length / 2 + arm_w + 0.2, length / 2 - arm_w - 0.2)
        d.ellipsoid(
            pose.point(x, -depth / 2 + back_t + 0.08, leg_h + base_h + ch + 0.18),
            (0.2, 0.07, 0.18),
            pal.get("plastic"),
            yaw=pose.yaw,
        )


def add_cabinet(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> Surface:
    """A cabinet or chest of drawers (body, fronts with gaps, thin handles); back at ``-y``."""
    width, depth, height = uniform(rng, 0.5, 1.5), uniform(rng, 0.35, 0.6), uniform(rng, 0.5, 1.2)
    mat = pal.get("wood")
    front = mat if rng.random() < 0.5 else pal.get("frame")
    leg_h = uniform(rng, 0.08, 0.2) if rng.random() < 0.6 else 0.0
    if leg_h > 0:
        add_legs(
            d,
            pose,
            width / 2 - 0.05,
            depth / 2 - 0.05,
            leg_h,
            uniform(rng, 0.012, 0.025),
            pal.get("metal"),
            uniform(rng, 0.0, 0.03),
        )
    body_h = height - leg_h
    d.box(pose.point(0, 0, leg_h + body_h / 2), (width, depth, body_h), mat, yaw=pose.yaw)
    metal = pal.get("metal")
    gap = 0.006
    if rng.random() < 0.5:  # doors
        n = int(rng.integers(1, 4))
        dw = width / n
        for i in range(n):
            x = -width / 2 + dw * (i + 0.5)
            d.box(
                pose.point(x, depth / 2 + 0.01, leg_h + body_h / 2),
                (dw - gap, 0.02, body_h - gap * 2),
                front,
                yaw=pose.yaw,
            )
            hx = x + (dw / 2 - 0.05) * (1 if i % 2 else -1)
            d.cylinder(
                pose.point(hx, depth / 2 + 0.035, leg_h + body_h * 0.55),
                pose.point(hx, depth / 2 + 0.035, leg_h + body_h * 0.75),
                0.006,
                metal,
            )
    else:  # drawers
        n = int(rng.integers(2, 6))
        dh = body_h / n
        for i in range(n):
            z = leg_h + dh * (i + 0.5)
            d.box(
                pose.point(0, depth / 2 + 0.01, z),
                (width - gap * 2, 0.02, dh - gap),
                front,
                yaw=pose.yaw,
            )
            hw = min(0.25, width * 0.3)
            d.cylinder(
                pose.point(-hw / 2, depth / 2 + 0.035, z),
                pose.point(hw / 2, depth / 2 + 0.035, z),
                0.006,
                metal,
            )
    return Surface(Pose(pose.x, pose.y, pose.z + height, pose.yaw), width / 2, depth / 2)


def add_plant(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, scale: float = 1.0
) -> None:
    """A potted plant: pot, soil, thin stems (3–8 mm) fanning out, flat ellipsoid leaves.

    ``scale`` shrinks the plant (0.3 for a tabletop plant).
    """
    pot_r, pot_h = uniform(rng, 0.1, 0.2) * scale, uniform(rng, 0.2, 0.4) * scale
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, pot_h), pot_r, pal.get("pot"))
    d.cylinder(
        pose.point(0, 0, pot_h),
        pose.point(0, 0, pot_h + 0.004),
        pot_r * 0.88,
        Material("noise", (0.25, 0.18, 0.12), 0.1),
    )
    stem_mat, leaf_mat = pal.get("stem"), pal.get("leaves")
    for _ in range(int(rng.integers(3, 9))):
        az = uniform(rng, -math.pi, math.pi)
        elev = uniform(rng, 0.9, 1.45)
        length = uniform(rng, 0.3, 1.0) * scale
        base = pose.point(0.4 * pot_r * math.cos(az), 0.4 * pot_r * math.sin(az), pot_h)
        direction = pose.direction(
            math.cos(elev) * math.cos(az), math.cos(elev) * math.sin(az), math.sin(elev)
        )
        tip = base + length * direction
        d.cylinder(base, tip, max(uniform(rng, 0.003, 0.008) * math.sqrt(scale), 0.002), stem_mat)
        for k in range(int(rng.integers(1, 4))):
            at = tip if k == 0 else base + uniform(rng, 0.4, 0.9) * length * direction
            a = uniform(rng, 0.06, 0.15) * scale
            leaf_az = az + uniform(rng, -0.6, 0.6)
            centre = at + 0.7 * a * pose.direction(math.cos(leaf_az), math.sin(leaf_az), 0.0)
            d.ellipsoid(
                centre,
                (a, a * uniform(rng, 0.25, 0.5), max(0.012 * scale, 0.004)),
                leaf_mat,
                yaw=pose.yaw + leaf_az,
            )


def add_coat_rack(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A standing coat rack: splayed feet, thin pole, thin hooks angled upwards."""
    mat = pal.get("wood") if rng.random() < 0.5 else pal.get("metal")
    height = uniform(rng, 1.6, 1.85)
    r = uniform(rng, 0.012, 0.02)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, height), r, mat)
    n_feet = int(rng.integers(3, 5))
    for i in range(n_feet):
        a = 2 * math.pi * i / n_feet
        d.cylinder(
            pose.point(0, 0, 0.25),
            pose.point(0.28 * math.cos(a), 0.28 * math.sin(a), 0.0),
            r * 0.8,
            mat,
        )
    for i in range(int(rng.integers(4, 7))):
        a = 2 * math.pi * i / 6 + uniform(rng, -0.2, 0.2)
        z = height - 0.1 - 0.12 * (i % 2)
        d.cylinder(
            pose.point(0, 0, z),
            pose.point(0.15 * math.cos(a), 0.15 * math.sin(a), z + 0.09),
            r * 0.5,
            mat,
        )
    if rng.random() < 0.5:  # a coat hanging from one hook
        d.ellipsoid(pose.point(0.18, 0, height - 0.55), (0.12, 0.2, 0.4), pal.get("fabric"))


def add_box_stack(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, max_size: float = 0.6
) -> float:
    """One to three stacked boxes (each its own instance); returns the footprint radius."""
    z = 0.0
    size0 = uniform(rng, 0.2, max_size)
    mat = Material("plain", (0.72, 0.55, 0.36), 0.5) if rng.random() < 0.5 else pal.get("plastic")
    size = size0
    for _ in range(int(rng.integers(1, 4))):
        h = size * uniform(rng, 0.5, 1.0)
        d.box(
            pose.point(0, 0, z + h / 2),
            (size, size * uniform(rng, 0.7, 1.0), h),
            mat,
            yaw=pose.yaw + uniform(rng, -0.3, 0.3),
        )
        d.new_part()
        z += h
        size *= uniform(rng, 0.6, 0.95)
    return size0 * 0.75


def add_ball(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    pose: Pose,
    r_range: tuple[float, float] = (0.08, 0.25),
) -> float:
    """A ball resting on the surface at ``pose``; returns its radius (metres)."""
    r = uniform(rng, *r_range)
    d.sphere(pose.point(0, 0, r), r, pal.get("plastic"))
    return r


def add_rug(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A thin (5–15 mm) rectangular rug on the floor."""
    thick = uniform(rng, 0.005, 0.015)
    d.box(
        pose.point(0, 0, thick / 2),
        (uniform(rng, 1.2, 2.5), uniform(rng, 0.8, 1.8), thick),
        pal.get("fabric"),
        yaw=pose.yaw,
    )


def add_wall_shelf(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, wall: Wall, s: float, z: float
) -> float:
    """A wall-mounted board on two thin brackets, with books; returns its width (metres)."""
    width, depth, thick = (
        uniform(rng, 0.6, 1.2),
        uniform(rng, 0.16, 0.25),
        uniform(rng, 0.018, 0.03),
    )
    pose = wall.pose(s, 0.0, z)
    mat = pal.get("wood")
    d.box(pose.point(0, depth / 2, thick / 2), (width, depth, thick), mat, yaw=pose.yaw)
    metal = pal.get("metal")
    for sx in (-1.0, 1.0):
        x = sx * (width / 2 - 0.1)
        d.box(pose.point(x, 0.005, -0.08), (0.02, 0.01, 0.16), metal, yaw=pose.yaw)
        d.cylinder(pose.point(x, 0.01, -0.15), pose.point(x, depth * 0.8, -0.005), 0.006, metal)
    add_books_row(
        d,
        rng,
        pal,
        pose.moved(0, depth / 2, thick),
        width - 0.05,
        uniform(rng, 0.2, 0.32),
        depth,
        uniform(rng, 0.3, 0.9),
        max_books=12,
    )
    return width
