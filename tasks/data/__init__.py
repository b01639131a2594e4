"""Every data generator and shipped data set of the experiments.

Import from the module that owns a name; this package imports nothing itself
(``python -m tasks`` sets the BLAS threads before numpy is imported).

- :mod:`tasks.data.common` -- :class:`~tasks.data.common.SequenceData`,
  :func:`~tasks.data.common.one_hot` and the argument checks every generator
  shares;
- :mod:`tasks.data.sequences` -- synthetic sequence tasks (adding problem,
  temporal order, copy, embedded Reber grammar, temporal XOR, sine mixtures,
  Mackey–Glass, delayed classification), all time-major ``SequenceData``;
- :mod:`tasks.data.text` -- character-level text from standard-library
  docstrings or any UTF-8 file;
- :mod:`tasks.data.glyphs` -- characters rendered from matplotlib's bundled
  fonts, split into training and held-out fonts;
- :mod:`tasks.data.line_text` and :mod:`tasks.data.lines` -- the alphabet,
  label encoding and texts of whole lines, and the lines rendered as images
  and pen strokes for CTC;
- :mod:`tasks.data.vowels` -- real recorded speech shipped in the repository:
  UCI Japanese Vowels (``tasks/data/japanese_vowels/``, with its source,
  licence, citation and checksum);
- :mod:`tasks.data.speech` -- a Klatt-style source-filter speech synthesiser
  (speakers, phones, words with anagram groups, continuous phone strings)
  and its log-mel features;
- :mod:`tasks.data.signatures` -- online signatures from the sigma-lognormal
  model: writers, genuine samples, skilled and random forgeries, and their
  views.

Every generator takes ``seed`` (an int or a ``numpy.random.Generator``) and is
deterministic given it; numpy's global random state is never touched.
"""
