"""The fairness rule of every static-versus-recurrent comparison, in one place.

A comparison is trusted only when every model got the same chance. Every
experiment that sets a static model against a recurrent one follows three
rules, and this module is where they are written down and checked:

1. **Equal tuning effort.** Each model family chooses its size and learning
   rate (or whatever it tunes) on *validation* data from a grid with the
   *same number of points* as every other family's grid
   (:func:`check_grids`, :func:`choose`). Held-out test data never chooses.
2. **Equal training budget.** Every training run gets the same
   :class:`Budget`: at most ``max_epochs`` epochs, stopped early after
   ``patience`` epochs without a better validation score, and, if
   ``seconds`` is set, after that much wall-clock time on one worker. A
   :class:`BudgetTracker` applies it to any training loop; with
   :func:`rnnbp.fit`, :meth:`Budget.fit_kwargs` passes the same rule.
   Epoch budgets with early stopping are the default because they give the
   same numbers on a busy and an idle machine; a seconds budget is
   available when a comparison is about time.
3. **Stated in the record.** :func:`fairness_record` gives the JSON that each
   record stores: every family's grid, the point it chose, the budget and
   what each chosen run used of it.

Example
-------
>>> budget = Budget(max_epochs=30, patience=5)
>>> grids = {"MLP": grid(hidden=[32, 64], lr=[1e-3, 3e-3]),
...          "LSTM": grid(hidden=[16, 32], lr=[3e-3, 1e-2])}
>>> check_grids(grids)
4
>>> tracker = BudgetTracker(budget)
>>> for score in [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.9]:
...     if not tracker.update(score):
...         break
>>> tracker.best_epoch, tracker.best_score, tracker.epochs, tracker.reason
(2, 0.6, 7, 'patience')
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable

__all__ = ["Budget", "BudgetTracker", "grid", "check_grids", "choose", "fairness_record"]


@dataclass(frozen=True)
class Budget:
    """The training budget every model of one comparison gets.

    Parameters
    ----------
    max_epochs : int
        Epochs at most (passes over the training set).
    patience : int or None
        Stop after this many epochs without a better validation score
        (early stopping); ``None`` trains all ``max_epochs``.
    seconds : float or None
        Stop after this much wall-clock time on one worker (checked after
        each epoch, so a run may pass it by less than one epoch).
    """

    max_epochs: int
    patience: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.max_epochs, int) or isinstance(self.max_epochs, bool) or self.max_epochs < 1:
            raise ValueError(f"max_epochs: expected an int >= 1, got {self.max_epochs!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience: expected None or an int >= 1, got {self.patience!r}")
        if self.seconds is not None and not (isinstance(self.seconds, (int, float)) and self.seconds > 0):
            raise ValueError(f"seconds: expected None or a number > 0, got {self.seconds!r}")

    def fit_kwargs(self) -> dict[str, Any]:
        """The same rule as keyword arguments of :func:`rnnbp.fit` (``epochs``, ``patience``).

        A ``seconds`` cap has no ``fit`` argument: use a :class:`BudgetTracker`
        in a callback or a loop of your own.
        """
        if self.seconds is not None:
            raise ValueError("seconds: rnnbp.fit has no wall-clock budget; drive the epochs with a BudgetTracker")
        return {"epochs": self.max_epochs, "patience": self.patience}

    def to_record(self) -> dict[str, Any]:
        """The budget as JSON for ``results.json``."""
        return asdict(self)


class BudgetTracker:
    """Apply a :class:`Budget` to one training run, epoch by epoch.

    Call :meth:`update` with the validation score after every epoch; it
    returns ``False`` once the budget is spent. ``best_epoch`` (1-based, like
    :class:`rnnbp.History` figures), ``best_score``, ``epochs``, ``seconds``
    and ``reason`` say what the run used; restore the weights of
    ``best_epoch`` (early stopping keeps the best, not the last).

    Parameters
    ----------
    budget : Budget
    higher_is_better : bool, default True
        ``True`` for accuracies, ``False`` for losses and error rates.
    clock : callable, default time.perf_counter
        Seconds since an arbitrary origin (tests pass a fake clock).
    """

    def __init__(self, budget: Budget, *, higher_is_better: bool = True,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not isinstance(budget, Budget):
            raise TypeError(f"budget: expected a tasks.fairness.Budget, got {type(budget).__name__}")
        self.budget = budget
        self.higher_is_better = bool(higher_is_better)
        self._clock = clock
        self._start = clock()
        self.epochs = 0
        self.seconds = 0.0
        self.best_epoch = 0
        self.best_score = -math.inf if self.higher_is_better else math.inf
        self.reason: str | None = None

    def improved(self, score: float) -> bool:
        """Whether ``score`` beats the best so far (strictly)."""
        return score > self.best_score if self.higher_is_better else score < self.best_score

    def update(self, score: float) -> bool:
        """Record one finished epoch's validation ``score``; ``True`` to train on.

        Raises
        ------
        ValueError
            If ``score`` is not finite (a diverged run must not look best), or
            when called again after the budget was spent.
        """
        if self.reason is not None:
            raise ValueError(f"update: the budget was already spent ({self.reason}) after {self.epochs} epochs")
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"score: expected a finite validation score, got {score} at epoch {self.epochs + 1}")
        self.epochs += 1
        self.seconds = self._clock() - self._start
        if self.improved(score):
            self.best_score, self.best_epoch = score, self.epochs
        b = self.budget
        if self.epochs >= b.max_epochs:
            self.reason = "max_epochs"
        elif b.patience is not None and self.epochs - self.best_epoch >= b.patience:
            self.reason = "patience"
        elif b.seconds is not None and self.seconds >= b.seconds:
            self.reason = "seconds"
        return self.reason is None

    def used(self) -> dict[str, Any]:
        """What the run used of its budget, as JSON for the record."""
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "best_score": self.best_score,
                "seconds": round(self.seconds, 3), "stopped_by": self.reason}


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the values of ``axes``, in a fixed order.

    >>> grid(hidden=[8, 16], lr=[0.1])
    [{'hidden': 8, 'lr': 0.1}, {'hidden': 16, 'lr': 0.1}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not len(values):
            raise ValueError(f"{name}: expected a non-empty list of values, got {values!r}")
    names = list(axes)
    return [dict(zip(names, point)) for point in itertools.product(*(axes[n] for n in names))]


def check_grids(grids: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """Check that every model family searches a grid of the same size; return that size.

    Raises
    ------
    ValueError
        Naming every family and its grid size when the sizes differ, or when
        a grid is empty.
    """
    if not grids:
        raise ValueError("grids: expected at least one model family")
    sizes = {name: len(points) for name, points in grids.items()}
    if min(sizes.values()) < 1 or len(set(sizes.values())) != 1:
        listed = ", ".join(f"{name}: {n}" for name, n in sizes.items())
        raise ValueError(f"grids: every model must choose from the same number of points; got {listed}")
    return next(iter(sizes.values()))


def choose(results: Sequence[Mapping[str, Any]], score: str = "validation", *,
           higher_is_better: bool = True) -> Mapping[str, Any]:
    """The result with the best validation ``score``; the first one on ties.

    Parameters
    ----------
    results : sequence of mappings
        One per grid point, each holding ``results[i][score]``.
    score : str, default "validation"
        The key of the validation score. Test scores must never be passed
        here.
    higher_is_better : bool, default True
    """
    if not results:
        raise ValueError("results: expected at least one grid point's result")
    if any(k in score.lower() for k in ("test", "held")):
        raise ValueError(f"score: choose on validation data, not on {score!r}")
    best = None
    for r in results:
        v = float(r[score])
        if math.isfinite(v) and (best is None or (v > float(best[score]) if higher_is_better
                                                  else v < float(best[score]))):
            best = r
    if best is None:
        raise ValueError(f"results: no grid point has a finite {score!r}")
    return best


def fairness_record(grids: Mapping[str, Sequence[Mapping[str, Any]]], budget: Budget,
                    chosen: Mapping[str, Mapping[str, Any]],
                    used: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record's ``"fairness"`` entry: grids, the chosen points, the budget, what each used.

    Parameters
    ----------
    grids : mapping family -> list of grid points
        Checked with :func:`check_grids`.
    budget : Budget
        The one budget every run got.
    chosen : mapping family -> the chosen grid point (a dict)
        Every family of ``grids`` must have one, taken from its own grid.
    used : mapping family -> what the chosen run used, optional
        E.g. :meth:`BudgetTracker.used` of each family's chosen run.
    """
    size = check_grids(grids)
    if set(chosen) != set(grids):
        raise ValueError(f"chosen: expected a point for each of {sorted(grids)}, got {sorted(chosen)}")
    for name, point in chosen.items():
        if dict(point) not in [dict(p) for p in grids[name]]:
            raise ValueError(f"chosen[{name!r}]: {dict(point)} is not a point of its grid")
    return {"rule": "each model's grid has the same size and is chosen on validation; "
                    "each run gets the same budget",
            "grid_size": size, "budget": budget.to_record(),
            "grids": {name: [dict(p) for p in points] for name, points in grids.items()},
            "chosen": {name: dict(point) for name, point in chosen.items()},
            "used": {name: dict(u) for name, u in (used or {}).items()}}
