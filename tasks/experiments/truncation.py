r"""Truncated BPTT(k1, k2): how far back the error must reach, and how biased the truncated gradient is.

The task is ``delayed_class`` (``tasks.data.sequences``): one of 4 class symbols
is shown exactly ``lag`` steps before the end of a sequence of distractors,
and the class is scored at the last step, so the dependency lag is known
exactly. A GRU is trained by truncated BPTT(k1, k2) through
``rnnbp.TruncatedBPTT`` (chunks of ``k1`` new steps, the error of a chunk
sent back through the last ``k2`` steps, the state carried across chunks),
for a range of ``k2`` from ``k1`` up to the sequence length ``T`` (where the
truncated gradient *is* the full BPTT gradient).

With ``T`` a multiple of ``k1`` the scored last step ends the last chunk, so
its error reaches exactly ``k2`` steps back: steps ``T - k2 .. T - 1``. The
class symbol (step ``T - 1 - lag``) is inside that window if and only if
``k2 >= lag + 1``. Below that, no gradient ever reaches the input that
carries the class.

Two measurements:

1. **Accuracy versus k2**: test accuracy after training, over several seeds.
2. **Bias versus k2**: on one fixed batch and the same parameters, the
   cosine similarity and the norm ratio between the truncated gradient
   (all chunks of each sequence, no update in between) and the full BPTT
   gradient, for every ``k2``; at initialisation, after one epoch of full
   BPTT, and after full BPTT training.

Chunks that contain no scored output produce a zero gradient; the training
loop skips their optimizer step (Adam would otherwise keep moving on its
momentum alone), so every update is driven by the one scored output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import softmax_cross_entropy

from .. import figures
from ..data.sequences import delayed_class
from ..sweep import Sweep, Trial

SUMMARY = "Truncated BPTT(k1, k2) on a known lag: accuracy and gradient bias (cosine, norm ratio) versus k2"

FULL = {"lag": 12, "T": 25, "k1": 5, "k2": [5, 8, 10, 11, 12, 13, 15, 20, 25], "seeds": 3,
        "hidden": 32, "n_classes": 4, "n_train": 2000, "n_test": 500, "epochs": 10,
        "batch_size": 50, "lr": 1e-2, "clip": 1.0, "n_bias": 200}
QUICK = {"lag": 4, "T": 10, "k1": 2, "k2": [2, 4, 6, 10], "seeds": 1,
         "hidden": 8, "n_classes": 4, "n_train": 200, "n_test": 100, "epochs": 2,
         "batch_size": 50, "lr": 1e-2, "clip": 1.0, "n_bias": 50}


def _loss(outputs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None):
    """Cross-entropy on the scored steps only: label ``-1`` marks an unscored step."""
    scored = labels >= 0
    if mask is not None:
        scored = scored & mask
    return softmax_cross_entropy(outputs, np.where(scored, labels, 0), scored)


def _per_step(labels: np.ndarray, T: int) -> np.ndarray:
    """``(T, N)`` labels: the class at the last step, ``-1`` (unscored) elsewhere."""
    ys = np.full((T, labels.shape[0]), -1, dtype=np.int64)
    ys[-1] = labels
    return ys


def _model(cfg: dict[str, Any], D: int, seed: int) -> rnnbp.Sequential:
    return rnnbp.Sequential(rnnbp.GRU(D, cfg["hidden"], seed=seed),
                            rnnbp.Linear(cfg["hidden"], cfg["n_classes"], seed=seed + 1))


def _accuracy(model: rnnbp.Sequential, data) -> float:
    graph = rnnbp.unroll(model, data.xs)
    return float(np.mean(graph.outputs[-1].argmax(axis=-1) == data.ys))


def _flat_grads(model: rnnbp.Layer) -> np.ndarray:
    return np.concatenate([g.ravel() for g in model.grads.values()])


def truncated_gradient(model: rnnbp.Layer, xs: np.ndarray, ys: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """The BPTT(k1, k2) gradient of one batch of sequences, all chunks summed, no update.

    Parameters
    ----------
    model : Layer
    xs : ndarray, shape (T, B, D)
    ys : ndarray of int, shape (T, B)
        Per-step labels, ``-1`` where unscored.
    k1, k2 : int

    Returns
    -------
    ndarray
        All parameter gradients, flattened in ``model.grads`` order.
    """
    tb = rnnbp.TruncatedBPTT(model, k1, k2)
    total = np.zeros(sum(g.size for g in model.grads.values()))
    for s in range(0, xs.shape[0], k1):
        tb.train_step((xs[s:s + k1], ys[s:s + k1], None), _loss)      # zeroes grads, then this chunk's
        total += _flat_grads(model)
    return total


def full_gradient(model: rnnbp.Layer, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The full BPTT gradient of the same loss, flattened like :func:`truncated_gradient`."""
    model.zero_grad()
    graph = rnnbp.unroll(model, xs)
    _, dys = _loss(graph.outputs, ys)
    graph.backward(dys)
    return _flat_grads(model)


def _train(cfg: dict[str, Any], k2: int, seed: int, train, test,
           snapshots: tuple[int, ...] = ()) -> tuple[list[float], dict[int, dict[str, np.ndarray]]]:
    """Train by BPTT(k1, k2); test accuracy after every epoch; parameters after chosen epochs."""
    T, k1 = cfg["T"], min(cfg["k1"], k2)
    model = _model(cfg, train.xs.shape[2], seed)
    opt = rnnbp.optim.Adam(model, lr=cfg["lr"])
    tb = rnnbp.TruncatedBPTT(model, k1, k2)
    ys = _per_step(train.ys, T)
    rng = np.random.default_rng(seed + 1000)
    saved = {0: {k: p.copy() for k, p in model.params.items()}} if 0 in snapshots else {}
    accs = []
    for epoch in range(1, cfg["epochs"] + 1):
        order = rng.permutation(train.xs.shape[1])
        for b0 in range(0, order.size, cfg["batch_size"]):
            idx = order[b0:b0 + cfg["batch_size"]]
            tb.reset()                                   # each batch is a new set of streams
            for s in range(0, T, k1):
                model.zero_grad()
                tb.train_step((train.xs[s:s + k1, idx], ys[s:s + k1, idx], None), _loss)
                if (ys[s:s + k1, idx] >= 0).any():      # this chunk holds the scored step
                    rnnbp.clip_grad_norm(model, cfg["clip"])
                    opt.step()
        accs.append(_accuracy(model, test))
        if epoch in snapshots:
            saved[epoch] = {k: p.copy() for k, p in model.params.items()}
    return accs, saved


def _data(cfg: dict[str, Any], seed: int):
    """The training and test sets every trial shares (made from ``seed``, so each worker makes its own)."""
    kw = {"n_classes": cfg["n_classes"], "length": cfg["T"]}
    return (delayed_class(cfg["n_train"], cfg["lag"], seed=seed, **kw),
            delayed_class(cfg["n_test"], cfg["lag"], seed=seed + 1, **kw))


def train_trial(cfg: dict[str, Any], k2: int, seed: int, data_seed: int,
                snapshots: tuple[int, ...] = ()) -> dict[str, Any]:
    """One trial of part 1 (a ``tasks.sweep.Trial``): test accuracy per epoch, parameters after ``snapshots`` epochs."""
    train, test = _data(cfg, data_seed)
    accs, saved = _train(cfg, k2, seed, train, test, snapshots=tuple(snapshots))
    return {"accuracy": accs, "snapshots": {str(e): {k: p.tolist() for k, p in ps.items()}
                                            for e, ps in saved.items()}}


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (k2, seed) of part 1; the full-BPTT run of the first seed keeps parameter snapshots for part 2."""
    return [Trial(f"k2={k2}/seed={r}", train_trial,
                  {"cfg": cfg, "k2": k2, "seed": seed + 100 * r, "data_seed": seed,
                   "snapshots": [0, 1, cfg["epochs"]] if (k2 == cfg["T"] and r == 0) else []})
            for k2 in cfg["k2"] for r in range(cfg["seeds"])]


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Train for every k2 and seed (through ``sweep``), measure the gradient bias.

    Writes ``accuracy.png`` and ``gradient_bias.png``.
    """
    cfg = QUICK if quick else FULL
    T, k1, lag = cfg["T"], cfg["k1"], cfg["lag"]
    if T % k1:
        raise ValueError(f"config: T = {T} must be a multiple of k1 = {k1}")
    train, test = _data(cfg, seed)
    chance = 1.0 / cfg["n_classes"]

    # 1. accuracy versus k2
    todo = make_trials(cfg, seed)
    done = dict(zip((t.key for t in todo), (sweep or Sweep()).run(todo, desc="truncation trials")))
    acc = np.empty((len(cfg["k2"]), cfg["seeds"]))
    curves: dict[str, list[list[float]]] = {}
    snapshots: dict[int, dict[str, np.ndarray]] = {}
    for i, k2 in enumerate(cfg["k2"]):
        curves[str(k2)] = []
        for r in range(cfg["seeds"]):
            result = done[f"k2={k2}/seed={r}"]
            acc[i, r] = result["accuracy"][-1]
            curves[str(k2)].append(result["accuracy"])
            snapshots.update({int(e): {k: np.asarray(p) for k, p in ps.items()}
                              for e, ps in result["snapshots"].items()})
        print(f"BPTT({min(k1, k2)}, {k2}): test accuracy {np.round(acc[i], 3).tolist()} "
              f"(lag {lag}, chance {chance:.2f})")
    reach = np.asarray(cfg["k2"]) >= lag + 1
    # 2. bias versus k2, on one batch, for every k2 from k1 to T
    k2_all = list(range(k1, T + 1))
    batch = test.take(np.arange(cfg["n_bias"]))
    bx, by = batch.xs, _per_step(batch.ys, T)
    model = _model(cfg, train.xs.shape[2], seed)
    labels = {0: "initialisation", 1: "after 1 epoch (full BPTT)",
              cfg["epochs"]: f"after {cfg['epochs']} epochs (full BPTT)"}
    cosine, ratio = {}, {}
    for epoch, params in sorted(snapshots.items()):
        for k, p in model.params.items():
            p[...] = params[k]
        g_full = full_gradient(model, bx, by)
        cos, rat = [], []
        for k2 in k2_all:
            g = truncated_gradient(model, bx, by, min(k1, k2), k2)
            cos.append(float(g @ g_full / (np.linalg.norm(g) * np.linalg.norm(g_full))))
            rat.append(float(np.linalg.norm(g) / np.linalg.norm(g_full)))
        cosine[labels[epoch]], ratio[labels[epoch]] = cos, rat
        print(f"bias {labels[epoch]}: cosine at k2 = {k1}, {lag}, {lag + 1}, {T}: "
              f"{cos[0]:.3f}, {cos[lag - k1]:.3f}, {cos[lag + 1 - k1]:.3f}, {cos[-1]:.6f}")

    record = {"config": dict(cfg), "chance": chance,
              "accuracy": {"k2": cfg["k2"], "final_per_seed": acc.tolist(),
                           "mean": acc.mean(axis=1).tolist(), "per_epoch": curves,
                           "mean_k2_reaching_lag": float(acc[reach].mean()) if reach.any() else None,
                           "mean_k2_below_lag": float(acc[~reach].mean()) if (~reach).any() else None,
                           "min_k2_reaching_lag": float(acc[reach].min()) if reach.any() else None,
                           "max_k2_below_lag": float(acc[~reach].max()) if (~reach).any() else None},
              "bias": {"k2": k2_all, "cosine": cosine, "norm_ratio": ratio,
                       "full_equals_truncated_at_T": all(math.isclose(c[-1], 1.0, abs_tol=1e-12)
                                                         for c in cosine.values())},
              "figures": ["accuracy.png", "gradient_bias.png"]}
    draw(record, out)
    return record


def draw(record: dict[str, Any], out: Path) -> None:
    """Write ``accuracy.png`` and ``gradient_bias.png`` from a record (what ``run`` returns).

    Figures can be redrawn from a saved ``results.json`` without training again.
    """
    cfg, acc, bias = record["config"], record["accuracy"], record["bias"]
    T, k1, lag = cfg["T"], cfg["k1"], cfg["lag"]
    marks = {f"k2 = lag + 1 = {lag + 1}": lag + 1}
    fig = figures.sweep_curves(
        acc["k2"], {"test accuracy after training": {
            f"GRU, {cfg['seeds']} seed(s): mean and range": np.asarray(acc["final_per_seed"]),
            f"chance {record['chance']:.2f}": np.full(len(acc["k2"]), record["chance"])}},
        xlabel="k2 (steps the error is sent back)", marks=marks,
        title=f"delayed_class, lag {lag}, T = {T}:\ntruncated BPTT({k1}, k2)")
    fig.savefig(out / "accuracy.png", dpi=100)
    fig = figures.sweep_curves(
        bias["k2"], {"cosine(truncated, full gradient)": bias["cosine"],
                     "norm ratio ||truncated|| / ||full||": bias["norm_ratio"]},
        xlabel="k2", marks=marks, logy=["norm ratio ||truncated|| / ||full||"],
        title=f"Bias of the BPTT({k1}, k2) gradient on one batch of {cfg['n_bias']} (lag {lag}, T = {T})")
    fig.savefig(out / "gradient_bias.png", dpi=100)
