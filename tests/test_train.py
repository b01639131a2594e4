"""fit(): learning, determinism, early stopping, truncation, non-finite handling, errors."""

import io

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse, softmax_cross_entropy
from rnnbp.schedules import StepLR


def _sum_task(N=96, T=8, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, N, 1)).astype(dtype)
    ys = (np.cumsum(xs, axis=0) / 3).astype(dtype)
    return xs, ys


def _model(dtype=np.float64, dropout=0.0):
    layers = [rnnbp.LSTM(1, 12, dtype=dtype, seed=0)]
    if dropout:
        layers.append(rnnbp.Dropout(dropout))
    layers.append(rnnbp.Linear(12, 1, dtype=dtype, seed=1))
    return rnnbp.Sequential(*layers)


def test_learns_a_running_sum_and_records_norms():
    xs, ys = _sum_task()
    model = _model()
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.Adam(model, lr=2e-2),
                     epochs=25, batch_size=32, progress=False)
    assert hist.epochs == 25
    assert hist.loss[-1] < 0.05 * hist.loss[0]
    assert hist.state_grad_norms["0"].shape == (25, 8)
    assert len(hist.grad_norm) == 25 * 3 and not any(hist.clipped)


def test_same_seed_is_bit_identical_and_another_seed_is_not():
    xs, ys = _sum_task()

    def run(seed):
        model = _model(dropout=0.2)
        hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1, momentum=0.9),
                         epochs=3, batch_size=16, seed=seed, clip=1.0, progress=False)
        return hist, {k: p.copy() for k, p in model.params.items()}

    h1, p1 = run(3)
    h2, p2 = run(3)
    h3, p3 = run(4)
    assert h1.loss == h2.loss and h1.grad_norm == h2.grad_norm
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])
    assert h1.loss != h3.loss


def test_static_data_is_plain_backprop():
    """(N, D) data: T = 1, no state — an MLP learns XOR."""
    xs = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64).repeat(8, axis=0)
    labels = np.array([0, 1, 1, 0]).repeat(8)
    model = rnnbp.Sequential(rnnbp.Linear(2, 8, seed=2), rnnbp.Tanh(), rnnbp.Linear(8, 2, seed=3))
    hist = rnnbp.fit(model, (xs, labels), loss=softmax_cross_entropy, optimizer=rnnbp.optim.Adam(model, lr=0.05),
                     epochs=150, batch_size=32, metric=rnnbp.accuracy, progress=False)
    assert hist.metric[-1] == 1.0
    assert rnnbp.predict(model, xs).shape == (32, 2)


def test_target_last_with_variable_lengths():
    """Sequence classification: is the sum of the valid inputs positive?"""
    rng = np.random.default_rng(1)
    T, N = 10, 256
    xs = rng.normal(size=(T, N, 1))
    lengths = rng.integers(3, T + 1, size=N)
    mask = np.arange(T)[:, None] < lengths[None]
    xs[~mask] = 99.0  # padding must never matter
    labels = (np.where(mask[:, :, None], xs, 0).sum(axis=(0, 2)) > 0).astype(int)
    model = rnnbp.Sequential(rnnbp.GRU(1, 16, seed=0), rnnbp.Linear(16, 2, seed=1))
    hist = rnnbp.fit(model, (xs, labels, mask), loss=softmax_cross_entropy, target="last",
                     optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=25, batch_size=64,
                     metric=rnnbp.accuracy, validation=(xs, labels, mask), progress=False)
    assert hist.val_metric[-1] > 0.9
    value, acc = rnnbp.evaluate(model, (xs, labels, mask), softmax_cross_entropy, metric=rnnbp.accuracy,
                                target="last")
    assert value == pytest.approx(hist.val_loss[-1]) and acc == pytest.approx(hist.val_metric[-1])


def test_early_stopping_restores_the_best_epoch():
    xs, ys = _sum_task(N=64)
    vx, vy = _sum_task(N=32, seed=9)
    model = _model()
    snapshots = []
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=2.0),
                     epochs=40, validation=(vx, vy), patience=2, progress=False,
                     callbacks=[lambda e, h: snapshots.append({k: p.copy() for k, p in model.params.items()})])
    assert hist.stopped_early and hist.epochs < 40
    best = snapshots[hist.best_epoch - 1]                # epochs count from 1
    for k, p in model.params.items():
        np.testing.assert_array_equal(p, best[k])


def test_callback_can_stop_and_schedules_step():
    xs, ys = _sum_task(N=32)
    model = _model()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, epochs=10, progress=False,
                     callbacks=[lambda e, h: sched.step(), lambda e, h: e == 3])  # epochs count from 1
    assert hist.epochs == 3 and hist.stopped_early
    assert opt.lr == pytest.approx(0.1 * 0.5 ** 3)


def test_truncated_bptt_in_fit():
    xs, ys = _sum_task(N=32, T=20)
    model = _model()
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.Adam(model, lr=1e-2),
                     epochs=3, batch_size=16, bptt=(5, 10), progress=False)
    assert len(hist.grad_norm) == 3 * 2 * 4  # epochs x batches x windows
    assert hist.state_grad_norms == {}
    with pytest.raises(ValueError, match="bptt: expected k2 >= k1"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), bptt=(5, 3))


def test_float32_trains_and_stays_float32():
    xs, ys = _sum_task(dtype=np.float32)
    model = _model(dtype=np.float32)
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.Adam(model, lr=2e-2),
                     epochs=10, progress=False)
    assert hist.loss[-1] < hist.loss[0]
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert all(g.dtype == np.float32 for g in model.grads.values())
    assert rnnbp.predict(model, xs).dtype == np.float32


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_gradient_names_layer_parameter_and_step():
    xs, ys = _sum_task(N=16, T=6)
    model = rnnbp.Sequential(rnnbp.Elman(1, 4, seed=0), rnnbp.Linear(4, 1, seed=1))

    def bad_loss(outputs, targets, mask):  # a finite value, an infinite gradient at step 3
        value, grad = mse(outputs, targets, mask)
        grad[3, 0] = np.inf
        return value, grad

    with pytest.raises(rnnbp.NonFiniteError) as info:
        rnnbp.fit(model, (xs, ys), loss=bad_loss, optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
    err = info.value
    assert err.layer == "0" and err.parameter in model.layers[0].params
    assert err.step == 3
    assert f"'0.{err.parameter}'" in str(err) and f"at time step {err.step}" in str(err)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_loss_names_the_step_and_skip_policy():
    xs, ys = _sum_task(N=16, T=6)
    model = rnnbp.Sequential(rnnbp.Linear(1, 3, seed=0), rnnbp.Elman(3, 3, activation="relu", seed=1),
                             rnnbp.Linear(3, 1, seed=2))
    model.params["1.W_hh"][...] = 1e200  # relu recurrence explodes after a few steps
    with pytest.raises(rnnbp.NonFiniteError) as info:
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
    assert info.value.layer == "1" and info.value.step is not None and info.value.step >= 1
    before = {k: p.copy() for k, p in model.params.items()}
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1),
                     on_nonfinite="skip", progress=False)
    assert hist.skipped == 1
    for k, p in model.params.items():
        np.testing.assert_array_equal(p, before[k])


def test_progress_bar_prints(monkeypatch):
    xs, ys = _sum_task(N=32)
    model = _model()
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), epochs=2,
              batch_size=16, progress=True)
    text = out.getvalue()
    assert "4/4" in text and "epoch 2/2" in text


def test_errors_name_the_argument():
    xs, ys = _sum_task(N=16)
    model = _model()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    with pytest.raises(TypeError, match=r"data: expected a tuple \(xs, targets\)"):
        rnnbp.fit(model, xs, loss=mse, optimizer=opt)
    with pytest.raises(ValueError, match=r"expected targets of shape \(8, 16, \.\.\.\), got \(16, 1\)"):
        rnnbp.fit(model, (xs, ys[0]), loss=mse, optimizer=opt)
    with pytest.raises(ValueError, match="target: expected one of 'every', 'last', 'sequence', got 'first'"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, target="first")
    with pytest.raises(TypeError, match="expected dtype float64, got float32"):
        rnnbp.fit(model, (xs.astype(np.float32), ys), loss=mse, optimizer=opt)
    with pytest.raises(ValueError, match="patience: early stopping needs validation data"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, patience=3)
    with pytest.raises(ValueError, match="epochs: expected a positive integer"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, epochs=0)


def test_truncated_skip_policy_and_stream_step_in_errors():
    xs, ys = _sum_task(N=8, T=12)
    model = _model()

    def fails_from_third_window(outputs, targets, mask):  # 4-step windows: the third is t = 8..11
        value, grad = mse(outputs, targets, mask)
        if outputs.shape[0] == 4 and fails_from_third_window.calls == 2:
            raise rnnbp.NonFiniteError("nan loss", step=1)
        fails_from_third_window.calls += 1
        return value, grad

    fails_from_third_window.calls = 0
    hist = rnnbp.fit(model, (xs, ys), loss=fails_from_third_window, optimizer=rnnbp.optim.SGD(model, lr=0.01),
                     bptt=4, batch_size=8, on_nonfinite="skip", progress=False)
    assert hist.skipped >= 1 and len(hist.grad_norm) == 2


def test_truncated_fit_names_the_stream_step_where_the_output_goes_non_finite():
    """fit(bptt=(2, 4)) over 8 steps: the window holding step 5 starts at step 2, not 4.

    A ReLU Elman cell overflows to a non-finite output at stream step 5 (one
    huge but finite input); the error must name step 5, which needs the
    window's start (an off-by-(k2 - k1) start would say 7).
    """
    rng = np.random.default_rng(0)
    model = rnnbp.Sequential(rnnbp.Elman(1, 3, activation="relu", seed=0), rnnbp.Linear(3, 1, seed=1))
    model.params["0.W_ih"][...] = 10.0
    xs = rng.uniform(0, 1, size=(8, 4, 1))
    xs[5, 1] = 1e308
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(rnnbp.NonFiniteError) as info:
        rnnbp.fit(model, (xs, np.zeros((8, 4, 1))), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=1e-9),
                  bptt=(2, 4), batch_size=4, shuffle=False, progress=False)
    assert info.value.step == 5
    assert "time step 5" in str(info.value)


# Columns [F,F,T,T,T], [T,F,T,F,F], [T,T,T,T,F]: last valid steps 4, 2, 3.
_NON_PREFIX_MASK = np.array([[False, True, True],
                             [False, False, True],
                             [True, True, True],
                             [True, False, True],
                             [True, False, False]])


def _step_encoding_linear():
    """A Linear(1, 1) with y = x, fed x[t] = t: each output is its own time step."""
    model = rnnbp.Linear(1, 1, seed=0)
    model.params["W"][...] = 1.0
    model.params["b"][...] = 0.0
    T, B = _NON_PREFIX_MASK.shape
    xs = np.broadcast_to(np.arange(T, dtype=float)[:, None, None], (T, B, 1)).copy()
    return model, xs


def test_target_last_uses_each_sequences_last_valid_step_for_non_prefix_masks():
    """Non-prefix masks are supported: with target="last", fit and evaluate use
    the output at each sequence's last True step, wherever the gaps are.

    The losses accept any (T, B) mask, and unroll carries the state unchanged
    through every False step, so a sequence with gaps is well defined; its
    "last" output is the one at its last valid step, not at ``mask.sum(0) - 1``
    (which is right for prefix masks only: here it would be steps 2, 1, 3).
    """
    model, xs = _step_encoding_linear()
    ys = np.zeros((3, 1))
    seen = []

    def recording_mse(outputs, targets, mask):
        value, grad = mse(outputs, targets, mask)
        seen.append((outputs.copy(), grad.copy()))
        return value, grad

    rnnbp.evaluate(model, (xs, ys, _NON_PREFIX_MASK), recording_mse, target="last")
    assert seen[-1][0][:, 0].tolist() == [4.0, 2.0, 3.0]

    seen.clear()
    rnnbp.fit(model, (xs, ys, _NON_PREFIX_MASK), loss=recording_mse, target="last",
              optimizer=rnnbp.optim.SGD(model, lr=1e-3), batch_size=3, shuffle=False, progress=False)
    outputs, grad = seen[0]
    assert outputs[:, 0].tolist() == [4.0, 2.0, 3.0]
    # the gradient went back to those steps: dL/dW = sum_b x[last_b] * dL/dy_b
    np.testing.assert_allclose(model.grads["W"], [[np.dot([4.0, 2.0, 3.0], grad[:, 0])]], rtol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nonfinite_loss_names_one_time_step_convention_in_truncated_windows():
    """Message and ``.step`` use the same 0-based stream step, also inside a window's re-run steps."""
    xs, ys = _sum_task(N=8, T=12)
    model = _model()

    def inf_at_stream_step_5(outputs, targets, mask):  # bptt=(2, 4): the window of new steps 4..5
        outputs = outputs.copy()
        if inf_at_stream_step_5.calls == 2:
            outputs[1, 3] = np.inf                     # the second new step of the third window
        inf_at_stream_step_5.calls += 1
        return mse(outputs, targets, mask)

    inf_at_stream_step_5.calls = 0
    with pytest.raises(rnnbp.NonFiniteError) as info:
        rnnbp.fit(model, (xs, ys), loss=inf_at_stream_step_5, optimizer=rnnbp.optim.SGD(model, lr=0.01),
                  bptt=(2, 4), batch_size=8, shuffle=False, progress=False)   # batch column 3 = data sequence 3
    assert info.value.step == 5
    assert "(t, b) = (5, 3)" in str(info.value)


def test_target_sequence_gives_the_loss_every_output_and_one_target_per_sequence():
    """CTC's shape of supervision: outputs (T, B, C), labels (B, L), the mask; minibatches cut on axis 0."""
    rng = np.random.default_rng(8)
    T, N, L = 9, 10, 3
    xs = rng.normal(size=(T, N, 2))
    labels = rng.integers(1, 4, size=(N, L))
    mask = np.arange(T)[:, None] < rng.integers(7, T + 1, size=N)[None]
    seen = []

    def ctc(outputs, targets, m):
        seen.append((outputs.shape, targets.shape, None if m is None else m.shape))
        return rnnbp.losses.ctc(outputs, targets, mask=m)

    model = rnnbp.Sequential(rnnbp.GRU(2, 6, seed=0), rnnbp.Linear(6, 4, seed=1))
    hist = rnnbp.fit(model, (xs, labels, mask), loss=ctc, target="sequence", batch_size=4,
                     optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=30, progress=False)
    assert seen[:3] == [((T, 4, 4), (4, L), (T, 4)), ((T, 4, 4), (4, L), (T, 4)), ((T, 2, 4), (2, L), (T, 2))]
    assert hist.loss[-1] < hist.loss[0]
    value, _ = rnnbp.evaluate(model, (xs, labels, mask), ctc, target="sequence")
    assert value == pytest.approx(rnnbp.losses.ctc(rnnbp.predict(model, xs, mask), labels, mask=mask)[0])
    with pytest.raises(ValueError, match=r"target='sequence' expected targets of shape \(10, \.\.\.\)"):
        rnnbp.fit(model, (xs, labels[:5], mask), loss=ctc, target="sequence",
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
