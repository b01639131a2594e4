"""Losses that return their value and the gradient with respect to the outputs.

One module for one idea, a loss that returns ``(value, gradient)`` with the
same argument checks, masks and non-finite handling; it passes the usual
~400 lines only because :func:`ctc` (its own section at the end) needs a
forward-backward recursion, and splitting it off would scatter the shared
checks. Its helpers are private to that section.

Every per-position loss is a function ``loss(outputs, targets, mask=None) -> (value, doutputs)``:

- ``outputs`` is ``(T, B, O)`` for a sequence, ``(B, O)`` for one step, or
  any ``(..., O)``: the last axis is the feature (class) axis, the leading
  axes are *positions*;
- ``mask``, when given, is a boolean array of the leading shape (``(T, B)``
  or ``(B,)``): ``False`` positions (ended sequences, padding) contribute
  nothing to the value and get an exact zero gradient; their outputs and
  targets are never looked at, so padding may hold anything, even NaN;
- ``value`` is a Python ``float``, the **mean** over valid elements
  (PyTorch's ``reduction='mean'``): over every valid element including the
  feature axis for :func:`mse` and :func:`binary_cross_entropy`, over valid
  positions for :func:`softmax_cross_entropy`;
- ``doutputs`` has the shape and dtype of ``outputs`` (float32 stays float32)
  and is a fresh array, ready to hand to ``graph.backward``.

If no element is valid (everything masked, or an empty batch) the value is
``0.0`` and the gradient is all zeros, rather than the NaN of ``0 / 0``.

The value is accumulated in float64 whatever the dtype; the gradient is
computed in the outputs' dtype. A non-finite value raises
:class:`rnnbp.NonFiniteError` naming the loss and the first position (in
C order) of a non-finite output: a NaN is never returned silently.

:func:`ctc` scores a whole label sequence against a ``(T, B, C)`` sequence of
logits, ``ctc(logits, labels, *, mask=None, ...) -> (value, dlogits)``, with
PyTorch's ``CTCLoss`` reductions (its ``"mean"`` divides each sequence's loss
by its label length); see its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES
from . import buffers
from .errors import NonFiniteError

__all__ = ["mse", "softmax_cross_entropy", "binary_cross_entropy", "ctc"]


# -- argument checks -----------------------------------------------------------

def _check_outputs(outputs: Any, name: str) -> np.ndarray:
    if not isinstance(outputs, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array of shape (T, B, O) or (B, O), "
                        f"got {type(outputs).__name__}")
    if outputs.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float64 or float32, got {outputs.dtype}")
    if outputs.ndim < 1:
        raise ValueError(f"{name}: expected an array of shape (T, B, O) or (B, O) "
                         f"(last axis = features), got a 0-d array")
    return outputs


def _check_mask(mask: Any, lead: tuple[int, ...], outputs_name: str) -> np.ndarray | None:
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask: expected a boolean numpy array of shape {lead}, "
                        f"got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask: expected dtype bool, got {mask.dtype}")
    if mask.shape != lead:
        raise ValueError(f"mask: expected shape {lead} (the leading dims of {outputs_name}), "
                         f"got {mask.shape}")
    return mask


def _check_targets(targets: Any, outputs: np.ndarray, mask: np.ndarray | None,
                   *, unit_interval: bool) -> np.ndarray:
    """Check float targets shaped like ``outputs``; return them in its dtype."""
    if not isinstance(targets, np.ndarray):
        raise TypeError(f"targets: expected a numpy array of shape {outputs.shape}, "
                        f"got {type(targets).__name__}")
    if targets.shape != outputs.shape:
        raise ValueError(f"targets: expected shape {outputs.shape} (the shape of the outputs), "
                         f"got {targets.shape}")
    if unit_interval and targets.dtype.kind in "biu":
        targets = targets.astype(outputs.dtype)  # 0/1 labels convert exactly
    elif targets.dtype != outputs.dtype:
        raise TypeError(f"targets: expected dtype {outputs.dtype} (the dtype of the outputs), "
                        f"got {targets.dtype} (convert once with "
                        f"targets.astype(np.{outputs.dtype.name}))")
    if unit_interval:
        bad = ~((targets >= 0) & (targets <= 1))  # also catches NaN
        what = "values in [0, 1]"
    else:
        bad = ~np.isfinite(targets)
        what = "finite values"
    if mask is not None:
        bad &= mask[..., None]
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"targets: expected {what}, got {targets[index]} at index {index}")
    return targets


def _where(index: tuple[int, ...]) -> str:
    if len(index) == 2:
        return f"(t, b) = {index}"
    if len(index) == 1:
        return f"b = {index[0]}"
    return f"index {index}"


def _raise_nonfinite(loss_name: str, value: float, outputs: np.ndarray,
                     valid: np.ndarray | None, position_loss: np.ndarray) -> None:
    """Raise ``NonFiniteError`` naming the first non-finite output position.

    ``position_loss`` has the leading shape; it locates an overflow when every
    output is finite.
    """
    lead = outputs.shape[:-1]
    bad_out = ~np.isfinite(outputs).all(axis=-1)
    if valid is not None:
        bad_out &= valid
    if bad_out.any():
        index = tuple(int(i) for i in np.argwhere(bad_out)[0]) if lead else ()
        row = outputs[index]
        first = row[~np.isfinite(row)][0]
        detail = f"first non-finite output ({first}) at {_where(index)}"
    else:
        bad = ~np.isfinite(position_loss)
        if valid is not None:
            bad &= valid
        index = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() and lead else ()
        detail = (f"the outputs are finite but the loss overflows "
                  f"{outputs.dtype} at {_where(index)}")
    step = index[0] if len(index) == 2 else None
    raise NonFiniteError(f"{loss_name}: loss is {value}; {detail}", step=step)


def _count(mask: np.ndarray | None, lead: tuple[int, ...]) -> int:
    """Number of valid positions."""
    return int(np.count_nonzero(mask)) if mask is not None else int(np.prod(lead, dtype=np.int64))


# -- losses --------------------------------------------------------------------

def mse(outputs: np.ndarray, targets: np.ndarray,
        mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    r"""Mean squared error over every valid element.

    .. math::

        L = \frac{1}{N} \sum_{\text{valid } p} \sum_{o} (y_{p,o} - t_{p,o})^2,
        \qquad
        \frac{\partial L}{\partial y_{p,o}} = \frac{2}{N} (y_{p,o} - t_{p,o}),

    where ``N = (number of valid positions) * O`` (PyTorch's
    ``mse_loss(reduction='mean')``).

    Parameters
    ----------
    outputs : ndarray, shape (T, B, O) or (B, O) (any ``(..., O)``), float64 or float32
    targets : ndarray, same shape and dtype as ``outputs``
        Must be finite at valid positions.
    mask : ndarray of bool, shape (T, B) or (B,) (``outputs.shape[:-1]``), optional
        ``False`` where a position is padding; it contributes nothing.

    Returns
    -------
    loss : float
        ``0.0`` if no element is valid.
    doutputs : ndarray, same shape and dtype as ``outputs``
        Zero at masked positions.

    Raises
    ------
    TypeError, ValueError
        Wrong types, dtypes or shapes; non-finite targets at valid positions.
    NonFiniteError
        If the loss is not finite (a NaN/inf output at a valid position, or an
        overflow).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.losses import mse
    >>> y = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> t = np.array([[1.0, 0.0], [3.0, 5.0]])
    >>> loss, dy = mse(y, t)
    >>> loss                                    # (0 + 4 + 0 + 1) / 4
    1.25
    >>> dy
    array([[ 0. ,  1. ],
           [ 0. , -0.5]])
    >>> mse(y, t, mask=np.array([True, False]))[0]  # only the first row counts
    2.0
    """
    outputs = _check_outputs(outputs, "outputs")
    lead = outputs.shape[:-1]
    mask = _check_mask(mask, lead, "outputs")
    targets = _check_targets(targets, outputs, mask, unit_interval=False)
    n = _count(mask, lead) * outputs.shape[-1]
    if n == 0:
        return 0.0, np.zeros_like(outputs)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.subtract(outputs, targets)     # y - t
        if mask is not None:
            diff[~mask] = 0                      # padding may hold NaN: assign, not multiply
        sq = np.square(diff)
        loss = float(np.sum(sq, dtype=np.float64)) / n
    if not np.isfinite(loss):
        _raise_nonfinite("mse", loss, outputs, mask, sq.sum(axis=-1, dtype=np.float64))
    np.multiply(diff, 2.0 / n, out=diff)         # dL/dy = 2 (y - t) / N
    return loss, diff


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray,
                          mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    r"""Softmax cross-entropy with integer class labels, mean over valid positions.

    .. math::

        L = \frac{1}{N} \sum_{\text{valid } p}
            \Big(\log \sum_c e^{z_{p,c}} - z_{p,\,l_p}\Big),
        \qquad
        \frac{\partial L}{\partial z_{p,c}}
            = \frac{1}{N} \big(\operatorname{softmax}(z_p)_c - [c = l_p]\big),

    where ``N`` is the number of valid positions (PyTorch's
    ``cross_entropy(reduction='mean')``). The log-sum-exp is taken after
    subtracting each row's maximum, so logits of any finite size (±1000 and
    beyond) give a finite, exact loss.

    Parameters
    ----------
    logits : ndarray, shape (T, B, C) or (B, C) (any ``(..., C)``), float64 or float32
        Unnormalised class scores.
    labels : ndarray of int, shape (T, B) or (B,) (``logits.shape[:-1]``)
        Class indices in ``[0, C)``. At masked positions any integer is
        accepted (e.g. ``-1`` as padding).
    mask : ndarray of bool, same shape as ``labels``, optional
        ``False`` where a position is padding; it contributes nothing.

    Returns
    -------
    loss : float
        ``0.0`` if no position is valid.
    dlogits : ndarray, same shape and dtype as ``logits``
        Zero at masked positions.

    Raises
    ------
    TypeError, ValueError
        Wrong types, dtypes or shapes; a label outside ``[0, C)`` at a valid
        position.
    NonFiniteError
        If the loss is not finite (a NaN/inf logit at a valid position).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.losses import softmax_cross_entropy
    >>> z = np.array([[0.0, 0.0], [1000.0, -1000.0]])
    >>> loss, dz = softmax_cross_entropy(z, np.array([0, 1]))
    >>> round(loss, 6)                          # (log 2 + 2000) / 2
    1000.346574
    >>> dz
    array([[-0.25,  0.25],
           [ 0.5 , -0.5 ]])
    """
    logits = _check_outputs(logits, "logits")
    lead, C = logits.shape[:-1], logits.shape[-1]
    if C < 1:
        raise ValueError(f"logits: expected at least one class on the last axis, got shape {logits.shape}")
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels: expected an integer numpy array of shape {lead}, "
                        f"got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels: expected an integer dtype (class indices), got {labels.dtype}")
    if labels.shape != lead:
        raise ValueError(f"labels: expected shape {lead} (the leading dims of logits "
                         f"{logits.shape}), got {labels.shape}")
    mask = _check_mask(mask, lead, "logits")
    bad = (labels < 0) | (labels >= C)
    if mask is not None:
        bad &= mask
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"labels: expected class indices in [0, {C}), "
                         f"got {labels[index]} at index {index}")
    n = _count(mask, lead)
    if n == 0:
        return 0.0, np.zeros_like(logits)

    z = logits.reshape(-1, C)
    rows = np.arange(z.shape[0])
    cols = labels.reshape(-1)
    valid = None if mask is None else mask.reshape(-1)
    if valid is not None:
        cols = np.where(valid, cols, 0)          # padding labels may be out of range
    with np.errstate(invalid="ignore", over="ignore"):
        p = z - z.max(axis=1, keepdims=True)     # shifted logits: z - max(z)
        zl = p[rows, cols]                       # shifted logit of the label
        np.exp(p, out=p)
        s = p.sum(axis=1)
        nll = np.log(s) - zl                     # log sum exp - z_l (the max cancels)
        if valid is not None:
            nll = np.where(valid, nll, 0)        # padding may hold NaN
        loss = float(np.sum(nll, dtype=np.float64)) / n
    if not np.isfinite(loss):
        _raise_nonfinite("softmax_cross_entropy", loss, logits, mask, nll.reshape(lead))
    p /= s[:, None]                              # softmax(z)
    p[rows, cols] -= 1                           # softmax(z) - onehot(l)
    p *= 1.0 / n
    if valid is not None:
        p[~valid] = 0
    return loss, p.reshape(logits.shape)


def binary_cross_entropy(logits: np.ndarray, targets: np.ndarray,
                         mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    r"""Binary cross-entropy on logits, mean over every valid element.

    With ``\sigma`` the logistic sigmoid, each element's loss is
    ``-t log σ(z) - (1 - t) log(1 - σ(z))``, computed in the stable softplus
    form

    .. math::

        \ell(z, t) = \max(z, 0) - z t + \log(1 + e^{-|z|}),
        \qquad
        L = \frac{1}{N} \sum_{\text{valid } p} \sum_o \ell(z_{p,o}, t_{p,o}),
        \qquad
        \frac{\partial L}{\partial z} = \frac{\sigma(z) - t}{N},

    where ``N = (number of valid positions) * O`` (PyTorch's
    ``binary_cross_entropy_with_logits(reduction='mean')``). The sigmoid is
    evaluated without overflow for logits of any size.

    Parameters
    ----------
    logits : ndarray, shape (T, B, O) or (B, O) (any ``(..., O)``), float64 or float32
    targets : ndarray, same shape as ``logits``
        Probabilities in ``[0, 1]`` (soft targets allowed) at valid positions.
        Same float dtype as ``logits``, or bool/integer 0/1 labels (converted
        exactly).
    mask : ndarray of bool, shape (T, B) or (B,) (``logits.shape[:-1]``), optional
        ``False`` where a position is padding; it contributes nothing.

    Returns
    -------
    loss : float
        ``0.0`` if no element is valid.
    dlogits : ndarray, same shape and dtype as ``logits``
        Zero at masked positions.

    Raises
    ------
    TypeError, ValueError
        Wrong types, dtypes or shapes; targets outside ``[0, 1]`` at valid
        positions.
    NonFiniteError
        If the loss is not finite (a NaN/inf logit at a valid position).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.losses import binary_cross_entropy
    >>> z = np.array([[0.0, 1000.0]])
    >>> t = np.array([[1.0, 0.0]])
    >>> loss, dz = binary_cross_entropy(z, t)
    >>> round(loss, 6)                          # (log 2 + 1000) / 2
    500.346574
    >>> dz
    array([[-0.25,  0.5 ]])
    """
    logits = _check_outputs(logits, "logits")
    lead = logits.shape[:-1]
    mask = _check_mask(mask, lead, "logits")
    targets = _check_targets(targets, logits, mask, unit_interval=True)
    n = _count(mask, lead) * logits.shape[-1]
    if n == 0:
        return 0.0, np.zeros_like(logits)
    one = logits.dtype.type(1)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.abs(logits)
        np.negative(e, out=e)
        np.exp(e, out=e)                         # e = exp(-|z|), in (0, 1]: never overflows
        ell = np.log1p(e)                        # log(1 + exp(-|z|))
        ell += np.maximum(logits, 0)             # + max(z, 0)
        ell -= logits * targets                  # - z t
        if mask is not None:
            ell[~mask] = 0                       # padding may hold NaN
        loss = float(np.sum(ell, dtype=np.float64)) / n
    if not np.isfinite(loss):
        _raise_nonfinite("binary_cross_entropy", loss, logits, mask,
                         ell.sum(axis=-1, dtype=np.float64))
    g = np.where(logits >= 0, one, e)            # sigma(z) = 1/(1+e) if z >= 0 else e/(1+e)
    e += one
    g /= e
    g -= targets                                 # sigma(z) - t
    g *= 1.0 / n
    if mask is not None:
        g[~mask] = 0
    return loss, g


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
        if label_lengths is None:
            lengths = np.full(B, L_max, dtype=np.int64)
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
    mask = _check_mask(mask, (T, B), "logits")
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


def ctc(logits: np.ndarray, labels: np.ndarray | list[np.ndarray], *,
        mask: np.ndarray | None = None, label_lengths: np.ndarray | None = None,
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
        The target label sequences, without blanks. As an array: rows padded
        to ``L_max``, the true lengths in ``label_lengths`` (without
        ``label_lengths`` every row is used in full). As a list: each array
        is one sequence's labels (length 0 allowed) and ``label_lengths``
        must be None. Padding may hold any integer.
    mask : ndarray of bool, shape (T, B), optional
        ``True`` on each sequence's valid steps, which must be a prefix: the
        input length of sequence ``b`` is ``mask[:, b].sum()``. Without a
        mask every sequence has length ``T``. Masked steps are never looked
        at (they may hold NaN) and get an exact zero gradient.
    label_lengths : ndarray of int, shape (B,), optional
        Only with an array ``labels``: values in ``[0, L_max]``.
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
    with ``pool=`` (same numbers, bit for bit; about half the time at
    T = 200, B = 32, C = 80, where fresh arrays cost page faults).

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
    logits = _check_outputs(logits, "logits")
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
