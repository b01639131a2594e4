"""Line text for tasks.data.lines: the alphabet, labels and random lines of words.

The words come from a fixed word list (:func:`word_list`) cut from the
standard-library docstring corpus of the ``text`` experiment
(:func:`tasks.data.text.stdlib_corpus`); see :mod:`tasks.data.lines` for the rendering.
``ALPHABET[i]`` has class ``i + 1``; class 0 is the CTC blank.

Randomness: every line has its own streams, keyed by (seed, purpose, line
index) through :class:`numpy.random.SeedSequence` spawn keys, so line ``i``
never depends on how many lines are drawn or in which order.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .common import positive_int

__all__ = ["ALPHABET", "BLANK", "NUM_CLASSES", "encode", "decode", "ctc_min_lengths",
           "WordList", "word_list", "sample_texts"]

#: The symbols of the lines; ``ALPHABET[i]`` is class ``i + 1`` (class 0 is the blank).
ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789.,'-"
#: The CTC blank class.
BLANK = 0
#: Output classes of a CTC model: the blank and the 41 symbols.
NUM_CLASSES = len(ALPHABET) + 1

INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}

# --------------------------------------------------------------------------
# labels

def encode(text: str) -> np.ndarray:
    """Class ids of a string, shape ``(len(text),)`` int64 in ``[1, NUM_CLASSES)``.

    Raises ``ValueError`` naming the first character not in :data:`ALPHABET`.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    try:
        return np.fromiter((INDEX[c] for c in text), dtype=np.int64, count=len(text))
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} of text {text!r} is not in ALPHABET "
                         f"{ALPHABET!r}") from None


def decode(labels) -> str:
    """The string of class ids (any 1-D int array-like); blanks (0) are skipped.

    Skipping blanks lets a 0-padded row of :attr:`LineSet.labels` decode as is.
    """
    ids = np.asarray(labels)
    if ids.ndim != 1 or not (ids.size == 0 or np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array; got {ids.dtype} {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in [0, {NUM_CLASSES}); got [{ids.min()}, {ids.max()}]")
    return "".join(ALPHABET[i - 1] for i in ids.tolist() if i != BLANK)


def ctc_min_lengths(labels, label_lengths) -> np.ndarray:
    """The fewest input steps CTC needs per label: its length plus its repeats.

    A repeated neighbour (``"ll"``) needs a blank between the two, so a label
    fits an input of ``T`` steps only if ``T >= ctc_min_lengths``.

    Parameters
    ----------
    labels : ndarray, shape (B, L) int -- padded labels.
    label_lengths : ndarray, shape (B,) int

    Returns
    -------
    ndarray, shape (B,), int64
    """
    labels, lengths = np.asarray(labels), np.asarray(label_lengths, dtype=np.int64)
    if labels.ndim != 2 or lengths.shape != labels.shape[:1]:
        raise ValueError(f"labels must be (B, L) and label_lengths (B,); got {labels.shape} "
                         f"and {lengths.shape}")
    pos = np.arange(1, labels.shape[1])
    repeat = (labels[:, 1:] == labels[:, :-1]) & (pos[None, :] < lengths[:, None])
    return lengths + repeat.sum(axis=1)


# --------------------------------------------------------------------------
# text

@dataclass(frozen=True, eq=False)
class WordList:
    """Words of the line text with their corpus counts, most frequent first.

    Attributes
    ----------
    words : tuple of str -- distinct words over ``ALPHABET`` without spaces.
    counts : ndarray, shape (V,), int64 -- occurrences in the corpus (>= 2).
    """

    words: tuple
    counts: np.ndarray


# A word: letters/digits, inner ' . - joining letter/digit runs ("don't",
# "json.dumps", "user-defined"), and at most one trailing . or ,.
_WORD = re.compile(r"[a-z0-9]+(?:['.\-][a-z0-9]+)*[.,]?")


@functools.lru_cache(maxsize=None)
def word_list(max_len: int = 14, min_count: int = 2) -> WordList:
    """The fixed word list, built from :func:`tasks.data.text.stdlib_corpus`.

    The whole corpus is lower-cased and split into runs of non-space
    ALPHABET symbols; leading punctuation is stripped and a run is kept if it
    is a word (letter/digit runs joined by ``' . -``, optionally ending in one
    ``.`` or ``,``) of at most ``max_len`` characters. Words seen fewer than
    ``min_count`` times (mostly code fragments) are dropped. Ordered by count,
    then alphabetically.
    """
    from .text import stdlib_corpus
    max_len, min_count = positive_int("max_len", max_len), positive_int("min_count", min_count)
    counts = Counter()
    for run in re.findall(r"[a-z0-9.,'\-]+", stdlib_corpus(None).lower()):
        word = run.lstrip(".,'-")
        if len(word) <= max_len and _WORD.fullmatch(word):
            counts[word] += 1
    kept = sorted(((-c, w) for w, c in counts.items() if c >= min_count))
    return WordList(tuple(w for _, w in kept), np.array([-c for c, _ in kept], dtype=np.int64))


@functools.lru_cache(maxsize=None)
def _word_sampler(temperature: float):
    """Words sorted by length with cumulative weights count**temperature."""
    wl = word_list()
    order = sorted(range(len(wl.words)), key=lambda i: (len(wl.words[i]), i))
    words = [wl.words[i] for i in order]
    lengths = np.array([len(w) for w in words])
    cum = np.cumsum(wl.counts[order].astype(np.float64) ** temperature)
    return words, lengths, cum


def line_rng(base: int, kind: int, i: int) -> np.random.Generator:
    # One independent stream per (line, purpose): line i never depends on how
    # many lines are drawn, nor on whether images or pens are rendered.
    return np.random.default_rng(np.random.SeedSequence(base, spawn_key=(kind, i)))


def base_seed(seed) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise TypeError(f"seed must be an int >= 0 or a numpy.random.Generator; got {seed!r}")


TEXT_STREAM, GEOMETRY_STREAM, NOISE_STREAM, PEN_STREAM, FONT_STREAM = range(5)


def _number(rng: np.random.Generator, room: int) -> str:
    digits = int(rng.integers(1, min(4, room) + 1))
    s = str(int(rng.integers(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits)))
    if room - digits >= 3 and rng.random() < 0.2:  # a decimal fraction
        s += "." + "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 3))))
    if len(s) == room - 1:  # see _text: never leave room for a space alone
        s += str(int(rng.integers(0, 10)))
    return s


def _text(rng: np.random.Generator, lo: int, hi: int, number_rate: float,
          temperature: float) -> str:
    words, lengths, cum = _word_sampler(temperature)
    below = np.searchsorted(lengths, np.arange(lengths[-1] + 2), side="right")  # words of len <= k
    weight = np.concatenate([[0.0], cum])  # weight[below[k]]: total weight of words of len <= k
    target = int(rng.integers(lo, hi + 1))
    out, size = [], 0
    while size < target:
        room = min(target - size - (1 if out else 0), len(below) - 1)
        # A word of length room - 1 would leave one character: room for the
        # space but not for a word. Drawing among lengths <= room - 2 and
        # == room only makes every line meet its target exactly.
        short = weight[below[max(room - 2, 0)]]
        exact = weight[below[room]] - weight[below[room - 1]]
        if rng.random() < number_rate or short + exact == 0:
            word = _number(rng, room)
        else:
            u = rng.random() * (short + exact)
            u = u if u < short else weight[below[room - 1]] + (u - short)
            word = words[min(int(np.searchsorted(cum, u, side="right")), len(words) - 1)]
        out.append(word)
        size += len(word) + (1 if len(out) > 1 else 0)
    return " ".join(out)


def sample_texts(n: int, *, seed, chars: tuple = (8, 40), number_rate: float = 0.1,
                 temperature: float = 0.5, start: int = 0) -> list[str]:
    """Random lines of words from :func:`word_list`.

    Each line draws a target length uniformly from ``chars`` and adds words
    (weighted by ``count ** temperature``, among those that still fit) until
    the target is met exactly.

    Parameters
    ----------
    n : int -- number of lines.
    seed : int or numpy.random.Generator -- line ``i`` depends on (seed, start + i) only.
    chars : (int, int) -- range of line lengths in characters, inclusive, lo >= 1.
    number_rate : float -- share of words that are random numbers (1-4 digits,
        some with a decimal fraction), in [0, 1].
    temperature : float -- 1 follows corpus frequencies, 0 draws distinct words
        uniformly; the default 0.5 keeps common short words common while rare
        letters still appear.
    start : int -- index of the first line in the seed's streams (>= 0).

    Returns
    -------
    list of str
    """
    n = positive_int("n", n, 0)
    lo, hi = _range_arg("chars", chars, 1)
    if not 0.0 <= number_rate <= 1.0:
        raise ValueError(f"number_rate must lie in [0, 1]; got {number_rate!r}")
    if not 0.0 <= temperature <= 2.0:
        raise ValueError(f"temperature must lie in [0, 2]; got {temperature!r}")
    start = positive_int("start", start, 0)
    base = base_seed(seed)
    return [_text(line_rng(base, TEXT_STREAM, start + i), lo, hi, float(number_rate),
                  float(temperature)) for i in range(n)]


def _range_arg(name: str, value, minimum: int) -> tuple[int, int]:
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value))
    if not ok or not minimum <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a pair of ints {minimum} <= lo <= hi; got {value!r}")
    return int(value[0]), int(value[1])
