"""Log-mel filterbank energies with deltas: 25 ms Hamming windows every 10 ms (written once, here).

``features(wave, sr)`` is ``[log_mel, deltas(log_mel)]`` frame by frame:

1. pre-emphasis ``x[n] - 0.97 x[n-1]``;
2. frames of ``round(0.025 sr)`` samples every ``round(0.010 sr)`` samples
   (only whole frames), times a Hamming window (``scipy.signal.get_window``);
3. power spectrum ``|rfft(frame, n_fft)|^2``, ``n_fft`` the next power of two;
4. ``n_mels`` triangular filters equally spaced on the HTK mel scale
   ``2595 log10(1 + f / 700)`` between ``fmin`` and ``fmax`` (peak 1);
5. ``log(filterbank energy + 1e-10)``;
6. deltas by linear regression over +-2 frames (edges repeated):
   ``d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2)``.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["hz_to_mel", "mel_to_hz", "mel_filterbank", "frames", "log_mel", "deltas", "features"]

WINDOW, HOP, PREEMPHASIS = 0.025, 0.010, 0.97


def hz_to_mel(f):
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, float) / 700.0)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, float) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sr: int, fmin: float = 50.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)``.

    Filter ``m`` rises linearly from 0 at edge ``m`` to 1 at edge ``m + 1``
    and falls to 0 at edge ``m + 2``, the ``n_mels + 2`` edges equally spaced
    in mel from ``fmin`` to ``fmax`` (default ``sr / 2``).
    """
    fmax = sr / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sr / 2:
        raise ValueError(f"fmin, fmax: expected 0 <= fmin < fmax <= sr/2 = {sr / 2}, got {fmin}, {fmax}")
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    f = np.arange(n_fft // 2 + 1) * sr / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)))


def frames(wave: np.ndarray, sr: int) -> np.ndarray:
    """Pre-emphasised, Hamming-windowed frames, shape ``(T, round(0.025 sr))``.

    ``T = 1 + (n - win) // hop``; a wave shorter than one window raises.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"wave: expected a 1-d array, got shape {wave.shape}")
    win, hop = round(WINDOW * sr), round(HOP * sr)
    if wave.size < win:
        raise ValueError(f"wave: expected at least one {WINDOW * 1000:.0f} ms window ({win} samples), "
                         f"got {wave.size}")
    x = np.concatenate([wave[:1], wave[1:] - PREEMPHASIS * wave[:-1]])
    view = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    return view * signal.get_window("hamming", win, fftbins=True)


def log_mel(wave: np.ndarray, sr: int, n_mels: int = 24, fmin: float = 50.0,
            fmax: float | None = None) -> np.ndarray:
    """Log mel filterbank energies, shape ``(T, n_mels)`` (see the module docstring)."""
    x = frames(wave, sr)
    n_fft = 1 << (x.shape[1] - 1).bit_length()
    power = np.abs(np.fft.rfft(x, n_fft, axis=1)) ** 2
    return np.log(power @ mel_filterbank(n_mels, n_fft, sr, fmin, fmax).T + 1e-10)


def deltas(c: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over +-``width`` frames, edges repeated; same shape as ``c`` ``(T, D)``."""
    c = np.asarray(c, dtype=np.float64)
    T = c.shape[0]
    pad = np.concatenate([np.repeat(c[:1], width, 0), c, np.repeat(c[-1:], width, 0)])
    num = sum(k * (pad[width + k:width + k + T] - pad[width - k:width - k + T]) for k in range(1, width + 1))
    return num / (2.0 * sum(k * k for k in range(1, width + 1)))


def features(wave: np.ndarray, sr: int, n_mels: int = 24) -> np.ndarray:
    """``[log_mel, deltas(log_mel)]``, shape ``(T, 2 n_mels)``, float64."""
    c = log_mel(wave, sr, n_mels)
    return np.concatenate([c, deltas(c)], axis=1)
