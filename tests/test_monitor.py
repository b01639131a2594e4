"""rnnbp.monitor: Jacobian products through time, the Pascanu bound, the gradient recorder."""

import numpy as np
import pytest

import rnnbp
from rnnbp import monitor


def _elman_products(cell, graph, name):
    """Independent: M_t = J_{T-1} ... J_{t+1}, J_u = diag(f'(a_u)) W_hh^T, with numpy."""
    hs = graph.layer_states(name)[0]                    # (T + 1, B, H)
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    W = cell.params["W_hh"].astype(np.float64)
    M = np.empty((T, B, H, H))
    M[T - 1] = np.eye(H)
    for t in range(T - 2, -1, -1):
        h = hs[t + 2].astype(np.float64)                # state after step t + 1
        fprime = 1 - h ** 2 if cell.activation == "tanh" else (h > 0).astype(np.float64)
        J = fprime[:, :, None] * W.T[None]               # diag(f'(a)) W_hh^T per sequence
        M[t] = M[t + 1] @ J
    return M


def _model(kind, D, H, seed, dtype=np.float64, scale=1.0):
    if kind == "lstm":
        cell = rnnbp.LSTM(D, H, seed=seed, dtype=dtype)
    elif kind == "gru":
        cell = rnnbp.GRU(D, H, seed=seed, dtype=dtype)
    else:
        act = "relu" if kind == "relu" else "tanh"
        cell = rnnbp.Elman(D, H, act, seed=seed, dtype=dtype,
                           init_hh="identity" if act == "relu" else "orthogonal")
        cell.params["W_hh"] *= scale
    rng = np.random.default_rng(seed + 100)
    for p in cell.params.values():
        if p.ndim == 1:
            p[...] = rng.normal(scale=0.3, size=p.shape)  # non-zero biases
    return cell


@pytest.mark.parametrize("kind,scale", [("tanh", 0.8), ("tanh", 1.5), ("relu", 1.0)])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_elman_jacobian_norms_equal_explicit_products(kind, scale, norm):
    cell = _model(kind, 3, 6, seed=1, scale=scale)
    xs = np.random.default_rng(0).normal(size=(15, 4, 3))
    graph = rnnbp.unroll(cell, xs)
    M = _elman_products(cell, graph, "")
    got = monitor.jacobian_norms(graph, "", norm=norm)
    want = np.linalg.norm(M, 2 if norm == "spectral" else "fro", axis=(-2, -1))
    assert got.shape == (15, 4) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12 * want.max())
    np.testing.assert_allclose(monitor.state_jacobians(graph, ""), M, rtol=1e-10, atol=1e-13 * np.abs(M).max())


def test_layer_in_a_stack_and_sequence_subset():
    inner = _model("tanh", 4, 5, seed=3, scale=0.9)
    model = rnnbp.Sequential(rnnbp.Elman(2, 4, seed=2), inner, rnnbp.Linear(5, 1, seed=4))
    xs = np.random.default_rng(1).normal(size=(9, 6, 2))
    graph = rnnbp.unroll(model, xs)
    M = _elman_products(inner, graph, "1")
    got = monitor.jacobian_norms(graph, "1", sequences=[4, 1])
    np.testing.assert_allclose(got, np.linalg.norm(M[:, [4, 1]], 2, axis=(-2, -1)), rtol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
def test_jacobians_equal_finite_differences_of_the_forward_pass(kind):
    """Any cell: M_t against central differences of s_{T-1} with respect to s_t."""
    cell = _model(kind, 2, 3, seed=5)
    T, B = 6, 2
    xs = np.random.default_rng(2).normal(size=(T, B, 2))
    graph = rnnbp.unroll(cell, xs)
    M = monitor.state_jacobians(graph, "")
    states = graph.layer_states("")
    sizes = cell.state_sizes
    K = sum(sizes)
    assert M.shape == (T, B, K, K)
    eps = 1e-6
    for t in (0, 2, T - 2):
        s_t = np.concatenate([s[t + 1] for s in states], axis=1)      # (B, K)
        fd = np.empty((B, K, K))
        for j in range(K):
            outs = []
            for sign in (1, -1):
                s = s_t.copy()
                s[:, j] += sign * eps
                parts = np.split(s, np.cumsum(sizes)[:-1], axis=1)
                state = type(cell.initial_state(1))(*parts) if hasattr(cell.initial_state(1), "_fields") \
                    else tuple(parts)
                _, s_last, _ = cell.forward_seq(xs[t + 1:], state)
                outs.append(np.concatenate(s_last, axis=1))
            fd[:, :, j] = (outs[0] - outs[1]) / (2 * eps)
        np.testing.assert_allclose(M[t], fd, atol=1e-8)
    np.testing.assert_array_equal(M[T - 1], np.broadcast_to(np.eye(K), (B, K, K)))


def test_masked_steps_carry_the_state():
    cell = _model("tanh", 2, 4, seed=6)
    xs = np.random.default_rng(3).normal(size=(8, 3, 2))
    mask = np.ones((8, 3), dtype=bool)
    mask[5:, 1] = False                                   # sequence 1 ends after 5 steps
    graph = rnnbp.unroll(cell, xs, mask=mask)
    M = monitor.state_jacobians(graph, "")
    short = rnnbp.unroll(cell, xs[:5, 1:2])
    np.testing.assert_allclose(M[:5, 1], monitor.state_jacobians(short, "")[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(M[5:, 1], np.broadcast_to(np.eye(4), (3, 4, 4)))


def test_gradients_are_left_unchanged():
    model = rnnbp.Sequential(_model("lstm", 2, 3, seed=7), rnnbp.Linear(3, 1, seed=8))
    graph = rnnbp.unroll(model, np.random.default_rng(4).normal(size=(5, 2, 2)))
    graph.backward(np.ones_like(graph.outputs))
    before = {k: g.copy() for k, g in model.grads.items()}
    views = dict(model.grads)
    monitor.jacobian_norms(graph, "0")
    for k, g in model.grads.items():
        assert g is views[k]
        np.testing.assert_array_equal(g, before[k])


@pytest.mark.parametrize("scale", [0.5, 0.8, 0.95, 1.5])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_vanishing_bound_holds(scale, activation):
    cell = rnnbp.Elman(3, 8, activation, seed=9, init_hh="orthogonal")
    cell.params["W_hh"] *= scale
    xs = np.random.default_rng(5).normal(size=(30, 5, 3))
    graph = rnnbp.unroll(cell, xs)
    bound = monitor.vanishing_bound(cell, 30)
    np.testing.assert_allclose(bound, scale ** np.arange(29, -1, -1.0), rtol=1e-12)
    norms = monitor.jacobian_norms(graph, "")
    assert np.all(norms <= bound[:, None] * (1 + 1e-12))
    # And so for the gradient of a loss at the last step, per sequence.
    dys = np.zeros_like(graph.outputs)
    dys[-1] = np.random.default_rng(6).normal(size=dys[-1].shape)
    graph.backward(dys)
    per_seq = graph.state_grad_norms_per_sequence[""]
    assert np.all(per_seq <= bound[:, None] * per_seq[-1][None] * (1 + 1e-12))
    if activation == "tanh" and scale < 1:
        assert norms[0].max() < scale ** 29 * (1 + 1e-12)


def test_vanishing_bound_arguments():
    assert monitor.vanishing_bound(np.eye(2), 3, gamma=0.25)[0] == 0.0625
    with pytest.raises(TypeError, match="gamma"):
        monitor.vanishing_bound(np.eye(2), 3)
    with pytest.raises(TypeError, match="layer"):
        monitor.vanishing_bound(rnnbp.LSTM(1, 2, seed=0), 3)
    with pytest.raises(ValueError, match="W_hh"):
        monitor.vanishing_bound(np.ones((2, 3)), 3, gamma=1.0)
    with pytest.raises(ValueError, match="gamma"):
        monitor.vanishing_bound(np.eye(2), 3, gamma=-1.0)


def test_argument_errors_name_the_argument():
    model = rnnbp.Sequential(rnnbp.Elman(2, 3, seed=0), rnnbp.Linear(3, 1, seed=1))
    graph = rnnbp.unroll(model, np.zeros((4, 2, 2)))
    with pytest.raises(KeyError, match="layer_name"):
        monitor.jacobian_norms(graph, "7")
    with pytest.raises(ValueError, match="static layer"):
        monitor.jacobian_norms(graph, "1")
    with pytest.raises(ValueError, match="norm"):
        monitor.jacobian_norms(graph, "0", norm="nuclear")
    with pytest.raises(TypeError, match="graph"):
        monitor.jacobian_norms(model, "0")
    with pytest.raises(ValueError, match="sequences"):
        monitor.jacobian_norms(graph, "0", sequences=[5])


@pytest.mark.parametrize("kind", ["tanh", "lstm", "gru"])
def test_float32_runs_and_agrees_with_float64(kind):
    xs = np.random.default_rng(7).normal(size=(12, 3, 2))
    n64 = monitor.jacobian_norms(rnnbp.unroll(_model(kind, 2, 4, seed=8), xs), "")
    cell32 = _model(kind, 2, 4, seed=8, dtype=np.float32)
    n32 = monitor.jacobian_norms(rnnbp.unroll(cell32, xs.astype(np.float32)), "")
    assert n32.dtype == np.float64 and np.isfinite(n32).all()
    np.testing.assert_allclose(n32, n64, rtol=1e-3, atol=1e-6)
    assert monitor.state_jacobians(rnnbp.unroll(cell32, xs.astype(np.float32)), "").dtype == np.float32


def test_recorder_in_a_hand_written_loop():
    model = rnnbp.Sequential(rnnbp.Elman(1, 6, seed=0), rnnbp.Linear(6, 1, seed=1))
    rng = np.random.default_rng(8)
    xs, ys = rng.normal(size=(10, 8, 1)), rng.normal(size=(8, 1))
    rec = monitor.GradientRecorder(model, "0")
    opt = rnnbp.optim.SGD(model, lr=0.1)
    norms = []
    for _ in range(4):
        model.zero_grad()
        graph = rnnbp.unroll(model, xs)
        _, dlast = rnnbp.losses.mse(graph.outputs[-1], ys)
        dys = np.zeros_like(graph.outputs)
        dys[-1] = dlast
        graph.backward(dys)
        norm = rnnbp.clip_grad_norm(model, 0.01)
        norms.append(norm)
        rec.record(graph, grad_norm=norm, clipped=norm > 0.01)
        opt.step()
    assert rec.state_grad_norms.shape == (4, 10)
    np.testing.assert_array_equal(rec.state_grad_norms[-1], graph.state_grad_norms["0"])
    np.testing.assert_array_equal(rec.grad_norm, norms)
    assert rec.clipped.all() and list(rec.row_updates) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="probe"):
        rec.measure()


def test_recorder_as_fit_callback_matches_history():
    rng = np.random.default_rng(9)
    xs, ys = rng.normal(size=(15, 40, 1)), rng.normal(size=(40, 1))
    model = rnnbp.Sequential(rnnbp.Elman(1, 5, seed=2), rnnbp.Linear(5, 1, seed=3))
    rec = monitor.GradientRecorder(model, "0", probe=xs[:, :3])
    rec.measure()
    hist = rnnbp.fit(model, (xs, ys), loss=rnnbp.losses.mse, target="last",
                     optimizer=rnnbp.optim.SGD(model, lr=0.05), epochs=4, batch_size=10,
                     clip=0.02, callbacks=[rec], progress=False)
    np.testing.assert_array_equal(rec.state_grad_norms, hist.state_grad_norms["0"])
    np.testing.assert_array_equal(rec.grad_norm, hist.grad_norm)
    np.testing.assert_array_equal(rec.clipped, hist.clipped)
    assert list(rec.row_updates) == [4, 8, 12, 16]
    assert list(rec.measured_at) == [0, 4, 8, 12, 16]
    assert rec.jacobian_norms.shape == (5, 15, 3) and rec.bounds.shape == (5, 15)
    assert np.all(rec.jacobian_norms <= rec.bounds[:, :, None] * (1 + 1e-12))
    # The last measurement is the trained model's.
    graph = rnnbp.unroll(model, xs[:, :3])
    np.testing.assert_allclose(rec.jacobian_norms[-1], monitor.jacobian_norms(graph, "0"), rtol=1e-12)


def test_recorder_arguments():
    model = rnnbp.Sequential(rnnbp.GRU(1, 3, seed=0), rnnbp.Linear(3, 1, seed=1))
    with pytest.raises(ValueError, match="static layer"):
        monitor.GradientRecorder(model, "1")
    with pytest.raises(KeyError, match="layer_name"):
        monitor.GradientRecorder(model, "")
    with pytest.raises(TypeError, match="model"):
        monitor.GradientRecorder("model")
    rec = monitor.GradientRecorder(model, "0", probe=np.zeros((4, 2, 1)))
    rec.measure()
    assert rec.jacobian_norms.shape == (1, 4, 2) and rec.bounds.shape == (0, 0)
