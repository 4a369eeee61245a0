"""Object File Format (OFF), including ModelNet's quirk of counts glued to the magic ("OFF490 2 0")."""

from __future__ import annotations

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import decode_text
from pointset_cli.io.shape import Shape, fan_triangulate, make_shape

_MAGICS = ("OFF", "COFF", "NOFF", "CNOFF")  # colours and normals follow x y z on vertex lines


def read_off(data: bytes) -> Shape:
    """Parse OFF bytes: magic, `nv nf ne`, nv vertex lines, nf face lines `k i1 .. ik [colour]`."""
    text = decode_text(data)
    lines = [ln.split() for ln in (ln.split("#", 1)[0] for ln in text.splitlines()) if ln.strip()]
    if not lines:
        raise InputError("no OFF header")
    first = lines[0][0]
    magic = next((m for m in _MAGICS if first.startswith(m)), None)
    if magic is None:
        raise InputError("not an OFF file (missing 'OFF' magic)")
    if "BINARY" in lines[0]:
        raise InputError("binary OFF is not supported")
    rest = ([first[len(magic) :]] if first != magic else []) + lines[0][1:]
    body = lines[1:]
    if not rest:
        if not body:
            raise InputError("OFF file has no counts line")
        rest = body.pop(0)
    if len(rest) < 2 or not all(w.isdigit() for w in rest[:3]):
        raise InputError(f"bad OFF counts line {' '.join(rest)[:40]!r}")
    nv, nf = int(rest[0]), int(rest[1])
    if len(body) < nv:
        raise InputError(f"truncated OFF: header promises {nv} vertices, file holds {len(body)}")
    vertex_rows = body[:nv]
    if any(len(r) < 3 for r in vertex_rows):
        raise InputError("OFF vertex line with fewer than 3 coordinates")
    points = np.array([r[:3] for r in vertex_rows], dtype=np.float64)
    face_rows = body[nv : nv + nf]
    if len(face_rows) < nf:
        raise InputError(f"truncated OFF: header promises {nf} faces, file holds {len(face_rows)}")
    counts = [int(r[0]) for r in face_rows]
    if any(k + 1 > len(r) for k, r in zip(counts, face_rows, strict=True)):
        raise InputError("OFF face line is shorter than its vertex count")
    flat = [i for k, r in zip(counts, face_rows, strict=True) for i in r[1 : k + 1]]
    faces = fan_triangulate(np.array(counts), np.array(flat, dtype=np.int64)) if nf else None
    return make_shape(points, faces)
