"""Tests of rnnbp.clip: global-norm and value clipping."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rnnbp.clip
from rnnbp.clip import clip_grad_norm, clip_grad_value
from rnnbp.errors import NonFiniteError
from rnnbp.protocol import Layer


class _Toy(Layer):
    """A minimal parameter-holding layer (the name starts with _: not registered)."""

    def __init__(self, dtype=np.float64, scale=10.0, seed=0):
        super().__init__(dtype)
        self._add_param("W_hh", np.zeros((3, 4)))
        self._add_param("b", np.zeros(4))
        rng = np.random.default_rng(seed)
        for g in self.grads.values():
            g[...] = scale * rng.normal(size=g.shape)


def global_norm(grads):
    return float(np.linalg.norm(np.concatenate([g.ravel() for g in grads.values()]).astype(np.float64)))


def test_clips_a_layer_in_place():
    model = _Toy()
    arrays_before = dict(model.grads)
    g0 = {n: g.copy() for n, g in model.grads.items()}
    n0 = global_norm(model.grads)
    assert n0 > 1
    norm = clip_grad_norm(model, 1.0)
    assert norm == pytest.approx(n0, rel=1e-14)
    assert all(model.grads[n] is arrays_before[n] for n in g0)
    assert global_norm(model.grads) == pytest.approx(1.0, rel=1e-5)
    assert global_norm(model.grads) <= 1.0
    for n in g0:  # same direction, one common factor
        np.testing.assert_allclose(model.grads[n], g0[n] * (1.0 / (n0 + 1e-6)), rtol=1e-14)


def test_no_op_below_max_norm():
    model = _Toy(scale=0.01)
    g0 = {n: g.copy() for n, g in model.grads.items()}
    norm = clip_grad_norm(model.grads, 10.0)
    assert norm == pytest.approx(global_norm(g0), rel=1e-14)
    for n in g0:
        np.testing.assert_array_equal(model.grads[n], g0[n])
    assert clip_grad_norm({}, 1.0) == 0.0


def test_float32_stays_float32():
    model = _Toy(np.float32)
    norm = clip_grad_norm(model, 1.0)
    assert isinstance(norm, float)
    assert all(g.dtype == np.float32 for g in model.grads.values())
    assert global_norm(model.grads) == pytest.approx(1.0, rel=1e-5)
    # the norm is accumulated in float64: no float32 overflow of the squares
    big = {"w": np.full(4, 1e30, np.float32)}
    assert clip_grad_norm(big, 1.0) == pytest.approx(2e30, rel=1e-6)
    assert big["w"].dtype == np.float32 and np.all(np.isfinite(big["w"]))
    clip_grad_value(model, 0.1)
    assert all(g.dtype == np.float32 and np.abs(g).max() <= np.float32(0.1) for g in model.grads.values())


def test_nonfinite_norm_names_the_parameter():
    grads = {"0.W_ih": np.ones(3), "1.W_hh": np.ones(2), "1.b": np.ones(2)}
    grads["1.W_hh"][1] = np.nan
    grads["1.b"][0] = np.inf
    before = {n: g.copy() for n, g in grads.items()}
    for fn, arg in ((clip_grad_norm, 1.0), (clip_grad_value, 0.5)):
        with pytest.raises(NonFiniteError, match=r"gradient of '1.W_hh' holds nan at index \(1,\)") as info:
            fn(grads, arg)
        assert info.value.layer == "1" and info.value.parameter == "W_hh"
        for n in grads:  # left unchanged
            np.testing.assert_array_equal(grads[n], before[n])
    model = _Toy()
    model.grads["b"][2] = -np.inf
    with pytest.raises(NonFiniteError, match="'b'") as info:
        clip_grad_norm(model, 1.0)
    assert info.value.layer == "" and info.value.parameter == "b"


def test_clip_grad_value():
    grads = {"a": np.array([-3.0, 0.5, 2.0]), "b": np.array([[0.2, -0.9]])}
    ref = grads["a"]
    assert clip_grad_value(grads, 1.0) is None
    assert grads["a"] is ref
    np.testing.assert_array_equal(grads["a"], [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(grads["b"], [[0.2, -0.9]])


def test_validation_errors():
    with pytest.raises(ValueError, match=r"max_norm: expected a number in \(0, inf\), got 0"):
        clip_grad_norm({"a": np.ones(2)}, 0)
    with pytest.raises(TypeError, match=r"max_norm: expected a number in \(0, inf\), got None"):
        clip_grad_norm({"a": np.ones(2)}, None)
    with pytest.raises(ValueError, match="limit: "):
        clip_grad_value({"a": np.ones(2)}, -1.0)
    with pytest.raises(TypeError, match="model: expected a Layer or a dict"):
        clip_grad_norm([np.ones(2)], 1.0)
    with pytest.raises(TypeError, match=r"grads\['a'\]: expected a float64 or float32"):
        clip_grad_norm({"a": np.ones(2, int)}, 1.0)


def test_doctests():
    failures, _ = doctest.testmod(rnnbp.clip)
    assert failures == 0


def test_matches_torch():
    torch = pytest.importorskip("torch")
    model = _Toy()
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in model.grads.values()]
    for t, g in zip(tensors, model.grads.values()):
        t.grad = torch.from_numpy(g.copy())
    ref = torch.nn.utils.clip_grad_norm_(tensors, 2.0)
    norm = clip_grad_norm(model, 2.0)
    assert norm == pytest.approx(ref.item(), rel=1e-12)
    for t, g in zip(tensors, model.grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
grad_dicts = st.dictionaries(
    st.sampled_from(["W_ih", "W_hh", "b", "0.W", "1.b"]),
    arrays(np.float64, st.tuples(st.integers(0, 4), st.integers(1, 3)), elements=finite),
    max_size=4)


@settings(max_examples=60, deadline=None)
@given(grads=grad_dicts, max_norm=st.floats(1e-3, 1e3))
def test_clip_grad_norm_properties(grads, max_norm):
    before = {n: g.copy() for n, g in grads.items()}
    expected = global_norm(grads) if grads else 0.0
    norm = clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(expected, rel=1e-12, abs=1e-300)
    after = global_norm(grads) if grads else 0.0
    assert after <= max_norm * (1 + 1e-6)
    if norm <= max_norm:
        for n in grads:
            np.testing.assert_array_equal(grads[n], before[n])
    else:
        scale = max_norm / (norm + 1e-6)
        for n in grads:
            np.testing.assert_allclose(grads[n], before[n] * scale, rtol=1e-14, atol=0)


@settings(max_examples=40, deadline=None)
@given(grads=grad_dicts, limit=st.floats(1e-3, 1e3))
def test_clip_grad_value_properties(grads, limit):
    before = {n: g.copy() for n, g in grads.items()}
    clip_grad_value(grads, limit)
    for n in grads:
        assert np.all(np.abs(grads[n]) <= limit)
        np.testing.assert_array_equal(grads[n], np.clip(before[n], -limit, limit))
