"""Tests of tasks.figures: the experiments' figures build headless, hold what they should,
save, and reject bad input (moved here from the tests of rnnbp.plot, every assertion kept)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from rnnbp.history import History  # noqa: E402
from tasks import figures as plot  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _saved_png(fig: Figure, tmp_path, name: str = "fig.png") -> int:
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return len(data)


def _png(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path.stat().st_size


def test_figures_module_does_not_use_pyplot():
    """Figures are built without pyplot's global state (headless, no show())."""
    source = (ROOT / "tasks" / "figures.py").read_text()
    for banned in ("import matplotlib.pyplot", "from matplotlib import pyplot", "plt.", ".show("):
        assert banned not in source, banned


def test_library_and_experiments_keep_their_figures_apart():
    """rnnbp.plot keeps the diagnostics; the experiment-only figures are not in it."""
    from rnnbp import plot as library

    assert set(library.__all__) == {"training_curves", "state_grad_norms", "decay_with_bound", "training_trace"}
    assert not set(library.__all__) & set(plot.__all__)
    for name in plot.__all__:
        assert not hasattr(library, name), name


#: matplotlib modules that render glyphs into data (tasks.data.glyphs, tasks.data.lines) or report
#: the version: they draw no figure, so any module may use them.
_NOT_DRAWING = {"matplotlib", "matplotlib.font_manager", "matplotlib.textpath", "matplotlib.ft2font"}


def _drawing_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "matplotlib"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "matplotlib":
            found.append(node.module)
    return [m for m in found if m not in _NOT_DRAWING]


def test_only_the_two_figure_modules_import_matplotlib_to_draw():
    """rnnbp.plot and tasks.figures are the only modules that import matplotlib's drawing
    API; experiments take ``Figure`` from tasks.figures."""
    offenders = {}
    for path in sorted([*ROOT.glob("rnnbp/**/*.py"), *ROOT.glob("tasks/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel not in ("rnnbp/plot.py", "tasks/figures.py") and _drawing_imports(path):
            offenders[rel] = _drawing_imports(path)
    assert not offenders, offenders
    assert _drawing_imports(ROOT / "rnnbp" / "plot.py") and _drawing_imports(ROOT / "tasks" / "figures.py")


@pytest.mark.slow
def test_importing_tasks_figures_does_not_import_matplotlib():
    """matplotlib is loaded lazily: on the first figure, or the first use of ``Figure``."""
    import subprocess

    code = ("import tasks.figures as f, sys; before = 'matplotlib' in sys.modules; "
            "F = f.Figure; print(before, 'matplotlib' in sys.modules, F.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True", "matplotlib.figure"]
    with pytest.raises(AttributeError, match="no attribute 'Axes'"):
        plot.Axes


# -- image_grid -------------------------------------------------------------------
@pytest.mark.parametrize("n, ncols", [(1, 8), (5, 3), (12, 4), (7, 10)])
def test_image_grid_has_one_axes_and_image_per_sample(n, ncols, tmp_path):
    images = np.random.default_rng(0).random((n, 12, 12))
    fig = plot.image_grid(images, labels=list(range(n)), titles=[f"t{i}" for i in range(n)], ncols=ncols)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == n
    assert all(len(ax.images) == 1 for ax in fig.axes)
    # row-major layout with min(ncols, n) columns
    spec = fig.axes[0].get_subplotspec().get_gridspec()
    assert spec.ncols == min(ncols, n) and spec.nrows == -(-n // min(ncols, n))
    assert fig.axes[-1].get_title() == f"t{n - 1}"
    assert fig.axes[-1].get_xlabel() == str(n - 1)
    np.testing.assert_array_equal(fig.axes[2 % n].images[0].get_array(), images[2 % n])
    assert _saved_png(fig, tmp_path) > 1000


def test_image_grid_greyscale_shares_one_intensity_scale():
    images = np.stack([np.full((4, 4), 0.2), np.full((4, 4), 0.9)])
    fig = plot.image_grid(images)
    assert {ax.images[0].get_clim() for ax in fig.axes} == {(0.0, 0.9)}


def test_image_grid_takes_rgb_and_integer_images(tmp_path):
    rgb = np.random.default_rng(1).random((3, 6, 6, 3))
    assert len(plot.image_grid(rgb).axes) == 3
    ints = np.random.default_rng(2).integers(0, 255, size=(2, 5, 5), dtype=np.uint8)
    assert _saved_png(plot.image_grid(ints, title="bytes"), tmp_path) > 500


@pytest.mark.parametrize("images, kwargs, error, words", [
    (np.zeros((4, 16)), {}, ValueError, "reshape flat images"),
    (np.zeros((2, 3, 4, 5, 6)), {}, ValueError, "(N, H, W)"),
    (np.zeros((0, 4, 4)), {}, ValueError, "at least one"),
    ([[[0.0]]], {}, TypeError, "numpy array"),
    (np.full((3, 4, 4), "x"), {}, TypeError, "numeric"),
    (np.zeros((3, 4, 4)), {"labels": [1, 2]}, ValueError, "labels: expected 3"),
    (np.zeros((3, 4, 4)), {"titles": "abc"}, TypeError, "titles"),
    (np.zeros((3, 4, 4)), {"ncols": 0}, ValueError, "ncols"),
])
def test_image_grid_rejects_bad_input(images, kwargs, error, words):
    with pytest.raises(error) as info:
        plot.image_grid(images, **kwargs)
    assert words in str(info.value)


# -- confusion_matrix ----------------------------------------------------------------
def test_confusion_matrix_normalised_rows_and_counts(tmp_path):
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 2, 0, 2, 2])
    fig = plot.confusion_matrix(y_true, y_pred, class_names=["a", "b", "c"])
    assert len(fig.axes) == 2                      # matrix and colour bar
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, [[2 / 3, 1 / 3, 0], [0, 1, 0], [1 / 4, 0, 3 / 4]])
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    assert "0.778" in fig.axes[0].get_title()     # 7 of 9 right
    counts = np.asarray(plot.confusion_matrix(y_true, y_pred, normalize=False).axes[0].images[0].get_array())
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 2, 0], [1, 0, 3]])
    assert _saved_png(fig, tmp_path) > 1000


def test_confusion_matrix_class_names_cover_absent_classes():
    """Named classes that never occur still get a (zero) row and column; a str names one per character."""
    fig = plot.confusion_matrix([0, 1], [1, 1], class_names="0123")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (4, 4)
    np.testing.assert_array_equal(shown[2:], 0.0)


def test_confusion_matrix_many_classes_skips_annotations():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 36, 500)
    fig = plot.confusion_matrix(y, y)
    assert len(fig.axes[0].texts) == 0
    assert len(plot.confusion_matrix(y % 10, y % 10).axes[0].texts) == 10


@pytest.mark.parametrize("y_true, y_pred, kwargs, error, words", [
    ([0, 1, 2], [0, 1], {}, ValueError, "expected 3 predictions"),
    ([[0, 1]], [[0, 1]], {}, ValueError, "1-d"),
    ([0.5, 1.0], [0, 1], {}, TypeError, "integer class indices"),
    ([0, -1], [0, 1], {}, ValueError, ">= 0"),
    ([], [], {}, ValueError, "at least one sample"),
    ([0, 3], [0, 1], {"class_names": ["a", "b"]}, ValueError, "at least 4 names"),
])
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, kwargs, error, words):
    with pytest.raises(error) as info:
        plot.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), **kwargs)
    assert words in str(info.value)


def test_confusion_matrix_takes_integral_floats():
    fig = plot.confusion_matrix(np.array([0.0, 1.0]), np.array([0, 1]))
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (2, 2)


# -- accuracy_curves -------------------------------------------------------------------
def test_accuracy_curves_draw_train_and_validation_per_run(tmp_path):
    runs = {"a": History(metric=[0.3, 0.6, 0.9], val_metric=[0.2, 0.5, 0.6]),
            "b": History(metric=[0.1, 0.2, 0.3])}
    fig = plot.accuracy_curves(runs, chance=0.1, val_label="test", title="curves")
    assert len(fig.axes) == 1
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["a (train)", "a (test)", "b (train)", "chance 0.1"]
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), [0.2, 0.5, 0.6])
    assert _saved_png(fig, tmp_path) > 1000


def test_accuracy_curves_reject_runs_without_a_metric():
    with pytest.raises(ValueError, match="no metric recorded"):
        plot.accuracy_curves({"loss only": History(loss=[1.0, 0.5])})
    with pytest.raises(ValueError, match="at least one run"):
        plot.accuracy_curves({})


def test_loss_surface_keeps_the_grid_limits(tmp_path):
    w, b = np.linspace(0, 4, 30), np.linspace(-2, 1, 20)
    L = (np.tanh(w[None] + b[:, None]) - 0.5) ** 2
    path = np.array([[2.0, -1.0], [1.5, -0.5], [50.0, 40.0]])   # the last step leaves the frame
    fig = plot.loss_surface(w, b, L, {"SGD": path}, title="cliff")
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 4.0) and ax.get_ylim() == (-2.0, 1.0)
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), path[:, 0])
    assert _png(fig, tmp_path) > 1000
    with pytest.raises(ValueError, match="loss"):
        plot.loss_surface(w, b, L.T)
    with pytest.raises(ValueError, match="paths"):
        plot.loss_surface(w, b, L, {"p": np.ones((3, 3))})


def test_sweep_curves_mean_band_and_marks(tmp_path):
    k2 = [2, 4, 8]
    acc = np.array([[0.2, 0.3], [0.4, 0.4], [1.0, 0.9]])
    fig = plot.sweep_curves(k2, {"accuracy": {"GRU": acc}, "cosine": {"init": np.array([0.1, 0.5, 1.0])}},
                            xlabel="k2", marks={"lag + 1": 5}, logy=["cosine"], title="t")
    a0, a1 = fig.axes
    np.testing.assert_allclose(a0.lines[0].get_ydata(), acc.mean(axis=1))
    assert len(a0.collections) == 1 and len(a1.collections) == 0
    assert a1.get_yscale() == "log" and a0.get_yscale() == "linear"
    assert _png(fig, tmp_path) > 1000
    with pytest.raises(ValueError, match="panels"):
        plot.sweep_curves(k2, {}, xlabel="k2")
    with pytest.raises(ValueError, match="panels"):
        plot.sweep_curves(k2, {"a": {"b": np.ones(2)}}, xlabel="k2")
