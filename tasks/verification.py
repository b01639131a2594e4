"""Verification metrics and the dynamic-time-warping anchor: DTW, scores against references, EER, DET/ROC.

A verifier gives every questioned sample a *distance* to its claimed
writer's references; a sample is accepted when the distance is at most a
threshold. Over all thresholds:

- the false rejection rate ``FRR(th) = P(genuine distance > th)`` and the
  false acceptance rate ``FAR(th) = P(forgery distance <= th)``;
- the **equal error rate** (EER) is where they meet (:func:`equal_error_rate`;
  linear interpolation between the two thresholds that bracket the crossing);
- a DET curve plots FRR against FAR on normal-deviate axes, a ROC curve the
  true acceptance rate ``1 - FRR`` against FAR (:func:`error_curves`).

The threshold is global (one for all writers), the usual protocol of SVC2004.
Distances are made comparable across writers by :func:`reference_scores`:
the mean distance from a sample to a writer's references, divided by the
mean distance among the references themselves (Kholmatov & Yanikoglu 2005
normalise by the references' own spread in the same spirit).

:func:`dtw` is the classic non-learned online verifier (Kholmatov &
Yanikoglu won SVC2004 Task 1 with it): dynamic time warping with a
Sakoe-Chiba band, vectorised along anti-diagonals.

:func:`triplet_loss` trains a learned verifier's embedding. rnnbp has no
autograd, so its gradient with respect to the three embeddings is written
out by hand beside it (and checked by finite differences in the tests).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["dtw", "reference_scores", "equal_error_rate", "error_curves", "probit", "triplet_loss"]


def dtw(a: np.ndarray, b: np.ndarray, band: float = 0.2) -> float:
    """Dynamic-time-warping distance between sequences ``a (n, D)`` and ``b (m, D)``.

    The cost of a step is the Euclidean distance between the two frames; a
    path may move one step in ``a``, in ``b`` or in both, and stays within
    ``band`` (a fraction of each sequence's length) of the diagonal
    ``i / n = j / m`` (Sakoe-Chiba). The total cost is divided by ``n + m`` so long and short
    signatures compare.

    Returns
    -------
    float
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"a, b: expected non-empty (n, D) and (m, D) arrays, got {a.shape} and {b.shape}")
    n, m = len(a), len(b)
    cost = np.sqrt(np.maximum(np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2 * a @ b.T, 0.0))
    width = band + 1.0 / min(n, m)                   # in fractions of each sequence; the end cell always fits
    rows = np.arange(n)
    # D[i, j] on anti-diagonal k = i + j; keep the last two diagonals, indexed by the row i
    prev2 = np.full(n, np.inf)
    prev1 = np.full(n, np.inf)
    prev1[0] = cost[0, 0]
    for k in range(1, n + m - 1):
        i = rows[max(0, k - m + 1):min(n, k + 1)]
        j = k - i
        up = np.where(i >= 1, prev1[np.maximum(i - 1, 0)], np.inf)                  # D[i-1, j]
        left = np.where(j >= 1, prev1[i], np.inf)                                   # D[i, j-1]
        diag = np.where((i >= 1) & (j >= 1), prev2[np.maximum(i - 1, 0)], np.inf)   # D[i-1, j-1]
        inside = np.abs(i / n - j / m) <= width
        cur = np.full(n, np.inf)
        cur[i] = np.where(inside, cost[i, j] + np.minimum(np.minimum(up, left), diag), np.inf)
        prev2, prev1 = prev1, cur
    return float(prev1[n - 1] / (n + m))


def reference_scores(distance_to_refs: np.ndarray, among_refs: np.ndarray) -> np.ndarray:
    """Normalised scores: each sample's mean distance to the references over the references' mean mutual distance.

    Parameters
    ----------
    distance_to_refs : ndarray, shape (N, R)
        Distances of N questioned samples to the R references of their writer.
    among_refs : ndarray, shape (R, R)
        Distances among the references (the diagonal is ignored).

    Returns
    -------
    ndarray, shape (N,)
    """
    d = np.asarray(distance_to_refs, dtype=np.float64)
    r = np.asarray(among_refs, dtype=np.float64)
    if d.ndim != 2 or r.shape != (d.shape[1], d.shape[1]) or d.shape[1] < 2:
        raise ValueError(f"distance_to_refs, among_refs: expected (N, R) and (R, R) with R >= 2, "
                         f"got {d.shape} and {r.shape}")
    R = r.shape[0]
    spread = (r.sum() - np.trace(r)) / (R * (R - 1))
    return d.mean(axis=1) / max(float(spread), 1e-12)


def error_curves(genuine: np.ndarray, forgery: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(thresholds, FAR, FRR)`` at every distinct score (accept when ``score <= threshold``).

    The thresholds run from below the smallest score (nothing accepted:
    FAR 0, FRR 1) to the largest (everything accepted: FAR 1, FRR 0).
    """
    g = np.asarray(genuine, dtype=np.float64).ravel()
    f = np.asarray(forgery, dtype=np.float64).ravel()
    if not g.size or not f.size:
        raise ValueError(f"genuine, forgery: expected non-empty score arrays, got sizes {g.size} and {f.size}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(f))):
        raise ValueError("genuine, forgery: scores must be finite")
    th = np.unique(np.concatenate([g, f]))
    th = np.concatenate([[th[0] - 1.0], th])
    frr = 1.0 - np.searchsorted(np.sort(g), th, side="right") / g.size
    far = np.searchsorted(np.sort(f), th, side="right") / f.size
    return th, far, frr


def equal_error_rate(genuine: np.ndarray, forgery: np.ndarray) -> float:
    """The equal error rate of distances (lower = more genuine), in [0, 1].

    FAR rises and FRR falls with the threshold; the EER is where the
    straight segment between the last threshold with ``FAR < FRR`` and the
    first with ``FAR >= FRR`` crosses the diagonal.

    >>> equal_error_rate([0.1, 0.2, 0.3], [0.4, 0.5])
    0.0
    >>> equal_error_rate([1.0, 2.0], [1.5, 0.5])
    0.5
    """
    _, far, frr = error_curves(genuine, forgery)
    k = int(np.argmax(far >= frr))                   # first crossing (exists: the last point has FRR 0)
    if k == 0:
        return float(far[0])
    a0, a1 = far[k - 1] - frr[k - 1], far[k] - frr[k]   # a0 < 0 <= a1
    s = -a0 / (a1 - a0)
    return float(far[k - 1] + s * (far[k] - far[k - 1]))


def probit(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile of ``p`` (for DET axes), by bisection on ``erf``.

    ``p`` is clipped to [1e-4, 1 - 1e-4].
    """
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    lo, hi = np.full(p.shape, -5.0), np.full(p.shape, 5.0)
    erf = np.vectorize(math.erf)
    for _ in range(50):
        mid = (lo + hi) / 2
        below = 0.5 * (1 + erf(mid / math.sqrt(2))) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def triplet_loss(anchor: np.ndarray, positive: np.ndarray,
                 negative: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Soft-margin triplet loss and its gradient with respect to the three embeddings.

    ``L = mean_i softplus(|a_i - p_i|^2 - |a_i - n_i|^2)`` (Hermans, Beyer &
    Leibe 2017: the soft margin needs no margin to tune). It asks a genuine
    sample to be closer to another genuine sample of its writer than a
    forgery is -- the comparison a verifier makes against its references.

    Parameters
    ----------
    anchor, positive, negative : ndarray, shape (B, E)
        Embeddings of a writer's genuine sample, another genuine sample of
        the same writer, and a forgery (skilled, or another writer's).

    Returns
    -------
    value : float
    (danchor, dpositive, dnegative) : ndarrays, shape (B, E) each
    """
    a, p, n = (np.asarray(v) for v in (anchor, positive, negative))
    if a.ndim != 2 or p.shape != a.shape or n.shape != a.shape:
        raise ValueError(f"anchor, positive, negative: expected three (B, E) arrays of one shape, "
                         f"got {a.shape}, {p.shape}, {n.shape}")
    B = a.shape[0]
    z = np.sum((a - p) ** 2, axis=1) - np.sum((a - n) ** 2, axis=1)     # z = d_ap - d_an
    value = float(np.mean(np.logaddexp(0.0, z)))                         # L = mean softplus(z)
    s = (0.5 * (1.0 + np.tanh(0.5 * z)) / B)[:, None]                    # dL/dz = sigmoid(z) / B
    da = s * 2.0 * (n - p)                                               # dz/da = 2(a - p) - 2(a - n)
    dp = -s * 2.0 * (a - p)                                              # dz/dp = -2(a - p)
    dn = s * 2.0 * (a - n)                                               # dz/dn = 2(a - n)
    return value, (da.astype(a.dtype), dp.astype(a.dtype), dn.astype(a.dtype))
