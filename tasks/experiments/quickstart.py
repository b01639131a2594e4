"""Quick start: LSTM versus Elman on the adding problem, trained by full BPTT.

The adding problem (Le et al. 2015 variant): at every step the network sees a
value in [0, 1] and a marker; exactly two steps are marked, and at the end it
must output the sum of the two marked values. Predicting the mean gives an
MSE of 1/6; beating that needs memory across the whole sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rnnbp
from rnnbp import plot
from rnnbp.losses import mse

from ..data.sequences import adding_baseline_mse, adding_problem

SUMMARY = "LSTM vs Elman on the adding problem (T=30): loss curves and ||dL/dh_t|| over time"


def _model(kind: str, hidden: int, seed: int) -> rnnbp.Sequential:
    cell = rnnbp.LSTM(2, hidden, seed=seed) if kind == "LSTM" else rnnbp.Elman(2, hidden, seed=seed)
    return rnnbp.Sequential(cell, rnnbp.Linear(hidden, 1, seed=seed + 1))


def run(quick: bool, seed: int, out: Path) -> dict[str, Any]:
    """Train both models, write ``training.png`` and ``gradient_norms.png``, return metrics."""
    T, n_train, n_test, epochs, hidden = (30, 2000, 500, 30, 24) if not quick else (15, 256, 128, 3, 8)
    train = adding_problem(n_train, T, seed=seed)
    test = adding_problem(n_test, T, seed=seed + 1)
    baseline = adding_baseline_mse()
    histories, metrics = {}, {}
    for i, kind in enumerate(("LSTM", "Elman")):
        model = _model(kind, hidden, seed + 10 * i)
        print(f"{kind}: {model.num_params} parameters, T = {T}, {n_train} training sequences")
        hist = rnnbp.fit(model, (train.xs, train.ys), loss=mse, target="last",
                         optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=epochs, batch_size=32,
                         clip=1.0, validation=(test.xs, test.ys), seed=seed, progress=True)
        histories[kind] = hist
        test_mse = hist.val_loss[-1]
        metrics[kind] = {"test_mse": test_mse, "train_mse": hist.loss[-1],
                         "seconds": float(sum(hist.epoch_time)), "parameters": model.num_params}
        print(f"{kind}: test MSE {test_mse:.4f} (trivial predictor {baseline:.4f})")
    fig = plot.training_curves(histories, baseline=baseline,
                               title=f"Adding problem, T = {T}: MSE per epoch")
    fig.savefig(out / "training.png", dpi=110)
    fig = plot.state_grad_norms({k: h.state_grad_norms["0"] for k, h in histories.items()},
                                title=r"$\|\partial L/\partial h_t\|$ over time step and epoch (loss at the last step)")
    fig.savefig(out / "gradient_norms.png", dpi=110)
    return {"config": {"T": T, "n_train": n_train, "n_test": n_test, "epochs": epochs,
                       "hidden": hidden, "optimizer": "Adam(lr=1e-2)", "clip": 1.0, "batch_size": 32},
            "baseline_mse": baseline, "models": metrics,
            "figures": ["training.png", "gradient_norms.png"]}
