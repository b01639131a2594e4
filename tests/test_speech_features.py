"""Log-mel features with deltas (tasks.data.speech.features) against a frame computed by hand."""

import math

import numpy as np
import pytest

from tasks.data.speech.features import deltas, features, frames, hz_to_mel, log_mel, mel_filterbank, mel_to_hz


def hand_log_mel_frame(wave, sr, t, n_mels):
    """Frame ``t`` of the log-mel features, written out with loops and the textbook formulas."""
    win, hop = int(round(0.025 * sr)), int(round(0.010 * sr))
    n_fft = 1
    while n_fft < win:
        n_fft *= 2
    seg = []
    for i in range(win):
        j = t * hop + i
        prev = wave[j - 1] if j > 0 else 0.0
        x = wave[j] - (0.97 * prev if j > 0 else 0.0)
        seg.append(x * (0.54 - 0.46 * math.cos(2 * math.pi * i / win)))   # periodic Hamming
    power = []
    for k in range(n_fft // 2 + 1):
        re = sum(s * math.cos(2 * math.pi * k * i / n_fft) for i, s in enumerate(seg))
        im = sum(s * math.sin(2 * math.pi * k * i / n_fft) for i, s in enumerate(seg))
        power.append(re * re + im * im)
    mel = lambda f: 2595 * math.log10(1 + f / 700)
    inv = lambda m: 700 * (10 ** (m / 2595) - 1)
    lo, hi = mel(50.0), mel(sr / 2)
    edges = [inv(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    out = []
    for m in range(n_mels):
        e = 0.0
        for k, p in enumerate(power):
            f = k * sr / n_fft
            if edges[m] < f <= edges[m + 1]:
                e += p * (f - edges[m]) / (edges[m + 1] - edges[m])
            elif edges[m + 1] < f < edges[m + 2]:
                e += p * (edges[m + 2] - f) / (edges[m + 2] - edges[m + 1])
        out.append(math.log(e + 1e-10))
    return np.array(out)


def test_log_mel_equals_a_hand_computed_frame():
    sr = 8000
    wave = np.random.default_rng(0).standard_normal(sr // 4)
    got = log_mel(wave, sr, n_mels=10)
    assert got.shape == (1 + (wave.size - 200) // 80, 10)
    for t in (0, 7):
        assert np.allclose(got[t], hand_log_mel_frame(wave, sr, t, 10), rtol=0, atol=1e-9)


def test_a_tone_lights_the_filter_around_it():
    sr = 16000
    wave = np.sin(2 * np.pi * 1000 * np.arange(sr // 2) / sr)
    band = np.argmax(log_mel(wave, sr, 24).mean(axis=0))
    centres = mel_to_hz(np.linspace(hz_to_mel(50), hz_to_mel(sr / 2), 26))[1:-1]
    assert abs(centres[band] - 1000) < 0.5 * (centres[band + 1] - centres[band - 1])


def test_filterbank_triangles():
    fb = mel_filterbank(20, 512, 16000)
    assert fb.shape == (20, 257) and fb.min() == 0.0 and np.all(fb.max(axis=1) > 0.5)
    assert np.all(np.argmax(fb, axis=1)[1:] > np.argmax(fb, axis=1)[:-1])
    with pytest.raises(ValueError, match="fmax"):
        mel_filterbank(20, 512, 16000, fmax=9000.0)


def test_deltas_regression_formula():
    c = np.arange(10.0)[:, None] ** 2                 # c_t = t^2: inside, d_t = (sum n ((t+n)^2 - (t-n)^2)) / 10 = 2t
    d = deltas(c)
    assert np.allclose(d[2:-2, 0], 2 * np.arange(2, 8))
    # edges repeat the first and last frames
    assert np.isclose(d[0, 0], (1 * (1 - 0) + 2 * (4 - 0)) / 10)


def test_features_shape_and_frames_checks():
    f = features(np.random.default_rng(1).standard_normal(4000), 16000, n_mels=12)
    assert f.shape == (1 + (4000 - 400) // 160, 24)
    assert frames(np.zeros(400), 16000).shape == (1, 400)
    with pytest.raises(ValueError, match="wave"):
        frames(np.zeros(100), 16000)
    with pytest.raises(ValueError, match="wave"):
        frames(np.zeros((2, 500)), 16000)
