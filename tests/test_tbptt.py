"""Truncated BPTT(k1, k2): equal to full BPTT when untruncated, and to a separately
built graph cut at the window start when truncated."""

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse
from tests.helpers import random_biases


def _model(cell="lstm", seed=0):
    rng = np.random.default_rng(seed + 100)
    make = {"lstm": rnnbp.LSTM, "gru": rnnbp.GRU, "elman": rnnbp.Elman}[cell]
    return random_biases(rnnbp.Sequential(make(2, 5, seed=seed), rnnbp.Linear(5, 1, seed=seed + 1)), rng)


def _stream(T=24, B=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, 2)), rng.normal(size=(T, B, 1))


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_k1_equals_k2_equals_T_is_full_bptt(cell):
    model = _model(cell)
    xs, ys = _stream()
    T = xs.shape[0]
    model.zero_grad()
    tb = rnnbp.TruncatedBPTT(model, T, T)
    value = tb.train_step((xs, ys, None), mse).loss
    got = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    graph = rnnbp.unroll(model, xs)
    full_value, dys = mse(graph.outputs, ys)
    graph.backward(dys)
    assert value == full_value
    for k, g in model.grads.items():
        np.testing.assert_array_equal(got[k], g)


@pytest.mark.parametrize("k1,k2", [(4, 4), (4, 10), (3, 7), (5, 6)])
def test_each_window_equals_a_graph_cut_at_the_window_start(k1, k2):
    model = _model("lstm")
    xs, ys = _stream(T=22)
    T = xs.shape[0]
    tb = rnnbp.TruncatedBPTT(model, k1, k2)
    for t0 in range(0, T, k1):
        t1 = min(t0 + k1, T)
        model.zero_grad()
        value = tb.train_step((xs[t0:t1], ys[t0:t1], None), mse).loss
        got = {k: g.copy() for k, g in model.grads.items()}
        # Independent: run the stream up to the cut as a plain forward pass, keep
        # only the state (a constant), then build a fresh graph over the window.
        start = max(t0 - (k2 - k1), 0)  # the chunk plus the k2 - k1 steps before it
        state = rnnbp.unroll(model, xs[:start]).final_state if start else None
        graph = rnnbp.unroll(model, xs[start:t1], state)
        n = t1 - t0
        expected_value, dnew = mse(graph.outputs[-n:], ys[t0:t1])
        dys = np.zeros_like(graph.outputs)
        dys[-n:] = dnew
        model.zero_grad()
        graph.backward(dys)
        assert value == pytest.approx(expected_value, rel=1e-12)
        for k, g in model.grads.items():
            np.testing.assert_allclose(got[k], g, rtol=1e-10, atol=1e-13)
        # The state carried forward is exact: it equals the plain forward pass.
        full = rnnbp.unroll(model, xs[:t1]).final_state
        for a, b in zip(model.flatten_state(tb.state), model.flatten_state(full)):
            for u, v in zip(a, b):
                np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)


def test_truncated_gradient_matches_finite_differences_with_the_cut_state_held_constant():
    model = _model("gru")
    xs, ys = _stream(T=12, B=2)
    k1, k2 = 3, 5
    tb = rnnbp.TruncatedBPTT(model, k1, k2)
    for t0 in range(0, 9, k1):  # three windows; check the third: steps 4..8, loss on 6..8
        model.zero_grad()
        tb.train_step((xs[t0:t0 + k1], ys[t0:t0 + k1], None), mse).loss
    got = {k: g.copy() for k, g in model.grads.items()}
    cut_state = rnnbp.unroll(model, xs[:4]).final_state

    def objective():
        out = rnnbp.unroll(model, xs[4:9], cut_state).outputs
        return mse(out[-3:], ys[6:9])[0]

    eps = 1e-6
    for name, p in model.params.items():
        num = np.zeros_like(p)
        for i in range(p.size):
            old = p.flat[i]
            p.flat[i] = old + eps
            fp = objective()
            p.flat[i] = old - eps
            fm = objective()
            p.flat[i] = old
            num.flat[i] = (fp - fm) / (2 * eps)
        scale = max(np.abs(num).max(), np.abs(got[name]).max(), 1e-8)
        assert np.abs(num - got[name]).max() / scale < 1e-6, name


def test_truncation_differs_from_full_bptt_when_k2_is_short():
    model = _model("elman")
    xs, ys = _stream(T=20)
    model.zero_grad()
    graph = rnnbp.unroll(model, xs)
    graph.backward(mse(graph.outputs, ys)[1])
    full = model.grads["0.W_hh"].copy()
    model.zero_grad()
    rnnbp.TruncatedBPTT(model, 20, 20).train_step((xs, ys, None), mse)
    np.testing.assert_array_equal(model.grads["0.W_hh"], full)
    model.zero_grad()
    tb = rnnbp.TruncatedBPTT(model, 5, 5)
    for t0 in range(0, 20, 5):
        tb.train_step((xs[t0:t0 + 5], ys[t0:t0 + 5], None), mse).loss
    assert not np.allclose(model.grads["0.W_hh"], full)


def test_run_trains_reset_restarts_and_mask_all_true_changes_nothing():
    model = _model("lstm")
    xs, ys = _stream(T=30, B=4)
    before = {k: p.copy() for k, p in model.params.items()}
    opt = rnnbp.optim.SGD(model, lr=0.05)
    seen = []
    losses = rnnbp.TruncatedBPTT(model, 8, 12).run(xs, ys, mse, optimizer=opt, clip=1.0,
                                                   callback=lambda w, v: seen.append(w))
    assert len(losses) == 4 and seen == [0, 1, 2, 3]
    assert any(not np.array_equal(before[k], p) for k, p in model.params.items())

    model2 = _model("lstm")
    tb = rnnbp.TruncatedBPTT(model2, 6, 9)
    a = tb.run(xs, ys, mse)
    tb.reset()
    b = tb.run(xs, ys, mse, mask=np.ones(xs.shape[:2], bool))
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_errors():
    model = _model("lstm")
    with pytest.raises(ValueError, match="k2: expected k2 >= k1 = 5, got 3"):
        rnnbp.TruncatedBPTT(model, 5, 3)
    with pytest.raises(ValueError, match="k1: expected a positive integer, got 0"):
        rnnbp.TruncatedBPTT(model, 0)
    tb = rnnbp.TruncatedBPTT(model, 4, 8)
    xs, ys = _stream(T=8)
    with pytest.raises(ValueError, match=r"xs: expected 1 to k1 = 4 new steps, got shape \(8, 3, 2\)"):
        tb.train_step((xs, ys, None), mse).loss
    tb.train_step((xs[:4], ys[:4], None), mse).loss
    with pytest.raises(ValueError, match="as before in this stream"):
        tb.train_step((xs[:4, :2], ys[:4, :2], None), mse)
    with pytest.raises(ValueError, match="targets: expected an array with 8 steps first"):
        tb.run(xs, ys[:5], mse)


@pytest.mark.parametrize("k1, k2, T, starts, lengths", [
    (3, 5, 9, [0, 1, 4], [3, 5, 5]),     # each window reaches k2 - k1 = 2 steps back before its new steps
    (2, 4, 7, [0, 0, 2, 4], [2, 4, 4, 3]),  # the first windows are cut by the stream's start; a short last chunk
    (4, 4, 8, [0, 4], [4, 4]),           # k1 == k2: windows are the chunks
])
def test_window_start_is_where_the_window_starts_not_where_its_new_steps_start(k1, k2, T, starts, lengths):
    """``window_start`` is the stream step of the window's first (possibly old) step.

    With k1 = 3, k2 = 5 over 9 steps the windows are t = 0..2, 1..5 and 4..8;
    the start of the new steps (0, 3, 6) is a different number.
    """
    xs, ys = _stream(T=T, B=2)
    tb = rnnbp.TruncatedBPTT(_model("elman"), k1, k2)
    got_starts, got_lengths = [], []
    for t0 in range(0, T, k1):
        tb.train_step((xs[t0:t0 + k1], ys[t0:t0 + k1], None), mse).loss
        got_starts.append(tb.window_start)
        got_lengths.append(tb.graph.outputs.shape[0])
        # the window ends at the last new step
        assert tb.window_start + tb.graph.outputs.shape[0] == min(t0 + k1, T)
    assert got_starts == starts
    assert got_lengths == lengths


def test_step_is_a_deprecated_spelling_of_train_step():
    """The one window method is train_step; step still works for a release and warns."""
    rng = np.random.default_rng(3)
    xs, ys = rng.normal(size=(6, 2, 3)), rng.normal(size=(6, 2, 4))
    a = rnnbp.TruncatedBPTT(rnnbp.Elman(3, 4, seed=0), 3)
    b = rnnbp.TruncatedBPTT(rnnbp.Elman(3, 4, seed=0), 3)
    with pytest.warns(DeprecationWarning, match="train_step"):
        old = a.step(xs[:3], ys[:3], mse)
    assert old == b.train_step((xs[:3], ys[:3], None), mse).loss
    assert all(np.array_equal(a.model.grads[k], b.model.grads[k]) for k in a.model.grads)
