"""Turn every failure while parsing a file into one InputError naming that file.

Parsers raise InputError (without a path) for what they check; anything else a codec or a
third-party library raises (ValueError, zlib.error, EOFError, KeyError...) means the file is
malformed, so callers handle exactly one exception type.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pointset_cli.errors import InputError

T = TypeVar("T")

# What one input file may decode into (inflated gzip, NPZ members, LZF): ~10 million 3D points in
# float64, far beyond any point cloud we sample from, far below what a decompression bomb asks for.
DECODED_LIMIT = 1 << 28


def inflate_gzip(data: bytes, limit: int = DECODED_LIMIT) -> bytes:
    """gzip bytes inflated, stopping (InputError) as soon as the output would pass `limit` bytes."""
    inflater = zlib.decompressobj(31)  # 31: a gzip header and trailer
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise InputError(f"inflates past {limit:,} bytes, more than this file may hold (a decompression bomb?)")
    if not inflater.eof:
        raise InputError("truncated gzip data")
    return out


def guarded(path: Path, what: str, parse: Callable[[], T]) -> T:
    """Run `parse`; re-raise any failure as InputError(one-line message, path)."""
    try:
        return parse()
    except InputError as err:
        raise InputError(err.message, path) from None
    except OSError as err:
        raise InputError(f"cannot read: {_first_line(err.strerror or str(err)).lower()}", path) from None
    except Exception as err:  # any other failure means a malformed file, see the docstring
        detail = _first_line(str(err)) or type(err).__name__
        raise InputError(f"malformed {what} file ({type(err).__name__}: {detail})", path) from None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:120] if text.strip() else ""


def decode_text(data: bytes) -> str:
    """UTF-8 text of a text format's bytes; binary content -> InputError."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not a text file (invalid UTF-8)") from None
