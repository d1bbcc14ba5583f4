"""Rendering a :class:`~sharpdepth.synth.scene.Scene`: exact depth, shaded RGB, sky, shadows.

Depth is the z-depth of the single ray through each pixel centre (never blended across
an edge); the RGB image may be super-sampled (``supersample`` sub-samples per pixel
side, box-filtered) and is lit by a directional key light with cast shadows (a
shadow map rendered with the same ray caster) plus ambient light, then passed through
camera effects (see :mod:`sharpdepth.synth.camera_effects`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sharpdepth.synth import raycast
from sharpdepth.synth.sample import SynthSample
from sharpdepth.synth.scene import PLANE, Scene
from sharpdepth.synth.textures import TextureBank, get_texture_bank

LOGGER = logging.getLogger(__name__)

#: Cells per side of the (near) shadow map: this fraction of the larger image side,
#: within the bounds below.
SHADOW_MAP_SCALE = 0.75
SHADOW_MAP_MIN, SHADOW_MAP_MAX = 96, 1024
#: Default RGB sub-samples per pixel side (odd, so the middle one is the depth ray).
DEFAULT_SUPERSAMPLE = 1


@dataclass
class Rendering:
    """Raw renderer output for one camera.

    Attributes:
        rgb: ``float32 [H, W, 3]`` linear radiance, about ``[0, 1]`` (before camera effects).
        depth: ``float32 [H, W]`` z-depth in metres, 0 where no surface.
        mask: ``bool [H, W]`` valid depth.
        instances: ``int32 [H, W]`` instance ids, 0 = sky.
    """

    rgb: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    instances: np.ndarray


def render_scene(
    scene: Scene, supersample: int = DEFAULT_SUPERSAMPLE, shadows: bool = True
) -> Rendering:
    """Render depth, instance ids and shaded RGB of ``scene``'s camera.

    Args:
        scene: the scene.
        supersample: RGB sub-samples per pixel side (1 = none).
        shadows: whether the key light casts shadows.
    """
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    cam = scene.camera
    h, w, s = cam.height, cam.width, int(supersample)
    grid = raycast.camera_rays(cam.K, cam.R, cam.position, h, w, s)
    t, prim = raycast.cast(scene, grid)
    if s == 1:
        t_px, prim_px = t, prim
    elif s % 2 == 1:
        t_px, prim_px = t[s // 2 :: s, s // 2 :: s], prim[s // 2 :: s, s // 2 :: s]
    else:  # no sub-sample sits on the pixel centre: cast the depth rays separately
        t_px, prim_px = raycast.cast(
            scene, raycast.camera_rays(cam.K, cam.R, cam.position, h, w, 1)
        )
    mask = prim_px >= 0
    depth = np.where(mask, t_px, 0.0).astype(np.float32)
    instances = np.where(mask, scene.instances[np.maximum(prim_px, 0)], 0).astype(np.int32)

    bank = get_texture_bank()
    radiance = _shade(scene, grid, t, prim, bank, shadows, s)
    if s > 1:
        radiance = radiance.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    return Rendering(rgb=radiance.astype(np.float32), depth=depth, mask=mask, instances=instances)


def _shade(
    scene: Scene,
    grid: raycast.RayGrid,
    t: np.ndarray,
    prim: np.ndarray,
    bank: TextureBank,
    shadows: bool,
    supersample: int,
) -> np.ndarray:
    """Radiance ``[Hs, Ws, 3]`` of every ray: textured Lambertian surfaces and sky."""
    hs, ws = prim.shape
    out = np.empty((hs, ws, 3))
    dirs = grid.directions.reshape(-1, 3)
    hit = (prim >= 0).reshape(-1)
    out_flat = out.reshape(-1, 3)
    if (~hit).any():
        out_flat[~hit] = _sky(scene, dirs[~hit])
    if not hit.any():
        return out
    p = prim.reshape(-1)[hit]
    t_hit = t.reshape(-1)[hit]
    points, normals, uv = raycast.surface_attributes(scene, grid.origins, dirs[hit], t_hit, p)
    mat = scene.material_ids[p]
    tex_index = np.array([bank.index(m.texture) for m in scene.materials])
    scales = np.array([m.scale for m in scene.materials])[mat]
    tints = np.array([m.tint for m in scene.materials])[mat]
    # texture footprint of one (sub-)pixel, in texture repeats, selects the mip level
    footprint = t_hit / (scene.camera.K[0, 0] * supersample) / scales
    albedo = bank.sample_many(
        tex_index[mat], uv[:, 0] / scales, uv[:, 1] / scales, lod=bank.lod(footprint)
    )
    albedo = albedo * tints
    light = scene.light
    lambert = np.clip(normals @ light.direction, 0.0, None)
    if shadows:
        longer = max(scene.camera.height, scene.camera.width)
        size = int(np.clip(SHADOW_MAP_SCALE * longer, SHADOW_MAP_MIN, SHADOW_MAP_MAX))
        lambert = lambert * shadow_factor(scene, points, normals, lambert > 0, size)
    ambient = np.asarray(light.ambient)[None, :]
    out_flat[hit] = albedo * (ambient + lambert[:, None] * np.asarray(light.color)[None, :])
    return out


def _sky(scene: Scene, directions: np.ndarray) -> np.ndarray:
    """Sky radiance ``[N, 3]`` for ray directions ``[N, 3]``: horizon-to-zenith gradient."""
    if scene.sky is None:
        return np.zeros((directions.shape[0], 3))
    zenith, horizon = (np.asarray(c, dtype=np.float64) for c in scene.sky)
    elevation = directions[:, 2] / np.linalg.norm(directions, axis=1)
    f = np.clip(elevation, 0.0, 1.0)[:, None] ** 0.6
    return horizon[None, :] * (1.0 - f) + zenith[None, :] * f


#: Fraction of the lit points (nearest first) covered by the fine shadow cascade.
NEAR_CASCADE_FRACTION = 0.7


def shadow_factor(
    scene: Scene, points: np.ndarray, normals: np.ndarray, needed: np.ndarray, size: int = 256
) -> np.ndarray:
    """Fraction ``[N]`` in ``[0, 1]`` of the key light reaching each point (1 = lit).

    Shadow maps are ray-cast along the light direction over the footprint of the points
    that need them, in two cascades: a fine one (``size`` cells per side) for the
    nearest 70 % of the points and a coarse one (half as many) for the rest, so distant
    ground does not blur nearby shadows. Planes
    (floors, walls, ground) receive shadows but cast none. Lookups are offset along
    the normal and filtered over 2 x 2 cells.

    Args:
        scene: the scene.
        points: ``[N, 3]`` surface points, metres.
        normals: ``[N, 3]`` their unit normals.
        needed: ``[N]`` bool, points facing the light (others keep factor 1).
        size: shadow-map cells per side.
    """
    factor = np.ones(points.shape[0])
    casters = np.flatnonzero(scene.kinds != PLANE)
    if casters.size == 0 or not needed.any():
        return factor
    light = np.asarray(scene.light.direction, dtype=np.float64)
    light = light / np.linalg.norm(light)
    helper = np.array([1.0, 0.0, 0.0]) if abs(light[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    axis_a = np.cross(light, helper)
    axis_a /= np.linalg.norm(axis_a)
    axis_b = np.cross(light, axis_a)
    lo, hi = scene.bounds[casters, 0], scene.bounds[casters, 1]
    top = float(np.max(np.maximum(lo * light, hi * light).sum(axis=1))) + 1.0
    frame = (axis_a, axis_b, light, top)
    idx = np.flatnonzero(needed)
    distance = np.linalg.norm(points[idx] - scene.camera.position, axis=1)
    split = np.quantile(distance, NEAR_CASCADE_FRACTION)
    near, far = idx[distance <= split], idx[distance > split]
    for part, cells in ((near, size), (far, max(size // 2, 64))):
        if part.size:
            factor[part] = _shadow_lookup(scene, casters, frame, points[part], normals[part], cells)
    return factor


def _shadow_lookup(
    scene: Scene,
    casters: np.ndarray,
    frame: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    pts: np.ndarray,
    normals: np.ndarray,
    size: int,
) -> np.ndarray:
    """One shadow-map cascade covering ``pts`` ``[M, 3]``; returns the lit fraction ``[M]``."""
    axis_a, axis_b, light, top = frame
    pa, pb = pts @ axis_a, pts @ axis_b
    span = max(float(pa.max() - pa.min()), float(pb.max() - pb.min()), 1e-3)
    cell = span / (size - 4)
    q = pts + normals * (1.5 * cell)
    qa, qb, qh = q @ axis_a, q @ axis_b, q @ light
    a0, b0 = float(qa.min()) - 2 * cell, float(qb.min()) - 2 * cell
    ext_a = (a0, a0 + size * cell)
    ext_b = (b0, b0 + size * cell)
    grid = raycast.orthographic_rays(axis_a, axis_b, -light, light * top, ext_a, ext_b, size)
    t, _ = raycast.cast(scene, grid, casters)
    occluder = np.where(np.isfinite(t), top - t, -np.inf)  # first caster's height along the light
    rows = (qa - ext_a[0]) / cell - 0.5
    cols = (qb - ext_b[0]) / cell - 0.5
    r0 = np.clip(np.floor(rows).astype(np.int64), 0, size - 2)
    c0 = np.clip(np.floor(cols).astype(np.int64), 0, size - 2)
    fr = np.clip(rows - r0, 0.0, 1.0)
    fc = np.clip(cols - c0, 0.0, 1.0)
    bias = 0.5 * cell
    lit = np.zeros(pts.shape[0])
    for dr, dc, weight in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        lit += weight * (occluder[r0 + dr, c0 + dc] <= qh + bias)
    return lit


def render_sample(
    style: str,
    seed: int,
    height: int,
    width: int,
    n_objects: int | None = None,
    supersample: int = DEFAULT_SUPERSAMPLE,
    effects: float = 1.0,
) -> SynthSample:
    """Build and render one sample of ``style``, deterministic in all arguments.

    Args:
        style: a name from :data:`sharpdepth.synth.styles.STYLES`.
        seed: seeds the scene layout, materials, camera, light and camera effects.
        height: image height in pixels.
        width: image width in pixels.
        n_objects: approximate number of objects (style default when ``None``).
        supersample: RGB sub-samples per pixel side.
        effects: strength of the camera effects (0 = none).
    """
    from sharpdepth.synth.camera_effects import apply_camera_effects
    from sharpdepth.synth.styles import build_scene

    rng = np.random.default_rng(seed)
    scene = build_scene(style, rng, height, width, n_objects)
    rendering = render_scene(scene, supersample=supersample)
    rgb = apply_camera_effects(rendering.rgb, rng, strength=effects)
    return SynthSample(
        rgb=rgb,
        depth=rendering.depth,
        mask=rendering.mask,
        K=scene.camera.K.copy(),
        instances=rendering.instances,
        style=style,
        seed=int(seed),
    )
