"""pointset: machine learning on point clouds treated as sets.

As a library (see `pointset_cli.api`): `import pointset_cli as ps`, then `ps.chamfer(a, b)`,
`ps.load_run(path).sample(8)`, `.encode(sets)`, `.reconstruct(sets)`. The names load on first use,
so `import pointset_cli` (and `pointset --help`) does not import JAX.
"""

from typing import Any

from pointset_cli.version import __version__

API = ("chamfer", "emd", "generation_metrics", "read_sets", "load_run", "Run")
__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        from pointset_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'pointset_cli' has no attribute {name!r}")
