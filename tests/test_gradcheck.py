"""rnnbp.gradcheck: the documented relative error, and a check that catches one wrong element.

``GradcheckResult.errors`` is documented as, per array,
``max|a - n| / max(max|a|, max|n|, 1e-8)`` for analytic ``a`` and numeric
``n``: the worst element's error relative to the gradient's scale. A mean
over the elements in place of the max would dilute one wrong element by the
array's size and let a broken backward pass; these tests pin the max.
"""

import numpy as np
import pytest

import rnnbp


def _sum_loss(ys):
    """loss = sum(ys): its output gradient is all ones."""
    return float(ys.sum()), np.ones_like(ys)


def test_relative_error_is_the_worst_element_over_the_larger_scale_on_a_hand_made_example():
    # y = x W + b with x = [1, 2] and loss sum(y): dW = [[1], [2]], db = [1], dx = W.T.
    layer = rnnbp.Linear(2, 1, seed=0)
    layer.params["W"][...] = [[3.0], [-4.0]]
    layer.params["b"][...] = [0.5]
    x = np.array([[1.0, 2.0]])
    good = rnnbp.gradcheck(layer, x, loss=_sum_loss, step=True)
    np.testing.assert_allclose(good.numeric["W"], [[1.0], [2.0]], atol=1e-8)
    np.testing.assert_allclose(good.analytic["x"], [[3.0, -4.0]], atol=1e-12)
    assert good.worst < 1e-8 and good.passed()

    class WrongW(rnnbp.Linear):
        def backward(self, dy, dstate_next, cache):
            out = super().backward(dy, dstate_next, cache)
            self.grads["W"][0, 0] += 0.5  # analytic dW = [[1.5], [2]], true [[1], [2]]
            return out

    wrong = WrongW(2, 1, seed=0)
    wrong.params["W"][...] = layer.params["W"]
    wrong.params["b"][...] = layer.params["b"]
    result = rnnbp.gradcheck(wrong, x, loss=_sum_loss, step=True)
    np.testing.assert_allclose(result.analytic["W"], [[1.5], [2.0]], atol=1e-12)
    # max|a - n| = 0.5 (one element); scale = max(max|a|, max|n|) = max(2, 2) = 2.
    # (A mean over the two elements would give 0.25 / 2 = 0.125.)
    assert result.errors["W"] == pytest.approx(0.5 / 2.0, abs=1e-8)
    assert result.errors["b"] < 1e-8 and result.errors["x"] < 1e-8
    assert result.worst == result.errors["W"] and not result.passed()


def test_relative_error_has_a_floor_for_an_all_zero_gradient():
    # With loss = sum(y * 0) every gradient is zero; an error of 1e-9 in one
    # element is then measured against the floor 1e-8, not divided by zero.
    class Off(rnnbp.Linear):
        def backward(self, dy, dstate_next, cache):
            out = super().backward(dy, dstate_next, cache)
            self.grads["b"][0] += 1e-9
            return out

    layer = Off(2, 3, seed=0)
    result = rnnbp.gradcheck(layer, np.array([[1.0, 2.0]]), step=True,
                             loss=lambda ys: (0.0 * float(ys.sum()), np.zeros_like(ys)))
    assert result.errors["W"] == 0.0
    assert result.errors["b"] == pytest.approx(1e-9 / 1e-8, rel=1e-6)


@pytest.mark.parametrize("step", [False, True], ids=["sequence", "step"])
def test_errors_follow_the_documented_formula_for_every_array(step):
    rng = np.random.default_rng(3)
    cell = rnnbp.LSTM(3, 4, seed=1)
    for p in cell.params.values():
        p[...] += rng.normal(scale=0.1, size=p.shape)
    xs = rng.normal(size=(2, 3) if step else (4, 2, 3))
    result = rnnbp.gradcheck(cell, xs, step=step)
    assert set(result.errors) == set(cell.params) | {"x" if step else "xs", "state[0]", "state[1]"}
    for name, err in result.errors.items():
        a, n = result.analytic[name], result.numeric[name]
        scale = max(np.abs(a).max(), np.abs(n).max(), 1e-8)
        assert err == pytest.approx(np.abs(a - n).max() / scale, rel=1e-12, abs=1e-300), name
    assert result.passed()


class _ElmanWrongInOneElement(rnnbp.Elman):
    """An Elman cell whose backward adds 3e-5 to one element of ``grads["W_hh"]``."""

    error = 3e-5

    def backward(self, dy, dstate_next, cache):  # the step path (gradcheck(step=True))
        out = super().backward(dy, dstate_next, cache)
        if not getattr(self, "_in_seq", False):
            self.grads["W_hh"][1, 2] += self.error
        return out

    def backward_seq(self, dys, dstate_T, cache, **kwargs):  # the sequence path (unroll)
        self._in_seq = True
        try:
            out = super().backward_seq(dys, dstate_T, cache, **kwargs)
        finally:
            self._in_seq = False
        self.grads["W_hh"][1, 2] += self.error
        return out


@pytest.mark.parametrize("step", [False, True], ids=["sequence", "step"])
def test_gradcheck_fails_a_backward_wrong_in_a_single_element(step):
    """A 3e-5 error in one of W_hh's 144 elements fails at the default tolerance.

    Averaged over the array it would be ~2e-7 of the gradient's scale and pass.
    """
    rng = np.random.default_rng(0)
    cell = _ElmanWrongInOneElement(3, 12, seed=0)
    xs = rng.normal(size=(3, 3) if step else (6, 3, 3))
    state = (0.5 * rng.normal(size=(3, 12)),)  # non-zero, so one step's dW_hh = h.T @ dz is too
    result = rnnbp.gradcheck(cell, xs, state=state, step=step)
    diff = result.analytic["W_hh"] - result.numeric["W_hh"]
    assert abs(diff[1, 2] - 3e-5) < 1e-8  # the planted error is there, and nowhere else
    assert np.abs(np.delete(diff.ravel(), 1 * 12 + 2)).max() < 1e-8
    scale = max(np.abs(result.analytic["W_hh"]).max(), np.abs(result.numeric["W_hh"]).max())
    assert result.errors["W_hh"] == pytest.approx(3e-5 / scale, rel=1e-3)
    assert result.errors["W_hh"] > 1e-6
    assert not result.passed()
    assert max(v for k, v in result.errors.items() if k != "W_hh") < 1e-6

    # the same cell with a correct backward passes
    cell_ok = rnnbp.Elman(3, 12, seed=0)
    assert rnnbp.gradcheck(cell_ok, xs, state=state, step=step).passed()
