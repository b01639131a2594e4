"""Static layers and Sequential: gradients, fast path vs step loop, protocol rules."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import rnnbp
from tests.helpers import random_biases


STATIC = {
    "linear": lambda: rnnbp.Linear(4, 3, seed=0),
    "linear-nobias": lambda: rnnbp.Linear(4, 3, bias=False, seed=0),
    "tanh": lambda: rnnbp.Tanh(),
    "sigmoid": lambda: rnnbp.Sigmoid(),
    "relu": lambda: rnnbp.ReLU(),
    "dropout-eval": lambda: rnnbp.Dropout(0.3, seed=0).eval(),
    "reshape-conv": lambda: rnnbp.Sequential(rnnbp.Reshape((1, 2, 2)), rnnbp.Conv2D(1, 2, 2, seed=0),
                                             rnnbp.Flatten(), rnnbp.Linear(2, 3, seed=1)),
    "mlp": lambda: rnnbp.Sequential(rnnbp.Linear(4, 6, seed=0), rnnbp.Tanh(),
                                    rnnbp.Linear(6, 3, seed=1), rnnbp.Sigmoid()),
}


@pytest.fixture(params=sorted(STATIC))
def static_layer(request):
    layer = STATIC[request.param]()
    random_biases(layer, np.random.default_rng(1))
    return layer


def test_gradcheck_step_and_sequence(static_layer):
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(5, 3, 4))
    if isinstance(static_layer, rnnbp.ReLU):
        xs[np.abs(xs) < 1e-3] = 0.5  # keep away from the kink
    assert rnnbp.gradcheck(static_layer, xs).worst < 1e-6
    assert rnnbp.gradcheck(static_layer, xs[0], step=True).worst < 1e-6


def test_gradcheck_masked(static_layer):
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(5, 3, 4))
    mask = np.ones((5, 3), bool)
    mask[2:, 0] = False
    mask[:, 2] = False
    res = rnnbp.gradcheck(static_layer, xs, mask=mask)
    assert res.worst < 1e-6
    assert np.all(res.analytic["xs"][~mask] == 0)


def test_fast_path_equals_step_path(static_layer):
    """``unroll(path="fast")`` (one call over all T steps) equals ``path="step"`` (T calls)."""
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(6, 2, 4))
    mask = rng.random((6, 2)) > 0.3
    for m in (None, mask):
        fast = rnnbp.unroll(static_layer, xs, mask=m)
        step = rnnbp.unroll(static_layer, xs, mask=m, path="step")
        np.testing.assert_allclose(fast.outputs, step.outputs, rtol=0, atol=1e-12)
        dys = rng.normal(size=fast.outputs.shape)
        static_layer.zero_grad()
        dxs, _ = fast.backward(dys)
        g = {k: v.copy() for k, v in static_layer.grads.items()}
        static_layer.zero_grad()
        dxs_step, _ = step.backward(dys)
        np.testing.assert_allclose(dxs, dxs_step, rtol=0, atol=1e-12)
        for k in g:
            np.testing.assert_allclose(g[k], static_layer.grads[k], rtol=0, atol=1e-12)


def test_two_backward_calls_double_grads(static_layer):
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(4, 3, 4))
    graph = rnnbp.unroll(static_layer, xs)
    dys = rng.normal(size=graph.outputs.shape)
    static_layer.zero_grad()
    graph.backward(dys)
    once = {k: v.copy() for k, v in static_layer.grads.items()}
    graph.backward(dys)
    for k, v in static_layer.grads.items():
        np.testing.assert_array_equal(v, 2 * once[k])


def test_zero_grad_in_place(static_layer):
    held = dict(static_layer.grads)
    for g in held.values():
        g += 1
    static_layer.zero_grad()
    for k, g in static_layer.grads.items():
        assert g is held[k] and not g.any()


def test_float32_stays_float32():
    model = rnnbp.Sequential(rnnbp.Linear(4, 5, dtype=np.float32, seed=0), rnnbp.Tanh(),
                             rnnbp.Dropout(0.2, seed=0), rnnbp.Linear(5, 2, dtype=np.float32, seed=1),
                             rnnbp.Sigmoid(), rnnbp.ReLU())
    xs = np.random.default_rng(0).normal(size=(3, 2, 4)).astype(np.float32)
    graph = rnnbp.unroll(model, xs)
    assert graph.outputs.dtype == np.float32
    dxs, _ = graph.backward(np.ones_like(graph.outputs))
    assert dxs.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_sequential_shares_arrays_and_names():
    a, b = rnnbp.Linear(2, 3, seed=0), rnnbp.Linear(3, 1, seed=1)
    model = rnnbp.Sequential(a, rnnbp.ReLU(), b)
    assert set(model.params) == {"0.W", "0.b", "2.W", "2.b"}
    assert model.params["0.W"] is a.params["W"] and model.grads["2.b"] is b.grads["b"]
    assert [n for n, _ in model.leaves()] == ["0", "1", "2"]
    nested = rnnbp.Sequential(model, rnnbp.Linear(1, 1, seed=2))
    assert nested.params["0.2.W"] is b.params["W"]
    assert [n for n, _ in nested.leaves()] == ["0.0", "0.1", "0.2", "1"]


def test_sequential_rejects_mismatched_sizes_and_dtypes():
    with pytest.raises(ValueError, match=r"layers\[2\]: expected input_size 3"):
        rnnbp.Sequential(rnnbp.Linear(2, 3), rnnbp.Tanh(), rnnbp.Linear(4, 1))
    with pytest.raises(TypeError, match="one dtype"):
        rnnbp.Sequential(rnnbp.Linear(2, 3), rnnbp.Linear(3, 1, dtype=np.float32))
    with pytest.raises(TypeError, match="rnnbp.Layer"):
        rnnbp.Sequential(rnnbp.Linear(2, 3), "tanh")
    with pytest.raises(ValueError, match="at least one"):
        rnnbp.Sequential()


def test_dropout_inverted_scaling_and_seed():
    x = np.ones((2000, 10))
    y1, _, _ = rnnbp.Dropout(0.25, seed=7).forward(x, ())
    y2, _, _ = rnnbp.Dropout(0.25, seed=7).forward(x, ())
    np.testing.assert_array_equal(y1, y2)
    assert set(np.unique(y1)) == {0.0, 1 / 0.75}
    assert abs((y1 == 0).mean() - 0.25) < 0.01
    assert abs(y1.mean() - 1.0) < 0.02  # expectation preserved
    drop = rnnbp.Dropout(0.25, seed=7).eval()
    assert drop.forward(x, ())[0] is x
    with pytest.raises(ValueError, match=r"p: expected a number in \[0, 1\)"):
        rnnbp.Dropout(1.0)


def test_dropout_backward_uses_the_forward_mask():
    drop = rnnbp.Dropout(0.5, seed=3)
    x = np.random.default_rng(0).normal(size=(4, 6))
    y, _, cache = drop.forward(x, ())
    dx, _ = drop.backward(np.ones_like(y), (), cache)
    np.testing.assert_array_equal(dx == 0, y == 0)


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(all="raise"):
        y, _, _ = rnnbp.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]), ())
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])


def test_linear_errors_name_argument():
    layer = rnnbp.Linear(3, 2)
    with pytest.raises(ValueError, match=r"x: expected shape \(\.\.\., 3\), got \(4, 5\)"):
        layer.forward(np.zeros((4, 5)), ())
    with pytest.raises(TypeError, match="x: expected dtype float64, got float32"):
        layer.forward(np.zeros((4, 3), np.float32), ())
    with pytest.raises(ValueError, match="input_size: expected a positive integer"):
        rnnbp.Linear(0, 2)
    with pytest.raises(TypeError, match="dtype: expected float64 or float32"):
        rnnbp.Linear(2, 2, dtype=np.int32)


@settings(max_examples=25, deadline=None)
@given(D=st.integers(1, 6), O=st.integers(1, 6), B=st.integers(1, 4), T=st.integers(1, 4))
def test_linear_matches_plain_numpy(D, O, B, T):
    layer = rnnbp.Linear(D, O, seed=D * 10 + O)
    layer.params["b"][...] = np.arange(O)
    xs = np.random.default_rng(0).normal(size=(T, B, D))
    ys, _, _ = layer.forward_seq(xs, ())
    np.testing.assert_allclose(ys, xs @ layer.params["W"] + layer.params["b"], rtol=1e-13)


def test_sizes_read_through_activations_and_stop_at_image_layers():
    mlp = rnnbp.Sequential(rnnbp.Tanh(), rnnbp.Linear(3, 4), rnnbp.Dropout(0.1), rnnbp.ReLU())
    assert (mlp.input_size, mlp.output_size) == (3, 4)
    conv = rnnbp.Sequential(rnnbp.Conv2D(1, 2, 3), rnnbp.Flatten(), rnnbp.Linear(8, 2))
    assert (conv.input_size, conv.output_size) == (None, 2)
    flat = rnnbp.Sequential(rnnbp.Reshape((1, 4, 4)), rnnbp.Conv2D(1, 2, 3), rnnbp.Flatten())
    assert (flat.input_size, flat.output_size) == (16, None)
    xs = np.zeros((1, 5, 1, 4, 4))
    assert rnnbp.unroll(rnnbp.Sequential(rnnbp.Conv2D(1, 2, 3), rnnbp.Flatten(), rnnbp.Linear(8, 2)),
                        xs).outputs.shape == (1, 5, 2)
    with pytest.raises(ValueError, match=r"shape: expected a tuple of positive integers"):
        rnnbp.Reshape((0, 3))


def test_image_model_trains_on_flat_static_data():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 36))
    labels = (xs[:, :18].sum(axis=1) > 0).astype(int)
    model = rnnbp.Sequential(rnnbp.Reshape((1, 6, 6)), rnnbp.Conv2D(1, 4, 3, seed=0), rnnbp.ReLU(),
                             rnnbp.MaxPool2D(2), rnnbp.Flatten(), rnnbp.Linear(16, 2, seed=1))
    hist = rnnbp.fit(model, (xs, labels), loss=rnnbp.losses.softmax_cross_entropy,
                     optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=40, metric=rnnbp.accuracy,
                     progress=False)
    assert hist.metric[-1] > 0.9


def test_summary_lists_every_leaf_and_the_total():
    import io
    model = rnnbp.Sequential(rnnbp.Embedding(10, 3, seed=0), rnnbp.LSTM(3, 8, seed=1),
                             rnnbp.Dropout(0.1), rnnbp.Linear(8, 2, seed=2))
    out = io.StringIO()
    model.summary(file=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["layer", "type", "output", "state", "parameters"]
    rows = [line.split() for line in lines[1:]]
    assert rows[0] == ["0", "Embedding", "3", "-", "30"]
    assert rows[1] == ["1", "LSTM", "8", "(8,", "8)", str(4 * 8 * (3 + 8 + 1))]
    assert rows[2] == ["2", "Dropout", "same", "-", "0"]
    assert rows[3] == ["3", "Linear", "2", "-", "18"]
    assert rows[4] == ["total", str(model.num_params)] and model.num_params == 30 + 384 + 18
