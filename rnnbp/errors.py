"""Exceptions raised by rnnbp."""

from __future__ import annotations

__all__ = ["NonFiniteError"]


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
