"""rnnbp.sample: draws from softmax(logits / temperature), carries the state, feeds each draw back."""

from __future__ import annotations

import numpy as np
import pytest

import rnnbp

V = 6


def _embedding_model():
    return rnnbp.Sequential(rnnbp.Embedding(V, 4, seed=0), rnnbp.LSTM(4, 8, seed=1), rnnbp.Linear(8, V, seed=2))


def _one_hot_model():
    return rnnbp.Sequential(rnnbp.GRU(V, 8, seed=1), rnnbp.Dropout(0.5, seed=3), rnnbp.Linear(8, V, seed=2))


def _outputs_over(model, ids):
    """Logits at every step of one unrolled sequence: the independent computation of carried state."""
    xs = ids[:, None] if model.takes_ids else np.eye(V)[ids][:, None]
    model.eval()
    try:
        return rnnbp.unroll(model, xs).outputs[:, 0]
    finally:
        model.train()


@pytest.mark.parametrize("make", [_embedding_model, _one_hot_model])
def test_greedy_sampling_follows_the_unrolled_sequences_argmax(make):
    model = make()
    start = np.array([1, 4, 2])
    drawn = rnnbp.sample(model, start, 8, temperature=0)
    logits = _outputs_over(model, np.concatenate([start, drawn]))
    np.testing.assert_array_equal(drawn, logits[len(start) - 1:-1].argmax(axis=1))
    assert model.training                                   # mode restored


@pytest.mark.parametrize("make", [_embedding_model, _one_hot_model])
def test_draws_follow_the_tempered_softmax_of_the_carried_state(make):
    model = make()
    start = np.array([3])
    for temperature in (0.5, 1.0, 2.0):
        drawn = rnnbp.sample(model, start, 12, temperature=temperature, rng=7)
        z = _outputs_over(model, np.concatenate([start, drawn]))[:-1].astype(np.float64) / temperature
        gen = np.random.default_rng(7)
        want = []
        for row in z:                                         # the same draws, from the same stream
            p = np.exp(row - row.max())
            want.append(int(gen.choice(V, p=p / p.sum())))
        assert drawn.tolist() == want
    assert not np.array_equal(rnnbp.sample(model, start, 30, rng=1), rnnbp.sample(model, start, 30, rng=2))


def test_arguments_are_checked():
    model = _one_hot_model()
    with pytest.raises(ValueError, match="start: expected a non-empty 1-d"):
        rnnbp.sample(model, [], 3)
    with pytest.raises(ValueError, match=r"start: expected ids in \[0, 6\)"):
        rnnbp.sample(model, [6], 3)
    with pytest.raises(ValueError, match="temperature"):
        rnnbp.sample(model, [1], 3, temperature=-1.0)
    with pytest.raises(ValueError, match="steps"):
        rnnbp.sample(model, [1], 0)
    bad = rnnbp.Sequential(rnnbp.GRU(V, 8, seed=1), rnnbp.Linear(8, V + 1, seed=2))
    with pytest.raises(ValueError, match="7 logits but it reads one-hot vectors of size 6"):
        rnnbp.sample(bad, [1], 3)


def test_the_text_experiment_writes_what_the_task_sampler_wrote():
    from tasks.data.text import Vocab, sample_text
    vocab = Vocab.from_text("abcdef")
    model = _one_hot_model()
    old = sample_text(model, vocab, "ab", 20, temperature=0.7, rng=np.random.default_rng(4))
    drawn = rnnbp.sample(model, vocab.encode("ab"), 20, temperature=0.7, rng=np.random.default_rng(4))
    new = "ab" + vocab.decode(drawn)
    assert new == old
