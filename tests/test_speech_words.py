"""The spoken-word data sets (tasks.data.speech.words): vocabulary, speakers, determinism, baselines."""

import numpy as np
import pytest

from tasks.data.speech import PHONE_NAMES
from tasks.data.speech.words import (ANAGRAM_GROUPS, HELD_OUT_SPEAKERS, VOCABULARY, WORDS, phone_set,
                                     training_speakers, word_set)


def test_vocabulary_and_anagram_groups():
    assert len(WORDS) == 20 and len({p for ph in VOCABULARY.values() for p in ph}) == 12
    assert sum(len(g) for g in ANAGRAM_GROUPS) == 19
    assert any(len(g) == 3 for g in ANAGRAM_GROUPS) and ("tack", "cat") in ANAGRAM_GROUPS
    for g in ANAGRAM_GROUPS:
        bags = {tuple(sorted(VOCABULARY[w])) for w in g}
        orders = {VOCABULARY[w] for w in g}
        assert len(bags) == 1 and len(orders) == len(g)


def test_held_out_speakers_are_not_training_speakers():
    train = training_speakers(40)
    assert len({s.name for s in train} | {s.name for s in HELD_OUT_SPEAKERS}) == 48
    params = lambda s: (s.group, s.f0, s.vocal_tract, s.rate, s.snr_db)
    assert not {params(s) for s in train} & {params(s) for s in HELD_OUT_SPEAKERS}
    assert {s.group for s in HELD_OUT_SPEAKERS} == {"man", "woman", "child"}
    assert training_speakers(3) == training_speakers(5)[:3]


@pytest.mark.slow
def test_word_set_layout_and_determinism():
    sp = training_speakers(2)
    a = word_set(sp, 1, seed=4)
    b = word_set(sp, 1, seed=4)
    c = word_set(sp, 1, seed=5)
    assert a.xs.shape[1] == 40 and a.xs.shape[2] == 48 and a.xs.dtype == np.float32
    assert np.array_equal(a.xs, b.xs) and not np.array_equal(a.xs, c.xs)
    assert list(a.labels[:20]) == list(range(20)) and list(a.speakers) == [0] * 20 + [1] * 20
    assert np.array_equal(a.mask.sum(axis=0), a.lengths)
    assert np.all(a.xs[~a.mask] == 0)
    for n in (0, 7):
        assert [PHONE_NAMES[p - 1] for p in a.phones[n]] == list(VOCABULARY[WORDS[a.labels[n]]])
        seen = [p for p in a.frame_phones[:a.lengths[n], n] if p]
        collapsed = [p for i, p in enumerate(seen) if i == 0 or p != seen[i - 1]]
        assert collapsed == list(a.phones[n])
    # a speaker's utterances do not depend on the other speakers in the set
    alone = word_set(sp[1:], 1, seed=4)
    assert np.array_equal(alone.xs[:alone.lengths[0], 0], a.xs[:a.lengths[20], 20])


def test_phone_set():
    s = phone_set(training_speakers(2), 3, seed=0, words=(2, 3))
    assert len(s) == 6 and np.all(s.labels == -1)
    for n in range(6):
        assert 4 <= len(s.phones[n]) <= 9
        assert s.lengths[n] >= 2 * len(s.phones[n])      # CTC needs room for every label
    with pytest.raises(ValueError, match="words"):
        phone_set(training_speakers(1), 1, seed=0, words=(3, 2))


@pytest.mark.slow
def test_duration_does_not_separate_anagrams():
    """Within each group, the words' mean durations differ by less than their spread."""
    s = word_set(training_speakers(6), 2, seed=0)
    for g in ANAGRAM_GROUPS:
        d = [s.durations[s.labels == WORDS.index(w)] for w in g]
        means = [x.mean() for x in d]
        assert max(means) - min(means) < 0.5 * np.mean([x.std() for x in d]), (g, means)
