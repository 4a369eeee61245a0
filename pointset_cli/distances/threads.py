"""Host work spread over the cores with threads (the kernels release the GIL), stoppable by Ctrl-C."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def map_on_cores(fn: Callable[[Any], Any], items: Iterable[Any],
                 on_result: Callable[[Any], None] | None = None) -> list[Any]:
    """[fn(x) for x in items] on a pool of one thread per core, in order; on_result(r) as each arrives.

    Interrupted (KeyboardInterrupt) or failed, the tasks not yet started are cancelled and the
    running ones finish before the exception propagates: no worker outlives the call (a pool's
    `with` block would run every queued task first, and a worker still in compiled code at
    interpreter exit can crash it).
    """
    items = list(items)
    pool = ThreadPoolExecutor(max(1, min(len(items), os.cpu_count() or 1)))
    try:
        futures = [pool.submit(fn, x) for x in items]
        results = []
        for future in futures:
            results.append(future.result())
            if on_result is not None:
                on_result(results[-1])
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
