"""Helpers shared by all styles: material palettes, poses, lights, skies and cameras.

Units: metres; angles in radians unless a name ends in ``_deg``. World ``z`` is up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from sharpdepth.synth.scene import Camera, Light, Material
from sharpdepth.synth.textures import TEXTURE_NAMES

LOGGER = logging.getLogger(__name__)

RGB = tuple[float, float, float]
Sky = tuple[RGB, RGB]

#: Texture names the texture bank provides (procedural and photographic).
TEXTURES = TEXTURE_NAMES

# --- small tint palettes shared by styles ---------------------------------------------
WHITES: tuple[RGB, ...] = ((0.95, 0.94, 0.9), (0.9, 0.9, 0.92), (0.97, 0.95, 0.88))
PASTELS: tuple[RGB, ...] = (
    (0.93, 0.88, 0.78),
    (0.82, 0.88, 0.9),
    (0.88, 0.9, 0.8),
    (0.92, 0.84, 0.84),
    (0.86, 0.84, 0.9),
)
WOODS: tuple[RGB, ...] = (
    (0.75, 0.55, 0.35),
    (0.55, 0.36, 0.2),
    (0.9, 0.75, 0.55),
    (0.4, 0.26, 0.16),
)
METALS: tuple[RGB, ...] = ((0.2, 0.2, 0.22), (0.6, 0.6, 0.62), (0.85, 0.85, 0.86), (0.1, 0.1, 0.1))
BRIGHTS: tuple[RGB, ...] = (
    (0.85, 0.2, 0.15),
    (0.15, 0.4, 0.8),
    (0.95, 0.75, 0.1),
    (0.2, 0.65, 0.3),
    (0.9, 0.45, 0.1),
    (0.55, 0.25, 0.6),
    (0.1, 0.6, 0.65),
)
GREENS: tuple[RGB, ...] = ((0.25, 0.5, 0.2), (0.35, 0.6, 0.25), (0.2, 0.4, 0.15), (0.45, 0.55, 0.2))
BARKS: tuple[RGB, ...] = ((0.45, 0.35, 0.28), (0.35, 0.3, 0.26), (0.55, 0.5, 0.45))
STONES: tuple[RGB, ...] = (
    (0.6, 0.58, 0.55),
    (0.5, 0.5, 0.52),
    (0.7, 0.66, 0.6),
    (0.45, 0.42, 0.38),
)


#: Repeat sizes (metres) of textures with a physical pattern, for large surfaces:
#: bricks = 8 courses x 4 bricks, tiles / checker = 8 x 8 cells, facade = 4 x 4 windows.
WALL_SCALES: dict[str, tuple[float, float]] = {
    "bricks": (0.55, 0.9),
    "photo_brick": (1.5, 3.0),
    "tiles": (0.8, 1.3),
    "checker": (1.6, 2.6),
    "plaster": (1.0, 3.0),
    "concrete": (1.0, 3.0),
    "paper": (0.25, 0.4),
}
FLOOR_SCALES: dict[str, tuple[float, float]] = {
    "tiles": (1.6, 3.2),
    "checker": (1.6, 3.2),
    "wood": (0.6, 1.5),
    "marble": (1.0, 2.5),
    "concrete": (1.0, 3.0),
    "fabric": (0.4, 1.0),
}
FACADE_SCALES: dict[str, tuple[float, float]] = {
    "facade": (11.0, 14.0),
    "bricks": (0.6, 0.9),
    "photo_brick": (2.0, 4.0),
    "plaster": (2.0, 5.0),
    "concrete": (2.0, 5.0),
}


@dataclass(frozen=True)
class MaterialRole:
    """How to make the materials of one role (e.g. "wood furniture").

    Attributes:
        textures: texture names to choose from.
        tints: base tints to choose from (jittered per variant).
        scale: range of texture repeat sizes, metres.
        variants: how many distinct materials this role has in one scene.
        jitter: relative per-channel tint jitter.
        scales: per-texture repeat-size ranges overriding ``scale`` for textures whose
            repeat has a physical size (e.g. "bricks": 8 courses, about 0.6 m;
            "facade": 4 x 4 windows, about 12 m).
    """

    textures: tuple[str, ...]
    tints: tuple[RGB, ...]
    scale: tuple[float, float] = (0.5, 1.0)
    variants: int = 1
    jitter: float = 0.06
    scales: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def with_variants(roles: Mapping[str, MaterialRole], **variants: int) -> dict[str, MaterialRole]:
    """A copy of ``roles`` with the number of variants of some roles changed."""
    out = dict(roles)
    for name, n in variants.items():
        out[name] = replace(out[name], variants=n)
    return out


def jitter_tint(rng: np.random.Generator, tint: RGB, jitter: float) -> RGB:
    """``tint`` with brightness and per-channel jitter, clipped to ``[0, 1]``, rounded."""
    base = np.asarray(tint, dtype=np.float64)
    gain = 1.0 + jitter * rng.normal() + jitter * rng.normal(size=3)
    out = np.clip(base * gain, 0.0, 1.0)
    return (round(float(out[0]), 3), round(float(out[1]), 3), round(float(out[2]), 3))


@dataclass
class MaterialPalette:
    """A bounded set of materials for one scene, organised by role.

    Each role gets ``variants`` materials, made on first use; :meth:`get` picks one at
    random, so a scene never has more than :attr:`max_materials` distinct materials.
    """

    rng: np.random.Generator
    roles: Mapping[str, MaterialRole]
    _made: dict[str, list[Material]] = field(default_factory=dict)

    @property
    def max_materials(self) -> int:
        """Upper bound on the number of distinct materials."""
        return sum(role.variants for role in self.roles.values())

    def variants(self, role: str) -> list[Material]:
        """The materials of ``role`` (created on first call)."""
        if role not in self._made:
            spec = self.roles[role]
            mats = []
            for _ in range(spec.variants):
                texture = spec.textures[int(self.rng.integers(len(spec.textures)))]
                tint = spec.tints[int(self.rng.integers(len(spec.tints)))]
                scale = round(float(self.rng.uniform(*spec.scales.get(texture, spec.scale))), 3)
                mats.append(Material(texture, jitter_tint(self.rng, tint, spec.jitter), scale))
            self._made[role] = mats
        return self._made[role]

    def get(self, role: str) -> Material:
        """A random material of ``role``."""
        mats = self.variants(role)
        return mats[int(self.rng.integers(len(mats)))]


@dataclass(frozen=True)
class Pose:
    """A floor pose: position ``(x, y, z)`` in metres and ``yaw`` in radians about ``z``.

    Local axes: ``x`` along ``yaw``, ``y`` to its left, ``z`` up.
    """

    x: float
    y: float
    z: float = 0.0
    yaw: float = 0.0

    def point(self, lx: float, ly: float, lz: float) -> np.ndarray:
        """World coordinates of the local point ``(lx, ly, lz)``."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([self.x + c * lx - s * ly, self.y + s * lx + c * ly, self.z + lz])

    def direction(self, lx: float, ly: float, lz: float) -> np.ndarray:
        """World direction of the local vector ``(lx, ly, lz)``."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([c * lx - s * ly, s * lx + c * ly, lz])

    def moved(self, lx: float, ly: float, lz: float = 0.0, dyaw: float = 0.0) -> Pose:
        """The pose at local offset ``(lx, ly, lz)``, turned by ``dyaw`` radians."""
        p = self.point(lx, ly, lz)
        return Pose(float(p[0]), float(p[1]), float(p[2]), self.yaw + dyaw)


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float uniform in ``[lo, hi)`` (the same draw as ``rng.uniform(lo, hi)``, cheaper)."""
    return lo + (hi - lo) * rng.random()


def clipped_normal(
    rng: np.random.Generator, mean: float, std: float, lo: float, hi: float
) -> float:
    """A normal sample clipped to ``[lo, hi]``."""
    return float(np.clip(rng.normal(mean, std), lo, hi))


def count(rng: np.random.Generator, n_objects: int | None, lo: int, hi: int) -> int:
    """``n_objects`` when given (at least 0), else a random integer in ``[lo, hi]``."""
    if n_objects is not None:
        return max(int(n_objects), 0)
    return int(rng.integers(lo, hi + 1))


def choose(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    """A key of ``weights`` drawn with probability proportional to its weight."""
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def random_light(
    rng: np.random.Generator,
    elevation_deg: tuple[float, float] = (15.0, 75.0),
    ambient: tuple[float, float] = (0.2, 0.45),
    intensity: tuple[float, float] = (0.8, 1.2),
) -> Light:
    """A key light above the horizon with random azimuth, colour and ambient level.

    Args:
        rng: the style's generator.
        elevation_deg: range of light elevation above the horizon, degrees.
        ambient: range of the ambient level.
        intensity: range of the key-light intensity.
    """
    elev = math.radians(uniform(rng, *elevation_deg))
    azim = uniform(rng, 0.0, 2.0 * math.pi)
    direction = np.array(
        [math.cos(elev) * math.cos(azim), math.cos(elev) * math.sin(azim), math.sin(elev)]
    )
    warm = uniform(rng, -1.0, 1.0)  # > 0 warm, < 0 cool
    key = np.array([1.0 + 0.08 * warm, 1.0, 1.0 - 0.15 * warm]) * uniform(rng, *intensity)
    amb = np.array([1.0 - 0.05 * warm, 1.0, 1.0 + 0.08 * warm]) * uniform(rng, *ambient)
    return Light(
        direction=direction,
        color=(float(key[0]), float(key[1]), float(key[2])),
        ambient=(float(amb[0]), float(amb[1]), float(amb[2])),
    )


_SKIES: tuple[Sky, ...] = (
    ((0.25, 0.45, 0.85), (0.7, 0.8, 0.95)),  # clear
    ((0.55, 0.58, 0.62), (0.8, 0.8, 0.82)),  # overcast
    ((0.2, 0.25, 0.5), (0.95, 0.65, 0.45)),  # dusk
    ((0.45, 0.6, 0.8), (0.85, 0.85, 0.85)),  # hazy
)


def random_sky(rng: np.random.Generator) -> Sky:
    """A ``(zenith RGB, horizon RGB)`` sky from a small palette with jitter."""
    zenith, horizon = _SKIES[int(rng.integers(len(_SKIES)))]
    return jitter_tint(rng, zenith, 0.05), jitter_tint(rng, horizon, 0.04)


def camera_from_angles(
    eye: np.ndarray | tuple[float, float, float],
    yaw: float,
    pitch: float,
    roll_deg: float,
    fov_deg: float,
    height: int,
    width: int,
) -> Camera:
    """A camera at ``eye`` looking along heading ``yaw`` (radians from +x) tilted by ``pitch``.

    Args:
        eye: camera centre, metres.
        yaw: heading of the optical axis, radians counter-clockwise from world +x.
        pitch: elevation of the optical axis, radians (positive looks up), |pitch| < 85 deg.
        roll_deg: roll about the optical axis, degrees.
        fov_deg: horizontal field of view, degrees.
        height: image height in pixels.
        width: image width in pixels.
    """
    pitch = float(np.clip(pitch, -math.radians(85.0), math.radians(85.0)))
    eye_v = np.asarray(eye, dtype=np.float64)
    forward = np.array(
        [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
    )
    return Camera.look_at(eye_v, eye_v + forward, fov_deg, height, width, roll_deg=roll_deg)


def random_fov(rng: np.random.Generator, lo_deg: float = 40.0, hi_deg: float = 100.0) -> float:
    """A horizontal field of view in degrees, uniform in ``[lo_deg, hi_deg]``."""
    return uniform(rng, lo_deg, hi_deg)
