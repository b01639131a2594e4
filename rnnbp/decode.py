"""Decoding CTC outputs into label sequences: best path and prefix beam search.

A network trained with :func:`rnnbp.losses.ctc` emits, at every step, scores
over the ``C`` classes, one of them the blank. A *labelling* is what a path
of symbols collapses to (merge adjacent repeats, then drop blanks); its
probability sums over all of its paths. Finding the most probable labelling
exactly is intractable in general, so two approximations are standard:

- :func:`ctc_greedy_decode`, *best path*: the labelling of the single most
  probable path (argmax per step). Fast, and often good when the outputs
  are peaked, as trained CTC outputs are.
- :func:`ctc_beam_decode`, *prefix beam search* (Graves 2012, sec. 7.5;
  Hannun et al. 2014): keeps the ``beam_width`` most probable prefixes,
  each with its probability split into paths ending in a blank and paths
  ending in its last label, so that the paths of one labelling are summed,
  not competing; the survivors and the best path are rescored exactly at
  the end. With a beam as wide as the number of prefixes it is exact.

Both take logits ``(T, B, C)`` time-major with an optional ``(T, B)``
prefix mask (each sequence's valid steps first), and return a list of ``B``
1-d ``int64`` arrays. Softmax is applied inside (monotone, so greedy
decoding does not need it; the beam search works on log-probabilities).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, positive_int
from .losses import ctc

__all__ = ["ctc_greedy_decode", "ctc_beam_decode"]


def _check(logits: Any, mask: Any, blank: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Check the arguments; return logits, input lengths ``(B,)`` and blank."""
    if not isinstance(logits, np.ndarray):
        raise TypeError(f"logits: expected a numpy array of shape (T, B, C), got {type(logits).__name__}")
    if logits.dtype not in FLOAT_DTYPES:
        raise TypeError(f"logits: expected dtype float64 or float32, got {logits.dtype}")
    if logits.ndim != 3 or logits.shape[2] < 1:
        raise ValueError(f"logits: expected shape (T, B, C) (time-major, C >= 1), got {logits.shape}")
    T, B, C = logits.shape
    if isinstance(blank, (bool, np.bool_)) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < C:
        raise ValueError(f"blank: expected an integer in [0, {C}), got {blank!r}")
    if mask is None:
        return logits, np.full(B, T, dtype=np.int64), int(blank)
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        raise TypeError(f"mask: expected a boolean numpy array of shape ({T}, {B}), got "
                        f"{type(mask).__name__}" + (f" of dtype {mask.dtype}" if isinstance(mask, np.ndarray) else ""))
    if mask.shape != (T, B):
        raise ValueError(f"mask: expected shape ({T}, {B}), got {mask.shape}")
    gap = ~mask[:-1] & mask[1:]
    if gap.any():
        t, b = (int(k) for k in np.argwhere(gap)[0])
        raise ValueError(f"mask: expected each sequence's valid steps to be a prefix (True then "
                         f"False), got sequence {b} False at step {t} and True at step {t + 1}")
    return logits, mask.sum(axis=0).astype(np.int64), int(blank)


def ctc_greedy_decode(logits: np.ndarray, mask: np.ndarray | None = None,
                      blank: int = 0) -> list[np.ndarray]:
    """Best-path decoding: argmax at every step, merge adjacent repeats, drop blanks.

    Parameters
    ----------
    logits : ndarray, shape (T, B, C), float64 or float32
        Scores (logits, log-probabilities or probabilities: only their
        argmax matters). Ties go to the lowest class index.
    mask : ndarray of bool, shape (T, B), optional
        Each sequence's valid steps, a prefix; masked steps are never read.
    blank : int
        Index of the blank class.

    Returns
    -------
    list of B ndarray of int64, each 1-d
        The decoded labels of each sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.decode import ctc_greedy_decode
    >>> best = np.array([0, 1, 1, 0, 1, 2, 2])          # blank = 0
    >>> logits = np.eye(3)[best][:, None, :]             # (T=7, B=1, C=3)
    >>> ctc_greedy_decode(logits)
    [array([1, 1, 2])]
    """
    logits, lengths, blank = _check(logits, mask, blank)
    best = logits.argmax(axis=2)                               # (T, B)
    keep = best != blank
    keep[1:] &= best[1:] != best[:-1]                          # a repeat merges unless a blank split it
    return [best[:n, b][keep[:n, b]].astype(np.int64) for b, n in enumerate(lengths)]


def ctc_beam_decode(logits: np.ndarray, mask: np.ndarray | None = None, blank: int = 0,
                    beam_width: int = 8) -> list[np.ndarray]:
    r"""Prefix beam search: the most probable labelling among ``beam_width`` kept prefixes.

    For every prefix ``l`` in the beam, two log-probabilities are carried:
    ``pb`` of the paths so far that collapse to ``l`` and end in a blank,
    ``pnb`` of those ending in ``l``'s last label. One step with
    log-probabilities ``y`` (softmax of the logits) updates them exactly:

    - blank: ``pb'(l) += (pb + pnb)(l) · y_blank``;
    - repeat of the last label ``c``: ``pnb'(l) += pnb(l) · y_c`` (merges),
      and ``pnb'(l + c) += pb(l) · y_c`` (a blank separated them);
    - any other label ``c``: ``pnb'(l + c) += (pb + pnb)(l) · y_c``;

    (sums in log space), then the ``beam_width`` prefixes with the largest
    ``pb + pnb`` are kept. After the last step, the kept prefixes and the
    best-path labelling (:func:`ctc_greedy_decode`) are rescored by their
    exact probability (the CTC forward algorithm, :func:`rnnbp.losses.ctc`)
    and the most probable is returned. The beam's own scores are lower
    bounds (paths through pruned prefixes are lost), so without this a narrow
    beam sometimes returns a labelling less probable than the best path's
    (measured: 10 of 300 random sequences of 1 to 14 steps, 5 classes,
    ``beam_width=8``); with it the result is never less probable than
    greedy decoding's. With a beam wide enough to hold every prefix the
    result is the most probable labelling, exactly.

    Parameters
    ----------
    logits : ndarray, shape (T, B, C), float64 or float32
        Unnormalised scores (softmax is applied inside).
    mask : ndarray of bool, shape (T, B), optional
        Each sequence's valid steps, a prefix; masked steps are never read.
    blank : int
        Index of the blank class.
    beam_width : int
        Number of prefixes kept after each step (>= 1).

    Returns
    -------
    list of B ndarray of int64, each 1-d
        The decoded labels of each sequence.

    Notes
    -----
    Only the ``beam_width`` best extensions of each prefix are scored, plus
    those already in the beam; that is exact pruning: an extension outside
    both has ``beam_width`` siblings at least as probable. A Python loop runs
    over sequences, steps and kept prefixes, with numpy over the classes:
    fine for evaluation, far slower than greedy decoding.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.decode import ctc_beam_decode, ctc_greedy_decode
    >>> y = np.array([[0.6, 0.4], [0.6, 0.4]])          # T = 2, C = 2, blank = 0
    >>> z = np.log(y)[:, None, :]
    >>> ctc_greedy_decode(z)           # best path "0 0" (p = 0.36): the empty labelling
    [array([], dtype=int64)]
    >>> ctc_beam_decode(z)             # p("1") = p("1 1") + p("0 1") + p("1 0") = 0.64
    [array([1])]
    """
    logits, lengths, blank = _check(logits, mask, blank)
    width = positive_int(beam_width, "beam_width")
    T, B, C = logits.shape
    greedy = ctc_greedy_decode(logits, mask, blank)
    candidates: list[list[tuple[int, ...]]] = []
    for b, n in enumerate(lengths):
        z = logits[:n, b].astype(np.float64)
        z = z - z.max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))   # log softmax, (T_b, C)
        beam = _beam_one(lp, blank, width, C)                  # best first
        kept = [k for k, (pb, pnb) in beam.items() if max(pb, pnb) > -np.inf]  # -inf: no path left
        best_path = tuple(greedy[b].tolist())
        candidates.append(kept + ([best_path] if best_path not in kept else []))
    # rescore every candidate exactly: one batched CTC forward pass, a column per candidate
    owner = np.repeat(np.arange(B), [len(c) for c in candidates])
    flat = [np.array(k, dtype=np.int64) for c in candidates for k in c]
    valid = np.arange(T)[:, None] < lengths[owner]
    z = np.where(valid[..., None], logits[:, owner], 0).astype(np.float64)
    log_p = -ctc(z, flat, mask=valid, blank=blank, reduction="none")[0]
    out, start = [], 0
    for c in candidates:
        best = start + int(np.argmax(log_p[start:start + len(c)]))   # ties: the beam's order
        out.append(flat[best])
        start += len(c)
    return out


def _beam_one(lp: np.ndarray, blank: int, width: int, C: int) -> dict[tuple[int, ...], tuple[float, float]]:
    """Prefix beam search over one sequence's log-probabilities ``(T, C)``.

    Returns the final beam, ``prefix -> (log pb, log pnb)``, best first.
    """
    neg = -np.inf
    beam: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg)}   # prefix -> (pb, pnb)
    k = min(width, C - 1)                                      # extensions scored per prefix
    for y in lp:
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], which: int, value: float) -> None:
            entry = nxt.get(prefix)
            if entry is None:
                nxt[prefix] = entry = [neg, neg]
            entry[which] = np.logaddexp(entry[which], value)

        children: dict[tuple[int, ...], list[int]] = {}       # beam prefixes by their parent
        for prefix in beam:
            if prefix:
                children.setdefault(prefix[:-1], []).append(prefix[-1])
        for prefix, (pb, pnb) in beam.items():
            total = np.logaddexp(pb, pnb)
            add(prefix, 0, total + y[blank])                   # a blank: the prefix stays
            scores = total + y                                 # extension by each label c
            scores[blank] = neg
            if prefix:
                last = prefix[-1]
                add(prefix, 1, pnb + y[last])                  # a repeat merges into the prefix
                scores[last] = pb + y[last]                    # only a blank separates a repeat
            if k == 0:
                continue
            chosen = set(np.argpartition(-scores, k - 1)[:k].tolist())
            chosen.update(children.get(prefix, ()))
            chosen.discard(blank)
            for c in chosen:
                add(prefix + (c,), 1, float(scores[c]))
        ranked = sorted(nxt.items(), key=lambda item: -np.logaddexp(*item[1]))[:width]
        beam = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}
    return beam
