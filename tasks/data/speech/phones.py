"""The phone inventory of the speech synthesiser: formant targets, loci, noise bands, durations.

Vowel formants are the averages of Peterson & Barney (1952, *J. Acoust. Soc.
Am.* 24, 175-184, table II) for men, women and children; the consonants'
values are the textbook acoustic cues of Klatt (1980, *J. Acoust. Soc. Am.*
67, 971-995) and Stevens (1998, *Acoustic Phonetics*): a stop's formant
*locus* (where the neighbouring vowel's formants start or end), its burst
band; a fricative's noise band; a nasal's low first formant (the murmur).
Every frequency is for the speaker group's vocal tract and is multiplied by
the speaker's vocal-tract factor (:class:`tasks.data.speech.synth.Speaker`).

Twelve phones: four vowels (``i`` heed, ``ae`` had, ``aa`` hod, ``uw``
who'd), three voiceless stops (``p t k``), three voiceless fricatives (``s sh
f``) and two nasals (``m n``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Phone", "PHONES", "PHONE_NAMES", "PETERSON_BARNEY", "GROUPS", "GROUP_SCALE", "F4"]

#: Speaker groups of Peterson & Barney (1952).
GROUPS = ("man", "woman", "child")

#: Average (F1, F2, F3) in Hz, Peterson & Barney (1952), table II, for the
#: vowels of heed, had, hod, who'd (IPA i, æ, ɑ, u).
PETERSON_BARNEY: dict[str, dict[str, tuple[float, float, float]]] = {
    "i": {"man": (270.0, 2290.0, 3010.0), "woman": (310.0, 2790.0, 3310.0), "child": (370.0, 3200.0, 3730.0)},
    "ae": {"man": (660.0, 1720.0, 2410.0), "woman": (860.0, 2050.0, 2850.0), "child": (1010.0, 2320.0, 3320.0)},
    "aa": {"man": (730.0, 1090.0, 2440.0), "woman": (850.0, 1220.0, 2810.0), "child": (1030.0, 1370.0, 3170.0)},
    "uw": {"man": (300.0, 870.0, 2240.0), "woman": (370.0, 950.0, 2670.0), "child": (430.0, 1170.0, 3260.0)},
}

#: How much shorter each group's vocal tract is than a man's (ratio of the
#: groups' mean F3 over these vowels), for the consonants, which the table does not cover.
GROUP_SCALE = {"man": 1.0, "woman": 1.15, "child": 1.32}

#: Fourth formant of a man (Hz); scaled like the consonants.
F4 = 3500.0


@dataclass(frozen=True)
class Phone:
    """One phone's acoustic targets (a man's vocal tract; see the module docstring).

    Attributes
    ----------
    name : str
    kind : {"vowel", "stop", "fricative", "nasal"}
    formants : tuple of 3 float
        (F1, F2, F3) targets in Hz: a vowel's steady state (for a vowel the
        group's Peterson-Barney values replace these), a nasal's murmur, a
        consonant's locus.
    bandwidths : tuple of 3 float
        Formant bandwidths in Hz.
    duration : float
        Seconds at speaking rate 1.
    noise_band : tuple of 2 float or None
        Pass band (Hz) of the frication noise (fricatives) or of the burst (stops).
    noise_gain : float
        RMS of that noise relative to the RMS of a vowel's voicing.
    voicing : float
        Amplitude of the glottal source (1 for a vowel, 0 for voiceless phones).
    closure : float
        Stops: seconds of silence before the burst (at rate 1).
    """

    name: str
    kind: str
    formants: tuple[float, float, float]
    bandwidths: tuple[float, float, float]
    duration: float
    noise_band: tuple[float, float] | None = None
    noise_gain: float = 0.0
    voicing: float = 0.0
    closure: float = 0.0


_VB = (60.0, 90.0, 150.0)      # vowel bandwidths (Klatt 1980 defaults are 50-130 Hz)
PHONES: dict[str, Phone] = {
    "i": Phone("i", "vowel", PETERSON_BARNEY["i"]["man"], _VB, 0.13, voicing=1.0),
    "ae": Phone("ae", "vowel", PETERSON_BARNEY["ae"]["man"], _VB, 0.15, voicing=1.0),
    "aa": Phone("aa", "vowel", PETERSON_BARNEY["aa"]["man"], _VB, 0.15, voicing=1.0),
    "uw": Phone("uw", "vowel", PETERSON_BARNEY["uw"]["man"], _VB, 0.13, voicing=1.0),
    # stops: closure, then a burst in the band of the place of articulation; loci from Klatt (1980)
    "p": Phone("p", "stop", (250.0, 900.0, 2100.0), (150.0, 200.0, 300.0), 0.10,
               noise_band=(400.0, 1600.0), noise_gain=0.25, closure=0.065),
    "t": Phone("t", "stop", (250.0, 1800.0, 2700.0), (150.0, 200.0, 300.0), 0.10,
               noise_band=(3000.0, 6000.0), noise_gain=0.35, closure=0.065),
    "k": Phone("k", "stop", (250.0, 2100.0, 2400.0), (150.0, 200.0, 300.0), 0.10,
               noise_band=(1500.0, 2800.0), noise_gain=0.4, closure=0.065),
    # fricatives: band-passed noise
    "s": Phone("s", "fricative", (250.0, 1700.0, 2700.0), (150.0, 200.0, 300.0), 0.12,
               noise_band=(4000.0, 7200.0), noise_gain=0.3),
    "sh": Phone("sh", "fricative", (250.0, 1900.0, 2500.0), (150.0, 200.0, 300.0), 0.12,
                noise_band=(2000.0, 3800.0), noise_gain=0.35),
    "f": Phone("f", "fricative", (250.0, 1000.0, 2300.0), (150.0, 200.0, 300.0), 0.11,
               noise_band=(1200.0, 7200.0), noise_gain=0.12),
    # nasals: voiced murmur with a low F1 and broad, weak upper formants
    "m": Phone("m", "nasal", (250.0, 1000.0, 2200.0), (100.0, 300.0, 400.0), 0.08, voicing=0.5),
    "n": Phone("n", "nasal", (250.0, 1600.0, 2600.0), (100.0, 300.0, 400.0), 0.08, voicing=0.5),
}

#: The phone labels in a fixed order (CTC classes 1..12; 0 is the blank).
PHONE_NAMES: tuple[str, ...] = tuple(PHONES)
