"""`python -m pointset_testing.paced ARGS`: `pointset ARGS` with every training batch held back a while.

Set POINTSET_TEST_STEP_SECONDS to the pause before each training batch is read. A test that must
catch a run at a given moment (between two checkpoints, say) then sees every step last at least
that long, on a fast machine as on a slow one, without the library carrying a test-only switch.
"""

from __future__ import annotations

import os
import time

from pointset_cli.cli import main
from pointset_cli.data import batching


def _paced(batch, seconds: float):
    def read(self, step, part=(0, 1)):
        time.sleep(seconds)
        return batch(self, step, part)

    return read


if __name__ == "__main__":
    batching.BatchStream.batch = _paced(batching.BatchStream.batch, float(os.environ["POINTSET_TEST_STEP_SECONDS"]))
    main()
