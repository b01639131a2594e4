"""Spoken words and phone strings from fixed speaker panels: the data of ``python -m tasks run speech``.

The vocabulary has 20 words over the 12 phones, 19 of them in *anagram
groups*: words made of the same phones in another order ("tack" /t ae k/ and
"cat" /k ae t/; "seat", "teas", "east"). A model that only counts which
sounds occur cannot tell the words of a group apart; it must hear their
order.

Speakers are fixed in advance: :data:`HELD_OUT_SPEAKERS` are written out
below (never used to choose anything), :func:`training_speakers` draws the
training panel from a fixed seed. Validation data are new utterances of the
training speakers.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..common import float_dtype, positive_int
from .features import features
from .phones import PHONE_NAMES
from .synth import Speaker, random_speaker, seeded, synthesize

__all__ = ["VOCABULARY", "WORDS", "ANAGRAM_GROUPS", "HELD_OUT_SPEAKERS", "training_speakers", "SpeechSet",
           "word_set", "phone_set", "TRAINING_PANEL_SEED"]

#: word -> its phones.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "tack": ("t", "ae", "k"), "cat": ("k", "ae", "t"),
    "seat": ("s", "i", "t"), "teas": ("t", "i", "s"), "east": ("i", "s", "t"),
    "pan": ("p", "ae", "n"), "nap": ("n", "ae", "p"),
    "team": ("t", "i", "m"), "meat": ("m", "i", "t"),
    "soup": ("s", "uw", "p"), "puss": ("p", "uw", "s"), "oops": ("uw", "p", "s"),
    "shop": ("sh", "aa", "p"), "posh": ("p", "aa", "sh"),
    "seek": ("s", "i", "k"), "keys": ("k", "i", "s"), "ski": ("s", "k", "i"),
    "fan": ("f", "ae", "n"), "naff": ("n", "ae", "f"),
    "shoe": ("sh", "uw"),
}
WORDS: tuple[str, ...] = tuple(VOCABULARY)


def _groups() -> tuple[tuple[str, ...], ...]:
    by_bag: dict[tuple[str, ...], list[str]] = {}
    for w, ph in VOCABULARY.items():
        by_bag.setdefault(tuple(sorted(ph)), []).append(w)
    return tuple(tuple(g) for g in by_bag.values() if len(g) > 1)


#: The words with the same phones in another order, e.g. ("tack", "cat").
ANAGRAM_GROUPS: tuple[tuple[str, ...], ...] = _groups()

#: The held-out test speakers, fixed by their synthesis parameters.
HELD_OUT_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("test-man-1", "man", 95.0, 0.90, 1.15, 25.0, jitter=0.010),
    Speaker("test-man-2", "man", 140.0, 1.10, 0.85, 12.0, jitter=0.015),
    Speaker("test-man-3", "man", 115.0, 1.18, 1.05, 11.0, jitter=0.008),
    Speaker("test-woman-1", "woman", 170.0, 0.95, 1.00, 18.0, jitter=0.012),
    Speaker("test-woman-2", "woman", 230.0, 1.15, 1.20, 28.0, jitter=0.010),
    Speaker("test-woman-3", "woman", 200.0, 0.87, 0.82, 20.0, jitter=0.018),
    Speaker("test-child-1", "child", 210.0, 0.88, 0.90, 15.0, jitter=0.010),
    Speaker("test-child-2", "child", 255.0, 1.05, 1.10, 22.0, jitter=0.012),
)

#: The seed of the training speakers' parameters (fixed, not the experiment's seed).
TRAINING_PANEL_SEED = 2026


def training_speakers(n: int) -> tuple[Speaker, ...]:
    """``n`` training speakers, each drawn by :func:`random_speaker` from ``[TRAINING_PANEL_SEED, i]``."""
    n = positive_int("n", n)
    return tuple(random_speaker(f"train-{i:02d}", [TRAINING_PANEL_SEED, i]) for i in range(n))


@dataclass(frozen=True, eq=False)
class SpeechSet:
    """Padded feature sequences of utterances.

    Attributes
    ----------
    xs : ndarray, shape (T, N, D)
        Features (:func:`tasks.data.speech.features.features`), zero after each sequence's end.
    mask : ndarray of bool, shape (T, N)
        True on each sequence's frames (a prefix).
    lengths : ndarray of int64, shape (N,)
    labels : ndarray of int64, shape (N,)
        Word index in :data:`WORDS` (:func:`word_set`); -1 for phone strings.
    phones : list of N ndarray of int64
        Each utterance's phone labels, 1..12 (index in ``PHONE_NAMES`` plus one; 0 is CTC's blank).
    frame_phones : ndarray of int64, shape (T, N)
        The phone label (1..12) under each frame's centre, 0 for silence and padding.
    speakers : ndarray of int64, shape (N,)
        Index of the utterance's speaker in ``speaker_names``.
    speaker_names : tuple of str
    durations : ndarray of float64, shape (N,)
        Seconds from the first phone's start to the last phone's end.
    """

    xs: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    phones: list
    frame_phones: np.ndarray
    speakers: np.ndarray
    speaker_names: tuple[str, ...]
    durations: np.ndarray

    def __len__(self) -> int:
        return int(self.lengths.size)


@functools.lru_cache(maxsize=4096)
def _utterance(phones: tuple[str, ...], speaker: Speaker, seed: tuple[int, ...], sr: int, n_mels: int):
    u = synthesize(phones, speaker, sr=sr, seed=list(seed))
    f = features(u.wave, sr, n_mels)
    hop, win = round(0.010 * sr), round(0.025 * sr)
    centre = np.arange(f.shape[0]) * hop + win // 2
    frame_phone = np.zeros(f.shape[0], np.int64)
    for p, a, b in zip(phones, u.starts, u.ends):
        frame_phone[(centre >= a) & (centre < b)] = PHONE_NAMES.index(p) + 1
    return f, frame_phone, (u.ends[-1] - u.starts[0]) / sr


def _speaker_key(speaker: Speaker) -> int:
    return zlib.crc32(repr(speaker).encode())


def _assemble(items: list, dtype: np.dtype, speakers: Sequence[Speaker]) -> SpeechSet:
    """items: (phones, label, speaker index, features, frame phones, duration)."""
    lengths = np.array([it[3].shape[0] for it in items], np.int64)
    T, N, D = int(lengths.max()), len(items), items[0][3].shape[1]
    xs = np.zeros((T, N, D), dtype)
    frame_phones = np.zeros((T, N), np.int64)
    for n, it in enumerate(items):
        xs[:lengths[n], n] = it[3]
        frame_phones[:lengths[n], n] = it[4]
    mask = np.arange(T)[:, None] < lengths[None, :]
    return SpeechSet(xs, mask, lengths, np.array([it[1] for it in items], np.int64),
                     [np.array([PHONE_NAMES.index(p) + 1 for p in it[0]], np.int64) for it in items],
                     frame_phones, np.array([it[2] for it in items], np.int64),
                     tuple(s.name for s in speakers), np.array([it[5] for it in items]))


def word_set(speakers: Sequence[Speaker], repetitions: int, seed: int, *, sr: int = 16000, n_mels: int = 24,
             dtype=np.float32) -> SpeechSet:
    """Every word of :data:`VOCABULARY` said ``repetitions`` times by every speaker.

    Utterance ``(speaker s, word w, repetition r)`` is synthesised from the
    seed ``[seed, crc32(repr(s)), w, r]``: the same seed gives the same set,
    and a speaker's utterances do not depend on which other speakers are in
    the set. Order: speaker, then word, then repetition.
    """
    repetitions = positive_int("repetitions", repetitions)
    dt = float_dtype(dtype)
    items = []
    for si, s in enumerate(speakers):
        for wi, w in enumerate(WORDS):
            for r in range(repetitions):
                f, fp, d = _utterance(VOCABULARY[w], s, (int(seed), _speaker_key(s), wi, r), sr, n_mels)
                items.append((VOCABULARY[w], wi, si, f, fp, d))
    return _assemble(items, dt, speakers)


def phone_set(speakers: Sequence[Speaker], per_speaker: int, seed: int, *, words: tuple[int, int] = (2, 6),
              sr: int = 16000, n_mels: int = 24, dtype=np.float32) -> SpeechSet:
    """Continuous utterances of ``words[0]..words[1]`` random vocabulary words, ``per_speaker`` per speaker.

    Utterance ``(speaker s, i)`` draws its words and its sound from
    ``[seed, crc32(repr(s)), i]``; the words run together without pauses,
    so formant transitions cross word boundaries. ``labels`` are -1; the
    targets are ``phones``.
    """
    per_speaker = positive_int("per_speaker", per_speaker)
    lo, hi = words
    if not 1 <= lo <= hi:
        raise ValueError(f"words: expected (min, max) with 1 <= min <= max, got {words!r}")
    dt = float_dtype(dtype)
    items = []
    for si, s in enumerate(speakers):
        for i in range(per_speaker):
            key = (int(seed), _speaker_key(s), i)
            rng = seeded(list(key) + [0])
            chosen = rng.integers(len(WORDS), size=int(rng.integers(lo, hi + 1)))
            phones = tuple(p for w in chosen for p in VOCABULARY[WORDS[w]])
            f, fp, d = _utterance(phones, s, key, sr, n_mels)
            items.append((phones, -1, si, f, fp, d))
    return _assemble(items, dt, speakers)
