"""``rnnbp.activations``: f, f' from the output, and sup |f'| agree with each other and with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbp import activations

NAMES = list(activations.NAMES)


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def test_names():
    assert activations.NAMES == ("tanh", "relu", "sigmoid")


@pytest.mark.parametrize("name, f", [("tanh", np.tanh), ("relu", lambda a: np.maximum(a, 0)),
                                     ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))])
def test_apply_matches_the_textbook_formula(name, f):
    a = np.random.default_rng(0).normal(scale=3, size=(7, 5))
    np.testing.assert_allclose(activations.apply(name, a), f(a), rtol=1e-14, atol=1e-15)


def test_derivative_matches_central_differences(name):
    rng = np.random.default_rng(1)
    a = rng.normal(scale=2, size=(6, 4))
    a[np.abs(a) < 1e-3] = 0.5                          # keep relu's kink away from the stencil
    eps = 1e-6
    numeric = (activations.apply(name, a + eps) - activations.apply(name, a - eps)) / (2 * eps)
    y = activations.apply(name, a)
    np.testing.assert_allclose(activations.derivative(name, y), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept_and_out_in_place(name, dtype):
    a = np.random.default_rng(2).normal(size=(3, 4)).astype(dtype)
    y = activations.apply(name, a)
    assert y.dtype == dtype and y is not a
    d = activations.derivative(name, y)
    assert d.dtype == dtype
    expected_y, expected_d = y.copy(), d.copy()
    assert activations.apply(name, a, out=a) is a       # in place
    np.testing.assert_array_equal(a, expected_y)
    assert activations.derivative(name, a, out=a) is a  # the derivative may overwrite its input too
    np.testing.assert_array_equal(a, expected_d)


def test_apply_does_not_touch_its_input_without_out(name):
    a = np.linspace(-3, 3, 13)
    before = a.copy()
    activations.apply(name, a)
    activations.derivative(name, a)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_far_out(dtype):
    a = np.array([-1000, -100, 0, 100, 1000], dtype=dtype)
    with np.errstate(all="raise"):
        y = activations.apply("sigmoid", a)
        d = activations.derivative("sigmoid", y)
    np.testing.assert_array_equal(y, np.array([0, 0, 0.5, 1, 1], dtype=dtype))
    assert np.all(np.isfinite(d)) and d[2] == 0.25


def test_gamma_is_the_sup_of_the_derivative(name):
    a = np.linspace(-20, 20, 400_001)                   # includes 0, where tanh' and sigmoid' peak
    sup = np.max(np.abs(activations.derivative(name, activations.apply(name, a))))
    assert activations.gamma(name) == pytest.approx(sup, rel=1e-12)
    assert isinstance(activations.gamma(name), float)


def test_check():
    for n in NAMES:
        assert activations.check(n) == n
    with pytest.raises(ValueError, match=r"activation: expected one of 'tanh', 'relu', 'sigmoid', got 'gelu'"):
        activations.check("gelu")
    with pytest.raises(ValueError, match=r"nonlinearity: expected one of .*got 3"):
        activations.check(3, "nonlinearity")


@pytest.mark.parametrize("fn", [activations.apply, activations.derivative])
def test_unknown_name(fn):
    with pytest.raises(ValueError, match=r"name: expected one of 'tanh', 'relu', 'sigmoid', got 'Tanh'"):
        fn("Tanh", np.zeros(2))
    with pytest.raises(ValueError, match=r"name: expected one of .*got 'softplus'"):
        activations.gamma("softplus")
