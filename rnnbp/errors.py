"""Every exception rnnbp raises of its own.

Bad arguments raise the built-in ``TypeError``/``ValueError`` (see
``rnnbp._checks``); these three name what only rnnbp knows: a value that
went non-finite during training, an iteration that did not settle, and a
file that is not an rnnbp model. Each is also importable where it is raised
(``rnnbp.fixedpoint.ConvergenceError``, ``rnnbp.io.LoadError``) and from
``rnnbp`` itself.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NonFiniteError", "ConvergenceError", "LoadError"]


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
