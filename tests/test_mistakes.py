"""Mistakes a newcomer makes, each of which used to pass silently, and every argument check's style.

Each test here failed before the check existed: the call trained nothing,
trained the wrong thing, or died in numpy with a message naming no argument.
"""

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse


def _lstm_model():
    return rnnbp.Sequential(rnnbp.LSTM(1, 4, seed=0), rnnbp.Linear(4, 1, seed=1))


def test_2d_data_to_a_recurrent_model_is_refused_with_both_fixes():
    stream = np.random.default_rng(0).normal(size=(500, 1))
    model = _lstm_model()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    message = r"the model is recurrent .*xs\[:, None\] \(shape \(500, 1, 1\)\).*\(T, N, D\)"
    with pytest.raises(ValueError, match=message):
        rnnbp.fit(model, (stream, stream), loss=mse, optimizer=opt, progress=False)
    with pytest.raises(ValueError, match=r"the model is recurrent"):
        rnnbp.predict(model, np.zeros((20, 1)))
    with pytest.raises(ValueError, match=r"the model is recurrent"):
        rnnbp.evaluate(model, (stream, stream), mse)
    static = rnnbp.Sequential(rnnbp.Linear(3, 4, seed=0), rnnbp.Tanh(), rnnbp.Linear(4, 1, seed=1))
    assert rnnbp.predict(static, np.zeros((20, 3))).shape == (20, 1)      # static (N, D) still works


def test_unroll_hint_for_2d_input_gives_both_readings_one_sequence_first():
    with pytest.raises(ValueError) as info:
        rnnbp.unroll(rnnbp.LSTM(3, 4, seed=0), np.zeros((20, 3)))
    message = str(info.value)
    assert "xs[:, None] (shape (20, 1, 3))" in message and "xs[None] (shape (1, 20, 3))" in message
    assert message.index("xs[:, None]") < message.index("xs[None]")


def test_an_optimizer_built_on_another_model_is_refused():
    a, b = _lstm_model(), _lstm_model()
    xs = np.zeros((5, 4, 1))
    with pytest.raises(ValueError, match=r"optimizer: it updates other arrays than the model's .*SGD\(model"):
        rnnbp.fit(b, (xs, np.zeros((4, 1))), loss=mse, target="last", optimizer=rnnbp.optim.SGD(a, lr=0.1),
                  progress=False)
    with pytest.raises(TypeError, match=r"optimizer: expected an rnnbp.optim optimizer"):
        rnnbp.fit(b, (xs, np.zeros((4, 1))), loss=mse, target="last", optimizer="adam", progress=False)


def test_batch_major_data_is_named_as_such():
    xs = np.zeros((32, 10, 1))                           # (N, T, D): batch-major
    model = _lstm_model()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match=r"xs looks batch-major \(N, T, D\) = \(32, 10, 1\).*xs.transpose\(1, 0, 2\)"):
        rnnbp.fit(model, (xs, np.zeros(32, dtype=int)), loss=mse, target="last", optimizer=opt, progress=False)
    with pytest.raises(ValueError, match=r"xs looks batch-major.*steps first.*xs.transpose\(1, 0, 2\)"):
        rnnbp.fit(model, (xs, np.zeros((10, 32, 1))), loss=mse, target="every", optimizer=opt, progress=False)


@pytest.mark.parametrize("call, words", [
    (lambda m, o, d: rnnbp.fit(m, d, loss=mse, optimizer=o, clip="1", progress=False),
     r"clip: expected a number in \(0, inf\), got '1' \(str\)"),
    (lambda m, o, d: rnnbp.fit(m, d, loss="mse", optimizer=o, progress=False),
     r"loss: expected a function such as rnnbp.losses.mse, got 'mse' \(str\)"),
    (lambda m, o, d: rnnbp.fit(m, d, loss=mse, optimizer=o, metric="accuracy", progress=False),
     r"metric: expected a function"),
    (lambda m, o, d: rnnbp.fit(m, d, loss=mse, optimizer=o, on_nonfinite="ignore", progress=False),
     r"on_nonfinite: expected one of 'raise', 'skip', got 'ignore'"),
    (lambda m, o, d: rnnbp.LSTM(3, 4, seed="0"), r"seed: expected an integer >= 0, got '0' \(str\)"),
    (lambda m, o, d: rnnbp.FixedPoint(2, 3, damping=True), r"damping: .*True"),
    (lambda m, o, d: rnnbp.Dropout("half"), r"p: expected a number in \[0, 1\), got 'half'"),
    (lambda m, o, d: rnnbp.clip_grad_norm(m, True), r"max_norm: expected a number in \(0, inf\), got True"),
])
def test_every_check_names_the_argument(call, words):
    model = _lstm_model()
    data = (np.zeros((5, 4, 1)), np.zeros((5, 4, 1)))
    with pytest.raises((TypeError, ValueError), match=words):
        call(model, rnnbp.optim.SGD(model, lr=0.1), data)


def test_train_step_also_refuses_another_models_optimizer():
    a, b = _lstm_model(), _lstm_model()
    xs, ys = np.zeros((5, 4, 1)), np.zeros((5, 4, 1))
    with pytest.raises(ValueError, match="optimizer: it updates other arrays than the model's"):
        rnnbp.train_step(b, (xs, ys), mse, rnnbp.optim.Adam(a, lr=0.1))
    rnnbp.train_step(b, (xs, ys), mse, rnnbp.optim.Adam(b, lr=0.1))          # its own: fine
