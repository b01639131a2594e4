"""The speech experiment (tasks/experiments/speech.py): its pieces, and its --quick run."""

import json

import numpy as np
import pytest

from tasks.experiments import speech as S
from tasks.data.speech.words import ANAGRAM_GROUPS, WORDS


def test_pooled_cross_entropy_is_the_cross_entropy_of_the_time_mean():
    rng = np.random.default_rng(0)
    T, B, C = 5, 3, 4
    z = rng.normal(size=(T, B, C))
    mask = np.ones((T, B), bool)
    mask[3:, 1] = False
    labels = np.array([0, 2, 3])
    value, dz = S.pooled_cross_entropy(z, labels, mask)
    mean = np.stack([z[:mask[:, b].sum(), b].mean(axis=0) for b in range(B)])
    ref = -np.mean([mean[b, labels[b]] - np.log(np.exp(mean[b]).sum()) for b in range(B)])
    assert np.isclose(value, ref)
    assert np.all(dz[3:, 1] == 0)
    eps, R = 1e-6, rng.normal(size=(T, B, C))       # directional derivative
    num = (S.pooled_cross_entropy(z + eps * R, labels, mask)[0]
           - S.pooled_cross_entropy(z - eps * R, labels, mask)[0]) / (2 * eps)
    assert np.isclose(num, np.sum(dz * R * mask[..., None]), rtol=1e-6)


def test_pooled_and_stacked_inputs():
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(6, 2, 3))
    mask = np.ones((6, 2), bool)
    mask[4:, 0] = False
    xs[~mask] = 0
    p = S.pooled(xs, mask)
    assert p.shape == (1, 2, 6)
    assert np.allclose(p[0, 0, :3], xs[:4, 0].mean(0)) and np.allclose(p[0, 0, 3:], xs[:4, 0].std(0))
    st = S.stacked(xs, 1)
    assert st.shape == (6, 2, 9)
    assert np.array_equal(st[2, 1], np.concatenate([xs[1, 1], xs[2, 1], xs[3, 1]]))
    assert np.array_equal(st[0, 1, :3], np.zeros(3))
    sub, m = S.subsample(xs, mask, 4)
    assert sub.shape == (2, 2, 12) and np.array_equal(sub[1, 1, :3], xs[4, 1])
    assert m.tolist() == [[True, True], [False, True]]


def test_within_groups_scores_forced_choice():
    labels = np.array([WORDS.index("tack"), WORDS.index("cat"), WORDS.index("cat")])
    scores = np.zeros((3, len(WORDS)))
    scores[:, WORDS.index("tack")] = 1.0                  # always "tack"
    scores[:, WORDS.index("shoe")] = 5.0                  # outside the group: ignored
    r = S.within_groups(scores, labels)
    assert r["tack/cat"]["accuracy"] == pytest.approx(1 / 3)
    assert r["tack/cat"]["confusion"] == [[1, 0], [2, 0]]
    assert set(r) == {"tack/cat", "mean"} and r["mean"] == pytest.approx(1 / 3)
    full = S.within_groups(np.eye(len(WORDS)), np.arange(len(WORDS)))
    assert full["mean"] == 1.0
    assert set(full) == {"/".join(g) for g in ANAGRAM_GROUPS} | {"mean"}


def test_grids_are_fair():
    for cfg in (S.FULL, S.QUICK):
        g = S.grids(cfg)
        assert set(g["words"]) == set(cfg["words"]["grids"]) and len({len(v) for v in g["words"].values()}) == 1


@pytest.mark.slow
def test_quick_run(tmp_path):
    from tasks.sweep import Sweep

    rec = S.run(True, 0, tmp_path, Sweep(progress=False))
    json.dumps(rec, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    for name in rec["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert set(rec["words"]) == set(S.QUICK["words"]["grids"]) and set(rec["ctc"]) == set(S.QUICK["ctc"]["grids"])
    for r in rec["words"].values():
        assert 0 <= r["test_accuracy"] <= 1 and 0 <= r["within_groups"]["mean"] <= 1
    for r in rec["ctc"].values():
        assert r["test_per_beam"] >= 0 and r["test_per_greedy"] >= 0
    assert rec["fairness"]["words"]["grid_size"] == 1
    assert {"duration alone", "pooled nearest class mean"} <= set(rec["baselines"])


def test_trials_are_deterministic():
    """A trial's numbers depend only on its arguments (so --jobs 2 gives the numbers of --jobs 1)."""
    a = S.word_trial("bag-of-frames MLP", 0, 16, 3e-3, 7, S.QUICK)
    S._data.cache_clear()                               # fresh data, made again from the seeds
    b = S.word_trial("bag-of-frames MLP", 0, 16, 3e-3, 7, S.QUICK)
    for key in ("validation", "test_accuracy", "train_loss"):
        assert a[key] == b[key]
    assert np.array_equal(a["test_scores"], b["test_scores"])
