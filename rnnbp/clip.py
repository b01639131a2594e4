"""Gradient clipping, in place, over every gradient of a model.

Exploding gradients are the classic failure of BPTT on long sequences
(Bengio et al., 1994); rescaling the global gradient norm (Pascanu et al.,
2013) keeps its direction while bounding the step. Both functions take a
:class:`rnnbp.Layer` (its ``grads``) or a ``grads`` dict, and modify the
arrays in place (they are never rebound), in their own dtype.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, positive_number
from .errors import nonfinite_gradient
from .protocol import Layer

__all__ = ["global_norm", "clip_grad_norm", "clip_grad_value"]

#: Added to the norm before dividing, as torch.nn.utils.clip_grad_norm_ does.
_EPS = 1e-6


def _grads(model: Any) -> Mapping[str, np.ndarray]:
    if isinstance(model, Layer):
        grads = model.grads
    elif isinstance(model, Mapping):
        grads = model
    else:
        raise TypeError(f"model: expected a Layer or a dict of gradient arrays, got {type(model).__name__}")
    for name, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"grads[{name!r}]: expected a float64 or float32 numpy array, "
                            f"got {getattr(g, 'dtype', type(g).__name__)}")
    return grads


def global_norm(model: Any) -> float:
    r"""The global L2 norm of all gradients, :math:`\sqrt{\sum_k \lVert g_k \rVert_2^2}`.

    The one implementation of the norm that ``fit`` logs, clipping compares
    and monitors record. Accumulated in float64 whatever the dtype; NaN when
    a gradient holds a NaN, inf when one holds an inf (or the sum overflows).

    Parameters
    ----------
    model : Layer or dict[str, ndarray]
        A model (its ``grads``) or a dict of gradient arrays.

    Examples
    --------
    >>> import numpy as np
    >>> global_norm({"W": np.array([3.0, 0.0]), "b": np.array([4.0])})
    5.0
    """
    total = 0.0
    for g in _grads(model).values():
        flat = g.reshape(-1).astype(np.float64, copy=False)
        total += float(np.dot(flat, flat))
    return math.sqrt(total) if total >= 0 else float("nan")


def clip_grad_norm(model: Any, max_norm: float) -> float:
    r"""Rescale all gradients together so that their global L2 norm is at most ``max_norm``.

    .. math::

        n = \sqrt{\textstyle\sum_k \lVert g_k \rVert_2^2}, \qquad
        g_k \leftarrow g_k \, \frac{\text{max\_norm}}{n + 10^{-6}}
        \quad \text{if } n > \text{max\_norm}

    as ``torch.nn.utils.clip_grad_norm_`` (which also scales, by a factor a
    hair below 1, when ``max_norm - 1e-6 < n <= max_norm``; here gradients
    with ``n <= max_norm`` are left untouched). The norm is accumulated in
    float64 whatever the dtype.

    Parameters
    ----------
    model : Layer or dict[str, ndarray]
        A model (its ``grads``) or a dict of gradient arrays, modified in place.
    max_norm : float
        > 0.

    Returns
    -------
    float
        The global norm **before** clipping (log it: it is the signal of
        exploding gradients).

    Raises
    ------
    NonFiniteError
        If the norm is not finite; names the first parameter (in dict order)
        whose gradient holds a NaN or inf (``layer`` and ``parameter`` split
        a qualified name ``"0.W_hh"``). The gradients are left unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.clip import clip_grad_norm
    >>> grads = {"W": np.array([3.0, 0.0]), "b": np.array([4.0])}
    >>> clip_grad_norm(grads, max_norm=1.0)
    5.0
    >>> np.round(grads["W"], 6), np.round(grads["b"], 6)
    (array([0.6, 0. ]), array([0.8]))
    """
    grads = _grads(model)
    max_norm = positive_number(max_norm, "max_norm")
    norm = global_norm(grads)
    if not math.isfinite(norm):
        raise nonfinite_gradient(grads, "clip_grad_norm")
    if norm > max_norm:
        scale = max_norm / (norm + _EPS)
        for g in grads.values():
            g *= scale
    return norm


def clip_grad_value(model: Any, limit: float) -> None:
    """Clamp every gradient element to ``[-limit, limit]`` in place.

    Like ``torch.nn.utils.clip_grad_value_``, but a NaN or inf gradient is
    an error rather than silently clamped.

    Parameters
    ----------
    model : Layer or dict[str, ndarray]
        A model (its ``grads``) or a dict of gradient arrays, modified in place.
    limit : float
        > 0.

    Raises
    ------
    NonFiniteError
        If a gradient holds a NaN or inf; names the first such parameter.
        The gradients are left unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.clip import clip_grad_value
    >>> grads = {"W": np.array([-3.0, 0.5, 2.0])}
    >>> clip_grad_value(grads, 1.0)
    >>> grads["W"]
    array([-1. ,  0.5,  1. ])
    """
    grads = _grads(model)
    limit = positive_number(limit, "limit")
    if not all(np.isfinite(g).all() for g in grads.values()):
        raise nonfinite_gradient(grads, "clip_grad_value")
    for g in grads.values():
        np.clip(g, -limit, limit, out=g)
