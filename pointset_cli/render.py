"""Pictures (PNG, PDF or SVG by the path's suffix): grids of sets and loss curves (matplotlib, Agg).

2D sets are scatter plots; 3D sets are scatter plots from one fixed view, shaded by depth so the
shape reads without interaction. Every figure is written atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli.errors import UsageError
from pointset_cli.fsutil import atomic_path

_AXES = "xyz"
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def picture_format(path: Path) -> str:
    """The format a picture path asks for by its suffix; anything else is a usage error."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"a picture is written as {', '.join(FORMATS)}: name the file with one of them", path)
    return fmt


def _figure(rows: int, cols: int, size: float, three_d: bool) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(cols * size, rows * size), dpi=100)
    kw = {"projection": "3d"} if three_d else {}
    axes = [fig.add_subplot(rows, cols, i + 1, **kw) for i in range(rows * cols)]
    return fig, axes


def _save(fig: Any, path: Path, force: bool) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(Path(path), force) as tmp:
            fig.savefig(tmp, format=picture_format(path))
    finally:
        plt.close(fig)


def render_sets(
    points: np.ndarray,
    mask: np.ndarray,
    path: Path,
    titles: Sequence[str] | None = None,
    up_axis: int = 2,
    force: bool = False,
) -> Path:
    """A grid of sets, points [B, N, D] (D 2 or 3) with mask [B, N]; one panel per set.

    All panels share one scale (the largest extent among the sets) so sizes compare.
    """
    points, mask = np.asarray(points), np.asarray(mask, dtype=bool)
    n, dim = points.shape[0], points.shape[-1]
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    fig, axes = _figure(rows, cols, 2.2, three_d=dim == 3)
    real = points[mask] if mask.any() else np.zeros((1, dim))
    lo, hi = real.min(0), real.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6) * 1.05
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_axis_off()
            continue
        p = points[i][mask[i]]
        if dim == 2:
            ax.scatter(p[:, 0], p[:, 1], s=6, c="#1f4e79", linewidths=0)
            ax.set_aspect("equal")
        else:
            # Depth along the fixed view direction gives the shading (near points darker).
            ax.view_init(elev=20, azim=-60, vertical_axis=_AXES[up_axis])
            depth = p @ _view_direction(up_axis) if len(p) else p[:, 0]
            ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=3, c=depth, cmap="viridis", linewidths=0, depthshade=False)
            ax.set_zlim(centre[2] - half, centre[2] + half)
            ax.set_box_aspect((1, 1, 1))
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_xticks([]), ax.set_yticks([])
        if dim == 3:
            ax.set_zticks([])
        ax.set_title(titles[i] if titles else f"{i} ({len(p)} pts)", fontsize=8)
    fig.tight_layout()
    _save(fig, path, force)
    return Path(path)


def _view_direction(up_axis: int) -> np.ndarray:
    """Unit vector (in data coordinates) pointing from the scene towards the fixed camera."""
    elev, azim = np.deg2rad(20), np.deg2rad(-60)
    local = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    order = [a for a in range(3) if a != up_axis] + [up_axis]  # the two horizontal axes, then up
    out = np.empty(3)
    out[order] = local
    return -out


def render_loss_curve(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Training loss (every logged step) and validation loss (every evaluation) against step."""
    fig, (ax,) = _figure(1, 1, 4.0, three_d=False)
    fig.set_size_inches(6, 4)
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
    for series, label, style in ((train, "train", "-"), (val, "validation", "o-")):
        if series:
            s, v = zip(*series, strict=True)
            ax.plot(s, v, style, label=label, markersize=3)
    values = [v for _, v in train + val]
    if values and min(values) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    if values:
        ax.legend()
    fig.tight_layout()
    _save(fig, path, force=True)
    return Path(path)
