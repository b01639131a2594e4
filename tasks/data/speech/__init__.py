"""Synthetic speech: a Klatt-style synthesiser, log-mel features, a word vocabulary with anagrams.

- :mod:`.phones` -- twelve phones and their acoustic targets (Peterson & Barney 1952 vowels);
- :mod:`.synth` -- :class:`Speaker`, :func:`synthesize` (source-filter synthesis);
- :mod:`.features` -- :func:`log_mel`, :func:`deltas`, :func:`features` (25 ms windows, 10 ms hop);
- :mod:`.words` -- the vocabulary, its anagram groups, the fixed speaker panels and the data sets.
"""

from .phones import PETERSON_BARNEY, PHONE_NAMES, PHONES, Phone
from .synth import RANGES, Speaker, Utterance, random_speaker, synthesize

__all__ = ["PETERSON_BARNEY", "PHONE_NAMES", "PHONES", "Phone", "RANGES", "Speaker", "Utterance",
           "random_speaker", "synthesize"]
