"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015):
remember two marked values among many and output their sum.
"""

from __future__ import annotations

import numpy as np

from ..common import SequenceData, as_rng, float_dtype, full_lengths, last_step_mask, positive_int

__all__ = ["adding_problem", "adding_baseline_mse"]


def adding_problem(n: int, length: int, *, variant: str = "le", seed,
                   dtype=np.float64) -> SequenceData:
    """The adding problem: remember two marked values and output their sum.

    Each step has ``D = 2`` inputs ``(value, marker)``.

    ``variant="le"`` (Le, Jaitly & Hinton 2015, "A simple way to initialize
    recurrent networks of rectified linear units"; the form of Arjovsky et al.
    2016): values ``U[0, 1]``, exactly one marker 1 in each half of the fixed
    length ``T = length``; target ``a + b``.

    ``variant="hochreiter"`` (Hochreiter & Schmidhuber 1997, "Long short-term
    memory", experiment 4): lengths uniform in ``[length, length + length//10]``
    (padded with zeros), values ``U[-1, 1]``; ``X1`` is marked (1.0) at one of
    the first ten steps, ``X2`` at one of the unmarked steps ``1 .. length/2 - 1``;
    the first and last real steps carry marker -1 unless marked; if the first
    step is marked its value is set to 0. Target ``0.5 + (X1 + X2) / 4``.

    Parameters
    ----------
    n : int -- number of sequences N.
    length : int -- T (the minimum length for ``"hochreiter"``, >= 8; >= 2 for ``"le"``).
    variant : {"le", "hochreiter"}
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 2), ``ys`` (N, 1) float, ``target_at="last"``.
    """
    N, T0 = positive_int("n", n), positive_int("length", length, 2 if variant == "le" else 8)
    rng, dt = as_rng(seed), float_dtype(dtype)
    cols = np.arange(N)
    if variant == "le":
        xs = np.zeros((T0, N, 2), dtype=np.float64)
        xs[:, :, 0] = rng.uniform(0.0, 1.0, size=(T0, N))
        half = T0 // 2
        i = rng.integers(0, half, size=N)
        j = rng.integers(half, T0, size=N)
        xs[i, cols, 1] = 1.0
        xs[j, cols, 1] = 1.0
        ys = xs[i, cols, 0] + xs[j, cols, 0]
        lengths = full_lengths(N, T0)
    elif variant == "hochreiter":
        lengths = rng.integers(T0, T0 + T0 // 10 + 1, size=N).astype(np.int64)
        T = int(lengths.max())
        xs = np.zeros((T, N, 2), dtype=np.float64)
        valid = np.arange(T)[:, None] < lengths[None, :]
        xs[:, :, 0] = np.where(valid, rng.uniform(-1.0, 1.0, size=(T, N)), 0.0)
        xs[0, :, 1] = -1.0
        xs[lengths - 1, cols, 1] = -1.0
        i = rng.integers(0, min(10, T0 // 2), size=N)
        # X2 uniformly over steps 1 .. T0/2 - 1 other than i.
        choices = T0 // 2 - 1 - (i >= 1)
        j = 1 + rng.integers(0, choices, size=N)
        j = j + ((i >= 1) & (j >= i))
        xs[i, cols, 1] = 1.0
        xs[j, cols, 1] = 1.0
        xs[0, i == 0, 0] = 0.0
        ys = 0.5 + (xs[i, cols, 0] + xs[j, cols, 0]) / 4.0
    else:
        raise ValueError(f"variant must be 'le' or 'hochreiter'; got {variant!r}")
    T = xs.shape[0]
    return SequenceData(xs.astype(dt), ys[:, None].astype(dt), last_step_mask(lengths, T),
                        "last", lengths)


def adding_baseline_mse(variant: str = "le") -> float:
    """MSE of the trivial predictor that always outputs the mean target.

    It is the target variance: ``2 * 1/12 = 1/6`` for ``"le"`` and
    ``(0.9 * 1/3 + 1/3) / 16 = 0.0396`` for ``"hochreiter"`` (``X1`` is zeroed
    when the first step is marked, probability 1/10). A model has learned the
    task only when its MSE falls well below this number.

    Parameters
    ----------
    variant : {"le", "hochreiter"}

    Returns
    -------
    float
    """
    if variant == "le":
        return 1.0 / 6.0
    if variant == "hochreiter":
        return (0.9 / 3.0 + 1.0 / 3.0) / 16.0
    raise ValueError(f"variant must be 'le' or 'hochreiter'; got {variant!r}")
