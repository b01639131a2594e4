"""Tests of rnnbp.decode: best path and prefix beam search against brute-force enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnbp.decode import ctc_beam_decode, ctc_greedy_decode
from rnnbp.losses import ctc
from tests.helpers import collapse


def labelling_probabilities(z, blank=0):
    """p(labelling) for every labelling of one sequence z (T, C), by enumerating all C^T paths."""
    T, C = z.shape
    y = np.exp(z - z.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    probs: dict[tuple, float] = {}
    for path in itertools.product(range(C), repeat=T):
        key = collapse(path, blank)
        probs[key] = probs.get(key, 0.0) + float(np.prod(y[np.arange(T), path]))
    return probs


def log_p(z, labellings, blank=0, mask=None):
    """log p(labelling) of each sequence by the CTC forward algorithm."""
    return -ctc(z, [np.asarray(k, dtype=np.int64) for k in labellings], mask=mask, blank=blank,
                reduction="none")[0]


def test_greedy_merges_repeats_unless_a_blank_separates_them():
    best = np.array([[1, 1, 0, 1, 2, 2, 0, 0],
                     [0, 0, 0, 0, 0, 0, 0, 0],
                     [3, 0, 3, 3, 0, 0, 3, 1]]).T                  # (T, B)
    z = np.eye(4)[best] * 5.0
    got = ctc_greedy_decode(z)
    assert [g.tolist() for g in got] == [[1, 1, 2], [], [3, 3, 3, 1]]
    assert all(g.dtype == np.int64 for g in got)


def test_greedy_with_mask_and_other_blank():
    rng = np.random.default_rng(0)
    T, B, C = 9, 4, 5
    z = rng.normal(size=(T, B, C)).astype(np.float32)
    lengths = np.array([9, 4, 0, 1])
    mask = np.arange(T)[:, None] < lengths
    z_padded = z.copy()
    z_padded[~mask] = np.nan                                        # never read
    got = ctc_greedy_decode(z_padded, mask=mask, blank=2)
    for b in range(B):
        want = collapse(z[:lengths[b], b].argmax(axis=1).tolist(), blank=2)
        assert tuple(got[b].tolist()) == want


SMALL = [(1, 2), (3, 2), (4, 3), (5, 3), (6, 3), (4, 4), (5, 4)]


@pytest.mark.parametrize("T, C", SMALL)
@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_most_probable_labelling(T, C, seed):
    rng = np.random.default_rng(100 * T + 10 * C + seed)
    blank = seed % C
    z = rng.normal(scale=1.0 + seed, size=(T, 1, C))
    probs = labelling_probabilities(z[:, 0], blank)
    best = max(probs, key=probs.get)
    got = ctc_beam_decode(z, blank=blank, beam_width=10_000)[0]
    assert tuple(got.tolist()) == best
    assert abs(log_p(z, [got], blank)[0] - np.log(probs[best])) <= 1e-12


def test_beam_beats_greedy_where_paths_of_one_labelling_add_up():
    y = np.array([[0.6, 0.4], [0.6, 0.4]])           # best path "0 0" -> (); p(()) = 0.36, p((1,)) = 0.64
    z = np.log(y)[:, None, :]
    assert ctc_greedy_decode(z)[0].tolist() == []
    assert ctc_beam_decode(z, beam_width=2)[0].tolist() == [1]


def reference_beam(lp, blank, width):
    """Prefix beam search as usually written: every prefix extended by every class, no pruning."""
    beam = {(): (0.0, -np.inf)}
    for y in lp:
        nxt = {}

        def add(prefix, which, value):
            entry = nxt.setdefault(prefix, [-np.inf, -np.inf])
            entry[which] = np.logaddexp(entry[which], value)

        for prefix, (pb, pnb) in beam.items():
            total = np.logaddexp(pb, pnb)
            for c in range(len(y)):
                if c == blank:
                    add(prefix, 0, total + y[c])
                elif prefix and c == prefix[-1]:
                    add(prefix + (c,), 1, pb + y[c])
                    add(prefix, 1, pnb + y[c])
                else:
                    add(prefix + (c,), 1, total + y[c])
        beam = dict(sorted(nxt.items(), key=lambda item: -np.logaddexp(*item[1]))[:width])
    return beam


@pytest.mark.parametrize("width", [1, 2, 8])
def test_beam_core_equals_unpruned_reference(width):
    """Scoring only the best extensions of each prefix (plus those in the beam) loses nothing."""
    from rnnbp.decode import _beam_one

    rng = np.random.default_rng(width)
    for _ in range(40):
        T, C = int(rng.integers(1, 12)), int(rng.integers(2, 7))
        blank = int(rng.integers(C))
        z = rng.normal(scale=rng.uniform(0.5, 3.0), size=(T, C))
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        got, want = _beam_one(lp, blank, width, C), reference_beam(lp, blank, width)
        finite = [k for k in want if np.logaddexp(*want[k]) > -np.inf]   # -inf ties: any order
        assert [k for k in got if np.logaddexp(*got[k]) > -np.inf] == finite
        for prefix in finite:
            np.testing.assert_allclose(got[prefix], want[prefix], rtol=1e-14)


def test_beam_never_less_probable_than_greedy():
    """On flat outputs the beam alone loses to the best path now and then; the final rescoring
    (kept prefixes and the best path, by exact probability) guarantees it never does."""
    rng = np.random.default_rng(1)
    worse = 0
    for _ in range(30):
        T, B, C = 14, 10, 5
        z = rng.normal(scale=rng.uniform(0.5, 3.0), size=(T, B, C))
        lengths = rng.integers(1, T + 1, size=B)
        mask = np.arange(T)[:, None] < lengths
        greedy = ctc_greedy_decode(z, mask=mask)
        beam = ctc_beam_decode(z, mask=mask, beam_width=8)
        lp_greedy, lp_beam = log_p(z, greedy, mask=mask), log_p(z, beam, mask=mask)
        worse += int(np.sum(lp_beam < lp_greedy - 1e-12))
    assert worse == 0


def test_beam_masked_batch_equals_one_by_one():
    rng = np.random.default_rng(2)
    T, B, C = 12, 5, 6
    z = rng.normal(scale=2.0, size=(T, B, C))
    lengths = np.array([12, 7, 1, 0, 10])
    mask = np.arange(T)[:, None] < lengths
    z_padded = z.copy()
    z_padded[~mask] = np.nan
    got = ctc_beam_decode(z_padded, mask=mask, beam_width=4)
    for b in range(B):
        alone = ctc_beam_decode(z[:lengths[b], b:b + 1], beam_width=4)[0]
        np.testing.assert_array_equal(got[b], alone)
        assert got[b].dtype == np.int64
    assert got[3].size == 0


def test_beam_width_one_and_blank_only_classes():
    z = np.random.default_rng(3).normal(size=(6, 2, 1))            # C = 1: only the blank
    assert [g.tolist() for g in ctc_beam_decode(z)] == [[], []]
    assert [g.tolist() for g in ctc_greedy_decode(z)] == [[], []]
    z = np.eye(3)[[1, 1, 0, 2]][:, None, :] * 10.0                  # one dominant path
    assert ctc_beam_decode(z, beam_width=1)[0].tolist() == [1, 2]


@pytest.mark.parametrize("decode", [ctc_greedy_decode, ctc_beam_decode])
@pytest.mark.parametrize("kwargs, kind, message", [
    ({"logits": np.zeros((3, 4))}, ValueError, r"\(T, B, C\)"),
    ({"logits": np.zeros((3, 2, 4), int)}, TypeError, "float64 or float32"),
    ({"logits": [[[0.0]]]}, TypeError, "numpy array"),
    ({"blank": 4}, ValueError, r"blank: expected an integer in \[0, 4\)"),
    ({"mask": np.ones((3, 2))}, TypeError, "mask: expected a boolean"),
    ({"mask": np.ones((2, 3), bool)}, ValueError, r"mask: expected shape \(3, 2\)"),
    ({"mask": np.array([[1, 1], [0, 1], [1, 1]], bool)}, ValueError, "prefix.*sequence 0"),
])
def test_errors(decode, kwargs, kind, message):
    args = {"logits": np.zeros((3, 2, 4)), **kwargs}
    with pytest.raises(kind, match=message):
        decode(**args)


def test_beam_width_checked():
    with pytest.raises(ValueError, match="beam_width"):
        ctc_beam_decode(np.zeros((3, 2, 4)), beam_width=0)
    with pytest.raises(TypeError, match="beam_width"):
        ctc_beam_decode(np.zeros((3, 2, 4)), beam_width=2.0)
