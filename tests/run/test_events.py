"""TensorBoard event files: CRC-32C, the TFRecord framing and Event encoding, read back by an
independent reader (and by TensorBoard's own when it is installed)."""

from __future__ import annotations

import math
import time

import pytest

from pointset_cli.errors import PointsetError
from pointset_cli.run import events
from pointset_testing.events import crc32c_bitwise, event_files, read_events, read_records, scalars_by_step


@pytest.mark.parametrize("data, crc", [
    (b"123456789", 0xE3069283),  # the check value of CRC-32C
    (b"", 0),
    (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
])
def test_crc32c_known_vectors(data, crc):
    assert events.crc32c(data) == crc == crc32c_bitwise(data)


def test_rows_read_back_with_version_start_and_float32_values(tmp_path):
    log = events.EventLog(tmp_path, first_step=1)
    before = time.time()
    log.append(1, {"loss": 0.25, "lr": 1e-3, "val_loss": 1e300})  # beyond float32: inf, not an error
    log.append(2, {"loss": float("nan")})
    [path] = event_files(tmp_path)
    assert path == log.path and path.name.startswith("events.out.tfevents.")
    version, start, first, second = read_events(path)
    assert version["file_version"] == "brain.Event:2"
    assert start["session_status"] == 1 and start["step"] == 1
    assert first["step"] == 1 and first["scalars"]["loss"] == 0.25
    assert first["scalars"]["lr"] == pytest.approx(1e-3, rel=1e-7) and first["scalars"]["val_loss"] == math.inf
    assert second["step"] == 2 and math.isnan(second["scalars"]["loss"])
    assert before - 1 <= first["wall_time"] <= time.time() + 1


def test_large_steps_and_long_tags_encode(tmp_path):
    log = events.EventLog(tmp_path, first_step=0)
    tag = "t" * 300  # a length of two varint bytes
    log.append(2**40 + 3, {tag: 1.5})
    last = read_events(log.path)[-1]
    assert last["step"] == 2**40 + 3 and last["scalars"] == {tag: 1.5}


def test_a_new_session_writes_a_new_file_and_leaves_a_cut_old_one_alone(tmp_path):
    old = events.EventLog(tmp_path, first_step=1)
    for step in (1, 2, 3):
        old.append(step, {"loss": float(step)})
    old.path.write_bytes(old.path.read_bytes()[:-5])  # killed in the middle of its last record
    cut = old.path.read_bytes()
    new = events.EventLog(tmp_path, first_step=3)  # resumed from the checkpoint at step 2
    new.append(3, {"loss": 30.0})
    new.append(4, {"loss": 40.0})
    assert new.path != old.path and old.path.read_bytes() == cut
    with pytest.raises(ValueError, match="cut record"):
        read_records(cut)
    assert [(e["step"], e.get("scalars")) for e in read_events(new.path)] == [
        (0, None), (3, None), (3, {"loss": 30.0}), (4, {"loss": 40.0})]


def test_a_session_that_logs_nothing_leaves_no_file(tmp_path):
    events.EventLog(tmp_path, first_step=1)
    assert not list(tmp_path.iterdir())


def test_an_unwritable_folder_is_one_error_naming_the_file(tmp_path):
    log = events.EventLog(tmp_path / "gone", first_step=1)
    with pytest.raises(PointsetError, match="cannot write") as err:
        log.append(1, {"loss": 1.0})
    assert "events.out.tfevents." in str(err.value)


def test_tensorboard_reads_the_files_and_drops_what_a_resume_redoes(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    old = events.EventLog(tmp_path, first_step=1)
    for step in (1, 2, 3):
        old.append(step, {"loss": float(step), "val_loss": step / 10})
    new = events.EventLog(tmp_path, first_step=3)
    new.append(3, {"loss": 30.0})
    acc = accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"loss", "val_loss"} <= set(acc.Tags()["scalars"])
    assert [(s.step, s.value) for s in acc.Scalars("loss")] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    assert scalars_by_step(tmp_path, "loss") == {1: 1.0, 2: 2.0, 3: 30.0}
