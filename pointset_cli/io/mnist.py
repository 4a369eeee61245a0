"""MNIST digits from the original IDX files or from CSV rows, and digits as 2D point sets.

IDX: `<prefix>-images-idx3-ubyte[.gz]` (magic 0x00000803, count, 28, 28, then pixels) with its
labels file `<prefix>-labels-idx1-ubyte[.gz]` (magic 0x00000801, count, then labels) beside it.
CSV: one digit per row, 784 pixel values 0..255 then the label; an optional header row; .gz allowed.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np

from pointset_cli.errors import InputError
from pointset_cli.io.guard import DECODED_LIMIT, guarded, inflate_gzip

_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801
_SIDE = 28
_IDX_SUFFIXES = ("-idx3-ubyte", "-idx3-ubyte.gz")
_CSV_SUFFIXES = (".csv", ".csv.gz")


def is_mnist_file(path: Path) -> bool:
    """Whether the name is an MNIST images IDX file or a CSV file (the content is checked on read)."""
    name = Path(path).name.lower()
    return name.endswith(_IDX_SUFFIXES + _CSV_SUFFIXES)


def read_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read digits: images uint8 [M, 28, 28] and labels int64 [M].

    Raises InputError(message, path) for any problem (missing labels file, wrong magic,
    truncation, count mismatch, bad CSV rows).
    """
    path = Path(path)
    if not is_mnist_file(path):
        raise InputError("not an MNIST file (expected *-idx3-ubyte[.gz] or *.csv[.gz])", path)
    if path.name.lower().endswith(_CSV_SUFFIXES):
        return guarded(path, "MNIST", lambda: _parse_csv(_load(path)))
    labels_path = labels_path_for(path)
    images = guarded(path, "MNIST", lambda: _parse_idx(_load(path, _IMAGES_MAGIC), _IMAGES_MAGIC))
    labels = guarded(labels_path, "MNIST", lambda: _parse_idx(_load(labels_path, _LABELS_MAGIC), _LABELS_MAGIC))
    if len(labels) != len(images):
        raise InputError(f"{len(images)} images but {len(labels)} labels in {labels_path.name}", path)
    return images.reshape(-1, _SIDE, _SIDE), labels.astype(np.int64)


def labels_path_for(images_path: Path) -> Path:
    """The labels file beside an images file (.gz or not); InputError if there is none."""
    base = images_path.name.removesuffix(".gz").replace("idx3", "idx1")
    k = base.rfind("images")
    base = base[:k] + "labels" + base[k + len("images") :] if k >= 0 else base
    for candidate in (base, base + ".gz"):
        if (images_path.parent / candidate).is_file():
            return images_path.parent / candidate
    raise InputError(f"labels file not found: expected {base}[.gz] beside it", images_path)


def _load(path: Path, magic: int | None = None) -> bytes:
    """The file's bytes, inflated when gzipped: an IDX file (`magic`) no further than its header's
    count needs (plus one byte, to notice more), anything else up to the decoding budget."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        limit = DECODED_LIMIT
        if magic is not None:
            head = zlib.decompressobj(31).decompress(data, 16)  # the header alone
            limit = min(limit, _idx_bytes(head, magic) + 1)
        data = inflate_gzip(data, limit)
    if not data:
        raise InputError("empty file (0 bytes)")
    return data


def _idx_bytes(head: bytes, magic: int) -> int:
    """The bytes an IDX file whose first bytes are `head` should hold (0 when the header is unreadable:
    the parser then says what is wrong)."""
    ndim = 3 if magic == _IMAGES_MAGIC else 1
    if len(head) < 4 + 4 * ndim:
        return DECODED_LIMIT
    _, *dims = np.frombuffer(head, ">u4", 1 + ndim).tolist()
    return 4 + 4 * ndim + int(np.prod(dims, dtype=object))


def _parse_idx(data: bytes, magic: int) -> np.ndarray:
    """IDX images -> uint8 [M, 784]; IDX labels -> uint8 [M]."""
    ndim = 3 if magic == _IMAGES_MAGIC else 1
    head = 4 + 4 * ndim
    if len(data) < head:
        raise InputError(f"truncated IDX: {len(data)} bytes, the header needs {head}")
    found, *dims = np.frombuffer(data, ">u4", 1 + ndim).tolist()
    if found != magic:
        raise InputError(f"wrong IDX magic 0x{found:08x}, expected 0x{magic:08x}")
    if dims[1:] not in ([], [_SIDE, _SIDE]):
        raise InputError(f"IDX images are {dims[1]}x{dims[2]}, expected {_SIDE}x{_SIDE}")
    item = _SIDE * _SIDE if ndim == 3 else 1
    held = (len(data) - head) // item
    if held != dims[0]:
        kind = "images" if ndim == 3 else "labels"
        raise InputError(f"IDX header promises {dims[0]} {kind}, file holds {held}")
    values = np.frombuffer(data, np.uint8, dims[0] * item, head)
    return values.reshape(dims[0], item) if ndim == 3 else values


def _parse_csv(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CSV rows of 784 pixels then the label -> (images uint8 [M, 28, 28], labels int64 [M])."""
    lines = [ln for ln in data.decode("ascii").splitlines() if ln.strip()]
    if lines and not lines[0].split(",", 1)[0].strip().lstrip("-").isdigit():
        lines.pop(0)  # a header row such as "pixel0,...,label"
    if not lines:
        raise InputError("no rows")
    columns = _SIDE * _SIDE + 1
    for number, line in enumerate(lines, start=1):
        if line.count(",") != columns - 1:
            raise InputError(f"CSV row {number} has {line.count(',') + 1} columns, expected {columns}")
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError:
        raise InputError("CSV holds a value that is not an integer") from None
    pixels, labels = table[:, :-1], table[:, -1]
    bad = (pixels < 0) | (pixels > 255)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        raise InputError(f"pixel value {int(pixels[bad][0])} out of range 0..255 in CSV row {row + 1}")
    if (labels < 0).any():
        raise InputError(f"negative label {int(labels[labels < 0][0])}")
    return pixels.astype(np.uint8).reshape(-1, _SIDE, _SIDE), labels


def image_to_set(image: np.ndarray, threshold: int) -> np.ndarray:
    """Pixels brighter than `threshold` as points [n, 2] float32 in [0, 1]^2.

    image: [R, C] (28 x 28 for MNIST). x = col / (C - 1), y = 1 - row / (R - 1), so a digit
    plotted with y up is upright. Points come in row-major pixel order.
    """
    rows, cols = np.nonzero(image > threshold)
    x = cols / (image.shape[1] - 1)
    y = 1.0 - rows / (image.shape[0] - 1)
    return np.stack([x, y], axis=1).astype(np.float32)
