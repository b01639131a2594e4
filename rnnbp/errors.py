"""Every exception rnnbp raises of its own.

Bad arguments raise the built-in ``TypeError``/``ValueError`` (see
``rnnbp._checks``); these three name what only rnnbp knows: a value that
went non-finite during training, an iteration that did not settle, and a
file that is not an rnnbp model. Each is also importable where it is raised
(``rnnbp.fixedpoint.ConvergenceError``, ``rnnbp.io.LoadError``) and from
``rnnbp`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["NonFiniteError", "ConvergenceError", "LoadError", "nonfinite_gradient"]


class NonFiniteError(FloatingPointError):
    """A loss, output or gradient became NaN or infinite.

    Parameters
    ----------
    message : str
        Human-readable description.
    layer : str or None
        Qualified name of the layer where the value first went non-finite
        (``"0"``, ``"1.2"``; ``""`` for a single-layer model), if known.
    parameter : str or None
        Name of the offending parameter (``"W_hh"``), if known.
    step : int or None
        Time step (0-based) at which the value first went non-finite, if known.

    Examples
    --------
    >>> from rnnbp import NonFiniteError
    >>> err = NonFiniteError("gradient is nan", layer="0", parameter="W_hh", step=3)
    >>> (err.layer, err.parameter, err.step)
    ('0', 'W_hh', 3)
    """

    def __init__(self, message: str, *, layer: str | None = None,
                 parameter: str | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.layer = layer
        self.parameter = parameter
        self.step = step


class ConvergenceError(RuntimeError):
    """A settling or adjoint iteration did not converge within its cap.

    Attributes
    ----------
    phase : {"forward", "backward"}
    method : str
        ``"settle"`` for the forward pass, else the backward method.
    residual : float
        The last residual (``nan``/``inf`` when the iteration diverged).
    iterations : int
    tol : float

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> layer = rnnbp.FixedPoint(2, 3, recurrent_gain=3.0, max_iter=5, seed=0)
    >>> try:
    ...     layer.forward(np.ones((1, 2)))
    ... except ConvergenceError as err:
    ...     print(err.phase, err.iterations, err.residual > err.tol)
    forward 5 True
    """

    def __init__(self, message: str, *, phase: str, method: str, residual: float,
                 iterations: int, tol: float) -> None:
        super().__init__(message)
        self.phase, self.method, self.residual = phase, method, float(residual)
        self.iterations, self.tol = int(iterations), float(tol)


class LoadError(ValueError):
    """A file could not be loaded as an rnnbp model.

    The message names the file and what was wrong with it (expected vs got).

    Attributes
    ----------
    path : pathlib.Path
        The file that was refused.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def nonfinite_gradient(grads: Mapping[str, np.ndarray], what: str, *, step: int | None = None,
                       hint: str = "") -> NonFiniteError:
    """The :class:`NonFiniteError` for gradients whose global norm is not finite.

    The one builder of this error (used by clipping and by training). It
    names the first parameter, in dict order, whose gradient holds a NaN or
    an infinity, and the first such element; when every element is finite
    but the norm overflows, the parameter with the largest gradient. A
    qualified name ``"0.W_hh"`` is split into ``layer="0"``,
    ``parameter="W_hh"``.

    Parameters
    ----------
    grads : Mapping[str, ndarray]
        Gradients by (qualified) parameter name.
    what : str
        Who found it, the start of the message (``"clip_grad_norm"``).
    step : int, optional
        The time step (0-based) where the gradient first went non-finite.
    hint : str, optional
        What the user can do, appended in parentheses.

    Examples
    --------
    >>> import numpy as np
    >>> err = nonfinite_gradient({"0.b": np.ones(2), "0.W_hh": np.array([[1.0, np.nan]])}, "fit")
    >>> str(err), err.layer, err.parameter
    ("fit: the gradient of '0.W_hh' holds nan at index (0, 1)", '0', 'W_hh')
    """
    for name, g in grads.items():
        bad = ~np.isfinite(g)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            detail = f"the gradient of {name!r} holds {g[index]} at index {index}"
            break
    else:
        def square(k: str) -> float:
            flat = grads[k].reshape(-1).astype(np.float64, copy=False)
            return float(np.dot(flat, flat))
        name = max(grads, key=square)
        detail = f"every gradient is finite but their norm overflows (largest: {name!r})"
    layer, _, parameter = name.rpartition(".")
    at = f" at time step {step}" if step is not None else ""
    tail = f" ({hint})" if hint else ""
    return NonFiniteError(f"{what}: {detail}{at}{tail}", layer=layer, parameter=parameter, step=step)
