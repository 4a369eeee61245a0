"""An event-file reader written apart from pointset_cli.run.events (bitwise CRC, generic protobuf
decoding), so the tests check the writer against the format rather than against itself."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(data: bytes) -> list[bytes]:
    """The records of a TFRecord stream; ValueError on a bad checksum or a cut record."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"cut record header at byte {pos}")
        length_bytes = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != _masked(length_bytes):
            raise ValueError(f"bad length checksum at byte {pos}")
        body = data[pos + 12:pos + 12 + length]
        crc = data[pos + 12 + length:pos + 16 + length]
        if len(body) < length or len(crc) < 4:
            raise ValueError(f"cut record at byte {pos}")
        if struct.unpack("<I", crc)[0] != _masked(body):
            raise ValueError(f"bad data checksum at byte {pos}")
        out.append(body)
        pos += 16 + length
    return out


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of a protobuf message: ints, 8/4-byte chunks or bytes."""
    out, pos = [], 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 1:
            out.append((number, data[pos:pos + 8]))
            pos += 8
        elif wire == 5:
            out.append((number, data[pos:pos + 4]))
            pos += 4
        elif wire == 2:
            n = varint()
            out.append((number, data[pos:pos + n]))
            pos += n
        else:
            raise ValueError(f"wire type {wire}")
    return out


def parse_event(data: bytes) -> dict[str, Any]:
    """An Event as {wall_time, step, file_version?, session_status?, scalars?: {tag: value}}."""
    event: dict[str, Any] = {"step": 0}
    for number, value in _fields(data):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            event["step"] = value
        elif number == 3:
            event["file_version"] = value.decode()
        elif number == 5:
            scalars = {}
            for _, item in _fields(value):
                parts = dict(_fields(item))
                scalars[parts[1].decode()] = struct.unpack("<f", parts[2])[0]
            event["scalars"] = scalars
        elif number == 7:
            event["session_status"] = dict(_fields(value)).get(1, 0)
    return event


def read_events(path: Path) -> list[dict[str, Any]]:
    return [parse_event(r) for r in read_records(Path(path).read_bytes())]


def event_files(run: Path) -> list[Path]:
    """A run folder's event files in the order TensorBoard reads them (by name: oldest first)."""
    return sorted(Path(run).glob("events.out.tfevents.*"))


def scalars_by_step(run: Path, tag: str) -> dict[int, float]:
    """`tag`'s values by step over a run's event files, as TensorBoard shows them: a SessionLog START at
    step s drops what earlier files logged from s on."""
    values: dict[int, float] = {}
    for path in event_files(run):
        for event in read_events(path):
            if event.get("session_status") == 1:
                values = {s: v for s, v in values.items() if s < event["step"]}
            if tag in event.get("scalars", {}):
                values[event["step"]] = event["scalars"][tag]
    return values
