"""Tests of rnnbp.losses: finite differences, masks, stability, dtypes, errors, PyTorch."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import rnnbp.losses
from rnnbp.errors import NonFiniteError
from rnnbp.losses import binary_cross_entropy, mse, softmax_cross_entropy

SHAPES = [(4, 3, 5), (3, 5)]
LOSSES = ["mse", "softmax_cross_entropy", "binary_cross_entropy"]


def make_case(name, shape, rng, dtype=np.float64, masked=False):
    """Random (loss_fn, outputs, targets, mask) for a loss and an outputs shape."""
    y = rng.normal(size=shape).astype(dtype)
    lead = shape[:-1]
    if name == "mse":
        fn, t = mse, rng.normal(size=shape).astype(dtype)
    elif name == "softmax_cross_entropy":
        fn, t = softmax_cross_entropy, rng.integers(0, shape[-1], size=lead)
    else:
        fn, t = binary_cross_entropy, rng.uniform(size=shape).astype(dtype)
    mask = None
    if masked:
        mask = rng.uniform(size=lead) < 0.6
        mask.flat[0] = True
        mask.flat[-1] = False
    return fn, y, t, mask


def numerical_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f(x)
        x[i] = old - eps
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_gradient_matches_central_differences(name, shape, masked):
    rng = np.random.default_rng(0)
    fn, y, t, mask = make_case(name, shape, rng, masked=masked)
    loss, dy = fn(y, t, mask)
    assert isinstance(loss, float)
    assert dy.shape == y.shape and dy.dtype == y.dtype
    num = numerical_grad(lambda z: fn(z, t, mask)[0], y.copy())
    rel = np.max(np.abs(num - dy)) / np.max(np.abs(dy))
    assert rel < 1e-7
    if mask is not None:
        assert np.all(dy[~mask] == 0)


@pytest.mark.parametrize("name", LOSSES)
def test_mask_ignores_padding_even_nan(name):
    rng = np.random.default_rng(1)
    fn, y, t, mask = make_case(name, (5, 4, 3), rng, masked=True)
    loss_valid, dy_valid = fn(y[mask], t[mask])   # the valid positions, flattened to (N, O)
    y_pad = y.copy()
    y_pad[~mask] = np.nan
    t_pad = t.copy()
    t_pad[~mask] = -1 if name == "softmax_cross_entropy" else np.nan
    loss, dy = fn(y_pad, t_pad, mask)
    assert loss == pytest.approx(loss_valid, rel=1e-14)
    np.testing.assert_allclose(dy[mask], dy_valid, rtol=1e-14)
    assert np.all(dy[~mask] == 0)


@pytest.mark.parametrize("name", LOSSES)
def test_mean_reduction(name):
    rng = np.random.default_rng(2)
    fn, y, t, _ = make_case(name, (3, 4), rng)
    # doubling the batch with a copy leaves the mean unchanged
    loss, _ = fn(y, t)
    loss2, _ = fn(np.concatenate([y, y]), np.concatenate([t, t]))
    assert loss2 == pytest.approx(loss, rel=1e-14)


@pytest.mark.parametrize("name", LOSSES)
def test_no_valid_element_gives_zero(name):
    rng = np.random.default_rng(3)
    fn, y, t, _ = make_case(name, (2, 3, 4), rng)
    loss, dy = fn(y, t, np.zeros((2, 3), bool))
    assert loss == 0.0 and np.all(dy == 0) and dy.shape == y.shape
    fn, y, t, _ = make_case(name, (0, 4), rng)
    loss, dy = fn(y, t)
    assert loss == 0.0 and dy.shape == (0, 4)


def test_mse_values():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = np.array([[0.0, 2.0], [3.0, 6.0]])
    loss, dy = mse(y, t)
    assert loss == (1 + 4) / 4
    np.testing.assert_array_equal(dy, 2 * (y - t) / 4)


def test_cross_entropy_extreme_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    loss, dz = softmax_cross_entropy(z, np.array([0, 2]))
    # row 0: log-softmax of the label is 0; row 1: log 2
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-14)
    np.testing.assert_allclose(dz, np.array([[0, 0, 0], [0, 0.5, -0.5]]) / 2, atol=1e-300)
    loss, dz = softmax_cross_entropy(z, np.array([1, 0]))
    assert loss == pytest.approx((2000 + 2000 + np.log(2)) / 2, rel=1e-14)
    np.testing.assert_allclose(dz, np.array([[1, -1, 0], [-1, 0.5, 0.5]]) / 2, atol=1e-300)
    assert np.all(np.isfinite(dz))


def test_bce_extreme_logits():
    z = np.array([[1000.0, -1000.0, 1000.0, -1000.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0]])
    loss, dz = binary_cross_entropy(z, t)
    assert loss == pytest.approx(2000 / 4, rel=1e-14)
    np.testing.assert_allclose(dz, np.array([[0, 0, 1, -1]]) / 4, atol=1e-300)
    # soft targets and a fully saturated logit stay finite and exact
    loss, dz = binary_cross_entropy(np.array([[800.0]]), np.array([[0.25]]))
    assert loss == pytest.approx(0.75 * 800, rel=1e-14)
    assert dz[0, 0] == pytest.approx(0.75, rel=1e-14)


def test_bce_accepts_integer_and_bool_targets():
    z = np.array([[0.3, -1.2]])
    a, da = binary_cross_entropy(z, np.array([[1.0, 0.0]]))
    for t in (np.array([[1, 0]]), np.array([[True, False]])):
        b, db = binary_cross_entropy(z, t)
        assert a == b
        np.testing.assert_array_equal(da, db)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_float32_stays_float32(name, shape):
    rng = np.random.default_rng(4)
    fn, y, t, mask = make_case(name, shape, rng, masked=True)
    loss64, dy64 = fn(y, t, mask)
    t32 = t if name == "softmax_cross_entropy" else t.astype(np.float32)
    loss32, dy32 = fn(y.astype(np.float32), t32, mask)
    assert dy32.dtype == np.float32
    assert isinstance(loss32, float)
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dy32, dy64, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", LOSSES)
def test_nonfinite_output_raises_naming_position(name):
    rng = np.random.default_rng(5)
    fn, y, t, _ = make_case(name, (4, 3, 2), rng)
    y[2, 1, 1] = np.nan
    y[3, 0, 0] = np.inf
    with pytest.raises(NonFiniteError, match=rf"{name}: loss is nan.*\(t, b\) = \(2, 1\)") as info:
        fn(y, t)
    assert info.value.step == 2
    mask = np.ones((4, 3), bool)
    mask[2, 1] = False
    with pytest.raises(NonFiniteError, match=r"\(3, 0\)"):
        fn(y, t, mask)
    mask[3, 0] = False
    assert np.isfinite(fn(y, t, mask)[0])
    y2 = y[0].copy()
    y2[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match="b = 1"):
        fn(y2, t[0])


def test_mse_overflow_raises():
    y = np.array([[1e200, 0.0]])
    with pytest.raises(NonFiniteError, match="overflows"):
        mse(y, np.zeros_like(y))


def test_errors_name_the_argument():
    y = np.zeros((2, 3, 4))
    with pytest.raises(TypeError, match="outputs: expected a numpy array"):
        mse([[0.0]], y)
    with pytest.raises(TypeError, match="outputs: expected dtype float64 or float32, got int64"):
        mse(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"targets: expected shape \(2, 3, 4\).*got \(2, 3, 5\)"):
        mse(y, np.zeros((2, 3, 5)))
    with pytest.raises(TypeError, match="targets: expected dtype float64.*got float32"):
        mse(y, np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="targets: expected finite values"):
        mse(y, np.full((2, 3, 4), np.nan))
    with pytest.raises(ValueError, match=r"mask: expected shape \(2, 3\).*got \(3, 2\)"):
        mse(y, y, np.ones((3, 2), bool))
    with pytest.raises(TypeError, match="mask: expected dtype bool, got float64"):
        mse(y, y, np.ones((2, 3)))
    with pytest.raises(TypeError, match="labels: expected an integer dtype"):
        softmax_cross_entropy(y, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels: expected shape \(2, 3\).*got \(2,\)"):
        softmax_cross_entropy(y, np.zeros(2, int))
    labels = np.zeros((2, 3), int)
    labels[1, 2] = 4
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 4\), got 4 at index \(1, 2\)"):
        softmax_cross_entropy(y, labels)
    labels[1, 2] = -1
    with pytest.raises(ValueError, match="got -1"):
        softmax_cross_entropy(y, labels)
    with pytest.raises(ValueError, match=r"targets: expected values in \[0, 1\], got 1.5"):
        binary_cross_entropy(y, np.full((2, 3, 4), 1.5))
    with pytest.raises(ValueError, match="0-d"):
        mse(np.ones(()), np.ones(()))


def test_doctests():
    failures, _ = doctest.testmod(rnnbp.losses)
    assert failures == 0


# -- PyTorch comparison ------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", LOSSES)
def test_matches_torch(name, shape, masked):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    fn, y, t, mask = make_case(name, shape, rng, masked=masked)
    y = y * 5  # reach into the saturated regions too
    loss, dy = fn(y, t, mask)
    sel = np.ones(shape[:-1], bool) if mask is None else mask
    yt = torch.tensor(y, requires_grad=True)
    tt = torch.from_numpy(t[sel])
    ys = yt[torch.from_numpy(sel)]
    if name == "mse":
        ref = F.mse_loss(ys, tt)
    elif name == "softmax_cross_entropy":
        ref = F.cross_entropy(ys, tt)
    else:
        ref = F.binary_cross_entropy_with_logits(ys, tt)
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12, abs=1e-300)
    np.testing.assert_allclose(dy, yt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_infinite_logits():
    # -inf marks an impossible class: harmless unless it is the label
    z = np.array([[0.0, -np.inf, 0.0]])
    loss, dz = softmax_cross_entropy(z, np.array([0]))
    assert loss == pytest.approx(np.log(2), rel=1e-15)
    np.testing.assert_array_equal(dz, [[-0.5, 0.0, 0.5]])
    with pytest.raises(NonFiniteError, match="softmax_cross_entropy: loss is inf"):
        softmax_cross_entropy(z, np.array([1]))
    with pytest.raises(NonFiniteError, match="first non-finite output"):
        softmax_cross_entropy(np.array([[np.inf, 0.0]]), np.array([0]))


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_is_a_fresh_array(name):
    rng = np.random.default_rng(7)
    fn, y, t, mask = make_case(name, (2, 3), rng, masked=True)
    y0, t0 = y.copy(), t.copy()
    _, dy = fn(y, t, mask)
    assert not np.shares_memory(dy, y) and not np.shares_memory(dy, t)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(t, t0)


def test_unsigned_labels_and_extra_leading_dims():
    rng = np.random.default_rng(8)
    z = rng.normal(size=(2, 3, 4, 5))
    labels = rng.integers(0, 5, size=(2, 3, 4)).astype(np.uint8)
    loss, dz = softmax_cross_entropy(z, labels)
    ref, dref = softmax_cross_entropy(z.reshape(-1, 5), labels.reshape(-1).astype(np.int64))
    assert loss == ref
    np.testing.assert_array_equal(dz.reshape(-1, 5), dref)
