"""Turning a shape into a point set of a chosen size, reproducibly from a numpy Generator.

- Meshes: "surface" samples uniformly on the surface (triangles picked by area); "fps" runs
  farthest-point sampling over a dense surface sample (even spacing); "poisson" uses open3d's
  Poisson-disk sampler when open3d is installed.
- Point sets: random subsampling without replacement; "fps" keeps farthest points instead.
  Asking for more points than a set holds keeps every point and repeats random ones.
"""

from __future__ import annotations

import numpy as np

from pointset_cli.errors import UsageError

SAMPLERS = ("surface", "fps", "poisson")
FPS_OVERSAMPLE = 8  # dense surface sample size for FPS on meshes, in multiples of the target


def has_open3d() -> bool:
    try:
        import open3d  # noqa: F401
    except Exception:  # ImportError, or OSError when its system libraries are missing
        return False
    return True


def require_sampler(sampler: str) -> None:
    """Fail early (usage error) for an unknown sampler or Poisson without open3d."""
    if sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if sampler == "poisson" and not has_open3d():
        raise UsageError("--sampler poisson needs open3d: pip install 'pointset[open3d]'")


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points [n, 3] uniform on the surface of a triangle mesh (vertices [v, 3], faces [f, 3])."""
    tri = vertices[faces]  # [f, 3, 3]
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    total = area.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("mesh has no surface area")
    face = rng.choice(len(faces), size=n, p=area / total)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1  # reflect points of the unit square's far half back into the triangle
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def farthest_point_indices(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices [n] of a farthest-point sample of points [m, D] (m >= n), from a random start."""
    idx = np.empty(n, dtype=np.int64)
    idx[0] = rng.integers(len(points))
    dist = np.sum((points - points[idx[0]]) ** 2, axis=1)
    for i in range(1, n):
        idx[i] = int(np.argmax(dist))
        np.minimum(dist, np.sum((points - points[idx[i]]) ** 2, axis=1), out=dist)
    return idx


def resize_points(points: np.ndarray, n: int, rng: np.random.Generator, fps: bool = False) -> np.ndarray:
    """A set of exactly n points from points [m, D]: subsample when m > n, repeat random points when m < n."""
    m = len(points)
    if m == n:
        return points
    if m > n:
        idx = farthest_point_indices(points, n, rng) if fps else np.sort(rng.choice(m, size=n, replace=False))
        return points[idx]
    if m == 0:
        raise ValueError(f"cannot make {n} points from an empty set")
    return np.concatenate([points, points[rng.integers(m, size=n - m)]])


def sample_mesh(
    vertices: np.ndarray, faces: np.ndarray, n: int, sampler: str, rng: np.random.Generator
) -> np.ndarray:
    """n points [n, 3] on a mesh with the named sampler."""
    if sampler == "surface":
        return sample_surface(vertices, faces, n, rng)
    if sampler == "fps":
        dense = sample_surface(vertices, faces, n * FPS_OVERSAMPLE, rng)
        return dense[farthest_point_indices(dense, n, rng)]
    if sampler == "poisson":
        return _poisson_open3d(vertices, faces, n, int(rng.integers(2**31)))
    raise UsageError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")


def _poisson_open3d(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int) -> np.ndarray:
    import open3d as o3d

    o3d.utility.random.seed(seed)
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.ascontiguousarray(vertices, np.float64)),
        o3d.utility.Vector3iVector(np.ascontiguousarray(faces, np.int32)),
    )
    pts = np.asarray(mesh.sample_points_poisson_disk(n).points)
    # Poisson-disk elimination can return a few points short of n; top up from the same sample.
    return resize_points(pts, n, np.random.default_rng(seed))
