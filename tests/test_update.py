"""rnnbp.train_step (rnnbp/update.py): one step equals its parts done by hand.

The independent computation is the data flow of docs/bptt.md written out:
unroll, the loss on the outputs the target selects, full BPTT into grads,
the global norm, clipping by hand, and p -= lr * g.
"""

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse, softmax_cross_entropy
from tests.helpers import random_biases


def model_and_data(seed=0, T=7, B=5, D=3, H=6, O=2):
    rng = np.random.default_rng(seed)
    model = rnnbp.Sequential(rnnbp.GRU(D, H, seed=seed), rnnbp.Linear(H, O, seed=seed + 1))
    random_biases(model, rng)
    return model, rng.normal(size=(T, B, D)), rng


def by_hand(model, xs, dys_of_outputs, lr, clip):
    """(loss, grad_norm, new params) of one SGD step, computed without train_step."""
    graph = rnnbp.unroll(model, xs)
    value, dys = dys_of_outputs(graph.outputs)
    model.zero_grad()
    graph.backward(dys)
    norm = float(np.sqrt(sum(np.sum(g * g) for g in model.grads.values())))
    scale = clip / (norm + 1e-6) if clip is not None and norm > clip else 1.0   # PyTorch's rule
    new = {k: p - lr * scale * model.grads[k] for k, p in model.params.items()}
    return value, norm, new


@pytest.mark.parametrize("clip", [None, 1e-3, 1e6])
def test_target_every_is_unroll_loss_backward_clip_update(clip):
    model, xs, rng = model_and_data()
    ys = rng.normal(size=xs.shape[:2] + (2,))
    value, norm, new = by_hand(model, xs, lambda out: mse(out, ys), 0.1, clip)
    step = rnnbp.train_step(model, (xs, ys), mse, rnnbp.optim.SGD(model, lr=0.1), clip=clip)
    assert step.loss == pytest.approx(value, rel=1e-14) and step.grad_norm == pytest.approx(norm, rel=1e-12)
    assert step.clipped == (clip is not None and norm > clip)
    for k, p in model.params.items():
        np.testing.assert_allclose(p, new[k], rtol=1e-13, atol=1e-15)


def test_target_last_scores_each_sequences_last_valid_step():
    model, xs, rng = model_and_data(seed=1)
    T, B = xs.shape[:2]
    lengths = np.array([7, 3, 5, 1, 6])
    mask = np.arange(T)[:, None] < lengths[None, :]
    labels = rng.integers(0, 2, size=B)

    def loss_at_last(out):
        last = out[lengths - 1, np.arange(B)]
        value, dlast = softmax_cross_entropy(last, labels)
        dys = np.zeros_like(out)
        dys[lengths - 1, np.arange(B)] = dlast
        return value, dys

    graph = rnnbp.unroll(model, xs, mask=mask)
    value, dys = loss_at_last(graph.outputs)
    model.zero_grad()
    graph.backward(dys)
    expected = {k: g.copy() for k, g in model.grads.items()}
    step = rnnbp.train_step(model, (xs, labels, mask), softmax_cross_entropy, None, target="last")
    assert step.loss == pytest.approx(value, rel=1e-14)
    for k in expected:
        np.testing.assert_allclose(model.grads[k], expected[k], rtol=1e-12, atol=1e-15)


def test_without_optimizer_parameters_stay_and_gradients_are_this_steps_alone():
    model, xs, rng = model_and_data(seed=2)
    ys = rng.normal(size=xs.shape[:2] + (2,))
    before = {k: p.copy() for k, p in model.params.items()}
    rnnbp.train_step(model, (xs, ys), mse, None)
    first = {k: g.copy() for k, g in model.grads.items()}
    rnnbp.train_step(model, (xs, ys), mse, None)                  # zeroes first: no doubling
    for k in before:
        assert np.array_equal(model.params[k], before[k])
        assert np.array_equal(model.grads[k], first[k])


def test_loss_from_leaves_the_earlier_outputs_without_loss():
    model, xs, rng = model_and_data(seed=3)
    ys = rng.normal(size=(4,) + xs.shape[1:2] + (2,))             # targets of the last 4 of 7 steps
    step = rnnbp.train_step(model, (xs, ys), mse, None, loss_from=3)
    value, dys = mse(step.graph.outputs[3:], ys)
    assert step.loss == pytest.approx(value, rel=1e-14)
    graph = rnnbp.unroll(model, xs)
    full = np.zeros_like(graph.outputs)
    full[3:] = dys
    grads = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    graph.backward(full)
    for k in grads:
        np.testing.assert_allclose(grads[k], model.grads[k], rtol=1e-12, atol=1e-15)


def test_nonfinite_loss_leaves_parameters_unchanged_and_names_the_step():
    model, xs, rng = model_and_data(seed=4)
    ys = rng.normal(size=xs.shape[:2] + (2,))
    model.params["1.b"][...] = 1e300                             # outputs fine, their squares overflow
    before = {k: p.copy() for k, p in model.params.items()}
    with pytest.raises(rnnbp.NonFiniteError, match=r"loss is inf.*\(t, b\) = \(0, 0\)"):
        rnnbp.train_step(model, (xs, ys), mse, rnnbp.optim.SGD(model, lr=0.1))
    assert all(np.array_equal(model.params[k], before[k]) for k in before)


def test_step_path_and_fast_path_give_the_same_step():
    results = []
    for path in ("fast", "step"):
        model, xs, rng = model_and_data(seed=5)
        ys = rng.normal(size=xs.shape[:2] + (2,))
        step = rnnbp.train_step(model, (xs, ys), mse, rnnbp.optim.Adam(model, lr=1e-2), clip=0.5, path=path)
        results.append((step.loss, step.grad_norm, {k: p.copy() for k, p in model.params.items()}))
    (l1, n1, p1), (l2, n2, p2) = results
    assert l1 == pytest.approx(l2, rel=1e-12) and n1 == pytest.approx(n2, rel=1e-12)
    for k in p1:
        np.testing.assert_allclose(p1[k], p2[k], rtol=1e-12, atol=1e-14)
