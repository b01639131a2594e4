"""Three views of an online signature: the timed trajectory, the image, the resampled path.

- :func:`trajectory` -- ``(N, 4)`` rows ``(x, y, pen_down, dt)``: the pen
  positions normalised for position (centred on their mean) and size (divided
  by their RMS radius), whether the pen touched the paper since the previous
  sample, and the time since it (in tenths of a second; a pen-up gap shows as
  a long ``dt``). All the timing is here: recurrent encoders and DTW read it.
- :func:`image` -- the ink as an ``S x S`` picture (the same normalisation,
  the longer side fit to the box): the pen-down segments drawn densely at a
  fixed spacing, so how fast the pen moved leaves no trace. Static models
  read it.
- :func:`resampled` -- ``(n, 3)`` rows ``(x, y, pen_down)``: the pen-down
  path resampled at ``n`` points equally spaced in arc length. It keeps the
  order of the strokes and loses their timing: a second static view.
- :func:`encoder_features` -- the trajectory with its first differences
  ``(dx, dy)`` appended, ``(N, 6)``: what the recurrent encoders read (the
  differences are computed from the view, nothing is added).
"""

from __future__ import annotations

import numpy as np

from .lognormal import Signature

__all__ = ["trajectory", "image", "resampled", "encoder_features", "pad_batch"]


def _normalised(sig: Signature) -> np.ndarray:
    xy = sig.xy - sig.xy.mean(axis=0)
    radius = float(np.sqrt(np.mean(np.sum(xy ** 2, axis=1))))
    return xy / max(radius, 1e-9)


def trajectory(sig: Signature) -> np.ndarray:
    """``(N, 4)`` float64 rows ``(x, y, pen_down, dt)``, normalised for position and size (module docstring)."""
    dt = np.concatenate([[0.0], np.diff(sig.t)]) * 10.0
    return np.column_stack([_normalised(sig), sig.pen_down.astype(np.float64), dt])


def encoder_features(sig: Signature, step: int = 1) -> np.ndarray:
    """``(ceil(N / step), 6)``: :func:`trajectory` rows ``(x, y, pen_down, dt)`` and ``(dx, dy)``.

    ``step`` keeps every ``step``-th sample (a lower sampling rate); a pen
    lift between kept samples is kept (``pen_down`` 0), and ``dt`` is the
    time between kept samples.
    """
    if not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step: expected an int >= 1, got {step!r}")
    tr = trajectory(sig)
    keep = np.arange(0, tr.shape[0], step)
    lifted = np.concatenate([[True], ~sig.pen_down[1:]])
    since = np.maximum.accumulate(np.where(lifted, np.arange(tr.shape[0]), 0))  # last lift at or before i
    prev = np.concatenate([[-1], keep[:-1]])
    down = (since[keep] <= prev) & (keep > 0)
    t = sig.t[keep] * 10.0
    dt = np.concatenate([[0.0], np.diff(t)])
    xy = tr[keep, :2]
    dxy = np.vstack([np.zeros((1, 2)), np.diff(xy, axis=0)])
    return np.column_stack([xy, down.astype(np.float64), dt, dxy])


def image(sig: Signature, size: int = 32, margin: int = 2) -> np.ndarray:
    """``(size, size)`` float64 ink in [0, 1]: the pen-down segments, rows from top to bottom.

    Every segment is drawn as dots a quarter pixel apart (bilinear splats),
    then the ink is clipped at 1: the picture depends on the path only.
    """
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size: expected an int >= 8, got {size!r}")
    xy = sig.xy - sig.xy.min(axis=0)
    extent = max(float(xy.max()), 1e-9)
    box = size - 1 - 2 * margin
    xy = xy / extent * box
    xy = xy + (box - xy.max(axis=0)) / 2 + margin           # centre the shorter side
    ink = np.zeros((size, size))
    seg = np.flatnonzero(sig.pen_down[1:]) + 1
    a, b = xy[seg - 1], xy[seg]
    n = np.maximum(1, np.ceil(np.linalg.norm(b - a, axis=1) * 4).astype(int))
    u = np.concatenate([np.arange(k) / k for k in n])
    starts = np.repeat(a, n, axis=0)
    pts = starts + (np.repeat(b, n, axis=0) - starts) * u[:, None]
    pts = np.vstack([pts, xy[-1:]])
    col, row = pts[:, 0], (size - 1) - pts[:, 1]
    c0, r0 = np.floor(col).astype(int), np.floor(row).astype(int)
    fc, fr = col - c0, row - r0
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        np.add.at(ink, (np.clip(r0 + dr, 0, size - 1), np.clip(c0 + dc, 0, size - 1)), w)
    return np.minimum(ink * 1.5, 1.0)


def resampled(sig: Signature, n: int = 64) -> np.ndarray:
    """``(n, 3)`` rows ``(x, y, pen_down)``: the normalised path at ``n`` points equally spaced in arc length.

    Pen-up jumps count as path length (so the components keep their order and
    place); ``pen_down`` is 0 for a point that lies on a pen-up jump.
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    xy = _normalised(sig)
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(step)])
    q = np.linspace(0.0, s[-1], n)
    out = np.column_stack([np.interp(q, s, xy[:, 0]), np.interp(q, s, xy[:, 1]), np.ones(n)])
    seg = np.clip(np.searchsorted(s, q, side="right"), 1, len(s) - 1)
    out[:, 2] = np.where(sig.pen_down[seg] | (q == 0), 1.0, 0.0)
    return out


def pad_batch(seqs: list[np.ndarray], dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Time-major ``(T, B, D)`` zero-padded batch and its ``(T, B)`` prefix mask."""
    if not seqs:
        raise ValueError("seqs: expected at least one sequence")
    T = max(s.shape[0] for s in seqs)
    xs = np.zeros((T, len(seqs), seqs[0].shape[1]), dtype=dtype)
    mask = np.zeros((T, len(seqs)), dtype=bool)
    for i, s in enumerate(seqs):
        xs[:s.shape[0], i] = s
        mask[:s.shape[0], i] = True
    return xs, mask
