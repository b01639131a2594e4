"""The everyday cases of fit/evaluate/predict/train_step: CTC without a wrapper, empty data, errors in
the data's coordinates, restore_best, batch_first, proba, per-batch callbacks, one epoch numbering."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import ctc, mse

D, C = 4, 5


def _ctc_data(N=10, T=12, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, N, D))
    mask = np.arange(T)[:, None] < rng.integers(6, T + 1, size=N)
    labels = [rng.integers(1, C, size=rng.integers(0, 4)) for _ in range(N)]
    padded = np.full((N, 3), rnnbp.ctc.PAD)
    for i, row in enumerate(labels):
        padded[i, :len(row)] = row
    return xs, labels, padded, mask


def _bilstm():
    return rnnbp.Sequential(rnnbp.Bidirectional(rnnbp.LSTM(D, 6, seed=0), rnnbp.LSTM(D, 6, seed=1)),
                            rnnbp.Linear(12, C, seed=2))


# -- CTC in fit ------------------------------------------------------------------

def test_bilstm_ctc_trains_with_ragged_lists_and_padded_arrays_alike():
    xs, labels, padded, mask = _ctc_data()
    runs = []
    for ys in (labels, padded):
        model = _bilstm()
        hist = rnnbp.fit(model, (xs, ys, mask), loss=ctc, target="sequence", epochs=3, batch_size=4,
                         optimizer=rnnbp.optim.Adam(model, lr=1e-2), progress=False, seed=1)
        runs.append((hist.loss, rnnbp.evaluate(model, (xs, ys, mask), ctc, target="sequence")[0]))
    assert runs[0] == runs[1]
    assert runs[0][0][-1] < runs[0][0][0]
    # the loss fit reports is ctc's own on the same outputs (mean over sequences of loss / label length)
    model = _bilstm()
    value = rnnbp.evaluate(model, (xs, labels, mask), ctc, target="sequence")[0]
    assert value == ctc(rnnbp.predict(model, xs, mask), labels, mask)[0]


def test_padded_labels_equal_explicit_label_lengths():
    xs, labels, padded, mask = _ctc_data()
    z = np.random.default_rng(1).normal(size=(12, 10, C))
    a = ctc(z, padded, mask)
    b = ctc(z, np.maximum(padded, 0), mask, label_lengths=(padded >= 0).sum(axis=1))
    c = ctc(z, labels, mask)
    assert a[0] == b[0] == c[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[1], c[1])
    bad = padded.copy()
    bad[0] = [-1, 2, -1]
    with pytest.raises(ValueError, match="padding.*may only follow.*label 2 at position 1 of sequence 0"):
        ctc(z, bad, mask)


def test_label_list_of_wrong_length_or_kind_names_the_argument():
    xs, labels, _, mask = _ctc_data()
    model = _bilstm()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    with pytest.raises(ValueError, match=r"data\[1\] \(targets\): expected 10 label sequences.*got 9"):
        rnnbp.fit(model, (xs, labels[:9], mask), loss=ctc, target="sequence", optimizer=opt, progress=False)
    with pytest.raises(TypeError, match=r"label sequence 2: expected a 1-d integer numpy array, got list"):
        rnnbp.fit(model, (xs, labels[:2] + [[1, 2]] + labels[3:], mask), loss=ctc, target="sequence",
                  optimizer=opt, progress=False)
    with pytest.raises(TypeError, match="needs target='sequence'"):
        rnnbp.fit(model, (xs, labels, mask), loss=ctc, optimizer=opt, progress=False)


def test_errors_name_the_datas_sequence_not_the_minibatchs():
    xs, labels, _, mask = _ctc_data()
    labels[7] = np.array([1, 2, 1, 2, 1, 2, 3, 4, 1, 2, 3, 4, 1])     # cannot fit 12 steps
    model = _bilstm()
    with pytest.raises(ValueError, match=r"labels: sequence 7 cannot be aligned.*numbered as in the data"):
        rnnbp.fit(model, (xs, labels, mask), loss=ctc, target="sequence", batch_size=4, seed=3,
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
    m = np.ones((5, 8), bool)
    m[:, 5] = False
    with pytest.raises(ValueError, match=r"data\[2\] \(mask\): sequence 5 has no valid step"):
        model = rnnbp.Elman(2, 3, seed=0)
        rnnbp.fit(model, (np.zeros((5, 8, 2)), np.zeros((8, 3)), m), loss=mse, target="last",
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)


def test_a_wrong_input_size_names_the_datas_shape_not_a_minibatchs():
    model = rnnbp.Elman(3, 2, seed=0)
    with pytest.raises(ValueError, match=r"data\[0\] \(xs\): expected shape \(T, N, 3\).*got \(10, 100, 4\)"):
        rnnbp.fit(model, (np.zeros((10, 100, 4)), np.zeros((10, 100, 2))), loss=mse, batch_size=8,
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
    with pytest.raises(ValueError, match=r"validation\[0\] \(xs\): expected shape \(N, T, 3\).*got \(100, 10, 4\)"):
        rnnbp.fit(model, (np.zeros((7, 10, 3)), np.zeros((7, 10, 2))), loss=mse, batch_first=True,
                  validation=(np.zeros((100, 10, 4)), np.zeros((100, 10, 2))),
                  optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)


# -- empty data, target ------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 0, 2), (0, 3, 2)])
def test_empty_data_is_a_value_error_naming_the_argument(shape):
    model = rnnbp.Elman(2, 3, seed=0)
    xs = np.zeros(shape)
    ys = np.zeros(shape[:2] + (3,))
    with pytest.raises(ValueError, match=r"data\[0\] \(xs\): expected at least one sequence and one step"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), progress=False)
    with pytest.raises(ValueError, match=r"data\[0\] \(xs\): expected at least one sequence and one step"):
        rnnbp.evaluate(model, (xs, ys), mse)
    with pytest.raises(ValueError, match=r"xs\[0\] \(xs\): expected at least one sequence and one step"):
        rnnbp.predict(model, xs)
    with pytest.raises(ValueError, match=r"xs: expected at least one step and one sequence"):
        rnnbp.unroll(model, xs)
    with pytest.raises(ValueError, match=r"expected at least one sample"):
        lin = rnnbp.Linear(2, 3, seed=0)
        rnnbp.fit(lin, (np.zeros((0, 2)), np.zeros((0, 3))), loss=mse, optimizer=rnnbp.optim.SGD(lin, lr=0.1),
                  progress=False)


def test_train_step_refuses_an_unknown_target():
    model = rnnbp.Elman(2, 3, seed=0)
    with pytest.raises(ValueError, match=r"target: expected one of .*'every'.*got 'all'"):
        rnnbp.train_step(model, (np.zeros((4, 2, 2)), np.zeros((4, 2, 3))), mse, None, target="all")


# -- patience, epochs, callbacks ------------------------------------------------------

def _sum_task(N=32, T=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, N, 1))
    return xs, np.cumsum(xs, axis=0) / 3


def _model():
    return rnnbp.Sequential(rnnbp.Elman(1, 8, seed=0), rnnbp.Linear(8, 1, seed=1))


@pytest.mark.parametrize("restore_best", [True, False])
def test_restore_best_also_when_all_epochs_ran(restore_best):
    xs, ys = _sum_task()
    vx, vy = _sum_task(N=16, seed=5)
    model, snaps = _model(), []
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.3, momentum=0.9),
                     epochs=4, batch_size=8, validation=(vx, vy), patience=3, restore_best=restore_best, progress=False,
                     callbacks=[lambda e, h: snaps.append((e, {k: p.copy() for k, p in model.params.items()}))])
    assert not hist.stopped_early and [e for e, _ in snaps] == [1, 2, 3, 4]
    assert hist.best_epoch < 4 and hist.val_loss[hist.best_epoch - 1] == min(hist.val_loss)
    want = snaps[hist.best_epoch - 1][1] if restore_best else snaps[-1][1]
    assert all(np.array_equal(model.params[k], want[k]) for k in want)


def test_per_batch_callbacks_and_schedule():
    xs, ys = _sum_task(N=20)
    model = _model()
    opt = rnnbp.optim.SGD(model, lr=0.1)

    class Recorder:
        def __init__(self):
            self.batches, self.epochs = [], []

        def on_batch_end(self, step, loss, grad_norm):
            self.batches.append((step, loss, grad_norm))

        def on_epoch_end(self, epoch, history):
            self.epochs.append(epoch)

    rec = Recorder()
    hist = rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, epochs=2, batch_size=8, progress=False,
                     callbacks=[rec], schedule=rnnbp.schedules.StepLR(opt, step_size=1, gamma=0.5))
    assert [s for s, _, _ in rec.batches] == [1, 2, 3, 4, 5, 6] and rec.epochs == [1, 2]
    assert [g for _, _, g in rec.batches] == hist.grad_norm
    assert opt.lr == pytest.approx(0.025)
    with pytest.raises(TypeError, match=r"callbacks\[0\]: expected a function"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, callbacks=[42], progress=False)
    with pytest.raises(ValueError, match="schedule: expected a schedule built on the optimizer"):
        rnnbp.fit(model, (xs, ys), loss=mse, optimizer=opt, progress=False,
                  schedule=rnnbp.schedules.StepLR(rnnbp.optim.SGD(model, lr=0.1), step_size=1))


# -- batch_first, proba ---------------------------------------------------------------

def test_batch_first_equals_time_major():
    xs, ys = _sum_task(N=12)
    mask = np.arange(8)[:, None] < np.arange(3, 15)[None, :12] % 8 + 1
    runs = []
    for bf in (False, True):
        model = _model()
        data = (xs, ys, mask) if not bf else (xs.transpose(1, 0, 2), ys.transpose(1, 0, 2), mask.T)
        hist = rnnbp.fit(model, data, loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), epochs=2,
                         batch_size=5, batch_first=bf, validation=data, progress=False)
        out = rnnbp.predict(model, data[0], data[2], batch_first=bf)
        runs.append((hist.loss, hist.val_loss, out if not bf else out.transpose(1, 0, 2),
                     rnnbp.evaluate(model, data, mse, batch_first=bf)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1] and runs[0][3] == runs[1][3]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


def test_a_transposed_mask_gets_the_batch_major_hint():
    model = _model()
    xs, ys = _sum_task(N=12)
    with pytest.raises(ValueError, match=r"look batch-major.*batch_first=True"):
        rnnbp.predict(model, xs, np.ones((12, 8), bool))
    with pytest.raises(ValueError, match=r"looks batch-major.*batch_first=True"):
        rnnbp.unroll(model, xs, mask=np.ones((12, 8), bool))


def test_predict_proba_is_the_softmax_of_the_outputs():
    xs, _ = _sum_task(N=6)
    model = rnnbp.Sequential(rnnbp.Elman(1, 4, seed=0), rnnbp.Linear(4, 3, seed=1))
    logits = rnnbp.predict(model, xs)
    p = rnnbp.predict(model, xs, proba=True)
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(rnnbp.predict(model, xs, target="last", proba=True), p[-1])


# -- stale graphs -----------------------------------------------------------------------

def test_backward_after_an_optimizer_step_raises_and_says_to_unroll_again():
    xs, ys = _sum_task(N=4)
    model = _model()
    opt = rnnbp.optim.SGD(model, lr=0.1)
    graph = rnnbp.unroll(model, xs)
    _, dys = mse(graph.outputs, ys)
    graph.backward(dys)                                     # fine: the weights are those it used
    opt.step()
    with pytest.raises(RuntimeError, match=r"parameter\(s\) \['0.W_ih', '0.W_hh', '0.b'\]\.\.\. changed since "
                                           r"the forward pass.*unroll again"):
        graph.backward(dys)
    rnnbp.unroll(model, xs).backward(dys)                   # a new graph is fine
    other = rnnbp.unroll(model, xs)
    opt.load_state_dict(opt.state_dict())
    with pytest.raises(RuntimeError, match="unroll again"):
        other.backward(dys)


# -- the guides ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("guide", ["train-stop-resume.md", "ctc.md"])
def test_guides_run_and_print_what_they_say(guide, tmp_path, monkeypatch, capsys):
    """Every python block runs in order (in a temporary directory); a text block after one is its output."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / guide).read_text()
    blocks = re.findall(r"```(python|text)\n(.*?)```", text, re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    checked = 0
    for i, (kind, code) in enumerate(blocks):
        if kind != "python":
            continue
        capsys.readouterr()
        exec(compile(code, f"{guide} block {i}", "exec"), namespace)
        printed = capsys.readouterr().out
        if i + 1 < len(blocks) and blocks[i + 1][0] == "text":
            assert printed == blocks[i + 1][1], f"{guide} block {i}"
            checked += 1
    assert checked >= 4


# -- ||dL/dh_t|| over the sequences still running -------------------------------------------

def test_gradient_norm_summaries_average_over_the_sequences_still_running():
    """Every running sequence gets the same dL/dh_t at every step (W_hh = 0, zero inputs, a linear
    loss), but they end at different steps: the summary must be flat, not grow going back in time."""
    T, N = 10, 12
    lengths = np.array([10, 9, 8, 6, 4, 3, 2, 10, 10, 5, 7, 1])
    mask = np.arange(T)[:, None] < lengths
    model = rnnbp.Sequential(rnnbp.Elman(2, 3, seed=0), rnnbp.Linear(3, 2, seed=1))
    model.params["0.W_hh"][...] = 0
    model.params["0.b"][...] = 0
    c = np.array([0.3, -0.7])

    def linear_loss(outputs, targets, m):                   # dL/dy = c at every valid step
        d = np.where(m[..., None], c, 0.0)
        return float(np.sum(outputs * d)), d

    hist = rnnbp.fit(model, (np.zeros((T, N, 2)), np.zeros((T, N, 2)), mask), loss=linear_loss,
                     optimizer=rnnbp.optim.SGD(model, lr=1e-9), batch_size=6, progress=False)
    row = hist.state_grad_norms["0"][0]
    per_sequence = np.linalg.norm(model.params["1.W"] @ c)   # ||dL/dh_{t,b}|| of one running sequence
    # each batch of 6 counts as if all its sequences ran: sqrt(6) * per_sequence at every step
    np.testing.assert_allclose(row, np.sqrt(6) * per_sequence, rtol=1e-7)
    graph = rnnbp.unroll(model, np.zeros((T, N, 2)), mask=mask)
    graph.backward(linear_loss(graph.outputs, None, mask)[1])
    raw = graph.state_grad_norms["0"]
    assert raw[0] > 2 * raw[-1]                               # the batch-level norm shrinks with the count
    norms, running = graph.running_state_grad_norms()["0"]
    np.testing.assert_allclose(norms, np.sqrt(N) * per_sequence, rtol=1e-9)
    assert running.all()
    unmasked = rnnbp.unroll(model, np.zeros((T, N, 2)))
    unmasked.backward(np.broadcast_to(c, (T, N, 2)).copy())
    assert unmasked.running_state_grad_norms()["0"][0] is unmasked.state_grad_norms["0"]  # unchanged
