"""Tests of rnnbp.metrics: hand-made examples, metric axioms (hypothesis), error rates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnbp.metrics import character_error_rate, edit_distance, word_error_rate


def reference_distance(a, b):
    """Textbook Wagner-Fischer with a full table, one cell at a time."""
    D = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        D[i][0] = i
    for j in range(len(b) + 1):
        D[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            D[i][j] = min(D[i - 1][j] + 1, D[i][j - 1] + 1, D[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return D[-1][-1]


@pytest.mark.parametrize("a, b, d", [
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("", "", 0), ("", "abc", 3), ("abc", "", 3),
    ("abc", "abc", 0), ("abc", "cba", 2), ("intention", "execution", 5), ("a", "b", 1),
    ([1, 2, 3, 4], [1, 3, 4, 5], 2), (np.array([5, 5, 5]), np.array([5]), 2), ((7,), [7], 0),
    ("the quick fox".split(), "the fox".split(), 1), (["cat"], ["cta"], 1),
])
def test_known_distances(a, b, d):
    assert edit_distance(a, b) == d
    assert isinstance(edit_distance(a, b), int)


tokens = st.lists(st.integers(0, 3), max_size=12)


@settings(max_examples=200, deadline=None)
@given(tokens, tokens)
def test_equals_textbook_table_and_is_symmetric(a, b):
    d = edit_distance(a, b)
    assert d == reference_distance(a, b) == edit_distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)


@settings(max_examples=200, deadline=None)
@given(tokens, tokens, tokens)
def test_triangle_inequality(a, b, c):
    assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab c", max_size=10), st.text(alphabet="ab c", max_size=10))
def test_strings_are_their_characters(a, b):
    assert edit_distance(a, b) == edit_distance(list(a), list(b)) == reference_distance(a, b)


def test_character_error_rate():
    assert character_error_rate(["hello", "world"], ["hello", "world"]) == 0.0
    assert character_error_rate(["hello", "world"], ["hallo", "word"]) == pytest.approx(0.2)
    # total edits / total length, not the mean of per-line rates (that would be (1/1 + 0/9) / 2)
    assert character_error_rate(["a", "bbbbbbbbb"], ["x", "bbbbbbbbb"]) == pytest.approx(0.1)
    assert character_error_rate(["ab", ""], ["ab", "xyz"]) == pytest.approx(1.5)
    labels = [np.array([1, 2, 3]), np.array([4])]
    assert character_error_rate(labels, [np.array([1, 3]), np.array([4])]) == pytest.approx(0.25)
    assert character_error_rate(("ab",), ("",)) == 1.0


def test_word_error_rate():
    assert word_error_rate(["the cat sat", "on the mat"], ["the bat sat", "on the  mat"]) == pytest.approx(1 / 6)
    assert word_error_rate(["a b c"], ["a b c d e"]) == pytest.approx(2 / 3)
    assert word_error_rate([["the", "cat"]], ["the dog"]) == pytest.approx(0.5)
    assert word_error_rate(["  leading and trailing  "], ["leading\tand\ntrailing"]) == 0.0


@pytest.mark.parametrize("call, kind, message", [
    (lambda: character_error_rate("abc", "abd"), TypeError, "references: expected a list"),
    (lambda: character_error_rate(["a"], ["a", "b"]), ValueError, "expected 1 sequences"),
    (lambda: character_error_rate(["", ""], ["a", ""]), ValueError, "every reference is empty"),
    (lambda: word_error_rate([" "], ["a"]), ValueError, "every reference is empty"),
    (lambda: word_error_rate([[1, 2]], ["a"]), TypeError, r"references\[0\]"),
    (lambda: edit_distance(3, [1]), TypeError, "a: expected"),
    (lambda: edit_distance([1], np.zeros((2, 2))), ValueError, "b: expected a 1-d"),
])
def test_errors(call, kind, message):
    with pytest.raises(kind, match=message):
        call()
