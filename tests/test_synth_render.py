"""The synthetic engine's ray caster and renderer against analytic ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sharpdepth import geometry
from sharpdepth.synth import raycast
from sharpdepth.synth.render import render_scene
from sharpdepth.synth.scene import Camera, Light, Material, Scene, SceneBuilder

H, W = 48, 64
MAT = Material("plain", (0.8, 0.7, 0.6))


def _scene(builder: SceneBuilder, camera: Camera, sky: bool = True) -> Scene:
    light = Light(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]))
    return builder.build(camera, light, ((0.3, 0.5, 0.9), (0.8, 0.8, 0.85)) if sky else None)


def _cast(scene: Scene, supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    cam = scene.camera
    return raycast.cast(scene, raycast.camera_rays(cam.K, cam.R, cam.position, H, W, supersample))


def _pixel_rays(cam: Camera) -> np.ndarray:
    """``[H, W, 3]`` camera-frame directions with z = 1, computed independently of raycast."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    k = cam.K
    return np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)


def test_fronto_parallel_plane_has_constant_depth() -> None:
    b = SceneBuilder()
    b.plane((0.0, 3.25, 0.0), (0.0, -1.0, 0.0), MAT)
    cam = Camera.look_at((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), 70.0, H, W)
    t, prim = _cast(_scene(b, cam))
    assert (prim == 0).all()
    np.testing.assert_allclose(t, 3.25, rtol=1e-12)
    rendering = render_scene(_scene(b, cam))
    np.testing.assert_allclose(rendering.depth, 3.25, rtol=1e-7)
    assert rendering.mask.all() and (rendering.instances == 1).all()


def test_tilted_ground_plane_matches_formula_and_back_projects_coplanar() -> None:
    b = SceneBuilder()
    b.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), MAT)
    cam = Camera.look_at((0.0, 0.0, 1.5), (0.0, 4.0, 0.0), 80.0, H, W, roll_deg=7.0)
    scene = _scene(b, cam)
    t, prim = _cast(scene)
    # ray in world: R^T d_cam; it meets z = 0 at t = -1.5 / d_world_z
    d_world = _pixel_rays(cam) @ cam.R
    with np.errstate(divide="ignore"):
        expected = np.where(d_world[..., 2] < 0, -1.5 / d_world[..., 2], np.inf)
    np.testing.assert_allclose(t, expected, rtol=1e-10)
    hit = prim >= 0
    assert hit.any() and (~hit).any()  # horizon in view
    # back-project with K only: the points must be coplanar (the ground seen from the camera)
    depth = torch.from_numpy(np.where(hit, t, 0.0))
    pts = geometry.depth_to_points(depth, torch.from_numpy(cam.K)).numpy()[hit]
    centred = pts - pts.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    assert singular[-1] < 1e-6 * singular[0]  # depth_to_points works in float32
    # and in world coordinates they lie on z = 0
    world = pts.astype(np.float64) @ cam.R + cam.position
    np.testing.assert_allclose(world[:, 2], 0.0, atol=1e-5 * np.abs(pts).max())


def test_sphere_depth_matches_closed_form() -> None:
    centre, radius = np.array([0.3, 4.0, 1.2]), 0.9
    b = SceneBuilder()
    b.sphere(centre, radius, MAT)
    cam = Camera.look_at((0.0, 0.0, 1.0), (0.0, 4.0, 1.0), 60.0, H, W)
    t, prim = _cast(_scene(b, cam))
    d = _pixel_rays(cam) @ cam.R
    oc = cam.position - centre
    a = np.einsum("hwc,hwc->hw", d, d)
    half_b = d @ oc
    c = oc @ oc - radius**2
    disc = half_b**2 - a * c
    inside = disc > 1e-9
    np.testing.assert_array_equal(prim[inside] == 0, True)
    assert (prim[disc < -1e-9] == -1).all()
    expected = (-half_b - np.sqrt(np.maximum(disc, 0))) / a
    np.testing.assert_allclose(t[inside], expected[inside], rtol=1e-10)


def test_box_and_cylinder_faces() -> None:
    b = SceneBuilder()
    b.box((0.0, 5.0, 1.0), (2.0, 1.0, 2.0), MAT)  # front face at y = 4.5
    b.cylinder((-3.0, 3.0, 0.0), (-3.0, 3.0, 3.0), 0.25, MAT)  # vertical pole
    cam = Camera.look_at((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), 90.0, H, W)
    t, prim = _cast(_scene(b, cam))
    d = _pixel_rays(cam) @ cam.R
    box = prim == 0
    assert box.sum() > 20
    np.testing.assert_allclose(t[box] * d[box][:, 1], 4.5, rtol=1e-12)  # y of the hit point
    pole = prim == 1
    assert pole.any()
    hits = cam.position + t[pole][:, None] * d[pole]
    radial = np.hypot(hits[:, 0] + 3.0, hits[:, 1] - 3.0)
    np.testing.assert_allclose(radial, 0.25, rtol=1e-9)


def test_odd_supersampling_keeps_depth_of_the_centre_ray() -> None:
    b = SceneBuilder()
    b.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), MAT)
    b.sphere((0.0, 3.0, 0.8), 0.5, MAT)
    b.cylinder((0.6, 2.5, 0.0), (0.6, 2.5, 2.0), 0.01, MAT)
    cam = Camera.look_at((0.0, 0.0, 1.0), (0.0, 3.0, 0.8), 60.0, H, W)
    scene = _scene(b, cam)
    one, three = render_scene(scene, supersample=1), render_scene(scene, supersample=3)
    np.testing.assert_array_equal(one.depth, three.depth)
    np.testing.assert_array_equal(one.instances, three.instances)
    two = render_scene(scene, supersample=2)
    np.testing.assert_array_equal(one.depth, two.depth)
    # anti-aliasing blends colours at edges only: RGB differs, depth never blends
    assert not np.allclose(one.rgb, three.rgb)


def test_sky_pixels_have_no_depth_and_sky_colour() -> None:
    b = SceneBuilder()
    b.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), MAT)
    cam = Camera.look_at((0.0, 0.0, 1.5), (0.0, 10.0, 1.5), 70.0, H, W)
    rendering = render_scene(_scene(b, cam), shadows=False)
    sky = ~rendering.mask
    assert sky[0].all() and not sky[-1].any()  # top row sky, bottom row ground
    assert (rendering.depth[sky] == 0).all() and (rendering.instances[sky] == 0).all()
    assert (rendering.depth[~sky] > 0).all()
    top = rendering.rgb[0].mean(axis=0)
    assert top[2] > top[0]  # bluish sky


def test_cast_shadow_darkens_the_ground_under_a_box() -> None:
    b = SceneBuilder()
    b.plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), Material("plain"))
    b.box((0.0, 4.0, 1.5), (1.0, 1.0, 0.2), Material("plain"))  # a floating slab
    cam = Camera.look_at((0.0, 0.0, 2.0), (0.0, 4.0, 0.0), 70.0, H, W)
    light = np.array([-0.6, 0.0, 0.8])  # from the left: the shadow falls 1.125 m to the right
    scene = b.build(cam, Light(light), None)
    lit = render_scene(scene, shadows=False)
    shadowed = render_scene(scene, shadows=True)
    t, prim = _cast(scene)
    rays = raycast.camera_rays(cam.K, cam.R, cam.position, H, W).directions
    pts = cam.position + t[..., None] * rays
    centre = np.array([0.0, 4.0, 1.5]) - light * (1.5 / light[2])
    in_shadow = (prim == 0) & (np.abs(pts[..., 0] - centre[0]) < 0.35)
    in_shadow &= np.abs(pts[..., 1] - centre[1]) < 0.35
    assert in_shadow.sum() > 3
    assert shadowed.rgb[in_shadow].mean() < 0.5 * lit.rgb[in_shadow].mean()
    far = (prim == 0) & (np.abs(pts[..., 0] - centre[0]) > 1.5)
    assert far.sum() > 100
    np.testing.assert_allclose(shadowed.rgb[far], lit.rgb[far], rtol=1e-6)


@pytest.mark.parametrize("kind_index", [0, 1, 2, 3])
def test_no_nan_from_axis_aligned_rays(kind_index: int) -> None:
    """Rays exactly parallel to faces (zero direction components) must not produce NaN."""
    b = SceneBuilder()
    [
        lambda: b.plane((0.0, 2.0, 0.0), (0.0, -1.0, 0.0), MAT),
        lambda: b.box((0.0, 3.0, 1.0), (1.0, 1.0, 1.0), MAT),
        lambda: b.cylinder((0.0, 3.0, 0.5), (0.0, 3.0, 1.5), 0.5, MAT),
        lambda: b.sphere((0.0, 3.0, 1.0), 0.5, MAT),
    ][kind_index]()
    cam = Camera.look_at((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), 60.0, 9, 9)
    scene = b.build(cam, Light(np.array([0.0, 0.0, 1.0])), None)
    rendering = render_scene(scene)
    assert np.isfinite(rendering.depth).all() and np.isfinite(rendering.rgb).all()
    assert rendering.mask[4, 4]


@pytest.mark.parametrize("style", ["indoor", "street", "tabletop", "forest"])
def test_culled_cast_equals_brute_force(style: str) -> None:
    """Screen-space culling and batching never change a hit: compare with testing every ray."""
    from sharpdepth.synth.styles import build_scene

    scene = build_scene(style, np.random.default_rng(11), 40, 56)
    cam = scene.camera
    grid = raycast.camera_rays(cam.K, cam.R, cam.position, 40, 56)
    t, prim = raycast.cast(scene, grid)
    dirs = grid.directions.reshape(-1, 3)
    best = np.full(dirs.shape[0], np.inf)
    for i in range(scene.num_primitives):
        m = scene.to_local[i]
        ti = raycast.intersect_local(
            int(scene.kinds[i]), m[:, :3] @ cam.position + m[:, 3], dirs @ m[:, :3].T
        )
        best = np.minimum(best, ti)
    best = best.reshape(40, 56)
    np.testing.assert_array_equal(np.isfinite(t), np.isfinite(best))
    np.testing.assert_allclose(t[np.isfinite(t)], best[np.isfinite(best)], rtol=1e-9)
    assert ((prim >= 0) == np.isfinite(t)).all()
