"""Every loss in rnnbp.losses speaks one protocol: loss(outputs, targets, mask) -> (value, doutputs),
the mask positional, and each one plugs into fit, evaluate and train_step the same way."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbp
from rnnbp import losses

T, B, C = 6, 4, 3


def _case(name: str, dtype=np.float64):
    """(outputs, targets, mask, target) for each loss: the shape of supervision it takes."""
    rng = np.random.default_rng(1)
    out = rng.normal(size=(T, B, C)).astype(dtype)
    mask = np.arange(T)[:, None] < np.array([6, 5, 3, 4])
    if name == "mse":
        return out, rng.normal(size=(T, B, C)).astype(dtype), mask, "every"
    if name == "softmax_cross_entropy":
        return out, rng.integers(0, C, size=(T, B)), mask, "every"
    if name == "binary_cross_entropy":
        return out, rng.integers(0, 2, size=(T, B, C)).astype(dtype), mask, "every"
    if name == "ctc":
        return out, [np.array([1]), np.array([2, 1]), np.array([], int), np.array([1, 1])], mask, "sequence"
    raise AssertionError(f"a new loss {name!r}: add its case here")


@pytest.mark.parametrize("name", losses.__all__)
def test_called_positionally_with_a_mask(name):
    loss = getattr(losses, name)
    out, targets, mask, _ = _case(name)
    value, d = loss(out, targets, mask)                     # the mask is the third positional argument
    assert isinstance(value, float) and np.isfinite(value)
    assert d.shape == out.shape and d.dtype == out.dtype
    assert (d[~mask] == 0).all()                            # masked steps get an exact zero gradient
    poisoned = out.copy()
    poisoned[~mask] = np.nan                                # and are never looked at
    value2, d2 = loss(poisoned, targets, mask)
    assert value2 == value and np.array_equal(d2, d)
    assert loss(out, targets, None)[0] == loss(out, targets)[0]


@pytest.mark.parametrize("name", losses.__all__)
def test_gradient_is_the_derivative_of_the_value(name):
    loss = getattr(losses, name)
    out, targets, mask, _ = _case(name)
    _, d = loss(out, targets, mask)
    R = np.random.default_rng(2).normal(size=out.shape)
    h = 1e-6
    num = (loss(out + h * R, targets, mask)[0] - loss(out - h * R, targets, mask)[0]) / (2 * h)
    assert num == pytest.approx(float(np.sum(d * R)), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", losses.__all__)
def test_every_loss_plugs_into_fit_and_evaluate_without_a_wrapper(name, dtype):
    loss = getattr(losses, name)
    out, targets, mask, target = _case(name, dtype)
    xs = np.random.default_rng(3).normal(size=(T, B, 2)).astype(dtype)
    model = rnnbp.Sequential(rnnbp.GRU(2, 5, seed=0, dtype=dtype), rnnbp.Linear(5, C, seed=1, dtype=dtype))
    hist = rnnbp.fit(model, (xs, targets, mask), loss=loss, target=target, epochs=2, batch_size=3,
                     optimizer=rnnbp.optim.Adam(model, lr=1e-2), progress=False)
    assert len(hist.loss) == 2 and all(np.isfinite(hist.loss))
    value, _ = rnnbp.evaluate(model, (xs, targets, mask), loss, target=target)
    want, _ = loss(rnnbp.predict(model, xs, mask), targets, mask)
    assert value == pytest.approx(want, rel=1e-12)
    step = rnnbp.train_step(model, (xs, targets, mask), loss, None, target=target)
    assert step.loss == pytest.approx(want, rel=1e-12)
