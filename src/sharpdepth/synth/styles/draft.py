"""Staged objects: primitives collected per object, checked, then committed together.

A :class:`Draft` records the primitives of one object (a chair, a tree, a car) with the
same calls as :class:`~sharpdepth.synth.scene.SceneBuilder`. Before the object enters a
scene, the style checks it against the camera clearance (:class:`KeepOut`) and against
the floor footprints of objects already placed (:class:`Footprints`), so an object is
added whole or not at all (never a table with a missing leg).

Units: metres, angles in radians unless a name ends in ``_deg``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from sharpdepth.synth.scene import Material, SceneBuilder, rotation_z

LOGGER = logging.getLogger(__name__)

Vec = np.ndarray | tuple[float, float, float] | Sequence[float]

#: ``[8, 3]`` corner signs of a box.
_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
#: ``[5, 3]`` a point and its four horizontal neighbours at unit distance.
_CROSS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=np.float64)


def vec3(v: Vec) -> np.ndarray:
    """``v`` as a float64 ``[3]`` array."""
    return np.asarray(v, dtype=np.float64).reshape(3)


@dataclass(frozen=True)
class KeepOut:
    """A sphere no primitive may enter (the camera and its clearance).

    Attributes:
        center: ``[3]`` world point, metres.
        radius: clearance in metres.
    """

    center: np.ndarray
    radius: float


@dataclass(frozen=True)
class _Box:
    center: np.ndarray
    size: np.ndarray
    rotation: np.ndarray
    material: Material
    part: int

    def distance(self, p: np.ndarray) -> float:
        """Euclidean distance from ``p`` to the box (0 inside)."""
        q = self.rotation.T @ (p - self.center)
        outside = np.maximum(np.abs(q) - self.size / 2.0, 0.0)
        return float(np.linalg.norm(outside))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World AABB ``(min, max)``."""
        half = np.abs(self.rotation) @ (self.size / 2.0)
        return self.center - half, self.center + half

    def corners(self) -> np.ndarray:
        """``[8, 3]`` world corners."""
        return self.center + (_SIGNS * (self.size / 2.0)) @ self.rotation.T

    def moved(self, offset: np.ndarray) -> _Box:
        """A copy translated by ``offset``."""
        return replace(self, center=self.center + offset)

    def commit(self, builder: SceneBuilder, instance: int) -> None:
        """Add to ``builder`` as part of ``instance``."""
        builder.box(
            self.center, self.size, self.material, instance=instance, rotation=self.rotation
        )


@dataclass(frozen=True)
class _Cylinder:
    p0: np.ndarray
    p1: np.ndarray
    radius: float
    material: Material
    part: int

    def distance(self, p: np.ndarray) -> float:
        """Euclidean distance from ``p`` to the capped cylinder (0 inside)."""
        axis = self.p1 - self.p0
        length = float(np.linalg.norm(axis))
        u = axis / length
        rel = p - self.p0
        a = float(rel @ u)
        rho = float(np.linalg.norm(rel - a * u))
        dr = max(rho - self.radius, 0.0)
        da = max(-a, a - length, 0.0)
        return math.hypot(dr, da)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World AABB ``(min, max)`` (conservative)."""
        lo = np.minimum(self.p0, self.p1) - self.radius
        hi = np.maximum(self.p0, self.p1) + self.radius
        return lo, hi

    def corners(self) -> np.ndarray:
        """``[10, 3]`` points bounding the cylinder's horizontal extent (ends +- radius)."""
        offsets = self.radius * _CROSS
        return np.concatenate([self.p0 + offsets, self.p1 + offsets])

    def moved(self, offset: np.ndarray) -> _Cylinder:
        """A copy translated by ``offset``."""
        return replace(self, p0=self.p0 + offset, p1=self.p1 + offset)

    def commit(self, builder: SceneBuilder, instance: int) -> None:
        """Add to ``builder`` as part of ``instance``."""
        builder.cylinder(self.p0, self.p1, self.radius, self.material, instance=instance)


@dataclass(frozen=True)
class _Ellipsoid:
    center: np.ndarray
    radii: np.ndarray
    yaw: float
    material: Material
    part: int

    def distance(self, p: np.ndarray) -> float:
        """A lower bound of the distance from ``p`` to the ellipsoid (0 inside)."""
        q = rotation_z(self.yaw).T @ (p - self.center)
        if float(np.sum((q / self.radii) ** 2)) <= 1.0:
            return 0.0
        return max(float(np.linalg.norm(q)) - float(self.radii.max()), 0.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World AABB ``(min, max)`` (conservative)."""
        half = np.abs(rotation_z(self.yaw)) @ self.radii
        return self.center - half, self.center + half

    def corners(self) -> np.ndarray:
        """``[8, 3]`` corners of the ellipsoid's (yawed) bounding box."""
        return self.center + (_SIGNS * self.radii) @ rotation_z(self.yaw).T

    def moved(self, offset: np.ndarray) -> _Ellipsoid:
        """A copy translated by ``offset``."""
        return replace(self, center=self.center + offset)

    def commit(self, builder: SceneBuilder, instance: int) -> None:
        """Add to ``builder`` as part of ``instance``."""
        builder.ellipsoid(
            self.center, tuple(self.radii), self.material, yaw=self.yaw, instance=instance
        )


_Prim = _Box | _Cylinder | _Ellipsoid


@dataclass
class Draft:
    """The primitives of one object, not yet in the scene.

    Attributes:
        prims: recorded primitives.
        footprint: floor circles ``(x, y, radius)`` in metres the object occupies; used
            by :class:`Footprints` to avoid interpenetrating objects.
        label: short name for logging.
    """

    prims: list[_Prim] = field(default_factory=list)
    footprint: list[tuple[float, float, float]] = field(default_factory=list)
    label: str = "object"
    _part: int = 0
    _lo: np.ndarray | None = field(default=None, repr=False)
    _hi: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.prims)

    def new_part(self) -> None:
        """Start a new instance: later primitives form a separate object (e.g. a book)."""
        if self.prims and self.prims[-1].part == self._part:
            self._part += 1

    def box(
        self,
        center: Vec,
        size: Vec,
        material: Material,
        yaw: float = 0.0,
        rotation: np.ndarray | None = None,
    ) -> None:
        """A box of full ``size`` (metres) at ``center``, yawed or fully rotated."""
        rot = np.asarray(rotation, dtype=np.float64) if rotation is not None else rotation_z(yaw)
        self._append(_Box(vec3(center), np.abs(vec3(size)), rot, material, self._part))

    def cylinder(self, p0: Vec, p1: Vec, radius: float, material: Material) -> None:
        """A capped cylinder of ``radius`` metres from ``p0`` to ``p1``."""
        a, b = vec3(p0), vec3(p1)
        dx, dy, dz = (float(v) for v in b - a)
        if dx * dx + dy * dy + dz * dz < 1e-12 or radius <= 0:
            LOGGER.debug("skipping degenerate cylinder in %s", self.label)
            return
        self._append(_Cylinder(a, b, float(radius), material, self._part))

    def ellipsoid(
        self,
        center: Vec,
        radii: float | Vec,
        material: Material,
        yaw: float = 0.0,
    ) -> None:
        """An ellipsoid with semi-axes ``radii`` (metres), yawed by ``yaw`` radians."""
        r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (3,)).copy()
        self._append(_Ellipsoid(vec3(center), r, float(yaw), material, self._part))

    def sphere(self, center: Vec, radius: float, material: Material) -> None:
        """A sphere of ``radius`` metres."""
        self.ellipsoid(center, radius, material)

    def distance(self, point: Vec) -> float:
        """Smallest distance (lower bound for ellipsoids) from ``point`` to any primitive."""
        p = vec3(point)
        return min((prim.distance(p) for prim in self.prims), default=math.inf)

    def clear_of(self, keepouts: Sequence[KeepOut]) -> bool:
        """True when no primitive enters any keep-out sphere.

        A keep-out farther than its radius from the draft's bounding box is cleared
        without testing each primitive.
        """
        if not self.prims:
            return True
        lo, hi = self.bounds()
        for k in keepouts:
            gap = np.maximum(np.maximum(lo - k.center, k.center - hi), 0.0)
            if float(gap @ gap) > k.radius * k.radius:
                continue
            if self.distance(k.center) <= k.radius:
                return False
        return True

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World AABB ``(min, max)`` of all primitives (kept up to date as they are added)."""
        if self._lo is None or self._hi is None:
            raise ValueError(f"empty draft {self.label!r} has no bounds")
        return self._lo.copy(), self._hi.copy()

    def _append(self, prim: _Prim) -> None:
        """Record a primitive and grow the cached bounds."""
        lo, hi = prim.bounds()
        self._lo = lo if self._lo is None else np.minimum(self._lo, lo)
        self._hi = hi if self._hi is None else np.maximum(self._hi, hi)
        self.prims.append(prim)

    def translate(self, offset: Vec) -> None:
        """Move every primitive (and the footprint) by ``offset`` metres."""
        off = vec3(offset)
        self.prims = [prim.moved(off) for prim in self.prims]
        if self._lo is not None and self._hi is not None:
            self._lo, self._hi = self._lo + off, self._hi + off
        self.footprint = [(x + off[0], y + off[1], r) for x, y, r in self.footprint]

    def corners(self) -> np.ndarray:
        """``[N, 3]`` points whose convex hull bounds every primitive horizontally."""
        return np.concatenate([prim.corners() for prim in self.prims])

    def local_extent(self, x: float, y: float, yaw: float) -> tuple[float, float, float, float]:
        """``(x_min, x_max, y_min, y_max)`` of the draft in the frame at ``(x, y)``, yawed."""
        pts = self.corners()[:, :2] - np.array([x, y])
        c, s = math.cos(yaw), math.sin(yaw)
        lx = pts[:, 0] * c + pts[:, 1] * s
        ly = -pts[:, 0] * s + pts[:, 1] * c
        return float(lx.min()), float(lx.max()), float(ly.min()), float(ly.max())

    def set_footprint(self, x: float, y: float, yaw: float, pad: float = 0.0) -> None:
        """Cover the draft's extent in the frame ``(x, y, yaw)`` with floor circles.

        ``pad`` metres are added around the extent.
        """
        x0, x1, y0, y1 = self.local_extent(x, y, yaw)
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
        length, depth = x1 - x0, y1 - y0
        short = max(min(length, depth), 1e-3)
        along_x = length >= depth
        n = max(1, math.ceil(max(length, depth) / short))
        step = max(length, depth) / n
        radius = 0.5 * math.hypot(step, short)
        c, s = math.cos(yaw), math.sin(yaw)
        circles = []
        for i in range(n):
            if along_x:
                lx, ly = x0 + step * (i + 0.5), (y0 + y1) / 2
            else:
                lx, ly = (x0 + x1) / 2, y0 + step * (i + 0.5)
            circles.append((x + c * lx - s * ly, y + s * lx + c * ly, radius))
        self.footprint = circles

    def commit(self, builder: SceneBuilder) -> list[int]:
        """Add every primitive to ``builder``; returns the instance ids used."""
        ids: dict[int, int] = {}
        for prim in self.prims:
            if prim.part not in ids:
                ids[prim.part] = builder.new_instance()
            prim.commit(builder, ids[prim.part])
        return list(ids.values())


@dataclass
class Footprints:
    """Occupied floor circles ``(x, y, radius)``, metres, to keep objects apart."""

    circles: list[tuple[float, float, float]] = field(default_factory=list)
    _array: np.ndarray | None = field(default=None, repr=False)

    def _occupied(self) -> np.ndarray:
        """``[K, 3]`` array of the occupied circles (cached until the next :meth:`add`)."""
        if self._array is None or self._array.shape[0] != len(self.circles):
            self._array = np.asarray(self.circles, dtype=np.float64).reshape(-1, 3)
        return self._array

    def free(self, x: float, y: float, radius: float) -> bool:
        """True when a circle at ``(x, y)`` of ``radius`` overlaps no occupied circle."""
        return self.free_all([(x, y, radius)])

    def free_all(self, circles: Sequence[tuple[float, float, float]]) -> bool:
        """True when every circle is free."""
        if not self.circles or not circles:
            return True
        occ = self._occupied()
        cand = np.asarray(circles, dtype=np.float64).reshape(-1, 3)
        dist = np.hypot(cand[:, None, 0] - occ[None, :, 0], cand[:, None, 1] - occ[None, :, 1])
        return bool((dist >= cand[:, None, 2] + occ[None, :, 2]).all())

    def add(self, x: float, y: float, radius: float) -> None:
        """Mark a circle occupied."""
        self.circles.append((float(x), float(y), float(radius)))


def try_commit(
    builder: SceneBuilder,
    draft: Draft | None,
    keepouts: Sequence[KeepOut],
    footprints: Footprints | None = None,
) -> bool:
    """Commit ``draft`` if it fits (free footprint, outside every keep-out); returns success."""
    if draft is None or not draft.prims:
        return False
    if footprints is not None and not footprints.free_all(draft.footprint):
        return False
    if not draft.clear_of(keepouts):
        return False
    draft.commit(builder)
    if footprints is not None:
        for circle in draft.footprint:
            footprints.add(*circle)
    return True


def place(
    builder: SceneBuilder,
    make: Callable[[], Draft | None],
    keepouts: Sequence[KeepOut],
    footprints: Footprints | None = None,
    tries: int = 10,
) -> Draft | None:
    """Try ``make`` up to ``tries`` times and commit the first draft that fits.

    ``make`` samples a pose (with the style's generator) and returns a draft, or ``None``
    when the pose is unusable. A draft fits when its :attr:`Draft.footprint` is free in
    ``footprints`` and it stays out of every keep-out sphere. Returns the committed
    draft, or ``None`` when every try failed.
    """
    for _ in range(tries):
        draft = make()
        if try_commit(builder, draft, keepouts, footprints):
            return draft
    LOGGER.debug("could not place an object after %d tries", tries)
    return None
