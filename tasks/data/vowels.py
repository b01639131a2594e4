"""UCI "Japanese Vowels": nine speakers saying /ae/, as time-major frames with masks.

The data (Kudo, Toyama & Shimbo 1999; CC BY 4.0) ship inside the repository
as ``tasks/data/japanese_vowels/japanese_vowels.npz``; its README gives the
source, licence, citation and counts, and ``convert.py`` beside it is how the
file was made. Loading needs numpy alone, no network, and checks the file's
SHA-256 first.

Each utterance is 7 to 29 frames of 12 LPC cepstrum coefficients; the task is
to name the speaker (9 classes). The standard split has 270 training
utterances (30 per speaker) and 370 test utterances (24 to 88 per speaker).

- :func:`load_japanese_vowels` -- both sets as :class:`Utterances`:
  ``(T, N, 12)`` frames padded with zeros after each utterance's end, a
  ``(T, N)`` mask, lengths and speakers;
- :func:`stratified_split` -- a validation split carved from the training
  set, the same number of utterances of every speaker, fixed by a seed;
- :func:`utterance_statistics` and :func:`frame_windows` -- the inputs of
  the static models: per-utterance mean and standard deviation of each
  coefficient, and windows of consecutive frames, both over valid frames only.

Example
-------
>>> from tasks.data.vowels import load_japanese_vowels
>>> data = load_japanese_vowels()
>>> data.train.xs.shape, data.test.xs.shape, data.n_classes
((26, 270, 12), (29, 370, 12), 9)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import as_rng, float_dtype, positive_int

__all__ = ["PATH", "SHA256", "COEFFICIENTS", "SPEAKERS", "Utterances", "VowelSet",
           "load_japanese_vowels", "stratified_split", "utterance_statistics", "frame_windows"]

#: The shipped file and its SHA-256 (also in the README beside it).
PATH = Path(__file__).resolve().parent / "japanese_vowels" / "japanese_vowels.npz"
SHA256 = "703958e3174526ff7379541229d481423b1122fa518911f62765a9421ae07c69"
#: LPC cepstrum coefficients per frame, and the number of speakers (classes).
COEFFICIENTS = 12
SPEAKERS = 9


@dataclass(frozen=True, eq=False)
class Utterances:
    """Utterances as padded time-major frames.

    Attributes
    ----------
    xs : ndarray, shape (T, N, 12), float
        Frame ``t`` of utterance ``n`` at ``xs[t, n]``; zeros after its end.
    mask : ndarray, shape (T, N), bool
        ``True`` on the real frames, ``t < lengths[n]``.
    lengths : ndarray, shape (N,), int64
    speakers : ndarray, shape (N,), int64
        The class, 0 to 8.
    """

    xs: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    speakers: np.ndarray

    def __post_init__(self) -> None:
        if self.xs.ndim != 3:
            raise ValueError(f"xs: expected (T, N, D), got shape {self.xs.shape}")
        T, N, _ = self.xs.shape
        if self.mask.shape != (T, N) or self.mask.dtype != bool:
            raise ValueError(f"mask: expected bool {(T, N)}, got {self.mask.dtype} {self.mask.shape}")
        if self.lengths.shape != (N,) or self.speakers.shape != (N,):
            raise ValueError(f"lengths, speakers: expected shape {(N,)}, got "
                             f"{self.lengths.shape} and {self.speakers.shape}")

    def __len__(self) -> int:
        return int(self.xs.shape[1])

    def take(self, index: np.ndarray) -> Utterances:
        """The utterances ``index`` (int array or bool mask over N), trimmed to their longest."""
        lengths = self.lengths[index]
        T = int(lengths.max()) if lengths.size else 0
        return Utterances(np.ascontiguousarray(self.xs[:T, index]), np.ascontiguousarray(self.mask[:T, index]),
                          lengths, self.speakers[index])


@dataclass(frozen=True, eq=False)
class VowelSet:
    """The standard split: ``train`` (270 utterances) and ``test`` (370)."""

    train: Utterances
    test: Utterances
    n_classes: int = SPEAKERS


def _pad(frames: np.ndarray, lengths: np.ndarray, speakers: np.ndarray, dtype: np.dtype) -> Utterances:
    T, N = int(lengths.max()), len(lengths)
    xs = np.zeros((T, N, frames.shape[1]), dtype=dtype)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for n, (s, L) in enumerate(zip(starts, lengths)):
        xs[:L, n] = frames[s:s + L]
    mask = np.arange(T)[:, None] < lengths[None, :]
    return Utterances(xs, mask, lengths.astype(np.int64), speakers.astype(np.int64))


def load_japanese_vowels(dtype: type | np.dtype = np.float64, *, path: str | Path | None = None) -> VowelSet:
    """Load the shipped data set after checking its SHA-256.

    Parameters
    ----------
    dtype : float32 or float64, default float64
        Of the frames (stored as float32, so float64 adds no precision but
        matches rnnbp's default).
    path : path, optional
        Another copy of the ``.npz`` (tests); the checksum must still match.

    Returns
    -------
    VowelSet

    Raises
    ------
    ValueError
        If the file's SHA-256 is not :data:`SHA256` (a changed or truncated copy).
    """
    dt = float_dtype(dtype)
    p = PATH if path is None else Path(path)
    got = hashlib.sha256(p.read_bytes()).hexdigest()
    if got != SHA256:
        raise ValueError(f"path: {p} has SHA-256 {got}, expected {SHA256} (the shipped Japanese Vowels file)")
    with np.load(p, allow_pickle=False) as d:
        frames, lengths, speakers, n_train = d["frames"], d["lengths"], d["speakers"], int(d["n_train"])
    lengths = lengths.astype(np.int64)
    split = int(lengths[:n_train].sum())
    return VowelSet(train=_pad(frames[:split], lengths[:n_train], speakers[:n_train], dt),
                    test=_pad(frames[split:], lengths[n_train:], speakers[n_train:], dt))


def stratified_split(speakers: np.ndarray, per_class: int, seed: int | np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)``: ``per_class`` utterances of every class go to validation.

    Parameters
    ----------
    speakers : ndarray of int, shape (N,)
    per_class : int
        Validation utterances per class; every class must have more.
    seed : int or numpy.random.Generator
        Which utterances: the same seed gives the same split.

    Returns
    -------
    train, validation : ndarray of int64, sorted
    """
    per_class = positive_int("per_class", per_class)
    rng = as_rng(seed)
    val = []
    for c in np.unique(speakers):
        members = np.flatnonzero(speakers == c)
        if len(members) <= per_class:
            raise ValueError(f"per_class: class {c} has {len(members)} utterances, "
                             f"cannot hold out {per_class} and keep one for training")
        val.append(rng.choice(members, size=per_class, replace=False))
    validation = np.sort(np.concatenate(val)).astype(np.int64)
    train = np.setdiff1d(np.arange(len(speakers)), validation).astype(np.int64)
    return train, validation


def utterance_statistics(xs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean and standard deviation of each coefficient over each utterance's valid frames.

    Parameters
    ----------
    xs : ndarray, shape (T, N, D)
    mask : ndarray of bool, shape (T, N)

    Returns
    -------
    ndarray, shape (N, 2 * D)
        ``[mean_1..mean_D, std_1..std_D]``; padding never enters.
    """
    if xs.ndim != 3 or mask.shape != xs.shape[:2]:
        raise ValueError(f"xs, mask: expected (T, N, D) and (T, N), got {xs.shape} and {mask.shape}")
    w = mask[..., None].astype(xs.dtype)
    n = w.sum(axis=0)
    if np.any(n == 0):
        raise ValueError(f"mask: utterance {int(np.argmin(n[:, 0]))} has no valid frame")
    mean = (xs * w).sum(axis=0) / n
    var = (((xs - mean) * w) ** 2).sum(axis=0) / n
    return np.concatenate([mean, np.sqrt(var)], axis=1)


def frame_windows(xs: np.ndarray, mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``width`` consecutive frames, and where a window lies wholly inside its utterance.

    Parameters
    ----------
    xs : ndarray, shape (T, N, D)
    mask : ndarray of bool, shape (T, N)
        A prefix mask (each utterance's frames first).
    width : int
        At most the shortest utterance's length, so every utterance has a window.

    Returns
    -------
    windows : ndarray, shape (T - width + 1, N, width * D)
        ``windows[t, n] = [xs[t, n], ..., xs[t + width - 1, n]]``.
    valid : ndarray of bool, shape (T - width + 1, N)
        ``True`` where all ``width`` frames are valid.
    """
    width = positive_int("width", width)
    T, N, D = xs.shape
    if mask.shape != (T, N):
        raise ValueError(f"mask: expected shape {(T, N)}, got {mask.shape}")
    shortest = int(mask.sum(axis=0).min())
    if width > shortest:
        raise ValueError(f"width: expected at most {shortest} (the shortest utterance), got {width}")
    S = T - width + 1
    windows = np.concatenate([xs[k:k + S] for k in range(width)], axis=2)
    valid = np.logical_and.reduce([mask[k:k + S] for k in range(width)])
    return np.ascontiguousarray(windows), valid
