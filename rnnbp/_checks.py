"""Argument checks shared by the public entry points.

Every check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, what was expected and what arrived, so a user never meets a raw
numpy broadcast error from deep inside a kernel.
"""

from __future__ import annotations

from typing import Any

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
    """The layer's random generator: ``rng`` when given, else ``numpy.random.default_rng(seed)``."""
    if rng is None:
        return np.random.default_rng(seed)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, which must be >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value}")
    return int(value)


def probability(value: Any, name: str, *, allow_one: bool = False) -> float:
    """Return ``value`` as a float in ``[0, 1)`` (or ``[0, 1]``)."""
    try:
        p = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number in [0, 1), got {value!r}") from exc
    upper_ok = p <= 1.0 if allow_one else p < 1.0
    if not (0.0 <= p and upper_ok):
        bound = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{name}: expected a number in {bound}, got {value!r}")
    return p


def array(value: Any, name: str, *, ndim: int | None = None,
          dtype: np.dtype | None = None, finite: bool = True) -> np.ndarray:
    """Check that ``value`` is a floating ndarray of rank ``ndim`` and dtype ``dtype``.

    The array is returned unchanged (never copied or cast): dtypes are chosen
    once per model and never mixed silently.
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
        raise ValueError(f"{name}: expected finite values, got {value[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
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
