"""The two paths through a model: the sequence kernels ("fast") and the one-step methods ("step").

``unroll(..., path="step")`` runs every layer's ``forward``/``backward`` once
per step (``Layer.forward_steps``/``backward_steps``): the code a student
reads. It must give the fast path's outputs, gradients and recorded
``||dL/dh_t||`` to 1e-12 relative in float64, for every cell, masked or not,
with and without memory-saving recompute, and every algorithm takes it.
"""

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse
from tests.helpers import random_biases

CELLS = {
    "elman-tanh": lambda: rnnbp.Elman(3, 5, seed=0),
    "elman-relu": lambda: rnnbp.Elman(3, 5, activation="relu", seed=0),
    "lstm": lambda: rnnbp.LSTM(3, 5, seed=0),
    "gru": lambda: rnnbp.GRU(3, 5, seed=0),
}


def _model(name):
    model = rnnbp.Sequential(CELLS[name](), rnnbp.Tanh(), rnnbp.Linear(5, 2, seed=1))
    random_biases(model, np.random.default_rng(7))
    return model


def _rel(a, b):
    scale = max(np.abs(b).max(), 1e-300)
    return float(np.abs(a - b).max() / scale)


def _run(model, xs, mask, R, path, recompute):
    graph = rnnbp.unroll(model, xs, mask=mask, path=path, recompute=recompute)
    model.zero_grad()
    dxs, dstate0 = graph.backward(R)
    grads = {k: g.copy() for k, g in model.grads.items()}
    return graph, grads, dxs, dstate0


@pytest.mark.parametrize("recompute", [None, 8], ids=["full", "recompute"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_step_path_equals_fast_path(name, masked, recompute):
    rng = np.random.default_rng(3)
    T, B = 23, 4
    xs = rng.normal(size=(T, B, 3))
    mask = np.arange(T)[:, None] < np.array([T, 9, 17, 1])[None] if masked else None
    model = _model(name)
    R = rng.normal(size=(T, B, 2))
    fast, g_fast, dxs_fast, d0_fast = _run(model, xs, mask, R, "fast", recompute)
    step, g_step, dxs_step, d0_step = _run(model, xs, mask, R, "step", recompute)
    assert step.path == "step" and fast.path == "fast"
    assert _rel(step.outputs, fast.outputs) <= 1e-12
    for k in g_fast:
        assert _rel(g_step[k], g_fast[k]) <= 1e-12, k
    assert _rel(dxs_step, dxs_fast) <= 1e-12
    for a, b in zip(d0_step[0], d0_fast[0]):              # the cell's initial-state gradient
        assert _rel(a, b) <= 1e-12
    assert set(step.state_grad_norms) == set(fast.state_grad_norms) == {"0"}
    assert _rel(step.state_grad_norms["0"], fast.state_grad_norms["0"]) <= 1e-12
    assert _rel(step.state_grad_norms_per_sequence["0"], fast.state_grad_norms_per_sequence["0"]) <= 1e-12
    for a, b in zip(step.layer_states("0"), fast.layer_states("0")):
        assert _rel(a, b) <= 1e-12


def test_a_breakpoint_in_lstm_backward_is_hit_during_fit_on_the_step_path(monkeypatch):
    """What a student's debugger sees: ``LSTM.backward`` runs, once per step, inside ``fit(path="step")``."""
    calls = {"forward": 0, "backward": 0}
    forward, backward = rnnbp.LSTM.forward, rnnbp.LSTM.backward

    def spy_forward(self, x, state):
        calls["forward"] += 1
        return forward(self, x, state)

    def spy_backward(self, dy, dstate_next, cache):
        calls["backward"] += 1
        return backward(self, dy, dstate_next, cache)

    monkeypatch.setattr(rnnbp.LSTM, "forward", spy_forward)
    monkeypatch.setattr(rnnbp.LSTM, "backward", spy_backward)
    rng = np.random.default_rng(0)
    T, N = 6, 8
    xs, ys = rng.normal(size=(T, N, 2)), rng.normal(size=(N, 1))
    model = rnnbp.Sequential(rnnbp.LSTM(2, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    rnnbp.fit(model, (xs, ys), loss=mse, target="last", optimizer=rnnbp.optim.SGD(model, lr=0.1),
              batch_size=4, progress=False)
    assert calls == {"forward": 0, "backward": 0}             # the fast path runs the kernels
    rnnbp.fit(model, (xs, ys), loss=mse, target="last", optimizer=rnnbp.optim.SGD(model, lr=0.1),
              batch_size=4, progress=False, path="step")
    assert calls == {"forward": 2 * T, "backward": 2 * T}     # two batches of T steps


def test_fit_on_either_path_trains_the_same_model():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(8, 16, 2))
    ys = np.cumsum(xs, axis=0)[..., :1] / 3
    mask = np.arange(8)[:, None] < rng.integers(3, 9, size=16)[None]
    params = {}
    for path in ("fast", "step"):
        model = rnnbp.Sequential(rnnbp.GRU(2, 6, seed=0), rnnbp.Linear(6, 1, seed=1))
        hist = rnnbp.fit(model, (xs, ys, mask), loss=mse, optimizer=rnnbp.optim.Adam(model, lr=1e-2),
                         epochs=3, batch_size=8, clip=1.0, progress=False, path=path)
        params[path] = ({k: p.copy() for k, p in model.params.items()}, hist)
    (p_fast, h_fast), (p_step, h_step) = params["fast"], params["step"]
    for k in p_fast:
        np.testing.assert_allclose(p_step[k], p_fast[k], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_step.loss, h_fast.loss, rtol=1e-10)
    np.testing.assert_allclose(h_step.state_grad_norms["0"], h_fast.state_grad_norms["0"], rtol=1e-10)


def test_truncated_bptt_predict_evaluate_and_gradcheck_take_the_step_path():
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(12, 3, 2))
    ys = rng.normal(size=(12, 3, 1))
    results = {}
    for path in ("fast", "step"):
        model = rnnbp.Sequential(rnnbp.Elman(2, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
        tb = rnnbp.TruncatedBPTT(model, 4, 6, path=path)
        losses = tb.run(xs, ys, mse, optimizer=rnnbp.optim.SGD(model, lr=0.05))
        assert tb.graph.path == path
        results[path] = (losses, rnnbp.predict(model, xs, path=path),
                         rnnbp.evaluate(model, (xs, ys), mse, path=path)[0])
    np.testing.assert_allclose(results["step"][0], results["fast"][0], rtol=1e-12)
    np.testing.assert_allclose(results["step"][1], results["fast"][1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(results["step"][2], results["fast"][2], rtol=1e-12)
    model = _model("lstm")
    assert rnnbp.gradcheck(model, rng.normal(size=(5, 2, 3)), path="step").worst < 1e-6


def test_path_is_checked():
    model = _model("gru")
    with pytest.raises(ValueError, match=r"path: expected one of 'fast', 'step', got 'slow'"):
        rnnbp.unroll(model, np.zeros((2, 1, 3)), path="slow")
    with pytest.raises(ValueError, match="path: expected one of"):
        rnnbp.fit(model, (np.zeros((2, 1, 3)), np.zeros((2, 1, 2))), loss=mse,
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), path=1)


def test_one_training_step_on_the_step_path_walks_the_documented_route():
    """The route of docs/bptt.md: eight files, plus three one-line helpers; the test fails if it grows."""
    import os
    import sys

    model = rnnbp.Sequential(rnnbp.LSTM(2, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    opt = rnnbp.optim.SGD(model, lr=0.1)
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 3, 1))
    root = os.path.dirname(rnnbp.__file__)
    files = set()

    def tracer(frame, event, arg):
        name = frame.f_code.co_filename
        if name.startswith(root):
            files.add(os.path.relpath(name, root).replace(os.sep, "/"))

    sys.settrace(tracer)
    try:
        rnnbp.train_step(model, (xs, ys), mse, opt, clip=1.0, path="step")
    finally:
        sys.settrace(None)
    route = {"update.py", "unroll.py", "protocol.py", "layers.py", "cells/lstm.py", "losses.py", "clip.py", "optim.py"}
    helpers = {"_checks.py", "cells/_base.py", "activations.py", "_versions.py"}   # (the weights' version counters)
    assert route <= files
    assert files <= route | helpers, sorted(files - route - helpers)


def test_truncated_history_loss_weights_each_window_by_its_new_steps():
    """T = 7, k1 = 5: windows of 5 and 2 new steps; the epoch loss is (5 L1 + 2 L2) / 7."""
    rng = np.random.default_rng(4)
    xs, ys = rng.normal(size=(7, 4, 1)), rng.normal(size=(7, 4, 1))
    model = rnnbp.Sequential(rnnbp.Elman(1, 3, seed=0), rnnbp.Linear(3, 1, seed=1))
    opt = rnnbp.optim.SGD(model, lr=1.0)
    opt.lr = 0.0                                           # no update: both windows see the same weights
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt,
                     bptt=5, batch_size=4, shuffle=False, metric=lambda o, t, m: float(o.shape[0]),
                     progress=False)
    tb = rnnbp.TruncatedBPTT(model, 5)
    first = tb.train_step((xs[:5], ys[:5], None), mse).loss
    second = tb.train_step((xs[5:], ys[5:], None), mse).loss
    assert hist.loss[0] == pytest.approx((5 * first + 2 * second) / 7, rel=1e-14)
    assert hist.metric[0] == pytest.approx((5 * 5 + 2 * 2) / 7, rel=1e-14)   # metric: recorded, same weights
