"""What every data generator in :mod:`tasks.data` shares.

- :class:`SequenceData`, the container the sequence, text and glyph
  generators return, and :func:`one_hot`;
- the argument checks every generator uses, one message style:
  :func:`as_rng`, :func:`float_dtype`, :func:`positive_int`;
- :func:`last_step_mask` and :func:`full_lengths` for ``target_at="last"``
  data and fixed-length batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["SequenceData", "one_hot", "as_rng", "float_dtype", "positive_int", "last_step_mask", "full_lengths"]


@dataclass(frozen=True, eq=False)
class SequenceData:
    """A batch of time-major sequences with targets (see the module docstring).

    Attributes
    ----------
    xs : ndarray, shape (T, N, D), float
    ys : ndarray, shape (N, K) / (N,) for ``"last"``, (T, N, K) / (T, N) for ``"every"``
    mask : ndarray, shape (T, N), bool -- where outputs are scored.
    target_at : {"last", "every"}
    lengths : ndarray, shape (N,), int64 -- real steps per sequence.
    """

    xs: np.ndarray
    ys: np.ndarray
    mask: np.ndarray
    target_at: str
    lengths: np.ndarray

    def __post_init__(self):
        if self.xs.ndim != 3:
            raise ValueError(f"xs must be (T, N, D); got shape {self.xs.shape}")
        T, N, _ = self.xs.shape
        if self.target_at not in ("last", "every"):
            raise ValueError(f"target_at must be 'last' or 'every'; got {self.target_at!r}")
        lead = (N,) if self.target_at == "last" else (T, N)
        if self.ys.shape[:len(lead)] != lead or self.ys.ndim > len(lead) + 1:
            raise ValueError(f"ys for target_at={self.target_at!r} must start with {lead}; "
                             f"got shape {self.ys.shape}")
        if self.mask.shape != (T, N) or self.mask.dtype != bool:
            raise ValueError(f"mask must be bool {(T, N)}; got {self.mask.dtype} {self.mask.shape}")
        if self.lengths.shape != (N,):
            raise ValueError(f"lengths must be {(N,)}; got {self.lengths.shape}")

    @property
    def valid(self) -> np.ndarray:
        """(T, N) bool: True on the real (non-padding) input steps."""
        return np.arange(self.xs.shape[0])[:, None] < self.lengths[None, :]

    def last_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Pick each sequence's output at its last real step.

        Parameters
        ----------
        outputs : ndarray, shape (T, N, ...)

        Returns
        -------
        ndarray, shape (N, ...)
        """
        return outputs[self.lengths - 1, np.arange(self.lengths.shape[0])]

    def take(self, index) -> "SequenceData":
        """The sub-batch of columns ``index`` (an int array, slice or bool mask over N)."""
        ys = self.ys[index] if self.target_at == "last" else self.ys[:, index]
        return replace(self, xs=self.xs[:, index], ys=ys, mask=self.mask[:, index],
                       lengths=self.lengths[index])


def as_rng(seed) -> np.random.Generator:
    """``seed`` (an int or a ``numpy.random.Generator``, used as is) as a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be an int or a numpy.random.Generator; got {type(seed).__name__}")


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a ``numpy.dtype``; only float32 and float64 are allowed."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return dt


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``, or a ``ValueError`` naming ``name``."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def one_hot(indices, size: int, dtype=np.float64) -> np.ndarray:
    """One-hot encode integer indices.

    Parameters
    ----------
    indices : array_like of int, any shape S, values in ``[0, size)``
    size : int
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape S + (size,)
    """
    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"indices must lie in [0, {size}); got range "
                         f"[{indices.min()}, {indices.max()}]")
    return np.eye(size, dtype=float_dtype(dtype))[indices]


def last_step_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    """(T, N) bool, True only at each sequence's last real step ``lengths - 1``."""
    mask = np.zeros((T, lengths.shape[0]), dtype=bool)
    mask[lengths - 1, np.arange(lengths.shape[0])] = True
    return mask


def full_lengths(N: int, T: int) -> np.ndarray:
    """(N,) int64 lengths of a batch whose N sequences all have T steps."""
    return np.full(N, T, dtype=np.int64)
