"""Write the malformed-file corpus (tests/io/corpus/) and EXPECTED.txt; run once, commit the output.

    python tests/io/make_corpus.py

EXPECTED.txt maps each file to read (tab) a substring its one-line error must contain. Files
that are only companions (labels beside an images file) are not listed. Reuse it to check any
command that reads inputs, e.g. `pointset prepare` on each listed file.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parent / "corpus"

PLY_HEADER = "ply\nformat {fmt} 1.0\nelement vertex {nv}\nproperty float x\nproperty float y\nproperty float z\n"
PCD_HEADER = (
    "# .PCD v0.7\nVERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE F F F\nCOUNT 1 1 1\n"
    "WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {kind}\n"
)


def cube(n: int = 8) -> np.ndarray:
    """[n, 3] float32 points, deterministic."""
    return np.random.default_rng(0).uniform(-1, 1, size=(n, 3)).astype(np.float32)


def ply_binary(nv: int, points: np.ndarray, faces: bytes = b"", nf: int = 0) -> bytes:
    header = PLY_HEADER.format(fmt="binary_little_endian", nv=nv)
    if nf:
        header += f"element face {nf}\nproperty list uchar int vertex_indices\n"
    return (header + "end_header\n").encode() + points.astype("<f4").tobytes() + faces


def ply_ascii(nv: int, rows: list[str]) -> bytes:
    return (PLY_HEADER.format(fmt="ascii", nv=nv) + "end_header\n" + "\n".join(rows) + "\n").encode()


def pcd(fields: str, size: str, n: int, kind: str, body: bytes) -> bytes:
    return PCD_HEADER.format(fields=fields, size=size, n=n, kind=kind).encode() + body


def idx(magic: int, dims: list[int], values: bytes) -> bytes:
    return np.array([magic, *dims], dtype=">u4").tobytes() + values


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            archive.writestr(f"{name}.npy", npy(array))
    return buffer.getvalue()


def csv_row(pixels: list[int], label: int) -> str:
    return ",".join(map(str, [*pixels, label]))


def corpus() -> dict[str, tuple[bytes, str | None]]:
    """file name -> (content, expected error substring; None for companion files)."""
    pts = cube()
    tri = b"\x03" + np.array([0, 1, 2], "<i4").tobytes()
    digit = np.zeros(784, dtype=np.uint8).tobytes()
    rows = [" ".join(map(str, p)) for p in pts.tolist()]
    return {
        "truncated_binary.ply": (ply_binary(8, pts[:5]), "header promises 8 vertices, file holds 5"),
        "truncated_faces.ply": (ply_binary(8, pts, tri * 2, nf=4), "face data ends early"),
        "promises_more.ply": (ply_ascii(100, rows), "header promises 100 vertices, file holds 8"),
        "nan.ply": (ply_ascii(2, ["0 0 0", "nan 1 2"]), "non-finite"),
        "garbage.ply": (np.random.default_rng(1).bytes(512), "not a PLY file"),
        "empty.ply": (b"", "empty file"),
        "no_end_header.ply": (PLY_HEADER.format(fmt="ascii", nv=1).encode() + b"0 0 0\n", "no end_header"),
        "bad_fields.pcd": (pcd("a b c", "4 4 4", 8, "binary", pts.tobytes()), "must include x y z"),
        "fields_mismatch.pcd": (pcd("x y z", "4 4", 8, "binary", pts.tobytes()), "SIZE has 2"),
        "truncated.pcd": (pcd("x y z", "4 4 4", 16, "binary", pts.tobytes()), "header promises 16 points, file holds 8"),
        "corrupt_compressed.pcd": (
            pcd("x y z", "4 4 4", 8, "binary_compressed", np.array([10, 96], "<u4").tobytes() + b"\x1f" + b"\x00" * 9),
            "corrupt LZF data",
        ),
        "garbage.pcd": (b"\x00\xff" * 200, "not a PCD file"),
        "no_vertices.obj": (b"# nothing here\nf 1 2 3\n", "no vertices"),
        "face_out_of_range.obj": (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "face index 9 out of range"),
        "bad_counts.off": (b"OFF\n3 x 0\n0 0 0\n1 0 0\n0 1 0\n", "bad OFF counts line"),
        "short.off": (b"OFF\n4 1 0\n0 0 0\n1 0 0\n", "header promises 4 vertices, file holds 2"),
        "two_vertex_face.off": (b"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "needs at least 3"),
        "truncated.stl": (b"\x00" * 80 + np.array([10], "<u4").tobytes() + b"\x00" * 120, "header promises 10 triangles"),
        "truncated_ascii.stl": (b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\n", "no 'endsolid'"),
        "badmagic-images-idx3-ubyte": (idx(0x0803 + 1, [1, 28, 28], digit), "wrong IDX magic"),
        # decompression bombs: small files whose content inflates far beyond what their header says
        "bomb-images-idx3-ubyte.gz": (gzip.compress(idx(0x0803, [1, 28, 28], bytes(40_000_000)), 9, mtime=0),
                                      "inflates past 801 bytes"),
        "bomb-labels-idx1-ubyte": (idx(0x0801, [1], b"\x07"), None),
        "bomb.npz": (_npz_bomb(), "NPZ member points.npy inflates to 268,435,568 bytes, more than the 268,435,456"),
        "bomb.pcd": (pcd("x y z", "4 4 4", 8, "binary_compressed", np.array([10, 2**32 - 1], "<u4").tobytes()),
                     "compressed PCD inflates to 4,294,967,295 bytes"),
        "badmagic-labels-idx1-ubyte": (idx(0x0801, [1], b"\x07"), None),
        "mismatch-images-idx3-ubyte": (idx(0x0803, [3, 28, 28], digit * 3), "3 images but 2 labels"),
        "mismatch-labels-idx1-ubyte": (idx(0x0801, [2], b"\x01\x02"), None),
        "short-images-idx3-ubyte": (idx(0x0803, [5, 28, 28], digit * 2), "header promises 5 images, file holds 2"),
        "short-labels-idx1-ubyte": (idx(0x0801, [5], b"\x01" * 5), None),
        "nolabels-images-idx3-ubyte": (idx(0x0803, [1, 28, 28], digit), "labels file not found"),
        "cutgz-images-idx3-ubyte.gz": (gzip.compress(idx(0x0803, [1, 28, 28], digit), mtime=0)[:30], "truncated gzip data"),
        "cutgz-labels-idx1-ubyte": (idx(0x0801, [1], b"\x00"), None),
        "cols783.csv": (csv_row([0] * 782, 3).encode() + b"\n", "has 783 columns, expected 785"),
        "pixel300.csv": ((csv_row([0] * 784, 1) + "\n" + csv_row([300] + [0] * 783, 2) + "\n").encode(), "pixel value 300"),
        "text.xyz": (b"0 0 0\n1 one 2\n", "non-numeric value 'one'"),
        "inf.xyz": (b"0 0 0\n1 inf 2\n", "non-finite"),
        "huge.xyz": (b"0 0 0\n1 1e308 2\n", "coordinates beyond +-1e+15 in 1 of 2 points, first at point 1"),
        "empty.xyz": (b"", "empty file"),
        "ragged.xyz": (b"0 0 0\n1 2\n", "row 2 has 2 columns"),
        "ragged_total.xyz": (b"0 0 0\n1 2\n3 4 5 6\n", "row 2 has 2 columns, row 1 has 3"),  # 9 values: 3 x 3
        "one_column.xyz": (b"1\n2\n3\n", "expected 2 or more"),
        "count_mismatch.pts": (b"5\n0 0 0\n1 1 1\n", "count line promises 5 points, file holds 2"),
        "pickled.npy": (npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True), "pickled objects are refused"),
        "one_d.npy": (npy(np.arange(6.0)), "expected an [n, D] array"),
        "four_columns.npy": (npy(np.zeros((5, 4))), "4 coordinates, expected 2 or 3"),
        "huge_header.npy": (_npy_promising(10**10), "truncated NPY"),
        "negative_shape.npy": (_npy_promising(-5), "negative dimension in NPY shape (-5, 3)"),
        "overflowing_shape.npy": (_npy_promising(2**62), "truncated NPY"),  # 3 * 2^62 wraps an int64
        "two_arrays.npz": (npz(a=np.zeros((3, 3)), b=np.ones((3, 3))), "no 'points' array"),
        "not_zip.npz": (b"this is not a zip archive\n", "not a zip archive"),
    }


def _npz_bomb() -> bytes:
    """An .npz whose one member, 2^28 zero bytes of float64 data, deflates to about 260 KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        info = zipfile.ZipInfo("points.npy", date_time=(2026, 1, 1, 0, 0, 0))
        archive.writestr(info, npy(np.zeros((2**28 // 24, 3))), zipfile.ZIP_DEFLATED, 9)
    return buffer.getvalue()


def _npy_promising(rows: int) -> bytes:
    """An .npy header promising [rows, 3] float64 followed by one row of data (24 bytes)."""
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, 3), }}"
    header = header.ljust(117) + "\n"  # magic (6) + version (2) + length (2) + header = 128
    return b"\x93NUMPY\x01\x00" + np.array([len(header)], "<u2").tobytes() + header.encode() + bytes(24)


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    lines = ["# file<TAB>substring of its one-line error (written by tests/io/make_corpus.py)"]
    for name, (content, expected) in corpus().items():
        (CORPUS / name).write_bytes(content)
        if expected is not None:
            lines.append(f"{name}\t{expected}")
    (CORPUS / "EXPECTED.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} malformed files (+ companions) to {CORPUS}")


if __name__ == "__main__":
    main()
