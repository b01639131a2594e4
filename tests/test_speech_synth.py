"""The speech synthesiser (tasks.data.speech.synth): listen-free checks of what it makes."""

import numpy as np
import pytest
from scipy import linalg, signal

from tasks.data.speech import PETERSON_BARNEY, PHONES, Speaker, random_speaker, synthesize
from tasks.data.speech.synth import RANGES, formant_targets, resonator, rosenberg_pulse


def lpc_formants(x: np.ndarray, sr: int, order: int = 18) -> np.ndarray:
    """Formant frequencies (Hz, ascending) from the roots of an LPC polynomial (autocorrelation method)."""
    x = signal.lfilter([1.0, -0.9], [1.0], x) * np.hamming(x.size)
    r = np.correlate(x, x, "full")[x.size - 1:x.size + order]
    a = linalg.solve_toeplitz(r[:order], r[1:order + 1])
    roots = np.roots(np.concatenate([[1.0], -a]))
    roots = roots[np.imag(roots) > 0]
    f = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots)) * sr / np.pi
    return np.sort(f[(f > 150) & (bw < 500)])


def steady(vowel: str, speaker: Speaker, sr: int = 16000) -> np.ndarray:
    """The middle of a long synthetic vowel, no background noise."""
    u = synthesize([vowel] * 6, speaker, sr=sr, seed=0, noise=False)
    return u.wave[u.starts[1]:u.ends[-2]]


@pytest.mark.parametrize("vowel", ["i", "ae", "aa", "uw"])
@pytest.mark.parametrize("vocal_tract", [1.0, 1.15])
def test_measured_formants_within_5_percent_of_peterson_barney(vowel, vocal_tract):
    s = Speaker("m", "man", 100.0, vocal_tract, 1.0, 30.0, jitter=0.0)
    measured = lpc_formants(steady(vowel, s), 16000)
    table = np.array(PETERSON_BARNEY[vowel]["man"]) * vocal_tract
    nearest = np.array([measured[np.argmin(np.abs(measured - f))] for f in table])
    assert np.all(np.abs(nearest - table) <= 0.05 * table), (vowel, nearest, table)


def test_vowels_differ_by_group():
    """A child's /i/ has a higher F2 than a man's: the groups' tables are used."""
    f = {g: lpc_formants(steady("i", Speaker("x", g, 100.0, 1.0, 1.0, 30.0, jitter=0.0)), 16000) for g in
         ("man", "child")}
    f2 = {g: v[np.argmin(np.abs(v - PETERSON_BARNEY["i"][g][1]))] for g, v in f.items()}
    assert f2["child"] > 1.3 * f2["man"]


@pytest.mark.parametrize("f0", [85.0, 123.0, 180.0, 250.0])
def test_f0_recovered_by_autocorrelation(f0):
    x = steady("aa", Speaker("x", "woman", f0, 1.0, 1.0, 30.0, jitter=0.005))
    ac = np.correlate(x, x, "full")[x.size - 1:]
    lo, hi = 16000 // 400, 16000 // 60
    k = lo + int(np.argmax(ac[lo:hi]))
    k = k + 0.5 * (ac[k - 1] - ac[k + 1]) / (ac[k - 1] - 2 * ac[k] + ac[k + 1])   # parabolic peak
    assert abs(16000 / k - f0) < 0.03 * f0


def test_resonator_peaks_at_its_frequency_with_unity_dc_gain():
    A, B, C = resonator(1000.0, 80.0, 16000)
    w, h = signal.freqz([A], [1.0, -B, -C], worN=8000, fs=16000)
    assert abs(w[np.argmax(np.abs(h))] - 1000.0) < 5.0
    assert abs(abs(h[0]) - 1.0) < 1e-9


def test_rosenberg_pulse_shape():
    g = rosenberg_pulse(40, 16)
    assert g.shape == (56,) and g[0] == 0.0 and np.argmax(g) == 40 and g[40] == 1.0
    assert np.all(np.diff(g[:40]) > 0) and np.all(np.diff(g[40:]) < 0)


def test_snr_of_background_noise():
    s = Speaker("x", "man", 120.0, 1.0, 1.0, 15.0)
    clean = synthesize(["s", "aa"], s, seed=3, noise=False)
    noisy = synthesize(["s", "aa"], s, seed=3)
    noise = noisy.wave - clean.wave
    active = np.concatenate([np.arange(a, b) for a, b in zip(clean.starts, clean.ends)])
    snr = 10 * np.log10(np.mean(clean.wave[active] ** 2) / np.mean(noise ** 2))
    assert abs(snr - 15.0) < 0.5


def test_rate_shortens_and_phones_are_placed():
    slow = synthesize(["k", "ae", "t"], Speaker("x", "man", 120.0, 1.0, 0.8, 20.0), seed=1)
    fast = synthesize(["k", "ae", "t"], Speaker("x", "man", 120.0, 1.0, 1.25, 20.0), seed=1)
    span = lambda u: (u.ends[-1] - u.starts[0]) / u.sr
    assert span(slow) > 1.4 * span(fast)
    assert np.all(slow.starts[1:] == slow.ends[:-1]) and slow.phones == ("k", "ae", "t")


def test_fricative_energy_in_its_band():
    """/s/ is high-frequency noise, /sh/ lower: compare energy above and below 3.5 kHz."""
    s = Speaker("x", "man", 120.0, 1.0, 1.0, 30.0)
    def high_share(p):
        u = synthesize([p], s, seed=0, noise=False)
        f, P = signal.welch(u.wave[u.starts[0]:u.ends[0]], 16000, nperseg=256)
        return P[f > 3500].sum() / P.sum()
    assert high_share("s") > 0.8 > 0.3 > high_share("sh")


def test_deterministic_and_seed_dependent():
    s = random_speaker("x", 5)
    a, b = synthesize(["p", "i", "n"], s, seed=9), synthesize(["p", "i", "n"], s, seed=9)
    c = synthesize(["p", "i", "n"], s, seed=10)
    assert np.array_equal(a.wave, b.wave) and not np.array_equal(a.wave, c.wave)


def test_random_speakers_in_range():
    for i in range(50):
        s = random_speaker(str(i), i)
        for key, (lo, hi) in RANGES.items():
            assert lo <= getattr(s, key) <= hi


@pytest.mark.parametrize("kwargs, match", [
    ({"f0": 300.0}, "f0"), ({"vocal_tract": 0.5}, "vocal_tract"), ({"group": "robot"}, "group"),
    ({"rate": 2.0}, "rate"), ({"snr_db": 5.0}, "snr_db")])
def test_speaker_checks(kwargs, match):
    args = {"name": "x", "group": "man", "f0": 100.0, "vocal_tract": 1.0, "rate": 1.0, "snr_db": 20.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        Speaker(**args)


def test_synthesize_checks():
    s = Speaker("x", "man", 100.0, 1.0, 1.0, 20.0)
    with pytest.raises(ValueError, match="phones"):
        synthesize(["zz"], s)
    with pytest.raises(ValueError, match="sr"):
        synthesize(["aa"], s, sr=4000)
    with pytest.raises(TypeError, match="speaker"):
        synthesize(["aa"], {"f0": 100})


def test_consonant_targets_scale_with_vocal_tract():
    a = formant_targets("t", Speaker("x", "man", 100.0, 1.0, 1.0, 20.0))
    b = formant_targets("t", Speaker("x", "man", 100.0, 1.2, 1.0, 20.0))
    assert np.allclose(b, 1.2 * a) and np.isclose(a[1], PHONES["t"].formants[1])


@pytest.mark.parametrize("group, f0", [("man", 85.0), ("child", 255.0)])
def test_phone_levels_follow_speech(group, f0):
    """Vowels are the loudest phones, /s/ and /sh/ some 5-15 dB below, /f/ and the stops weaker still."""
    u = synthesize(["aa", "s", "ae", "f", "aa", "t", "aa"], Speaker("x", group, f0, 1.0, 1.0, 30.0), seed=2,
                   noise=False)
    level = {}
    for p, a, b in zip(u.phones, u.starts, u.ends):
        level.setdefault(p, 10 * np.log10(np.mean(u.wave[a:b] ** 2)))
    assert level["aa"] - 15 < level["s"] < level["aa"] - 5
    assert level["f"] < level["s"] - 5 and level["t"] < level["s"] - 3
