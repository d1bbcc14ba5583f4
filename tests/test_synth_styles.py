"""Tests of the synthetic scene styles (``sharpdepth.synth.styles``), renderer-free.

A tiny numpy ray caster below checks coverage (rays that hit something) and depth
scale; it is deliberately independent of the engine's own renderer.
"""

from __future__ import annotations

import math
import random
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from sharpdepth.synth.scene import BOX, CYLINDER, ELLIPSOID, PLANE, Scene, SceneBuilder
from sharpdepth.synth.styles import HELD_OUT_STYLES, STYLES, TRAIN_STYLES, StyleSpec, build_scene
from sharpdepth.synth.styles.common import TEXTURES
from sharpdepth.synth.styles.draft import Draft, Footprints, KeepOut, place
from sharpdepth.synth.styles.outdoor import add_wire

SEEDS = (0, 1, 2, 3)
SIZE = 64
#: Horizontal field of view range per style, degrees.
FOV_RANGE = {
    "indoor": (40.0, 100.0),
    "street": (40.0, 100.0),
    "tabletop": (40.0, 90.0),
    "forest": (40.0, 100.0),
}


@pytest.fixture(scope="module")
def scenes() -> dict[tuple[str, int], Scene]:
    """Every style built for every seed in :data:`SEEDS` at 64x64."""
    return {
        (style, seed): build_scene(style, np.random.default_rng(seed), SIZE, SIZE)
        for style in STYLES
        for seed in SEEDS
    }


# --- a minimal independent ray caster ----------------------------------------------------------


def _camera_rays(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre ``[3]`` and world ray directions ``[N, 3]`` with unit camera-frame z."""
    cam = scene.camera
    v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float64)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=-1)
    dirs_cam = pix @ np.linalg.inv(cam.K).T
    return cam.position, dirs_cam @ cam.R


def _hit(kind: int, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Smallest positive ray parameter of rays ``o + t d`` with a unit shape (inf: miss)."""
    eps = 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == PLANE:
            t = -o[2] / d[:, 2]
            return np.where(t > eps, t, np.inf)
        if kind == BOX:
            t1, t2 = (-1 - o) / d, (1 - o) / d
            near = np.nanmax(np.minimum(t1, t2), axis=1)
            far = np.nanmin(np.maximum(t1, t2), axis=1)
            t = np.where(near > eps, near, far)
            return np.where(far >= np.maximum(near, eps), t, np.inf)
        if kind == ELLIPSOID:
            a, b, c = (d * d).sum(1), 2 * (d @ o), o @ o - 1
            disc = b * b - 4 * a * c
            sq = np.sqrt(np.maximum(disc, 0))
            t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
            t = np.where(t0 > eps, t0, np.where(t1 > eps, t1, np.inf))
            return np.where(disc >= 0, t, np.inf)
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = 2 * (o[0] * d[:, 0] + o[1] * d[:, 1])
        c = o[0] ** 2 + o[1] ** 2 - 1
        disc = b * b - 4 * a * c
        sq = np.sqrt(np.maximum(disc, 0))
        best = np.full(d.shape[0], np.inf)
        for t in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
            z = o[2] + t * d[:, 2]
            ok = (disc >= 0) & (a > 1e-15) & (t > eps) & (z >= 0) & (z <= 1)
            best = np.where(ok & (t < best), t, best)
        for cap in (0.0, 1.0):
            t = (cap - o[2]) / d[:, 2]
            x, y = o[0] + t * d[:, 0], o[1] + t * d[:, 1]
            ok = (t > eps) & (x * x + y * y <= 1)
            best = np.where(ok & (t < best), t, best)
        return best


def _depth(scene: Scene) -> np.ndarray:
    """``[H, W]`` z-depth in metres (inf where a ray hits nothing)."""
    origin, dirs = _camera_rays(scene)
    depth = np.full(dirs.shape[0], np.inf)
    for i, kind in enumerate(scene.kinds):
        a, b = scene.to_local[i, :, :3], scene.to_local[i, :, 3]
        depth = np.minimum(depth, _hit(int(kind), a @ origin + b, dirs @ a.T))
    return depth.reshape(scene.camera.height, scene.camera.width)


def _inside(kind: int, q: np.ndarray) -> bool:
    """True when the local point ``q`` lies inside (or on) the unit shape of ``kind``."""
    if kind == BOX:
        return bool(np.all(np.abs(q) <= 1.0))
    if kind == CYLINDER:
        return bool(q[0] ** 2 + q[1] ** 2 <= 1.0 and 0.0 <= q[2] <= 1.0)
    if kind == ELLIPSOID:
        return bool(q @ q <= 1.0)
    return False


# --- registry ----------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(STYLES) == {"indoor", "street", "tabletop", "forest"}
    assert set(TRAIN_STYLES) == {"indoor", "street", "tabletop"}
    assert HELD_OUT_STYLES == ("forest",)
    assert STYLES["forest"].held_out
    for name, spec in STYLES.items():
        assert isinstance(spec, StyleSpec)
        assert spec.name == name
        assert 0 < spec.depth_range[0] < spec.depth_range[1]
        assert spec.description
    with pytest.raises(FrozenInstanceError):
        STYLES["indoor"].held_out = True  # type: ignore[misc]


def test_unknown_style_lists_known_styles() -> None:
    with pytest.raises(ValueError, match=r"indoor.*street.*tabletop.*forest"):
        build_scene("moon", np.random.default_rng(0), SIZE, SIZE)


# --- every style, several seeds ----------------------------------------------------------


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("seed", SEEDS)
def test_scene_is_valid(scenes: dict[tuple[str, int], Scene], style: str, seed: int) -> None:
    scene = scenes[style, seed]
    assert scene.style == style
    assert scene.num_primitives > 10
    assert scene.num_instances > 3
    assert scene.instances.min() >= 1
    assert np.all(np.isfinite(scene.to_local)) and np.all(np.isfinite(scene.to_world))
    assert len(scene.materials) <= 40
    for mat in scene.materials:
        assert mat.texture in TEXTURES
        assert all(0.0 <= c <= 1.0 for c in mat.tint)
        assert mat.scale > 0
    assert scene.material_ids.max() < len(scene.materials)
    light = scene.light
    assert np.isclose(np.linalg.norm(light.direction), 1.0) and light.direction[2] > 0.2
    assert all(c > 0 for c in light.color) and all(c > 0 for c in light.ambient)
    if style in ("indoor", "tabletop"):
        assert scene.sky is None
    else:
        assert scene.sky is not None and len(scene.sky) == 2


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("seed", SEEDS)
def test_camera_intrinsics_and_pose(
    scenes: dict[tuple[str, int], Scene], style: str, seed: int
) -> None:
    cam = scenes[style, seed].camera
    assert (cam.height, cam.width) == (SIZE, SIZE)
    k = cam.K
    assert k[0, 0] == pytest.approx(k[1, 1])
    assert k[0, 2] == pytest.approx((SIZE - 1) / 2) and k[1, 2] == pytest.approx((SIZE - 1) / 2)
    fov = math.degrees(2 * math.atan(SIZE / 2 / k[0, 0]))
    lo, hi = FOV_RANGE[style]
    assert lo - 1e-6 <= fov <= hi + 1e-6
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)
    forward = cam.R[2]
    pitch = math.degrees(math.asin(forward[2]))
    if style == "tabletop":
        assert -61.0 <= pitch <= -14.0  # looking down at the table
    else:
        assert -31.0 <= pitch <= 21.0  # roughly horizontal
    assert cam.position[2] > 0.9


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("seed", SEEDS)
def test_camera_outside_every_solid(
    scenes: dict[tuple[str, int], Scene], style: str, seed: int
) -> None:
    scene = scenes[style, seed]
    p = scene.camera.position
    for i, kind in enumerate(scene.kinds):
        q = scene.to_local[i, :, :3] @ p + scene.to_local[i, :, 3]
        assert not _inside(int(kind), q), f"camera inside primitive {i} ({kind})"
        if kind == PLANE:  # camera strictly on the inner side of floors and walls
            assert abs(q[2]) > 0.05


@pytest.mark.parametrize("style", list(STYLES))
def test_same_seed_same_scene(style: str) -> None:
    a = build_scene(style, np.random.default_rng(7), SIZE, SIZE)
    b = build_scene(style, np.random.default_rng(7), SIZE, SIZE)
    for name in ("kinds", "to_local", "to_world", "instances", "material_ids", "bounds"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.materials == b.materials
    np.testing.assert_array_equal(a.camera.K, b.camera.K)
    np.testing.assert_array_equal(a.camera.R, b.camera.R)
    np.testing.assert_array_equal(a.camera.position, b.camera.position)
    np.testing.assert_array_equal(a.light.direction, b.light.direction)
    assert (a.light.color, a.light.ambient, a.sky) == (b.light.color, b.light.ambient, b.sky)


@pytest.mark.parametrize("style", list(STYLES))
def test_different_seeds_differ(style: str) -> None:
    a = build_scene(style, np.random.default_rng(1), SIZE, SIZE)
    b = build_scene(style, np.random.default_rng(2), SIZE, SIZE)
    assert a.num_primitives != b.num_primitives or not np.array_equal(a.to_local, b.to_local)
    assert not np.array_equal(a.camera.position, b.camera.position)


@pytest.mark.parametrize("style", list(STYLES))
def test_only_the_given_generator_is_used(style: str) -> None:
    np.random.seed(123)
    random.seed(123)
    np_state, py_state = np.random.get_state(), random.getstate()
    build_scene(style, np.random.default_rng(0), SIZE, SIZE)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert (
        after[0] == np_state[0]
        and np.array_equal(after[1], np_state[1])
        and after[2:] == np_state[2:]
    )


@pytest.mark.parametrize("style", list(STYLES))
def test_n_objects_controls_size(style: str) -> None:
    small = build_scene(style, np.random.default_rng(3), SIZE, SIZE, n_objects=3)
    big = build_scene(style, np.random.default_rng(3), SIZE, SIZE, n_objects=100)
    assert big.num_primitives >= 100
    assert big.num_primitives > small.num_primitives
    assert big.num_instances > small.num_instances
    assert build_scene(style, np.random.default_rng(3), SIZE, SIZE, n_objects=0).num_primitives >= 1


def test_non_square_image() -> None:
    scene = build_scene("indoor", np.random.default_rng(0), 48, 80)
    assert (scene.camera.height, scene.camera.width) == (48, 80)
    assert scene.camera.K[1, 2] == pytest.approx(23.5)


# --- coverage and metric scale (independent ray caster) --------------------------------


@pytest.mark.parametrize("style", list(STYLES))
@pytest.mark.parametrize("seed", SEEDS[:3])
def test_rays_hit_at_plausible_depths(
    scenes: dict[tuple[str, int], Scene], style: str, seed: int
) -> None:
    scene = scenes[style, seed]
    depth = _depth(scene)
    hit = np.isfinite(depth)
    lo, hi = STYLES[style].depth_range
    if scene.sky is None:
        assert hit.all(), "closed scenes must have depth everywhere"
    else:
        assert hit.mean() > 0.5
        _, dirs = _camera_rays(scene)
        below = dirs[:, 2].reshape(depth.shape) < -0.02
        assert hit[below].all(), "rays below the horizon must hit the ground or an object"
    valid = depth[hit]
    assert valid.min() > 0.02
    assert valid.max() < 1.5 * hi + 20.0
    assert 0.5 * lo <= float(np.median(valid)) <= hi


def test_indoor_room_dimensions(scenes: dict[tuple[str, int], Scene]) -> None:
    for seed in SEEDS:
        scene = scenes["indoor", seed]
        planes = np.flatnonzero(scene.kinds == PLANE)
        assert planes.size == 6
        origins = scene.to_world[planes, :, 3]
        normals = scene.to_world[planes, :, 2]
        heights = [o[2] for o, n in zip(origins, normals, strict=True) if abs(n[2]) > 0.99]
        assert 2.4 <= max(heights) - min(heights) <= 3.2
        assert 1.0 <= scene.camera.position[2] <= 1.8


def test_thin_structures_present(scenes: dict[tuple[str, int], Scene]) -> None:
    for style in STYLES:
        radii = []
        for seed in SEEDS:
            scene = scenes[style, seed]
            cyl = scene.kinds == CYLINDER
            radii.extend(np.linalg.norm(scene.to_world[cyl, :, 0], axis=1))
        assert min(radii) <= 0.02, style
        assert sum(r <= 0.03 for r in radii) >= 10, style


# --- helpers -----------------------------------------------------------------------------------


def test_draft_distance_and_commit() -> None:
    from sharpdepth.synth.scene import Material

    mat = Material("plain")
    d = Draft(label="test")
    d.box((0, 0, 0), (2, 2, 2), mat)
    d.new_part()
    d.cylinder((5, 0, 0), (5, 0, 2), 0.5, mat)
    d.ellipsoid((0, 5, 0), (1, 2, 0.5), mat)
    assert d.distance((3, 0, 0)) == pytest.approx(1.5)  # box face at x=1, cylinder side at x=4.5
    assert d.distance((0, 0, 0.5)) == 0.0
    assert d.distance((5, 0, 3)) == pytest.approx(1.0)  # above the cylinder cap
    assert not d.clear_of([KeepOut(np.array([0.0, 0.0, 1.5]), 0.6)])
    builder = SceneBuilder()
    ids = d.commit(builder)
    assert len(ids) == 2 and len(builder) == 3
    d.translate((1.0, 0.0, 0.0))
    assert d.distance((3, 0, 0)) == pytest.approx(1.0)


def test_place_respects_footprints_and_keepout() -> None:
    from sharpdepth.synth.scene import Material

    mat = Material("plain")
    builder = SceneBuilder()
    taken = Footprints()
    taken.add(0.0, 0.0, 1.0)

    def make_at(x: float) -> Draft:
        d = Draft(footprint=[(x, 0.0, 0.5)])
        d.sphere((x, 0.0, 0.5), 0.5, mat)
        return d

    assert place(builder, lambda: make_at(1.0), [], taken, tries=2) is None
    assert (
        place(
            builder, lambda: make_at(2.0), [KeepOut(np.array([2.0, 0.0, 0.5]), 0.1)], taken, tries=2
        )
        is None
    )
    assert place(builder, lambda: make_at(2.0), [], taken, tries=2) is not None
    assert len(builder) == 1 and len(taken.circles) == 2


def test_wire_sags() -> None:
    from sharpdepth.synth.scene import Material

    d = Draft()
    add_wire(d, (0, 0, 8), (20, 0, 8), sag=1.0, radius=0.015, mat=Material("plain"), segments=10)
    assert len(d) == 10
    lo, hi = d.bounds()
    assert lo[2] == pytest.approx(7.0 - 0.015)
    assert hi[2] == pytest.approx(8.015)
