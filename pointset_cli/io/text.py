"""Plain-text point files: XYZ, TXT and PTS (one point per line).

Values are separated by whitespace or commas; lines starting with '#' are comments. Rows with
2 columns give 2D points; rows with 3 or more give 3D points from the first 3 columns (the rest,
often normals, colours or intensity, are ignored). All rows must have the same number of columns.
A PTS file may start with a line holding only the point count, which must then match.
"""

from __future__ import annotations

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import decode_text
from pointset_cli.io.shape import Shape, make_shape


def read_xyz(data: bytes, count_line: bool = False) -> Shape:
    """Parse text points; `count_line` allows (and checks) a leading point-count line (PTS)."""
    text = decode_text(data)
    lines = [ln for ln in text.replace(",", " ").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    promised = None
    if count_line and lines and len(lines[0].split()) == 1 and lines[0].strip().isdigit():
        promised = int(lines.pop(0))
    if not lines:
        raise InputError("no points")
    if promised is not None and promised != len(lines):
        raise InputError(f"count line promises {promised} points, file holds {len(lines)}")
    rows = [ln.split() for ln in lines]
    ncols = len(rows[0])
    bad = next((i for i, row in enumerate(rows) if len(row) != ncols), None)
    if bad is not None:  # checked per row: rows of 3, 2 and 4 values hold as many values as 3 rows of 3
        raise InputError(f"row {bad + 1} has {len(rows[bad])} columns, row 1 has {ncols}")
    values = [v for row in rows for v in row]
    if ncols < 2:
        raise InputError(f"rows have {ncols} column, expected 2 or more")
    try:
        table = np.array(values, dtype=np.float64).reshape(len(lines), ncols)
    except ValueError:
        word = next(v for v in values if not _is_number(v))
        raise InputError(f"non-numeric value {word[:20]!r}") from None
    return make_shape(table[:, : min(ncols, 3)])


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def text_rows(points: np.ndarray, prefix: str = "") -> bytes:
    """One line per point of [n, D], `prefix` first; enough digits to read back the same float."""
    digits = 9 if points.dtype == np.float32 else 17
    row = prefix + " ".join([f"%.{digits}g"] * points.shape[1]) + "\n"
    return ((row * len(points)) % tuple(points.reshape(-1).tolist())).encode("ascii")
