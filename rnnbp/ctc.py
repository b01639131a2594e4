"""Connectionist temporal classification (CTC): the loss of a label sequence against a sequence of logits.

:func:`ctc` speaks the loss protocol of :mod:`rnnbp.losses`
(``loss(outputs, targets, mask) -> (value, doutputs)``), so it plugs into
``rnnbp.fit(..., loss=rnnbp.losses.ctc, target="sequence")``; the public name
is ``rnnbp.losses.ctc``. Labels are a list of 1-d int arrays (ragged) or a
padded ``(B, L_max)`` int array whose padding is :data:`PAD` (``-1``).
"""

# One idea in one module: the forward-backward recursion over the
# blank-extended label, its argument checks and its gradient.

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks, buffers
from .errors import NonFiniteError

__all__ = ["ctc", "PAD"]

#: The padding value of a padded ``(B, L_max)`` label array: every negative
#: entry is padding and must follow the row's labels.
PAD = -1

# -- connectionist temporal classification (CTC) -------------------------------
#
# Graves et al. (2006). The blank-extended label of l = (l_1 .. l_L) is
# l' = (blank, l_1, blank, l_2, ..., l_L, blank), S = 2L + 1 states. A path
# of T symbols collapses to l iff it walks l' from state 0 or 1 to state
# S - 1 or S - 2, each step staying, moving one state on, or skipping a
# blank between two *different* labels. Everything below is in log space.

_CTC_REDUCTIONS = ("mean", "sum", "none")


def _ctc_labels(labels: Any, label_lengths: Any, B: int, C: int,
                blank: int) -> tuple[np.ndarray, np.ndarray]:
    """Return padded labels ``(B, L_max)`` int64 (padding = blank) and lengths ``(B,)``."""
    if isinstance(labels, np.ndarray) and labels.dtype == object and labels.ndim == 1:
        labels = list(labels)                            # an object array of ragged rows
    if isinstance(labels, (list, tuple)):
        if label_lengths is not None:
            raise ValueError("label_lengths: expected None when labels is a list of 1-d arrays "
                             "(their lengths are the label lengths), got an argument")
        if len(labels) != B:
            raise ValueError(f"labels: expected {B} label sequences (the batch size of logits), "
                             f"got {len(labels)}")
        rows = []
        for b, row in enumerate(labels):
            row = np.asarray(row)
            if row.ndim != 1 or (row.size and row.dtype.kind not in "iu"):
                raise TypeError(f"labels[{b}]: expected a 1-d integer array, "
                                f"got shape {row.shape} and dtype {row.dtype}")
            rows.append(row.astype(np.int64))
        lengths = np.array([r.size for r in rows], dtype=np.int64)
        padded = np.full((B, int(lengths.max(initial=0))), blank, dtype=np.int64)
        for b, row in enumerate(rows):
            padded[b, :row.size] = row
    elif isinstance(labels, np.ndarray):
        if labels.ndim != 2 or labels.shape[0] != B:
            raise ValueError(f"labels: expected shape ({B}, L_max) (batch of padded label "
                             f"sequences), got {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels: expected an integer dtype (class indices), got {labels.dtype}")
        L_max = labels.shape[1]
        if label_lengths is None:                        # PAD (any negative) marks the padding
            pad = labels < 0
            late = ~pad[:, 1:] & pad[:, :-1]             # a label after padding
            if late.any():
                b, i = (int(k) for k in np.argwhere(late)[0])
                raise ValueError(f"labels: padding ({labels[b, i]}, any negative value) may only follow "
                                 f"a row's labels, got label {labels[b, i + 1]} at position {i + 1} of "
                                 f"sequence {b} after padding at position {i}")
            lengths = (~pad).sum(axis=1).astype(np.int64)
        else:
            if not isinstance(label_lengths, np.ndarray) or label_lengths.dtype.kind not in "iu":
                raise TypeError(f"label_lengths: expected an integer numpy array of shape ({B},), "
                                f"got {type(label_lengths).__name__}"
                                + (f" of dtype {label_lengths.dtype}"
                                   if isinstance(label_lengths, np.ndarray) else ""))
            if label_lengths.shape != (B,):
                raise ValueError(f"label_lengths: expected shape ({B},), got {label_lengths.shape}")
            bad = (label_lengths < 0) | (label_lengths > L_max)
            if bad.any():
                b = int(np.argmax(bad))
                raise ValueError(f"label_lengths: expected values in [0, {L_max}] (labels has "
                                 f"{L_max} columns), got {label_lengths[b]} for sequence {b}")
            lengths = label_lengths.astype(np.int64)
        valid = np.arange(L_max) < lengths[:, None]
        padded = np.where(valid, labels, blank).astype(np.int64)  # padding may hold anything
    else:
        raise TypeError(f"labels: expected an integer numpy array of shape ({B}, L_max) or a "
                        f"list of {B} 1-d integer arrays, got {type(labels).__name__}")
    valid = np.arange(padded.shape[1]) < lengths[:, None]
    bad = valid & ((padded < 0) | (padded >= C) | (padded == blank))
    if bad.any():
        b, i = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"labels: expected class indices in [0, {C}) other than blank = {blank}, "
                         f"got {padded[b, i]} at position {i} of sequence {b}")
    return padded, lengths


def _ctc_input_lengths(mask: Any, T: int, B: int) -> np.ndarray:
    """Input lengths ``(B,)`` from a ``(T, B)`` prefix mask (all ``T`` without one)."""
    if mask is None:
        return np.full(B, T, dtype=np.int64)
    mask = _checks.loss_mask(mask, (T, B), "logits")
    gap = ~mask[:-1] & mask[1:]   # a False followed by a True: not a prefix
    if gap.any():
        t, b = (int(k) for k in np.argwhere(gap)[0])
        raise ValueError(f"mask: expected each sequence's valid steps to be a prefix (True then "
                         f"False), got sequence {b} False at step {t} and True at step {t + 1}")
    return mask.sum(axis=0).astype(np.int64)


def _ctc_skip(ext: np.ndarray, blank: int) -> np.ndarray:
    """``(B, S)``: 0 where state s may be entered from s - 2 (a label unlike the one two back), else -inf."""
    allowed = np.zeros(ext.shape, dtype=bool)
    allowed[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    return np.where(allowed, 0.0, -np.inf)


def _ctc_alpha(lpe: np.ndarray, skip: np.ndarray, neg: float) -> np.ndarray:
    r"""Forward variables in log space, ``(T, N, S + 2)``; columns 0 and 1 of each row are padding.

    ``alpha_t(s) = logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) + skip(s))
    + lpe_t(s)`` (Graves et al. 2006, eq. 6-7), ``alpha_0(s) = lpe_0(s)`` for s < 2.

    ``lpe`` ``(T, N, S + 2)`` holds ``neg`` in the padding columns and at masked
    steps, ``skip`` ``(N, S + 2)`` is 0 or -inf (-inf in the padding). The
    rows are laid end to end, so s - 1 and s - 2 are shifts by 1 and 2 of
    one contiguous vector, and a row's first states read its own padding.
    ``neg`` is a finite stand-in for log 0 (about ``-1e304``): every term
    then stays finite, so the max subtracted before ``exp`` is never -inf
    (no ``-inf - -inf``), and one term is always ``exp(0) = 1`` (no log 0).
    States that cannot be reached hold multiples of ``neg``.

    The differences to the max are clipped at -50 before ``exp``: the max's
    own term is exactly 1, and ``1 + x`` rounds to 1 in float64 for any
    ``x < 1.1e-16`` (two terms of ``exp(-50) = 2e-22`` included), so the
    result is bit for bit the unclipped one, while ``exp`` of arguments
    below about -700 (underflow, subnormal results) runs 8 to 50 times slower.
    """
    T, N, W = lpe.shape
    A = buffers.scratch((T, N * W), np.float64)
    if T == 0:
        return A.reshape(T, N, W)
    A[0] = neg
    A[1:, :2] = neg                                # the loop writes the rest of every later row
    A[0].reshape(N, W)[:, 2:4] = lpe[0, :, 2:4]
    flat = lpe.reshape(T, N * W)
    sk = skip.reshape(-1)[2:]
    n = N * W - 2
    m, e, d = np.empty(n), np.empty(n), np.empty((3, n))    # d: the three terms, one exp call
    for t in range(1, T):
        prev = A[t - 1]
        a1, a2 = prev[2:], prev[1:-1]
        np.add(prev[:-2], sk, out=d[2])            # alpha_{t-1}(s-2) + skip(s)
        np.maximum(a1, a2, out=m)
        np.maximum(m, d[2], out=m)
        np.subtract(a1, m, out=d[0])
        np.subtract(a2, m, out=d[1])
        np.subtract(d[2], m, out=d[2])
        np.maximum(d, -50.0, out=d)                # see below: changes no bit, keeps exp fast
        np.exp(d, out=d)
        np.add(d[0], d[1], out=e)
        e += d[2]
        np.log(e, out=e)
        m += flat[t, 2:]
        np.add(e, m, out=A[t, 2:])
    return A.reshape(T, N, W)


def ctc(logits: np.ndarray, labels: np.ndarray | list[np.ndarray],
        mask: np.ndarray | None = None, *, label_lengths: np.ndarray | None = None,
        blank: int = 0, reduction: str = "mean",
        zero_infinity: bool = False) -> tuple[float | np.ndarray, np.ndarray]:
    r"""Connectionist temporal classification loss on logits (softmax inside).

    For sequence ``b`` with input length ``T_b`` and label ``l`` of length
    ``L_b``, the loss is ``-log p(l | z)``, where ``p`` sums, over every
    path ``pi`` of ``T_b`` symbols that collapses to ``l`` (merge repeats,
    then drop blanks), the product ``prod_t softmax(z_t)[pi_t]`` (Graves et
    al. 2006). It is computed exactly by the forward-backward recursion over
    the blank-extended label in log space, so it neither underflows nor
    overflows for any finite logits and any length (checked at T = 2000 in
    float32). With ``alpha``, ``beta`` the forward and backward variables,
    both including the emission at ``t``, and ``y = softmax(z)``,

    .. math::

        \frac{\partial(-\log p)}{\partial z_{t,c}} = y_{t,c}
            - \frac{1}{p} \sum_{s:\, l'_s = c}
              \frac{\alpha_t(s)\, \beta_t(s)}{y_{t,\,l'_s}}.

    Parameters
    ----------
    logits : ndarray, shape (T, B, C), float64 or float32
        Unnormalised scores, time-major; class ``blank`` is the blank.
    labels : ndarray of int, shape (B, L_max), or list of B 1-d int arrays
        The target label sequences, without blanks. As a list (or a 1-d
        object array): each array is one sequence's labels (length 0
        allowed), and ``label_lengths`` must be None. As a padded array:
        each row holds its labels, then the padding value :data:`PAD`
        (``-1``; any negative value is padding and may only follow the
        labels); or, with ``label_lengths``, the first ``label_lengths[b]``
        entries of row ``b`` are its labels and the rest may hold anything.
    mask : ndarray of bool, shape (T, B), optional
        ``True`` on each sequence's valid steps, which must be a prefix: the
        input length of sequence ``b`` is ``mask[:, b].sum()``. Without a
        mask every sequence has length ``T``. Masked steps are never looked
        at (they may hold NaN) and get an exact zero gradient.
    label_lengths : ndarray of int, shape (B,), optional
        Only with a padded array ``labels``: values in ``[0, L_max]``
        (without it, the lengths are the counts of non-negative entries).
    blank : int
        Index of the blank class, in ``[0, C)``; labels may not use it.
    reduction : {"mean", "sum", "none"}
        ``"mean"`` (PyTorch's ``CTCLoss`` default, the same numbers): each
        sequence's loss divided by its label length (by 1 for an empty
        label), then averaged over the ``B`` sequences. ``"sum"``: the sum
        of the sequences' losses. ``"none"``: the ``(B,)`` array of the
        sequences' losses.
    zero_infinity : bool
        If True, a sequence whose label cannot fit its input (see Raises)
        gets loss 0 and gradient 0, and still counts in the mean's ``B``
        (as in PyTorch). If False, such a sequence raises.

    Returns
    -------
    loss : float, or ndarray of float64, shape (B,), for ``reduction="none"``
        ``0.0`` for an empty batch.
    dlogits : ndarray, same shape and dtype as ``logits``
        The gradient of ``loss`` (of ``loss.sum()`` for ``"none"``, so
        column ``b`` is sequence ``b``'s own gradient); zero at masked steps.

    Raises
    ------
    TypeError, ValueError
        Wrong types, dtypes or shapes; a label outside ``[0, C)`` or equal
        to ``blank``; a mask that is not a prefix; and, unless
        ``zero_infinity``, a sequence whose label is impossible: a label of
        length ``L`` with ``r`` adjacent repeats needs ``L + r`` steps
        (a blank between the repeats), more than its input length.
    NonFiniteError
        A NaN/inf logit at a valid step.

    Notes
    -----
    Vectorised over the batch; the only Python loop is over time. The
    backward variables are the forward variables of the time-reversed
    problem (each valid prefix reversed, each label reversed), so one loop
    runs both, stacked on the batch axis. Internally float64 whatever the
    dtype of ``logits``. The large scratch arrays are fresh, or come from
    the :class:`rnnbp.BufferPool` in use when ``train_step``/``fit`` run
    with ``pool=`` (same numbers, bit for bit; about 30% less time at
    T = 200, B = 32, C = 80, where fresh arrays cost page faults: 28 -> 20 ms
    in float32 in the benchmark record).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.losses import ctc
    >>> z = np.zeros((2, 1, 3))                 # T = 2, B = 1, C = 3: y = 1/3 everywhere
    >>> loss, dz = ctc(z, np.array([[1]]), reduction="sum")
    >>> round(np.exp(-loss) * 9)                # paths "1 1", "0 1", "1 0"
    3
    >>> np.round(dz[:, 0], 6) + 0.0             # y - P(class at t | label)
    array([[ 0.      , -0.333333,  0.333333],
           [ 0.      , -0.333333,  0.333333]])
    """
    logits = _checks.loss_outputs(logits, "logits")
    if logits.ndim != 3:
        raise ValueError(f"logits: expected shape (T, B, C) (time-major), got {logits.shape}")
    T, B, C = logits.shape
    if C < 1:
        raise ValueError(f"logits: expected at least one class on the last axis, got shape {logits.shape}")
    if isinstance(blank, (bool, np.bool_)) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < C:
        raise ValueError(f"blank: expected an integer in [0, {C}), got {blank!r}")
    blank = int(blank)
    if reduction not in _CTC_REDUCTIONS:
        raise ValueError(f"reduction: expected one of {', '.join(map(repr, _CTC_REDUCTIONS))}, "
                         f"got {reduction!r}")
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"zero_infinity: expected True or False, got {zero_infinity!r}")
    input_lengths = _ctc_input_lengths(mask, T, B)
    labels, label_lengths = _ctc_labels(labels, label_lengths, B, C, blank)
    L = labels.shape[1]

    # A label needs one step per symbol plus a blank between adjacent repeats.
    in_label = np.arange(L)[1:] < label_lengths[:, None]
    repeats = ((labels[:, 1:] == labels[:, :-1]) & in_label).sum(axis=1)
    feasible = label_lengths + repeats <= input_lengths
    if not zero_infinity and not feasible.all():
        b = int(np.argmin(feasible))
        raise ValueError(f"labels: sequence {b} cannot be aligned: its label of length "
                         f"{label_lengths[b]} with {repeats[b]} adjacent repeats needs at least "
                         f"{label_lengths[b] + repeats[b]} steps, its input has {input_lengths[b]} "
                         f"(pass zero_infinity=True to give it loss 0 and gradient 0)")
    valid = np.arange(T)[:, None] < input_lengths          # (T, B): the prefix mask
    bad = ~np.isfinite(logits).all(axis=-1) & valid
    if bad.any():
        t, b = (int(k) for k in np.argwhere(bad)[0])
        raise NonFiniteError(f"ctc: loss is nan; first non-finite logit "
                             f"({logits[t, b][~np.isfinite(logits[t, b])][0]}) at (t, b) = {(t, b)}",
                             step=t)
    if B == 0:
        return (np.zeros(0) if reduction == "none" else 0.0), np.zeros_like(logits)

    # log softmax in float64; masked steps are set to 0 first (they may hold NaN)
    # (the large internal arrays come from rnnbp.buffers: fresh, or from the BufferPool in use)
    z = buffers.scratch((T, B, C), np.float64)
    np.copyto(z, logits)
    if mask is not None:
        z[~valid] = 0
    z -= z.max(axis=2, keepdims=True)
    # y becomes the gradient: fresh when that is float64, scratch when it is cast to float32
    y = np.exp(z, out=np.empty((T, B, C)) if logits.dtype == np.float64 else buffers.scratch((T, B, C), np.float64))
    total = y.sum(axis=2, keepdims=True)
    y /= total                                                 # softmax
    z -= np.log(total)
    lp = z                                                     # log softmax, (T, B, C)

    # blank-extended labels l' (B, S), and those of the reversed labels
    S = 2 * L + 1
    W = S + 2                                                  # a row of states and 2 padding
    S_b = 2 * label_lengths + 1
    ext = np.full((B, S), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    s_idx = np.arange(S)
    in_ext = s_idx < S_b[:, None]
    rev_s = np.where(in_ext, S_b[:, None] - 1 - s_idx, s_idx)  # reverse each valid part
    ext_rev = np.take_along_axis(ext, rev_s, axis=1)
    rev_t = np.where(valid, input_lengths - 1 - np.arange(T)[:, None], np.arange(T)[:, None])
    b_idx = np.arange(B)

    # log y of each state at each step, for the problem and its reverse: (T, 2B, W), by flat
    # indices into lp; a finite stand-in for log 0 (see _ctc_alpha) in the padding and at
    # masked steps, small enough that T of them still do not overflow
    neg = np.finfo(np.float64).min / (4 * (T + 4))
    # (every input T steps long: the reverse problem's steps are a plain flip in time, read
    # through views instead of (T, B, S) index arrays)
    full_length = bool((input_lengths == T).all())
    at = buffers.scratch((T, B, S), np.int64)
    np.add(((np.arange(T)[:, None] * B + b_idx) * C)[:, :, None], ext, out=at)
    lpe = buffers.scratch((T, 2 * B, W), np.float64)
    lpe[:, :, :2] = neg
    lp.take(at, out=lpe[:, :B, 2:], mode="clip")              # indices are in range: no check
    if full_length:
        lpe[:, B:, 2:] = lp[::-1, b_idx[:, None], ext_rev]
    else:
        at_rev = buffers.scratch((T, B, S), np.int64)
        np.add(((rev_t * B + b_idx) * C)[:, :, None], ext_rev, out=at_rev)
        lp.take(at_rev, out=lpe[:, B:, 2:], mode="clip")
    lpe[:, :B][~valid] = neg
    lpe[:, B:][~valid] = neg
    skip = np.full((2 * B, W), -np.inf)
    skip[:B, 2:] = _ctc_skip(ext, blank)
    skip[B:, 2:] = _ctc_skip(ext_rev, blank)
    A = _ctc_alpha(lpe, skip, neg)

    # log p = logsumexp of the last two states at the last valid step
    last = np.maximum(input_lengths - 1, 0)
    end = A[last, b_idx, 2:] if T else np.full((B, S), neg)  # (B, S) alpha_{T_b - 1}
    e1 = np.take_along_axis(end, (S_b - 1)[:, None], axis=1)[:, 0]
    e2 = np.where(S_b >= 2, np.take_along_axis(end, np.maximum(S_b - 2, 0)[:, None], axis=1)[:, 0], neg)
    log_p = np.logaddexp(e1, e2)
    log_p[input_lengths == 0] = np.where(label_lengths == 0, 0.0, neg)[input_lengths == 0]
    losses = np.where(feasible, -log_p, 0.0)
    if not (losses < -neg / 4).all():               # a feasible label with log p near log 0
        b = int(np.argmin(losses < -neg / 4))
        raise NonFiniteError(f"ctc: loss of sequence {b} is inf: the logits are finite but "
                             f"every alignment's probability underflows float64")

    # occupation gamma_t(s) = alpha_t(s) beta_t(s) / (y_t(s) p), beta read from the reverse
    # problem at step T_b - 1 - t, state S_b - 1 - s; states past S_b read padding (log 0)
    rev_cols = np.where(in_ext, rev_s + 2, 0)
    if full_length:
        log_gamma = A[::-1, B + b_idx[:, None], rev_cols]
    else:
        where_beta = at_rev                                    # its buffer is free again
        np.add(((rev_t * (2 * B) + B + b_idx) * W)[:, :, None], rev_cols, out=where_beta)
        log_gamma = A.take(where_beta, out=buffers.scratch((T, B, S), np.float64), mode="clip")
    log_gamma += A[:, :B, 2:]
    log_gamma -= lpe[:, :B, 2:]
    log_gamma -= log_p[:, None]
    # gamma <= 1 (up to rounding); below e^-700 it is 0 to float64 next to y, and clipping keeps
    # exp off its slow underflow path; masked and impossible sequences (finite junk here) get
    # weight 0 below
    np.clip(log_gamma, -700.0, 0.0, out=log_gamma)
    gamma = np.exp(log_gamma, out=log_gamma)

    # dL/dz = y - occupancy, the occupancy summing gamma over the states of each class: at
    # holds each state's flat index into (T, B, C) (ufunc.at: no (T, B, C) temporary)
    np.subtract.at(y.reshape(-1), at.reshape(-1), gamma.reshape(-1))

    if reduction == "mean":
        weight = 1.0 / (B * np.maximum(label_lengths, 1))
        value: float | np.ndarray = float(np.sum(losses * weight))
    elif reduction == "sum":
        weight = np.ones(B)
        value = float(np.sum(losses))
    else:
        weight = np.ones(B)
        value = losses
    scale = np.where(valid & feasible, weight, 0.0)[..., None]
    if logits.dtype == np.float64:
        y *= scale
        return value, y
    return value, np.multiply(y, scale, out=np.empty(logits.shape, logits.dtype), casting="same_kind")
