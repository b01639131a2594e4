"""Continuous series for next-value prediction: sine mixtures and the
Mackey–Glass delay equation, cut into windows.
"""

from __future__ import annotations

import functools

import numpy as np

from ..common import SequenceData, as_rng, float_dtype, full_lengths, positive_int

__all__ = ["sine_mixture", "mackey_glass", "series_windows", "mackey_glass_sequences"]


def sine_mixture(n: int, length: int, *, n_components: int = 3,
                 periods: tuple[float, float] = (4.0, 40.0), seed,
                 dtype=np.float64) -> SequenceData:
    """Next-value prediction of random sine mixtures.

    Each sequence is ``x_t = sum_k a_k sin(2 pi t / P_k + phi_k)`` with
    periods ``P_k`` log-uniform in ``periods``, phases uniform, amplitudes
    ``U[0.5, 1]`` normalised so that ``sum_k a_k = 1`` (so ``|x| <= 1``).

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 1) = ``x_0 .. x_{T-1}``, ``ys`` (T, N, 1) =
        ``x_1 .. x_T``, ``target_at="every"``, mask all True.
    """
    N, T, K = positive_int("n", n), positive_int("length", length), positive_int("n_components", n_components)
    if not 0 < periods[0] <= periods[1]:
        raise ValueError(f"periods must be (min, max) with 0 < min <= max; got {periods!r}")
    rng, dt = as_rng(seed), float_dtype(dtype)
    P = np.exp(rng.uniform(np.log(periods[0]), np.log(periods[1]), size=(K, N)))
    phi = rng.uniform(0.0, 2 * np.pi, size=(K, N))
    a = rng.uniform(0.5, 1.0, size=(K, N))
    a /= a.sum(axis=0)
    t = np.arange(T + 1, dtype=np.float64)[:, None, None]
    x = (a * np.sin(2 * np.pi * t / P + phi)).sum(axis=1)
    return SequenceData(x[:-1, :, None].astype(dt), x[1:, :, None].astype(dt),
                        np.ones((T, N), dtype=bool), "every", full_lengths(N, T))


@functools.lru_cache(maxsize=8)
def _mackey_glass(n_samples, tau, beta, gamma, exponent, dt, sample_interval, discard, x0):
    K = int(round(tau / dt))
    every = int(round(sample_interval / dt))
    skip = int(round(discard / dt))
    total = skip + (n_samples - 1) * every + 1
    x = np.empty(K + total)
    x[:K + 1] = x0  # constant history on [-tau, 0]
    # Between grid points the ODE x' = -gamma x + g(t) is linear, with the
    # delayed forcing g(t) = beta x(t - tau) / (1 + x(t - tau)^n) already known
    # for a whole delay span; integrate it exactly for g linear on each step.
    a = np.exp(-gamma * dt)
    c0 = (1.0 - a) / gamma
    c1 = (dt * c0 - (1.0 - a * (1.0 + gamma * dt)) / gamma ** 2) / dt
    b0, b1 = c0 - c1, c1
    # Within a block the recurrence x_{k+1} = a x_k + u_k sums in closed form:
    # x_k = a^k (x_0 + sum_{j<k} a^{-(j+1)} u_j); a^{-K} = e^{gamma tau} stays small.
    powers = a ** np.arange(1, K + 1)
    i = K  # x[i] is time 0, known
    while i < K + total - 1:
        m = min(K, K + total - 1 - i)
        xd = x[i - K:i - K + m + 1]
        g = beta * xd / (1.0 + xd ** exponent)
        u = b0 * g[:-1] + b1 * g[1:]
        x[i + 1:i + 1 + m] = powers[:m] * (x[i] + np.cumsum(u / powers[:m]))
        i += m
    out = x[K + skip::every][:n_samples].copy()
    out.setflags(write=False)
    return out


def mackey_glass(n_samples: int, *, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                 exponent: float = 10.0, dt: float = 0.01, sample_interval: float = 1.0,
                 discard: float = 500.0, x0: float = 1.2) -> np.ndarray:
    """The Mackey–Glass delay series (Mackey & Glass 1977), chaotic for tau = 17.

    Integrates ``dx/dt = beta x(t-tau) / (1 + x(t-tau)^n) - gamma x(t)`` from
    the constant history ``x = x0`` on ``[-tau, 0]`` with step ``dt``: over each
    step the linear decay is solved exactly and the delayed forcing is taken
    linear between grid points (error O(dt^2)). Deterministic, no randomness;
    results are cached.

    Parameters
    ----------
    n_samples : int -- number of returned samples.
    tau, beta, gamma, exponent : float -- the equation's constants.
    dt : float -- integration step; ``tau``, ``sample_interval`` and
        ``discard`` should be multiples of it.
    sample_interval : float -- time between returned samples.
    discard : float -- initial transient dropped.
    x0 : float -- constant initial history.

    Returns
    -------
    ndarray, shape (n_samples,), float64, read-only.
    """
    N = positive_int("n_samples", n_samples)
    if dt <= 0 or tau < dt or sample_interval < dt or discard < 0:
        raise ValueError("need dt > 0, tau >= dt, sample_interval >= dt, discard >= 0; got "
                         f"dt={dt}, tau={tau}, sample_interval={sample_interval}, discard={discard}")
    return _mackey_glass(N, float(tau), float(beta), float(gamma), float(exponent), float(dt),
                         float(sample_interval), float(discard), float(x0))


def series_windows(series, n: int, length: int, *, horizon: int = 1, seed,
                   dtype=np.float64) -> SequenceData:
    """Random windows of a series for next-value prediction.

    Parameters
    ----------
    series : array_like, shape (L,) or (L, D)
    n : int -- N windows, start points uniform over the series.
    length : int -- T.
    horizon : int -- predict ``x_{t + horizon}`` from ``x_0 .. x_t``.
    seed : int or numpy.random.Generator

    Returns
    -------
    SequenceData
        ``xs`` (T, N, D), ``ys`` (T, N, D), ``target_at="every"``.
    """
    s = np.asarray(series, dtype=np.float64)
    s = s[:, None] if s.ndim == 1 else s
    if s.ndim != 2:
        raise ValueError(f"series must be (L,) or (L, D); got shape {np.shape(series)}")
    N, T, H = positive_int("n", n), positive_int("length", length), positive_int("horizon", horizon)
    if s.shape[0] < T + H:
        raise ValueError(f"series of length {s.shape[0]} is shorter than length + horizon = {T + H}")
    rng, dt = as_rng(seed), float_dtype(dtype)
    start = rng.integers(0, s.shape[0] - T - H + 1, size=N)
    idx = start[None, :] + np.arange(T)[:, None]
    return SequenceData(s[idx].astype(dt), s[idx + H].astype(dt), np.ones((T, N), dtype=bool),
                        "every", full_lengths(N, T))


def mackey_glass_sequences(n: int, length: int, *, n_samples: int = 5000, horizon: int = 1,
                           seed, dtype=np.float64, **series_kwargs) -> SequenceData:
    """Windows of :func:`mackey_glass` (``n_samples`` long, centred to mean 0)
    for next-value prediction; see :func:`series_windows` for the shapes."""
    s = mackey_glass(n_samples, **series_kwargs)
    return series_windows(s - s.mean(), n, length, horizon=horizon, seed=seed, dtype=dtype)
