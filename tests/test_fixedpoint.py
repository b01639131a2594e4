"""FixedPoint: the settling layer and every recurrent-backprop solver, against
central differences and against BPTT through the settling iterations."""

import numpy as np
import pytest

import rnnbp
from rnnbp.fixedpoint import ACTIVATIONS, METHODS, ConvergenceError, FixedPoint, Settle
from rnnbp.gradcheck import _relative_error

D, H, B = 3, 4, 3
EXACT = dict(tol=1e-14, backward_tol=1e-13, neumann_terms=400, truncate=400, max_iter=2000)


def make(activation="tanh", damping=1.0, seed=1, gain=0.5, **kw):
    layer = FixedPoint(D, H, activation, damping=damping, recurrent_gain=gain, seed=seed, **{**EXACT, **kw})
    layer.params["b"][...] = np.random.default_rng(seed + 7).normal(scale=0.5, size=H)  # non-zero biases
    return layer


def grads(layer, x, R):
    """Flattened (W_ih, W_hh, b, x) gradient of sum(h* R)."""
    layer.zero_grad()
    h, _, cache = layer.forward(x)
    dx, _ = layer.backward(R, (), cache)
    return np.concatenate([layer.grads[k].ravel() for k in ("W_ih", "W_hh", "b")] + [dx.ravel()])


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, D)), rng.normal(size=(B, H))


CASES = ([(m, "tanh", 1.0) for m in METHODS] + [(m, "tanh", 0.6) for m in METHODS]
         + [(m, a, d) for m in ("rbp", "bptt") for a, d in (("sigmoid", 1.0), ("relu", 0.7))])


@pytest.mark.parametrize("method,activation,damping", CASES)
def test_gradient_matches_finite_differences(method, activation, damping, data):
    x, R = data
    layer = make(activation, damping, method=method)
    result = rnnbp.gradcheck(layer, x[None], loss=lambda y: (float(np.sum(y * R)), np.broadcast_to(R, y.shape).copy()))
    assert set(result.errors) == {"W_ih", "W_hh", "b", "xs"}
    assert result.worst < 1e-6, str(result)


def test_gradient_through_a_stack_matches_finite_differences():
    xs = np.random.default_rng(2).normal(size=(2, 3, 4))       # (T, B, D): each step settles on its own
    model = rnnbp.Sequential(rnnbp.Linear(4, D, seed=0), rnnbp.Tanh(), make(method="gmres"),
                             rnnbp.Linear(H, 2, seed=3))
    model.layers[-1].params["b"][...] = [0.3, -0.2]
    assert rnnbp.gradcheck(model, xs).passed(1e-6)


def test_rbp_matches_bptt_through_the_settling_as_the_iterations_grow(data):
    x, R = data
    ref = grads(make(gain=0.8), x, R)
    errors = []
    for K in (4, 8, 16, 32, 64, 96):
        errors.append(_relative_error(grads(make(gain=0.8, steps=K, method="bptt"), x, R), ref))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > 1e-3 and errors[-1] < 1e-10, errors


def test_neumann_with_K_terms_equals_tbptt_through_the_last_K_iterations(data):
    """Liao et al. (2018): at a fixed point truncated BPTT is the truncated Neumann series."""
    x, R = data
    layer = make(gain=0.9)
    ref = grads(layer, x, R)
    for K in (1, 3, 10):
        layer.method, layer.neumann_terms = "neumann", K
        neumann = grads(layer, x, R)
        layer.method, layer.truncate = "tbptt", K
        assert _relative_error(grads(layer, x, R), neumann) < 1e-10
        assert _relative_error(neumann, ref) > 1e-4          # truncated: not the exact gradient


def test_every_solver_gives_the_same_gradient(data):
    x, R = data
    layer = make(gain=0.95)
    layer.method = "rbp"
    ref = grads(layer, x, R)
    for method in METHODS:
        layer.method = method
        assert _relative_error(grads(layer, x, R), ref) < 1e-9, method


def test_output_is_the_fixed_point_and_the_trace_records_it(data):
    x, _ = data
    for activation in ACTIVATIONS:
        layer = make(activation, damping=0.5)
        layer.trace = []
        h, state, _ = layer.forward(x)
        p = layer.params
        a = x @ p["W_ih"] + h @ p["W_hh"] + p["b"]
        f = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": lambda a: 1 / (1 + np.exp(-a))}
        assert state == () and np.abs(f[activation](a) - h).max() < 1e-13
        rec = layer.trace[0]
        assert isinstance(rec, Settle) and rec.phase == "forward" and rec.residual <= layer.tol
        assert len(rec.residuals) == rec.iterations and rec.residuals[-1] == rec.residual


def test_backward_adds_into_grads(data):
    x, R = data
    for method in METHODS:
        layer = make(method=method)
        h, _, cache = layer.forward(x)
        layer.backward(R, (), cache)
        once = {k: g.copy() for k, g in layer.grads.items()}
        layer.backward(R, (), cache)
        for k, g in layer.grads.items():
            np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12, atol=1e-14)


# -- non-convergence ------------------------------------------------------------
def test_forward_without_convergence_raises_with_the_residual():
    layer = FixedPoint(D, H, recurrent_gain=4.0, max_iter=30, seed=0)
    x = np.random.default_rng(0).normal(size=(B, D))
    with pytest.raises(ConvergenceError) as info:
        layer.forward(x)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.phase == "forward" and err.iterations == 30 and err.residual > err.tol
    assert "residual" in str(err) and "30 iterations" in str(err)


def test_divergence_raises_at_once():
    layer = FixedPoint(D, H, "relu", recurrent_gain=3.0, max_iter=100000, seed=0)
    layer.params["W_hh"][...] = 3.0 * np.eye(H)
    with pytest.raises(ConvergenceError, match="diverged") as info:
        layer.forward(np.full((B, D), 100.0))
    assert not np.isfinite(info.value.residual) and info.value.iterations < 100000


@pytest.mark.parametrize("method", ["rbp", "gmres", "bicgstab", "cg"])
def test_adjoint_without_convergence_raises(method, data):
    x, R = data
    layer = make(gain=0.95, method=method, backward_max_iter=2)
    h, _, cache = layer.forward(x)
    with pytest.raises(ConvergenceError) as info:
        layer.backward(R, (), cache)
    assert info.value.phase == "backward" and info.value.method == method
    assert info.value.residual > info.value.tol


def test_rbp_refuses_an_unsettled_state_but_bptt_differentiates_it(data):
    x, R = data
    layer = make(steps=3)
    h, _, cache = layer.forward(x)                               # steps: no error in forward
    with pytest.raises(ConvergenceError, match="not a fixed point"):
        layer.backward(R, (), cache)
    layer.method = "bptt"
    layer.backward(R, (), cache)                                 # exact for the 3-step net


def test_clip_recurrent_norm_makes_the_map_contract():
    layer = FixedPoint(D, H, recurrent_gain=3.0, max_iter=500, seed=0)
    assert layer.clip_recurrent_norm(0.9) == pytest.approx(3.0)
    assert np.linalg.norm(layer.params["W_hh"], 2) == pytest.approx(0.9)
    layer.forward(np.ones((B, D)))


# -- dtypes and arguments -----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_float32_runs_close_to_float64(method, data):
    x, R = data
    exact = make(method=method)
    g64 = grads(exact, x, R)
    layer = FixedPoint(D, H, dtype=np.float32, method=method, tol=1e-5, neumann_terms=100, truncate=100)
    for k, p in layer.params.items():
        p[...] = exact.params[k]
    h, _, cache = layer.forward(x.astype(np.float32))
    dx, _ = layer.backward(R.astype(np.float32), (), cache)
    assert h.dtype == dx.dtype == layer.grads["W_hh"].dtype == np.float32
    g32 = np.concatenate([layer.grads[k].ravel() for k in ("W_ih", "W_hh", "b")] + [dx.ravel()])
    assert _relative_error(g32.astype(np.float64), g64) < 1e-3


@pytest.mark.parametrize("kwargs,name", [
    (dict(activation="softplus"), "activation"), (dict(damping=0.0), "damping"),
    (dict(damping=1.5), "damping"), (dict(method="adam"), "method"), (dict(max_iter=0), "max_iter"),
    (dict(steps=-1), "steps"), (dict(tol="small"), "tol"), (dict(neumann_terms=0), "neumann_terms"),
    (dict(dtype=np.int32), "dtype"), (dict(input_size=0), "input_size"), (dict(init_hh="nope"), "init_hh"),
    (dict(rng=3), "rng"),
])
def test_bad_constructor_arguments_name_the_argument(kwargs, name):
    args = {"input_size": D, "hidden_size": H, **kwargs}
    with pytest.raises((TypeError, ValueError), match=name):
        FixedPoint(**args)


@pytest.mark.parametrize("kwargs,name", [
    (dict(damping=True), "damping"), (dict(damping="0.5"), "damping"), (dict(tol=[1e-6]), "tol"),
    (dict(recurrent_gain=None), "recurrent_gain"), (dict(backward_tol=False), "backward_tol"),
])
def test_non_numbers_are_type_errors(kwargs, name):
    # A bool is not a number here: damping=True used to pass as 1.0.
    got = type(next(iter(kwargs.values()))).__name__
    with pytest.raises(TypeError, match=rf"{name}: expected a number in .*\({got}\)"):
        FixedPoint(2, 3, **kwargs)


def test_bad_inputs_name_the_argument(data):
    x, R = data
    layer = make()
    with pytest.raises(TypeError, match="x: expected dtype float64"):
        layer.forward(x.astype(np.float32))
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\)"):
        layer.forward(np.ones((B, D + 1)))
    with pytest.raises(TypeError, match="x: expected a numpy array"):
        layer.forward([[1.0, 2.0, 3.0]])
    _, _, cache = layer.forward(x)
    with pytest.raises(ValueError, match=r"dy: expected shape \(3, 4\)"):
        layer.backward(np.ones((B, H + 1)), (), cache)
    with pytest.raises(TypeError, match="dy"):
        layer.backward(R.astype(np.float32), (), cache)
    layer.method = "tbptt"                                      # after the forward pass
    with pytest.raises(ValueError, match="method: 'tbptt' must be set before the forward pass"):
        layer.backward(R, (), cache)
    layer.method = "newton"
    with pytest.raises(ValueError, match="method: expected one of"):
        layer.forward(x)


def test_any_leading_shape_and_fit_train_it():
    layer = make(method="gmres", tol=1e-8, backward_tol=1e-8)
    xs = np.random.default_rng(0).normal(size=(2, 3, D))
    ys, _, cache = layer.forward_seq(xs, ())
    dxs, _ = layer.backward_seq(np.ones_like(ys), (), cache)
    assert ys.shape == (2, 3, H) and dxs.shape == xs.shape
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, D))
    y = np.sin(x @ rng.normal(size=(D, 2)))
    model = rnnbp.Sequential(layer, rnnbp.Linear(H, 2, seed=0))
    hist = rnnbp.fit(model, (x, y), loss=rnnbp.losses.mse, optimizer=rnnbp.optim.Adam(model, lr=1e-2),
                     epochs=20, batch_size=16, progress=False)
    assert hist.loss[-1] < 0.5 * hist.loss[0]
