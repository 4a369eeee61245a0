"""Mutated real inputs through every reader, the dataset checks and the config loader: only our one-line errors.

Seeds are real files (shared meshes, the bundled MNIST, a prepared dataset) and files the
toolkit's own writers produce from real points. Each case must either read cleanly or raise the
toolkit's error (one line); never another exception, a hang or a large allocation. The counts
of cases tried and handled print at the end of the module (`-rA` or the terminal summary).
"""

from __future__ import annotations

import collections
import gzip
import shutil
import tracemalloc

import h5py
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointset_cli import config
from pointset_cli.data.schema import SetDataset, validate
from pointset_cli.errors import PointsetError
from pointset_cli.io import read_shape, write_points
from pointset_cli.io.mnist import read_mnist
from pointset_testing.tinydata import BUNDLED_MNIST, make_tiny_mnist

pytestmark = pytest.mark.slow
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS: collections.Counter = collections.Counter()  # (kind, outcome) -> cases


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    tried = sum(COUNTS.values())
    rows = ", ".join(f"{kind} {outcome} {n}" for (kind, outcome), n in sorted(COUNTS.items()))
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        request.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"\nfuzz: {tried} cases tried, all handled ({rows})")


@pytest.fixture(scope="module")
def seeds(shared_data, tmp_path_factory) -> dict[str, bytes]:
    """One real file per reader format."""
    out = tmp_path_factory.mktemp("seeds")
    meshes = shared_data / "meshes"
    points = read_shape(meshes / "ant.ply").points[:300].astype(np.float32)
    files = {".ply": (meshes / "ant.ply").read_bytes()[:6000], ".obj": (meshes / "cow.obj").read_bytes()[:6000]}
    for fmt in ("xyz", "npy", "npz", "pcd"):
        write_points(out / f"p.{fmt}", points)
        files[f".{fmt}"] = (out / f"p.{fmt}").read_bytes()
    write_points(out / "a.ply", points, binary=False)
    files["ascii.ply"] = (out / "a.ply").read_bytes()
    files[".off"] = b"OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n"
    tri = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    facet = np.zeros(3, np.float32).tobytes() + tri.tobytes() + b"\0\0"  # normal, 3 vertices, attribute
    files[".stl"] = b"\0" * 80 + np.uint32(2).tobytes() + 2 * facet
    images = gzip.decompress(BUNDLED_MNIST.read_bytes())[: 16 + 3 * 784]
    files["-images-idx3-ubyte"] = images[:4] + np.uint32(3).byteswap().tobytes() + images[8:]
    files[".csv"] = b"\n".join(b"7," + b",".join(str(v).encode() for v in images[16 + i * 784: 16 + (i + 1) * 784])
                               for i in range(2))
    return files


def _read(path):
    return read_mnist(path) if "idx" in path.name or path.suffix == ".csv" else read_shape(path)


def _handled(kind: str, call) -> None:
    """Run `call`; a clean result or a one-line PointsetError is handled, anything else fails."""
    try:
        call()
    except PointsetError as err:
        assert "\n" not in str(err), str(err)
        COUNTS[kind, "rejected"] += 1
        return
    COUNTS[kind, "read"] += 1


def _mutate(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    buf = bytearray(data)
    for where, value in flips:
        buf[int(where * (len(buf) - 1))] = value
    return bytes(buf[: max(1, int(cut * len(buf)))])


@SETTINGS
@given(fmt=st.sampled_from([".ply", "ascii.ply", ".obj", ".off", ".stl", ".xyz", ".npy", ".npz", ".pcd",
                            "-images-idx3-ubyte", ".csv"]),
       cut=st.one_of(st.just(1.0), st.floats(0, 1)),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6))
def test_mutated_files_through_every_reader(seeds, tmp_path_factory, fmt, cut, flips):
    name = "t10k" + fmt if fmt.startswith("-") else "f" + (fmt if fmt.startswith(".") else ".ply")
    path = tmp_path_factory.mktemp("f") / name
    path.write_bytes(_mutate(seeds[fmt], cut, flips))
    _handled(f"file{fmt}", lambda: _read(path))


@pytest.mark.parametrize(("name", "data"), [
    ("v.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000\nproperty float x\n"
              b"property float y\nproperty float z\nend_header\n" + b"\0" * 24),
    ("a.ply", b"ply\nformat ascii 1.0\nelement vertex 1000000000000\nproperty float x\nproperty float y\n"
              b"property float z\nend_header\n0 0 0\n"),
    ("m.off", b"OFF\n1000000000000 1000000000000 0\n0 0 0\n"),
    ("p.pcd", b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1000000000000\nHEIGHT 1\n"
              b"POINTS 1000000000000\nDATA binary\n" + b"\0" * 24),
    ("n.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }"
              + b" " * 47 + b"\n" + b"\0" * 24),
    ("b.stl", b"\0" * 80 + np.uint32(4_000_000_000).tobytes() + b"\0" * 50),
])
def test_header_claiming_10_to_12_points_is_rejected_before_allocating(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(PointsetError) as err:
            read_shape(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated"


# HDF5 mutations: (where, how) applied to a copy of a real prepared dataset.
H5_MUTATIONS = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(["points", "sizes", "labels", "split", "names", "center", "scale"])),
    st.tuples(st.just("attr"), st.sampled_from(["schema_version", "dim", "classes", "splits", "normalization",
                                                "max_points"]),
              st.sampled_from([None, -1, 10**12, "x", 2.5, [1, 2]])),
    st.tuples(st.just("values"), st.sampled_from(["sizes", "labels", "split", "points", "scale"]),
              st.sampled_from([-1, 10**9, np.nan, np.inf, 255])),
    st.tuples(st.just("dtype"), st.sampled_from(["sizes", "labels", "split", "points"]),
              st.sampled_from(["f8", "i1", "S4"])),
    st.tuples(st.just("shape"), st.sampled_from(["sizes", "labels", "split", "points", "center"]), st.integers(0, 3)),
    st.tuples(st.just("truncate"), st.floats(0, 0.99)),
)


def _mutate_h5(path, mutation) -> None:
    kind = mutation[0]
    if kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(mutation[1] * len(data))])
        return
    with h5py.File(path, "r+") as f:
        if kind == "drop":
            del f[mutation[1]]
        elif kind == "attr":
            name, value = mutation[1:]
            if value is None:
                f.attrs.pop(name, None)
            else:
                f.attrs[name] = value
        elif kind == "values":
            name, value = mutation[1:]
            arr = f[name][()]
            if arr.dtype.kind in "iu" and not np.isfinite(value):
                value = -1
            arr.flat[0] = np.asarray(value).astype(arr.dtype) if arr.dtype.kind in "iu" else value
            del f[name]
            f[name] = arr
        else:
            name, arg = mutation[1:]
            arr = f[name][()]
            if kind == "dtype":
                arr = arr.astype(arg)
            else:
                arr = arr.reshape(-1)[: arg] if arg < 2 else np.stack([arr] * arg, -1)
            del f[name]
            f[name] = arr


@pytest.fixture(scope="module")
def tiny_h5(tmp_path_factory):
    return make_tiny_mnist(tmp_path_factory.mktemp("h5") / "tiny.h5", n=24)


@SETTINGS
@given(mutations=st.lists(H5_MUTATIONS, min_size=1, max_size=3))
def test_mutated_datasets_through_info_and_setdataset(tiny_h5, tmp_path_factory, cli, mutations):
    path = tmp_path_factory.mktemp("h") / "d.h5"
    shutil.copy(tiny_h5, path)
    for m in mutations:
        try:
            _mutate_h5(path, m)
        except (OSError, KeyError, ValueError):  # an earlier mutation broke the file or its values: keep it
            break

    def through_library():
        validate(path)
        with SetDataset(path) as ds:
            points, mask, _ = ds.read(ds.indices("train"))
            assert points.shape[:2] == mask.shape

    _handled("h5", through_library)
    result = cli(["info", path, "--format", "json"])
    assert result.exit_code in (0, 1), result.stderr
    assert result.exit_code == 0 or (len(result.stderr.strip().splitlines()) == 1 and "internal error" not in
                                     result.stderr), result.stderr
    COUNTS["info", "ok" if result.exit_code == 0 else "rejected"] += 1


CONFIG_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                          st.text(max_size=8), st.lists(st.integers(), max_size=3),
                          st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
CONFIG_KEYS = st.sampled_from(["name", "data", "model", "optim", "train", "data.batch_size", "data.path",
                               "model.name", "model.latent_dim", "model.decoder_options", "optim.lr",
                               "train.steps", "train.seed", "bogus", "train.bogus"])


@SETTINGS
@given(entries=st.dictionaries(CONFIG_KEYS, CONFIG_VALUES, max_size=4), raw=st.binary(max_size=40),
       use_raw=st.booleans())
def test_mutated_yaml_configs_through_train(tmp_path_factory, cli, entries, raw, use_raw):
    path = tmp_path_factory.mktemp("y") / "c.yaml"
    tree: dict = {}
    for key, value in entries.items():
        config._set_path(tree, key, value)
    path.write_bytes(raw if use_raw else yaml.safe_dump(tree).encode())
    _handled("yaml", lambda: config.resolve(path))
    result = cli(["train", "--config", path, "--print-config"])
    assert result.exit_code in (0, 2) and (result.exit_code == 0 or (
        len(result.stderr.strip().splitlines()) == 1 and "internal error" not in result.stderr)), result.stderr
