"""The committed full-size record of ``text``: held-out bits per character and samples.

Record audit: these tests check committed data, not code. They read the
committed ``experiments/text/results.json`` and train nothing, so no change to
``rnnbp/`` or ``tasks/`` can make them fail; they fail when a record is
missing, stale or no longer shows what the docs claim. Marked ``records``
(``pytest -m records`` runs only the audits, ``-m 'not records'`` only the
code's tests). The code's tests of the same experiments run their
``--quick`` size: ``tests/test_experiments_quick.py``.
"""

import pytest

from tests.records._record import load_record

pytestmark = pytest.mark.records


def test_lstm_beats_the_memoryless_bound_on_held_out_text():
    record = load_record("text")
    val = record["val_bits_per_char"]
    assert val[-1] < record["unigram_bits_per_char"] - 1.5
    assert all(b < a for a, b in zip(val, val[1:]))  # still improving every epoch
    for sample in record["samples"].values():
        assert sample.startswith("The ") and len(sample) == 4 + record["config"]["sample_chars"]
