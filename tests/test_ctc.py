"""Tests of rnnbp.losses.ctc: brute-force enumeration of every alignment, finite
differences, long sequences, masks, impossible labels, errors, PyTorch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnbp.errors import NonFiniteError
from rnnbp.losses import ctc
from tests.helpers import collapse


# -- brute force: every path of C^T symbols ------------------------------------


def brute_force(z, label, blank=0):
    """-log p(label | z) and its gradient for one sequence z (T, C), by enumeration.

    p = sum over paths pi collapsing to label of prod_t y[t, pi_t], y = softmax(z);
    d(-log p)/dz[t, c] = y[t, c] - (1/p) sum_pi P(pi) [pi_t = c], the derivative
    of each path's product of softmaxes, summed -- no forward-backward involved.
    """
    T, C = z.shape
    y = np.exp(z - z.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    label = tuple(int(k) for k in label)
    p, occupancy = 0.0, np.zeros((T, C))
    for path in itertools.product(range(C), repeat=T):
        if collapse(path, blank) != label:
            continue
        prob = np.prod(y[np.arange(T), path])
        p += prob
        occupancy[np.arange(T), path] += prob
    if T == 0:
        p = 1.0 if not label else 0.0
    return -np.log(p), y - occupancy / p


def brute_force_complex_step(z, label, blank=0, h=1e-30):
    """The gradient of the brute-force loss by the complex step, one logit at a time."""
    T, C = z.shape
    paths = [path for path in itertools.product(range(C), repeat=T) if collapse(path, blank) == tuple(label)]

    def loss(zc):
        y = np.exp(zc) / np.exp(zc).sum(axis=1, keepdims=True)
        return -np.log(sum(np.prod(y[np.arange(T), path]) for path in paths))

    g = np.zeros((T, C))
    for i in np.ndindex(T, C):
        zc = z.astype(complex)
        zc[i] += 1j * h
        g[i] = loss(zc).imag / h
    return g


# (T, C, label, blank): repeats, empty labels, label length = T, blank not 0
CASES = [
    (1, 2, [], 0), (1, 2, [1], 0), (3, 3, [1, 2], 0), (4, 3, [1, 1], 0), (3, 3, [1, 1], 0),
    (5, 4, [1, 2, 1], 0), (5, 4, [2, 2, 2], 0), (6, 3, [1, 2, 2, 1], 0), (7, 3, [1, 1, 2], 0),
    (4, 4, [1, 2, 3, 1], 0), (7, 4, [3, 1, 2, 2, 1], 0), (6, 2, [], 0), (5, 3, [0, 1], 2),
    (7, 3, [2, 2, 0], 1), (4, 3, [1, 2, 1, 2], 0),
]


def _single(T, C, label, blank, seed):
    z = np.random.default_rng(seed).normal(scale=1.5, size=(T, 1, C))
    return z


@pytest.mark.parametrize("case", range(len(CASES)))
def test_single_sequence_equals_brute_force(case):
    T, C, label, blank = CASES[case]
    z = _single(T, C, label, blank, case)
    want_loss, want_grad = brute_force(z[:, 0], label, blank)
    loss, dz = ctc(z, [np.array(label, dtype=int)], blank=blank, reduction="sum")
    assert abs(loss - want_loss) <= 1e-12 * max(1.0, abs(want_loss))
    assert np.abs(dz[:, 0] - want_grad).max() <= 1e-12


@pytest.mark.parametrize("case", [2, 4, 8, 12])
def test_brute_force_gradient_formula_matches_complex_step(case):
    T, C, label, blank = CASES[case]
    z = _single(T, C, label, blank, case)[:, 0]
    np.testing.assert_allclose(brute_force(z, label, blank)[1], brute_force_complex_step(z, label, blank),
                               rtol=0, atol=1e-13)


def _batch(rng, T=6, C=4):
    """A padded batch with every kind of case, its mask and labels."""
    labels = [np.array(k) for k in ([1, 2], [3, 3], [], [1, 2, 1, 3], [2], [1, 1, 1])]
    lengths = np.array([6, 5, 3, 4, 1, 6])
    mask = np.arange(T)[:, None] < lengths
    z = rng.normal(scale=2.0, size=(T, len(labels), C))
    return z, mask, labels, lengths


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_padded_batch_equals_brute_force_per_sequence(reduction):
    z, mask, labels, lengths = _batch(np.random.default_rng(1))
    z[~mask] = np.nan                                    # padding is never looked at
    value, dz = ctc(z, labels, mask=mask, reduction=reduction)
    B = len(labels)
    losses, grads = zip(*(brute_force(z[:lengths[b], b], labels[b]) for b in range(B)))
    weights = {"mean": 1.0 / (B * np.maximum([len(k) for k in labels], 1)),
               "sum": np.ones(B), "none": np.ones(B)}[reduction]
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.shape == (B,)
        np.testing.assert_allclose(value, losses, rtol=1e-12, atol=0)
    else:
        assert isinstance(value, float)
        assert abs(value - np.dot(weights, losses)) <= 1e-12 * abs(value)
    for b in range(B):
        assert np.abs(dz[:lengths[b], b] - weights[b] * grads[b]).max() <= 1e-12
        assert (dz[lengths[b]:, b] == 0).all()


def test_masked_batch_equals_sequences_run_one_by_one():
    rng = np.random.default_rng(2)
    T, B, C = 30, 5, 6
    lengths = np.array([30, 17, 9, 24, 1])
    label_lists = [rng.integers(1, C, size=n) for n in (8, 6, 3, 0, 1)]
    L_max = max(len(k) for k in label_lists)
    padded = np.full((B, L_max), -7)                     # padding may hold anything
    for b, k in enumerate(label_lists):
        padded[b, :len(k)] = k
    label_lengths = np.array([len(k) for k in label_lists])
    mask = np.arange(T)[:, None] < lengths
    z = rng.normal(size=(T, B, C))
    z[~mask] = 1e300
    losses, dz = ctc(z, padded, label_lengths=label_lengths, mask=mask, reduction="none")
    for b in range(B):
        alone, dz_alone = ctc(z[:lengths[b], b:b + 1], [label_lists[b]], reduction="none")
        assert abs(losses[b] - alone[0]) <= 1e-12 * alone[0]
        np.testing.assert_allclose(dz[:lengths[b], b], dz_alone[:, 0], rtol=0, atol=1e-14)
        assert (dz[lengths[b]:, b] == 0).all()


def test_list_labels_equal_padded_array_and_full_rows():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(8, 3, 5))
    rows = np.array([[1, 2, 3], [4, 4, 1], [2, 1, 2]])
    a = ctc(z, rows)
    b = ctc(z, list(rows))
    c = ctc(z, np.pad(rows, ((0, 0), (0, 2)), constant_values=99), label_lengths=np.array([3, 3, 3]))
    for other in (b, c):
        assert a[0] == other[0]
        np.testing.assert_array_equal(a[1], other[1])


def test_reductions_agree():
    rng = np.random.default_rng(4)
    z, mask, labels, _ = _batch(rng)
    none, d_none = ctc(z, labels, mask=mask, reduction="none")
    total, d_sum = ctc(z, labels, mask=mask, reduction="sum")
    mean, d_mean = ctc(z, labels, mask=mask, reduction="mean")
    L = np.maximum([len(k) for k in labels], 1)
    assert total == pytest.approx(none.sum(), rel=1e-14)
    assert mean == pytest.approx(np.mean(none / L), rel=1e-14)
    np.testing.assert_allclose(d_sum, d_none, rtol=0, atol=0)
    np.testing.assert_allclose(d_mean, d_none / (len(labels) * L)[None, :, None], rtol=1e-14, atol=1e-17)


def test_finite_differences():
    rng = np.random.default_rng(5)
    z, mask, labels, _ = _batch(rng, T=6, C=4)
    z = z[:, [0, 1, 3, 5]]
    mask = mask[:, [0, 1, 3, 5]]
    labels = [labels[i] for i in (0, 1, 3, 5)]
    _, dz = ctc(z, labels, mask=mask)
    eps, worst = 1e-6, 0.0
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += eps
        zm[i] -= eps
        fd = (ctc(zp, labels, mask=mask)[0] - ctc(zm, labels, mask=mask)[0]) / (2 * eps)
        worst = max(worst, abs(fd - dz[i]))
    assert worst <= 1e-7


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_T_2000(dtype):
    rng = np.random.default_rng(6)
    T, B, C = 2000, 3, 20
    lengths = np.array([2000, 1500, 700])
    label_lists = [rng.integers(1, C, size=n) for n in (600, 400, 300)]
    mask = np.arange(T)[:, None] < lengths
    z = rng.normal(scale=8.0, size=(T, B, C))
    z[:, 2, 0] += 40.0                                  # one sequence near-certain of blanks
    z = z.astype(dtype)
    losses, dz = ctc(z, label_lists, mask=mask, reduction="none")
    assert dz.dtype == dtype
    assert np.isfinite(losses).all() and np.isfinite(dz).all()
    assert losses[2] > 5000                             # p < e^-5000: no linear-space scaling survives
    # each valid step's gradient is y - (a distribution over classes): it sums to 0, up to
    # the rounding that 2000 log-space steps accumulate in alpha and beta (|log alpha| ~ 1e4)
    assert np.abs(dz.astype(np.float64).sum(axis=2)).max() <= (1e-6 if dtype == np.float32 else 1e-9)
    # float32 logits give the float64 answer on the same numbers (float64 inside)
    want, dwant = ctc(z.astype(np.float64), label_lists, mask=mask, reduction="none")
    np.testing.assert_allclose(losses, want, rtol=1e-12)
    np.testing.assert_allclose(dz, dwant, rtol=0, atol=1e-6 if dtype == np.float32 else 0)


def test_huge_logits_exact():
    """Logits of size 1000 (no alignment has a representable linear-space probability)."""
    z = np.full((3, 1, 3), -1000.0)
    z[:, 0, 0] = 1000.0                                 # blank certain
    loss, dz = ctc(z, [np.array([1])], reduction="sum")
    # best paths put the label at one step: 3 paths of probability e^-2000 each (to first order)
    assert loss == pytest.approx(2000.0 - np.log(3.0), rel=1e-15)
    assert np.isfinite(dz).all()


def test_impossible_label_raises_naming_the_sequence():
    z = np.zeros((4, 3, 3))
    labels = [np.array([1, 2]), np.array([1, 1, 2]), np.array([2, 2])]   # needs 2, 4, 3 steps
    mask = np.ones((4, 3), bool)
    mask[3:, 1] = False                                  # sequence 1 has 3 steps, needs 4
    with pytest.raises(ValueError, match="sequence 1 .*needs at least 4 steps, its input has 3"):
        ctc(z, labels, mask=mask)
    with pytest.raises(ValueError, match="sequence 0"):
        ctc(np.zeros((2, 1, 3)), [np.array([1, 2, 1])])
    with pytest.raises(ValueError, match="sequence 0"):
        ctc(np.zeros((0, 1, 3)), [np.array([1])])


def test_zero_infinity():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(4, 3, 3))
    labels = [np.array([1, 2]), np.array([1, 1, 2]), np.array([2, 2])]
    mask = np.ones((4, 3), bool)
    mask[3:, 1] = False
    losses, dz = ctc(z, labels, mask=mask, reduction="none", zero_infinity=True)
    assert losses[1] == 0 and (dz[:, 1] == 0).all()
    for b in (0, 2):
        want, dwant = ctc(z[:, b:b + 1], [labels[b]], reduction="none")
        assert losses[b] == want[0]
        np.testing.assert_array_equal(dz[:, b], dwant[:, 0])
    mean, _ = ctc(z, labels, mask=mask, zero_infinity=True)
    assert mean == pytest.approx((losses[0] / 2 + losses[2] / 2) / 3, rel=1e-14)   # B counts it


def test_empty_input_and_empty_batch():
    loss, dz = ctc(np.zeros((0, 2, 3)), [np.array([], int), np.array([], int)], reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0])
    assert dz.shape == (0, 2, 3)
    mask = np.zeros((3, 1), bool)
    loss, dz = ctc(np.full((3, 1, 3), np.nan), [np.array([], int)], mask=mask)
    assert loss == 0.0 and (dz == 0).all()
    loss, dz = ctc(np.zeros((5, 0, 3), np.float32), np.zeros((0, 2), int))
    assert loss == 0.0 and dz.shape == (5, 0, 3) and dz.dtype == np.float32


@pytest.mark.parametrize("call, kind, message", [
    (lambda z: ctc(z, [np.array([1])] * 2, mask=np.array([[True, False], [False, True], [True, True]])),
     ValueError, "mask: expected each sequence's valid steps to be a prefix.*sequence 1"),
    (lambda z: ctc(z, [np.array([1]), np.array([0])]), ValueError, "blank = 0.*position 0 of sequence 1"),
    (lambda z: ctc(z, [np.array([1]), np.array([4])]), ValueError, r"\[0, 4\).*got 4"),
    (lambda z: ctc(z, [np.array([1])]), ValueError, "expected 2 label sequences"),
    (lambda z: ctc(z, np.array([[1], [2]]), label_lengths=np.array([1, 2])), ValueError, r"label_lengths.*\[0, 1\]"),
    (lambda z: ctc(z, [np.array([1])] * 2, label_lengths=np.array([1, 1])), ValueError, "label_lengths: expected None"),
    (lambda z: ctc(z, np.array([[1.0], [2.0]])), TypeError, "integer dtype"),
    (lambda z: ctc(z, "ab"), TypeError, "labels: expected"),
    (lambda z: ctc(z, [np.array([1])] * 2, reduction="avg"), ValueError, "reduction"),
    (lambda z: ctc(z, [np.array([1])] * 2, blank=4), ValueError, r"blank: expected an integer in \[0, 4\)"),
    (lambda z: ctc(z[0], [np.array([1])] * 2), ValueError, r"\(T, B, C\)"),
    (lambda z: ctc(z.astype(int), [np.array([1])] * 2), TypeError, "float64 or float32"),
    (lambda z: ctc(z, [np.array([1])] * 2, zero_infinity=1), TypeError, "zero_infinity"),
])
def test_argument_errors(call, kind, message):
    with pytest.raises(kind, match=message):
        call(np.zeros((3, 2, 4)))


def test_nonfinite_logit_at_a_valid_step():
    z = np.zeros((3, 2, 4))
    z[1, 1, 2] = np.inf
    with pytest.raises(NonFiniteError, match=r"\(t, b\) = \(1, 1\)") as info:
        ctc(z, [np.array([1])] * 2)
    assert info.value.step == 1


# -- PyTorch ---------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_against_torch(reduction, zero_infinity):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    T, B, C, blank = 25, 6, 7, 3
    lengths = np.array([25, 20, 12, 3, 25, 9])
    label_lengths = np.array([10, 0, 7, 3, 12, 4])
    labels = rng.choice([c for c in range(C) if c != blank], size=(B, 12))
    labels[1, :3] = 5                                    # padding that is not blank
    if zero_infinity:
        labels[3, :3] = [1, 1, 2]                        # needs 4 steps, has 3
    mask = np.arange(T)[:, None] < lengths
    z = rng.normal(scale=2.0, size=(T, B, C))
    value, dz = ctc(z, labels, mask=mask, label_lengths=label_lengths, blank=blank,
                    reduction=reduction, zero_infinity=zero_infinity)

    zt = torch.tensor(z, requires_grad=True)
    loss = torch.nn.CTCLoss(blank=blank, reduction=reduction, zero_infinity=zero_infinity)(
        zt.log_softmax(2), torch.tensor(labels), torch.tensor(lengths), torch.tensor(label_lengths))
    loss.sum().backward()
    want = loss.detach().numpy()
    np.testing.assert_allclose(value, want, rtol=1e-10, atol=0)
    grad = zt.grad.numpy()
    assert np.abs(dz - grad).max() <= 1e-10 * max(1.0, np.abs(grad).max())
