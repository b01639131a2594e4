"""The data ``fit``, ``evaluate`` and ``predict`` take: checked once at the entry, in the caller's coordinates."""

# Private to rnnbp/loop.py: every check of a (xs, targets[, mask]) tuple, the batch-first
# conversion, minibatch slicing (ragged label lists included) and the translation of a
# minibatch's sequence numbers back to the data's.

from __future__ import annotations

import re
from typing import Any

import numpy as np

from . import _checks
from .protocol import Layer


def recurrent_leaves(model: Layer) -> list[str]:
    return [name or type(leaf).__name__ for name, leaf in model.leaves() if leaf.state_sizes]


def to_time_major(xs: Any, ys: Any, mask: Any, target: str) -> tuple[Any, Any, Any]:
    """``batch_first=True`` data ``(N, T, ...)`` as rnnbp's time-major ``(T, N, ...)`` (views, no copies)."""
    if isinstance(xs, np.ndarray) and xs.ndim >= 3 or (isinstance(xs, np.ndarray) and xs.ndim == 2
                                                        and xs.dtype.kind in "iu"):
        xs = xs.swapaxes(0, 1)
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        mask = mask.T
    if target == "every" and isinstance(ys, np.ndarray) and ys.ndim >= 2:
        ys = ys.swapaxes(0, 1)
    return xs, ys, mask


def unpack(data: Any, name: str, model: Layer, target: str, batch_first: bool = False):
    """Check ``(xs, ys[, mask])``; return ``(xs, ys, mask, static)`` with 2-d static inputs as one step."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(f"{name}: expected a tuple (xs, targets) or (xs, targets, mask), "
                        f"got {type(data).__name__}"
                        + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    xs, ys = data[0], data[1]
    mask = data[2] if len(data) == 3 else None
    if batch_first:
        xs, ys, mask = to_time_major(xs, ys, mask, target)
    ys = _targets_array(ys, name, target)
    if model.takes_ids:                                  # integer ids (T, N): sequences of tokens
        _checks.ids(xs, f"{name}[0] (xs)", ndim=2)
        _nonempty(xs, name, batch_first)
        if mask is not None:
            _checks.mask_array(mask, xs.shape[0], xs.shape[1], f"{name}[2] (mask)")
        return xs, ys, mask, False
    _checks.array(xs, f"{name}[0] (xs)", dtype=model.dtype)
    if xs.ndim == 2:
        recurrent = recurrent_leaves(model)
        if recurrent:
            n, d = xs.shape
            raise ValueError(
                f"{name}[0] (xs): got 2-d data of shape {xs.shape}, but the model is recurrent "
                f"(layer {recurrent[0]!r} has state), and 2-d data would be read as {n} independent "
                f"one-step samples. Sequences are time-major (T, N, D): for one sequence of {n} steps "
                f"use xs[:, None] (shape ({n}, 1, {d})); for N sequences stack them as (T, N, D).")
        if mask is not None:
            raise ValueError(f"{name}[2] (mask): static (N, D) data takes no mask")
        if xs.shape[0] == 0:
            raise ValueError(f"{name}[0] (xs): expected at least one sample, got shape {xs.shape}")
        if model.input_size is not None and xs.shape[1] != model.input_size:
            raise ValueError(f"{name}[0] (xs): expected shape (N, {model.input_size}) (the model's input "
                             f"size), got {xs.shape}")
        return xs[None], ys, None, True
    if xs.ndim < 2:
        raise ValueError(f"{name}[0] (xs): expected (T, N, D) sequences or (N, D) static data, got shape {xs.shape}")
    _nonempty(xs, name, batch_first)
    if model.input_size is not None and (xs.ndim != 3 or xs.shape[2] != model.input_size):
        # here, with the data's shape, rather than in unroll with a minibatch's
        want = f"(N, T, {model.input_size})" if batch_first else f"(T, N, {model.input_size})"
        raise ValueError(f"{name}[0] (xs): expected shape {want} (the model's input size), got "
                         f"{xs.swapaxes(0, 1).shape if batch_first else xs.shape}")
    if mask is not None:
        if mask.shape == xs.shape[1::-1] and xs.shape[0] != xs.shape[1] and not batch_first:
            raise ValueError(f"{name}[2] (mask): got shape {mask.shape} for xs of shape {xs.shape}: "
                             f"the data look batch-major (N, T, D); rnnbp is time-major: use "
                             f"xs.transpose(1, 0, 2) and mask.T, or pass batch_first=True")
        _checks.mask_array(mask, xs.shape[0], xs.shape[1], f"{name}[2] (mask)")
    return xs, ys, mask, False


def _nonempty(xs: np.ndarray, name: str, batch_first: bool) -> None:
    if xs.shape[0] == 0 or xs.shape[1] == 0:
        shape = xs.swapaxes(0, 1).shape if batch_first else xs.shape
        layout = "(N, T, ...) with batch_first=True" if batch_first else "(T, N, ...)"
        raise ValueError(f"{name}[0] (xs): expected at least one sequence and one step, got shape "
                         f"{shape} {layout}")


def _targets_array(ys: Any, name: str, target: str) -> Any:
    """Targets: an array, or with ``target="sequence"`` a list of 1-d int arrays (ragged labels)."""
    if target == "sequence" and isinstance(ys, (list, tuple)) or (
            isinstance(ys, np.ndarray) and ys.dtype == object and ys.ndim == 1 and target == "sequence"):
        rows = list(ys)
        for i, row in enumerate(rows):
            if not isinstance(row, np.ndarray) or row.ndim != 1 or (row.size and row.dtype.kind not in "iu"):
                got = f"shape {row.shape} dtype {row.dtype}" if isinstance(row, np.ndarray) else type(row).__name__
                raise TypeError(f"{name}[1] (targets): label sequence {i}: expected a 1-d integer numpy "
                                f"array, got {got}")
        return rows
    if not isinstance(ys, np.ndarray):
        extra = " (a list of label sequences needs target='sequence')" if isinstance(ys, (list, tuple)) else ""
        raise TypeError(f"{name}[1] (targets): expected a numpy array, got {type(ys).__name__}{extra}")
    return ys


def check_targets(ys: Any, xs: np.ndarray, target: str, static: bool, name: str,
                  mask: np.ndarray | None = None) -> None:
    T, N = xs.shape[:2]
    if isinstance(ys, list):
        if len(ys) != N:
            raise ValueError(f"{name}: expected {N} label sequences (one per sequence of xs), got {len(ys)}")
        return
    if target == "every" and not static:
        ok, want = ys.ndim >= 2 and ys.shape[:2] == (T, N), f"({T}, {N}, ...)"
    else:
        ok, want = ys.ndim >= 1 and ys.shape[0] == N, f"({N}, ...)"
    if not ok:
        if not static and xs.ndim == 3 and ys.ndim >= 1 and (
                (target == "last" and ys.shape[0] == T) or (target == "every" and ys.shape[:2] == (N, T))):
            first = "sequences first" if target != "every" else "steps first, then sequences"
            raise ValueError(f"xs looks batch-major (N, T, D) = {xs.shape} (the targets have {first}); "
                             f"rnnbp is time-major: use xs.transpose(1, 0, 2), or pass batch_first=True")
        raise ValueError(f"{name}: with target={target!r} expected targets of shape {want}, got {ys.shape}")
    if target == "last" and mask is not None and not mask.any(axis=0).all():
        b = int(np.argmin(mask.any(axis=0)))
        raise ValueError(f"{name.split('[')[0]}[2] (mask): sequence {b} has no valid step; "
                         f"target='last' needs at least one")


def take(ys: Any, idx: np.ndarray, target: str) -> Any:
    """The minibatch ``idx`` of the targets (per step, per sequence, or a list of label sequences)."""
    if isinstance(ys, list):
        return [ys[i] for i in idx]
    return ys[:, idx] if target == "every" else ys[idx]


def bptt_setting(bptt: Any) -> tuple[int, int] | None:
    if isinstance(bptt, str) and bptt == "full":
        return None
    if isinstance(bptt, (int, np.integer)) and not isinstance(bptt, bool):
        k = _checks.positive_int(bptt, "bptt")
        return k, k
    if isinstance(bptt, tuple) and len(bptt) == 2:
        k1 = _checks.positive_int(bptt[0], "bptt[0] (k1)")
        k2 = _checks.positive_int(bptt[1], "bptt[1] (k2)")
        if k2 < k1:
            raise ValueError(f"bptt: expected k2 >= k1, got (k1, k2) = ({k1}, {k2})")
        return k1, k2
    raise ValueError(f"bptt: expected 'full', an int k, or a tuple (k1, k2), got {bptt!r}")


_SEQUENCE = re.compile(r"\bsequence (\d+)")
_TB = re.compile(r"\(t, b\) = \((\d+), (\d+)\)")


def in_data_coordinates(message: str, idx: np.ndarray) -> str:
    """A minibatch's error message with its sequence numbers replaced by the data's (``idx[b]``)."""
    new = _SEQUENCE.sub(lambda m: f"sequence {int(idx[int(m.group(1))])}"
                        if int(m.group(1)) < len(idx) else m.group(0), message)
    new = _TB.sub(lambda m: f"(t, b) = ({m.group(1)}, {int(idx[int(m.group(2))])})"
                  if int(m.group(2)) < len(idx) else m.group(0), new)
    if _SEQUENCE.search(message) or _TB.search(message):
        new += " (sequences numbered as in the data passed to fit)"
    return new
