"""Exact ray casting of analytic primitives, vectorised with numpy.

Each primitive is the affine image of a unit shape (see :mod:`sharpdepth.synth.scene`).
A ray ``o + t d`` is mapped to local coordinates (``o' = A o + b``, ``d' = A d``), which
keeps the ray parameter ``t``, and intersected with the unit shape in closed form, in
float64. With camera rays whose direction has camera-frame ``z`` component 1, ``t`` *is*
the z-depth in metres.

Rays live on a 2-D grid (pixels of a camera, cells of a shadow map). Before testing a
primitive, its bounding box is projected onto the grid and only the rays in that
rectangle are tested, so the cost is proportional to the area each primitive covers
rather than ``rays x primitives``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sharpdepth.synth.scene import BOX, CYLINDER, ELLIPSOID, PLANE, Scene

LOGGER = logging.getLogger(__name__)

#: Smallest accepted ray parameter: hits closer than this are ignored (metres along a
#: camera ray with unit z, i.e. 0.1 mm of depth).
T_MIN = 1e-4

#: ``[8, 3]`` corners of the unit cube.
_CORNERS = np.array(
    [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64
)


@dataclass
class RayGrid:
    """Rays on an ``[H, W]`` grid.

    Attributes:
        origins: ``[H, W, 3]`` ray origins, or ``[3]`` when all rays share one origin.
        directions: ``[H, W, 3]`` ray directions (not necessarily unit).
        project: maps world points ``[N, 3]`` to fractional grid coordinates
            ``(rows [N], cols [N], in_front [N] bool)``; used to find the rays a
            primitive's bounding box can cover.
        depth: for perspective grids, the camera-frame ``z`` of world points ``[N, 3]``
            (used to clip boxes at the near plane); ``None`` for orthographic grids.
    """

    origins: np.ndarray
    directions: np.ndarray
    project: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]
    depth: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.directions.shape[0]), int(self.directions.shape[1])


def camera_rays(
    k: np.ndarray,
    rotation: np.ndarray,
    position: np.ndarray,
    height: int,
    width: int,
    supersample: int = 1,
) -> RayGrid:
    """Rays through pixel centres (or a ``supersample x supersample`` sub-grid) of a camera.

    Args:
        k: ``[3, 3]`` intrinsics (pixel-centre convention).
        rotation: ``[3, 3]`` world-to-camera rotation.
        position: ``[3]`` camera centre, metres.
        height: image height in pixels.
        width: image width in pixels.
        supersample: sub-samples per pixel side; sample ``(i, j)`` of pixel ``(v, u)``
            sits at ``(v + (i + 0.5) / s - 0.5, u + (j + 0.5) / s - 0.5)``. With an odd
            ``s`` the middle sample is the pixel centre.

    Returns:
        A :class:`RayGrid` of shape ``[H * s, W * s]`` whose directions have camera-frame
        ``z = 1`` (so the hit parameter is z-depth).
    """
    s = int(supersample)
    offsets = (np.arange(s) + 0.5) / s - 0.5
    vs = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    us = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    fx, fy, cx, cy, skew = k[0, 0], k[1, 1], k[0, 2], k[1, 2], k[0, 1]
    y_cam = (vs - cy) / fy
    x_cam = (us[None, :] - cx - skew * y_cam[:, None]) / fx
    dirs_cam = np.empty((vs.size, us.size, 3))
    dirs_cam[..., 0] = x_cam
    dirs_cam[..., 1] = y_cam[:, None]
    dirs_cam[..., 2] = 1.0
    dirs_world = dirs_cam @ rotation  # rows: R^T d
    pos = np.asarray(position, dtype=np.float64)

    def project(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cam = (points - pos) @ rotation.T
        z = cam[:, 2]
        in_front = z > T_MIN
        safe = np.where(in_front, z, 1.0)
        u = (fx * cam[:, 0] + skew * cam[:, 1]) / safe + cx
        v = fy * cam[:, 1] / safe + cy
        # fractional sub-grid coordinates
        return (v + 0.5) * s - 0.5, (u + 0.5) * s - 0.5, in_front

    def depth(points: np.ndarray) -> np.ndarray:
        return np.asarray((points - pos) @ rotation[2])

    return RayGrid(origins=pos, directions=dirs_world, project=project, depth=depth)


def orthographic_rays(
    axis_a: np.ndarray,
    axis_b: np.ndarray,
    direction: np.ndarray,
    start: np.ndarray,
    extent_a: tuple[float, float],
    extent_b: tuple[float, float],
    size: int,
) -> RayGrid:
    """Parallel rays on a ``[size, size]`` grid (a directional light's view).

    Args:
        axis_a: ``[3]`` unit vector of grid rows.
        axis_b: ``[3]`` unit vector of grid columns.
        direction: ``[3]`` unit ray direction (perpendicular to both axes).
        start: ``[3]`` a point on the plane the rays start from.
        extent_a: ``(min, max)`` of the grid along ``axis_a``, metres.
        extent_b: ``(min, max)`` along ``axis_b``.
        size: cells per side.
    """
    a0, a1 = extent_a
    b0, b1 = extent_b
    da, db = (a1 - a0) / size, (b1 - b0) / size
    ca = a0 + (np.arange(size) + 0.5) * da
    cb = b0 + (np.arange(size) + 0.5) * db
    base = start - axis_a * float(start @ axis_a) - axis_b * float(start @ axis_b)
    origins = base + ca[:, None, None] * axis_a + cb[None, :, None] * axis_b
    dirs = np.broadcast_to(direction, origins.shape)

    def project(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = (points @ axis_a - a0) / da - 0.5
        cols = (points @ axis_b - b0) / db - 0.5
        return rows, cols, np.ones(points.shape[0], dtype=bool)

    return RayGrid(origins=origins, directions=dirs, project=project)


def intersect_local(kind: int, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameters of the first hit with a unit shape; ``inf`` where there is none.

    Args:
        kind: ``PLANE``, ``BOX``, ``CYLINDER`` or ``ELLIPSOID``.
        o: ``[N, 3]`` or ``[3]`` local ray origins.
        d: ``[N, 3]`` local ray directions.

    Returns:
        ``[N]`` float64, the smallest ``t > T_MIN`` on the surface, else ``inf``.
    """
    o = np.broadcast_to(o, d.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == PLANE:
            t = -o[:, 2] / d[:, 2]
            return np.where(t > T_MIN, t, np.inf)
        if kind == BOX:
            inv = 1.0 / d
            t1 = (-1.0 - o) * inv
            t2 = (1.0 - o) * inv
            lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)  # NaN (0 * inf) slabs are ignored
            near = np.fmax(np.fmax(lo[:, 0], lo[:, 1]), lo[:, 2])
            far = np.fmin(np.fmin(hi[:, 0], hi[:, 1]), hi[:, 2])
            hit = (near <= far) & (far > T_MIN)
            t = np.where(near > T_MIN, near, far)
            return np.where(hit, t, np.inf)
        if kind == ELLIPSOID:
            a = np.einsum("ij,ij->i", d, d)
            b = np.einsum("ij,ij->i", o, d)
            c = np.einsum("ij,ij->i", o, o) - 1.0
            disc = b * b - a * c
            root = np.sqrt(np.maximum(disc, 0.0))
            t0 = (-b - root) / a
            t1 = (-b + root) / a
            t = np.where(t0 > T_MIN, t0, t1)
            return np.where((disc >= 0) & (t > T_MIN), t, np.inf)
        if kind == CYLINDER:
            return _intersect_cylinder(o, d)
    raise ValueError(f"unknown primitive kind {kind}")


def _intersect_cylinder(o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """First hit with the capped unit cylinder ``x^2 + y^2 <= 1``, ``0 <= z <= 1``."""
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - 1.0
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    best = np.full(d.shape[0], np.inf)
    ok = (disc >= 0) & (a > 0)
    for sign in (-1.0, 1.0):
        t = (-b + sign * root) / a
        z = o[:, 2] + t * d[:, 2]
        valid = ok & (t > T_MIN) & (z >= 0.0) & (z <= 1.0)
        best = np.where(valid & (t < best), t, best)
    for plane_z in (0.0, 1.0):
        t = (plane_z - o[:, 2]) / d[:, 2]
        x = o[:, 0] + t * d[:, 0]
        y = o[:, 1] + t * d[:, 1]
        valid = (t > T_MIN) & (x * x + y * y <= 1.0)
        best = np.where(valid & (t < best), t, best)
    return best


#: Ray-primitive pairs tested per vectorised batch (bounds the temporary memory).
PAIR_CHUNK = 1 << 18


def grid_rects(scene: Scene, grid: RayGrid, primitives: np.ndarray) -> np.ndarray:
    """Grid rectangles of the rays that may hit each primitive.

    Args:
        scene: the scene.
        grid: the rays.
        primitives: ``[Q]`` primitive indices.

    Returns:
        ``[Q, 4]`` int64 ``(r0, r1, c0, c1)``, half-open; empty (``r0 == r1``) when the
        primitive cannot be hit. Planes get the whole grid; bounding boxes that cross
        a camera's near plane are cut by it first.
    """
    h, w = grid.shape
    rects = np.zeros((primitives.size, 4), dtype=np.int64)
    full = scene.kinds[primitives] == PLANE
    finite = np.flatnonzero(~full)
    if finite.size:
        corners = scene.corners[primitives[finite]]  # oriented boxes, same corner order
        points = _clip_to_front(corners, grid)  # [Q, 8 + 12, 3]: corners and near-plane cuts
        rows, cols, in_front = grid.project(points.reshape(-1, 3))
        rows, cols, in_front = (a.reshape(points.shape[0], -1) for a in (rows, cols, in_front))
        in_front &= np.isfinite(points).all(axis=2)
        visible: np.ndarray = np.asarray(in_front.any(axis=1))
        rows = np.where(in_front, rows, np.nan)
        cols = np.where(in_front, cols, np.nan)
        with np.errstate(invalid="ignore"):
            r0 = np.floor(np.nanmin(np.where(visible[:, None], rows, 0.0), axis=1))
            r1 = np.ceil(np.nanmax(np.where(visible[:, None], rows, 0.0), axis=1)) + 1
            c0 = np.floor(np.nanmin(np.where(visible[:, None], cols, 0.0), axis=1))
            c1 = np.ceil(np.nanmax(np.where(visible[:, None], cols, 0.0), axis=1)) + 1
        box = np.stack([r0, r1, c0, c1], axis=1)
        box = np.clip(np.nan_to_num(box, nan=0.0), -1, max(h, w) + 1).astype(np.int64)
        box[:, 0:2] = np.clip(box[:, 0:2], 0, h)
        box[:, 2:4] = np.clip(box[:, 2:4], 0, w)
        box[~visible] = 0
        rects[finite] = box
    rects[full] = (0, h, 0, w)
    empty = (rects[:, 0] >= rects[:, 1]) | (rects[:, 2] >= rects[:, 3])
    rects[empty] = 0
    return rects


#: ``[12, 2]`` corner indices of the cube's edges (corners ordered as ``_CORNERS``).
_EDGES = np.array(
    [
        (a, b)
        for a in range(8)
        for b in range(a + 1, 8)
        if np.abs(_CORNERS[a] - _CORNERS[b]).sum() == 2
    ]
)


def _clip_to_front(corners: np.ndarray, grid: RayGrid) -> np.ndarray:
    """Box corners plus the points where box edges cross the grid's near plane.

    For a box partly behind a camera, the visible part is the box cut by the near plane;
    its image is bounded by the projections of the corners in front and of these cut
    points. Cut points are NaN where an edge does not cross the plane.

    Args:
        corners: ``[Q, 8, 3]`` world corners.
        grid: the rays (its ``depth`` tells which side of the near plane a point is on).

    Returns:
        ``[Q, 20, 3]``.
    """
    if grid.depth is None:
        return corners
    z = grid.depth(corners.reshape(-1, 3)).reshape(corners.shape[:2]) - 2 * T_MIN
    za, zb = z[:, _EDGES[:, 0]], z[:, _EDGES[:, 1]]
    crosses = (za > 0) != (zb > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(crosses, za / (za - zb), np.nan)
    a, b = corners[:, _EDGES[:, 0]], corners[:, _EDGES[:, 1]]
    cuts = a + f[..., None] * (b - a)
    return np.concatenate([corners, cuts], axis=1)


def _pairs(rects: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (primitive slot, flat ray index) pair covered by ``rects`` ``[Q, 4]``."""
    heights = rects[:, 1] - rects[:, 0]
    widths = rects[:, 3] - rects[:, 2]
    areas = heights * widths
    total = int(areas.sum())
    slot = np.repeat(np.arange(rects.shape[0]), areas)
    offset = np.arange(total) - np.repeat(np.cumsum(areas) - areas, areas)
    w_rep = widths[slot]
    rows = rects[slot, 0] + offset // w_rep
    cols = rects[slot, 2] + offset % w_rep
    return slot, rows * width + cols


def _chunks(areas: np.ndarray, limit: int) -> list[np.ndarray]:
    """Split indices ``0..Q-1`` into consecutive groups whose ``areas`` sum to about ``limit``."""
    groups: list[np.ndarray] = []
    bounds = np.cumsum(areas)
    start, base = 0, 0
    while start < areas.size:
        stop = int(np.searchsorted(bounds, base + limit, side="right"))
        stop = max(stop, start + 1)
        groups.append(np.arange(start, stop))
        base = int(bounds[stop - 1])
        start = stop
    return groups


#: Primitives covering at least this many rays are intersected on their own grid
#: rectangle (no gathering); smaller ones in batches of ray-primitive pairs.
DENSE_AREA = 1 << 13


def cast(
    scene: Scene, grid: RayGrid, primitives: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Closest hit of every ray of ``grid``.

    Large primitives (walls, the ground) are intersected with the rays of their grid
    rectangle directly; small ones as gathered ray-primitive pairs in vectorised batches
    per kind. The closest hit per ray wins; exact ties go to the lower primitive index.

    Args:
        scene: the scene.
        grid: the rays.
        primitives: indices of the primitives to test (default: all).

    Returns:
        ``t`` ``[H, W]`` float64 (``inf`` on a miss) and ``prim`` ``[H, W]`` int64
        (index of the primitive hit, ``-1`` on a miss).
    """
    h, w = grid.shape
    prims = np.arange(scene.num_primitives) if primitives is None else np.asarray(primitives)
    rects = grid_rects(scene, grid, prims)
    areas = (rects[:, 1] - rects[:, 0]) * (rects[:, 3] - rects[:, 2])
    best_t = np.full(h * w, np.inf)
    best_p = np.full(h * w, np.iinfo(np.int64).max, dtype=np.int64)
    for slot in np.flatnonzero(areas >= DENSE_AREA):
        _cast_dense(scene, grid, int(prims[slot]), rects[slot], best_t, best_p)
    small = (areas > 0) & (areas < DENSE_AREA)
    for kind in np.unique(scene.kinds[prims[small]]):
        of_kind = np.flatnonzero(small & (scene.kinds[prims] == kind))
        for group in _chunks(areas[of_kind], PAIR_CHUNK):
            chosen = of_kind[group]
            ray, t, prim = _cast_pairs(scene, grid, int(kind), prims[chosen], rects[chosen])
            before = best_t.copy()
            np.minimum.at(best_t, ray, t)
            best_p[best_t < before] = np.iinfo(np.int64).max  # new owner: forget the old one
            win = t == best_t[ray]
            np.minimum.at(best_p, ray[win], prim[win])
    best_p[~np.isfinite(best_t)] = -1
    return best_t.reshape(h, w), best_p.reshape(h, w)


def _cast_dense(
    scene: Scene,
    grid: RayGrid,
    index: int,
    rect: np.ndarray,
    best_t: np.ndarray,
    best_p: np.ndarray,
) -> None:
    """Intersect one primitive with the rays of its rectangle; update the flat bests in place."""
    h, w = grid.shape
    r0, r1, c0, c1 = (int(v) for v in rect)
    m = scene.to_local[index]
    d = grid.directions[r0:r1, c0:c1].reshape(-1, 3) @ m[:, :3].T
    if grid.origins.ndim == 1:
        o = m[:, :3] @ grid.origins + m[:, 3]
    else:
        o = grid.origins[r0:r1, c0:c1].reshape(-1, 3) @ m[:, :3].T + m[:, 3]
    t = intersect_local(int(scene.kinds[index]), o, d).reshape(r1 - r0, c1 - c0)
    view_t = best_t.reshape(h, w)[r0:r1, c0:c1]
    view_p = best_p.reshape(h, w)[r0:r1, c0:c1]
    better = (t < view_t) | ((t == view_t) & (index < view_p) & np.isfinite(t))
    view_t[better] = t[better]
    view_p[better] = index


def _cast_pairs(
    scene: Scene, grid: RayGrid, kind: int, prims: np.ndarray, rects: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits of every ray in ``rects`` with its primitive (all of one ``kind``).

    Returns:
        Flat ray indices, ray parameters and primitive indices of the finite hits.
    """
    slot, ray = _pairs(rects, grid.shape[1])
    prim = prims[slot]
    m = scene.to_local[prim]  # [N, 3, 4]
    d = np.einsum("nij,nj->ni", m[:, :, :3], grid.directions.reshape(-1, 3)[ray])
    if grid.origins.ndim == 1:
        table = scene.to_local[prims, :, :3] @ grid.origins + scene.to_local[prims, :, 3]
        o = table[slot]
    else:
        origins = grid.origins.reshape(-1, 3)[ray]
        o = np.einsum("nij,nj->ni", m[:, :, :3], origins) + m[:, :, 3]
    t = intersect_local(kind, o, d)
    keep = np.isfinite(t)
    return ray[keep], t[keep], prim[keep]


def surface_attributes(
    scene: Scene, origins: np.ndarray, directions: np.ndarray, t: np.ndarray, prim: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World position, unit normal (facing the ray) and texture coordinates of hits.

    Args:
        scene: the scene.
        origins: ``[N, 3]`` or ``[3]`` ray origins of the hits.
        directions: ``[N, 3]`` ray directions.
        t: ``[N]`` finite hit parameters.
        prim: ``[N]`` primitive indices (all ``>= 0``).

    Returns:
        ``points [N, 3]`` metres, ``normals [N, 3]``, ``uv [N, 2]`` in metres along the
        surface (divide by the material scale for texture repeats).
    """
    n = t.shape[0]
    origins = np.broadcast_to(origins, directions.shape)
    points = origins + t[:, None] * directions
    m = scene.to_local[prim]
    local = np.einsum("nij,nj->ni", m[:, :, :3], points) + m[:, :, 3]
    scale = np.linalg.norm(scene.to_world[:, :, :3], axis=1)[prim]  # metres per local unit
    n_local = np.zeros((n, 3))
    uv = np.zeros((n, 2))
    kinds = scene.kinds[prim]
    for kind in np.unique(kinds):
        idx = np.flatnonzero(kinds == kind)
        n_local[idx], uv[idx] = _local_normal_uv(int(kind), local[idx], scale[idx])
    normals = np.einsum("nji,nj->ni", m[:, :, :3], n_local)  # A^T n (inverse transpose)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    facing = np.einsum("ij,ij->i", normals, directions) > 0
    normals[facing] *= -1.0
    return points, normals, uv


def _local_normal_uv(kind: int, p: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local normals and metric surface coordinates of points on a unit shape.

    Args:
        kind: primitive kind.
        p: ``[N, 3]`` local points on the surface.
        scale: ``[N, 3]`` metres per local unit along each local axis.
    """
    n = np.zeros_like(p)
    if kind == PLANE:
        n[:, 2] = 1.0
        return n, p[:, :2] * scale[:, :2]
    if kind == BOX:
        axis = np.argmax(np.abs(p) * (1.0 + 1e-9 * np.arange(3)), axis=1)
        rows = np.arange(p.shape[0])
        n[rows, axis] = np.sign(p[rows, axis])
        metric = p * scale
        uv = np.where(
            (axis == 0)[:, None],
            metric[:, [1, 2]],
            np.where((axis == 1)[:, None], metric[:, [0, 2]], metric[:, [0, 1]]),
        )
        return n, uv
    if kind == CYLINDER:
        radial = p[:, 0] ** 2 + p[:, 1] ** 2
        cap = (np.abs(p[:, 2]) < 1e-7) | (np.abs(p[:, 2] - 1.0) < 1e-7)
        cap &= radial < 1.0 - 1e-7
        n[:, 0] = np.where(cap, 0.0, p[:, 0])
        n[:, 1] = np.where(cap, 0.0, p[:, 1])
        n[:, 2] = np.where(cap, np.where(p[:, 2] > 0.5, 1.0, -1.0), 0.0)
        angle = np.arctan2(p[:, 1], p[:, 0])
        side_uv = np.stack([angle * scale[:, 0], p[:, 2] * scale[:, 2]], axis=1)
        cap_uv = p[:, :2] * scale[:, :2]
        return n, np.where(cap[:, None], cap_uv, side_uv)
    if kind == ELLIPSOID:
        n[:] = p
        angle = np.arctan2(p[:, 1], p[:, 0])
        polar = np.arccos(np.clip(p[:, 2], -1.0, 1.0))
        return n, np.stack([angle * scale[:, 0], polar * scale[:, 2]], axis=1)
    raise ValueError(f"unknown primitive kind {kind}")
