"""Tests of rnnbp.conv: Conv2D, MaxPool2D, Flatten."""

from __future__ import annotations

import copy
import doctest
import json

import numpy as np
import pytest

import rnnbp

import rnnbp.conv
from rnnbp.conv import Conv2D, MaxPool2D
from rnnbp.layers import Flatten
from rnnbp.protocol import LAYER_TYPES

EPS = 1e-6
FD_TOL = 1e-6
TORCH_TOL = 1e-12

# (in_channels, out_channels, kernel_size, stride, padding)
CONV_CASES = [
    (2, 3, 3, 1, 0),
    (2, 3, 3, 2, 1),
    (1, 2, (2, 3), (1, 2), (0, 1)),
    (3, 2, 1, 1, 0),
    (2, 2, 3, 3, 2),
    (2, 4, (3, 1), (2, 1), (1, 0)),
]
# (kernel_size, stride)
POOL_CASES = [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), (2, 3)]
# leading dims: one step (B,) and a sequence (T, B)
LEADS = [(3,), (2, 2)]


# -- helpers ------------------------------------------------------------------
def rel_err(a: np.ndarray, n: np.ndarray) -> float:
    """max|a - n| / max(max|a|, max|n|, 1e-8)."""
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0), 1e-8)
    return float(np.abs(a - n).max(initial=0.0) / scale)


def check_layer_gradients(layer, x: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Worst relative errors of backward against central differences (``rnnbp.gradcheck``,
    loss sum(y * R) with random R), for x and every parameter: one step for
    (B, C, H, W) or (C, H, W) inputs, the unrolled sequence for (T, B, C, H, W)."""
    seed = int(rng.integers(2**31))
    return rnnbp.gradcheck(layer, x, step=x.ndim != 5, seed=seed, eps=EPS).errors


def conv_layer(case, rng: np.random.Generator, dtype=np.float64) -> Conv2D:
    C, O, k, s, p = case
    conv = Conv2D(C, O, k, s, p, dtype=dtype, rng=rng)
    conv.params["b"][...] = rng.standard_normal(O)  # random non-zero biases
    return conv


# -- finite differences -------------------------------------------------------
@pytest.mark.parametrize("lead", LEADS, ids=lambda s: f"lead{s}")
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_finite_differences(case, lead):
    rng = np.random.default_rng(0)
    conv = conv_layer(case, rng)
    x = rng.standard_normal(lead + (case[0], 7, 6))
    errors = check_layer_gradients(conv, x, rng)
    assert max(errors.values()) < FD_TOL, errors


@pytest.mark.parametrize("lead", LEADS, ids=lambda s: f"lead{s}")
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_maxpool_finite_differences(case, lead):
    rng = np.random.default_rng(1)
    pool = MaxPool2D(*case)
    x = rng.standard_normal(lead + (2, 7, 8))
    errors = check_layer_gradients(pool, x, rng)
    assert max(errors.values()) < FD_TOL, errors


@pytest.mark.parametrize("lead", LEADS + [()], ids=lambda s: f"lead{s}")
def test_flatten_finite_differences(lead):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(lead + (2, 3, 4))
    flat = Flatten()
    y, _, _ = flat.forward(x, ())
    assert y.shape == lead + (24,)
    assert np.array_equal(y, x.reshape(lead + (-1,)))
    errors = check_layer_gradients(flat, x, rng)
    assert max(errors.values()) < FD_TOL, errors


def test_stack_finite_differences():
    """Conv -> pool -> flatten -> linear on a (T, B, C, H, W) sequence, through rnnbp.unroll."""
    rng = np.random.default_rng(3)
    model = rnnbp.Sequential(conv_layer((2, 3, 3, 1, 1), rng), MaxPool2D(2), Flatten(),
                             rnnbp.Linear(27, 2, seed=4))
    x = rng.standard_normal((2, 2, 2, 6, 6))
    errors = rnnbp.gradcheck(model, x, eps=EPS).errors
    assert max(errors.values()) < FD_TOL, errors


# -- PyTorch ------------------------------------------------------------------
def _close(a: np.ndarray, b: np.ndarray, tol: float = TORCH_TOL) -> bool:
    return np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max())


@pytest.mark.parametrize("lead", LEADS, ids=lambda s: f"lead{s}")
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_matches_torch(case, lead):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    conv = conv_layer(case, rng)
    x = rng.standard_normal(lead + (case[0], 9, 8))
    y, _, cache = conv.forward(x, ())
    R = rng.standard_normal(y.shape)
    dx, _ = conv.backward(R, (), cache)

    N = int(np.prod(lead))
    xt = torch.tensor(x.reshape(N, *x.shape[-3:]), requires_grad=True)
    Wt = torch.tensor(conv.params["W"], requires_grad=True)
    bt = torch.tensor(conv.params["b"], requires_grad=True)
    yt = F.conv2d(xt, Wt, bt, stride=conv.stride, padding=conv.padding)
    (yt * torch.tensor(R.reshape(yt.shape))).sum().backward()
    assert _close(y.reshape(yt.shape), yt.detach().numpy())
    assert _close(dx.reshape(xt.shape), xt.grad.numpy())
    assert _close(conv.grads["W"], Wt.grad.numpy())
    assert _close(conv.grads["b"], bt.grad.numpy())


@pytest.mark.parametrize("ties", [False, True], ids=["random", "ties"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_maxpool_matches_torch(case, ties):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 2, 9, 8))
    if ties:  # few distinct values: most windows hold several maxima
        x = rng.integers(0, 3, size=x.shape).astype(np.float64)
    pool = MaxPool2D(*case)
    y, _, cache = pool.forward(x, ())
    R = rng.standard_normal(y.shape)
    dx, _ = pool.backward(R, (), cache)

    xt = torch.tensor(x.reshape(6, 2, 9, 8), requires_grad=True)
    yt = F.max_pool2d(xt, pool.kernel_size, pool.stride)
    (yt * torch.tensor(R.reshape(yt.shape))).sum().backward()
    assert _close(y.reshape(yt.shape), yt.detach().numpy())
    assert _close(dx.reshape(xt.shape), xt.grad.numpy())


def test_flatten_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5, 6))
    y, _, _ = Flatten().forward(x, ())
    assert np.array_equal(y, torch.flatten(torch.tensor(x), -3).numpy())


# -- protocol -----------------------------------------------------------------
def all_layers(dtype=np.float64):
    rng = np.random.default_rng(7)
    return [conv_layer((2, 3, 3, 2, 1), rng, dtype), MaxPool2D(3, 2), Flatten()]


@pytest.mark.parametrize("index", range(3), ids=["Conv2D", "MaxPool2D", "Flatten"])
def test_two_backward_calls_double_grads_and_keep_cache(index):
    layer = all_layers()[index]
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 2, 7, 7))
    x_before = x.copy()
    params_before = {k: v.copy() for k, v in layer.params.items()}
    y, _, cache = layer.forward(x, ())
    cache_before = copy.deepcopy(cache)
    R = rng.standard_normal(y.shape)
    grad_ids = {k: id(v) for k, v in layer.grads.items()}
    dx1, _ = layer.backward(R, (), cache)
    once = {k: v.copy() for k, v in layer.grads.items()}
    dx2, _ = layer.backward(R, (), cache)
    assert np.array_equal(dx1, dx2)
    for k, g in layer.grads.items():
        assert id(g) == grad_ids[k]                      # never rebound
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-14, atol=0)
    for a, b in zip(cache, cache_before):                # the cache is never mutated
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    assert np.array_equal(x, x_before)
    for k, v in layer.params.items():                    # forward only reads params
        assert np.array_equal(v, params_before[k])
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads.values())


def test_float32_end_to_end():
    conv, pool, flat = all_layers(np.float32)
    assert conv.params["W"].dtype == np.float32 and conv.grads["b"].dtype == np.float32
    x = np.random.default_rng(9).standard_normal((2, 3, 2, 9, 9)).astype(np.float32)
    h1, _, c1 = conv.forward(x, ())
    h2, _, c2 = pool.forward(h1, ())
    y, _, c3 = flat.forward(h2, ())
    assert h1.dtype == h2.dtype == y.dtype == np.float32
    d2, _ = flat.backward(np.ones_like(y), (), c3)
    d1, _ = pool.backward(d2, (), c2)
    dx, _ = conv.backward(d1, (), c1)
    assert d2.dtype == d1.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv.grads.values())
    # float32 agrees with float64 to single precision
    conv64 = Conv2D(**{**conv.get_config(), "dtype": "float64"})
    for k in conv.params:
        conv64.params[k][...] = conv.params[k]
    y64, _, _ = conv64.forward(x.astype(np.float64), ())
    assert rel_err(h1.astype(np.float64), y64) < 1e-5


def test_masked_sequence():
    """forward_seq/backward_seq on (T, B, C, H, W) zero masked steps and their gradients."""
    rng = np.random.default_rng(10)
    mask = np.array([[True, True, False], [True, False, False]])
    for layer in all_layers():
        xs = rng.standard_normal((2, 3, 2, 7, 7))
        ys, state, cache = layer.forward_seq(xs, (), mask)
        assert state == ()
        y_full, _, _ = layer.forward(xs, ())
        m = mask.reshape(mask.shape + (1,) * (ys.ndim - 2))
        assert np.array_equal(ys, np.where(m, y_full, 0))
        dys = rng.standard_normal(ys.shape)
        layer.zero_grad()
        dxs, dstate = layer.backward_seq(dys, (), cache)
        assert dstate == () and dxs.shape == xs.shape
        assert not dxs[~mask].any()
        grads = {k: v.copy() for k, v in layer.grads.items()}
        layer.zero_grad()
        dxs_ref, _ = layer.backward(np.where(m, dys, 0), (), layer.forward(xs, ())[2])
        assert np.allclose(dxs, dxs_ref, rtol=1e-14, atol=1e-14)
        for k, g in layer.grads.items():
            assert np.allclose(grads[k], g, rtol=1e-14, atol=1e-14)


def test_any_leading_dims():
    rng = np.random.default_rng(11)
    conv = conv_layer((2, 3, 3, 1, 1), rng)
    x = rng.standard_normal((2, 3, 2, 5, 5))
    y, _, _ = conv.forward(x, ())
    y0, _, _ = conv.forward(x[1, 2], ())                 # (C, H, W): no leading dims
    assert y.shape == (2, 3, 3, 5, 5) and y0.shape == (3, 5, 5)
    np.testing.assert_allclose(y[1, 2], y0, rtol=1e-14, atol=1e-14)
    yb, _, _ = conv.forward(x.reshape(6, 2, 5, 5), ())
    np.testing.assert_allclose(y.reshape(yb.shape), yb, rtol=1e-14, atol=1e-14)
    # non-contiguous input
    xt = np.swapaxes(rng.standard_normal((2, 3, 2, 5, 5)), 0, 1)
    np.testing.assert_allclose(conv.forward(xt, ())[0], conv.forward(xt.copy(), ())[0])


def test_protocol_attributes():
    for layer in all_layers():
        assert type(layer).__name__ in LAYER_TYPES
        assert layer.input_size is None and layer.output_size is None
        assert layer.state_sizes == () and layer.initial_state(4) == ()
    conv, pool, flat = all_layers()
    assert conv.num_params == 3 * 2 * 3 * 3 + 3
    assert pool.params == {} and flat.params == {} and pool.dtype is None


@pytest.mark.parametrize("index", range(3), ids=["Conv2D", "MaxPool2D", "Flatten"])
def test_get_config_round_trip(index):
    layer = all_layers()[index]
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = type(layer)(**json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert {k: v.shape for k, v in rebuilt.params.items()} == \
        {k: v.shape for k, v in layer.params.items()}
    assert repr(rebuilt) == repr(layer)


def test_get_config_values():
    conv = Conv2D(3, 4, (3, 5), stride=(1, 2), padding=1, dtype=np.float32)
    assert conv.get_config() == {"in_channels": 3, "out_channels": 4, "kernel_size": [3, 5],
                                 "stride": [1, 2], "padding": 1, "dtype": "float32"}
    assert MaxPool2D(2).get_config() == {"kernel_size": 2, "stride": 2}
    assert Flatten().get_config() == {}


def test_initialisation():
    a = Conv2D(4, 32, 3, seed=5)
    b = Conv2D(4, 32, 3, rng=np.random.default_rng(5))
    assert np.array_equal(a.params["W"], b.params["W"])
    assert a.params["W"].shape == (32, 4, 3, 3) and a.params["b"].shape == (32,)
    assert not a.params["b"].any()
    assert not np.array_equal(a.params["W"], Conv2D(4, 32, 3, seed=6).params["W"])
    c = Conv2D(4, 32, 3, seed=6, rng=np.random.default_rng(5))   # rng wins, as in Linear
    assert np.array_equal(a.params["W"], c.params["W"])
    assert Conv2D(1, 2, 3, dtype="float32", seed=0).params["W"].dtype == np.float32
    std = a.params["W"].std()
    assert 0.8 * np.sqrt(2 / 36) < std < 1.2 * np.sqrt(2 / 36)   # He: sqrt(2 / fan_in)
    state = np.random.get_state()
    Conv2D(1, 1, 1)
    assert np.array_equal(np.random.get_state()[1], state[1])   # never numpy's global RNG


# -- errors -------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, words", [
    ({"in_channels": 0}, ValueError, "in_channels"),
    ({"out_channels": 2.0}, TypeError, "out_channels"),
    ({"kernel_size": 0}, ValueError, "kernel_size"),
    ({"kernel_size": (3, 3, 3)}, ValueError, "kernel_size"),
    ({"stride": "2"}, TypeError, "stride"),
    ({"padding": -1}, ValueError, "padding"),
    ({"dtype": np.int64}, TypeError, "dtype"),
    ({"rng": 3}, TypeError, "rng"),
])
def test_conv_bad_arguments(kwargs, exc, words):
    args = {"in_channels": 2, "out_channels": 3, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match=words):
        Conv2D(**args)


def test_pool_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size"):
        MaxPool2D(0)
    with pytest.raises(TypeError, match="stride"):
        MaxPool2D(2, stride=1.5)


@pytest.mark.parametrize("index", range(3), ids=["Conv2D", "MaxPool2D", "Flatten"])
def test_bad_inputs(index):
    layer = all_layers()[index]
    with pytest.raises(TypeError, match="x: expected a numpy array"):
        layer.forward([[1.0]], ())
    with pytest.raises(ValueError, match=r"x: expected .*\(\.\.\., C, H, W\).*got shape \(2, 7\)"):
        layer.forward(np.zeros((2, 7)), ())
    with pytest.raises(TypeError, match="x: expected dtype"):
        layer.forward(np.zeros((1, 2, 7, 7), dtype=np.int64), ())
    x = np.zeros((1, 2, 7, 7))
    y, _, cache = layer.forward(x, ())
    with pytest.raises(ValueError, match=r"dy: expected the forward output's shape"):
        layer.backward(np.zeros(y.shape + (1,)), (), cache)
    with pytest.raises(TypeError, match="dy: expected dtype float64, got float32"):
        layer.backward(y.astype(np.float32), (), cache)


def test_conv_bad_inputs():
    conv = Conv2D(2, 3, 3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"x: expected 2 channels .* got shape \(4, 3, 8, 8\)"):
        conv.forward(np.zeros((4, 3, 8, 8), np.float32), ())
    with pytest.raises(TypeError, match="x: expected dtype float32, got float64"):
        conv.forward(np.zeros((4, 2, 8, 8)), ())
    with pytest.raises(ValueError, match=r"x: spatial size 2 .* kernel 3"):
        conv.forward(np.zeros((4, 2, 2, 8), np.float32), ())
    with pytest.raises(ValueError, match=r"x: spatial size 2"):
        MaxPool2D(3).forward(np.zeros((4, 2, 8, 2)), ())


def test_docstring_examples():
    result = doctest.testmod(rnnbp.conv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0
