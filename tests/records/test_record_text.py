"""The committed full-size run of the text experiment (reads the record, does not train)."""

import json

from tasks import cli


def test_lstm_beats_the_memoryless_bound_on_held_out_text():
    record = json.loads((cli.ROOT / "experiments" / "text" / "results.json").read_text())
    assert record["quick"] is False
    val = record["val_bits_per_char"]
    assert val[-1] < record["unigram_bits_per_char"] - 1.5
    assert all(b < a for a, b in zip(val, val[1:]))  # still improving every epoch
    for sample in record["samples"].values():
        assert sample.startswith("The ") and len(sample) == 4 + record["config"]["sample_chars"]
