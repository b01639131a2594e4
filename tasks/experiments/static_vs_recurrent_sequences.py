"""Static versus recurrent backprop on sequences: accuracy versus dependency lag.

The task (``tasks.data.sequences.delayed_class``): a sequence of one-hot symbols
in which one step, ``lag`` steps before the end, shows one of four class
symbols and every other step a random distractor; the class must be named
at the last step. The lag grows from 0 past the window of the static model.

- **Time-delay MLP** (static backprop, the TDNN view of sequences): a
  ``Linear-Tanh-Linear`` network over the concatenated last ``w`` inputs,
  ``(N, w*D)`` static data, trained by ``rnnbp.fit`` as one-step data. It
  sees the class only when ``lag < w``; beyond, it is at chance by
  construction.
- **Elman (tanh), LSTM and GRU** trained by full BPTT over the whole
  sequence: they can carry the class for as long as their gradients let
  them learn to.

The fairness rule (``tasks.fairness``): every model family chooses its
hidden size and Adam's learning rate from a grid of the same size (four
points), on *validation* accuracy averaged over every lag and seed (one
choice per family, never on test data); every run gets the same
:class:`~tasks.fairness.Budget` (at most ``max_epochs`` epochs, early stopping
after ``patience`` epochs without a better validation loss, best epoch
restored; every run also stops once validation accuracy reaches
``TARGET_ACCURACY``). The record's ``"fairness"`` entry states the grids, the
choices, the budget and what the chosen runs used of it. Accuracy is measured
on a separate test set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import softmax_cross_entropy

from ..data.sequences import delayed_class
from ..fairness import Budget, check_grids, choose, fairness_record, grid
from ..sweep import Sweep, Trial

SUMMARY = "time-delay MLP (window w) vs Elman/LSTM/GRU by BPTT: accuracy versus dependency lag"

FULL = {
    "lags": [0, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96],
    "window": 8,
    "n_classes": 4,
    "n_distractors": 4,
    "pad": 10,             # T = lag + pad: distractors after the class and before it
    "seeds": 3,            # independent trials (data and initialisation) per model and lag
    "n_train": 2000, "n_val": 500, "n_test": 1000,
    "budget": {"max_epochs": 40, "patience": 8},   # tasks.fairness.Budget: the same for every run
    "batch_size": 32,
    # the fairness rule: grids of the same size (hidden units x Adam's learning rate), one choice
    # per family on validation accuracy averaged over every lag and seed
    "grids": {"MLP": {"hidden": [64, 128], "lr": [3e-3, 1e-2]},
              "Elman": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
              "LSTM": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
              "GRU": {"hidden": [32, 64], "lr": [3e-3, 1e-2]}},
    "gate_bias": 1.0,      # initial LSTM forget-gate bias and GRU update-gate bias ("remember")
    "clip": 1.0,
    "dtype": "float32",
}

QUICK = {**FULL, "lags": [0, 4, 8], "window": 4, "seeds": 1, "n_train": 512, "n_val": 128, "n_test": 256,
         "budget": {"max_epochs": 6, "patience": 3},
         "grids": {"MLP": {"hidden": [16, 32], "lr": [3e-3, 1e-2]},
                   **{m: {"hidden": [8, 16], "lr": [3e-3, 1e-2]} for m in ("Elman", "LSTM", "GRU")}}}

#: Training stops early once validation accuracy reaches this.
TARGET_ACCURACY = 0.999

MODELS = ("MLP", "Elman", "LSTM", "GRU")


def window_inputs(xs: np.ndarray, w: int) -> np.ndarray:
    """The last ``w`` steps of ``(T, N, D)`` sequences as static ``(N, w*D)`` inputs.

    Sequences shorter than ``w`` are zero-padded at the front (oldest first,
    newest last in each row).
    """
    T, N, D = xs.shape
    win = np.zeros((w, N, D), dtype=xs.dtype)
    k = min(w, T)
    win[w - k:] = xs[T - k:]
    return np.ascontiguousarray(win.transpose(1, 0, 2).reshape(N, w * D))


def build_model(name: str, D: int, C: int, H: int, cfg: dict[str, Any], seed: int) -> rnnbp.Sequential:
    """The MLP over a window, or a recurrent cell with a linear read-out; ``H`` hidden units."""
    dt = np.dtype(cfg["dtype"])
    if name == "MLP":
        return rnnbp.Sequential(rnnbp.Linear(cfg["window"] * D, H, seed=seed, dtype=dt), rnnbp.Tanh(),
                                rnnbp.Linear(H, C, seed=seed + 1, dtype=dt))
    cell = {"Elman": lambda: rnnbp.Elman(D, H, "tanh", seed=seed, dtype=dt),
            "LSTM": lambda: rnnbp.LSTM(D, H, seed=seed, dtype=dt, forget_bias=cfg["gate_bias"]),
            "GRU": lambda: rnnbp.GRU(D, H, seed=seed, dtype=dt)}[name]()
    if name == "GRU":
        # GRU has no init option for it: start the update gate z (block 1 of b,
        # gate order r, z, n) leaning towards keeping h, as LSTM's forget bias does.
        cell.params["b"][H:2 * H] = cfg["gate_bias"]
    return rnnbp.Sequential(cell, rnnbp.Linear(H, C, seed=seed + 1, dtype=dt))


def _views(name: str, data: Any, w: int) -> tuple:
    if name == "MLP":
        return window_inputs(data.xs, w), data.ys
    return data.xs, data.ys



def accuracy_figure(lags: list[int], trials: dict[str, list[list[float]]], window: int, chance: float):
    """Test accuracy against lag for every model: mean over seeds, each seed a dot."""
    from ..figures import Figure

    fig = Figure(figsize=(6.6, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.axvspan(window - 0.5, max(lags) + 2, color="0.92", zorder=0,
               label=f"lag beyond the MLP's window (w = {window})")
    markers = {"MLP": "s", "Elman": "o", "LSTM": "^", "GRU": "v"}
    offsets = {"MLP": -0.45, "Elman": -0.15, "LSTM": 0.15, "GRU": 0.45}  # keep the dots apart
    for i, (name, per_lag) in enumerate(trials.items()):
        label = f"time-delay MLP, w = {window} (static backprop)" if name == "MLP" else f"{name} (BPTT)"
        mean = [float(np.mean(a)) for a in per_lag]
        ax.plot(lags, mean, marker=markers.get(name, "o"), color=f"C{i}", label=label,
                ls="--" if name == "MLP" else "-")
        for lag, a in zip(lags, per_lag):
            if len(a) > 1:
                ax.scatter(np.full(len(a), lag + offsets.get(name, 0.0)), a, s=9, color=f"C{i}",
                           alpha=0.45, linewidths=0)
    ax.axhline(chance, color="0.3", ls=":", lw=1, label=f"chance ({chance:.2f})")
    ax.set_xlim(min(lags) - 1, max(lags) + 2)
    ax.set_ylim(0, 1.04)
    ax.set_xlabel("lag: steps between the class symbol and the end")
    ax.set_ylabel("test accuracy (line: mean over seeds; dots: seeds)")
    ax.set_title("Recall a class after a lag, among distractors")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    return fig


def grids(cfg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every family's grid of ``{"hidden", "lr"}`` points (checked to have the same size)."""
    out = {name: grid(**cfg["grids"][name]) for name in MODELS}
    check_grids(out)
    return out


def fit_trial(name: str, lag: int, trial: int, base: int, point: dict[str, Any],
              cfg: dict[str, Any]) -> dict[str, Any]:
    """One model at one grid point, lag and seed (a ``tasks.sweep.Trial``): train within the budget, test.

    ``base`` seeds the data (``base + 1..3``), the model (``base + 10 i``) and
    the batch order (``base + i``), ``i`` the model's index in ``MODELS``;
    every grid point of a model sees the same data, initial seed and order.
    """
    dt = np.dtype(cfg["dtype"])
    C, w = cfg["n_classes"], cfg["window"]
    D = C + cfg["n_distractors"]
    T = lag + cfg["pad"]
    i = MODELS.index(name)
    budget = Budget(**cfg["budget"])
    def make(n, s):
        return delayed_class(n, lag, n_classes=C, n_distractors=cfg["n_distractors"], length=T, seed=s, dtype=dt)

    train, val, test = make(cfg["n_train"], base + 1), make(cfg["n_val"], base + 2), make(cfg["n_test"], base + 3)
    def stop(epoch, hist):
        return bool(hist.val_metric) and hist.val_metric[-1] >= TARGET_ACCURACY

    model = build_model(name, D, C, point["hidden"], cfg, seed=base + 10 * i)
    hist = rnnbp.fit(model, _views(name, train, w), loss=softmax_cross_entropy,
                     optimizer=rnnbp.optim.Adam(model, lr=point["lr"]), **budget.fit_kwargs(),
                     batch_size=cfg["batch_size"], clip=cfg["clip"],
                     target="last", metric=rnnbp.accuracy, validation=_views(name, val, w),
                     callbacks=[stop], seed=base + i, progress=False)
    # what stopped it: the accuracy target, the patience of the budget, or its last epoch
    if hist.val_metric[-1] >= TARGET_ACCURACY:
        stopped_by = "target"
    elif hist.epochs >= budget.max_epochs:
        stopped_by = "max_epochs"
    else:
        stopped_by = "patience"
    val_loss, val_acc = rnnbp.evaluate(model, _views(name, val, w), softmax_cross_entropy,
                                       metric=rnnbp.accuracy, target="last")
    test_loss, test_acc = rnnbp.evaluate(model, _views(name, test, w), softmax_cross_entropy,
                                         metric=rnnbp.accuracy, target="last")
    return {"lag": lag, "T": T, "trial": trial, **point, "val_accuracy": val_acc, "val_loss": val_loss,
            "test_accuracy": test_acc, "test_loss": test_loss,
            "epochs": hist.epochs, "best_epoch": hist.best_epoch, "stopped_by": stopped_by,   # 1-based
            "parameters": model.num_params}


def _point_key(point: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (lag, seed, model, grid point), each with its own seeds."""
    g = grids(cfg)
    return [Trial(f"lag={lag}/seed={k}/{name}/{_point_key(point)}", fit_trial,
                  {"name": name, "lag": lag, "trial": k, "base": seed * 1_000_000 + 1000 * j + 100 * k,
                   "point": point, "cfg": cfg})
            for j, lag in enumerate(cfg["lags"]) for k in range(cfg["seeds"]) for name in MODELS
            for point in g[name]]


def _used(runs: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    """What the chosen point's runs (every lag and seed) used of the budget."""
    epochs = [r["epochs"] for r in runs]
    return {"runs": len(runs), "max_epochs": budget.max_epochs, "epochs_mean": float(np.mean(epochs)),
            "epochs_max": int(max(epochs)), "best_epoch_mean": float(np.mean([r["best_epoch"] for r in runs])),
            "stopped_by": {why: sum(r["stopped_by"] == why for r in runs)
                           for why in ("target", "patience", "max_epochs")}}


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Train every model at every grid point, lag and seed (through ``sweep``), choose each family's
    point on validation, write ``accuracy_vs_lag.png``, return the metrics of the chosen points."""
    cfg = QUICK if quick else FULL
    C, w = cfg["n_classes"], cfg["window"]
    budget = Budget(**cfg["budget"])
    g = grids(cfg)
    todo = make_trials(cfg, seed)
    done = dict(zip((t.key for t in todo), (sweep or Sweep()).run(todo, desc="lag x seed x model x grid trials")))
    cells = [(lag, k) for lag in cfg["lags"] for k in range(cfg["seeds"])]
    # the fairness rule: one point per family, the best validation accuracy averaged over every lag and seed
    search: dict[str, list[dict[str, Any]]] = {}
    chosen: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        search[name] = [{"point": point, "validation": float(np.mean(
            [done[f"lag={lag}/seed={k}/{name}/{_point_key(point)}"]["val_accuracy"] for lag, k in cells]))}
            for point in g[name]]
        chosen[name] = choose(search[name], "validation")["point"]
        print(f"{name}: mean validation accuracy " + ", ".join(
            f"{_point_key(s['point'])} {s['validation']:.4f}" for s in search[name])
            + f"; chosen {_point_key(chosen[name])}", flush=True)
    trials: dict[str, list[list[float]]] = {m: [] for m in MODELS}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODELS}
    for lag in cfg["lags"]:
        for name in MODELS:
            trials[name].append([])
        for k in range(cfg["seeds"]):
            line = []
            for name in MODELS:
                r = done[f"lag={lag}/seed={k}/{name}/{_point_key(chosen[name])}"]
                trials[name][-1].append(r["test_accuracy"])
                runs[name].append(r)
                line.append(f"{name} {r['test_accuracy']:.3f} ({r['epochs']} ep)")
            print(f"lag {lag:>3d} (T = {lag + cfg['pad']:>3d}) seed {k}: " + ", ".join(line), flush=True)
    chance = 1.0 / C
    fig = accuracy_figure(cfg["lags"], trials, w, chance)
    fig.savefig(out / "accuracy_vs_lag.png", dpi=110)
    mean = {name: [float(np.mean(a)) for a in per_lag] for name, per_lag in trials.items()}
    beyond = [k for k, lag in enumerate(cfg["lags"]) if lag >= w]
    margin = {name: [mean[name][k] - mean["MLP"][k] for k in beyond] for name in MODELS if name != "MLP"}
    solved = {name: [int(sum(a >= 0.95 for a in per_lag)) for per_lag in trials[name]] for name in MODELS}
    fairness = fairness_record(g, budget, chosen, {name: _used(runs[name], budget) for name in MODELS})
    fairness["choice"] = "mean validation accuracy over every lag and seed, one point per family"
    fairness["also_stops_at_validation_accuracy"] = TARGET_ACCURACY
    fairness["search"] = search
    config = dict(cfg, task="delayed_class", optimizer="Adam", bptt="full", target_accuracy=TARGET_ACCURACY,
                  loss="softmax_cross_entropy", blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    return {"config": config, "chance": chance, "window": w, "lags": cfg["lags"],
            "fairness": fairness,
            "mean_test_accuracy": mean, "test_accuracy_per_seed": trials,
            "seeds_at_95_percent": solved, "runs": runs,
            "beyond_window": {"lags": [cfg["lags"][k] for k in beyond],
                              "mlp_mean_accuracy": [mean["MLP"][k] for k in beyond],
                              "margin_over_mlp": margin,
                              "min_margin_over_mlp": {n: (min(m) if m else None) for n, m in margin.items()}},
            "figures": ["accuracy_vs_lag.png"]}
