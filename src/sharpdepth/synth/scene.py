"""Scene description of the synthetic engine: cameras, materials, primitives, lights.

World frame: metres, ``z`` up. Camera frame: OpenCV (``x`` right, ``y`` down, ``z``
forward). Every scene is a list of analytic primitives (planes, boxes, cylinders,
ellipsoids), each the affine image of a unit shape, so one ray-casting code path per
shape gives exact depth.

Styles build scenes through :class:`SceneBuilder`; the renderer reads the packed
arrays of :class:`Scene`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

LOGGER = logging.getLogger(__name__)

#: Primitive kinds. Unit shapes in local coordinates:
#: plane ``z = 0`` (normal +z, infinite); box ``[-1, 1]^3``; cylinder ``x^2 + y^2 <= 1``,
#: ``0 <= z <= 1`` (capped); ellipsoid: the unit sphere.
PLANE, BOX, CYLINDER, ELLIPSOID = 0, 1, 2, 3
KIND_NAMES = {PLANE: "plane", BOX: "box", CYLINDER: "cylinder", ELLIPSOID: "ellipsoid"}


@dataclass(frozen=True)
class Material:
    """Surface appearance.

    Attributes:
        texture: name of a texture in the texture bank (see ``synth.textures``).
        tint: RGB multiplier in ``[0, 1]``.
        scale: metres covered by one repeat of the texture.
    """

    texture: str
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = 1.0


@dataclass
class Camera:
    """A pinhole camera.

    Attributes:
        K: ``[3, 3]`` intrinsics in pixels (pixel-centre convention, see ``geometry``).
        R: ``[3, 3]`` world-to-camera rotation (rows: camera x, y, z axes in world).
        position: ``[3]`` camera centre in world coordinates, metres.
        height: image height in pixels.
        width: image width in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    position: np.ndarray
    height: int
    width: int

    @classmethod
    def look_at(
        cls,
        eye: np.ndarray | tuple[float, float, float],
        target: np.ndarray | tuple[float, float, float],
        fov_deg: float,
        height: int,
        width: int,
        roll_deg: float = 0.0,
    ) -> Camera:
        """A camera at ``eye`` looking at ``target`` with world ``z`` up.

        Args:
            eye: camera centre, metres.
            target: a point the optical axis passes through.
            fov_deg: horizontal field of view in degrees.
            height: image height in pixels.
            width: image width in pixels.
            roll_deg: rotation about the optical axis.
        """
        eye_v = np.asarray(eye, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - eye_v
        norm = np.linalg.norm(forward)
        if norm <= 0:
            raise ValueError("camera target equals its position")
        forward /= norm
        up = np.array([0.0, 0.0, 1.0])
        right = np.cross(forward, up)
        if np.linalg.norm(right) < 1e-6:  # looking straight up or down
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        if roll_deg:
            c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
            right, down = c * right + s * down, -s * right + c * down
        rot = np.stack([right, down, forward])
        fx = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
        k = np.array([[fx, 0.0, (width - 1) / 2.0], [0.0, fx, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
        return cls(K=k, R=rot, position=eye_v, height=height, width=width)


@dataclass
class Light:
    """A directional key light plus ambient light.

    Attributes:
        direction: ``[3]`` unit vector pointing *towards* the light.
        color: key-light RGB intensity.
        ambient: ambient RGB intensity.
    """

    direction: np.ndarray
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: tuple[float, float, float] = (0.35, 0.35, 0.38)


@dataclass
class Scene:
    """Packed primitives plus camera, light and background.

    Attributes (``P`` primitives):
        kinds: ``[P]`` int, one of ``PLANE, BOX, CYLINDER, ELLIPSOID``.
        to_local: ``[P, 3, 4]`` affine world-to-local maps (``x_local = A x + b``).
        to_world: ``[P, 3, 4]`` their inverses.
        instances: ``[P]`` int instance id (>= 1) of the object each primitive belongs to.
        material_ids: ``[P]`` int index into ``materials``.
        bounds: ``[P, 2, 3]`` world AABB (min, max); infinite for planes.
        corners: ``[P, 8, 3]`` world corners of each primitive's oriented bounding box
            (the unit cube, or ``z`` in ``[0, 1]`` for cylinders, mapped to the world;
            meaningless for planes). Tighter than ``bounds`` for slanted thin shapes.
        materials: list of :class:`Material`.
        camera: the :class:`Camera`.
        light: the :class:`Light`.
        sky: ``(zenith RGB, horizon RGB)`` for rays that hit nothing (no depth), or
            ``None`` when the scene is closed (every ray hits something).
        style: the style name.
    """

    kinds: np.ndarray
    to_local: np.ndarray
    to_world: np.ndarray
    instances: np.ndarray
    material_ids: np.ndarray
    bounds: np.ndarray
    corners: np.ndarray
    materials: list[Material]
    camera: Camera
    light: Light
    sky: tuple[tuple[float, float, float], tuple[float, float, float]] | None
    style: str = ""

    @property
    def num_primitives(self) -> int:
        """Number of primitives ``P``."""
        return int(self.kinds.shape[0])

    @property
    def num_instances(self) -> int:
        """Number of distinct objects."""
        return int(np.unique(self.instances).size)


def rotation_z(yaw: float) -> np.ndarray:
    """``[3, 3]`` rotation by ``yaw`` radians about world ``z``."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _frame_from_axis(axis: np.ndarray) -> np.ndarray:
    """``[3, 3]`` rotation whose third column is the unit vector along ``axis``.

    Written with Python floats: it runs once per primitive while scenes are built.
    """
    ax, ay, az = (float(v) for v in axis)
    norm = math.sqrt(ax * ax + ay * ay + az * az)
    ax, ay, az = ax / norm, ay / norm, az / norm
    hx, hy, hz = (1.0, 0.0, 0.0) if abs(ax) < 0.9 else (0.0, 1.0, 0.0)
    ux, uy, uz = ay * hz - az * hy, az * hx - ax * hz, ax * hy - ay * hx  # a x helper
    un = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / un, uy / un, uz / un
    vx, vy, vz = ay * uz - az * uy, az * ux - ax * uz, ax * uy - ay * ux  # a x u
    return np.array([[ux, vx, ax], [uy, vy, ay], [uz, vz, az]])


@dataclass
class SceneBuilder:
    """Collects primitives for a :class:`Scene` (used by the style modules).

    Every ``add`` method takes a :class:`Material` and an ``instance`` id (from
    :meth:`new_instance`; a new one is made when omitted) and returns that id.
    """

    _kinds: list[int] = field(default_factory=list)
    _to_world: list[np.ndarray] = field(default_factory=list)
    _instances: list[int] = field(default_factory=list)
    _materials: list[Material] = field(default_factory=list)
    _material_index: dict[Material, int] = field(default_factory=dict)
    _material_ids: list[int] = field(default_factory=list)
    _next_instance: int = 1

    def new_instance(self) -> int:
        """A fresh instance id (ids start at 1; 0 means background / sky)."""
        iid = self._next_instance
        self._next_instance += 1
        return iid

    def __len__(self) -> int:
        return len(self._kinds)

    def _add(
        self,
        kind: int,
        linear: np.ndarray,
        offset: np.ndarray,
        material: Material,
        instance: int | None,
    ) -> int:
        if instance is None:
            instance = self.new_instance()
        m = np.empty((3, 4))
        m[:, :3] = linear
        m[:, 3] = offset
        if material not in self._material_index:
            self._material_index[material] = len(self._materials)
            self._materials.append(material)
        self._kinds.append(kind)
        self._to_world.append(m)
        self._instances.append(instance)
        self._material_ids.append(self._material_index[material])
        return instance

    def plane(
        self,
        point: np.ndarray | tuple[float, float, float],
        normal: np.ndarray | tuple[float, float, float],
        material: Material,
        instance: int | None = None,
    ) -> int:
        """An infinite plane through ``point`` with unit ``normal`` (visible from both sides)."""
        frame = _frame_from_axis(np.asarray(normal, dtype=np.float64))
        return self._add(PLANE, frame, np.asarray(point, dtype=np.float64), material, instance)

    def box(
        self,
        center: np.ndarray | tuple[float, float, float],
        size: np.ndarray | tuple[float, float, float],
        material: Material,
        yaw: float = 0.0,
        instance: int | None = None,
        rotation: np.ndarray | None = None,
    ) -> int:
        """A box of full ``size`` (x, y, z extents, metres) at ``center``.

        Rotated by ``yaw`` radians about ``z``, or by a full ``rotation`` matrix.
        """
        rot = rotation if rotation is not None else rotation_z(yaw)
        half = np.asarray(size, dtype=np.float64) / 2.0
        return self._add(
            BOX, rot * half[None, :], np.asarray(center, dtype=np.float64), material, instance
        )

    def cylinder(
        self,
        p0: np.ndarray | tuple[float, float, float],
        p1: np.ndarray | tuple[float, float, float],
        radius: float,
        material: Material,
        instance: int | None = None,
    ) -> int:
        """A capped cylinder of ``radius`` from ``p0`` to ``p1`` (poles, legs, wires, trunks)."""
        a = np.asarray(p0, dtype=np.float64)
        axis = np.asarray(p1, dtype=np.float64) - a
        length = math.sqrt(float(axis @ axis))
        if length <= 0 or radius <= 0:
            raise ValueError("cylinder needs p0 != p1 and radius > 0")
        linear = _frame_from_axis(axis) * np.array([radius, radius, length])
        return self._add(CYLINDER, linear, a, material, instance)

    def ellipsoid(
        self,
        center: np.ndarray | tuple[float, float, float],
        radii: float | tuple[float, float, float],
        material: Material,
        yaw: float = 0.0,
        instance: int | None = None,
    ) -> int:
        """A sphere (scalar ``radii``) or axis-aligned-then-yawed ellipsoid."""
        r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (3,))
        return self._add(
            ELLIPSOID,
            rotation_z(yaw) * r[None, :],
            np.asarray(center, dtype=np.float64),
            material,
            instance,
        )

    def sphere(
        self,
        center: np.ndarray | tuple[float, float, float],
        radius: float,
        material: Material,
        instance: int | None = None,
    ) -> int:
        """A sphere of ``radius`` at ``center``."""
        return self.ellipsoid(center, radius, material, instance=instance)

    def build(
        self,
        camera: Camera,
        light: Light,
        sky: tuple[tuple[float, float, float], tuple[float, float, float]] | None,
        style: str = "",
    ) -> Scene:
        """Pack everything added so far into a :class:`Scene`."""
        if not self._kinds:
            raise ValueError("empty scene")
        to_world = np.stack(self._to_world)
        kinds = np.asarray(self._kinds, dtype=np.int64)
        linear = to_world[:, :, :3]
        degenerate = np.abs(np.linalg.det(linear)) < 1e-15
        if degenerate.any():
            i = int(np.flatnonzero(degenerate)[0])
            raise ValueError(f"degenerate {KIND_NAMES[int(kinds[i])]} (primitive {i}): zero extent")
        inv = np.linalg.inv(linear)
        to_local = np.concatenate([inv, -(inv @ to_world[:, :, 3:])], axis=2)
        corners = np.array(
            [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64
        )
        local = np.broadcast_to(corners, (kinds.size, 8, 3)).copy()
        cyl = kinds == CYLINDER
        local[cyl, :, 2] = (local[cyl, :, 2] + 1.0) / 2.0  # cylinders span z in [0, 1]
        world = np.einsum("pij,pkj->pki", linear, local) + to_world[:, None, :, 3]
        bounds = np.stack([world.min(axis=1), world.max(axis=1)], axis=1)
        bounds[kinds == PLANE] = [[-np.inf] * 3, [np.inf] * 3]
        return Scene(
            kinds=kinds,
            to_local=to_local,
            to_world=to_world,
            instances=np.asarray(self._instances, dtype=np.int64),
            material_ids=np.asarray(self._material_ids, dtype=np.int64),
            bounds=bounds,
            corners=world,
            materials=list(self._materials),
            camera=camera,
            light=light,
            sky=sky,
            style=style,
        )
