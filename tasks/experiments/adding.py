"""The adding problem at T = 100 and 200: Elman-tanh, IRNN and LSTM against the trivial predictor.

The task (Le, Jaitly & Hinton 2015's form of Hochreiter & Schmidhuber 1997's
experiment 4; ``tasks.data.sequences.adding_problem(variant="le")``): every step
shows a value in U[0, 1] and a marker; exactly one step in each half of the
sequence is marked, and at the last step the network must output the sum of
the two marked values. Always answering the mean (1) scores an MSE of 1/6
(``adding_baseline_mse``); anything well below it needs memory over about
T/2 to T steps.

Training is online: every update sees a fresh batch of sequences (no
sequence is shown twice), so "sequences seen" is the honest cost axis, as in
the papers. Full BPTT, Adam, global-norm clipping; test MSE on a fixed
held-out set is recorded along the way and drawn as learning curves.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import mse

from ..data.sequences import adding_baseline_mse, adding_problem
from ..sweep import Sweep, Trial

SUMMARY = "Elman-tanh vs IRNN vs LSTM on the adding problem at T=100 and 200, against the trivial baseline"

#: What "solved" means here: test MSE below this (the baseline is 1/6).
SOLVED_MSE = 0.01

FULL = {
    "lengths": [100, 200],
    "models": {
        "Elman-tanh": {"cell": "elman", "hidden": 64, "lr": 1e-3},
        "IRNN": {"cell": "irnn", "hidden": 64, "lr": 3e-4},
        "LSTM": {"cell": "lstm", "hidden": 32, "lr": 1e-2},
    },
    "batch_size": 32,
    "sequences": {100: 160_000, 200: 128_000},   # training budget per model (fresh sequences)
    "eval_every": 3_200,
    "n_test": 1_000,
    "clip": 1.0,
    "dtype": "float32",
}

QUICK = {
    "lengths": [20, 40],
    "models": {
        "Elman-tanh": {"cell": "elman", "hidden": 16, "lr": 1e-3},
        "IRNN": {"cell": "irnn", "hidden": 16, "lr": 3e-4},
        "LSTM": {"cell": "lstm", "hidden": 8, "lr": 1e-2},
    },
    "batch_size": 32,
    "sequences": {20: 1_280, 40: 640},
    "eval_every": 320,
    "n_test": 200,
    "clip": 1.0,
    "dtype": "float32",
}


def build_model(cell: str, hidden: int, seed: int, dtype: Any) -> rnnbp.Sequential:
    """A recurrent layer (2 inputs) and a linear read-out to one output."""
    if cell == "lstm":
        rec = rnnbp.LSTM(2, hidden, seed=seed, dtype=dtype)
    elif cell == "elman":
        rec = rnnbp.Elman(2, hidden, "tanh", seed=seed, dtype=dtype)
    elif cell == "irnn":  # Le et al. 2015: ReLU units, identity recurrent weights, zero biases
        rec = rnnbp.Elman(2, hidden, "relu", init_hh="identity", seed=seed, dtype=dtype)
    else:
        raise ValueError(f"cell: expected 'lstm', 'elman' or 'irnn', got {cell!r}")
    return rnnbp.Sequential(rec, rnnbp.Linear(hidden, 1, seed=seed + 1, dtype=dtype))


def train_online(model: rnnbp.Sequential, *, T: int, lr: float, budget: int, batch_size: int,
                 eval_every: int, test: Any, clip: float, seed: int, label: str = "") -> dict[str, Any]:
    """Train on fresh sequences, ``eval_every`` at a time, recording test MSE.

    Returns the curve (``seen``, ``test_mse``), the best and final test MSE,
    the first number of sequences seen with test MSE under ``SOLVED_MSE``
    (None if never) and the seconds spent. A non-finite update is skipped
    (counted in ``skipped``) rather than aborting the run: the IRNN can blow up.
    """
    opt = rnnbp.optim.Adam(model, lr=lr)
    seeds = np.random.SeedSequence(seed)
    seen, curve_seen, curve_mse = 0, [0], []
    test_data = (test.xs, test.ys)
    curve_mse.append(rnnbp.evaluate(model, test_data, mse, target="last")[0])
    skipped, clipped, updates = 0, 0, 0
    start = time.perf_counter()
    n_chunks = -(-budget // eval_every)
    for k, chunk_seed in enumerate(seeds.spawn(n_chunks)):
        n = min(eval_every, budget - seen)
        data = adding_problem(n, T, seed=np.random.default_rng(chunk_seed), dtype=model.dtype)
        hist = rnnbp.fit(model, (data.xs, data.ys), loss=mse, target="last", optimizer=opt,
                         epochs=1, batch_size=batch_size, clip=clip, seed=k,
                         on_nonfinite="skip", progress=False)
        skipped += hist.skipped
        clipped += int(sum(hist.clipped))
        updates += len(hist.clipped) + hist.skipped
        seen += n
        value = rnnbp.evaluate(model, test_data, mse, target="last")[0]
        if not np.isfinite(value):
            value = float("inf")
        curve_seen.append(seen)
        curve_mse.append(value)
        print(f"  {label} T={T}: {seen:>7d} sequences, test MSE {value:.4g} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    solved_at = next((s for s, v in zip(curve_seen, curve_mse) if v < SOLVED_MSE), None)
    return {"seen": curve_seen, "test_mse": curve_mse, "final_test_mse": curve_mse[-1],
            "best_test_mse": float(np.min(curve_mse)), "solved": curve_mse[-1] < SOLVED_MSE,
            "sequences_to_solve": solved_at, "updates": updates, "skipped_updates": skipped,
            "clipped_share": clipped / max(updates - skipped, 1),
            "seconds": round(time.perf_counter() - start, 2)}


def learning_curves_figure(results: dict[int, dict[str, dict[str, Any]]], baseline: float):
    """Test MSE against sequences seen, one panel per T, log y, baseline dashed."""
    from ..figures import Figure

    lengths = sorted(results)
    fig = Figure(figsize=(5.2 * len(lengths), 4.0), layout="constrained")
    axes = fig.subplots(1, len(lengths), squeeze=False)[0]
    for ax, T in zip(axes, lengths):
        for i, (name, r) in enumerate(results[T].items()):
            y = np.asarray(r["test_mse"], dtype=float)
            y = np.where(np.isfinite(y), y, np.nan)
            ax.plot(r["seen"], y, color=f"C{i}", label=name)
        ax.axhline(baseline, color="0.3", ls="--", lw=1, label=f"trivial predictor ({baseline:.3f})")
        ax.axhline(SOLVED_MSE, color="0.6", ls=":", lw=1, label=f"solved ({SOLVED_MSE})")
        ax.set_yscale("log")
        ax.set_ylim(top=min(ax.get_ylim()[1], 2.0))  # untrained nets start far above; keep the plateau readable
        ax.set_xlabel("training sequences seen")
        ax.set_ylabel("test MSE")
        ax.set_title(f"adding problem, T = {T}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def train_trial(name: str, T: int, test_seed: int, model_seed: int, train_seed: int,
                cfg: dict[str, Any]) -> dict[str, Any]:
    """One model at one length (a ``tasks.sweep.Trial``): online training, test MSE curve."""
    dtype = np.dtype(cfg["dtype"])
    m = cfg["models"][name]
    test = adding_problem(cfg["n_test"], T, seed=test_seed, dtype=dtype)
    model = build_model(m["cell"], m["hidden"], model_seed, dtype)
    print(f"{name} (H={m['hidden']}, {model.num_params} parameters), T = {T}, "
          f"budget {cfg['sequences'][T]} sequences", flush=True)
    r = train_online(model, T=T, lr=m["lr"], budget=cfg["sequences"][T], batch_size=cfg["batch_size"],
                     eval_every=cfg["eval_every"], test=test, clip=cfg["clip"], seed=train_seed, label=name)
    r.pop("seconds")                   # a timing, not a result: the sweep keeps it with the run facts
    r["parameters"] = model.num_params
    return r


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (length, model), each with its own seeds."""
    return [Trial(f"T={T}/{name}", train_trial,
                  {"name": name, "T": T, "test_seed": seed + 1000 + j, "model_seed": seed + 10 * i,
                   "train_seed": seed * 1000 + 100 * j + i, "cfg": cfg})
            for j, T in enumerate(cfg["lengths"]) for i, name in enumerate(cfg["models"])]


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Train every model at every length (through ``sweep``), write ``learning_curves.png``, return the metrics."""
    cfg = QUICK if quick else FULL
    baseline = adding_baseline_mse()
    todo = make_trials(cfg, seed)
    done = (sweep or Sweep()).run(todo, desc="length x model trials")
    results: dict[int, dict[str, dict[str, Any]]] = {T: {} for T in cfg["lengths"]}
    for t, r in zip(todo, done):
        name, T = t.kwargs["name"], t.kwargs["T"]
        results[T][name] = r
        print(f"{name} T={T}: final test MSE {r['final_test_mse']:.4g}, best {r['best_test_mse']:.4g}, "
              f"solved at {r['sequences_to_solve']}", flush=True)
    fig = learning_curves_figure(results, baseline)
    fig.savefig(out / "learning_curves.png", dpi=110)
    config = {k: v for k, v in cfg.items() if k != "sequences"}
    config["sequences"] = {str(k): v for k, v in cfg["sequences"].items()}
    config.update(optimizer="Adam", bptt="full", variant="le", solved_mse=SOLVED_MSE,
                  blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    return {"config": config, "baseline_mse": baseline,
            "results": {str(T): r for T, r in results.items()},
            "summary": {str(T): {name: {"final_test_mse": r["final_test_mse"], "solved": r["solved"],
                                        "sequences_to_solve": r["sequences_to_solve"]}
                                 for name, r in rs.items()} for T, rs in results.items()},
            "figures": ["learning_curves.png"]}
