"""Set-to-set task inputs on real shapes: reproducible per key, made of the shape's own points, partial
where they should be, blind to padding, and the options checked."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest
from pointset_testing.setdata import modelnet_chairs, pad_with_garbage

from pointset_cli.errors import UsageError
from pointset_cli.models import degrade
from pointset_cli.models.degrade import CompleteOptions, DenoiseOptions, UpsampleOptions

# Compiled once per task, options and shape for the whole module: the tests share a few shapes.
make = jax.jit(degrade.make_inputs, static_argnums=(0, 1))
DIGIT_SLOTS = 150  # digits are padded to this width (the 8 of mnist_batch have 39 to 146 points)

CASES = {
    "visible": ("complete", CompleteOptions()),
    "cut": ("complete", CompleteOptions(view="cut")),
    "visible_resampled": ("complete", CompleteOptions(input_points=48)),
    "denoise": ("denoise", DenoiseOptions(noise=0.02)),
    "upsample": ("upsample", UpsampleOptions()),
}


@pytest.fixture(scope="module")
def chairs() -> list[np.ndarray]:
    """4 bundled ModelNet10 chairs, 512 points each, in the unit ball."""
    return modelnet_chairs(4, 512, np.random.default_rng(0))


@pytest.fixture(scope="module")
def digits(mnist_batch) -> list[np.ndarray]:
    """The 8 real MNIST digits of mnist_batch as a list of [n, 2] sets (39 to 146 points)."""
    return [p[m] for p, m in zip(mnist_batch.points, mnist_batch.mask)]


@pytest.fixture(scope="module")
def sphere(shared_data) -> np.ndarray:
    """4,096 points uniform on the shared sphere mesh, centred and scaled to radius 1."""
    from pointset_cli.data.sampling import sample_surface
    from pointset_cli.io import read_shape

    shape = read_shape(shared_data / "meshes" / "sphere.ply")
    p = sample_surface(shape.points, shape.faces, 4096, np.random.default_rng(1)) - shape.points.mean(0)
    return (p / np.linalg.norm(p, axis=1).max()).astype(np.float32)


def keys_for(seed: int, count: int) -> jax.Array:
    return jax.random.split(jax.random.key(seed), count)


def padded(sets: list[np.ndarray], seed: int = 0, width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sets -> points [B, N, D] with NaN/huge garbage in the padding, mask [B, N]; N = width, or the
    digits' width for 2D sets and the largest set + 5 for 3D ones."""
    width = width or (DIGIT_SLOTS if sets[0].shape[1] == 2 else max(len(s) for s in sets) + 5)
    return pad_with_garbage(sets, np.random.default_rng(seed), width)


def real_rows(points_in, mask_in) -> list[np.ndarray]:
    return [np.asarray(p)[np.asarray(m)] for p, m in zip(points_in, mask_in)]


def as_set(rows: np.ndarray) -> np.ndarray:
    """The rows in lexicographic order, to compare multisets exactly."""
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows


def all_from(rows: np.ndarray, shape: np.ndarray) -> bool:
    """Whether every row is exactly (bit for bit) one of the shape's points."""
    known = {r.tobytes() for r in shape.astype(np.float32)}
    return all(r.tobytes() in known for r in rows.astype(np.float32))


@pytest.mark.parametrize("case", CASES)
def test_same_key_same_input_jit_matches_eager(case, chairs):
    task, options = CASES[case]
    points, mask = padded(chairs)
    keys = keys_for(0, len(chairs))
    first, again = make(task, options, keys, points, mask), make(task, options, keys, points, mask)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    eager = degrade.make_inputs(task, options, jax.random.key_data(keys), points, mask)  # and raw key data
    np.testing.assert_array_equal(eager[1], first[1])
    np.testing.assert_allclose(eager[0], first[0], rtol=0, atol=1e-6)
    other = make(task, options, keys_for(1, len(chairs)), points, mask)
    for s in range(len(chairs)):
        assert not np.array_equal(as_set(real_rows(*first)[s]), as_set(real_rows(*other)[s]))
    assert first[0].dtype == np.float32 and first[1].dtype == bool


@pytest.mark.parametrize("view", degrade.VIEWS)
@pytest.mark.parametrize("data", ["chairs", "digits"])
def test_partial_views_are_the_shapes_own_points(view, data, request):
    sets = request.getfixturevalue(data)
    options = CompleteOptions(view=view)
    points, mask = padded(sets)
    keys = keys_for(2, len(sets))
    points_in, mask_in = make("complete", options, keys, points, mask)
    assert points_in.shape == points.shape
    for s, (shape, rows) in enumerate(zip(sets, real_rows(points_in, mask_in))):
        n, kept = len(shape), np.asarray(mask_in[s])[: len(shape)]
        np.testing.assert_array_equal(as_set(rows), as_set(shape[kept]))  # the shape's own points, in place
        if view == "cut":
            assert math.ceil(options.keep_min * n) <= len(rows) <= math.ceil(options.keep_max * n)
            height = shape @ np.asarray(degrade._direction(keys[s], shape.shape[1]))
            assert height[kept].max() <= height[~kept].min()  # a plane separates kept from removed
        else:
            assert 0 < len(rows) < n
            depth = shape @ np.asarray(degrade._direction(keys[s], shape.shape[1]))
            assert kept[np.argmax(depth)]  # the nearest point is the front of its pixel


def test_visible_sphere_keeps_the_near_side(sphere):
    options = CompleteOptions(grid=8)  # 4,096 points leave no pixel of the near side empty at 8 x 8
    keys = keys_for(3, 4)
    points_in, mask_in = make("complete", options, keys, np.stack([sphere] * 4), np.ones((4, len(sphere)), bool))
    pixel = 2.0 / options.grid  # the projected extent of a unit sphere is at most its diameter
    for s, rows in enumerate(real_rows(points_in, mask_in)):
        assert 0.3 <= len(rows) / len(sphere) <= 0.7
        assert all_from(rows, sphere)
        u = np.asarray(degrade._direction(keys[s], 3))
        assert ((rows - sphere.mean(0)) @ u > -pixel).all()  # nothing of the far side shows
        near = (sphere - sphere.mean(0)) @ u > 0.8  # the part facing the camera head-on is all seen
        assert np.asarray(mask_in[s])[near].all()


def zero_padded(sets: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    points = np.zeros((len(sets), width, sets[0].shape[1]), np.float32)
    mask = np.zeros((len(sets), width), bool)
    for i, s in enumerate(sets):
        points[i, : len(s)], mask[i, : len(s)] = s, True
    return points, mask


def assert_same_sets(got, want) -> None:
    for a, b in zip(real_rows(*got), real_rows(*want)):
        np.testing.assert_array_equal(as_set(a), as_set(b))


@pytest.mark.parametrize("case", CASES)
def test_padding_values_change_nothing(case, digits):
    task, options = CASES[case]
    keys = keys_for(4, len(digits))
    want = make(task, options, keys, *zero_padded(digits, DIGIT_SLOTS))
    assert_same_sets(make(task, options, keys, *padded(digits, seed=5)), want)  # NaN/1e30 garbage


@pytest.mark.parametrize("case", ["visible_resampled", "denoise", "upsample"])  # the ones with a draw per row
def test_padding_width_changes_nothing(case, digits):
    task, options = CASES[case]
    keys = keys_for(4, len(digits))
    want = make(task, options, keys, *zero_padded(digits, DIGIT_SLOTS))
    assert_same_sets(make(task, options, keys, *padded(digits, seed=6, width=DIGIT_SLOTS + 13)), want)


def test_denoise_jitter_and_outliers(chairs, digits):
    options = CASES["denoise"][1]
    for sets in (chairs, digits):
        points, mask = padded(sets)
        n_max = points.shape[1]
        points_in, mask_in = make("denoise", options, keys_for(7, len(sets)), points, mask)
        points_in, mask_in = np.asarray(points_in), np.asarray(mask_in)
        assert points_in.shape[1] == n_max + math.ceil(options.outliers * n_max)
        np.testing.assert_array_equal(mask_in[:, :n_max], mask)  # every point stays, jittered in place
        jitter = points_in[:, :n_max][mask] - points[mask]
        assert abs(jitter.std() - options.noise) < 0.1 * options.noise
        assert abs(jitter.mean()) < 3 * options.noise / math.sqrt(jitter.size)
        unit = []
        for s, shape in enumerate(sets):
            outliers = points_in[s, n_max:][mask_in[s, n_max:]]
            assert len(outliers) == math.floor(options.outliers * len(shape) + 0.5)
            lo, hi = shape.min(0), shape.max(0)
            assert ((outliers >= lo - 1e-6) & (outliers <= hi + 1e-6)).all()
            unit.append((outliers - lo) / (hi - lo))
        unit = np.concatenate(unit).ravel()  # uniform in the box: mean 1/2, std 1/sqrt(12)
        assert abs(unit.mean() - 0.5) < 0.06 and abs(unit.std() - 12 ** -0.5) < 0.04


def test_upsample_takes_a_random_compacted_subset(digits):
    options = UpsampleOptions(ratio=4)
    points, mask = padded(digits)
    points_in, mask_in = make("upsample", options, keys_for(8, len(digits)), points, mask)
    assert points_in.shape[1] == math.ceil(points.shape[1] / 4)
    for s, shape in enumerate(digits):
        count = math.ceil(len(shape) / 4)
        np.testing.assert_array_equal(np.asarray(mask_in[s]), np.arange(points_in.shape[1]) < count)  # first
        rows = np.asarray(points_in[s, :count])
        assert all_from(rows, shape) and len(np.unique(rows, axis=0)) == count
        assert not np.asarray(points_in[s, count:]).any()  # padded slots are 0
    # The largest digit under 8 keys: a random quarter each time, so about 1 - 0.75^8 = 90% of its
    # points are drawn at least once (a fixed choice would draw 25%), and none every time.
    digit = max(digits, key=len)
    points_in, mask_in = make("upsample", options, keys_for(9, len(digits)), *padded([digit] * len(digits)))
    drawn = np.zeros(len(digit), int)
    for rows in real_rows(points_in, mask_in):
        drawn += (rows[:, None, :] == digit[None]).all(-1).any(0)
    assert (drawn > 0).mean() > 0.75 and drawn.max() < len(digits)


# 48 is fewer than any view of a 512-point chair keeps (no repeats), 1,024 more (cycled: all appear).
@pytest.mark.parametrize("view, slots", [("visible", 48), ("visible", 1024), ("cut", 48)])
def test_input_points_resample_the_same_view(view, slots, chairs):
    keys = keys_for(10, len(chairs))
    points, mask = padded(chairs)
    seen = real_rows(*make("complete", CompleteOptions(view=view), keys, points, mask))
    points_in, mask_in = make("complete", CompleteOptions(view=view, input_points=slots), keys, points, mask)
    assert points_in.shape == (len(chairs), slots, 3) and np.asarray(mask_in).all()
    for s, rows in enumerate(real_rows(points_in, mask_in)):
        assert all_from(rows, seen[s])
        assert len(np.unique(rows, axis=0)) == min(slots, len(seen[s]))


def test_tiny_sets(digits):
    digit = digits[0]
    sets = [digit[:0], digit[:1], digit[:2], *digits[3:]]  # 8 sets, the shape the other digit tests use
    points, mask = padded(sets)
    keys = keys_for(11, len(sets))
    for task, options in CASES.values():
        points_in, mask_in = make(task, options, keys, points, mask)
        assert np.isfinite(points_in).all()
        counts = np.asarray(mask_in).sum(1)
        assert counts[0] == 0 and not np.asarray(points_in[0]).any()  # an empty set gives an empty input
        assert (counts[1:] >= 1).all()  # one point is enough to see one
        if task != "denoise":
            for s in (1, 2):
                assert all_from(real_rows(points_in, mask_in)[s], sets[s])


@pytest.mark.parametrize("task, options, name", [
    ("complete", CompleteOptions(view="front"), "view"),
    ("complete", CompleteOptions(keep_min=0.0), "keep_min"),
    ("complete", CompleteOptions(keep_min=0.9, keep_max=0.8), "keep_min"),
    ("complete", CompleteOptions(keep_max=1.5), "keep_max"),
    ("complete", CompleteOptions(keep_min=float("nan")), "keep_min"),
    ("complete", CompleteOptions(grid=1), "grid"),
    ("complete", CompleteOptions(grid=8.5), "grid"),
    ("complete", CompleteOptions(input_points=-1), "input_points"),
    ("denoise", DenoiseOptions(noise=-0.1), "noise"),
    ("denoise", DenoiseOptions(noise=float("inf")), "noise"),
    ("denoise", DenoiseOptions(outliers=-0.1), "outliers"),
    ("denoise", DenoiseOptions(outliers=1.5), "outliers"),
    ("upsample", UpsampleOptions(ratio=1), "ratio"),
    ("upsample", DenoiseOptions(), "UpsampleOptions"),
    ("inpaint", CompleteOptions(), "inpaint"),
])
def test_check_options_refuses(task, options, name):
    with pytest.raises(UsageError, match=name) as err:
        degrade.check_options(task, options)
    assert "\n" not in str(err.value)
    with pytest.raises(UsageError, match=name):
        degrade.make_inputs(task, options, keys_for(0, 1), np.zeros((1, 4, 2), np.float32), np.ones((1, 4), bool))


def test_defaults_are_valid():
    for task in degrade.SET_TO_SET_TASKS:
        degrade.check_options(task, degrade.OPTIONS[task]())


@pytest.mark.parametrize("task, options, n_max, want", [
    ("complete", CompleteOptions(), 30, 30),
    ("complete", CompleteOptions(input_points=64), 30, 64),
    ("denoise", DenoiseOptions(outliers=0.1), 30, 33),
    ("denoise", DenoiseOptions(outliers=0.1), 31, 35),
    ("denoise", DenoiseOptions(outliers=0.0), 30, 30),
    ("upsample", UpsampleOptions(ratio=4), 30, 8),
    ("upsample", UpsampleOptions(ratio=3), 30, 10),
])
def test_input_slots_match_the_inputs(task, options, n_max, want, digits):
    assert degrade.input_slots(task, options, n_max) == want
    points, mask = padded([d[:20] for d in digits[:2]], width=n_max)
    made = jax.eval_shape(functools.partial(degrade.make_inputs, task, options), keys_for(12, 2), points, mask)
    assert made[0].shape == (2, want, 2) and made[1].shape == (2, want)
