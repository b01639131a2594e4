"""Tests of rnnbp.plot: figures build headless, hold what they should, save, and reject bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from rnnbp import plot  # noqa: E402
from rnnbp.history import History  # noqa: E402


def _saved_png(fig: Figure, tmp_path, name: str = "fig.png") -> int:
    path = tmp_path / name
    fig.savefig(path, dpi=60)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return len(data)


def test_plot_module_does_not_use_pyplot():
    """Figures are built without pyplot's global state (headless, no show())."""
    import inspect

    source = inspect.getsource(plot)
    for banned in ("import matplotlib.pyplot", "from matplotlib import pyplot", "plt.", ".show("):
        assert banned not in source, banned


# -- training_curves ------------------------------------------------------------------
def _is_integer(values) -> bool:
    return all(float(v).is_integer() for v in values)


@pytest.mark.parametrize("epochs", [2, 3, 7, 13])
def test_training_curves_tick_whole_epochs(epochs, tmp_path):
    """Epochs are counted: the axis never shows 1.5 (matplotlib's default for a few epochs)."""
    loss = list(np.geomspace(1.0, 0.01, epochs))
    fig = plot.training_curves({"a": History(loss=loss, val_loss=loss[:-1])}, baseline=0.5, title="t")
    ax = fig.axes[0]
    fig.canvas.draw()   # the locator runs when the figure is laid out
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and _is_integer(ticks), ticks
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(1, epochs + 1))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), loss)
    assert [line.get_label() for line in ax.lines] == ["a (train)", "a (validation)", "baseline 0.5"]
    assert _saved_png(fig, tmp_path) > 1000


# -- state_grad_norms ---------------------------------------------------------------------
def _heatmaps(fig):
    return [ax for ax in fig.axes if ax.images]


def _runs():
    t = np.arange(30.0)
    return {"vanishing": 0.7 ** (29 - t)[None].repeat(4, 0),          # 1e-5 .. 1
            "exploding": 1e3 * 1.2 ** (29 - t)[None].repeat(6, 0)}     # 1e3 .. 2e5


def test_state_grad_norms_shares_one_colour_scale_by_default(tmp_path):
    runs = _runs()
    fig = plot.state_grad_norms(runs)
    maps = _heatmaps(fig)
    assert len(maps) == 2
    limits = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in maps}
    assert len(limits) == 1                                    # equal across panels
    lo, hi = limits.pop()
    everything = np.concatenate([a.ravel() for a in runs.values()])
    assert lo == pytest.approx(everything.min()) and hi == pytest.approx(everything.max())
    assert len(fig.axes) == 2 * len(runs) + 1                  # one colour bar for the row
    curves = [ax for ax in fig.axes if ax.lines]
    assert len(curves) == 2 and curves[0].get_ylim() == curves[1].get_ylim()
    assert _saved_png(fig, tmp_path) > 1000


def test_state_grad_norms_separate_scales_when_asked():
    runs = _runs()
    fig = plot.state_grad_norms(runs, shared_scale=False)
    maps = _heatmaps(fig)
    for ax, a in zip(maps, runs.values()):
        assert ax.images[0].norm.vmin == pytest.approx(a.min())
        assert ax.images[0].norm.vmax == pytest.approx(a.max())
    assert maps[0].images[0].norm.vmax < maps[1].images[0].norm.vmin
    assert len(fig.axes) == 2 * len(runs) + len(runs)          # a colour bar per panel
    curves = [ax for ax in fig.axes if ax.lines]
    assert curves[0].get_ylim() != curves[1].get_ylim()


def test_state_grad_norms_one_run_and_epoch_rows():
    a = np.exp(-np.arange(12.0))[None].repeat(5, 0) * np.arange(1, 6)[:, None]
    fig = plot.state_grad_norms({"only": a}, epochs=[1, 5], title="t")   # epochs count from 1
    (heat,) = _heatmaps(fig)
    assert (heat.images[0].norm.vmin, heat.images[0].norm.vmax) == pytest.approx((a.min(), a.max()))
    fig.canvas.draw()
    assert _is_integer(heat.get_yticks())                     # epochs down the heatmap
    curve_ax = next(ax for ax in fig.axes if ax.lines)
    assert [line.get_label() for line in curve_ax.lines] == ["epoch 1", "epoch 5"]
    np.testing.assert_allclose(curve_ax.lines[1].get_ydata(), a[4])
    one_d = plot.state_grad_norms({"1-d": a[0]}, shared_scale=False)
    assert _heatmaps(one_d)[0].images[0].get_array().shape == (1, 12)


def test_state_grad_norms_rejects_bad_input():
    with pytest.raises(ValueError, match="norms: expected at least one run"):
        plot.state_grad_norms({})
    with pytest.raises(ValueError, match=r"norms\['a'\]: expected shape \(epochs, T\)"):
        plot.state_grad_norms({"a": np.ones((2, 3, 4))})
    with pytest.raises(TypeError, match="shared_scale: expected True or False, got 'yes'"):
        plot.state_grad_norms({"a": np.ones(3)}, shared_scale="yes")


def test_importing_rnnbp_does_not_import_matplotlib():
    """matplotlib is imported lazily, inside the plotting functions."""
    import subprocess

    code = "import rnnbp, rnnbp.plot, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
