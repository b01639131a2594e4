"""The unroller and full BPTT: checked against finite differences and an independent step walk."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import rnnbp
from tests.helpers import random_biases


MODELS = {
    "elman": lambda: rnnbp.Elman(3, 4, seed=0),
    "lstm": lambda: rnnbp.LSTM(3, 4, seed=0),
    "gru": lambda: rnnbp.GRU(3, 4, seed=0),
    "lstm-gru-linear": lambda: rnnbp.Sequential(rnnbp.LSTM(3, 4, seed=0), rnnbp.GRU(4, 5, seed=1),
                                                rnnbp.Linear(5, 2, seed=2)),
    "elman-relu-stack": lambda: rnnbp.Sequential(rnnbp.Elman(3, 4, seed=0),
                                                 rnnbp.Elman(4, 4, activation="relu", seed=1)),
    "nested-stack": lambda: rnnbp.Sequential(
        rnnbp.Sequential(rnnbp.Linear(3, 4, seed=3), rnnbp.Tanh()),
        rnnbp.Sequential(rnnbp.GRU(4, 3, seed=4), rnnbp.LSTM(3, 2, seed=5))),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return random_biases(MODELS[request.param](), np.random.default_rng(11))


def _mask(T, B):
    mask = np.ones((T, B), bool)
    mask[T - 2:, 0] = False     # ends early
    mask[1:, 1] = False         # length 1
    return mask


def _random_state(model, B, rng):
    return model.unflatten_state([
        type(s)(*[rng.normal(size=a.shape) for a in s]) if hasattr(s, "_fields")
        else tuple(rng.normal(size=a.shape) for a in s)
        for s in model.flatten_state(model.initial_state(B))])


@pytest.mark.slow
def test_gradcheck_whole_graph(model):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(6, 3, 3))
    state = _random_state(model, 3, rng)
    res = rnnbp.gradcheck(model, xs, state=state)
    assert res.worst < 1e-6, str(res)
    res = rnnbp.gradcheck(model, xs, state=state, mask=_mask(6, 3))
    assert res.worst < 1e-6, str(res)
    res = rnnbp.gradcheck(model, xs[0], state=state, step=True)
    assert res.worst < 1e-6, str(res)


def _step_walk(model, xs, state, dys, dstate_T):
    """Independent BPTT: the step protocol, step-major, no fast paths, no unroller."""
    caches, states = [], [state]
    for t in range(xs.shape[0]):
        y, state, c = model.forward(xs[t], state)
        caches.append(c)
        states.append(state)
    model.zero_grad()
    dstate = dstate_T
    dxs = np.zeros_like(xs)
    for t in range(xs.shape[0] - 1, -1, -1):
        dxs[t], dstate = model.backward(dys[t], dstate, caches[t])
    return dxs, dstate, {k: g.copy() for k, g in model.grads.items()}, states


def test_equals_independent_step_walk(model):
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(7, 2, 3))
    state = _random_state(model, 2, rng)
    graph = rnnbp.unroll(model, xs, state)
    dys = rng.normal(size=graph.outputs.shape)
    dstate_T = _random_state(model, 2, rng)
    model.zero_grad()
    dxs, dstate0 = graph.backward(dys, dstate_T)
    grads = {k: g.copy() for k, g in model.grads.items()}
    dxs2, dstate02, grads2, states = _step_walk(model, xs, state, dys, dstate_T)
    np.testing.assert_allclose(dxs, dxs2, rtol=1e-11, atol=1e-12)
    for a, b in zip(model.flatten_state(dstate0), model.flatten_state(dstate02)):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads2[k], rtol=1e-11, atol=1e-12)
    for t in (0, 3, 7):
        for a, b in zip(model.flatten_state(graph.state_at(t)), model.flatten_state(states[t])):
            for u, v in zip(a, b):
                np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-13)


def test_recorded_norms_are_the_total_hidden_gradient():
    """||dL/dh_t|| recorded by the walk equals dy_t + dL/dh_t via step t+1, computed by hand."""
    rng = np.random.default_rng(2)
    cell = random_biases(rnnbp.Elman(3, 4, seed=0), rng)
    xs = rng.normal(size=(5, 2, 3))
    graph = rnnbp.unroll(cell, xs)
    dys = rng.normal(size=graph.outputs.shape)
    graph.backward(dys)
    W_hh = cell.params["W_hh"]
    hs = graph.layer_states("")[0]
    dh = dys[-1].copy()
    expected = np.zeros((5, 2))
    for t in range(4, -1, -1):
        expected[t] = np.linalg.norm(dh, axis=1)
        dz = dh * (1 - hs[t + 1] ** 2)                    # h = tanh(z)
        dh = dz @ W_hh.T + (dys[t - 1] if t else 0)       # z = ... + h_prev W_hh
    np.testing.assert_allclose(graph.state_grad_norms_per_sequence[""], expected, rtol=1e-12)
    np.testing.assert_allclose(graph.state_grad_norms[""], np.linalg.norm(expected, axis=1), rtol=1e-12)


def test_mask_equals_separate_runs_of_each_prefix(model):
    """A masked batch gives the same outputs, final states and summed gradients as
    running every sequence alone over its own length."""
    rng = np.random.default_rng(3)
    T, B = 6, 3
    xs = rng.normal(size=(T, B, 3))
    mask = _mask(T, B)
    graph = rnnbp.unroll(model, xs, mask=mask)
    dys = rng.normal(size=graph.outputs.shape)
    model.zero_grad()
    dxs, _ = graph.backward(dys)
    got = {k: g.copy() for k, g in model.grads.items()}
    assert np.all(graph.outputs[~mask] == 0) and np.all(dxs[~mask] == 0)
    expected = {k: np.zeros_like(g) for k, g in got.items()}
    for b in range(B):
        n = int(mask[:, b].sum())
        g1 = rnnbp.unroll(model, xs[:n, b:b + 1])
        np.testing.assert_allclose(graph.outputs[:n, b:b + 1], g1.outputs, rtol=1e-12, atol=1e-13)
        for a, c in zip(model.flatten_state(graph.final_state), model.flatten_state(g1.final_state)):
            for u, v in zip(a, c):
                np.testing.assert_allclose(u[b:b + 1], v, rtol=1e-12, atol=1e-13)
        model.zero_grad()
        dx1, _ = g1.backward(dys[:n, b:b + 1])
        np.testing.assert_allclose(dxs[:n, b:b + 1], dx1, rtol=1e-10, atol=1e-12)
        for k in expected:
            expected[k] += model.grads[k]
    for k in got:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-10, atol=1e-12)


def test_nodes_and_states(model):
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(4, 2, 3))
    graph = rnnbp.unroll(model, xs)
    assert len(graph) == 4 and len(graph.nodes) == 4
    for t in range(3):
        a, b = graph.node(t), graph.node(t + 1)
        assert a.t == t
        np.testing.assert_array_equal(a.input, xs[t])
        np.testing.assert_array_equal(a.output, graph.outputs[t])
        for u, v in zip(model.flatten_state(a.state_out), model.flatten_state(b.state_in)):
            for p, q in zip(u, v):
                np.testing.assert_array_equal(p, q)
    if isinstance(model, rnnbp.LSTM):
        assert isinstance(graph.state_at(2), rnnbp.LSTMState)
        assert isinstance(graph.node(1).state_out, rnnbp.LSTMState)
    last = graph.node(-1)
    for u, v in zip(model.flatten_state(last.state_out), model.flatten_state(graph.final_state)):
        for p, q in zip(u, v):
            np.testing.assert_array_equal(p, q)
    with pytest.raises(IndexError):
        graph.node(4)
    with pytest.raises(KeyError, match="name: expected one of"):
        graph.layer_outputs("nope")


def test_backward_twice_doubles_and_records_every_recurrent_layer():
    model = rnnbp.Sequential(rnnbp.LSTM(3, 4, seed=0), rnnbp.Linear(4, 4, seed=1), rnnbp.GRU(4, 2, seed=2))
    xs = np.random.default_rng(5).normal(size=(5, 3, 3))
    graph = rnnbp.unroll(model, xs)
    dys = np.random.default_rng(6).normal(size=graph.outputs.shape)
    model.zero_grad()
    graph.backward(dys)
    once = {k: g.copy() for k, g in model.grads.items()}
    graph.backward(dys)
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, 2 * once[k])
    assert sorted(graph.state_grad_norms) == ["0", "2"]
    assert graph.state_grad_norms["2"].shape == (5,)
    assert graph.state_grad_norms_per_sequence["0"].shape == (5, 3)


def test_float32_end_to_end():
    model = rnnbp.Sequential(rnnbp.LSTM(3, 4, dtype=np.float32, seed=0), rnnbp.GRU(4, 4, dtype=np.float32, seed=1),
                             rnnbp.Elman(4, 2, dtype=np.float32, seed=2))
    xs = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    graph = rnnbp.unroll(model, xs, mask=_mask(5, 2))
    assert graph.outputs.dtype == np.float32
    dxs, dstate0 = graph.backward(np.ones_like(graph.outputs))
    assert dxs.dtype == np.float32
    assert all(a.dtype == np.float32 for s in model.flatten_state(dstate0) for a in s)
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_errors_name_the_argument():
    model = rnnbp.Sequential(rnnbp.LSTM(3, 4, seed=0), rnnbp.Linear(4, 2, seed=1))
    xs = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"xs: expected a time-major array \(T, B, D\), got shape \(2, 3\)"):
        rnnbp.unroll(model, xs[0])
    with pytest.raises(ValueError, match=r"xs: expected shape \(T, B, 3\), got \(5, 2, 4\)"):
        rnnbp.unroll(model, np.zeros((5, 2, 4)))
    with pytest.raises(TypeError, match="xs: expected dtype float64, got float32"):
        rnnbp.unroll(model, xs.astype(np.float32))
    with pytest.raises(TypeError, match="xs: expected a numpy array, got list"):
        rnnbp.unroll(model, [[[0.0] * 3]])
    bad = xs.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"xs: expected finite values, got nan at index \(2, 1, 0\)"):
        rnnbp.unroll(model, bad)
    with pytest.raises(TypeError, match="mask: expected dtype bool, got int64"):
        rnnbp.unroll(model, xs, mask=np.ones((5, 2), np.int64))
    with pytest.raises(ValueError, match=r"mask: expected shape \(5, 2\), got \(5, 3\)"):
        rnnbp.unroll(model, xs, mask=np.ones((5, 3), bool))
    with pytest.raises(ValueError, match="state: expected a tuple of 2 per-layer states"):
        rnnbp.unroll(model, xs, state=(np.zeros((2, 4)),))
    state = model.initial_state(2)
    wrong = ((np.zeros((2, 5)), np.zeros((2, 4))), ())
    with pytest.raises(ValueError, match=r"state of layer '0'\[0\]: expected shape \(2, 4\), got \(2, 5\)"):
        rnnbp.unroll(model, xs, state=wrong)
    graph = rnnbp.unroll(model, xs, state=state)
    with pytest.raises(ValueError, match=r"dys: expected shape \(5, 2, 2\) \(the outputs\), got \(5, 2, 3\)"):
        graph.backward(np.zeros((5, 2, 3)))
    with pytest.raises(TypeError, match="model: expected a rnnbp.Layer"):
        rnnbp.unroll("lstm", xs)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(0, 4), B=st.integers(0, 3), D=st.integers(1, 5), extra=st.integers(0, 2),
       dtype=st.sampled_from([np.float64, np.float32, np.int64]))
def test_any_wrong_shape_or_dtype_is_a_clear_error(T, B, D, extra, dtype):
    """Whatever arrives, the unroller either runs or raises a TypeError/ValueError
    naming xs, never a numpy broadcasting error from inside a kernel."""
    model = rnnbp.GRU(3, 2, seed=0)
    xs = np.zeros((T, B, D) + (1,) * extra, dtype=dtype)
    ok = T >= 1 and B >= 1 and D == 3 and extra == 0 and dtype == np.float64
    if ok:
        assert rnnbp.unroll(model, xs).outputs.shape == (T, B, 2)
    else:
        with pytest.raises((TypeError, ValueError), match="^xs: expected"):
            rnnbp.unroll(model, xs)


@pytest.mark.parametrize("path", ["fast", "step"])
def test_batch_first_is_a_transpose_at_the_boundary(path):
    rng = np.random.default_rng(7)
    model = rnnbp.Sequential(rnnbp.LSTM(3, 5, seed=0), rnnbp.Linear(5, 2, seed=1))
    xs = rng.normal(size=(6, 4, 3))
    mask = np.arange(6)[:, None] < np.array([6, 2, 4, 1])[None, :]
    R = rng.normal(size=(6, 4, 2))
    time_major = rnnbp.unroll(model, xs, mask=mask, path=path)
    batch_major = rnnbp.unroll(model, xs.transpose(1, 0, 2).copy(), mask=mask.T.copy(), path=path, batch_first=True)
    assert np.array_equal(batch_major.outputs, time_major.outputs)             # the graph stays time-major
    model.zero_grad()
    dxs_t, _ = time_major.backward(R)
    g_t = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    dxs_b, _ = batch_major.backward(R)
    assert np.array_equal(dxs_b, dxs_t)
    assert all(np.array_equal(model.grads[k], g_t[k]) for k in g_t)
    with pytest.raises(ValueError, match="batch_first=True expected an array"):
        rnnbp.unroll(model, xs[0, 0], batch_first=True)
