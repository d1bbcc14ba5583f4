"""Outdoor parts: poles, wires, fences, trees, bushes, rocks, logs, cars, signs, buildings.

Every ``add_*`` function writes one object into a :class:`~.draft.Draft`. Ground-standing
objects take a :class:`~.common.Pose` whose ``z`` is the ground height. Material roles
used are listed in :data:`OUTDOOR_ROLES`. Units: metres, angles in radians.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np

from sharpdepth.synth.scene import Material

from .common import (
    BARKS,
    BRIGHTS,
    FACADE_SCALES,
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
from .draft import Draft, Vec, vec3
from .furniture import tilted

LOGGER = logging.getLogger(__name__)

#: Material roles used by the outdoor parts.
OUTDOOR_ROLES: dict[str, MaterialRole] = {
    "bark": MaterialRole(("bark",), BARKS, (0.3, 0.8), variants=2),
    "leaves": MaterialRole(("leaves", "noise"), GREENS, (0.3, 1.0), variants=3),
    "metal": MaterialRole(("plain", "noise"), METALS, (0.3, 0.8), variants=2),
    "pole": MaterialRole(
        ("concrete", "wood", "plain"), STONES[:2] + WOODS[1:2] + METALS[:1], (0.3, 1.0), variants=2
    ),
    "wire": MaterialRole(("plain",), ((0.06, 0.06, 0.06), (0.2, 0.2, 0.2)), (1.0, 1.0)),
    "car": MaterialRole(
        ("plain", "noise"), BRIGHTS + WHITES[:1] + METALS[:2], (0.5, 1.0), variants=4
    ),
    "tire": MaterialRole(("plain",), ((0.06, 0.06, 0.06),), (1.0, 1.0)),
    "glass": MaterialRole(("window", "plain"), ((0.25, 0.3, 0.35), (0.4, 0.45, 0.5)), (0.8, 1.2)),
    "sign": MaterialRole(
        ("plain", "stripes", "checker"),
        ((0.85, 0.1, 0.1), (0.1, 0.3, 0.8), (0.95, 0.95, 0.95), (0.95, 0.8, 0.1)),
        (0.3, 0.6),
        variants=3,
    ),
    "fence": MaterialRole(
        ("wood", "plain", "noise"), WOODS[:2] + METALS[:2] + WHITES[:1], (0.3, 0.8), variants=2
    ),
    "stone": MaterialRole(
        ("concrete", "noise", "photo_gravel", "marble"), STONES, (0.3, 1.2), variants=3
    ),
    "wood": MaterialRole(("wood", "bark"), WOODS, (0.3, 0.8), variants=2),
    "facade": MaterialRole(
        ("facade", "facade", "facade", "bricks", "photo_brick", "plaster", "concrete"),
        PASTELS + WHITES[:1] + STONES[:2],
        (3.0, 6.0),
        scales=FACADE_SCALES,
        variants=4,
    ),
    "awning": MaterialRole(("stripes", "fabric", "plain"), BRIGHTS, (0.4, 1.0), variants=2),
    "plastic": MaterialRole(("plain", "noise"), BRIGHTS, (0.3, 0.6), variants=2),
}


# --- poles and wires -----------------------------------------------------------------------


def add_wire(
    d: Draft, p0: Vec, p1: Vec, sag: float, radius: float, mat: Material, segments: int = 10
) -> None:
    """A hanging wire from ``p0`` to ``p1`` as a chain of thin cylinders on a parabola.

    Args:
        d: draft.
        p0: first attachment point, metres.
        p1: second attachment point.
        sag: how far the midpoint hangs below the chord, metres.
        radius: wire radius (1–2 cm for power lines).
        mat: material.
        segments: number of straight pieces.
    """
    a, b = vec3(p0), vec3(p1)
    ts = np.linspace(0.0, 1.0, segments + 1)
    pts = a[None, :] + ts[:, None] * (b - a)[None, :]
    pts[:, 2] -= 4.0 * sag * ts * (1.0 - ts)
    for q0, q1 in itertools.pairwise(pts):
        d.cylinder(q0, q1, radius, mat)


def add_pole(
    d: Draft, pose: Pose, height: float, radius: float, mat: Material, taper: float = 0.8
) -> np.ndarray:
    """A vertical pole in two tapering pieces; returns its top point."""
    mid = pose.point(0, 0, height * 0.5)
    top = pose.point(0, 0, height)
    d.cylinder(pose.point(0, 0, 0), mid, radius, mat)
    d.cylinder(mid, top, radius * taper, mat)
    return top


def add_utility_pole(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose
) -> list[np.ndarray]:
    """A utility pole with one or two crossarms and insulators; returns the wire attachment points.

    The crossarms run along the pose's local ``y``.
    """
    height = uniform(rng, 7.0, 10.0)
    add_pole(d, pose, height, uniform(rng, 0.1, 0.15), pal.get("pole"), 0.75)
    wood, metal = pal.get("wood"), pal.get("metal")
    attach = []
    for k in range(1 if rng.random() < 0.5 else 2):
        z = height - 0.3 - 1.0 * k
        half = uniform(rng, 0.6, 1.2)
        d.box(pose.point(0, 0, z), (0.1, 2 * half, 0.1), wood, yaw=pose.yaw)
        for y in np.linspace(-half + 0.1, half - 0.1, int(rng.integers(2, 4))):
            d.cylinder(
                pose.point(0, float(y), z + 0.05), pose.point(0, float(y), z + 0.15), 0.03, metal
            )
            attach.append(pose.point(0, float(y), z + 0.15))
    if rng.random() < 0.3:  # transformer can
        d.cylinder(
            pose.point(0.35, 0, height - 2.8), pose.point(0.35, 0, height - 1.9), 0.25, metal
        )
    return attach


def add_lamp_post(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A street lamp: plinth, pole, arm reaching along local ``+x``, lamp head."""
    metal = pal.get("metal")
    height = uniform(rng, 4.0, 8.0)
    r = uniform(rng, 0.05, 0.1)
    d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, 0.5), r * 1.8, metal)
    top = add_pole(d, pose, height, r, metal, 0.7)
    if rng.random() < 0.3:  # lantern on top
        d.box(top + np.array([0, 0, 0.25]), (0.3, 0.3, 0.5), pal.get("glass"), yaw=pose.yaw)
        return
    reach = uniform(rng, 0.8, 2.5)
    rise = uniform(rng, 0.0, 0.6)
    elbow = pose.point(reach * 0.4, 0, height + rise)
    end = pose.point(reach, 0, height + rise * 0.8)
    d.cylinder(top, elbow, r * 0.6, metal)
    d.cylinder(elbow, end, r * 0.6, metal)
    d.box(end - np.array([0, 0, 0.08]), (0.55, 0.25, 0.12), metal, yaw=pose.yaw)


def add_sign(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A road sign: thin pole (3–4 cm) and a square, round or twin street-name panel."""
    height = uniform(rng, 2.2, 3.0)
    add_pole(d, pose, height, uniform(rng, 0.03, 0.04), pal.get("metal"), 1.0)
    mat = pal.get("sign")
    kind = rng.random()
    if kind < 0.4:
        s = uniform(rng, 0.5, 0.8)
        d.box(pose.point(0, 0.04, height - s / 2), (s, 0.02, s), mat, yaw=pose.yaw)
    elif kind < 0.75:
        r = uniform(rng, 0.3, 0.4)
        d.cylinder(pose.point(0, 0.03, height - r), pose.point(0, 0.05, height - r), r, mat)
    else:
        for k in range(2):  # two street-name plates at right angles
            yaw = pose.yaw + k * math.pi / 2
            offset = 0.37 * np.array([math.cos(yaw), math.sin(yaw), 0.0])
            d.box(
                pose.point(0, 0, height - 0.12 - 0.2 * k) + offset, (0.7, 0.02, 0.15), mat, yaw=yaw
            )


def add_bollards(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, n: int
) -> float:
    """A row of ``n`` bollards along local ``x``; returns the row length (metres)."""
    spacing, r, h = uniform(rng, 1.2, 1.8), uniform(rng, 0.05, 0.1), uniform(rng, 0.7, 1.0)
    mat = pal.get("metal") if rng.random() < 0.6 else pal.get("stone")
    for i in range(n):
        x = (i - (n - 1) / 2) * spacing
        d.cylinder(pose.point(x, 0, 0), pose.point(x, 0, h), r, mat)
        if rng.random() < 0.5:
            d.sphere(pose.point(x, 0, h), r, mat)
    return spacing * max(n - 1, 0)


def add_traffic_light(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, reach: float
) -> None:
    """A traffic light: pole, arm of ``reach`` metres along local ``+x``, signal heads."""
    metal = pal.get("metal")
    height = uniform(rng, 5.0, 6.0)
    top = add_pole(d, pose, height, 0.1, metal, 0.8)
    end = pose.point(reach, 0, height - 0.2)
    d.cylinder(top - np.array([0, 0, 0.2]), end, 0.07, metal)
    d.cylinder(
        pose.point(0, 0, height - 1.5), pose.point(reach * 0.4, 0, height - 0.2), 0.03, metal
    )
    dark = Material("plain", (0.1, 0.1, 0.1), 1.0)
    for x in (reach * 0.6, reach):
        d.box(pose.point(x, 0, height - 0.7), (0.3, 0.3, 0.9), dark, yaw=pose.yaw)
    d.box(pose.point(0, 0.25, 2.8), (0.3, 0.3, 0.9), dark, yaw=pose.yaw)


# --- fences ---------------------------------------------------------------------------------


def add_fence(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    start: Vec,
    end: Vec,
    kind: str = "rail",
) -> None:
    """A fence from ``start`` to ``end`` (ground points): posts plus rails or pickets.

    Args:
        d: draft.
        rng: generator.
        pal: materials (role "fence").
        start: ground point, metres.
        end: ground point.
        kind: "rail" (posts + 2–3 rails), "picket" (rails + dense thin pickets) or
            "railing" (thin metal posts, top rail, thin balusters).
    """
    a, b = vec3(start), vec3(end)
    length = float(np.linalg.norm((b - a)[:2]))
    if length < 0.5:
        return
    mat = pal.get("fence")
    height = uniform(rng, 0.9, 1.4)
    post_r = uniform(rng, 0.015, 0.025) if kind == "railing" else uniform(rng, 0.03, 0.06)
    n_posts = max(2, math.ceil(length / uniform(rng, 1.5, 2.5)) + 1)
    for t in np.linspace(0.0, 1.0, n_posts):
        p = a + t * (b - a)
        d.cylinder(p, p + np.array([0, 0, height]), post_r, mat)
    rail_r = post_r * uniform(rng, 0.5, 0.8)
    rails = (
        (height - 0.05,)
        if kind == "railing"
        else tuple(np.linspace(0.3, height - 0.1, int(rng.integers(2, 4))))
    )
    up = np.array([0.0, 0.0, 1.0])
    for z in rails:
        d.cylinder(a + z * up, b + z * up, rail_r, mat)
    if kind in ("picket", "railing"):
        spacing = uniform(rng, 0.12, 0.2) if kind == "picket" else uniform(rng, 0.1, 0.16)
        n = min(int(length / spacing), 40)
        thin = uniform(rng, 0.008, 0.012) if kind == "railing" else uniform(rng, 0.012, 0.02)
        top = height - 0.05 if kind == "railing" else height + 0.1
        for t in (np.arange(n) + 0.5) / n:
            p = a + t * (b - a)
            d.cylinder(p + 0.05 * up, p + top * up, thin, mat)


# --- vegetation and ground clutter ------------------------------------------------------------


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector with ``azimuth`` (from +x) and ``elevation`` (above horizontal), radians."""
    ce = math.cos(elevation)
    return np.array([ce * math.cos(azimuth), ce * math.sin(azimuth), math.sin(elevation)])


def _add_branch(
    d: Draft,
    rng: np.random.Generator,
    start: np.ndarray,
    direction: np.ndarray,
    length: float,
    radius: float,
    bark: Material,
    depth: int,
    tips: list[tuple[np.ndarray, float]],
) -> None:
    """A branch (two slightly bent pieces) with ``depth`` more levels of sub-branches.

    Appends ``(tip point, branch length)`` of every terminal twig to ``tips``.
    """
    bend = direction + 0.25 * rng.normal(size=3)
    bend[2] += 0.1
    mid = start + 0.5 * length * direction
    tip = mid + 0.5 * length * bend / np.linalg.norm(bend)
    d.cylinder(start, mid, radius, bark)
    d.cylinder(mid, tip, max(radius * 0.7, 0.004), bark)
    if depth <= 0:
        tips.append((tip, length))
        return
    for _ in range(int(rng.integers(1, 4 if depth == 1 else 3))):
        t = uniform(rng, 0.35, 0.9)
        at = start + t * (tip - start)
        az = math.atan2(direction[1], direction[0]) + uniform(rng, 0.5, 1.2) * (
            1 if rng.random() < 0.5 else -1
        )
        elev = math.asin(float(np.clip(direction[2], -1, 1))) + uniform(rng, -0.3, 0.4)
        _add_branch(
            d,
            rng,
            at,
            _direction(az, elev),
            length * uniform(rng, 0.35, 0.6),
            max(radius * 0.5, 0.004),
            bark,
            depth - 1,
            tips,
        )
    tips.append((tip, length))


def add_tree(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    pose: Pose,
    height: float,
    kind: str = "deciduous",
) -> float:
    """A tree: bent tapering trunk, branches (thin cylinders in many directions), foliage.

    Args:
        d: draft.
        rng: generator.
        pal: materials ("bark", "leaves").
        pose: ground point at the trunk base.
        height: total height, metres.
        kind: "deciduous" (branches + leaf clusters at the tips), "bare" (no leaves,
            one more level of twigs), "conifer" (straight trunk, whorls of thin drooping
            branches, stacked flat foliage layers) or "sapling" (thin stem, few leaves).

    Returns:
        the trunk radius at the base, metres.
    """
    bark, leaves = pal.get("bark"), pal.get("leaves")
    trunk_r = max(height * uniform(rng, 0.012, 0.025), 0.02)
    if kind == "sapling":
        trunk_r = uniform(rng, 0.01, 0.025)
    base = pose.point(0, 0, -0.1)
    if kind == "conifer":
        top = pose.point(0, 0, height)
        d.cylinder(base, pose.point(0, 0, height * 0.5), trunk_r, bark)
        d.cylinder(pose.point(0, 0, height * 0.5), top, trunk_r * 0.5, bark)
        n_whorls = int(rng.integers(4, 9))
        crown0 = uniform(rng, 0.15, 0.4) * height
        for i in range(n_whorls):
            z = crown0 + (height * 0.95 - crown0) * i / max(n_whorls - 1, 1)
            spread = (height - z) * uniform(rng, 0.3, 0.45) + 0.2
            phase = uniform(rng, 0, 2 * math.pi)
            n_br = int(rng.integers(3, 6))
            for j in range(n_br):
                az = phase + 2 * math.pi * j / n_br
                tip = pose.point(0, 0, z) + spread * _direction(az, uniform(rng, -0.35, 0.1))
                d.cylinder(pose.point(0, 0, z), tip, max(trunk_r * 0.18, 0.006), bark)
            if i % 2 == 0:
                d.ellipsoid(
                    pose.point(0, 0, z + 0.2),
                    (spread * 0.8, spread * 0.8, max(0.35, (height - crown0) / n_whorls)),
                    leaves,
                    yaw=phase,
                )
        return trunk_r
    # deciduous / bare / sapling: a bent trunk in 3 pieces
    pts = [base]
    lean = 0.04 * height * rng.normal(size=2)
    for k, frac in enumerate((0.35, 0.7, 1.0 if kind == "sapling" else 0.85)):
        p = pose.point(lean[0] * frac**2, lean[1] * frac**2, height * frac)
        d.cylinder(pts[-1], p, trunk_r * (1.0 - 0.25 * k), bark)
        pts.append(p)
    tips: list[tuple[np.ndarray, float]] = []
    n_branches = {"sapling": int(rng.integers(2, 4)), "bare": int(rng.integers(4, 8))}.get(
        kind, int(rng.integers(3, 7))
    )
    depth = {"sapling": 0, "bare": 2}.get(kind, 1)
    crown0 = uniform(rng, 0.35, 0.6)
    for i in range(n_branches):
        frac = crown0 + (0.85 - crown0) * uniform(rng, 0.0, 1.0)
        start = pose.point(lean[0] * frac**2, lean[1] * frac**2, height * frac)
        az = 2 * math.pi * (i + uniform(rng, -0.3, 0.3)) / n_branches
        elev = uniform(rng, 0.2, 1.0)
        length = height * uniform(rng, 0.25, 0.45)
        r = max(trunk_r * uniform(rng, 0.3, 0.5), 0.005)
        _add_branch(d, rng, start, _direction(az, elev), length, r, bark, depth, tips)
    if kind == "bare":
        return trunk_r
    for tip, length in tips:
        if rng.random() < 0.75:
            s = max(length * uniform(rng, 0.3, 0.55), 0.08)
            d.ellipsoid(
                tip,
                (s, s * uniform(rng, 0.6, 1.0), s * uniform(rng, 0.5, 0.8)),
                leaves,
                yaw=uniform(rng, 0, math.pi),
            )
    if (
        kind == "deciduous" and rng.random() < 0.5
    ):  # a central crown mass, smaller than the branch spread
        s = height * uniform(rng, 0.15, 0.25)
        d.ellipsoid(pts[-1], (s, s, s * 0.8), leaves)
    return trunk_r


def add_bush(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, size: float
) -> None:
    """A bush of 2–6 overlapping ellipsoids of about ``size`` metres, with a few bare twigs."""
    leaves = pal.get("leaves")
    for _ in range(int(rng.integers(2, 7))):
        off = size * 0.5 * rng.normal(size=2)
        r = size * uniform(rng, 0.4, 0.8)
        d.ellipsoid(
            pose.point(off[0], off[1], r * 0.5),
            (r, r * uniform(rng, 0.7, 1.0), r * uniform(rng, 0.6, 0.9)),
            leaves,
            yaw=uniform(rng, 0, math.pi),
        )
    bark = pal.get("bark")
    for _ in range(int(rng.integers(0, 5))):
        az, elev = uniform(rng, -math.pi, math.pi), uniform(rng, 0.3, 1.2)
        start = pose.point(0, 0, size * 0.3)
        d.cylinder(
            start,
            start + size * uniform(rng, 1.0, 1.6) * _direction(az, elev),
            uniform(rng, 0.004, 0.01),
            bark,
        )


def add_rock(
    d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose, size: float
) -> None:
    """One to three half-buried ellipsoid rocks of about ``size`` metres."""
    mat = pal.get("stone")
    for k in range(int(rng.integers(1, 4))):
        r = size * (1.0 if k == 0 else uniform(rng, 0.3, 0.6))
        off = np.zeros(2) if k == 0 else size * rng.normal(size=2)
        radii = (r, r * uniform(rng, 0.5, 0.9), r * uniform(rng, 0.35, 0.7))
        d.ellipsoid(
            pose.point(off[0], off[1], radii[2] * uniform(rng, -0.2, 0.4)),
            radii,
            mat,
            yaw=uniform(rng, 0, math.pi),
        )


def add_log(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A fallen log along local ``x`` with thin broken branch stubs; returns its half length."""
    bark = pal.get("bark")
    r, length = uniform(rng, 0.1, 0.35), uniform(rng, 2.0, 6.0)
    p0, p1 = (
        pose.point(-length / 2, 0, r * 0.85),
        pose.point(length / 2, 0, r * 0.85 + uniform(rng, -0.05, 0.15)),
    )
    d.cylinder(p0, p1, r, bark)
    d.cylinder(p1, p1 + 0.01 * (p1 - p0) / length, r * 0.95, pal.get("wood"))  # cut face
    for _ in range(int(rng.integers(1, 5))):
        t = uniform(rng, 0.15, 0.85)
        at = p0 + t * (p1 - p0)
        az = pose.yaw + uniform(rng, 0.5, 2.6) * (1 if rng.random() < 0.5 else -1)
        d.cylinder(
            at,
            at + uniform(rng, 0.4, 1.5) * _direction(az, uniform(rng, -0.1, 1.0)),
            uniform(rng, 0.01, 0.04),
            bark,
        )
    return length / 2


def add_stump(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> float:
    """A tree stump (short thick cylinder with a cut top); returns its radius."""
    r, h = uniform(rng, 0.15, 0.4), uniform(rng, 0.2, 0.7)
    d.cylinder(pose.point(0, 0, -0.05), pose.point(0, 0, h), r, pal.get("bark"))
    d.cylinder(pose.point(0, 0, h), pose.point(0, 0, h + 0.005), r * 0.92, pal.get("wood"))
    return r


def add_grass_tuft(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A tuft of 5–12 very thin (2–4 mm) grass blades or reeds leaning outwards."""
    mat = pal.get("leaves")
    for _ in range(int(rng.integers(5, 13))):
        az, elev = uniform(rng, -math.pi, math.pi), uniform(rng, 1.0, 1.5)
        base = pose.point(0.05 * float(rng.normal()), 0.05 * float(rng.normal()), 0.0)
        d.cylinder(
            base,
            base + uniform(rng, 0.15, 0.6) * _direction(az, elev),
            uniform(rng, 0.002, 0.004),
            mat,
        )


# --- street furniture and vehicles --------------------------------------------------------------


def add_car(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A parked car along local ``x``: body, cabin, four wheels, mirrors, sometimes an antenna."""
    length, width = uniform(rng, 3.8, 4.8), uniform(rng, 1.7, 1.9)
    paint, glass, tire = pal.get("car"), pal.get("glass"), pal.get("tire")
    clear, body_h = uniform(rng, 0.22, 0.3), uniform(rng, 0.55, 0.75)
    van = rng.random() < 0.15
    d.box(pose.point(0, 0, clear + body_h / 2), (length, width, body_h), paint, yaw=pose.yaw)
    cab_l = length * (0.85 if van else uniform(rng, 0.45, 0.55))
    cab_h = uniform(rng, 0.9, 1.2) if van else uniform(rng, 0.45, 0.6)
    cab_x = -0.1 * length if van else uniform(rng, -0.4, 0.0)
    d.box(
        pose.point(cab_x, 0, clear + body_h + cab_h / 2),
        (cab_l, width * 0.92, cab_h),
        glass,
        yaw=pose.yaw,
    )
    d.box(
        pose.point(cab_x, 0, clear + body_h + cab_h + 0.02),
        (cab_l * 0.9, width * 0.88, 0.04),
        paint,
        yaw=pose.yaw,
    )
    wheel_r = uniform(rng, 0.3, 0.36)
    base = length / 2 - wheel_r - uniform(rng, 0.35, 0.6)
    for sx in (-1.0, 1.0):
        for sy in (-1.0, 1.0):
            d.cylinder(
                pose.point(sx * base, sy * (width / 2 - 0.22), wheel_r),
                pose.point(sx * base, sy * (width / 2 + 0.01), wheel_r),
                wheel_r,
                tire,
            )
    for sy in (-1.0, 1.0):  # mirrors on thin stalks
        root = pose.point(cab_x + cab_l / 2 - 0.1, sy * width / 2, clear + body_h + 0.1)
        tip = pose.point(cab_x + cab_l / 2 - 0.1, sy * (width / 2 + 0.15), clear + body_h + 0.12)
        d.cylinder(root, tip, 0.012, paint)
        d.box(tip, (0.06, 0.14, 0.1), paint, yaw=pose.yaw)
    if rng.random() < 0.4:
        roof = pose.point(cab_x - cab_l * 0.3, 0, clear + body_h + cab_h + 0.04)
        d.cylinder(
            roof,
            roof + np.array([0, 0, uniform(rng, 0.3, 0.7)]) + 0.1 * pose.direction(-1, 0, 0),
            0.003,
            pal.get("metal"),
        )
    if rng.random() < 0.2:  # roof bars
        for sy in (-1.0, 1.0):
            y = sy * width * 0.38
            z = clear + body_h + cab_h + 0.1
            d.cylinder(
                pose.point(cab_x - cab_l * 0.4, y, z),
                pose.point(cab_x + cab_l * 0.4, y, z),
                0.015,
                pal.get("metal"),
            )


def add_bicycle(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A bicycle along local ``x``: two rims of thin segments with spokes, tube frame, handlebar."""
    frame = pal.get("car") if rng.random() < 0.5 else pal.get("metal")
    tire = pal.get("tire")
    r = uniform(rng, 0.32, 0.36)
    base = uniform(rng, 0.5, 0.55)
    hubs = [pose.point(-base, 0, r), pose.point(base, 0, r)]
    n_seg = 10
    for hub in hubs:
        ring = [
            hub + r * pose.direction(math.cos(a), 0, math.sin(a))
            for a in np.linspace(0, 2 * math.pi, n_seg + 1)
        ]
        for q0, q1 in itertools.pairwise(ring):
            d.cylinder(q0, q1, 0.015, tire)
        for a in np.linspace(0, math.pi, 4, endpoint=False):
            off = (r - 0.01) * pose.direction(math.cos(a), 0, math.sin(a))
            d.cylinder(hub - off, hub + off, 0.0015, pal.get("metal"))
    crank = pose.point(0.0, 0, r - 0.02)
    seat = pose.point(-0.2, 0, r + 0.55)
    head = pose.point(base - 0.1, 0, r + 0.6)
    tube = 0.015
    for p, q in (
        (hubs[0], crank),
        (hubs[0], seat),
        (crank, seat),
        (crank, head),
        (seat - np.array([0, 0, 0.05]), head),
        (head, hubs[1]),
    ):
        d.cylinder(p, q, tube, frame)
    d.cylinder(head, head + np.array([0, 0, 0.12]), tube, frame)
    bar = head + np.array([0, 0, 0.12])
    d.cylinder(
        bar + pose.direction(0, -0.25, 0), bar + pose.direction(0, 0.25, 0), 0.011, pal.get("metal")
    )
    d.ellipsoid(seat + np.array([0, 0, 0.03]), (0.13, 0.07, 0.03), tire, yaw=pose.yaw)


def add_bench(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A park bench: seat and back slats on two thin leg frames; back at local ``-y``."""
    length = uniform(rng, 1.4, 2.0)
    wood, metal = pal.get("wood"), pal.get("metal")
    seat_z, depth = uniform(rng, 0.42, 0.47), uniform(rng, 0.4, 0.5)
    for i in range(3):
        y = -depth / 2 + depth * (i + 0.5) / 3
        d.box(pose.point(0, y, seat_z), (length, depth / 3 - 0.02, 0.03), wood, yaw=pose.yaw)
    for i in range(2):
        d.box(
            pose.point(0, -depth / 2 - 0.02, seat_z + 0.15 + 0.17 * i),
            (length, 0.025, 0.1),
            wood,
            yaw=pose.yaw,
        )
    for sx in (-1.0, 1.0):
        x = sx * (length / 2 - 0.15)
        for sy in (-1.0, 1.0):
            d.cylinder(
                pose.point(x, sy * depth / 2, 0), pose.point(x, sy * depth / 2, seat_z), 0.02, metal
            )
        d.cylinder(
            pose.point(x, -depth / 2 - 0.02, seat_z),
            pose.point(x, -depth / 2 - 0.05, seat_z + 0.45),
            0.02,
            metal,
        )


def add_bin(d: Draft, rng: np.random.Generator, pal: MaterialPalette, pose: Pose) -> None:
    """A street bin: a cylinder with a lid, sometimes on a thin post."""
    mat = pal.get("plastic") if rng.random() < 0.5 else pal.get("metal")
    r, h = uniform(rng, 0.2, 0.32), uniform(rng, 0.5, 0.9)
    z0 = 0.0
    if rng.random() < 0.4:
        z0 = uniform(rng, 0.3, 0.5)
        d.cylinder(pose.point(0, 0, 0), pose.point(0, 0, z0 + 0.1), 0.03, pal.get("metal"))
    d.cylinder(pose.point(0, 0, z0), pose.point(0, 0, z0 + h), r, mat)
    d.cylinder(pose.point(0, 0, z0 + h), pose.point(0, 0, z0 + h + 0.03), r + 0.02, mat)


# --- buildings ---------------------------------------------------------------------------------


def add_building(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    front: Pose,
    width: float,
    depth: float,
    height: float,
    details: bool = True,
) -> None:
    """A building block whose front face is centred at ``front`` (local ``+y`` = outwards).

    With ``details``: balconies (slab, thin posts, top rail, balusters), a ground-floor
    awning on thin rods, a cornice, and rooftop masts. Facade texture from role "facade".
    """
    facade = pal.get("facade")
    d.box(front.point(0, -depth / 2, height / 2), (width, depth, height), facade, yaw=front.yaw)
    if not details:
        return
    floor_h = uniform(rng, 2.8, 3.5)
    n_floors = max(1, int(height / floor_h))
    metal = pal.get("metal")
    if rng.random() < 0.6:
        d.box(
            front.point(0, 0.15, height - 0.15),
            (width + 0.1, uniform(rng, 0.25, 0.6), uniform(rng, 0.2, 0.4)),
            pal.get("stone"),
            yaw=front.yaw,
        )
    n_balc = int(rng.integers(0, 5)) if n_floors > 1 else 0
    cols = max(1, int(width / uniform(rng, 3.0, 4.5)))
    used: set[tuple[int, int]] = set()
    for _ in range(n_balc):
        col, fl = int(rng.integers(cols)), int(rng.integers(1, n_floors))
        if (col, fl) in used:
            continue
        used.add((col, fl))
        x = -width / 2 + width * (col + 0.5) / cols
        _add_balcony(
            d,
            rng,
            pal,
            front.moved(x, 0, fl * floor_h),
            min(width / cols - 0.3, uniform(rng, 1.2, 3.0)),
            metal,
        )
    if rng.random() < 0.5:  # ground floor awning
        aw = min(width - 0.5, uniform(rng, 2.0, 5.0))
        proj, tilt = uniform(rng, 1.0, 2.0), uniform(rng, 0.25, 0.5)
        z = uniform(rng, 2.6, 3.2)
        x = uniform(rng, -(width - aw) / 2, (width - aw) / 2)
        centre = front.point(x, proj / 2 * math.cos(tilt), z - proj / 2 * math.sin(tilt))
        d.box(centre, (aw, proj, 0.03), pal.get("awning"), rotation=tilted(front, -tilt))
        edge_z = z - proj * math.sin(tilt)
        for sx in (-1.0, 1.0):
            d.cylinder(
                front.point(x + sx * (aw / 2 - 0.05), 0, edge_z - 0.4),
                front.point(x + sx * (aw / 2 - 0.05), proj * math.cos(tilt) - 0.03, edge_z),
                0.012,
                metal,
            )
    for _ in range(int(rng.integers(0, 3))):  # rooftop masts against the sky
        base = front.point(
            uniform(rng, -width / 2 + 0.5, width / 2 - 0.5), -uniform(rng, 0.5, depth - 0.5), height
        )
        mast_h = uniform(rng, 1.5, 4.0)
        d.cylinder(base, base + np.array([0, 0, mast_h]), uniform(rng, 0.02, 0.04), metal)
        for k in range(int(rng.integers(1, 4))):
            z = mast_h * (0.5 + 0.15 * k)
            half = uniform(rng, 0.3, 0.8)
            yaw = uniform(rng, 0, math.pi)
            off = half * np.array([math.cos(yaw), math.sin(yaw), 0.0])
            at = base + np.array([0.0, 0.0, z])
            d.cylinder(at - off, at + off, 0.008, metal)


def _add_balcony(
    d: Draft,
    rng: np.random.Generator,
    pal: MaterialPalette,
    pose: Pose,
    width: float,
    metal: Material,
) -> None:
    """A balcony slab at ``pose`` (on the facade, floor level) with a railing of thin bars."""
    depth, slab = uniform(rng, 0.8, 1.4), uniform(rng, 0.12, 0.2)
    d.box(pose.point(0, depth / 2, -slab / 2), (width, depth, slab), pal.get("stone"), yaw=pose.yaw)
    rail_h = uniform(rng, 0.9, 1.1)
    corners = [
        pose.point(-width / 2 + 0.03, 0.02, 0),
        pose.point(-width / 2 + 0.03, depth - 0.03, 0),
        pose.point(width / 2 - 0.03, depth - 0.03, 0),
        pose.point(width / 2 - 0.03, 0.02, 0),
    ]
    up = np.array([0.0, 0.0, rail_h])
    for c in corners[1:3]:
        d.cylinder(c, c + up, 0.02, metal)
    for c0, c1 in itertools.pairwise(corners):
        d.cylinder(c0 + up, c1 + up, 0.02, metal)
    if rng.random() < 0.35:  # solid front panel
        d.box(
            pose.point(0, depth - 0.03, rail_h * 0.45),
            (width - 0.06, 0.02, rail_h * 0.8),
            pal.get("glass"),
            yaw=pose.yaw,
        )
        return
    n = min(int((width - 0.06) / uniform(rng, 0.12, 0.25)), 14)
    for t in (np.arange(n) + 0.5) / max(n, 1):
        p = corners[1] + t * (corners[2] - corners[1])
        d.cylinder(p, p + up, 0.009, metal)
