"""The committed full-size record of ``static-vs-recurrent-ocr`` shows what its docs page says.

Every view beats chance by far on fonts never seen in training, the held-out
fonts really are held out, and the regularised MLP over-fits less than the
unregularised one.

A record audit: it checks committed data, not code (see ``conftest.py`` here).

One test compares the record's configuration with the experiment's current
``FULL`` configuration: it fails when the code's configuration changes and
the record was not rerun (a staleness check, still not a test of the code).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.experiments import static_vs_recurrent_ocr as experiment
from tasks.data.glyphs import available_fonts
from tests.records._record import folder, load_record

OUT = folder("static-vs-recurrent-ocr")


@pytest.fixture(scope="module")
def record() -> dict:
    return load_record("static-vs-recurrent-ocr", min_figure_bytes=10_000)


def test_record_is_the_full_size_run_of_the_current_configuration(record):
    assert record["experiment"] == "static-vs-recurrent-ocr" and record["quick"] is False
    cfg = record["config"]
    full = json.loads(json.dumps(experiment.FULL))     # tuples -> lists, as in the record
    for key in ("charset", "size", "pen_steps", "n_train", "n_test", "n_seen", "n_val", "test_fonts",
                "budget", "batch_size", "clip", "grids", "dtype"):
        assert cfg[key] == full[key], key
    assert cfg["models"] == [" / ".join(m) for m in experiment.FULL["models"]]
    assert cfg["reg"]["variants"] == experiment.FULL["reg"]["variants"]


def test_held_out_fonts_are_disjoint_from_training_fonts(record):
    train, test = set(record["train_fonts"]), set(record["test_fonts"])
    assert len(test) == record["config"]["test_fonts"] >= 1
    assert not train & test
    assert train | test == set(available_fonts(record["config"]["charset"]))
    for result in record["models"].values():
        assert set(result["test_accuracy_by_font"]) == test
        assert set(result["seen_font_accuracy_by_font"]) == train


def test_every_view_and_model_is_far_above_chance_on_held_out_fonts(record):
    chance = record["chance"]
    assert chance == pytest.approx(1 / len(record["config"]["charset"]))
    views = {r["view"] for r in record["models"].values()}
    assert views == {"image", "rows", "pen"}
    for name, r in record["models"].items():
        assert r["test_accuracy"] > 0.85 > 8 * chance, name
        # every single held-out font, not only the average, is read far above chance
        assert min(r["test_accuracy_by_font"].values()) > 0.7, name
        # fonts are balanced in the test set, so the overall accuracy is the mean over fonts
        assert r["test_accuracy"] == pytest.approx(np.mean(list(r["test_accuracy_by_font"].values())), abs=1e-9)
        # early stopping restored the best validation epoch: the test score is that epoch's
        assert r["test_accuracy_per_epoch"][r["best_epoch"] - 1] == pytest.approx(r["test_accuracy"], abs=1e-6)


def test_every_model_got_the_same_chance(record):
    """The fairness rule: equal grid sizes, the choice on validation (training fonts), one budget."""
    f = record["fairness"]
    assert set(f["grids"]) == set(f["chosen"]) == set(f["used"]) == set(record["models"])
    assert {len(g) for g in f["grids"].values()} == {f["grid_size"]} and f["grid_size"] == 4
    assert f["budget"] == {**record["config"]["budget"], "seconds": None}
    for name, m in record["models"].items():
        search = f["search"][name]
        assert [s["point"] for s in search] == f["grids"][name]
        best = max(s["validation"] for s in search)
        assert f["chosen"][name] == next(s for s in search if s["validation"] == best)["point"], name
        assert m["validation_accuracy"] == best
        used = f["used"][name]
        assert used["epochs"] == m["epochs"] == len(m["val_loss_per_epoch"]) <= f["budget"]["max_epochs"], name
        assert m["val_loss_per_epoch"][used["best_epoch"] - 1] == min(m["val_loss_per_epoch"]), name
        if used["stopped_by"] == "patience":
            assert used["epochs"] - used["best_epoch"] == f["budget"]["patience"], name
        else:
            assert used["epochs"] == f["budget"]["max_epochs"], name


def test_both_static_and_recurrent_backprop_reach_high_accuracy(record):
    best = {v: max(r["test_accuracy"] for r in record["models"].values() if r["view"] == v)
            for v in ("image", "rows", "pen")}
    assert min(best.values()) > 0.95


def test_the_pen_view_pays_most_for_a_new_font(record):
    """Pen trajectories of a known font are all but memorised; unseen outlines cost the most."""
    gaps = {v: np.mean([r["font_gap"] for r in record["models"].values() if r["view"] == v])
            for v in ("image", "rows", "pen")}
    assert gaps["pen"] > 0.02
    assert gaps["pen"] > max(gaps["image"], gaps["rows"]) + 0.01
    for r in record["models"].values():
        if r["view"] == "pen":
            assert r["seen_font_accuracy"] > 0.99


def test_regularisation_shrinks_overfitting(record):
    reg = record["regularisation"]
    none, both, heavy = reg["none"], reg["L2 + dropout"], reg["too much L2"]
    # without regularisation the large MLP fits its small training set exactly,
    # and its test loss climbs well above its minimum: over-fitting
    assert none["train_accuracy"] == 1.0
    assert none["test_loss"] > 1.2 * none["min_test_loss"]
    assert none["min_test_loss_epoch"] < record["config"]["reg"]["epochs"] // 2
    # L2 + dropout: a smaller train-test gap, better test accuracy and test loss
    assert both["gap"] < none["gap"]
    assert both["test_accuracy"] > none["test_accuracy"]
    assert both["test_loss"] < none["test_loss"]
    for name in ("L2", "dropout"):
        assert reg[name]["test_loss"] < none["test_loss"], name
    # far too much weight decay under-fits: it cannot even fit the training set
    regularised = ("none", "L2", "dropout", "L2 + dropout")
    assert heavy["train_accuracy"] < 0.9 < min(reg[k]["train_accuracy"] for k in regularised)
    assert heavy["test_accuracy"] < none["test_accuracy"]


def test_committed_figures_exist(record):
    assert "accuracy.png" in record["figures"] and "regularisation_loss.png" in record["figures"]
    for view in ("image", "rows", "pen"):
        assert f"confusion_{view}.png" in record["figures"]
    for name in record["figures"]:
        data = (OUT / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
