"""LZF decompression (the codec of PCD `binary_compressed`), in pure Python.

Format (liblzf): a control byte c. c < 32: a literal run of c + 1 bytes follows. Otherwise a
back-reference of length (c >> 5) + 2 (when c >> 5 == 7 the next byte adds to the length) to
distance ((c & 31) << 8 | next byte) + 1 before the end of the output; it may overlap itself.
"""

from __future__ import annotations

from pointset_cli.errors import InputError


def lzf_decompress(data: bytes, size: int) -> bytes:
    """Decompress `data` that must expand to exactly `size` bytes; corrupt data -> InputError."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            length = ctrl + 1
            if i + length > n:
                raise InputError("corrupt LZF data: literal run past the end of the payload")
            out += data[i : i + length]
            i += length
        else:
            length = ctrl >> 5
            if length == 7:
                if i >= n:
                    raise InputError("corrupt LZF data: payload ends inside a back-reference")
                length += data[i]
                i += 1
            length += 2
            if i >= n:
                raise InputError("corrupt LZF data: payload ends inside a back-reference")
            distance = ((ctrl & 31) << 8 | data[i]) + 1
            i += 1
            if distance > len(out):
                raise InputError("corrupt LZF data: back-reference before the start of the output")
            chunk = out[-distance:]
            if length > distance:  # the reference overlaps what it writes: the chunk repeats
                chunk = chunk * (length // distance + 1)
            out += chunk[:length]
        if len(out) > size:
            raise InputError(f"corrupt LZF data: expands past the {size} bytes the header says")
    if len(out) != size:
        raise InputError(f"corrupt LZF data: expands to {len(out)} bytes, header says {size}")
    return bytes(out)
