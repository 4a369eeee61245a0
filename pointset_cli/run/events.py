"""TensorBoard scalars without TensorFlow: RUN/events.out.tfevents.<time>.<host>, for `tensorboard --logdir runs/`.

An event file is a TFRecord stream (per record: uint64 length, masked CRC-32C of the length, the
data, masked CRC-32C of the data; little-endian) of `Event` protocol buffers, encoded here by hand:

    Event      { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
                 SessionLog session_log = 7; }
    Summary    { repeated Value value = 1; }    Value { string tag = 1; float simple_value = 2; }
    SessionLog { Status status = 1; }           (START = 1)

Each training session (a new run, each resume) writes a file of its own, so a file a kill cut short is
never written into again. It opens with the file version and a SessionLog START at the session's first
step: TensorBoard then drops what an earlier session logged from that step on (steps a resume redoes).
No JAX here.
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path

from pointset_cli.errors import PointsetError

FILE_PREFIX = "events.out.tfevents."  # TensorBoard reads the files whose name holds "tfevents"
FILE_VERSION = "brain.Event:2"  # version 2: SessionLog START marks a restart
_START = 1  # SessionLog.Status.START


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as TFRecord checksums it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotated right by 15 bits plus a constant (a CRC of CRCs stays informative)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, `data`, its masked CRC."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _varint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"negative varint {value}")  # steps and lengths only
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): strings and nested messages."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _float32(value: float) -> bytes:
    try:
        return struct.pack("<f", value)
    except OverflowError:  # finite in float64, beyond float32
        return struct.pack("<f", math.copysign(math.inf, value))


def scalar_summary(scalars: Mapping[str, float]) -> bytes:
    """A Summary message of one simple_value per tag."""
    return b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + _float32(float(v))) for tag, v in scalars.items())


def event(wall_time: float, step: int, *, file_version: str | None = None, summary: bytes | None = None,
          session_start: bool = False) -> bytes:
    """An Event message: its time and step, and one of a file version, a summary or a SessionLog START."""
    out = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
    if file_version is not None:
        out += _field(3, file_version.encode())
    if summary is not None:
        out += _field(5, summary)
    if session_start:
        out += _field(7, b"\x08" + _varint(_START))
    return out


def new_file(folder: Path) -> Path:
    """A name for a new event file in `folder`: events.out.tfevents.<unix time>.<host>, never an existing one."""
    base = f"{FILE_PREFIX}{int(time.time())}.{socket.gethostname()}"
    path, n = folder / base, 0
    while path.exists():
        n += 1
        path = folder / f"{base}.{n}"
    return path


class EventLog:
    """A session's TensorBoard scalars in `folder`, appended and flushed per row like metrics.jsonl.

    The file is created at the first row, with the file version and a START at `first_step` (the
    first step this session trains), so a session that logs nothing leaves no file.
    """

    def __init__(self, folder: Path, first_step: int):
        self.folder, self.first_step = Path(folder), first_step
        self.path: Path | None = None

    def append(self, step: int, scalars: Mapping[str, float]) -> None:
        now = time.time()
        data = b""
        if self.path is None:
            self.path = new_file(self.folder)
            data = record(event(now, 0, file_version=FILE_VERSION)) + record(
                event(now, self.first_step, session_start=True))
        data += record(event(now, step, summary=scalar_summary(scalars)))
        try:
            with open(self.path, "ab") as f:
                f.write(data)  # one write per row: a kill cuts at most the file's last record
                f.flush()
        except OSError as err:
            raise PointsetError(f"cannot write: {err.strerror or err}", self.path) from None
