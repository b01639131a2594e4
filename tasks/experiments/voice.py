"""Who is speaking? Static and recurrent nets on recorded speech (UCI Japanese Vowels).

Nine male speakers say /ae/; each utterance is 7 to 29 frames of 12 LPC
cepstrum coefficients (``tasks.data.vowels``, shipped with the repository);
the task is to name the speaker, on the standard split of 270 training and
370 test utterances. A validation split of ``val_per_speaker`` utterances of
each speaker is carved from the training set with a fixed seed; the test set
chooses nothing.

The models and what each sees:

- **MLP-stats** -- a one-hidden-layer MLP on the mean and standard deviation
  of each coefficient over the utterance's frames (24 numbers): the average
  spectrum and how much it moves, with the order of the frames thrown away;
- **TDNN** -- a time-delay MLP: the same hidden layer applied to every
  window of ``tdnn_width`` consecutive frames, its class scores averaged over
  the windows inside the utterance: local order within a window, none beyond;
- **Elman, LSTM, GRU** -- a recurrent layer reading the frames one by one,
  with the mask holding the state after the utterance ends;
- **BiLSTM** -- an LSTM forward and one backward over each valid prefix.

Read-out. Elman, LSTM and GRU are trained and scored on their output at
each utterance's **last valid frame** (``target="last"``; the mask holds the
state over the padding, so that output has read the whole utterance). A
BiLSTM's output at the last frame joins the forward LSTM's final state with
the backward LSTM's *first* step, which has read one frame, so the BiLSTM --
like the TDNN, which has no state at all -- **averages its per-step class
scores over the valid steps** (``pooled_cross_entropy``), where every output
has read the whole utterance through one direction or the other. The
config's ``readout`` sets this per family; in development runs the pooled
read-out was worse on *validation* for the LSTM (2 seeds: validation
cross-entropy 0.20-0.25 against 0.08 with the last frame).

Augmentation. Every family's training frames get fresh Gaussian noise every
epoch (``frame_noise`` standard deviations of each coefficient) *before* its
view is made -- the MLP sees the statistics of noisy frames, the TDNN noisy
windows -- so every model trains on the same perturbed data. It lowered the
validation loss of the MLP, the TDNN and the LSTM alike in development runs.

Fairness (``tasks.fairness``): every family chooses its hidden size and
learning rate from a grid of the same size, by the mean validation
cross-entropy over the seeds (validation accuracy on 54 utterances ties too
often to rank grid points); every run gets the same ``Budget`` (epochs with
early stopping on validation loss, the best epoch's weights kept). The record
also holds two trivial baselines: the majority class and a classifier on the
utterance length alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import softmax_cross_entropy

from ..data.vowels import (COEFFICIENTS, SPEAKERS, Utterances, frame_windows, load_japanese_vowels,
                           stratified_split, utterance_statistics)
from ..fairness import Budget, BudgetTracker, choose, fairness_record, grid
from ..sweep import Sweep, Trial

SUMMARY = ("Japanese Vowels speaker ID: MLP on mean/std and a time-delay MLP vs Elman, LSTM, GRU, "
           "BiLSTM on masked frames, 5 seeds, equal grids and budgets")

FAMILIES = ("MLP-stats", "TDNN", "Elman", "LSTM", "GRU", "BiLSTM")
STATIC = ("MLP-stats", "TDNN")
RECURRENT = ("Elman", "LSTM", "GRU", "BiLSTM")

#: Published results on the same split, for the page (test accuracy).
ANCHORS = {"Kudo et al. 1999 (passing-through regions)": 0.941,
           "ensemble of 11 LSTMs (Keras, resampled inputs)": 0.9886}

FULL: dict[str, Any] = {
    "val_per_speaker": 6,             # 54 validation, 216 training utterances
    "split_seed": 1999,
    "seeds": 5,
    "grids": {                        # 2 sizes x 2 learning rates = 4 points for every family
        "MLP-stats": {"hidden": [64, 128], "lr": [3e-3, 1e-2]},
        "TDNN": {"hidden": [64, 128], "lr": [3e-3, 1e-2]},
        "Elman": {"hidden": [32, 64], "lr": [1e-3, 3e-3]},
        "LSTM": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
        "GRU": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
        "BiLSTM": {"hidden": [16, 32], "lr": [3e-3, 1e-2]},
    },
    "budget": {"max_epochs": 150, "patience": 20},
    "batch_size": 16,
    "clip": 5.0,
    "tdnn_width": 5,
    "readout": {"Elman": "last", "LSTM": "last", "GRU": "last", "BiLSTM": "mean"},
    "dropout": 0.0,                   # before the output layer, every family alike
    "weight_decay": 0.0,              # Adam's L2 term, every family alike
    "frame_noise": 0.5,               # training-frame noise, in standard deviations, every family alike
    "dtype": "float32",
}

QUICK: dict[str, Any] = {
    **FULL, "seeds": 2,
    "grids": {f: {"hidden": [16], "lr": [1e-2]} for f in FAMILIES},
    "budget": {"max_epochs": 3, "patience": 2},
}


# -- the pooled read-out -------------------------------------------------------------
def _pool_weights(mask: np.ndarray | None, T: int, B: int, dtype: np.dtype) -> np.ndarray:
    """(T, B) weights 1 / length on the valid steps, 0 elsewhere."""
    valid = np.ones((T, B), dtype=bool) if mask is None else mask
    n = valid.sum(axis=0)
    if np.any(n == 0):
        raise ValueError(f"mask: sequence {int(np.argmin(n))} has no valid step")
    return (valid / n).astype(dtype)


def pool(outputs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Mean of ``outputs`` ``(T, B, C)`` over each sequence's valid steps: ``(B, C)``."""
    T, B = outputs.shape[:2]
    return np.einsum("tbc,tb->bc", outputs, _pool_weights(mask, T, B, outputs.dtype))


def pooled_cross_entropy(outputs: np.ndarray, labels: np.ndarray,
                         mask: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy of the class scores averaged over the valid steps.

    A loss for ``rnnbp.fit(..., target="sequence")``: ``z_b = sum_t w_tb y_tb``
    with ``w_tb = mask_tb / length_b``, ``L = CE(z, labels)``, so
    ``dL/dy_tb = w_tb dL/dz_b`` (zero on padding).

    Parameters
    ----------
    outputs : ndarray, shape (T, B, C)
    labels : ndarray of int, shape (B,)
    mask : ndarray of bool, shape (T, B), optional

    Returns
    -------
    loss : float
    doutputs : ndarray, shape (T, B, C)
    """
    T, B = outputs.shape[:2]
    w = _pool_weights(mask, T, B, outputs.dtype)
    value, dz = softmax_cross_entropy(np.einsum("tbc,tb->bc", outputs, w), labels)
    return value, dz[None] * w[..., None]


def pooled_accuracy(outputs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Accuracy of the pooled class scores (the metric that goes with :func:`pooled_cross_entropy`)."""
    return rnnbp.accuracy(pool(outputs, mask), labels)


# -- data views ------------------------------------------------------------------------
def _split(cfg: dict[str, Any], dtype: np.dtype) -> tuple[Utterances, Utterances, Utterances]:
    """(training part, validation part, test), frames standardised by the training part."""
    data = load_japanese_vowels(dtype)
    tr, va = stratified_split(data.train.speakers, cfg["val_per_speaker"], cfg["split_seed"])
    train, val, test = data.train.take(tr), data.train.take(va), data.test
    frames = train.xs[train.mask]
    mu, sd = frames.mean(axis=0), frames.std(axis=0)

    def norm(u: Utterances) -> Utterances:
        xs = np.where(u.mask[..., None], (u.xs - mu) / sd, 0).astype(dtype)
        return Utterances(xs, u.mask, u.lengths, u.speakers)

    return norm(train), norm(val), norm(test)


class _Views:
    """What ``family`` reads of utterances, with the feature scaling fixed by the clean training part."""

    def __init__(self, family: str, train: Utterances, cfg: dict[str, Any]) -> None:
        self.family, self.width = family, cfg["tdnn_width"]
        if family == "MLP-stats":
            stats = utterance_statistics(train.xs, train.mask)
            self.mu, self.sd = stats.mean(axis=0), stats.std(axis=0)

    def __call__(self, u: Utterances) -> tuple:
        """``(xs, speakers)`` for the MLP, ``(xs, speakers, mask)`` for the sequence models."""
        if self.family == "MLP-stats":
            stats = (utterance_statistics(u.xs, u.mask) - self.mu) / self.sd
            return stats.astype(u.xs.dtype), u.speakers
        if self.family == "TDNN":
            windows, valid = frame_windows(u.xs, u.mask, self.width)
            return windows, u.speakers, valid
        return u.xs, u.speakers, u.mask


def with_frame_noise(u: Utterances, sd: float, rng: np.random.Generator) -> Utterances:
    """``u`` with Gaussian noise of standard deviation ``sd`` added to its valid frames (padding stays 0)."""
    if not sd:
        return u
    noise = rng.standard_normal(u.xs.shape).astype(u.xs.dtype) * np.asarray(sd, dtype=u.xs.dtype)
    return Utterances(u.xs + noise * u.mask[..., None], u.mask, u.lengths, u.speakers)


def build_model(family: str, hidden: int, cfg: dict[str, Any], seed: int) -> rnnbp.Sequential:
    """The network of ``family`` with ``hidden`` units, weights from ``seed``."""
    dt, D, C = np.dtype(cfg["dtype"]), COEFFICIENTS, SPEAKERS
    drop = [rnnbp.Dropout(cfg["dropout"])] if cfg["dropout"] else []
    if family in STATIC:
        n_in = 2 * D if family == "MLP-stats" else cfg["tdnn_width"] * D
        return rnnbp.Sequential(rnnbp.Linear(n_in, hidden, seed=seed, dtype=dt), rnnbp.ReLU(), *drop,
                                rnnbp.Linear(hidden, C, seed=seed + 1, dtype=dt))
    if family == "BiLSTM":
        cell = rnnbp.Bidirectional(rnnbp.LSTM(D, hidden, seed=seed, dtype=dt), seed=seed + 2)
        return rnnbp.Sequential(cell, *drop, rnnbp.Linear(2 * hidden, C, seed=seed + 1, dtype=dt))
    cell = {"Elman": rnnbp.Elman, "LSTM": rnnbp.LSTM, "GRU": rnnbp.GRU}[family](D, hidden, seed=seed, dtype=dt)
    return rnnbp.Sequential(cell, *drop, rnnbp.Linear(hidden, C, seed=seed + 1, dtype=dt))


def _scores(model: rnnbp.Layer, view: tuple, readout: str) -> tuple[np.ndarray, float]:
    """(class scores (N, C), cross-entropy) of ``model`` on one view, in evaluation mode."""
    if len(view) == 2:
        z = rnnbp.predict(model, view[0])
    elif readout == "last":
        z = rnnbp.predict(model, view[0], view[2], target="last")
    else:
        z = pool(rnnbp.predict(model, view[0], view[2]), view[2])
    return z, softmax_cross_entropy(z, view[1])[0]


# -- one trial -------------------------------------------------------------------------------
def train_trial(family: str, point: dict[str, Any], cfg: dict[str, Any], seed: int,
                record_norms: bool = False) -> dict[str, Any]:
    """Train one ``family`` at one grid ``point`` from one ``seed``; score it on validation and test.

    Every epoch draws fresh Gaussian noise (``cfg["frame_noise"]``, in units
    of each coefficient's standard deviation) into the training frames before
    the family's view is made, so every family gets the same augmentation.
    Early stopping follows ``cfg["budget"]`` through a ``BudgetTracker`` on the
    validation cross-entropy; the best epoch's weights are restored.
    """
    dt = np.dtype(cfg["dtype"])
    train, val, test = _split(cfg, dt)
    view = _Views(family, train, cfg)
    model = build_model(family, int(point["hidden"]), cfg, seed)
    static = family == "MLP-stats"
    readout = cfg["readout"].get(family, "mean")
    if static or readout == "last":
        loss, metric, target = softmax_cross_entropy, rnnbp.accuracy, "last"
    else:
        loss, metric, target = pooled_cross_entropy, pooled_accuracy, "sequence"
    optimizer = rnnbp.optim.Adam(model, lr=float(point["lr"]), weight_decay=cfg["weight_decay"])
    tracker = BudgetTracker(Budget(**cfg["budget"]), higher_is_better=False)
    noise_rng = np.random.default_rng([seed, 1])
    val_view = view(val)
    best: dict[str, np.ndarray] = {}
    norms: dict[str, list[np.ndarray]] = {}
    going = True
    while going:          # one fit call per epoch, each on freshly noised frames
        hist = rnnbp.fit(model, view(with_frame_noise(train, cfg["frame_noise"], noise_rng)), loss=loss,
                         optimizer=optimizer, epochs=1, batch_size=cfg["batch_size"], clip=cfg["clip"],
                         target=target, metric=metric, seed=seed + tracker.epochs, progress=False)
        for k, v in hist.state_grad_norms.items():
            norms.setdefault(k, []).append(v[0])
        going = tracker.update(_scores(model, val_view, readout)[1])
        if tracker.best_epoch == tracker.epochs:
            best = {k: p.copy() for k, p in model.params.items()}
    for k, p in model.params.items():
        p[...] = best[k]
    result: dict[str, Any] = {"family": family, "point": point, "seed": seed, "parameters": model.num_params,
                              "readout": "statistics" if static else readout, "used": tracker.used()}
    for name, part in (("train", train), ("validation", val), ("test", test)):
        v = view(part)
        z, ce = _scores(model, v, readout)
        pred = np.argmax(z, axis=1)
        result[f"{name}_accuracy"] = float(np.mean(pred == v[1]))
        result[f"{name}_loss"] = float(ce)
        if name == "test":
            result["test_predictions"] = pred.astype(int).tolist()
    if record_norms and norms:
        result["state_grad_norms"] = {k: np.stack(v).tolist() for k, v in norms.items()}
    return result


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (family, grid point, seed); the first seed of each recurrent run also keeps ``||dL/dh_t||``."""
    trials = []
    for f, family in enumerate(FAMILIES):
        for i, point in enumerate(grid(**cfg["grids"][family])):
            for k in range(cfg["seeds"]):
                trials.append(Trial(f"{family}/point={i}/seed={k}", train_trial,
                                    {"family": family, "point": point, "cfg": cfg,
                                     "seed": seed * 100_000 + 1000 * k + 10 * f,
                                     "record_norms": k == 0 and family in RECURRENT}))
    return trials


# -- trivial baselines -------------------------------------------------------------------
def trivial_baselines(cfg: dict[str, Any]) -> dict[str, Any]:
    """Majority class of the training part, and a length-only classifier (chosen on validation)."""
    train, val, test = _split(cfg, np.dtype(np.float64))
    majority = int(np.argmax(np.bincount(train.speakers, minlength=SPEAKERS)))
    # length alone: class-conditional length histograms with add-alpha smoothing (alpha on validation)
    top = int(max(train.lengths.max(), val.lengths.max(), test.lengths.max())) + 1

    def predictor(alpha: float):
        counts = np.stack([np.bincount(train.lengths[train.speakers == c], minlength=top) + alpha
                           for c in range(SPEAKERS)])
        p = counts / counts.sum(axis=1, keepdims=True)
        return lambda lengths: np.argmax(p[:, lengths], axis=0)

    alphas = [0.1, 0.5, 1.0, 2.0, 5.0]
    val_acc = [float(np.mean(predictor(a)(val.lengths) == val.speakers)) for a in alphas]
    alpha = alphas[int(np.argmax(val_acc))]
    return {"chance": 1 / SPEAKERS,
            "majority_class": {"class": majority,
                               "validation_accuracy": float(np.mean(val.speakers == majority)),
                               "test_accuracy": float(np.mean(test.speakers == majority))},
            "length_only": {"method": "per-speaker length histogram (naive Bayes), add-alpha smoothing "
                                      "chosen on validation", "alpha": alpha,
                            "validation_accuracy": max(val_acc),
                            "test_accuracy": float(np.mean(predictor(alpha)(test.lengths) == test.speakers))}}


# -- summary and figures -----------------------------------------------------------------
def _mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def summarise(cfg: dict[str, Any], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per family: every grid point's mean validation scores, the chosen point and its seeds' test scores."""
    grids = {family: grid(**cfg["grids"][family]) for family in FAMILIES}
    models, chosen, used = {}, {}, {}
    for family in FAMILIES:
        points = []
        for i, point in enumerate(grids[family]):
            runs = [results[f"{family}/point={i}/seed={k}"] for k in range(cfg["seeds"])]
            points.append({"index": i, "point": point, "runs": runs,
                           "validation_loss": float(np.mean([r["validation_loss"] for r in runs])),
                           "validation_accuracy": float(np.mean([r["validation_accuracy"] for r in runs]))})
        pick = choose(points, "validation_loss", higher_is_better=False)
        runs = pick["runs"]
        chosen[family] = pick["point"]
        used[family] = {"epochs": [r["used"]["epochs"] for r in runs],
                        "best_epoch": [r["used"]["best_epoch"] for r in runs],
                        "stopped_by": [r["used"]["stopped_by"] for r in runs]}
        models[family] = {
            "kind": "static" if family in STATIC else "recurrent", "chosen": pick["point"],
            "parameters": runs[0]["parameters"], "readout": runs[0]["readout"],
            "validation_accuracy": _mean_sd([r["validation_accuracy"] for r in runs]),
            "validation_loss": _mean_sd([r["validation_loss"] for r in runs]),
            "test_accuracy": _mean_sd([r["test_accuracy"] for r in runs]),
            "test_accuracy_per_seed": [r["test_accuracy"] for r in runs],
            "test_errors_per_seed": [int(round((1 - r["test_accuracy"]) * len(r["test_predictions"]))) for r in runs],
            "train_accuracy": _mean_sd([r["train_accuracy"] for r in runs]),
            "budget": {**Budget(**cfg["budget"]).to_record(), "used": used[family]},
            "grid": [{"point": p["point"], "validation_loss": p["validation_loss"],
                      "validation_accuracy": p["validation_accuracy"],
                      "test_accuracy": _mean_sd([r["test_accuracy"] for r in p["runs"]])} for p in points]}
    fairness = fairness_record(grids, Budget(**cfg["budget"]), chosen, used)
    # the best of each kind is chosen on validation too (lowest mean validation loss)
    best = {kind: min(names, key=lambda n: models[n]["validation_loss"]["mean"])
            for kind, names in (("static", STATIC), ("recurrent", RECURRENT))}
    s, r = (models[best[k]]["test_accuracy"]["mean"] for k in ("static", "recurrent"))
    comparison = {"best_static": best["static"], "best_recurrent": best["recurrent"],
                  "best_static_test_accuracy": s, "best_recurrent_test_accuracy": r,
                  "accuracy_ratio_static_over_recurrent": s / r,
                  "error_ratio_static_over_recurrent": (1 - s) / (1 - r) if r < 1 else None,
                  "best_test_accuracy_any_recurrent": max(models[n]["test_accuracy"]["mean"] for n in RECURRENT),
                  "best_test_accuracy_any_static": max(models[n]["test_accuracy"]["mean"] for n in STATIC)}
    return {"models": models, "fairness": fairness, "comparison": comparison}


def _accuracy_figure(models: dict[str, Any], baselines: dict[str, Any], path: Path) -> None:
    """Test accuracy by model: every seed as a dot, mean +- sd as a bar; validation beside it."""
    from ..figures import Figure

    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    names = list(models)
    x = np.arange(len(names))
    for j, (what, colour, dx) in enumerate((("validation", "C0", -0.18), ("test", "C1", 0.18))):
        means = [models[n][f"{what}_accuracy"]["mean"] for n in names]
        sds = [models[n][f"{what}_accuracy"]["sd"] for n in names]
        ax.bar(x + dx, means, width=0.34, yerr=sds, color=colour, alpha=0.55, capsize=3,
               label=f"{what} (mean ± sd over seeds)")
    for i, n in enumerate(names):
        seeds = models[n]["test_accuracy_per_seed"]
        ax.plot(np.full(len(seeds), x[i] + 0.18), seeds, "k.", ms=4)
    for label, acc in ANCHORS.items():
        ax.axhline(acc, ls=":", lw=1, color="0.4")
        ax.text(len(names) - 0.5, acc, label, fontsize=6, va="bottom", ha="right", color="0.3")
    ax.set_xticks(x, [f"{n}\n{models[n]['chosen']['hidden']} units" for n in names], fontsize=8)
    lo = min(min(models[n]["test_accuracy_per_seed"]) for n in names)
    ax.set_ylim(max(0.0, min(0.9, lo - 0.02)), 1.0)
    ax.set_ylabel("accuracy")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower left")
    lb = baselines["length_only"]["test_accuracy"]
    ax.set_title(f"Speaker identification, Japanese Vowels test set (370 utterances); dots: seeds\n"
                 f"trivial: length alone {lb:.3f}, majority class "
                 f"{baselines['majority_class']['test_accuracy']:.3f}", fontsize=9)
    fig.savefig(path, dpi=110)


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Run every family x grid point x seed (through ``sweep``), choose on validation, write figures."""
    from ..figures import confusion_matrix
    from rnnbp import plot

    cfg = QUICK if quick else FULL
    todo = make_trials(cfg, seed)
    results = dict(zip((t.key for t in todo), (sweep or Sweep()).run(todo, desc="voice: family x point x seed")))
    summary = summarise(cfg, results)
    models, comparison = summary["models"], summary["comparison"]
    baselines = trivial_baselines(cfg)
    for name, m in models.items():
        a = m["test_accuracy"]
        print(f"{name:>9}: {m['chosen']}, validation {m['validation_accuracy']['mean']:.4f}, "
              f"test {a['mean']:.4f} ± {a['sd']:.4f}", flush=True)
    print(f"trivial: length alone {baselines['length_only']['test_accuracy']:.3f}, "
          f"majority {baselines['majority_class']['test_accuracy']:.3f}", flush=True)

    figures = ["accuracy.png"]
    _accuracy_figure(models, baselines, out / "accuracy.png")
    test_speakers = load_japanese_vowels().test.speakers
    names = [f"speaker {c + 1}" for c in range(SPEAKERS)]
    for kind in ("static", "recurrent"):
        family = comparison[f"best_{kind}"]
        i = next(j for j, p in enumerate(grid(**cfg["grids"][family])) if p == models[family]["chosen"])
        preds = np.concatenate([results[f"{family}/point={i}/seed={k}"]["test_predictions"]
                                for k in range(cfg["seeds"])])
        truth = np.tile(test_speakers, cfg["seeds"])
        fig = confusion_matrix(truth, preds, class_names=names,
                               title=f"{family} ({kind}, best on validation): test predictions of "
                                     f"{cfg['seeds']} seeds, accuracy {np.mean(preds == truth):.4f}")
        fig.savefig(out / f"confusion_{kind}.png", dpi=110)
        figures.append(f"confusion_{kind}.png")
    norms = {}
    for family in RECURRENT:
        i = next(j for j, p in enumerate(grid(**cfg["grids"][family])) if p == models[family]["chosen"])
        for key, v in results[f"{family}/point={i}/seed=0"].get("state_grad_norms", {}).items():
            norms[family + ("" if "." not in key else " " + key.split(".", 1)[1])] = np.asarray(v)
    fig = plot.state_grad_norms(norms, title="||dL/dh_t|| per epoch (batch norm, mean over batches), "
                                             "chosen recurrent models, seed 0; fewer utterances run "
                                             "past t = 7")
    fig.savefig(out / "gradient_norms.png", dpi=100)
    figures.append("gradient_norms.png")

    config = dict(cfg, optimizer="Adam", bptt="full", loss="softmax cross-entropy (pooled over valid "
                  "steps for sequence models)", choice="lowest mean validation cross-entropy over seeds",
                  blas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    return {"config": config, "data": {"source": "UCI Japanese Vowels (Kudo, Toyama & Shimbo 1999), "
                                                 "tasks/data/japanese_vowels/", "train": 270, "test": 370,
                                       "validation_carved_from_train": SPEAKERS * cfg["val_per_speaker"],
                                       "speakers": SPEAKERS, "coefficients": COEFFICIENTS},
            "anchors": ANCHORS, "trivial": baselines, **summary,
            "runs": {k: {kk: vv for kk, vv in r.items() if kk not in ("test_predictions", "state_grad_norms")}
                     for k, r in results.items()},
            "figures": figures}
