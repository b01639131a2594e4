"""A small source-filter speech synthesiser in the spirit of Klatt (1980), numpy and scipy only.

- **Source**: a train of Rosenberg (1971) glottal pulses (type C: a raised
  cosine opening over 40 % of the period, a quarter-cosine closing over
  16 %), differentiated for lip radiation, at the speaker's f0 with a slow
  declination (+4 % to -4 % over the utterance) and per-period jitter.
- **Filter**: a cascade of four second-order resonators (Klatt's
  ``y[n] = A x[n] + B y[n-1] + C y[n-2]``, unity gain at 0 Hz) whose
  frequencies and bandwidths follow each phone's targets
  (:mod:`tasks.data.speech.phones`), updated every 4 ms; the targets move
  linearly between neighbouring phones over a transition of 30-60 ms (drawn
  per utterance, divided by the speaking rate), so a consonant's locus bends
  the neighbouring vowel's formants.
- **Noise sources**: fricatives are white noise through a 4th-order
  Butterworth band-pass; a stop is a closure (silence), a 10 ms burst of
  band-passed noise and 25 ms of aspiration (noise through the cascade);
  nasals are weak voicing through a low F1 and broad upper formants.
- **Speaker**: group (man, woman, child: Peterson & Barney's tables), f0
  (80-260 Hz), vocal-tract factor (every formant and noise band times
  0.85-1.2), speaking rate (0.8-1.25: durations divided by it), background
  white noise at an SNR of 10-30 dB.

Every utterance is deterministic given its seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import signal

from .phones import F4, GROUP_SCALE, GROUPS, PETERSON_BARNEY, PHONES

__all__ = ["Speaker", "Utterance", "random_speaker", "synthesize", "rosenberg_pulse", "resonator",
           "formant_targets", "RANGES"]

#: The ranges every speaker parameter is drawn from (and checked against).
RANGES = {"f0": (80.0, 260.0), "vocal_tract": (0.85, 1.2), "rate": (0.8, 1.25), "snr_db": (10.0, 30.0),
          "jitter": (0.0, 0.05)}
#: f0 range (Hz) of each group when a speaker is drawn at random.
GROUP_F0 = {"man": (80.0, 150.0), "woman": (150.0, 240.0), "child": (200.0, 260.0)}

_BLOCK = 0.004          # seconds between updates of the resonators
_BURST, _ASPIRATION = 0.010, 0.025


@dataclass(frozen=True)
class Speaker:
    """The synthesis parameters of one speaker (see the module docstring for the ranges).

    Parameters
    ----------
    name : str
    group : {"man", "woman", "child"}
        Chooses the Peterson-Barney vowel table.
    f0 : float
        Mean fundamental frequency, Hz, in [80, 260].
    vocal_tract : float
        Factor on every formant and noise band, in [0.85, 1.2].
    rate : float
        Speaking rate, in [0.8, 1.25]: durations are divided by it.
    snr_db : float
        Signal-to-noise ratio of the added white background noise, dB, in [10, 30].
    jitter : float
        Standard deviation of the relative period-to-period change of f0, in [0, 0.05].
    """

    name: str
    group: str
    f0: float
    vocal_tract: float
    rate: float
    snr_db: float
    jitter: float = 0.01

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"group: expected one of {GROUPS}, got {self.group!r}")
        for key, (lo, hi) in RANGES.items():
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and lo <= value <= hi):
                raise ValueError(f"{key}: expected a number in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True, eq=False)
class Utterance:
    """One synthesised utterance.

    Attributes
    ----------
    wave : ndarray, shape (n,), float64
        The waveform, background noise included.
    sr : int
        Sample rate, Hz.
    phones : tuple of str
    starts, ends : ndarray of int64, shape (len(phones),)
        Each phone's first sample and one past its last (silence before the
        first and after the last phone belongs to no phone).
    """

    wave: np.ndarray
    sr: int
    phones: tuple[str, ...]
    starts: np.ndarray
    ends: np.ndarray

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.wave.size / self.sr


def seeded(seed) -> np.random.Generator:
    """A Generator from an int, a sequence of ints (``numpy.random.default_rng`` entropy) or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    ok = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) or (
        isinstance(seed, (list, tuple)) and seed and all(isinstance(v, (int, np.integer)) for v in seed))
    if not ok:
        raise TypeError(f"seed: expected an int, a list of ints or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


def random_speaker(name: str, seed) -> Speaker:
    """A speaker with every parameter drawn uniformly from its range (group first, then its f0 range)."""
    rng = seeded(seed)
    group = GROUPS[int(rng.integers(len(GROUPS)))]
    u = lambda key: float(rng.uniform(*RANGES[key]))
    return Speaker(name, group, f0=float(rng.uniform(*GROUP_F0[group])), vocal_tract=u("vocal_tract"),
                   rate=u("rate"), snr_db=u("snr_db"), jitter=float(rng.uniform(0.005, 0.02)))


def rosenberg_pulse(n_open: int, n_close: int) -> np.ndarray:
    """One Rosenberg glottal flow pulse: ``n_open`` samples opening, ``n_close`` closing.

    ``g = (1 - cos(pi t / n_open)) / 2`` while opening, ``cos(pi/2 (t - n_open) / n_close)``
    while closing; shape ``(n_open + n_close,)``, peak 1.
    """
    t = np.arange(n_open)
    rise = 0.5 * (1.0 - np.cos(np.pi * t / n_open))
    fall = np.cos(0.5 * np.pi * np.arange(n_close) / n_close)
    return np.concatenate([rise, fall])


def resonator(freq: float | np.ndarray, bandwidth: float | np.ndarray, sr: float) -> tuple:
    """Klatt's second-order resonator ``y[n] = A x[n] + B y[n-1] + C y[n-2]``: ``(A, B, C)``.

    ``C = -exp(-2 pi bw / sr)``, ``B = 2 exp(-pi bw / sr) cos(2 pi f / sr)``,
    ``A = 1 - B - C`` (unity gain at 0 Hz).
    """
    r = np.exp(-np.pi * np.asarray(bandwidth, float) / sr)
    C = -r * r
    B = 2.0 * r * np.cos(2.0 * np.pi * np.asarray(freq, float) / sr)
    return 1.0 - B - C, B, C


def formant_targets(phone: str, speaker: Speaker) -> np.ndarray:
    """(F1, F2, F3, F4) targets of ``phone`` for ``speaker`` in Hz, vocal-tract factor applied."""
    p = PHONES[phone]
    scale = GROUP_SCALE[speaker.group]
    f123 = PETERSON_BARNEY[phone][speaker.group] if p.kind == "vowel" else tuple(f * scale for f in p.formants)
    return np.array([*f123, F4 * scale]) * speaker.vocal_tract


_pulse = functools.lru_cache(maxsize=1024)(rosenberg_pulse)   # read-only copies for the pulse train


def _glottal_source(n: int, f0: float, jitter: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Differentiated Rosenberg pulses at f0 with declination and jitter, ``(n,)``."""
    out = np.zeros(n + 2 * sr // 60)
    t = float(rng.uniform(0, sr / f0))
    while t < n:
        f = f0 * (1.04 - 0.08 * t / n) * (1.0 + jitter * rng.standard_normal())
        period = sr / f
        pulse = _pulse(max(2, round(0.4 * period)), max(2, round(0.16 * period)))
        i = int(t)
        out[i:i + pulse.size] += pulse
        t += period
    return np.diff(out[:n + 1])          # lip radiation: a first difference


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` rows (edges held): linear ramps between constant stretches."""
    if width <= 1:
        return track
    pad = np.concatenate([np.repeat(track[:1], width // 2, 0), track, np.repeat(track[-1:], width - 1 - width // 2, 0)])
    kernel = np.ones(width) / width
    return np.stack([np.convolve(pad[:, j], kernel, mode="valid") for j in range(track.shape[1])], axis=1)


@functools.lru_cache(maxsize=512)
def _bandpass(lo: float, hi: float, sr: int) -> np.ndarray:
    return signal.butter(4, [lo, hi], btype="bandpass", fs=sr, output="sos")


def _band_noise(n: int, band: tuple[float, float], sr: int, rng: np.random.Generator) -> np.ndarray:
    """White noise through a 4th-order Butterworth band-pass (edges rounded to 10 Hz), ``(n,)``."""
    lo, hi = round(band[0], -1), round(min(band[1], 0.45 * sr), -1)
    x = signal.sosfilt(_bandpass(lo, hi, sr), rng.standard_normal(n + 256))[256:]   # drop the start-up
    return x / np.sqrt(np.mean(x ** 2))                  # unit RMS: the phone's gain is its level


def _ramp(n: int, sr: int, seconds: float = 0.005) -> np.ndarray:
    """An envelope rising and falling over ``seconds`` at both ends, ``(n,)``."""
    k = max(1, min(n // 2, int(seconds * sr)))
    env = np.ones(n)
    env[:k] = np.linspace(0, 1, k, endpoint=False)
    env[n - k:] = np.linspace(1, 0, k)
    return env


def synthesize(phones: Sequence[str], speaker: Speaker, *, sr: int = 16000, seed=0,
               noise: bool = True) -> Utterance:
    """Synthesise a phone sequence spoken by ``speaker``.

    Parameters
    ----------
    phones : sequence of str
        Names from :data:`tasks.data.speech.phones.PHONES`.
    speaker : Speaker
    sr : int, default 16000
        Sample rate in Hz (at least 8000).
    seed : int, sequence of int or numpy.random.Generator
        Draws the durations (each phone's +-10 %), the silences around the
        utterance (50-150 ms), the transition length, the jitter, the noise.
    noise : bool, default True
        Add the speaker's background noise (False for measurements).

    Returns
    -------
    Utterance
        The waveform has unit RMS over its phones before the background noise is added.
    """
    if not isinstance(speaker, Speaker):
        raise TypeError(f"speaker: expected a Speaker, got {type(speaker).__name__}")
    if not isinstance(sr, int) or sr < 8000:
        raise ValueError(f"sr: expected an int >= 8000, got {sr!r}")
    phones = tuple(phones)
    unknown = [p for p in phones if p not in PHONES]
    if not phones or unknown:
        raise ValueError(f"phones: expected a non-empty sequence of {tuple(PHONES)}, got {phones!r}")
    rng = seeded(seed)
    dur = np.array([PHONES[p].duration for p in phones]) / speaker.rate * rng.uniform(0.9, 1.1, len(phones))
    lead, tail = rng.uniform(0.05, 0.15, 2)
    lengths = np.round(dur * sr).astype(np.int64)
    starts = int(lead * sr) + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + lengths
    n = int(ends[-1] + int(tail * sr))
    scale = speaker.vocal_tract * GROUP_SCALE[speaker.group]

    # control tracks, one row per block: formants, bandwidths, voicing, aspiration
    block = max(1, int(_BLOCK * sr))
    nb = -(-n // block)
    which = np.full(nb, -1)
    for i, (a, b) in enumerate(zip(starts, ends)):
        which[a // block:-(-b // block)] = i
    first, last = np.flatnonzero(which >= 0)[[0, -1]]
    which[:first], which[last + 1:] = which[first], which[last]       # silence holds its neighbour's shape
    targets = np.array([formant_targets(p, speaker) for p in phones])
    bws = np.array([[*PHONES[p].bandwidths, 250.0] for p in phones])
    transition = rng.uniform(0.03, 0.06) / speaker.rate
    width = max(1, int(round(transition / _BLOCK)))
    F = _smooth(targets[which], width)
    BW = _smooth(bws[which], width)

    # per-sample amplitudes of the voicing and of the aspiration through the cascade
    av = np.zeros(n)
    ah = np.zeros(n)
    fric = np.zeros(n)
    for i, p in enumerate(phones):
        ph, a, b = PHONES[p], int(starts[i]), int(ends[i])
        if ph.voicing:
            av[a:b] = ph.voicing
        if ph.kind == "fricative":
            band = (ph.noise_band[0] * scale, ph.noise_band[1] * scale)
            fric[a:b] += ph.noise_gain * _band_noise(b - a, band, sr, rng) * _ramp(b - a, sr, 0.015)
        elif ph.kind == "stop":
            c = a + int(ph.closure / speaker.rate * sr)
            nburst, nasp = int(_BURST * sr), int(_ASPIRATION * sr)
            nburst = max(1, min(nburst, b - c))
            band = (ph.noise_band[0] * scale, ph.noise_band[1] * scale)
            fric[c:c + nburst] += ph.noise_gain * _band_noise(nburst, band, sr, rng) * _ramp(nburst, sr, 0.002)
            end = min(b, c + nburst + nasp)
            ah[c:end] = _ramp(end - c, sr, 0.005)
    av = np.convolve(av, np.ones(int(0.01 * sr)) / int(0.01 * sr), mode="same")    # 10 ms voicing onsets
    # two sources through the same cascade: voicing and aspiration, levelled separately below
    sources = np.stack([av * _glottal_source(n, speaker.f0, speaker.jitter, sr, rng), ah * rng.standard_normal(n)])

    # one lfilter call per resonator and run of blocks with unchanged targets (inside a phone
    # the targets are constant; only the transitions change every block)
    out = np.empty((2, n))
    zi = [np.zeros((2, 2)) for _ in range(4)]
    A, B, C = resonator(np.minimum(F, 0.45 * sr), BW, sr)      # each (nb, 4)
    change = np.flatnonzero(np.any(np.diff(np.concatenate([F, BW], axis=1), axis=0) != 0, axis=1)) + 1
    runs = np.concatenate([[0], change, [nb]])
    for j, j_end in zip(runs[:-1], runs[1:]):
        y = sources[:, j * block:j_end * block]
        for k in range(4):
            y, zi[k] = signal.lfilter(A[j, k:k + 1], (1.0, -B[j, k], -C[j, k]), y, axis=1, zi=zi[k])
        out[:, j * block:j_end * block] = y
    # levels: voicing at unit RMS over the vowels (full voicing), aspiration at -20 dB of it
    voiced, aspirated = out
    full = av > 0.99 if np.any(av > 0.99) else av > 0
    if np.any(full):
        voiced = voiced / (np.sqrt(np.mean(voiced[full] ** 2)) + 1e-12)
    if np.any(ah > 0):
        aspirated = aspirated * (0.1 / (np.sqrt(np.mean(aspirated[ah > 0] ** 2)) + 1e-12))
    out = voiced + aspirated
    wave = out + fric
    active = np.zeros(n, bool)
    for a, b in zip(starts, ends):
        active[a:b] = True
    wave /= np.sqrt(np.mean(wave[active] ** 2)) + 1e-12
    if noise:
        wave = wave + rng.standard_normal(n) * 10.0 ** (-speaker.snr_db / 20.0)
    return Utterance(wave, sr, phones, starts.astype(np.int64), ends.astype(np.int64))
