"""Data parallelism: 2 forced CPU devices give the 1-device losses; two processes on 127.0.0.1 train together.

XLA_FLAGS must be set before JAX starts, so each case runs in a child process.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pointset_testing.runner import SETS, checkpoint_steps, env, our_lines, start
from pointset_cli.errors import UsageError
from pointset_cli.training.parallel import init_distributed, parse_devices

TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}

CHILD = """
import json, sys
from pointset_cli import config
from pointset_cli.errors import UsageError
from pointset_cli.training.loop import StderrReporter, train
from pointset_cli.training.parallel import DataParallel

data, out, *sets = sys.argv[1:]
cfg = config.resolve(None, sets, {"data.path": data})
losses = {}
for n in (1, 2):
    run = train(cfg, f"{out}/d{n}", devices=n)
    rows = [json.loads(line) for line in open(f"{out}/d{n}/metrics.jsonl")]
    losses[n] = [r["loss"] for r in rows if "loss" in r] + [r["val_loss"] for r in rows if "val_loss" in r]
try:
    DataParallel(2, 7)
except UsageError as err:
    losses["odd_batch"] = str(err)
print(json.dumps(losses))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_devices_option_and_distributed_flags_are_checked():
    assert parse_devices("auto") is None and parse_devices("4") == 4
    for bad in ("0", "two", "-1"):
        with pytest.raises(UsageError, match="--devices"):
            parse_devices(bad)
    with pytest.raises(UsageError, match="--coordinator"):
        init_distributed(None, 2, 1)
    with pytest.raises(UsageError, match="0 <= I < P"):
        init_distributed("127.0.0.1:1234", 2, 2)
    with pytest.raises(UsageError, match="HOST:PORT"):
        init_distributed("localhost", 2, 0)


@pytest.mark.slow
def test_two_devices_give_the_one_device_losses(tiny_mnist, tmp_path):
    sets = [*[s for s in SETS if s != "--set"], "train.steps=6", "train.log_every=1", "data.jitter=0.01"]
    child = subprocess.run([sys.executable, "-c", CHILD, str(tiny_mnist), str(tmp_path), *sets],
                           env=env(**TWO_DEVICES), capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    losses = json.loads(child.stdout.splitlines()[-1])
    assert len(losses["1"]) == 6 + 2  # six training losses, two evaluations
    np.testing.assert_allclose(losses["2"], losses["1"], rtol=1e-5)
    assert "batch size 7 does not divide by the 2 device(s)" in losses["odd_batch"]


@pytest.mark.slow
def test_two_processes_on_localhost_train_and_process_0_writes_one_run(tiny_mnist, tmp_path):
    (tmp_path / "tiny.h5").symlink_to(tiny_mnist)
    port = _free_port()
    procs = [start(["train", "tiny.h5", *SETS, "--steps", "4", "--run-dir", f"run{i}", "--format", "json", "-q",
                    "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)], tmp_path)
             for i in (0, 1)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert not [line for line in our_lines(err) if line.startswith("error")]
    summary = json.loads(results[0][0])  # stdout is the JSON alone: gloo's own lines go to stderr
    assert summary["steps"] == 4
    assert checkpoint_steps(Path(tmp_path / "run0")) == [2, 4]  # checkpoint_every 2, max_to_keep 2
    assert not (tmp_path / "run1").exists()  # only process 0 writes
