"""The fairness rule: equal grids, one budget, choice on validation, stated in the record."""

import doctest
import math

import pytest

from tasks import fairness
from tasks.fairness import Budget, BudgetTracker, check_grids, choose, fairness_record, grid


def test_module_example_runs():
    assert doctest.testmod(fairness).failed == 0


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_grid_is_the_product_in_order():
    assert grid(a=[1, 2], b=["x", "y"]) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                            {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ValueError, match="b: expected a non-empty list"):
        grid(a=[1], b=[])


def test_unequal_grids_are_refused_naming_each_family():
    assert check_grids({"MLP": grid(h=[1, 2]), "LSTM": grid(h=[3], lr=[1, 2])}) == 2
    with pytest.raises(ValueError, match="MLP: 3, LSTM: 2"):
        check_grids({"MLP": grid(h=[1, 2, 3]), "LSTM": grid(h=[3, 4])})


@pytest.mark.parametrize("higher, scores, best_epoch, epochs, reason", [
    (True, [0.1, 0.3, 0.2, 0.25, 0.3], 2, 5, "patience"),      # ties do not count as better
    (False, [3.0, 2.0, 1.0, 0.5, 0.4, 0.3], 6, 6, "max_epochs"),
    (True, [0.5, 0.5, 0.5, 0.5], 1, 4, "patience"),
])
def test_tracker_stops_by_patience_and_max_epochs(higher, scores, best_epoch, epochs, reason):
    t = BudgetTracker(Budget(max_epochs=6, patience=3), higher_is_better=higher)
    for s in scores:
        if not t.update(s):
            break
    assert (t.best_epoch, t.epochs, t.reason) == (best_epoch, epochs, reason)
    with pytest.raises(ValueError, match="already spent"):
        t.update(1.0)


def test_tracker_stops_by_seconds_and_reports_use():
    clock = Clock()
    t = BudgetTracker(Budget(max_epochs=100, seconds=10.0), clock=clock)
    go = []
    for _ in range(5):
        clock.t += 4.0
        go.append(t.update(0.5))
        if not go[-1]:
            break
    assert go == [True, True, False]
    assert t.used() == {"epochs": 3, "best_epoch": 1, "best_score": 0.5, "seconds": 12.0,
                        "stopped_by": "seconds"}


def test_nonfinite_score_is_an_error_not_a_best():
    t = BudgetTracker(Budget(max_epochs=3), higher_is_better=False)
    with pytest.raises(ValueError, match="epoch 1"):
        t.update(math.nan)


def test_choose_on_validation_only():
    rs = [{"lr": 1, "validation": 0.7}, {"lr": 2, "validation": 0.9}, {"lr": 3, "validation": 0.9}]
    assert choose(rs)["lr"] == 2                                   # the first of a tie
    assert choose(rs, higher_is_better=False)["lr"] == 1
    assert choose([{"v": math.nan}, {"v": 2.0}], "v")["v"] == 2.0
    with pytest.raises(ValueError, match="validation data"):
        choose(rs, "test_accuracy")


def test_budget_checks_and_fit_kwargs():
    assert Budget(10, 3).fit_kwargs() == {"epochs": 10, "patience": 3}
    with pytest.raises(ValueError, match="max_epochs"):
        Budget(0)
    with pytest.raises(ValueError, match="wall-clock"):
        Budget(10, seconds=5).fit_kwargs()


def test_record_states_grids_choice_and_budget():
    grids = {"MLP": grid(h=[8, 16]), "GRU": grid(h=[4, 8])}
    rec = fairness_record(grids, Budget(20, 4), {"MLP": {"h": 16}, "GRU": {"h": 4}},
                          {"MLP": {"epochs": 9}, "GRU": {"epochs": 20}})
    assert rec["grid_size"] == 2 and rec["budget"] == {"max_epochs": 20, "patience": 4, "seconds": None}
    assert rec["chosen"]["MLP"] == {"h": 16} and rec["used"]["GRU"] == {"epochs": 20}
    with pytest.raises(ValueError, match="not a point of its grid"):
        fairness_record(grids, Budget(20), {"MLP": {"h": 32}, "GRU": {"h": 4}})
    with pytest.raises(ValueError, match="a point for each"):
        fairness_record(grids, Budget(20), {"MLP": {"h": 8}})
