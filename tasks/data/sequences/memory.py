"""Long-range memory tasks: a few informative steps among distractors.

- :func:`temporal_order`: classify the order of two or three marked symbols
  (Hochreiter & Schmidhuber 1997, experiments 6a/6b);
- :func:`copy_task`: reproduce K symbols after a delay (delayed recall);
- :func:`delayed_class`: recall a class shown ``lag`` steps before the end,
  the accuracy-versus-lag probe.
"""

from __future__ import annotations

import numpy as np

from ..common import SequenceData, as_rng, float_dtype, full_lengths, last_step_mask, one_hot, positive_int

__all__ = ["TEMPORAL_ORDER_SYMBOLS", "temporal_order", "copy_task", "delayed_class"]


TEMPORAL_ORDER_SYMBOLS = "EBabcdXY"


def temporal_order(n: int, *, n_relevant: int = 2, length: tuple[int, int] = (100, 110),
                   seed, dtype=np.float64) -> SequenceData:
    """Temporal order problem (Hochreiter & Schmidhuber 1997, experiments 6a/6b).

    A sequence starts with ``E``, ends with the trigger ``B``, and is filled
    with distractors ``a b c d``, except at ``n_relevant`` positions that hold
    ``X`` or ``Y``. The class is the X/Y pattern read as a binary number with
    X = 0, Y = 1, first symbol most significant: for 6a, XX→0 (Q), XY→1 (R),
    YX→2 (S), YY→3 (U); for 6b, eight classes. Lengths are uniform in
    ``length`` (paper: 100..110), padded with zeros. The relevant positions are
    drawn from the paper's windows scaled by ``length[0] / 100``: 6a
    ``t1 ∈ [10, 20]``, ``t2 ∈ [50, 60]``; 6b ``[10, 20]``, ``[33, 43]``, ``[66, 76]``.

    Parameters
    ----------
    n : int -- N.
    n_relevant : {2, 3} -- experiment 6a (4 classes) or 6b (8 classes).
    length : (int, int) -- inclusive range of sequence lengths, min >= 20.
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 8) one-hot over ``TEMPORAL_ORDER_SYMBOLS = "EBabcdXY"``,
        ``ys`` (N,) int64 in ``[0, 2**n_relevant)``, ``target_at="last"``.
    """
    N = positive_int("n", n)
    windows = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}
    if n_relevant not in windows:
        raise ValueError(f"n_relevant must be 2 or 3; got {n_relevant!r}")
    lo, hi = length
    if not (20 <= lo <= hi):
        raise ValueError(f"length must be (min, max) with 20 <= min <= max; got {length!r}")
    rng, dt = as_rng(seed), float_dtype(dtype)
    lengths = rng.integers(lo, hi + 1, size=N).astype(np.int64)
    T = int(lengths.max())
    sym = rng.integers(2, 6, size=(T, N))  # distractors a..d
    sym[0] = 0
    cols = np.arange(N)
    sym[lengths - 1, cols] = 1
    bits = rng.integers(0, 2, size=(n_relevant, N))
    scale = lo / 100.0
    for k, (a, b) in enumerate(windows[n_relevant]):
        pos = rng.integers(round(a * scale), round(b * scale) + 1, size=N)
        sym[pos, cols] = 6 + bits[k]
    xs = one_hot(sym, 8, dt)
    xs[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
    labels = (bits * (2 ** np.arange(n_relevant - 1, -1, -1))[:, None]).sum(axis=0)
    return SequenceData(xs, labels.astype(np.int64), last_step_mask(lengths, T), "last", lengths)


def copy_task(n: int, *, n_symbols: int = 8, n_recall: int = 10, delay: int = 10,
              seed, dtype=np.float64) -> SequenceData:
    """Copy (delayed recall) memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    Steps ``0 .. K-1`` show ``K = n_recall`` random symbols, then ``delay``
    blanks, then one recall cue at step ``K + delay``; during the last ``K``
    steps (inputs blank) the network must output the ``K`` symbols in order.
    ``T = 2K + delay + 1``.

    Parameters
    ----------
    n : int -- N.
    n_symbols : int -- alphabet size A.
    n_recall : int -- K.
    delay : int -- blanks between the last symbol and the cue (>= 0).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, A + 2) one-hot: symbols ``0..A-1``, blank ``A``, cue
        ``A + 1``. ``ys`` (T, N) int64 labels over ``A + 1`` classes: the symbol
        during the recall steps, the blank class ``A`` elsewhere.
        ``mask`` is True on the K recall steps only (score every step by
        using ``data.valid`` instead). ``target_at="every"``.
    """
    N, A, K = positive_int("n", n), positive_int("n_symbols", n_symbols), positive_int("n_recall", n_recall)
    delay = positive_int("delay", delay, 0)
    rng, dt = as_rng(seed), float_dtype(dtype)
    T = 2 * K + delay + 1
    symbols = rng.integers(0, A, size=(K, N))
    inp = np.full((T, N), A)
    inp[:K] = symbols
    inp[K + delay] = A + 1
    ys = np.full((T, N), A, dtype=np.int64)
    ys[T - K:] = symbols
    mask = np.zeros((T, N), dtype=bool)
    mask[T - K:] = True
    return SequenceData(one_hot(inp, A + 2, dt), ys, mask, "every", full_lengths(N, T))


def delayed_class(n: int, lag: int, *, n_classes: int = 4, n_distractors: int = 4,
                  length: int | None = None, seed, dtype=np.float64) -> SequenceData:
    """Recall the class shown ``lag`` steps before the end, among distractors.

    Step ``T - 1 - lag`` shows one of ``n_classes`` class symbols; every other
    step shows a random distractor (symbols disjoint from the classes). The
    label is the class, scored at the last step. A static model that sees only
    the last ``w`` steps (a window MLP) is at chance once ``lag >= w``, while a
    recurrent network must hold the class for ``lag`` steps — an
    accuracy-versus-lag probe in the spirit of Bengio, Simard & Frasconi 1994.

    Parameters
    ----------
    n : int -- N.
    lag : int -- >= 0.
    n_classes, n_distractors : int
    length : int, optional -- T (default ``lag + 10``; at least ``lag + 1``).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, n_classes + n_distractors) one-hot, ``ys`` (N,) int64,
        ``target_at="last"``.
    """
    N, lag = positive_int("n", n), positive_int("lag", lag, 0)
    C, M = positive_int("n_classes", n_classes, 2), positive_int("n_distractors", n_distractors)
    T = lag + 10 if length is None else positive_int("length", length, lag + 1)
    rng, dt = as_rng(seed), float_dtype(dtype)
    sym = C + rng.integers(0, M, size=(T, N))
    labels = rng.integers(0, C, size=N).astype(np.int64)
    sym[T - 1 - lag] = labels
    return SequenceData(one_hot(sym, C + M, dt), labels, last_step_mask(full_lengths(N, T), T), "last",
                        full_lengths(N, T))
