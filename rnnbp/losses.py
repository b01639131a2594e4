"""Losses that return their value and the gradient with respect to the outputs.

The loss protocol: every loss in this module is called as
``loss(outputs, targets, mask) -> (value, doutputs)`` -- the mask is the
third positional argument (``None`` for no mask) -- so any of them can be
handed to :func:`rnnbp.fit`, :func:`rnnbp.evaluate`, :func:`rnnbp.train_step`
and :class:`rnnbp.TruncatedBPTT` (see ``docs/protocol.md``, "The loss
protocol").

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

:func:`ctc` (in :mod:`rnnbp.ctc`) scores a whole label sequence against a
``(T, B, C)`` sequence of logits: ``ctc(logits, labels, mask) -> (value,
dlogits)``, with labels as a list of 1-d int arrays or a padded int array
(padding ``-1``), and PyTorch's ``CTCLoss`` reductions (its ``"mean"``
divides each sequence's loss by its label length); see its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from .errors import NonFiniteError

__all__ = ["mse", "softmax_cross_entropy", "binary_cross_entropy", "ctc"]


# -- argument checks -----------------------------------------------------------

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
    outputs = _checks.loss_outputs(outputs, "outputs")
    lead = outputs.shape[:-1]
    mask = _checks.loss_mask(mask, lead, "outputs")
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
    logits = _checks.loss_outputs(logits, "logits")
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
    mask = _checks.loss_mask(mask, lead, "logits")
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
    logits = _checks.loss_outputs(logits, "logits")
    lead = logits.shape[:-1]
    mask = _checks.loss_mask(mask, lead, "logits")
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


from .ctc import ctc  # noqa: E402  (its own module; public here, one protocol)
