"""The elementwise activations, one home: ``f``, ``f'`` from the output, and ``sup |f'|``.

The static activation layers, the cells' step paths, ``FixedPoint``, ``RTRL``
and the gradient monitors read these three facts here (the LSTM and GRU
sequence kernels fuse their gate sigmoids into one ``tanh`` pass over
pre-halved weights, with the same identity as below, and differentiate them
inline):

- ``apply(name, a)``: the activation ``y = f(a)``, in ``a``'s dtype (in place
  with ``out=a``);
- ``derivative(name, y)``: ``f'(a)`` computed from the *output* ``y = f(a)``,
  which is what a backward pass has cached (tanh: ``1 - y^2``, relu:
  ``[y > 0]``, sigmoid: ``y (1 - y)``);
- ``gamma(name)``: ``sup |f'|``, the bound Pascanu et al. (2013) multiply
  with the recurrent weights' norm to bound how fast gradients can vanish
  or explode (tanh 1, relu 1, sigmoid 1/4).

``softmax(z)`` turns logits into class probabilities over the last axis
(what ``rnnbp.predict(..., proba=True)`` returns).

The sigmoid is computed as ``(1 + tanh(a / 2)) / 2``, equal to
``1 / (1 + exp(-a))`` but free of overflow for any ``a`` and computed in the
input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import choice

__all__ = ["NAMES", "check", "apply", "derivative", "gamma", "softmax"]

#: The activations this module knows, by name.
NAMES: tuple[str, ...] = ("tanh", "relu", "sigmoid")

#: sup |f'(a)| over all a, per activation (Pascanu et al. 2013's gamma).
_GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25}


def _unknown(name: Any) -> ValueError:
    return ValueError(f"name: expected one of {', '.join(map(repr, NAMES))}, got {name!r}")


def check(name: Any, argument: str = "activation") -> str:
    """Return ``name`` if it is one of :data:`NAMES`, else raise.

    Parameters
    ----------
    name : str
        The activation's name.
    argument : str, default "activation"
        The argument name the error message names.

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not in :data:`NAMES` (or not a string); the message
        names ``argument`` and lists the known names.

    Examples
    --------
    >>> check("tanh")
    'tanh'
    >>> check("gelu", "nonlinearity")
    Traceback (most recent call last):
        ...
    ValueError: nonlinearity: expected one of 'tanh', 'relu', 'sigmoid', got 'gelu'
    """
    return choice(name, argument, NAMES)


def apply(name: str, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The activation ``f(a)``, elementwise, in ``a``'s dtype.

    Parameters
    ----------
    name : {"tanh", "relu", "sigmoid"}
    a : ndarray, any shape
        Pre-activations.
    out : ndarray, optional
        Where to write the result (same shape and dtype as ``a``); ``out=a``
        works in place.

    Returns
    -------
    ndarray, shape of ``a``
        ``f(a)`` (``out`` when given). The sigmoid is ``(1 + tanh(a/2)) / 2``,
        which never overflows.

    Examples
    --------
    >>> import numpy as np
    >>> apply("relu", np.array([-1.0, 2.0]))
    array([0., 2.])
    >>> apply("sigmoid", np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    >>> a = np.zeros(2, dtype=np.float32)
    >>> apply("tanh", a, out=a) is a
    True
    """
    if name == "tanh":
        return np.tanh(a, out=out)
    if name == "relu":
        return np.maximum(a, 0, out=out)
    if name == "sigmoid":
        s = np.multiply(a, 0.5, out=out)
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        return s
    raise _unknown(name)


def derivative(name: str, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``f'(a)`` from the activation's output ``y = f(a)``, elementwise, in ``y``'s dtype.

    Parameters
    ----------
    name : {"tanh", "relu", "sigmoid"}
    y : ndarray, any shape
        Outputs of :func:`apply` (what a backward pass caches).
    out : ndarray, optional
        Where to write the result (same shape and dtype as ``y``; may be ``y``).

    Returns
    -------
    ndarray, shape of ``y``
        tanh: ``1 - y^2``; relu: ``1`` where ``y > 0`` else ``0`` (as
        ``y``'s dtype); sigmoid: ``y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> derivative("tanh", np.tanh(np.array([0.0])))
    array([1.])
    >>> derivative("relu", np.array([0.0, 3.0], dtype=np.float32))
    array([0., 1.], dtype=float32)
    >>> derivative("sigmoid", apply("sigmoid", np.array([0.0])))
    array([0.25])
    """
    if out is None:
        out = np.empty_like(y)
    if name == "tanh":
        np.multiply(y, y, out=out)
        return np.subtract(1, out, out=out)              # tanh' = 1 - tanh^2
    if name == "relu":
        return np.greater(y, 0, out=out)                 # relu'(a) = [a > 0] = [y > 0]
    if name == "sigmoid":
        return np.multiply(y, np.subtract(1, y), out=out)  # sigmoid' = s (1 - s)
    raise _unknown(name)


def gamma(name: str) -> float:
    """``sup |f'(a)|`` over all ``a``: Pascanu et al. (2013)'s gamma.

    With it, ``||dh_t / dh_{t-1}|| <= gamma * ||W_hh||`` for an Elman cell.

    Examples
    --------
    >>> gamma("tanh"), gamma("relu"), gamma("sigmoid")
    (1.0, 1.0, 0.25)
    """
    return _GAMMA[check(name, "name")]


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Class probabilities from logits: ``exp(z - max z) / sum exp(z - max z)`` along ``axis``.

    Parameters
    ----------
    z : ndarray of float, any shape, e.g. (T, B, C)
    axis : int, default -1
        The class axis.

    Returns
    -------
    ndarray
        Same shape and dtype as ``z``; non-negative, summing to 1 along
        ``axis``; finite for any finite ``z`` (the maximum is subtracted
        first, so logits of 1000 do not overflow).

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([0.0, np.log(3.0), 1000.0])).round(6)
    array([0., 0., 1.])
    >>> softmax(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    """
    if not isinstance(z, np.ndarray) or z.dtype.kind != "f":
        got = z.dtype if isinstance(z, np.ndarray) else type(z).__name__
        raise TypeError(f"z: expected a float numpy array of logits, got {got}")
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e
