"""Normalisation of point sets: a centre and a scale per set, so source = points * scale + center.

Pure functions on float64 arrays. Kinds:
- "none":   center 0, scale 1 (identity).
- "sphere": center = mean point, scale = largest distance from it (set fits the unit ball).
- "cube":   center = bounding-box centre, scale = half the longest box side (set fits [-1, 1]^D).
- "global": one center (per-axis mean) and one scale (std of all coordinates) over the TRAIN
            split, as PointFlow does; computed by `global_stats` once every set is read.
"""

from __future__ import annotations

import numpy as np

KINDS = ("none", "sphere", "cube", "global")


def set_stats(points: np.ndarray, kind: str) -> tuple[np.ndarray, float]:
    """Per-set (center [D], scale) of `points` [n, D]; "global" and "none" give the identity here."""
    dim = points.shape[1]
    if kind in ("none", "global") or len(points) == 0:
        return np.zeros(dim), 1.0
    if kind == "sphere":
        center = points.mean(axis=0)
        scale = float(np.linalg.norm(points - center, axis=1).max())
    elif kind == "cube":
        lo, hi = points.min(axis=0), points.max(axis=0)
        center = (lo + hi) / 2
        scale = float((hi - lo).max() / 2)
    else:
        raise ValueError(f"unknown normalisation {kind!r}; choose one of {', '.join(KINDS)}")
    return center, _safe_scale(scale)


def global_stats(points_list: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """(center [D], scale) shared by all sets: per-axis mean and the std of every coordinate.

    `points_list` holds the training sets ([n_i, D] each) in source units.
    """
    dim = points_list[0].shape[1] if points_list else 0
    if not points_list or not any(len(p) for p in points_list):
        return np.zeros(dim), 1.0
    allp = np.concatenate([p.astype(np.float64) for p in points_list])
    center = allp.mean(axis=0)
    return center, _safe_scale(float((allp - center).std()))


def apply(points: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    """Map source-unit points [n, D] into normalised units (float64)."""
    return (np.asarray(points, np.float64) - center) / scale


def invert(points: np.ndarray, center: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Map normalised points back to source units: points * scale + center (broadcasting)."""
    return np.asarray(points, np.float64) * scale + center


def _safe_scale(scale: float) -> float:
    # A single point (or a degenerate set) has zero extent; keep it where it is instead of dividing by 0.
    return scale if np.isfinite(scale) and scale > 0 else 1.0
