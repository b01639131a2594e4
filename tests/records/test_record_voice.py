"""The committed ``voice`` record is fair by the rule of ``tasks.fairness``, and its page quotes it.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
"""

import re

import numpy as np
import pytest

from tests.records._record import ROOT, load_record

FAMILIES = ["MLP-stats", "TDNN", "Elman", "LSTM", "GRU", "BiLSTM"]


@pytest.fixture(scope="module")
def record():
    return load_record("voice")


def test_every_family_had_the_same_grid_size_budget_and_seeds(record):
    fair = record["fairness"]
    assert list(record["models"]) == FAMILIES and fair["grid_size"] == 4
    assert all(len(fair["grids"][f]) == 4 for f in FAMILIES)
    for f, m in record["models"].items():
        assert m["chosen"] == fair["chosen"][f] and m["chosen"] in fair["grids"][f]
        assert m["budget"]["max_epochs"] == fair["budget"]["max_epochs"] == 150
        assert all(e <= 150 for e in m["budget"]["used"]["epochs"])
        assert len(m["test_accuracy_per_seed"]) == 5
        assert m["test_accuracy"]["mean"] == pytest.approx(np.mean(m["test_accuracy_per_seed"]))
        # the chosen point has the lowest mean validation loss of its grid (ties: the first)
        losses = [g["validation_loss"] for g in m["grid"]]
        assert m["grid"][int(np.argmin(losses))]["point"] == m["chosen"]
    assert record["run"]["clean"] is True and record["config"]["seeds"] == 5


def test_every_model_beats_the_trivial_baselines_and_kudo(record):
    trivial = record["trivial"]
    assert trivial["length_only"]["test_accuracy"] < 0.3 and trivial["majority_class"]["test_accuracy"] < 0.12
    for m in record["models"].values():
        assert m["test_accuracy"]["mean"] > 0.941


def test_the_page_quotes_the_record(record):
    page = (ROOT / "docs" / "experiments" / "voice.md").read_text()
    for f, m in record["models"].items():
        a = m["test_accuracy"]
        row = next(line for line in page.splitlines() if line.startswith(f"| {f} |") and "**" in line)
        assert f"**{100 * a['mean']:.2f} ± {100 * a['sd']:.2f}**" in row, f
        assert ", ".join(map(str, m["test_errors_per_seed"])) in row, f
    c = record["comparison"]
    assert f"{c['accuracy_ratio_static_over_recurrent']:.4f}" in page
    assert re.search(rf"{100 * record['trivial']['length_only']['test_accuracy']:.1f}", page)
