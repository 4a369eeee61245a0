"""Set-to-set task inputs: a whole shape -> the partial, noisy or sparse set a model must restore.

Glossary: B batch, N points per set (padded), N_in input slots, D point dimension (2 or 3), n a set's
real points. `make_inputs` is pure and jittable (task and options static) and takes one PRNG key per
set, so training draws fresh inputs every step inside the jitted loss and evaluation gets the same
input for a set from a key made from its index. Every draw for row i uses the set's key folded with
i: a set's input depends only on its key and its real rows (in their places), never on the padding
(its values or its width) nor on the batch around it. Sets stay in their own coordinates.

complete / "visible" is a depth-buffer occlusion test: it keeps what an orthographic depth camera
looking from a random direction sees at `grid` pixels per side (the points within one pixel's depth
of the front-most point of their pixel). It is not Katz et al.'s spherical-flip hidden-point removal
("Direct visibility of point sets", 2007), which needs a viewpoint at a finite distance and a radius.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from pointset_cli.config import SET_TO_SET_TASKS
from pointset_cli.errors import UsageError

VIEWS = ("visible", "cut")
# Evaluation inputs: the set with dataset index i gets the key fold_in(PRNGKey(INPUT_SEED), i), in
# every run and for every seed, so validation, `eval` and `sample --from` score the same inputs.
INPUT_SEED = 20261202

# One stream per kind of draw, folded into a set's key, so that changing one option (input_points,
# say) never changes another draw (the view) made from the same key.
_DIRECTION, _FRACTION, _ORDER, _JITTER, _OUTLIERS, _SUBSET = range(6)
_UNCHOSEN = 2.0  # the sort priority of a row not to take: above every uniform draw in [0, 1)


@dataclass(frozen=True)
class CompleteOptions:
    view: str = "visible"  # "visible": what a depth camera sees from a random direction; "cut": a random half-space
    keep_min: float = 0.4  # "cut": the kept fraction is uniform in [keep_min, keep_max]: from under
    keep_max: float = 0.8  # half the shape (a hard completion) to most of it
    # "visible": pixels per side. A pixel needs a few near-side points to hide what is behind it: at 32
    # a 1,024-point shape left near-side pixels empty and parts of its far side showed through.
    grid: int = 16
    input_points: int = 0  # resample each view to exactly this many points (repeats when fewer); 0: as seen
    keep_input: bool = False  # the output is the input's points plus what the decoder adds (see assemble)


@dataclass(frozen=True)
class DenoiseOptions:
    noise: float = 0.01  # std of the Gaussian jitter on every point, in the dataset's normalised units
    outliers: float = 0.1  # uniform outliers in the set's bounding box, as a fraction of its points (rounded)


@dataclass(frozen=True)
class UpsampleOptions:
    ratio: int = 4  # the input is a random ceil(n / ratio) of the n points (PU-Net's 4x upsampling)
    keep_input: bool = False  # the output is the input's points plus what the decoder adds (see assemble)


OPTIONS = {"complete": CompleteOptions, "denoise": DenoiseOptions, "upsample": UpsampleOptions}


def _check_count(name: str, value, least: int, meaning: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UsageError(f"{name} must be an integer >= {least}{meaning}, got {value!r}")


def check_options(task: str, options) -> None:
    """Raise UsageError (one line naming the option and its valid range) for an unknown task, options
    of another task's type, or an option out of range."""
    if task not in SET_TO_SET_TASKS:
        raise UsageError(f"unknown task '{task}'; valid: {', '.join(SET_TO_SET_TASKS)}")
    if not isinstance(options, OPTIONS[task]):
        raise UsageError(f"task '{task}' takes {OPTIONS[task].__name__}, not {type(options).__name__}")
    if task == "complete":
        if options.view not in VIEWS:
            raise UsageError(f"unknown view '{options.view}'; valid: {', '.join(VIEWS)}")
        if not 0 < options.keep_min <= options.keep_max <= 1:  # also refuses NaN
            raise UsageError(f"keep_min ({options.keep_min}) and keep_max ({options.keep_max}) must satisfy "
                             "0 < keep_min <= keep_max <= 1")
        _check_count("grid", options.grid, 2)
        _check_count("input_points", options.input_points, 0, " (0 keeps the points seen)")
    elif task == "denoise":
        if not 0 <= options.noise < math.inf:
            raise UsageError(f"noise must be a finite number >= 0, got {options.noise!r}")
        if not 0 <= options.outliers <= 1:
            raise UsageError(f"outliers must be a fraction in [0, 1], got {options.outliers!r}")
    else:
        _check_count("ratio", options.ratio, 2)
    if not isinstance(getattr(options, "keep_input", False), bool):
        raise UsageError(f"keep_input must be true or false, got {options.keep_input!r}")


def _extra_slots(outliers: float, n_max: int) -> int:
    # Rounded to 6 decimals first: 0.1 * 30 is 3.0000000000000004 in floating point, and ceil would
    # give one slot more than the 3 outliers a 30-point set can have.
    return math.ceil(round(outliers * n_max, 6))


def input_slots(task: str, options, n_max: int) -> int:
    """N_in, the padded size of the inputs made from sets padded to n_max: complete: input_points or
    n_max; denoise: n_max + ceil(outliers * n_max); upsample: ceil(n_max / ratio)."""
    check_options(task, options)
    if task == "complete":
        return options.input_points or n_max
    if task == "denoise":
        return n_max + _extra_slots(options.outliers, n_max)
    return -(-n_max // options.ratio)


def _direction(key: jax.Array, dim: int) -> jax.Array:
    """The set's view direction: a uniform random unit vector [D] (a normalised Gaussian draw)."""
    u = jax.random.normal(jax.random.fold_in(key, _DIRECTION), (dim,), jnp.float32)
    return u / jnp.maximum(jnp.linalg.norm(u), 1e-12)


def _row_draws(key: jax.Array, stream: int, rows: int, draw: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """draw(k) with row i's own key k, stacked -> [rows, ...]: a row's draw is the same however many
    rows there are, so padding a set wider changes nothing (a draw of shape [rows] promises that only
    under jax_threefry_partitionable)."""
    key = jax.random.fold_in(key, stream)
    return jax.vmap(lambda i: draw(jax.random.fold_in(key, i)))(jnp.arange(rows))


def _row_uniform(key: jax.Array, stream: int, rows: int) -> jax.Array:
    return _row_draws(key, stream, rows, lambda k: jax.random.uniform(k, (), jnp.float32))  # [rows]


def _plane_basis(u: jax.Array) -> jax.Array:
    """An orthonormal basis [D, D-1] of the plane (D=2: the line) orthogonal to the unit vector u [D].

    The columns after the first of the Householder reflection that maps e_0 onto -sign(u_0) u;
    v = u + sign(u_0) e_0 has |v|^2 >= 2, so no direction is a special case.
    """
    sign = jnp.where(u[0] >= 0, 1.0, -1.0)
    v = u.at[0].add(sign)
    reflection = jnp.eye(u.shape[0], dtype=u.dtype) - 2.0 * jnp.outer(v, v) / jnp.dot(v, v)
    return reflection[:, 1:]


def _cut(key: jax.Array, points: jax.Array, mask: jax.Array, keep_min: float, keep_max: float) -> jax.Array:
    """The ceil(f n) real rows lowest along a random direction, f ~ U(keep_min, keep_max): points [N, D],
    mask [N] -> kept [N] bool (at least one when n >= 1)."""
    n = jnp.sum(mask)
    height = jnp.where(mask, points @ _direction(key, points.shape[-1]), jnp.inf)  # [N]; padding last
    fraction = jax.random.uniform(jax.random.fold_in(key, _FRACTION), (), jnp.float32, keep_min, keep_max)
    count = jnp.clip(jnp.ceil(fraction * n), jnp.minimum(n, 1), n)
    rank = jnp.argsort(jnp.argsort(height))  # [N]; stable, so ties go by index
    return rank < count


def _visible(key: jax.Array, points: jax.Array, mask: jax.Array, grid: int) -> jax.Array:
    """The real rows an orthographic depth buffer of grid^(D-1) pixels sees from a random direction u:
    points [N, D], mask [N] -> kept [N] bool. The pixels tile a square window over the real points'
    projected extent; a point is kept when its depth along u is within one pixel size of the largest
    depth in its pixel, so every occupied pixel keeps its front-most point."""
    dim = points.shape[-1]
    u = _direction(key, dim)
    depth = points @ u  # [N]; larger is nearer the viewer
    plane = points @ _plane_basis(u)  # [N, D-1]
    lo = jnp.min(jnp.where(mask[:, None], plane, jnp.inf), axis=0)  # [D-1]
    hi = jnp.max(jnp.where(mask[:, None], plane, -jnp.inf), axis=0)
    pixel = jnp.max(hi - lo) / grid  # square pixels, so "one pixel size" means one thing
    scale = jnp.where(pixel > 0, pixel, 1.0)  # a single point (or none) falls in pixel 0
    cell = jnp.clip(jnp.floor((plane - lo) / scale), 0, grid - 1).astype(jnp.int32)  # [N, D-1]
    pixel_id = jnp.sum(cell * grid ** jnp.arange(dim - 1), axis=-1)  # [N]
    front = jax.ops.segment_max(jnp.where(mask, depth, -jnp.inf), pixel_id, num_segments=grid ** (dim - 1))
    return mask & (depth >= front[pixel_id] - pixel)


def _resample(key: jax.Array, points: jax.Array, kept: jax.Array, slots: int) -> tuple[jax.Array, jax.Array]:
    """The kept rows of points [N, D] in a random order, cycled to fill `slots` -> ([slots, D], [slots]):
    no repeats when at least `slots` are kept; every slot real unless nothing is."""
    count = jnp.sum(kept)
    order = jnp.argsort(jnp.where(kept, _row_uniform(key, _ORDER, kept.shape[0]), _UNCHOSEN))  # kept first
    rows = order[jnp.arange(slots) % jnp.maximum(count, 1)]
    real = jnp.broadcast_to(count > 0, (slots,))
    return jnp.where(real[:, None], points[rows], 0.0), real


def _complete(key: jax.Array, points: jax.Array, mask: jax.Array, options: CompleteOptions
              ) -> tuple[jax.Array, jax.Array]:
    """A partial view of one set: points [N, D], mask [N] -> ([N_in, D], [N_in])."""
    if options.view == "cut":
        kept = _cut(key, points, mask, options.keep_min, options.keep_max)
    else:
        kept = _visible(key, points, mask, options.grid)
    if options.input_points:
        return _resample(key, points, kept, options.input_points)
    return jnp.where(kept[:, None], points, 0.0), kept  # in place: the encoder masks the rest


def _denoise(key: jax.Array, points: jax.Array, mask: jax.Array, noise: float, outliers: float, extra: int
             ) -> tuple[jax.Array, jax.Array]:
    """Jittered points, then round(outliers * n) (halves up) uniform outliers in the set's bounding box
    in `extra` more slots: points [N, D], mask [N] -> ([N + extra, D], [N + extra])."""
    rows, dim = points.shape
    jitter = _row_draws(key, _JITTER, rows, lambda k: jax.random.normal(k, (dim,), jnp.float32))  # [N, D]
    noisy = jnp.where(mask[:, None], points + noise * jitter, 0.0)
    lo = jnp.min(jnp.where(mask[:, None], points, jnp.inf), axis=0)  # [D]; the box of the clean shape
    hi = jnp.max(jnp.where(mask[:, None], points, -jnp.inf), axis=0)
    unit = _row_draws(key, _OUTLIERS, extra, lambda k: jax.random.uniform(k, (dim,), jnp.float32))  # [extra, D]
    # floor(x + 0.5) of a float32 product can exceed the slots the float64 ceil gave by one; clip it.
    count = jnp.minimum(jnp.floor(outliers * jnp.sum(mask) + 0.5), extra)
    real = jnp.arange(extra) < count
    scattered = jnp.where(real[:, None], lo + unit * (hi - lo), 0.0)
    return jnp.concatenate([noisy, scattered]), jnp.concatenate([mask, real])


def _upsample(key: jax.Array, points: jax.Array, mask: jax.Array, ratio: int, slots: int
              ) -> tuple[jax.Array, jax.Array]:
    """ceil(n / ratio) real rows drawn without replacement, compacted into the first of `slots`:
    points [N, D], mask [N] -> ([slots, D], [slots])."""
    count = -(-jnp.sum(mask) // ratio)
    order = jnp.argsort(jnp.where(mask, _row_uniform(key, _SUBSET, mask.shape[0]), _UNCHOSEN))[:slots]
    real = jnp.arange(slots) < count
    return jnp.where(real[:, None], points[order], 0.0), real


def index_keys(index: jax.Array) -> jax.Array:
    """The evaluation input keys [M] (raw key data [M, 2] uint32) of the sets with dataset indices `index` [M]."""
    base = jax.random.PRNGKey(INPUT_SEED)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(index).astype(jnp.uint32))


def make_inputs(task: str, options, keys: jax.Array, points: jax.Array, mask: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
    """A task's inputs made from whole sets: keys [B] (typed keys, or raw [B, 2] uint32 key data),
    points [B, N, D], mask [B, N] -> (points_in [B, N_in, D] float32, mask_in [B, N_in] bool),
    N_in = input_slots(task, options, N). Padded input rows are 0; padded rows of `points` (NaN
    included) are never read. Jittable with task and options static."""
    check_options(task, options)
    if not jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = jax.random.wrap_key_data(keys)
    mask = jnp.asarray(mask, bool)
    points = jnp.where(mask[..., None], jnp.asarray(points, jnp.float32), 0.0)
    n_max = points.shape[1]
    if task == "complete":
        make = functools.partial(_complete, options=options)
    elif task == "denoise":
        make = functools.partial(_denoise, noise=options.noise, outliers=options.outliers,
                                 extra=input_slots(task, options, n_max) - n_max)
    else:
        make = functools.partial(_upsample, ratio=options.ratio, slots=input_slots(task, options, n_max))
    return jax.vmap(make)(keys, points, mask)
