"""Small objects for table tops and shelves: mugs, bottles, books, fruit, pencils, lamps, cables.

Every ``add_*`` function writes one object standing on a horizontal surface at
``pose`` (``pose.z`` is the surface height) into a :class:`~.draft.Draft` and returns
the radius of its floor footprint in metres (0 for objects that may lie under others).
Material roles used are listed in :data:`PROP_ROLES`. Units: metres, radians.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np

from sharpdepth.synth.scene import Material

from .common import BRIGHTS, METALS, WHITES, MaterialPalette, MaterialRole, Pose, uniform
from .draft import Draft
from .furniture import Surface, add_plant, tilted

LOGGER = logging.getLogger(__name__)

#: Material roles used by the props (in addition to "book", "wood", "metal", "plastic").
PROP_ROLES: dict[str, MaterialRole] = {
    "ceramic": MaterialRole(
        ("plain", "stripes", "marble"), WHITES + BRIGHTS[:3], (0.05, 0.15), variants=3
    ),
    "glass": MaterialRole(
        ("plain",),
        ((0.75, 0.85, 0.8), (0.35, 0.55, 0.3), (0.45, 0.3, 0.15)),
        (0.1, 0.2),
        variants=2,
    ),
    "fruit": MaterialRole(
        ("plain", "noise"),
        ((0.8, 0.1, 0.1), (0.95, 0.55, 0.1), (0.95, 0.85, 0.2), (0.45, 0.7, 0.2)),
        (0.03, 0.08),
        variants=3,
    ),
    "cable": MaterialRole(("plain",), ((0.08, 0.08, 0.08), (0.92, 0.92, 0.9)), (0.1, 0.2)),
    "screen": MaterialRole(
        ("photo_astronaut", "photo_rocket", "plain"), ((0.9, 0.9, 0.9),), (0.3, 0.35)
    ),
}

_COFFEE = Material("photo_coffee", (1.0, 1.0, 1.0), 0.08)


def add_mug(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A mug (cylinder, coffee disc on top, C-shaped handle of three thin rods)."""
    r, h = uniform(rng, 0.035, 0.045), uniform(rng, 0.08, 0.11)
    mat = pal.get("ceramic")
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, h), r, mat)
    if rng.random() < 0.6:
        d.cylinder(pose.point(0, 0, h), pose.point(0, 0, h + 0.002), r * 0.85, _COFFEE)
    hr = uniform(rng, 0.004, 0.007)
    reach = uniform(rng, 0.02, 0.035)
    pts = [
        (r - 0.004, 0.25 * h),
        (r + reach, 0.3 * h),
        (r + reach, 0.72 * h),
        (r - 0.004, 0.78 * h),
    ]
    for (x0, z0), (x1, z1) in itertools.pairwise(pts):
        d.cylinder(pose.point(x0, 0, z0), pose.point(x1, 0, z1), hr, mat)
    return r + reach


def add_pencil_cup(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A cup holding 2–6 pencils/brushes (3–5 mm radius) sticking out at angles."""
    r, h = uniform(rng, 0.03, 0.045), uniform(rng, 0.08, 0.12)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, h), r, pal.get("ceramic"))
    for _ in range(int(rng.integers(2, 7))):
        az, tilt = uniform(rng, -math.pi, math.pi), uniform(rng, 0.05, 0.35)
        length = uniform(rng, 0.14, 0.2)
        base = pose.point(0.4 * r * math.cos(az), 0.4 * r * math.sin(az), h * 0.5)
        direction = pose.direction(
            math.sin(tilt) * math.cos(az), math.sin(tilt) * math.sin(az), math.cos(tilt)
        )
        d.cylinder(
            base,
            base + length * direction,
            uniform(rng, 0.003, 0.005),
            pal.get("plastic" if rng.random() < 0.5 else "wood"),
        )
    return r


def add_glass(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A drinking glass (plain cylinder), sometimes with a thin straw."""
    r, h = uniform(rng, 0.03, 0.04), uniform(rng, 0.09, 0.15)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, h), r, pal.get("glass"))
    if rng.random() < 0.3:
        d.cylinder(
            pose.point(0.01, 0, h * 0.5),
            pose.point(0.025, 0.005, h + 0.07),
            0.003,
            pal.get("plastic"),
        )
    return r


def add_bottle(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A bottle: body cylinder, ellipsoid shoulder, thin neck and cap."""
    r, h = uniform(rng, 0.03, 0.045), uniform(rng, 0.14, 0.22)
    mat = pal.get("glass")
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, h), r, mat)
    shoulder = r * uniform(rng, 0.6, 1.2)
    d.ellipsoid(pose.point(0, 0, h), (r, r, shoulder), mat)
    neck_r, neck_l = uniform(rng, 0.011, 0.016), uniform(rng, 0.05, 0.09)
    top = h + shoulder * 0.8 + neck_l
    d.cylinder(pose.point(0, 0, h + shoulder * 0.8), pose.point(0, 0, top), neck_r, mat)
    d.cylinder(
        pose.point(0, 0, top),
        pose.point(0, 0, top + uniform(rng, 0.012, 0.02)),
        neck_r + 0.002,
        pal.get("plastic"),
    )
    return r


def add_book_pile(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """One to four books lying in a pile (each its own instance), or an open book."""
    length, width = uniform(rng, 0.15, 0.3), uniform(rng, 0.1, 0.22)
    if rng.random() < 0.2:  # open book: two thin halves in a shallow V
        ang = uniform(rng, 0.05, 0.2)
        t = uniform(rng, 0.008, 0.02)
        for side in (-1.0, 1.0):  # spine along local x, halves rising towards +-y
            centre = pose.point(
                0, side * width / 2 * math.cos(ang), t / 2 + width / 2 * math.sin(ang)
            )
            d.box(centre, (length, width, t), pal.get("book"), rotation=tilted(pose, side * ang))
        return 0.5 * math.hypot(length, 2 * width)
    z = 0.0
    for _ in range(int(rng.integers(1, 5))):
        t = uniform(rng, 0.015, 0.05)
        d.box(
            pose.point(0, 0, z + t / 2),
            (length, width, t),
            pal.get("book"),
            yaw=pose.yaw + uniform(rng, -0.25, 0.25),
        )
        d.new_part()
        z += t
        length, width = length * uniform(rng, 0.8, 1.05), width * uniform(rng, 0.8, 1.05)
    return 0.5 * math.hypot(length, width)


def add_fruit(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A fruit (sphere, or a pear of two spheres) with a thin stalk, or a plate of fruit."""
    if rng.random() < 0.25:  # plate with fruit
        pr = uniform(rng, 0.1, 0.14)
        d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, 0.012), pr, pal.get("ceramic"))
        for _ in range(int(rng.integers(1, 4))):
            r = uniform(rng, 0.025, 0.045)
            a, rad = uniform(rng, -math.pi, math.pi), uniform(rng, 0.0, pr - r)
            d.new_part()
            d.sphere(
                pose.point(rad * math.cos(a), rad * math.sin(a), 0.012 + r), r, pal.get("fruit")
            )
        d.new_part()
        return pr
    r = uniform(rng, 0.03, 0.05)
    mat = pal.get("fruit")
    d.sphere(pose.point(0, 0, r), r, mat)
    top = 2 * r
    if rng.random() < 0.3:  # pear
        r2 = r * uniform(rng, 0.55, 0.75)
        d.sphere(pose.point(0, 0, r * 1.55 + r2 * 0.3), r2, mat)
        top = r * 1.55 + r2 * 1.3
    d.cylinder(
        pose.point(0, 0, top - 0.005),
        pose.point(0.004, 0, top + 0.015),
        0.0025,
        Material("plain", (0.35, 0.25, 0.12), 0.1),
    )
    return r


def add_sticks(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """Pencils or chopsticks (3–5 mm radius) lying on the surface, sometimes propped up."""
    n = 2 if rng.random() < 0.5 else int(rng.integers(1, 4))
    length = uniform(rng, 0.15, 0.24)
    for i in range(n):
        r = uniform(rng, 0.003, 0.005)
        off = (i - (n - 1) / 2) * uniform(rng, 0.01, 0.04)
        yaw_i = uniform(rng, -0.12, 0.12)
        lift = uniform(rng, 0.01, 0.04) if rng.random() < 0.25 else 0.0  # propped on something
        p0 = pose.point(-length / 2 * math.cos(yaw_i), off - length / 2 * math.sin(yaw_i), r)
        p1 = pose.point(length / 2 * math.cos(yaw_i), off + length / 2 * math.sin(yaw_i), r + lift)
        d.cylinder(p0, p1, r, pal.get("wood") if rng.random() < 0.6 else pal.get("plastic"))
    return 0.0


def add_small_box(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A small box (5–15 cm), sometimes with a lid slightly larger than the body."""
    sx, sy, sz = uniform(rng, 0.05, 0.15), uniform(rng, 0.05, 0.15), uniform(rng, 0.03, 0.12)
    mat = pal.get("plastic") if rng.random() < 0.6 else pal.get("book")
    d.box(pose.point(0, 0, sz / 2), (sx, sy, sz), mat, yaw=pose.yaw)
    if rng.random() < 0.4:
        d.box(pose.point(0, 0, sz + 0.006), (sx + 0.006, sy + 0.006, 0.012), mat, yaw=pose.yaw)
    return 0.5 * math.hypot(sx, sy)


def add_desk_lamp(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """An articulated desk lamp: base, two thin arm segments with spring rods, angled head."""
    metal = pal.get("metal") if rng.random() < 0.5 else pal.get("plastic")
    base_r = uniform(rng, 0.06, 0.09)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, uniform(rng, 0.015, 0.03)), base_r, metal)
    arm_r = uniform(rng, 0.004, 0.008)
    a1, l1 = uniform(rng, 0.9, 1.4), uniform(rng, 0.2, 0.35)
    a2, l2 = uniform(rng, -0.6, 0.3), uniform(rng, 0.2, 0.3)
    j0 = pose.point(0, 0, 0.03)
    j1 = j0 + l1 * pose.direction(math.cos(a1), 0, math.sin(a1))
    j2 = j1 + l2 * pose.direction(math.cos(a2), 0, math.sin(a2))
    for p, q in ((j0, j1), (j1, j2)):
        d.cylinder(p, q, arm_r, metal)
        side = pose.direction(0, 0.015, 0)
        d.cylinder(p + side, q + side, 0.0018, metal)  # spring rod
    d.sphere(j1, arm_r * 2.0, metal)
    head_dir = pose.direction(0.5, 0, -1.0)
    head_r = uniform(rng, 0.04, 0.07)
    d.cylinder(
        j2, j2 + uniform(rng, 0.08, 0.12) * head_dir / np.linalg.norm(head_dir), head_r, metal
    )
    return base_r


def add_laptop(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """An open laptop: thin base and a screen tilted back 10–25 degrees past vertical."""
    w, dep, t = uniform(rng, 0.3, 0.36), uniform(rng, 0.21, 0.25), uniform(rng, 0.012, 0.02)
    shell = pal.get("metal")
    d.box(pose.point(0, 0, t / 2), (w, dep, t), shell, yaw=pose.yaw)
    tilt = uniform(rng, math.radians(10), math.radians(25))
    rot = tilted(pose, tilt)
    h = dep * uniform(rng, 0.9, 1.0)
    centre = pose.point(0, -dep / 2 - math.sin(tilt) * h / 2, t + math.cos(tilt) * h / 2)
    d.box(centre, (w, 0.006, h), shell, rotation=rot)
    front = centre + rot @ np.array([0.0, 0.004, 0.0])
    d.box(front, (w * 0.92, 0.002, h * 0.88), pal.get("screen"), rotation=rot)
    return 0.5 * math.hypot(w, dep)


def add_phone(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A phone or remote: a thin box."""
    w, length = uniform(rng, 0.05, 0.08), uniform(rng, 0.12, 0.2)
    d.box(
        pose.point(0, 0, 0.005), (w, length, 0.01), Material("plain", METALS[3], 1.0), yaw=pose.yaw
    )
    return 0.0


def add_vase(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A small potted plant / vase with thin stems."""
    add_plant(d, rng, pal, pose, scale=uniform(rng, 0.3, 0.5))
    return 0.07


def add_cable(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, surface: Surface, start: Pose
) -> float:
    """A thin cable (2–4 mm radius) wandering over ``surface``, dropping to the floor at its edge.

    Args:
        d: draft.
        rng: generator.
        pal: materials (role "cable").
        surface: the table top; where the cable leaves it, it drops to the floor at
            world ``z = 0``.
        start: start point and initial heading.
    """
    r = uniform(rng, 0.002, 0.004)
    mat = pal.get("cable")
    heading = start.yaw
    p = start.point(0, 0, r)
    for _ in range(int(rng.integers(6, 16))):
        heading += uniform(rng, -0.6, 0.6)
        step = uniform(rng, 0.03, 0.09)
        q = p + step * np.array([math.cos(heading), math.sin(heading), 0.0])
        local = _surface_local(surface, q)
        if abs(local[0]) > surface.half_length or abs(local[1]) > surface.half_width:
            d.cylinder(p, q, r, mat)
            floor = np.array([q[0], q[1], r])
            d.cylinder(q, floor + np.array([0.02, 0.0, 0.0]), r, mat)
            break
        d.cylinder(p, q, r, mat)
        p = q
    return 0.0


def _surface_local(surface: Surface, p: np.ndarray) -> tuple[float, float]:
    """``p``'s coordinates in the surface frame (metres along its local x and y)."""
    dx, dy = p[0] - surface.pose.x, p[1] - surface.pose.y
    c, s = math.cos(surface.pose.yaw), math.sin(surface.pose.yaw)
    return c * dx + s * dy, -s * dx + c * dy


#: Table-top prop makers by name, with default sampling weights.
PROP_WEIGHTS: dict[str, float] = {
    "mug": 2.0,
    "pencil_cup": 1.0,
    "glass": 1.0,
    "bottle": 1.5,
    "books": 1.5,
    "fruit": 1.5,
    "sticks": 1.5,
    "small_box": 1.0,
    "desk_lamp": 0.5,
    "laptop": 0.4,
    "phone": 0.5,
    "vase": 0.7,
}

PROPS = {
    "mug": add_mug,
    "pencil_cup": add_pencil_cup,
    "glass": add_glass,
    "bottle": add_bottle,
    "books": add_book_pile,
    "fruit": add_fruit,
    "sticks": add_sticks,
    "small_box": add_small_box,
    "desk_lamp": add_desk_lamp,
    "laptop": add_laptop,
    "phone": add_phone,
    "vase": add_vase,
}
