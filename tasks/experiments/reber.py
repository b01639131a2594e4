"""LSTM versus Elman on the embedded Reber grammar, over many seeds, beside Hochreiter & Schmidhuber 1997.

The task (``tasks.data.sequences.reber_sequences``; Cleeremans, Servan-Schreiber &
McClelland 1989; Hochreiter & Schmidhuber 1997, experiment 1): strings
``B (T|P) <Reber string> (T|P) E`` whose two outer symbols match; at every
step the network predicts the next symbol. Predicting the second-to-last
symbol needs the second symbol, held over the whole inner string.

Protocol, following the paper's: a fixed training set of 256 random strings
and a test set of 256 random strings none of which occurs in the training
set; training exemplars are drawn at random from the training set; the state
starts at zero for every string. A trial is *solved* when every step of
every string in both the test and the training set is predicted correctly
(``tasks.data.sequences.reber_correct``: the legal next symbols are exactly the
most active outputs). We count the training sequences seen until then, up to
a cap. Modern training differs from 1997's: a softmax output with
cross-entropy, Adam, small minibatches, full BPTT, clipping.

After a solved trial the model is also checked on 2,000 fresh strings (not
part of the criterion): how well the solution generalises.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import softmax_cross_entropy

from ..data.sequences import ReberData, reber_correct, reber_sequences
from ..sweep import Sweep, Trial

SUMMARY = "LSTM vs Elman on the embedded Reber grammar over 10 seeds: share solved and sequences needed"

#: Hochreiter & Schmidhuber 1997, Table 1 (experiment 1, embedded Reber grammar):
#: success rate and the number of training sequences until success. Rows
#: other than LSTM are results the paper took from Smith & Zipser 1989 (RTRL),
#: Cleeremans et al. 1989 (Elman net trained by Elman's procedure) and
#: Fahlman 1991 (recurrent cascade-correlation). LSTM rows: 30 trials each.
PUBLISHED = {
    "source": "Hochreiter & Schmidhuber 1997, Long Short-Term Memory, Neural Computation 9(8), Table 1",
    "criterion": "all string symbols of all sequences in the test set and the training set predicted correctly "
                 "(the most active outputs are exactly the possible next symbols); 256 training and 256 test strings",
    "rows": [
        {"method": "RTRL", "hidden": "3 units", "weights": "~170",
         "lr": 0.05, "success": "some fraction", "sequences": 173_000},
        {"method": "RTRL", "hidden": "12 units", "weights": "~494",
         "lr": 0.1, "success": "some fraction", "sequences": 25_000},
        {"method": "ELM (Elman net)", "hidden": "15 units", "weights": "~435",
         "lr": None, "success_percent": 0, "sequences": ">200,000"},
        {"method": "RCC", "hidden": "7-9 units", "weights": "~119-198",
         "lr": None, "success_percent": 50, "sequences": 182_000},
        {"method": "LSTM", "hidden": "4 blocks of 1", "weights": 264,
         "lr": 0.1, "success_percent": 100, "sequences": 39_740},
        {"method": "LSTM", "hidden": "3 blocks of 2", "weights": 276,
         "lr": 0.1, "success_percent": 100, "sequences": 21_730},
        {"method": "LSTM", "hidden": "3 blocks of 2", "weights": 276,
         "lr": 0.2, "success_percent": 97, "sequences": 14_060},
        {"method": "LSTM", "hidden": "4 blocks of 1", "weights": 264,
         "lr": 0.5, "success_percent": 97, "sequences": 9_500},
        {"method": "LSTM", "hidden": "3 blocks of 2", "weights": 276,
         "lr": 0.5, "success_percent": 100, "sequences": 8_440},
    ],
    "lstm_best": {"success_percent": 100, "trials": 30, "mean_sequences": 8_440},
    "elman": {"success_percent": 0, "within_sequences": 200_000},
}

FULL = {
    "trials": 10,
    "models": {
        # today's defaults: Adam, Glorot input / orthogonal recurrent weights, forget bias 1
        "LSTM": {"cell": "lstm", "hidden": 16, "optimizer": "adam", "lr": 1e-2},
        "Elman": {"cell": "elman", "hidden": 32, "optimizer": "adam", "lr": 1e-2},
        # closer to 1997: plain SGD, every weight U(-0.1, 0.1), zero biases, sizes near the paper's
        "LSTM-SGD": {"cell": "lstm", "hidden": 8, "optimizer": "sgd", "lr": 1.0, "init_scale": 0.1},
        "Elman-SGD": {"cell": "elman", "hidden": 15, "optimizer": "sgd", "lr": 0.5, "init_scale": 0.1},
    },
    "n_train": 256, "n_test": 256, "n_fresh": 2000,
    "batch_size": 8,
    "check_every": 256,          # sequences between checks of the criterion (one pass over the training set)
    "cap": 51_200,               # sequences before a trial counts as failed
    "clip": 1.0,
    "dtype": "float32",
}

QUICK = {**FULL, "trials": 2, "models": {name: {**m, "hidden": 8} for name, m in FULL["models"].items()},
         "n_train": 64, "n_test": 64, "n_fresh": 128, "check_every": 64, "cap": 512}


def build_model(cell: str, hidden: int, seed: int, dtype: Any, init_scale: float | None = None) -> rnnbp.Sequential:
    """A recurrent layer over the 7 one-hot symbols and a linear read-out to 7 scores.

    ``init_scale``: replace every weight by ``U(-s, s)`` and every bias by
    zero, the small random start of the 1990s papers, instead of the
    library's Glorot / orthogonal initialisation.
    """
    rec = rnnbp.LSTM(7, hidden, seed=seed, dtype=dtype) if cell == "lstm" else \
        rnnbp.Elman(7, hidden, "tanh", seed=seed, dtype=dtype)
    model = rnnbp.Sequential(rec, rnnbp.Linear(hidden, 7, seed=seed + 1, dtype=dtype))
    if init_scale is not None:
        rng = np.random.default_rng([seed, 1990])
        for name, p in model.params.items():
            p[...] = 0.0 if p.ndim == 1 else rng.uniform(-init_scale, init_scale, size=p.shape)
    return model


def make_sets(n_train: int, n_test: int, seed: int, dtype: Any) -> tuple[ReberData, ReberData]:
    """A training set, and a test set whose strings never occur in the training set."""
    rng = np.random.default_rng(seed)
    train = reber_sequences(n_train, seed=rng, dtype=dtype)
    seen = set(train.strings)
    pool = reber_sequences(16 * n_test, seed=rng, dtype=dtype)
    keep = np.flatnonzero([s not in seen for s in pool.strings])[:n_test]
    if len(keep) < n_test:
        raise RuntimeError(f"only {len(keep)} of {16 * n_test} sampled strings are new; need {n_test}")
    test = pool.take(keep)
    longest = int(test.lengths.max())  # drop the pool's padding beyond the longest kept string
    return train, replace(test, xs=test.xs[:longest], ys=test.ys[:longest], mask=test.mask[:longest],
                          legal=test.legal[:longest])


def score(model: rnnbp.Layer, data: ReberData) -> tuple[float, float]:
    """Share of strings and of steps predicted correctly."""
    outputs = rnnbp.predict(model, data.xs, data.valid)
    steps, strings = reber_correct(outputs, data)
    return float(strings.mean()), float(steps.sum() / data.valid.sum())


def run_trial(spec: dict[str, Any], cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """One trial: train until the criterion holds on test and training set, or the cap.

    A module-level function of its arguments alone (its own ``seed``), so
    trials can run in any order, in any process (``tasks.sweep``).
    """
    dt = np.dtype(cfg["dtype"])
    train, test = make_sets(cfg["n_train"], cfg["n_test"], seed, dt)
    model = build_model(spec["cell"], spec["hidden"], seed + 7, dt, spec.get("init_scale"))
    opt = (rnnbp.optim.SGD(model, lr=spec["lr"]) if spec.get("optimizer") == "sgd"
           else rnnbp.optim.Adam(model, lr=spec["lr"]))
    data = (train.xs, train.ys, train.valid)
    seen, solved_at, curve = 0, None, []
    rng = np.random.default_rng(seed + 11)
    while seen < cfg["cap"]:
        # draw the next exemplars at random from the training set
        idx = rng.integers(0, cfg["n_train"], size=cfg["check_every"])
        chunk = (data[0][:, idx], data[1][:, idx], data[2][:, idx])
        rnnbp.fit(model, chunk, loss=softmax_cross_entropy, optimizer=opt, epochs=1,
                  batch_size=cfg["batch_size"], clip=cfg["clip"], shuffle=False, seed=seed, progress=False)
        seen += cfg["check_every"]
        test_strings, test_steps = score(model, test)
        train_strings, _ = score(model, train)
        curve.append((seen, test_strings, test_steps))
        if test_strings == 1.0 and train_strings == 1.0:
            solved_at = seen
            break
    fresh = _fresh(cfg["n_fresh"], seed, dt)
    fresh_strings, fresh_steps = score(model, fresh)
    return {"solved": solved_at is not None, "sequences": solved_at if solved_at is not None else seen,
            "test_strings_correct": curve[-1][1], "test_steps_correct": curve[-1][2],
            "fresh_strings_correct": fresh_strings, "fresh_steps_correct": fresh_steps,
            "curve": {"seen": [c[0] for c in curve], "test_strings_correct": [c[1] for c in curve],
                      "test_steps_correct": [c[2] for c in curve]},
            "parameters": model.num_params}


def _fresh(n: int, seed: int, dtype: Any) -> ReberData:
    return reber_sequences(n, seed=np.random.default_rng([seed, 99]), dtype=dtype)


def figure(results: dict[str, list[dict[str, Any]]], cfg: dict[str, Any]):
    """Left: sequences until solved per trial, beside the 1997 numbers. Right: test curves."""
    from ..figures import Figure

    fig = Figure(figsize=(13.0, 5.0), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.1, 1])
    cap = cfg["cap"]
    names = list(results)
    for i, name in enumerate(names):
        trials = results[name]
        ys = [t["sequences"] for t in trials]
        solved = [t["solved"] for t in trials]
        x = i + np.linspace(-0.25, 0.25, len(trials))
        ok = np.array(solved)
        ax.scatter(x[ok], np.array(ys)[ok], color=f"C{i}", marker="o", zorder=3,
                   label=f"{name}: {ok.sum()}/{len(trials)} solved")
        ax.scatter(x[~ok], np.full((~ok).sum(), cap), color=f"C{i}", marker="x", zorder=3)
        if any(solved):
            m = float(np.mean(np.array(ys)[np.array(solved)]))
            ax.hlines(m, i - 0.35, i + 0.35, color=f"C{i}", lw=2)
            ax.annotate(f"mean {m:,.0f}", (i + 0.37, m), fontsize="small", va="center")
    j = len(names)
    ax.scatter([j], [PUBLISHED["lstm_best"]["mean_sequences"]], color="k", marker="D", zorder=3,
               label="H&S 1997 LSTM, best setting: 30/30, mean 8,440")
    ax.scatter([j + 1], [PUBLISHED["elman"]["within_sequences"]], color="k", marker="^", zorder=3,
               label="H&S 1997 Elman (ELM): 0%, > 200,000")
    ax.axhline(cap, color="0.5", ls="--", lw=1, label=f"our cap ({cap:,}); x = not solved")
    ax.set_xticks(list(range(j + 2)), [f"{n}\n(ours)" for n in names] + ["LSTM\n(1997)", "Elman\n(1997)"],
                  fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("training sequences until solved")
    ax.set_title("Embedded Reber grammar: trials solved and cost")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left")
    for i, name in enumerate(names):
        for k, t in enumerate(results[name]):
            ax2.plot(t["curve"]["seen"], t["curve"]["test_strings_correct"], color=f"C{i}", alpha=0.6, lw=1,
                     label=name if k == 0 else None)
    ax2.set_xscale("log")
    ax2.set_xlabel("training sequences seen")
    ax2.set_ylabel("test strings entirely correct")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("Test strings predicted entirely correctly, every trial")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize="small")
    return fig


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (model, trial) of the sweep, each with its own seed."""
    return [Trial(f"{name}/trial={k}", run_trial, {"spec": m, "cfg": cfg, "seed": seed * 10_000 + 100 * k})
            for name, m in cfg["models"].items() for k in range(cfg["trials"])]


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Run every trial of every model (through ``sweep``), write ``reber.png``, return the metrics."""
    cfg = QUICK if quick else FULL
    todo = make_trials(cfg, seed)
    done = (sweep or Sweep()).run(todo, desc="reber trials")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in cfg["models"]}
    for t, r in zip(todo, done):
        name, k = t.key.split("/")[0], len(results[t.key.split("/")[0]])
        results[name].append(r)
        status = f"solved after {r['sequences']:,} sequences" if r["solved"] else \
            f"not solved within {r['sequences']:,} (test strings correct {r['test_strings_correct']:.2f})"
        print(f"{name} trial {k + 1}/{cfg['trials']}: {status}; fresh strings correct "
              f"{r['fresh_strings_correct']:.3f}", flush=True)
    fig = figure(results, cfg)
    fig.savefig(out / "reber.png", dpi=110)
    summary = {}
    for name, trials in results.items():
        solved = [t["sequences"] for t in trials if t["solved"]]
        summary[name] = {"trials": len(trials), "solved": len(solved),
                         "solved_share": len(solved) / len(trials),
                         "mean_sequences_when_solved": float(np.mean(solved)) if solved else None,
                         "median_sequences_when_solved": float(np.median(solved)) if solved else None,
                         "min_sequences": min(solved) if solved else None,
                         "max_sequences": max(solved) if solved else None,
                         "parameters": trials[0]["parameters"],
                         "mean_fresh_strings_correct": float(np.mean([t["fresh_strings_correct"] for t in trials]))}
    config = dict(cfg, optimizer="Adam", loss="softmax_cross_entropy", bptt="full",
                  criterion="reber_correct (top-k = legal set) on every step of every test and training string",
                  blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    return {"config": config, "summary": summary, "trials": results, "published": PUBLISHED,
            "figures": ["reber.png"]}
