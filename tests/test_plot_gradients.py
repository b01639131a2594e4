"""rnnbp.plot's gradient-flow figures: decay under a bound, training traces, gradient-norm heatmaps."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import rnnbp  # noqa: E402
from rnnbp import monitor, plot  # noqa: E402


def _png(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path.stat().st_size


def test_decay_with_bound_draws_measured_band_and_bound(tmp_path):
    cell = rnnbp.Elman(2, 5, seed=0)
    cell.params["W_hh"] *= 0.8
    graph = rnnbp.unroll(cell, np.random.default_rng(0).normal(size=(20, 3, 2)))
    norms = monitor.jacobian_norms(graph, "")
    bound = monitor.vanishing_bound(cell, 20)
    fig = plot.decay_with_bound({"tanh": norms, "curve": norms[:, 0]}, {"tanh": bound}, title="t")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 3                           # two runs and one bound
    np.testing.assert_allclose(ax.lines[0].get_ydata(), norms.max(axis=1))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), bound)
    assert len(ax.collections) == 1                     # the band of the (T, B) run only
    assert _png(fig, tmp_path) > 1000


def test_decay_with_bound_rejects_bad_input():
    with pytest.raises(ValueError, match="measured"):
        plot.decay_with_bound({})
    with pytest.raises(ValueError, match="measured"):
        plot.decay_with_bound({"a": np.ones((2, 2, 2))})
    with pytest.raises(ValueError, match="bounds"):
        plot.decay_with_bound({"a": np.ones(5)}, {"a": np.ones(4)})


def test_training_trace_panels_and_threshold(tmp_path):
    g = np.array([0.5, 300.0, 2.0, 0.4])
    fig = plot.training_trace({"no clip": g, "clip": g / 2}, {"no clip": np.ones(4), "clip": np.ones(3)},
                              clip=1.0, title="x")
    assert len(fig.axes) == 2
    loss_ax, norm_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(norm_ax.lines) == 3     # + the threshold line
    np.testing.assert_array_equal(norm_ax.lines[0].get_ydata(), g)
    assert norm_ax.lines[0].get_color() == loss_ax.lines[0].get_color()
    assert _png(fig, tmp_path) > 1000
    assert len(plot.training_trace({"a": g}).axes) == 1
    with pytest.raises(ValueError, match="grad_norms"):
        plot.training_trace({})
    with pytest.raises(ValueError, match="grad_norms"):
        plot.training_trace({"a": np.ones((2, 2))})


def test_state_grad_norms_reads_a_recorder():
    """The existing heatmap takes what GradientRecorder collects."""
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=(8, 16, 1)), rng.normal(size=(16, 1))
    model = rnnbp.Sequential(rnnbp.Elman(1, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    rec = monitor.GradientRecorder(model, "0")
    rnnbp.fit(model, (xs, ys), loss=rnnbp.losses.mse, target="last", epochs=3, batch_size=8,
              optimizer=rnnbp.optim.SGD(model, lr=0.1), callbacks=[rec], progress=False)
    fig = plot.state_grad_norms({"Elman": rec.state_grad_norms})
    assert len(fig.axes) >= 2
