"""Binary glTF 2.0 (``.glb``) point clouds, for the demo's interactive 3D view.

A file holds one mesh with one ``POINTS`` primitive: ``POSITION`` (float32 ``VEC3``,
metres) and ``COLOR_0`` (float32 ``VEC3``, linear RGB in ``[0, 1]``), with an unlit
material (``KHR_materials_unlit``) so that viewers show the photo's colours without
shading (points have no normals).

Points are given in the camera frame of OpenCV (``x`` right, ``y`` down, ``z`` forward,
as :func:`sharpdepth.geometry.point_cloud` returns them) and stored in glTF's frame
(``x`` right, ``y`` up, the camera looking along ``-z``): ``(x, -y, -z)``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from sharpdepth import io

GLB_MAGIC = 0x46546C67  # b"glTF", little-endian
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # b"JSON"
CHUNK_BIN = 0x004E4942  # b"BIN\0"
_FLOAT = 5126  # glTF componentType of float32
_ARRAY_BUFFER = 34962  # bufferView target of vertex attributes
_MODE_POINTS = 0


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded colours to linear light (the IEC 61966-2-1 curve).

    Args:
        rgb: ``uint8`` ``[..., 3]`` (0-255) or float ``[..., 3]`` in ``[0, 1]``.

    Returns:
        float32 ``[..., 3]`` in ``[0, 1]``.
    """
    c = np.asarray(rgb)
    x = c.astype(np.float64) / 255.0 if c.dtype == np.uint8 else c.astype(np.float64)
    x = np.clip(x, 0.0, 1.0)
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


def _pad4(data: bytes, fill: bytes) -> bytes:
    """``data`` padded with ``fill`` to a multiple of 4 bytes."""
    return data + fill * ((-len(data)) % 4)


def glb_bytes(points: np.ndarray, colors: np.ndarray | None = None, name: str = "points") -> bytes:
    """A point cloud as a binary glTF 2.0 file.

    Args:
        points: ``[N, 3]`` real, OpenCV camera frame, metres; non-finite rows are dropped.
        colors: optional ``uint8 [N, 3]`` sRGB colours (stored linearised); default white.
        name: name of the node and mesh.

    Returns:
        The ``.glb`` file's bytes. With no (finite) point, a valid file with an empty scene.

    Raises:
        ValueError: bad shapes or dtypes.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.issubdtype(pts.dtype, np.number):
        raise ValueError(f"points must be a real [N, 3] array, got {pts.dtype} {pts.shape}")
    if colors is not None:
        cols = np.asarray(colors)
        if cols.dtype != np.uint8 or cols.shape != pts.shape:
            raise ValueError(f"colors must be uint8 {pts.shape}, got {cols.dtype} {cols.shape}")
    else:
        cols = np.full(pts.shape, 255, dtype=np.uint8)
    keep = np.isfinite(pts).all(axis=1)
    gl_points = (pts[keep].astype(np.float32) * np.array([1, -1, -1], np.float32)).astype("<f4")
    linear = srgb_to_linear(cols[keep]).astype("<f4")
    n = int(gl_points.shape[0])
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "sharpdepth"},
        "scene": 0,
        "scenes": [{"nodes": [0] if n else []}],
    }
    binary = b""
    if n:
        pos_bytes, col_bytes = gl_points.tobytes(), linear.tobytes()
        binary = pos_bytes + col_bytes  # both multiples of 4 bytes
        doc |= {
            "nodes": [{"mesh": 0, "name": name}],
            "meshes": [
                {
                    "name": name,
                    "primitives": [
                        {
                            "attributes": {"POSITION": 0, "COLOR_0": 1},
                            "mode": _MODE_POINTS,
                            "material": 0,
                        }
                    ],
                }
            ],
            "materials": [
                {
                    "name": "unlit vertex colours",
                    "pbrMetallicRoughness": {
                        "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                        "metallicFactor": 0.0,
                        "roughnessFactor": 1.0,
                    },
                    "extensions": {"KHR_materials_unlit": {}},
                }
            ],
            "extensionsUsed": ["KHR_materials_unlit"],
            "buffers": [{"byteLength": len(binary)}],
            "bufferViews": [
                {
                    "buffer": 0,
                    "byteOffset": 0,
                    "byteLength": len(pos_bytes),
                    "target": _ARRAY_BUFFER,
                },
                {
                    "buffer": 0,
                    "byteOffset": len(pos_bytes),
                    "byteLength": len(col_bytes),
                    "target": _ARRAY_BUFFER,
                },
            ],
            "accessors": [
                {
                    "bufferView": 0,
                    "componentType": _FLOAT,
                    "count": n,
                    "type": "VEC3",
                    "min": gl_points.min(axis=0).astype(float).tolist(),
                    "max": gl_points.max(axis=0).astype(float).tolist(),
                },
                {"bufferView": 1, "componentType": _FLOAT, "count": n, "type": "VEC3"},
            ],
        }
    json_chunk = _pad4(json.dumps(doc, separators=(",", ":")).encode("utf-8"), b" ")
    chunks = struct.pack("<II", len(json_chunk), CHUNK_JSON) + json_chunk
    if binary:
        bin_chunk = _pad4(binary, b"\0")
        chunks += struct.pack("<II", len(bin_chunk), CHUNK_BIN) + bin_chunk
    header = struct.pack("<III", GLB_MAGIC, GLB_VERSION, 12 + len(chunks))
    return header + chunks


def save_glb(
    path: str | Path, points: np.ndarray, colors: np.ndarray | None = None, name: str = "points"
) -> Path:
    """Write :func:`glb_bytes` to ``path`` atomically; returns ``path``."""
    blob = glb_bytes(points, colors, name)

    def writer(tmp: Path) -> None:
        tmp.write_bytes(blob)

    return io.atomic_write(path, writer)


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a ``.glb`` file's bytes into its JSON document and binary chunk.

    Returns:
        ``(document, binary)``; ``binary`` is ``b""`` when the file has no BIN chunk.

    Raises:
        ValueError: not a glTF 2.0 binary file, or inconsistent lengths.
    """
    if len(data) < 20:
        raise ValueError("too short for a GLB file")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC or version != GLB_VERSION:
        raise ValueError("not a glTF 2.0 binary file")
    if length != len(data):
        raise ValueError(f"GLB header says {length} bytes, file has {len(data)}")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON or 20 + json_len > length:
        raise ValueError("GLB file does not start with a JSON chunk")
    doc = json.loads(data[20 : 20 + json_len].decode("utf-8"))
    offset = 20 + json_len
    binary = b""
    if offset < length:
        bin_len, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type != CHUNK_BIN or offset + 8 + bin_len > length:
            raise ValueError("GLB second chunk is not a valid BIN chunk")
        binary = data[offset + 8 : offset + 8 + bin_len]
    return doc, binary


def glb_points(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Positions and colours of a point cloud written by :func:`glb_bytes`.

    Returns:
        ``(points, colors)``: float32 ``[N, 3]`` in glTF's frame (metres) and float32
        ``[N, 3]`` linear RGB.
    """
    doc, binary = read_glb(data)
    if not doc.get("meshes"):
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    attrs = doc["meshes"][0]["primitives"][0]["attributes"]

    def accessor(index: int) -> np.ndarray:
        acc = doc["accessors"][index]
        view = doc["bufferViews"][acc["bufferView"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        count = int(acc["count"])
        return np.frombuffer(binary, dtype="<f4", count=3 * count, offset=start).reshape(count, 3)

    return accessor(attrs["POSITION"]).copy(), accessor(attrs["COLOR_0"]).copy()
