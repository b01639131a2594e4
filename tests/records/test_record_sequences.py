"""The committed full-size records of the sequence experiments show what the docs claim.

``adding``, ``reber``, ``static-vs-recurrent-sequences`` and ``quickstart``.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
"""

import pytest

from tests.records._record import load_record


def _record(name):
    return load_record(name)


def test_adding_lstm_solves_t100_and_elman_tanh_does_not():
    record = _record("adding")
    baseline = record["baseline_mse"]
    assert baseline == pytest.approx(1 / 6)
    t100 = record["results"]["100"]
    assert t100["LSTM"]["final_test_mse"] < 0.01
    assert t100["Elman-tanh"]["final_test_mse"] > 0.01
    assert not t100["Elman-tanh"]["solved"] and t100["LSTM"]["solved"]
    assert set(record["results"]) == {"100", "200"}
    for runs in record["results"].values():
        assert set(runs) == {"Elman-tanh", "IRNN", "LSTM"}
        for r in runs.values():
            assert r["seen"][-1] == max(r["seen"]) and len(r["seen"]) == len(r["test_mse"])


def test_reber_lstm_solves_at_least_nine_of_ten_seeds():
    record = _record("reber")
    lstm = record["summary"]["LSTM"]
    assert lstm["trials"] == 10 and lstm["solved"] >= 9
    assert sum(t["solved"] for t in record["trials"]["LSTM"]) == lstm["solved"]
    for t in record["trials"]["LSTM"]:
        if t["solved"]:
            assert t["test_strings_correct"] == 1.0 and t["sequences"] <= record["config"]["cap"]
    published = record["published"]
    assert published["lstm_best"] == {"success_percent": 100, "trials": 30, "mean_sequences": 8440}
    assert published["elman"] == {"success_percent": 0, "within_sequences": 200000}


def test_recurrent_models_beat_the_time_delay_mlp_beyond_its_window():
    record = _record("static-vs-recurrent-sequences")
    w, chance = record["window"], record["chance"]
    lags, acc = record["lags"], record["mean_test_accuracy"]
    beyond = [k for k, lag in enumerate(lags) if lag >= w]
    within = [k for k, lag in enumerate(lags) if lag < w]
    assert beyond and within
    for k in within:  # inside its window the MLP does the task
        assert acc["MLP"][k] > 0.95
    for k in beyond:  # beyond it, the MLP is at chance and the LSTM far above it, at every lag tried
        assert acc["MLP"][k] < chance + 0.1
        assert acc["LSTM"][k] > acc["MLP"][k] + 0.5, lags[k]
    # every recurrent model in every seed from the window's edge up to 32 steps; the GRU up to 64
    per_seed = record["test_accuracy_per_seed"]
    for k in beyond:
        for name, reach in (("Elman", 32), ("LSTM", 32), ("GRU", 64)):
            if lags[k] <= reach:
                assert min(per_seed[name][k]) > 0.95 > chance + 0.1 > max(per_seed["MLP"][k]), (name, lags[k])
    # the LSTM reaches furthest: every seed at lags 64 and 96, where Elman and the GRU fail some
    for lag in (64, 96):
        k = lags.index(lag)
        assert min(per_seed["LSTM"][k]) > 0.95, lag
        assert min(per_seed["Elman"][k]) < 0.5, lag
    assert min(per_seed["GRU"][lags.index(96)]) < 0.5


def test_static_vs_recurrent_sequences_gave_every_model_the_same_chance():
    """The fairness rule: equal grid sizes, one choice per family on validation, one budget for every run."""
    record = _record("static-vs-recurrent-sequences")
    f, cfg = record["fairness"], record["config"]
    models = set(record["mean_test_accuracy"])
    assert set(f["grids"]) == set(f["chosen"]) == set(f["used"]) == models
    assert {len(g) for g in f["grids"].values()} == {f["grid_size"]} and f["grid_size"] == 4
    assert f["budget"] == {**cfg["budget"], "seconds": None}
    for name in models:
        best = max(s["validation"] for s in f["search"][name])
        assert f["chosen"][name] == next(s for s in f["search"][name] if s["validation"] == best)["point"]
        runs = record["runs"][name]
        assert len(runs) == len(record["lags"]) * cfg["seeds"] == f["used"][name]["runs"]
        for run in runs:
            assert {"hidden": run["hidden"], "lr": run["lr"]} == f["chosen"][name]
            assert run["epochs"] >= run["best_epoch"] >= 1 and run["epochs"] <= f["budget"]["max_epochs"]


def test_quickstart_lstm_beats_elman_on_the_adding_problem():
    """The README's quickstart: LSTM learns the adding problem; Elman stays near the trivial predictor."""
    record = _record("quickstart")
    lstm, elman = record["models"]["LSTM"]["test_mse"], record["models"]["Elman"]["test_mse"]
    assert lstm < 0.01 < record["baseline_mse"] * 0.8 < elman
    assert elman > 100 * lstm
