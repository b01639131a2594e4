"""The committed full-size record of ``text``: held-out bits per character and samples.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
"""

from tests.records._record import load_record


def test_lstm_beats_the_memoryless_bound_on_held_out_text():
    record = load_record("text")
    val = record["val_bits_per_char"]
    assert val[-1] < record["unigram_bits_per_char"] - 1.5
    assert all(b < a for a, b in zip(val, val[1:]))  # still improving every epoch
    for sample in record["samples"].values():
        assert sample.startswith("The ") and len(sample) == 4 + record["config"]["sample_chars"]
