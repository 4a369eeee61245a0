"""Pictures (PNG, PDF or SVG by the path's suffix): grids of sets, reconstructions beside their
inputs, and loss curves (matplotlib Figures built without pyplot: no global state, no backend to pick).

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


_SIZE = 2.2  # inches per panel
_FONT = 8  # panel title points
_CHARS = int(_SIZE * 72 / (_FONT * 0.55))  # characters a panel title holds (DejaVu Sans: ~0.55 em each)
_MARGIN = 1.08  # panel half-width over the largest half-extent: markers at the edge stay whole
# (2D colour, 3D depth colour map): a set or an input; the reconstruction beside it
_STYLES = (("#1f4e79", "viridis"), ("#c55a11", "plasma"), ("#385723", "cividis"))  # input, output, target


def _save(fig: Any, path: Path, force: bool) -> None:
    with atomic_path(Path(path), force) as tmp:
        fig.savefig(tmp, format=picture_format(path))


def sets_figure(
    points: np.ndarray,
    mask: np.ndarray,
    titles: Sequence[str] | None = None,
    up_axis: int = 2,
    *,
    inputs: tuple[np.ndarray, np.ndarray] | None = None,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
    title: str | None = None,
) -> Any:
    """A matplotlib Figure of sets, points [B, N, D] (D 2 or 3) with mask [B, N]: one panel per set
    or, given `inputs` (points [B, M, D] and mask [B, M] that the sets were made from), each input and
    its reconstruction side by side; `targets` (the whole sets a set-to-set run should give back)
    add a third panel, and the middle one is the output.

    `titles` [B] caption the sets (shortened from the left to fit a panel; each panel adds its point
    count), `title` heads the figure. All panels share one scale, the largest extent of any set or
    input, so sizes compare; each panel (a pair: both) is centred on its own points, so it holds them all.
    """
    from matplotlib.figure import Figure

    points, mask = np.asarray(points), np.asarray(mask, dtype=bool)
    n, dim = points.shape[0], points.shape[-1]
    groups = [[points[i][mask[i]]] for i in range(n)]
    if inputs is not None:
        in_points, in_mask = np.asarray(inputs[0]), np.asarray(inputs[1], dtype=bool)
        groups = [[in_points[i][in_mask[i]], *g] for i, g in enumerate(groups)]
    if targets is not None:
        t_points, t_mask = np.asarray(targets[0]), np.asarray(targets[1], dtype=bool)
        groups = [[*g, t_points[i][t_mask[i]]] for i, g in enumerate(groups)]
    made = "output" if targets is not None else "reconstruction"
    per = len(groups[0]) if groups else 1
    group_cols = max(1, math.ceil(math.sqrt(n / per)))  # about as many panel rows as columns
    rows, cols = max(1, math.ceil(n / group_cols)), group_cols * per
    fig = Figure(figsize=(cols * _SIZE, rows * _SIZE + (0.3 if title else 0)), dpi=100, layout="constrained")
    kw = {"projection": "3d"} if dim == 3 else {}
    half = max([_half_extent(np.concatenate(g)) for g in groups] + [1e-6]) * _MARGIN
    for i, group in enumerate(groups):
        centre = _centre(np.concatenate(group), dim)
        caption = titles[i] if titles else str(i)
        for j, p in enumerate(group):
            if per == 1:
                text = _fit(caption, f" ({len(p)} pts)")
            else:
                text = (_fit(caption, f": input, {len(p)} pts") if j == 0
                        else f"{made if j == 1 else 'target'}, {len(p)} pts")
            ax = fig.add_subplot(rows, cols, (i // group_cols) * cols + (i % group_cols) * per + j + 1, **kw)
            _draw(ax, p, centre, half, up_axis, _STYLES[j])
            ax.set_title(text, fontsize=_FONT)
    if title:
        fig.suptitle(title, fontsize=_FONT + 2)
    return fig


def render_sets(
    points: np.ndarray,
    mask: np.ndarray,
    path: Path,
    titles: Sequence[str] | None = None,
    up_axis: int = 2,
    force: bool = False,
    *,
    inputs: tuple[np.ndarray, np.ndarray] | None = None,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
    title: str | None = None,
) -> Path:
    """`sets_figure` written to `path` (its suffix picks PNG, PDF or SVG) atomically; returns the path."""
    _save(sets_figure(points, mask, titles, up_axis, inputs=inputs, targets=targets, title=title), path, force)
    return Path(path)


def _half_extent(p: np.ndarray) -> float:
    """Half the largest side of the bounding box of points [n, D] (0 for none)."""
    return float((p.max(0) - p.min(0)).max()) / 2 if len(p) else 0.0


def _centre(p: np.ndarray, dim: int) -> np.ndarray:
    """The bounding-box centre of points [n, D] (the origin for none)."""
    return (p.min(0) + p.max(0)) / 2 if len(p) else np.zeros(dim)


def _fit(caption: str, suffix: str) -> str:
    """caption + suffix within a panel's width; a long caption loses its start (the end tells sets apart)."""
    room = _CHARS - len(suffix)
    return (caption if len(caption) <= room else "\u2026" + caption[-(room - 1):]) + suffix


def _draw(ax: Any, p: np.ndarray, centre: np.ndarray, half: float, up_axis: int, style: tuple[str, str]) -> None:
    """Points p [n, D] on `ax`, within centre +- half on every axis, without ticks."""
    colour, cmap = style
    if p.shape[-1] == 2:
        ax.scatter(p[:, 0], p[:, 1], s=6, c=colour, linewidths=0)
        ax.set_aspect("equal")
    else:
        # Depth along the fixed view direction gives the shading (near points darker).
        ax.view_init(elev=20, azim=-60, vertical_axis=_AXES[up_axis])
        depth = p @ _view_direction(up_axis) if len(p) else p[:, 0]
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=3, c=depth, cmap=cmap, linewidths=0, depthshade=False)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.set_zticks([])
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_xticks([]), ax.set_yticks([])


def _view_direction(up_axis: int) -> np.ndarray:
    """Unit vector (in data coordinates) pointing from the scene towards the fixed camera."""
    elev, azim = np.deg2rad(20), np.deg2rad(-60)
    local = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    order = [a for a in range(3) if a != up_axis] + [up_axis]  # the two horizontal axes, then up
    out = np.empty(3)
    out[order] = local
    return -out


# The terms `models.objective` logs, in the order they are drawn; any other *_loss term follows.
_TERMS = ("set_loss", "presence_loss", "size_loss", "aux_loss")
_FEW = 30  # a series with fewer points than this is drawn with markers: one point is still seen


def loss_terms(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The loss terms in metrics rows, training ("set_loss") or validation ("val_set_loss") alike: the
    total "loss" only when no term is logged (it mixes terms of different scales)."""
    keys = {k.removeprefix("val_") for r in rows for k in r if k.endswith("_loss")}
    return [t for t in _TERMS if t in keys] + sorted(keys - set(_TERMS) - {"loss"}) or ["loss"]


def loss_figure(rows: Sequence[dict[str, Any]], validation: str = "validation") -> Any:
    """A matplotlib Figure with one axis per loss term (`loss_terms`): its training value at every
    logged step and its validation value at every evaluation (legend `validation`: the sets scored)."""
    from matplotlib.figure import Figure

    terms = loss_terms(rows)
    fig = Figure(figsize=(6, 1.0 + 2.4 * len(terms)), dpi=100, layout="constrained")
    axes = fig.subplots(len(terms), 1, sharex=True, squeeze=False)[:, 0]
    for ax, term in zip(axes, terms, strict=True):
        train = [(r["step"], r[term]) for r in rows if term in r]
        val = [(r["step"], r[f"val_{term}"]) for r in rows if f"val_{term}" in r]
        for series, label, always_marked in ((train, "train", False), (val, validation, True)):
            if series:
                s, v = zip(*series, strict=True)
                ax.plot(s, v, label=label, marker="o" if always_marked or len(s) < _FEW else None, markersize=3)
        values = [v for _, v in train + val]
        if values and min(values) > 0 and max(values) > 10 * min(values):  # a log axis only where it spreads
            ax.set_yscale("log")
        ax.set_ylabel(term.replace("_", " "))
        ax.grid(True, alpha=0.3)
        if values:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    return fig


def render_loss_curve(rows: Sequence[dict[str, Any]], path: Path, validation: str = "validation") -> Path:
    """`loss_figure` of metrics rows written to `path`, replacing it; returns the path."""
    _save(loss_figure(rows, validation), path, force=True)
    return Path(path)
