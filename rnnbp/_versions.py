"""Version counters of parameter arrays, so a time graph can tell that its weights have changed."""

# A counter per live array, keyed by id and guarded by a weak reference (an id can be reused
# once its array is gone). Whatever writes new values into a model's parameters -- an
# optimizer's step, fit restoring the best epoch, a checkpoint being loaded -- bumps them;
# TimeGraph records the versions at the forward pass and its backward refuses to run on
# changed weights (the gradients would belong to no parameters at all).

from __future__ import annotations

import weakref

import numpy as np

_counts: dict[int, list] = {}


def bump(array: np.ndarray) -> None:
    """Mark ``array`` as changed."""
    key = id(array)
    entry = _counts.get(key)
    if entry is None or entry[0]() is not array:
        entry = _counts[key] = [weakref.ref(array, lambda _, key=key: _counts.pop(key, None)), 0]
    entry[1] += 1


def version(array: np.ndarray) -> int:
    """How many times ``array`` was marked changed (0 if never)."""
    entry = _counts.get(id(array))
    return entry[1] if entry is not None and entry[0]() is array else 0
