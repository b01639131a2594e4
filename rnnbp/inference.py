"""Inference in evaluation mode: :func:`predict` (outputs or class probabilities), :func:`evaluate`.

Both take the data :func:`rnnbp.fit` takes, checked the same way, and run
the model in batches with ``model.eval()`` (no dropout), restoring its mode.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import _checks, _data
from .activations import softmax
from .protocol import Layer
from .update import TARGETS, last_valid_step, loss_and_grad
from .unroll import PATHS, unroll

__all__ = ["predict", "evaluate", "accuracy"]

LossFn = Callable[..., tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


def accuracy(outputs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of valid positions whose arg-max output equals the integer label.

    Parameters
    ----------
    outputs : ndarray, shape (..., C)
    labels : ndarray of int, shape (...)
    mask : ndarray of bool, shape (...), optional

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    hit = np.argmax(outputs, axis=-1) == labels
    if mask is not None:
        n = int(mask.sum())
        return float(hit[mask].sum() / n) if n else 0.0
    return float(hit.mean()) if hit.size else 0.0


def predict(model: Layer, xs: np.ndarray, mask: np.ndarray | None = None,
            batch_size: int = 256, *, target: str = "every", path: str = "fast",
            batch_first: bool = False, proba: bool = False) -> np.ndarray:
    """Outputs of ``model`` in evaluation mode, computed in batches.

    Parameters
    ----------
    model : Layer
    xs : ndarray, shape (T, N, D), or (N, D) for a static model
    mask : ndarray of bool, shape (T, N), optional
    batch_size : int
    target : {"every", "last", "sequence"}, default "every"
        ``"every"`` and ``"sequence"``: every step's output. ``"last"``:
        each sequence's output at its last valid step, as ``fit``/``evaluate``
        use with ``target="last"``.
    path : {"fast", "step"}
    batch_first : bool, default False
        ``xs`` is ``(N, T, D)`` and ``mask`` ``(N, T)`` (PyTorch's
        ``batch_first=True``); per-step outputs then come back ``(N, T, O)``.
    proba : bool, default False
        Return class probabilities: the softmax of the outputs over their
        last axis (:func:`rnnbp.activations.softmax`), for a model whose
        outputs are logits.

    Returns
    -------
    ndarray
        ``(T, N, O)`` with ``target="every"`` (``(N, T, O)`` with
        ``batch_first=True``); ``(N, O)`` with ``target="last"`` or for
        static ``(N, D)`` data.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> predict(rnnbp.Linear(3, 2, seed=0), np.ones((5, 3))).shape
    (5, 2)
    >>> predict(rnnbp.Elman(3, 2, seed=0), np.ones((7, 5, 3)), target="last").shape
    (5, 2)
    >>> predict(rnnbp.Elman(3, 2, seed=0), np.ones((5, 7, 3)), batch_first=True, proba=True).sum(-1).round(9)[0, :3]
    array([1., 1., 1.])
    """
    target = _checks.choice(target, "target", TARGETS)
    path = _checks.choice(path, "path", PATHS)
    batch_first, proba = _checks.flag(batch_first, "batch_first"), _checks.flag(proba, "proba")
    xs3, _, mask, static = _data.unpack((xs, np.empty(0), mask) if mask is not None else (xs, np.empty(0)),
                                        "xs", model, "every", batch_first)
    out = _predict(model, xs3, mask, _checks.positive_int(batch_size, "batch_size"), path)
    if proba:
        out = softmax(out)
    if static:
        return out[0]
    if target == "last":
        T, N = out.shape[:2]
        return out[last_valid_step(mask, T, N), np.arange(N)]
    return out.swapaxes(0, 1) if batch_first else out


def _predict(model: Layer, xs: np.ndarray, mask: np.ndarray | None, batch_size: int, path: str) -> np.ndarray:
    """Outputs ``(T, N, O)`` in evaluation mode, on checked time-major data."""
    was = model.training
    model.eval()
    try:
        parts = [unroll(model, xs[:, i:i + batch_size],
                        mask=None if mask is None else mask[:, i:i + batch_size], path=path).outputs
                 for i in range(0, xs.shape[1], batch_size)]
    finally:
        model.train(was)
    return np.concatenate(parts, axis=1)


def evaluate(model: Layer, data: Any, loss: LossFn, *, metric: Metric | None = None,
             target: str = "every", batch_size: int = 256, path: str = "fast",
             batch_first: bool = False) -> tuple[float, float | None]:
    """Loss (and metric) of ``model`` on ``data`` in evaluation mode.

    Parameters
    ----------
    model : Layer
    data : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``, as for :func:`rnnbp.fit`.
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``.
    metric : callable, optional
        ``metric(outputs, targets, mask) -> float``, e.g. :func:`accuracy`.
    target : {"every", "last", "sequence"}
        As for :func:`rnnbp.fit`.
    batch_size : int
    path : {"fast", "step"}
    batch_first : bool, default False
        As for :func:`rnnbp.fit`.

    Returns
    -------
    (loss, metric or None)
        The loss's own mean over all of ``data`` (the loss sees every
        output at once) and the metric over all of it.
    """
    target = _checks.choice(target, "target", TARGETS)
    _checks.function(loss, "loss", "rnnbp.losses.mse")
    xs, ys, mask, static = _data.unpack(data, "data", model, target, _checks.flag(batch_first, "batch_first"))
    _data.check_targets(ys, xs, target, static, "data[1] (targets)", mask)
    return _evaluate(model, (xs, ys, mask, static), loss, metric, target,
                     _checks.positive_int(batch_size, "batch_size"), _checks.choice(path, "path", PATHS))


def _evaluate(model: Layer, unpacked: tuple, loss: LossFn, metric: Metric | None, target: str,
              batch_size: int, path: str) -> tuple[float, float | None]:
    """:func:`evaluate` on data already checked (``fit`` checks its validation data once)."""
    xs, ys, mask, static = unpacked
    outputs = _predict(model, xs, mask, batch_size, path)
    value, _, seen = loss_and_grad(outputs, ys, mask, loss, "last" if static else target)
    return float(value), (None if metric is None else float(metric(*seen)))


