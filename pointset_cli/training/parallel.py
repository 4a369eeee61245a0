"""Data parallelism over `jax.sharding`: one mesh axis "data", the batch split along it, the state replicated.

One device is the same code path with a mesh of size 1. Several processes (hosts) join through
`jax.distributed.initialize` first; each then reads only its own rows of every batch (`part`), and
only process 0 (`primary`) touches the run folder. On CPU, cross-process collectives use gloo.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from pointset_cli.errors import PointsetError, UsageError

AXIS = "data"


def init_distributed(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-process run (`HOST:PORT`, P, I) before JAX touches a device; no-op without a coordinator."""
    if coordinator is None:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise UsageError("--num-processes/--process-id need --coordinator HOST:PORT")
        return
    if num_processes is None or process_id is None or not 0 <= process_id < num_processes:
        raise UsageError("--coordinator needs --num-processes P and --process-id I with 0 <= I < P")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--coordinator expects HOST:PORT, got {coordinator!r}")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    except Exception as err:  # noqa: BLE001 - connection failures come as several XLA error types
        msg = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise PointsetError(f"cannot join the distributed run at {coordinator}: {msg}") from None
    _native_stdout_to_stderr()


def _native_stdout_to_stderr() -> None:
    """Send what native code writes to file descriptor 1 (gloo's `[Gloo] Rank ...` lines) to stderr.

    Python's sys.stdout keeps the original stdout, so `--format json` stays one clean document.
    Does nothing when sys.stdout is not file descriptor 1 (a test runner capturing output).
    """
    try:
        if sys.stdout.fileno() != 1:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stdout.flush()
    original = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(original, "w", encoding=sys.stdout.encoding, errors=sys.stdout.errors, buffering=1)


def parse_devices(text: str) -> int | None:
    """`auto` -> None (all devices), `N` -> N >= 1; anything else is a usage error."""
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--devices expects 'auto' or a positive count, got {text!r}")


class DataParallel:
    """A 1D mesh over `n_devices` devices (None: all of them, across every process)."""

    def __init__(self, n_devices: int | None, batch_size: int):
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        devices = jax.devices()
        n = len(devices) if n_devices is None else n_devices
        if n > len(devices):
            raise UsageError(f"--devices {n}: only {len(devices)} device(s) available ({devices[0].platform})")
        if jax.process_count() > 1 and n != len(devices):
            raise UsageError(f"--devices {n}: a multi-process run uses all {len(devices)} devices (--devices auto)")
        if batch_size % n:
            raise UsageError(f"batch size {batch_size} does not divide by the {n} device(s); "
                             f"use a multiple of {n} or --devices to pick fewer")
        self.mesh = Mesh(np.array(devices[:n]), (AXIS,))
        self.n_devices = n
        self.batch_size = batch_size
        self.batch_sharding = NamedSharding(self.mesh, PartitionSpec(AXIS))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.process, self.n_processes = jax.process_index(), jax.process_count()

    @property
    def primary(self) -> bool:
        """Process 0 writes checkpoints, logs and records."""
        return self.process == 0

    @property
    def part(self) -> tuple[int, int]:
        """(this process, process count): which contiguous rows of each batch this process reads."""
        return self.process, self.n_processes

    def shard_batch(self, local: Any) -> Any:
        """This process's rows [B / P, ...] of each field -> global arrays [B, ...] split along the mesh."""
        import jax

        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(
                self.batch_sharding, x, (self.batch_size, *x.shape[1:])), local)

    def replicate(self, tree: Any) -> Any:
        """Host values (the same on every process) -> arrays replicated on every device of the mesh."""
        import jax

        def put(x: Any) -> Any:
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, self.replicated, lambda idx: x[idx])

        return jax.tree.map(put, tree)

    def to_host(self, tree: Any) -> Any:
        """Replicated arrays -> numpy on this host (every process holds a full copy)."""
        import jax

        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)

    def from_primary(self, tree: Any) -> Any:
        """Process 0's host values on every process (a resumed state is read by process 0 only)."""
        if self.n_processes == 1:
            return tree
        from jax.experimental import multihost_utils

        return multihost_utils.broadcast_one_to_all(tree)

    def any_process(self, flag: bool) -> bool:
        """Whether `flag` is set on any process (a signal to one process stops all at the same step)."""
        if self.n_processes == 1:
            return flag
        from jax.experimental import multihost_utils

        return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())
