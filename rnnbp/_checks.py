"""Argument checks shared by the public entry points.

Every check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, what was expected and what arrived, so a user never meets a raw
numpy broadcast error from deep inside a kernel.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def as_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """Return ``dtype`` as a numpy dtype, which must be float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: expected float64 or float32, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float64 or float32, got {dt}")
    return dt


def generator(rng: Any, seed: Any = None) -> np.random.Generator:
    """The layer's random generator: ``rng`` when given, else ``numpy.random.default_rng(seed)``.

    ``seed`` must be None or a non-negative int (numpy's own message for a
    string seed names no argument).
    """
    if rng is None:
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = count(seed, "seed")
        return np.random.default_rng(seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float in the interval from ``low`` to ``high``.

    A bool, a string or any other non-real value is a ``TypeError``; NaN, an
    infinity or a value outside the interval is a ``ValueError``. The message
    names the argument, the interval and what arrived.

    Examples
    --------
    >>> number(0.5, "lr", low=0, low_open=True)
    0.5
    >>> number("1", "clip", low=0, low_open=True)
    Traceback (most recent call last):
    ...
    TypeError: clip: expected a number in (0, inf), got '1' (str)
    """
    interval = (("(" if low_open or low == -math.inf else "[") + f"{low:g}, {high:g}"
                + (")" if high_open or high == math.inf else "]"))
    if not _is_real(value):
        raise TypeError(f"{name}: expected a number in {interval}, got {value!r} ({type(value).__name__})")
    x = float(value)
    ok = (math.isfinite(x) and (x > low if low_open else x >= low)
          and (x < high if high_open else x <= high))
    if not ok:
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value!r}" if not math.isfinite(x)
                         else f"{name}: expected a number in {interval}, got {value!r}")
    return x


def positive_number(value: Any, name: str) -> float:
    """Return ``value`` as a finite float > 0 (see :func:`number`)."""
    return number(value, name, low=0.0, low_open=True)


def count(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 0 (a bool or a float is a ``TypeError``)."""
    if not _is_int(value):
        raise TypeError(f"{name}: expected an integer >= 0, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value}")
    return int(value)


def flag(value: Any, name: str) -> bool:
    """Return ``value``, which must be a bool (``True``/``False``, or numpy's bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def instance(value: Any, cls: type, name: str, what: str, *, or_none: bool = False) -> Any:
    """Return ``value``, which must be a ``cls`` (or None with ``or_none``); ``what`` names it, e.g. "a rnnbp.Layer"."""
    if not (isinstance(value, cls) or (or_none and value is None)):
        raise TypeError(f"{name}: expected {what}{' or None' if or_none else ''}, got {type(value).__name__}")
    return value


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """Return ``value``, which must be one of the strings ``options``."""
    if not isinstance(value, str) or value not in options:
        expected = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name}: expected one of {expected}, got {value!r}")
    return value


def function(value: Any, name: str, example: str = "") -> Callable[..., Any]:
    """Return ``value``, which must be callable; ``example`` says what to pass instead."""
    if not callable(value):
        hint = f" such as {example}" if example else ""
        raise TypeError(f"{name}: expected a function{hint}, got {value!r} ({type(value).__name__})")
    return value


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, which must be >= 1."""
    if not _is_int(value):
        raise TypeError(f"{name}: expected a positive integer, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    return int(value)


def probability(value: Any, name: str, *, allow_one: bool = False) -> float:
    """Return ``value`` as a float in ``[0, 1)`` (or ``[0, 1]``)."""
    return number(value, name, low=0.0, high=1.0, high_open=not allow_one)


def array(value: Any, name: str, *, ndim: int | None = None,
          dtype: np.dtype | None = None, finite: bool = True) -> np.ndarray:
    """Check that ``value`` is an ndarray of rank ``ndim`` (when given) and dtype ``dtype`` (when given).

    With ``dtype=None`` any dtype passes (integer class labels included);
    callers that need floats pass the model's dtype. With ``finite=True`` a
    floating or complex array must hold no NaN or infinity. The array is
    returned unchanged (never copied or cast): dtypes are chosen once per
    model and never mixed silently.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {value.shape}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{name}: expected dtype {dtype}, got {value.dtype} "
            f"(convert once with {name}.astype(np.{dtype.name}))")
    if finite and value.dtype.kind in "fc" and not np.isfinite(value).all():
        bad = np.argwhere(~np.isfinite(value))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(f"{name}: expected finite values, got {value[tuple(bad)]} at index {where}")
    return value


def ids(value: Any, name: str, *, ndim: int) -> np.ndarray:
    """Check an integer array of ids (``(T, B)`` for a sequence); the range is the layer's to check."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{name}: expected an integer numpy array of ids (the model starts with a "
                        f"layer that takes ids), got {got}")
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected ids of shape (T, B), got shape {value.shape}")
    return value


def mask_array(mask: Any, T: int, B: int, name: str = "mask") -> np.ndarray:
    """Check a ``(T, B)`` boolean mask."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name}: expected a boolean numpy array of shape ({T}, {B}), got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: expected dtype bool, got {mask.dtype}")
    if mask.shape != (T, B):
        raise ValueError(f"{name}: expected shape ({T}, {B}), got {mask.shape}")
    return mask


def image(x: Any, name: str, dtype: np.dtype | None = None,
           channels: int | None = None) -> np.ndarray:
    """Check a ``(..., C, H, W)`` float image array (never copied or cast)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array of shape (..., C, H, W), "
                        f"got {type(x).__name__}")
    if x.ndim < 3:
        raise ValueError(f"{name}: expected an array of shape (..., C, H, W) "
                         f"(at least 3-d), got shape {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {x.dtype} "
                        f"(convert once with {name}.astype(np.{dtype.name}))")
    if dtype is None and x.dtype not in (np.float64, np.float32):
        raise TypeError(f"{name}: expected dtype float64 or float32, got {x.dtype}")
    if channels is not None and x.shape[-3] != channels:
        raise ValueError(f"{name}: expected {channels} channels at axis -3 of "
                         f"(..., C, H, W), got shape {x.shape}")
    return x


def output_grad(dy: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Check an output gradient against the forward output's shape and dtype."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"dy: expected a numpy array, got {type(dy).__name__}")
    if dy.shape != shape:
        raise ValueError(f"dy: expected the forward output's shape {shape}, got {dy.shape}")
    if dy.dtype != dtype:
        raise TypeError(f"dy: expected dtype {dtype}, got {dy.dtype}")
    return dy


def loss_outputs(outputs: Any, name: str) -> np.ndarray:
    """A loss's float64/float32 ``outputs`` array of shape ``(..., O)``."""
    if not isinstance(outputs, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array of shape (T, B, O) or (B, O), "
                        f"got {type(outputs).__name__}")
    if outputs.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float64 or float32, got {outputs.dtype}")
    if outputs.ndim < 1:
        raise ValueError(f"{name}: expected an array of shape (T, B, O) or (B, O) "
                         f"(last axis = features), got a 0-d array")
    return outputs


def loss_mask(mask: Any, lead: tuple[int, ...], outputs_name: str) -> np.ndarray | None:
    """A loss's boolean ``mask`` of the outputs' leading shape ``lead``, or None."""
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
