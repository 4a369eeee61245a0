"""pointset as a library: `import pointset_cli as ps`.

    ps.chamfer(a, b), ps.emd(a, b)        distances between two sets [N, D] (or matching batches)
    ps.generation_metrics(samples, refs)  MMD, COV, 1-NNA, JSD as PointFlow defines them
    ps.read_sets("mnist.h5", split="test")
    run = ps.load_run("checkpoints/mnist_mlp")
    run.sample(8), run.encode(sets), run.reconstruct(sets)

A set is a float array [n, D]; several sets are a list of them (sizes may differ) or one array
[B, N, D] of equal-size sets. Sets a run takes or gives are in its dataset's normalised units, as
`pointset prepare` wrote them (`read_sets` returns them so). Errors are pointset's own
(`pointset_cli.errors.PointsetError`), the same one-line messages the command line prints.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pointset_cli import metrics
from pointset_cli.data import collections
from pointset_cli.errors import UsageError
from pointset_cli.run import generate
from pointset_cli.run import load as run_load

Sets = np.ndarray | Sequence[np.ndarray]  # one set [n, D], equal-size sets [B, N, D], or a list of [n_i, D]


def _one_set(sets: Sets) -> bool:
    """Whether `sets` is a single set [n, D] rather than several."""
    return isinstance(sets, np.ndarray) and sets.ndim == 2


def _as_list(sets: Sets) -> Sequence[np.ndarray]:
    return [sets] if _one_set(sets) else sets


def padded(sets: Sets, n_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sets -> points [B, N, D] float32 (padding rows zero) and mask [B, N] bool; N = n_max or the
    largest set. One array [n, D] is one set."""
    arrays = [np.asarray(s, np.float32) for s in _as_list(sets)]
    if not arrays or any(a.ndim != 2 or a.shape[1] != arrays[0].shape[1] for a in arrays):
        raise UsageError("expected sets of points [n, D] with one D, as a list or an array [B, N, D]")
    sizes = [len(a) for a in arrays]
    width = max(sizes) if n_max is None else n_max
    too_big = [i for i, n in enumerate(sizes) if n > width]
    if too_big:
        raise UsageError(f"set {too_big[0]} has {sizes[too_big[0]]} points; at most {width} fit")
    points = np.zeros((len(arrays), width, arrays[0].shape[1]), np.float32)
    mask = np.zeros((len(arrays), width), bool)
    for i, a in enumerate(arrays):
        points[i, : len(a)], mask[i, : len(a)] = a, True
    return points, mask


def unpadded(points: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """points [B, N, D], mask [B, N] -> a list of B sets [n_i, D] (the masked rows, in order)."""
    return [np.asarray(p)[np.asarray(m, bool)] for p, m in zip(points, mask, strict=True)]


def _pair(a: Sets, b: Sets) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], bool]:
    one = _one_set(a)
    x, y = padded(a), padded(b)
    if len(x[0]) != len(y[0]):
        raise UsageError(f"expected as many sets in b as in a, got {len(y[0])} and {len(x[0])}")
    return x, y, one


def chamfer(a: Sets, b: Sets) -> float | np.ndarray:
    """Chamfer distance (squared units, PointFlow's: the mean squared distance to the nearest point,
    each way, summed) between set a [n, D] and set b [m, D] -> float; between matching lists or
    batches -> [B]. Symmetric, and invariant to the order of each set's points."""
    (x, xm), (y, ym), one = _pair(a, b)
    cd = metrics.paired_chamfer(x, y, xm, ym)
    return float(cd[0]) if one else cd


def emd(a: Sets, b: Sets) -> float | np.ndarray:
    """Exact earth mover's distance (input units: the mean Euclidean distance under the best
    one-to-one matching) between sets of equal size -> float, or [B] for matching lists."""
    (x, xm), (y, ym), one = _pair(a, b)
    if (xm.sum(1) != ym.sum(1)).any():
        raise UsageError("EMD needs sets of equal size (pair by pair)")
    d = metrics.paired_emd(x, y, xm, ym)
    return float(d[0]) if one else d


def generation_metrics(samples: Sets, refs: Sets, **options: Any) -> dict:
    """MMD, COV, 1-NNA (CD and EMD) and JSD of generated sets against reference sets, as
    `pointset eval --samples --refs` computes them; options as `metrics.generation_metrics`
    (metrics=, max_sets=, seed=, emd_solver=, jsd_protocol=)."""
    n = max(max(len(s) for s in _as_list(samples)), max(len(s) for s in _as_list(refs)))
    (s, sm), (r, rm) = padded(samples, n), padded(refs, n)
    return metrics.generation_metrics(s, r, sample_mask=sm, ref_mask=rm, **options)


def read_sets(path: str | Path, split: str | None = None) -> list[np.ndarray]:
    """Every set [n_i, D] of a dataset .h5 (of `split`: train, val, test), an .npy/.npz array or a
    folder of point files, in order."""
    return unpadded(*collections.read_sets(Path(path), split))


class _ArraySets:
    """Sets held in memory, read by index as a SetDataset is (what the run's batch loops take)."""

    def __init__(self, points: np.ndarray, mask: np.ndarray):
        self.points, self.mask = points, mask

    def read(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.points[idx], self.mask[idx], np.zeros(len(idx), np.int32)


class Run:
    """A trained run: sample from it, encode sets, reconstruct them, or map sets to sets (`load_run` makes one)."""

    def __init__(self, trained: run_load.TrainedRun):
        self.trained = trained

    @property
    def step(self) -> int:
        """The training step of the loaded checkpoint."""
        return self.trained.step

    @property
    def classes(self) -> list[str]:
        return list(self.trained.info["classes"])

    def __repr__(self) -> str:
        cfg = self.trained.config.model
        return f"Run({str(self.trained.paths.root)!r}, model={cfg.name!r}, task={cfg.task!r}, step={self.step})"

    def sample(self, n: int, seed: int = 0, label: str | int | None = None, size: int | None = None,
               temperature: float = 1.0) -> list[np.ndarray]:
        """n generated sets [n_i, D] (of class `label` for a conditional run or an autoencoder with a
        per-class prior; `size` points each where the model takes a size); seeded."""
        sets = generate.generated(self.trained, n, seed, None if label is None else str(label), size, temperature)
        return unpadded(sets.points, sets.mask)

    def _batch_source(self, sets: Sets) -> tuple[_ArraySets, np.ndarray]:
        points, mask = padded(sets, self.trained.info["n_max"])
        return _ArraySets(points, mask), np.arange(len(points))

    def encode(self, sets: Sets) -> np.ndarray:
        """Latents z [B, K'] of autoencoder inputs (K' = shape code, centroid and size, as
        ARCHITECTURE.md says); the same for any order of each set's points."""
        if self.trained.config.model.task != "autoencode":
            raise UsageError(f"encoding needs an autoencoder; this run's task is {self.trained.config.model.task}")
        source, idx = self._batch_source(sets)
        return generate.encode_sets(self.trained.model, self.trained.params, source, idx,
                                    self.trained.config.data.batch_size)

    def reconstruct(self, sets: Sets, seed: int = 0) -> list[np.ndarray]:
        """Each set encoded and decoded at its own size -> a list of sets [n_i, D] (autoencoders)."""
        source, idx = self._batch_source(sets)
        rec = generate.reconstruct_sets(self.trained, source, idx, seed=seed,
                                        batch_size=self.trained.config.data.batch_size)
        return unpadded(rec["recon_points"], rec["recon_mask"])

    def outputs(self, sets: Sets, seed: int = 0) -> list[np.ndarray]:
        """What the run makes of each set, at the size it decides -> a list of sets [n_i, D]: a
        set-to-set run's completed, denoised or upsampled set (the sets are its inputs), an
        autoencoder's reconstruction."""
        points, mask = padded(sets)
        return unpadded(*generate.model_outputs(self.trained, points, mask, seed, self.trained.config.data.batch_size))


def load_run(path: str | Path, checkpoint: str | None = None) -> Run:
    """The run folder at `path` (from `pointset train`, or a shipped one under checkpoints/), with the
    parameters of `checkpoint`: "best", "latest" or a step (default: best, else latest)."""
    return Run(run_load.load_run(path, lambda message: warnings.warn(message, stacklevel=3), checkpoint))
