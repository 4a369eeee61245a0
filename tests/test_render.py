"""PNG renders of 2D and 3D sets; an existing file is not replaced."""

from __future__ import annotations

import numpy as np
import pytest

from pointset_cli.errors import OutputExistsError


def test_render_grid_and_refusal(tiny_sets, tmp_path):
    from pointset_cli.render import render_sets

    points, mask = tiny_sets
    out = render_sets(points[:5], mask[:5], tmp_path / "g.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputExistsError):
        render_sets(points[:5], mask[:5], tmp_path / "g.png")
    cube = np.random.default_rng(0).normal(size=(2, 30, 3)).astype(np.float32)
    render_sets(cube, np.ones((2, 30), bool), tmp_path / "g3.png")
    assert (tmp_path / "g3.png").stat().st_size > 1000


def test_the_suffix_chooses_the_format_and_others_are_refused(tiny_sets, tmp_path):
    """`--render x.pdf` wrote PNG bytes into x.pdf (the command's side: tests/cli/test_sample.py)."""
    from pointset_cli.errors import UsageError
    from pointset_cli.render import render_sets

    points, mask = tiny_sets
    magic = {"g.png": b"\x89PNG", "g.pdf": b"%PDF", "g.svg": b"<?xml"}
    for name, start in magic.items():
        assert render_sets(points[:3], mask[:3], tmp_path / name).read_bytes().startswith(start), name
    with pytest.raises(UsageError, match=r"\.png, \.pdf, \.svg"):
        render_sets(points[:3], mask[:3], tmp_path / "g.jpg")
    assert not (tmp_path / "g.jpg").exists()


def _drawn(fig):
    """`fig` laid out and drawn (text extents are known only after a draw)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig


def test_a_reconstruction_is_drawn_beside_its_input_under_a_title(tiny_sets):
    from pointset_cli.render import sets_figure

    points, mask = tiny_sets
    recon = points[:5] + 0.01
    fig = sets_figure(recon, mask[:5], ["#0 · class 7", "#1", "#2", "#3", "#4"], inputs=(points[:5], mask[:5]),
                      title="mnist_tspn, step 5000: reconstructions of 5 test sets of tiny.h5")
    assert len(fig.axes) == 10  # input, reconstruction, input, ...
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == f"#0 · class 7: input, {mask[0].sum()} pts"
    assert titles[1] == f"reconstruction, {mask[0].sum()} pts"
    assert all("input" in t for t in titles[::2]) and all(t.startswith("reconstruction") for t in titles[1::2])
    assert fig.get_suptitle() == "mnist_tspn, step 5000: reconstructions of 5 test sets of tiny.h5"
    for k in range(5):  # each pair shares its limits, so positions compare
        assert fig.axes[2 * k].get_xlim() == fig.axes[2 * k + 1].get_xlim()
        assert fig.axes[2 * k].get_ylim() == fig.axes[2 * k + 1].get_ylim()
    assert len(sets_figure(recon, mask[:5]).axes) == 5  # without inputs: one panel per set


def test_a_set_to_set_output_is_drawn_between_its_input_and_its_target(tiny_sets):
    from pointset_cli.render import sets_figure

    points, mask = tiny_sets
    half = mask[:3] & (np.cumsum(mask[:3], axis=1) <= mask[:3].sum(1, keepdims=True) // 2)
    fig = sets_figure(points[3:6], mask[3:6], ["#0", "#1", "#2"], inputs=(points[:3], half),
                      targets=(points[:3], mask[:3]))
    assert len(fig.axes) == 9
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == [f"#0: input, {half[0].sum()} pts", f"output, {mask[3].sum()} pts",
                          f"target, {mask[0].sum()} pts"]
    assert all(t.startswith("target") for t in titles[2::3])


@pytest.mark.parametrize("dim", [2, 3])
def test_every_panel_holds_all_its_points_at_one_scale(dim):
    """Sets far apart (unnormalised, one much larger): each panel is centred on its own set, all
    share the largest extent, and no point falls outside its panel."""
    from pointset_cli.render import sets_figure

    rng = np.random.default_rng(0)
    points = rng.normal(size=(4, 40, dim)) * np.array([1, 1, 5, 1])[:, None, None] + \
        np.array([0, 100, -50, 7])[:, None, None]
    mask = np.ones((4, 40), bool)
    mask[3, 20:] = False
    points[3, 20:] = 1e6  # padding never moves a panel
    fig = sets_figure(points, mask, up_axis=1)
    widths = set()
    for ax, p, m in zip(fig.axes, points, mask, strict=True):
        limits = [ax.get_xlim(), ax.get_ylim()] + ([ax.get_zlim()] if dim == 3 else [])
        for d, (lo, hi) in enumerate(limits):
            assert lo < p[m, d].min() and p[m, d].max() < hi
            widths.add(round(hi - lo, 9))
    assert len(widths) == 1


def test_long_captions_fit_their_panels_and_never_overlap(tiny_sets):
    from pointset_cli.render import sets_figure

    points, mask = tiny_sets
    captions = [f"t10k-images-idx3-ubyte.gz#{i:06d} · class {i % 10}" for i in range(9)]
    fig = _drawn(sets_figure(points[:9], mask[:9], captions, inputs=(points[:9], mask[:9]), title="a run"))
    boxes = [ax.title.get_window_extent() for ax in fig.axes]
    assert all(b.x0 >= 0 and b.x1 <= fig.bbox.width for b in boxes)
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), fig.axes[i].get_title()
    assert fig.axes[0].get_title().endswith(f"#000000 · class 0: input, {mask[0].sum()} pts")  # the end is kept


def test_loss_figure_draws_each_term_on_its_own_axis_with_the_validation_named():
    """The total (mostly size cross-entropy) hid the set loss; one axis per term instead."""
    from pointset_cli.render import loss_figure

    rows = [{"step": s, "loss": 3.0 / s, "set_loss": 0.01 / s, "size_loss": 3.0 / s, "presence_loss": 0.1,
             "card_acc": 0.5, "lr": 1e-3} for s in range(1, 101)]
    rows += [{"step": s, "val_loss": 3.1 / s, "val_set_loss": 0.011 / s, "val_size_loss": 3.1 / s,
              "val_presence_loss": 0.1} for s in (50, 100)]
    fig = loss_figure(rows, "validation: val split (first 512 of 1000 sets)")
    assert [ax.get_ylabel() for ax in fig.axes] == ["set loss", "presence loss", "size loss"]
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["train", "validation: val split (first 512 of 1000 sets)"]
        assert len(ax.get_lines()[0].get_xdata()) == 100 and list(ax.get_lines()[1].get_xdata()) == [50, 100]
    assert fig.axes[0].get_yscale() == "log"  # 0.01 .. 0.0001


def test_a_short_run_still_shows_its_training_point():
    """One logged step was an invisible one-point line."""
    from pointset_cli.render import loss_figure

    (ax,) = loss_figure([{"step": 3, "loss": 1.0}, {"step": 3, "val_loss": 1.2}]).axes
    train, val = ax.get_lines()
    assert ax.get_ylabel() == "loss" and train.get_marker() not in ("None", "", None) and list(train.get_xdata()) == [3]
    assert val.get_label() == "validation"
