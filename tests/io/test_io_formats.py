"""Format details the real data does not cover: PLY variants, PCD encodings, LZF, OBJ/OFF/STL/glTF quirks."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pointset_cli.errors import InputError
from pointset_cli.io import MESH_SUFFIXES, POINT_SUFFIXES, is_supported, read_shape
from pointset_cli.io.lzf import lzf_decompress
from pointset_cli.io.shape import fan_triangulate

QUADS = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
CUBE = np.array([[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)])


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("quality", [False, True])  # an extra face property takes the row-by-row path
def test_binary_ply_with_quads_extra_properties_and_endianness(tmp_path, endian, quality):
    fmt = "binary_little_endian" if endian == "<" else "binary_big_endian"
    header = (
        f"ply\nformat {fmt} 1.0\ncomment made by hand\nelement vertex 8\nproperty double x\nproperty double y\n"
        "property double z\nproperty uchar red\nelement face 6\nproperty list uchar int vertex_indices\n"
        + ("property float quality\n" if quality else "")
        + "end_header\n"
    ).encode()
    vertices = b"".join(np.array(v, endian + "f8").tobytes() + b"\x07" for v in CUBE)
    extra = np.array(0.5, endian + "f4").tobytes() if quality else b""
    faces = b"".join(b"\x04" + np.array(q, endian + "i4").tobytes() + extra for q in QUADS)
    shape = read_shape(_write(tmp_path, "cube.ply", header + vertices + faces))
    np.testing.assert_array_equal(shape.points, CUBE)
    assert shape.faces.shape == (12, 3)
    np.testing.assert_array_equal(shape.faces[:2], [[0, 1, 3], [0, 3, 2]])


def test_ascii_ply_points_only_ignores_normals(tmp_path):
    text = (
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float nx\nproperty float x\nproperty float y\n"
        "property float z\nend_header\n9 1 2 3\n9 4 5 6\n"
    )
    shape = read_shape(_write(tmp_path, "p.ply", text.encode()))
    assert shape.faces is None
    np.testing.assert_array_equal(shape.points, [[1, 2, 3], [4, 5, 6]])


def _pcd(fields: str, size: str, type_: str, count: str, n: int, kind: str, body: bytes) -> bytes:
    header = (
        f"VERSION .7\nFIELDS {fields}\nSIZE {size}\nTYPE {type_}\nCOUNT {count}\n"
        f"WIDTH {n}\nHEIGHT 1\nPOINTS {n}\nDATA {kind}\n"
    )
    return header.encode() + body


def _lzf_literals(raw: bytes) -> bytes:
    """Valid LZF made only of literal runs (at most 32 bytes each)."""
    return b"".join(bytes([len(raw[i : i + 32]) - 1]) + raw[i : i + 32] for i in range(0, len(raw), 32))


def test_pcd_ascii_binary_and_compressed_agree(tmp_path):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(20, 3)).astype(np.float32)
    rgb = rng.integers(0, 2**32, size=20, dtype=np.uint32)
    fields = ("x y rgb z", "4 4 4 4", "F F U F", "1 1 1 1")
    records = np.zeros(20, [("x", "<f4"), ("y", "<f4"), ("rgb", "<u4"), ("z", "<f4")])
    records["x"], records["y"], records["rgb"], records["z"] = xyz[:, 0], xyz[:, 1], rgb, xyz[:, 2]
    columns = b"".join(records[name].tobytes() for name in records.dtype.names)  # field by field
    payload = _lzf_literals(columns)
    compressed = np.array([len(payload), len(columns)], "<u4").tobytes() + payload
    columns_as_lists = [records[k].tolist() for k in records.dtype.names]
    rows = "".join(f"{a!r} {b!r} {c} {d!r}\n" for a, b, c, d in zip(*columns_as_lists, strict=True))
    for kind, body in (("binary", records.tobytes()), ("binary_compressed", compressed), ("ascii", rows.encode())):
        shape = read_shape(_write(tmp_path, f"{kind}.pcd", _pcd(*fields, 20, kind, body)))
        np.testing.assert_allclose(shape.points, xyz, rtol=1e-7)


def test_pcd_binary_compressed_written_by_open3d(tmp_path):
    o3d = pytest.importorskip("open3d")
    xyz = np.random.default_rng(4).normal(size=(500, 3))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    path = tmp_path / "o3d.pcd"
    assert o3d.io.write_point_cloud(str(path), cloud, compressed=True)
    assert b"binary_compressed" in path.read_bytes()[:400]
    np.testing.assert_allclose(read_shape(path).points, np.asarray(o3d.io.read_point_cloud(str(path)).points), rtol=1e-6)


def test_lzf_back_references_including_overlap():
    # "ab" literal, then a 6-byte copy from distance 2 (overlapping), then a 3-byte copy of "bab" from distance 3
    data = b"\x01ab" + bytes([(4 << 5) | 0, 1]) + bytes([(1 << 5) | 0, 2])
    assert lzf_decompress(data, 11) == b"ababababbab"
    with pytest.raises(InputError, match="back-reference before the start"):
        lzf_decompress(b"\x00a" + bytes([(1 << 5), 5]), 4)
    with pytest.raises(InputError, match="expands to 8 bytes"):
        lzf_decompress(b"\x01ab" + bytes([(4 << 5), 1]), 9)


def test_obj_polygons_negative_indices_and_extras(tmp_path):
    text = (
        "mtllib x.mtl\nv 0 0 0 1\nv 1 0 0\nv 1 1 0 0.5 0.5 0.5\nv 0 1 0\nvt 0 0\nvn 0 0 1\ng part\n"
        "f -4/1/1 -3/1/1 -2/1/1 -1/1/1\nf 1//1 2//1 3//1\n"
    )
    shape = read_shape(_write(tmp_path, "q.obj", text.encode()))
    np.testing.assert_array_equal(shape.faces, [[0, 1, 2], [0, 2, 3], [0, 1, 2]])
    assert shape.points.shape == (4, 3)


def test_obj_without_faces_is_a_point_set(tmp_path):
    shape = read_shape(_write(tmp_path, "p.obj", b"v 1 2 3\nv 4 5 6\n"))
    assert shape.faces is None and shape.points.shape == (2, 3)


@pytest.mark.parametrize("first_lines", ["OFF\n8 6 0\n", "OFF8 6 0\n", "OFF 8 6 0\n", "# comment\nOFF\n# c\n8 6 0\n"])
def test_off_header_variants(tmp_path, first_lines):
    body = "".join(f"{x} {y} {z}\n" for x, y, z in CUBE) + "".join(f"4 {' '.join(map(str, q))} 255 0 0\n" for q in QUADS)
    shape = read_shape(_write(tmp_path, "cube.off", (first_lines + body).encode()))
    np.testing.assert_array_equal(shape.points, CUBE)
    assert shape.faces.shape == (12, 3)


@pytest.mark.parametrize("file_type", ["stl", "stl_ascii"])
def test_stl_merges_corners_into_shared_vertices(tmp_path, file_type):
    import trimesh

    box = trimesh.creation.box()
    data = box.export(file_type=file_type)
    shape = read_shape(_write(tmp_path, "box.stl", data.encode() if isinstance(data, str) else data))
    assert shape.points.shape == (8, 3) and shape.faces.shape == (12, 3)
    np.testing.assert_allclose(shape.points[shape.faces], box.vertices[box.faces].astype(np.float32), atol=1e-6)


def test_binary_stl_whose_header_says_solid(tmp_path):
    header = b"solid but actually binary".ljust(80, b" ")
    triangle = np.zeros(1, [("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    triangle["v"] = np.eye(3)
    shape = read_shape(_write(tmp_path, "s.stl", header + np.array([1], "<u4").tobytes() + triangle.tobytes()))
    assert shape.faces.shape == (1, 3) and shape.points.shape == (3, 3)


def test_glb_and_gltf_concatenate_the_scene(tmp_path):
    import trimesh

    scene = trimesh.Scene([trimesh.creation.box(), trimesh.creation.icosphere(subdivisions=1)])
    _write(tmp_path, "scene.glb", scene.export(file_type="glb"))
    scene.export(tmp_path / "scene.gltf")  # writes its buffers beside it
    for name in ("scene.glb", "scene.gltf"):
        shape = read_shape(tmp_path / name)
        assert shape.points.shape == (8 + 42, 3) and shape.faces.shape == (12 + 80, 3)


def test_text_points_commas_comments_and_extra_columns(tmp_path):
    shape = read_shape(_write(tmp_path, "a.txt", b"# x,y,z,intensity\n1,2,3,9\n4,5,6,9\n"))
    np.testing.assert_array_equal(shape.points, [[1, 2, 3], [4, 5, 6]])  # 4th column ignored
    assert read_shape(_write(tmp_path, "b.xyz", b"0.5 0.25\n1 0\n")).points.shape == (2, 2)
    assert read_shape(_write(tmp_path, "c.pts", b"2\n1 2 3\n4 5 6\n")).points.shape == (2, 3)


def test_npz_points_key_and_single_array(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, other=np.zeros((2, 3)), points=np.ones((5, 2)))
    assert read_shape(_write(tmp_path, "a.npz", buffer.getvalue())).points.shape == (5, 2)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, cloud=np.ones((7, 3), np.float32))
    assert read_shape(_write(tmp_path, "b.npz", buffer.getvalue())).points.shape == (7, 3)


def test_fortran_order_npy(tmp_path):
    points = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    buffer = io.BytesIO()
    np.save(buffer, points)
    np.testing.assert_array_equal(read_shape(_write(tmp_path, "f.npy", buffer.getvalue())).points, points)


def test_fan_triangulate_mixed_polygons():
    faces = fan_triangulate(np.array([3, 5, 4]), np.arange(12))
    np.testing.assert_array_equal(faces, [[0, 1, 2], [3, 4, 5], [3, 5, 6], [3, 6, 7], [8, 9, 10], [8, 10, 11]])


def test_suffixes_and_unsupported_or_missing_files(tmp_path):
    assert ".ply" in POINT_SUFFIXES and ".ply" in MESH_SUFFIXES
    assert is_supported(tmp_path / "A.PCD") and not is_supported(tmp_path / "a.csv")
    with pytest.raises(InputError, match="unsupported file type 'foo'"):
        read_shape(tmp_path / "a.foo")
    with pytest.raises(InputError, match="cannot read: no such file"):
        read_shape(tmp_path / "missing.ply")
