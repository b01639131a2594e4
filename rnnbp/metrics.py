"""Edit distance and the error rates of sequence recognition: CER and WER.

- :func:`edit_distance`: the Levenshtein distance, the fewest insertions,
  deletions and substitutions (each costing 1) turning one sequence into
  another; sequences of ints (decoded labels), characters (a ``str``) or
  words (a list of ``str``).
- :func:`character_error_rate` and :func:`word_error_rate` over a batch:
  the *total* number of edits divided by the *total* reference length (the
  usual corpus-level definition, as in ocropy's and speech toolkits'
  reports), so long lines weigh more than short ones, rather than a mean of
  per-line rates.

An empty reference within a batch is allowed: it adds its hypothesis's
length to the edits and nothing to the denominator. A batch whose references
are *all* empty has no defined rate: ``ValueError``.
"""

from __future__ import annotations

from typing import Any, Hashable, Sequence

import numpy as np

__all__ = ["edit_distance", "character_error_rate", "word_error_rate"]


def _tokens(seq: Any, name: str) -> list[Hashable]:
    if isinstance(seq, np.ndarray):
        if seq.ndim != 1:
            raise ValueError(f"{name}: expected a 1-d sequence, got an array of shape {seq.shape}")
        return seq.tolist()
    if isinstance(seq, (str, list, tuple)):
        return list(seq)
    raise TypeError(f"{name}: expected a str, list, tuple or 1-d numpy array, got {type(seq).__name__}")


def edit_distance(a: Sequence[Hashable] | np.ndarray, b: Sequence[Hashable] | np.ndarray) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from ``a`` to ``b``.

    Parameters
    ----------
    a, b : str, list, tuple or 1-d ndarray
        Sequences of comparable items: ints (labels), characters, words.
        Items compare with ``==`` (so ``1`` and ``1.0`` are equal).

    Returns
    -------
    int
        A metric: 0 only for equal sequences, symmetric, and it satisfies
        the triangle inequality; at most ``max(len(a), len(b))``.

    Notes
    -----
    The Wagner-Fischer dynamic programme, one row per item of ``a``,
    vectorised along ``b``: with ``d`` the previous row, the substitution and
    deletion costs ``r_j = min(d_j + 1, d_{j-1} + [a_i != b_j])`` come first,
    then insertions chain along the row, ``e_j = min_{k <= j} (r_k + j - k)``,
    which is one ``minimum.accumulate`` of ``r_k - k``. Time
    ``O(len(a) len(b))``, memory ``O(len(b))``.

    Examples
    --------
    >>> from rnnbp.metrics import edit_distance
    >>> edit_distance("kitten", "sitting")
    3
    >>> edit_distance([1, 2, 3], [1, 3])
    1
    >>> edit_distance("the cat sat".split(), "the cat sat down".split())
    1
    """
    x, y = _tokens(a, "a"), _tokens(b, "b")
    if not x or not y:
        return max(len(x), len(y))
    ids: dict[Hashable, int] = {}                      # items -> ints, so rows compare in numpy
    xi = np.array([ids.setdefault(item, len(ids)) for item in x])
    yi = np.array([ids.setdefault(item, len(ids)) for item in y])
    j = np.arange(len(yi) + 1)
    d = j.copy()                                       # distance from the empty prefix of a
    r = np.empty_like(d)
    for i, item in enumerate(xi, start=1):
        r[0] = i
        np.minimum(d[1:] + 1, d[:-1] + (yi != item), out=r[1:])   # delete a_i, or substitute
        d = np.minimum.accumulate(r - j) + j                        # insert b_j after the best
    return int(d[-1])


def _batch(references: Any, hypotheses: Any) -> None:
    for name, batch in (("references", references), ("hypotheses", hypotheses)):
        if isinstance(batch, (str, np.ndarray)) or not isinstance(batch, (list, tuple)):
            raise TypeError(f"{name}: expected a list of sequences (one per line), "
                            f"got {type(batch).__name__}")
    if len(references) != len(hypotheses):
        raise ValueError(f"hypotheses: expected {len(references)} sequences (one per reference), "
                         f"got {len(hypotheses)}")


def _rate(pairs: list[tuple[list, list]]) -> float:
    total = sum(len(r) for r, _ in pairs)
    if total == 0:
        raise ValueError("references: every reference is empty, so the error rate "
                         "(edits / reference length) is undefined")
    return sum(edit_distance(r, h) for r, h in pairs) / total


def character_error_rate(references: Sequence[Any], hypotheses: Sequence[Any]) -> float:
    """Character error rate: total edit distance / total reference length.

    Parameters
    ----------
    references, hypotheses : list of str, or of int sequences (lists, 1-d arrays)
        One reference and one hypothesis per line, same number of each.
        Decoded labels (e.g. from :func:`rnnbp.decode.ctc_greedy_decode`)
        can be passed as they are, without mapping them to characters.

    Returns
    -------
    float
        ``sum(edit_distance(r, h)) / sum(len(r))``: 0 for a perfect batch;
        it can exceed 1 (hypotheses much longer than the references).

    Raises
    ------
    TypeError
        A batch that is not a list or tuple (a bare ``str`` is refused: it
        would be read as one line per character).
    ValueError
        Different numbers of references and hypotheses; every reference empty.

    Examples
    --------
    >>> from rnnbp.metrics import character_error_rate
    >>> character_error_rate(["hello", "world"], ["hallo", "word"])   # (1 + 1) / 10
    0.2
    >>> character_error_rate(["ab", ""], ["ab", "xyz"])                # an empty reference adds 3 edits
    1.5
    """
    _batch(references, hypotheses)
    return _rate([(_tokens(r, f"references[{i}]"), _tokens(h, f"hypotheses[{i}]"))
                  for i, (r, h) in enumerate(zip(references, hypotheses))])


def _words(line: Any, name: str) -> list:
    if isinstance(line, str):
        return line.split()
    if isinstance(line, (list, tuple)) and all(isinstance(w, str) for w in line):
        return list(line)
    raise TypeError(f"{name}: expected a str (split on whitespace) or a list of words, "
                    f"got {type(line).__name__}")


def word_error_rate(references: Sequence[Any], hypotheses: Sequence[Any]) -> float:
    """Word error rate: total word-level edit distance / total number of reference words.

    Parameters
    ----------
    references, hypotheses : list of str, or of lists of words
        A ``str`` is split on whitespace (``str.split()``: runs of spaces,
        tabs and newlines separate words; leading and trailing ones are
        ignored). A list of ``str`` is taken as the words.

    Returns
    -------
    float
        ``sum(edit_distance(words(r), words(h))) / sum(len(words(r)))``.

    Raises
    ------
    TypeError, ValueError
        As :func:`character_error_rate`; every reference without words.

    Examples
    --------
    >>> from rnnbp.metrics import word_error_rate
    >>> word_error_rate(["the cat sat", "on the mat"], ["the bat sat", "on the  mat"])   # 1 / 6
    0.16666666666666666
    """
    _batch(references, hypotheses)
    return _rate([(_words(r, f"references[{i}]"), _words(h, f"hypotheses[{i}]"))
                  for i, (r, h) in enumerate(zip(references, hypotheses))])
