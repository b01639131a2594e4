"""Spoken words where order matters: static versus recurrent backprop on synthetic speech.

The data (:mod:`tasks.data.speech`) are synthesised by a Klatt-style
source-filter model, turned into 24 log-mel energies with deltas (25 ms
windows, 10 ms hop), and spoken by a training panel of speakers; the test
speakers (:data:`tasks.data.speech.words.HELD_OUT_SPEAKERS`) are fixed by
their synthesis parameters and never choose anything. Validation data are
new utterances of the training speakers.

**Task A, isolated words.** 20 words, 19 of them in anagram groups ("tack"
/ "cat", "seat" / "teas" / "east"). Every model outputs word scores per frame
and is trained on their mean over the word's frames (one softmax
cross-entropy per word):

- *bag-of-frames MLP* (static): an MLP on the mean and standard deviation of
  the frames (one frame of ``2 D`` pooled features); the deltas in each frame
  are slopes over +-2 frames, so this bag still holds local order;
- *bag-of-frames MLP (log-mel only)*: the same on the log-mel energies
  alone, a bag with no order in it;
- *time-delay MLP* (static): an MLP on each frame with its +-``context``
  neighbours (Waibel's TDNN view), scores averaged over time;
- *Elman, LSTM, GRU* (BPTT) and *BiLSTM* (BPTT both ways).

Trivial baselines beside them: the duration of the word alone and a nearest
class mean on the pooled features.

**Task B, continuous phones with CTC.** Utterances of 2-6 words run
together; targets are the phone strings; a time-delay MLP, an LSTM and a
BiLSTM are trained with ``rnnbp.losses.ctc`` through ``rnnbp.train_step``;
phone error rates by greedy and beam decoding.

Fairness (:mod:`tasks.fairness`): each family chooses its hidden size and
learning rate on validation from a grid of the same size; every run gets the
same :class:`~tasks.fairness.Budget` (epochs with early stopping on
validation) and keeps the weights of its best validation epoch.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import ctc, softmax_cross_entropy
from rnnbp.metrics import character_error_rate

from ..data.speech.phones import PHONE_NAMES
from ..data.speech.words import (ANAGRAM_GROUPS, HELD_OUT_SPEAKERS, VOCABULARY, WORDS, SpeechSet,
                                 phone_set, training_speakers, word_set)
from ..fairness import Budget, BudgetTracker, check_grids, choose, fairness_record, grid
from ..sweep import Sweep, Trial

SUMMARY = ("synthetic speech: bag-of-frames and time-delay MLPs vs Elman/LSTM/GRU/BiLSTM on anagram words; "
           "CTC phone recognition, held-out speakers")

#: Task A's families (the index seeds each; the log-mel-only bag came last, so it is last).
WORD_MODELS = ("bag-of-frames MLP", "time-delay MLP", "Elman", "LSTM", "GRU", "BiLSTM",
               "bag-of-frames MLP (log-mel only)")
CTC_MODELS = ("time-delay MLP", "LSTM", "BiLSTM")
STATIC = ("bag-of-frames MLP (log-mel only)", "bag-of-frames MLP", "time-delay MLP")

FULL: dict[str, Any] = {
    "sr": 16000, "n_mels": 24, "context": 2,
    "words": {"train_speakers": 24, "train_reps": 4, "val_reps": 1, "test_reps": 3,
              "budget": {"max_epochs": 30, "patience": 5}, "batch_size": 32, "clip": 5.0,
              "grids": {"bag-of-frames MLP (log-mel only)": {"hidden": [64, 128], "lr": [1e-3, 3e-3]},
                        "bag-of-frames MLP": {"hidden": [64, 128], "lr": [1e-3, 3e-3]},
                        "time-delay MLP": {"hidden": [64, 128], "lr": [1e-3, 3e-3]},
                        "Elman": {"hidden": [32, 64], "lr": [1e-3, 3e-3]},
                        "LSTM": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
                        "GRU": {"hidden": [32, 64], "lr": [3e-3, 1e-2]},
                        "BiLSTM": {"hidden": [32, 64], "lr": [3e-3, 1e-2]}}},
    "ctc": {"train_speakers": 24, "train_per_speaker": 25, "val_per_speaker": 4, "test_per_speaker": 12,
            "words": [2, 6], "stack": 2, "budget": {"max_epochs": 25, "patience": 4}, "batch_size": 16,
            "clip": 5.0, "beam_width": 8,
            # sizes of about equal parameter counts (~190k, ~75k, ~83k); each family tries two learning rates
            "grids": {"time-delay MLP": {"hidden": [256], "lr": [1e-3, 3e-3]},
                      "LSTM": {"hidden": [96], "lr": [3e-3, 1e-2]},
                      "BiLSTM": {"hidden": [64], "lr": [3e-3, 1e-2]}}},
    "dtype": "float32",
}

QUICK: dict[str, Any] = {
    **FULL,
    "words": {**FULL["words"], "train_speakers": 3, "train_reps": 1, "test_reps": 1,
              "budget": {"max_epochs": 3, "patience": 2},
              "grids": {"bag-of-frames MLP (log-mel only)": {"hidden": [32], "lr": [3e-3]},
                        "bag-of-frames MLP": {"hidden": [32], "lr": [3e-3]},
                        "time-delay MLP": {"hidden": [32], "lr": [3e-3]},
                        "GRU": {"hidden": [16], "lr": [1e-2]},
                        "BiLSTM": {"hidden": [16], "lr": [1e-2]}}},
    "ctc": {**FULL["ctc"], "train_speakers": 3, "train_per_speaker": 2, "val_per_speaker": 1,
            "test_per_speaker": 1, "words": [2, 3], "budget": {"max_epochs": 2, "patience": 2},
            "grids": {"time-delay MLP": {"hidden": [32], "lr": [3e-3]},
                      "BiLSTM": {"hidden": [16], "lr": [1e-2]}}},
}

#: Seeds of the data sets, offset from the experiment's seed.
_DATA_SEEDS = {"train": 1, "val": 2, "test": 3}


# -- data --------------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _data(task: str, sizes: tuple, seed: int, sr: int, n_mels: int, dtype: str) -> dict[str, SpeechSet]:
    """The train/val/test sets of one task, made once per process (trials in one worker share them)."""
    s = dict(sizes)
    panel = training_speakers(s["train_speakers"])
    if task == "words":
        make = lambda speakers, reps, part: word_set(speakers, reps, seed * 100 + _DATA_SEEDS[part],
                                                     sr=sr, n_mels=n_mels, dtype=dtype)
        return {"train": make(panel, s["train_reps"], "train"), "val": make(panel, s["val_reps"], "val"),
                "test": make(HELD_OUT_SPEAKERS, s["test_reps"], "test")}
    make = lambda speakers, n, part: phone_set(speakers, n, seed * 100 + _DATA_SEEDS[part], words=tuple(s["words"]),
                                               sr=sr, n_mels=n_mels, dtype=dtype)
    return {"train": make(panel, s["train_per_speaker"], "train"), "val": make(panel, s["val_per_speaker"], "val"),
            "test": make(HELD_OUT_SPEAKERS, s["test_per_speaker"], "test")}


def task_data(task: str, cfg: dict[str, Any], seed: int) -> dict[str, SpeechSet]:
    """Train, validation and held-out-speaker test sets of ``task`` ("words" or "ctc")."""
    keys = (("train_speakers", "train_reps", "val_reps", "test_reps") if task == "words" else
            ("train_speakers", "train_per_speaker", "val_per_speaker", "test_per_speaker"))
    sizes = tuple((k, cfg[task][k]) for k in keys) + (("words", tuple(cfg[task].get("words", ()))),)
    return _data(task, sizes, seed, cfg["sr"], cfg["n_mels"], cfg["dtype"])


def standardise(sets: dict[str, SpeechSet]) -> dict[str, np.ndarray]:
    """Each set's features minus the training frames' mean, over their standard deviation; zero padding kept."""
    tr = sets["train"]
    frames = tr.xs[tr.mask]
    mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-6
    return {k: ((s.xs - mean) / std * s.mask[..., None]).astype(s.xs.dtype) for k, s in sets.items()}


def pooled(xs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean and standard deviation over each sequence's frames, shape ``(1, N, 2 D)``: the bag of frames."""
    m = mask[..., None]
    n = mask.sum(axis=0)[:, None]
    mean = (xs * m).sum(axis=0) / n
    std = np.sqrt((((xs - mean) ** 2) * m).sum(axis=0) / n)
    return np.concatenate([mean, std], axis=1)[None].astype(xs.dtype)


def stacked(xs: np.ndarray, context: int) -> np.ndarray:
    """Each frame with its ``context`` neighbours on both sides, ``(T, N, (2 context + 1) D)``; zeros past the ends."""
    T = xs.shape[0]
    pad = np.concatenate([np.zeros_like(xs[:context]), xs, np.zeros_like(xs[:context])])
    return np.ascontiguousarray(np.concatenate([pad[k:k + T] for k in range(2 * context + 1)], axis=2))


def subsample(xs: np.ndarray, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``k`` consecutive frames as one, ``(ceil(T / k), N, k D)``, and the mask of the new frames."""
    if k == 1:
        return xs, mask
    T, N, D = xs.shape
    Tk = -(-T // k)
    pad = np.concatenate([xs, np.zeros((Tk * k - T, N, D), xs.dtype)])
    out = pad.reshape(Tk, k, N, D).transpose(0, 2, 1, 3).reshape(Tk, N, k * D)
    return np.ascontiguousarray(out), mask[::k].copy()


def model_inputs(family: str, xs: np.ndarray, mask: np.ndarray, context: int,
                 stack: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, mask)`` of a family: pooled frames, frames in context or the frames themselves.

    ``stack`` first joins every ``stack`` frames into one (CTC: 20 ms steps).
    """
    xs, mask = subsample(xs, mask, stack)
    if family == "bag-of-frames MLP (log-mel only)":     # the first half of the features: no deltas
        return pooled(np.ascontiguousarray(xs[..., :xs.shape[2] // 2]), mask), np.ones((1, xs.shape[1]), bool)
    if family == "bag-of-frames MLP":
        return pooled(xs, mask), np.ones((1, xs.shape[1]), bool)
    if family == "time-delay MLP":
        return stacked(xs, context), mask
    return xs, mask


# -- models ------------------------------------------------------------------------
def build(family: str, D: int, C: int, hidden: int, context: int, seed: int, dtype: str) -> rnnbp.Sequential:
    """A model of ``family`` from ``D`` features to ``C`` scores per frame."""
    dt = np.dtype(dtype)
    if family in STATIC:
        d_in = {"bag-of-frames MLP": 2 * D, "bag-of-frames MLP (log-mel only)": D}.get(family, (2 * context + 1) * D)
        return rnnbp.Sequential(rnnbp.Linear(d_in, hidden, seed=seed, dtype=dt), rnnbp.ReLU(),
                                rnnbp.Linear(hidden, hidden, seed=seed + 1, dtype=dt), rnnbp.ReLU(),
                                rnnbp.Linear(hidden, C, seed=seed + 2, dtype=dt))
    if family == "BiLSTM":
        cell = rnnbp.Bidirectional(rnnbp.LSTM(D, hidden, seed=seed, dtype=dt, forget_bias=1.0), seed=seed + 3)
        return rnnbp.Sequential(cell, rnnbp.Linear(2 * hidden, C, seed=seed + 1, dtype=dt))
    cell = {"Elman": lambda: rnnbp.Elman(D, hidden, "tanh", seed=seed, dtype=dt),
            "LSTM": lambda: rnnbp.LSTM(D, hidden, seed=seed, dtype=dt, forget_bias=1.0),
            "GRU": lambda: rnnbp.GRU(D, hidden, seed=seed, dtype=dt)}[family]()
    return rnnbp.Sequential(cell, rnnbp.Linear(hidden, C, seed=seed + 1, dtype=dt))


def pooled_cross_entropy(outputs: np.ndarray, labels: np.ndarray,
                         mask: np.ndarray | None) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy of the time-mean of the scores over each sequence's frames.

    ``outputs`` ``(T, B, C)``, ``labels`` ``(B,)``, ``mask`` ``(T, B)``;
    returns the mean loss and its gradient ``(T, B, C)`` (zero at padding).
    """
    m = np.ones(outputs.shape[:2], bool) if mask is None else mask
    n = m.sum(axis=0)[:, None]
    z = (outputs * m[..., None]).sum(axis=0) / n
    value, dz = softmax_cross_entropy(z, labels)
    return value, (dz[None] * m[..., None] / n[None]).astype(outputs.dtype)


def ctc_loss(outputs: np.ndarray, labels: list, mask: np.ndarray | None) -> tuple[float, np.ndarray]:
    """``rnnbp.losses.ctc`` on a list of label arrays, blank 0."""
    return ctc(outputs, labels, mask=mask)


def word_scores(model: rnnbp.Layer, xs: np.ndarray, mask: np.ndarray, batch: int = 256) -> np.ndarray:
    """Time-mean scores ``(N, C)`` (evaluation mode)."""
    out = rnnbp.predict(model, xs, mask, batch_size=batch)
    m = mask[..., None]
    return (out * m).sum(axis=0) / mask.sum(axis=0)[:, None]


def phone_error_rate(model: rnnbp.Layer, xs: np.ndarray, mask: np.ndarray, refs: list,
                     beam: int | None = None) -> tuple[float, list]:
    """PER (edit distance over reference length, pooled) by greedy (``beam=None``) or beam decoding."""
    out = rnnbp.predict(model, xs, mask, batch_size=64)
    hyp = (rnnbp.ctc_greedy_decode(out, mask) if beam is None else
           rnnbp.ctc_beam_decode(out, mask, beam_width=beam))
    return character_error_rate([list(r) for r in refs], [list(h) for h in hyp]), hyp


def train(model: rnnbp.Layer, data: tuple, evaluate, loss, budget: Budget, lr: float, batch_size: int,
          clip: float, seed: int, higher_is_better: bool) -> tuple[BudgetTracker, list[float]]:
    """Adam on shuffled mini-batches (each cut to its longest sequence) until the budget is spent.

    ``data`` is ``(xs, targets, mask)`` with ``targets`` an array or a list;
    ``evaluate(model)`` gives the validation score after each epoch. The
    weights of the best validation epoch are restored at the end.
    """
    xs, targets, mask = data
    N = xs.shape[1]
    opt = rnnbp.optim.Adam(model, lr=lr)
    rng = np.random.default_rng(seed)
    tracker = BudgetTracker(budget, higher_is_better=higher_is_better)
    best = {k: v.copy() for k, v in model.params.items()}
    losses = []
    while True:
        order = rng.permutation(N)
        total = 0.0
        for i in range(0, N, batch_size):
            idx = order[i:i + batch_size]
            T = int(mask[:, idx].sum(axis=0).max())
            y = [targets[j] for j in idx] if isinstance(targets, list) else targets[idx]
            step = rnnbp.train_step(model, (xs[:T, idx], y, mask[:T, idx]), loss, opt, clip=clip,
                                    target="sequence")
            total += step.loss * idx.size
        losses.append(total / N)
        score = evaluate(model)
        if tracker.improved(score):
            best = {k: v.copy() for k, v in model.params.items()}
        if not tracker.update(score):
            break
    for k, v in model.params.items():
        v[...] = best[k]
    return tracker, losses


def _seed(seed: int, task: str, family: str, point: int) -> int:
    return seed * 100_000 + (0 if task == "words" else 50_000) + 1000 * (WORD_MODELS.index(family)) + 10 * point


def _grad_norms(model: rnnbp.Layer, xs: np.ndarray, targets, mask: np.ndarray, loss) -> dict[str, list]:
    """``||dL/dh_t||`` of every recurrent layer, averaged over the sequences still running at ``t``."""
    graph = rnnbp.unroll(model, xs, mask=mask)
    _, dys = loss(graph.outputs, targets, mask)
    model.zero_grad()
    graph.backward(dys)
    out = {}
    for key, r in graph.state_grad_norms_per_sequence.items():
        running = mask.sum(axis=1)
        out[key] = ((r * mask).sum(axis=1) / np.maximum(running, 1)).tolist()
    model.zero_grad()
    return out


def word_trial(family: str, point: int, hidden: int, lr: float, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Task A: train one family at one grid point; score on validation and held-out speakers."""
    sets = task_data("words", cfg, seed)
    xs = standardise(sets)
    wc = cfg["words"]
    ctx = cfg["context"]
    inp = {k: model_inputs(family, xs[k], sets[k].mask, ctx) for k in sets}
    s = _seed(seed, "words", family, point)
    model = build(family, xs["train"].shape[2], len(WORDS), hidden, ctx, s, cfg["dtype"])
    val_labels = sets["val"].labels
    evaluate = lambda m: float(np.mean(np.argmax(word_scores(m, *inp["val"]), 1) == val_labels))
    t0 = time.perf_counter()
    tracker, losses = train(model, (inp["train"][0], sets["train"].labels, inp["train"][1]), evaluate,
                            pooled_cross_entropy, Budget(**wc["budget"]), lr, wc["batch_size"], wc["clip"],
                            s + 1, higher_is_better=True)
    seconds = time.perf_counter() - t0
    test = sets["test"]
    scores = word_scores(model, *inp["test"])
    result = {"family": family, "hidden": hidden, "lr": lr, "parameters": model.num_params,
              "validation": tracker.best_score, "used": tracker.used(), "train_loss": losses,
              "test_accuracy": float(np.mean(np.argmax(scores, 1) == test.labels)),
              "test_scores": scores.astype(np.float64).round(3), "seconds": round(seconds, 2)}
    # what the figures show: per-frame word probabilities of two test words, ||dL/dh_t|| over time
    show = [int(np.flatnonzero(test.labels == WORDS.index(w))[0]) for w in ("tack", "cat")]
    frames = rnnbp.predict(model, inp["test"][0][:, show], inp["test"][1][:, show])
    e = np.exp(frames - frames.max(axis=2, keepdims=True))
    result["showcase"] = {"index": show, "probabilities": (e / e.sum(axis=2, keepdims=True)).round(4)}
    if family not in STATIC:
        few = slice(0, 64)
        result["grad_norms"] = _grad_norms(model, inp["test"][0][:, few], test.labels[few], inp["test"][1][:, few],
                                           pooled_cross_entropy)
    return result


def ctc_trial(family: str, point: int, hidden: int, lr: float, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Task B: train one family with CTC at one grid point; greedy PER on validation, greedy and beam on test."""
    sets = task_data("ctc", cfg, seed)
    xs = standardise(sets)
    cc = cfg["ctc"]
    ctx = cfg["context"]
    inp = {k: model_inputs(family, xs[k], sets[k].mask, ctx, cc["stack"]) for k in sets}
    s = _seed(seed, "ctc", family, point)
    model = build(family, cc["stack"] * xs["train"].shape[2], len(PHONE_NAMES) + 1, hidden, ctx, s, cfg["dtype"])
    evaluate = lambda m: phone_error_rate(m, *inp["val"], sets["val"].phones)[0]
    t0 = time.perf_counter()
    tracker, losses = train(model, (inp["train"][0], list(sets["train"].phones), inp["train"][1]), evaluate,
                            ctc_loss, Budget(**cc["budget"]), lr, cc["batch_size"], cc["clip"], s + 1,
                            higher_is_better=False)
    seconds = time.perf_counter() - t0
    test = sets["test"]
    greedy, hyp = phone_error_rate(model, *inp["test"], test.phones)
    beam, _ = phone_error_rate(model, *inp["test"], test.phones, beam=cc["beam_width"])
    by_speaker = {}
    for k, name in enumerate(test.speaker_names):
        sel = np.flatnonzero(test.speakers == k)
        by_speaker[name] = character_error_rate([list(test.phones[i]) for i in sel], [list(hyp[i]) for i in sel])
    out = rnnbp.predict(model, inp["test"][0][:, :1], inp["test"][1][:, :1])
    e = np.exp(out - out.max(axis=2, keepdims=True))
    return {"family": family, "hidden": hidden, "lr": lr, "parameters": model.num_params,
            "validation": tracker.best_score, "used": tracker.used(), "train_loss": losses,
            "test_per_greedy": greedy, "test_per_beam": beam, "test_per_by_speaker": by_speaker,
            "showcase": {"probabilities": (e / e.sum(axis=2, keepdims=True))[:, 0].round(4),
                         "hypothesis": hyp[0].tolist(), "reference": test.phones[0].tolist(),
                         "log_mel": test.xs[:test.lengths[0], 0, :cfg["n_mels"]].astype(np.float64).round(3),
                         "stack": cc["stack"]},
            "sizes": {k: len(v) for k, v in sets.items()},
            "seconds": round(seconds, 2)}


# -- the experiment ------------------------------------------------------------------
def grids(cfg: dict[str, Any]) -> dict[str, dict[str, list]]:
    """The grids of both tasks, checked to be of one size per task."""
    out = {task: {fam: grid(**axes) for fam, axes in cfg[task]["grids"].items()} for task in ("words", "ctc")}
    for g in out.values():
        check_grids(g)
    return out


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """Every (task, family, grid point): the slow ones (CTC, bidirectional) first."""
    g = grids(cfg)
    todo = [Trial("words/baselines", baseline_trial, {"seed": seed, "cfg": cfg})]
    for task, fn in (("ctc", ctc_trial), ("words", word_trial)):
        for fam, points in g[task].items():
            for i, p in enumerate(points):
                todo.append(Trial(f"{task}/{fam}/{i}", fn, {"family": fam, "point": i, "hidden": p["hidden"],
                                                              "lr": p["lr"], "seed": seed, "cfg": cfg}))
    return todo


def baseline_trial(seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Trivial baselines of task A, fitted on train and scored on the held-out speakers.

    Duration alone (the nearest class mean of the word's duration) and a
    nearest class mean on the standardised pooled features (the frames'
    mean and standard deviation). Also returns what the main process needs
    without synthesising anything: the test labels and speakers and the
    log-mel frames of the two words the figures show.
    """
    sets = task_data("words", cfg, seed)
    xs = standardise(sets)
    C = len(WORDS)
    tr, te = sets["train"], sets["test"]
    dm = np.array([tr.durations[tr.labels == c].mean() for c in range(C)])
    dur = -(te.durations[:, None] - dm[None]) ** 2
    ptr, pte = pooled(xs["train"], tr.mask)[0], pooled(xs["test"], te.mask)[0]
    mu, sd = ptr.mean(0), ptr.std(0) + 1e-9
    ptr, pte = (ptr - mu) / sd, (pte - mu) / sd
    means = np.stack([ptr[tr.labels == c].mean(0) for c in range(C)])
    ncm = -((pte[:, None] - means[None]) ** 2).sum(-1)
    D = xs["train"].shape[2] // 2                        # the log-mel half of [log-mel, deltas]
    half = np.r_[0:D, 2 * D:3 * D]                       # means and standard deviations of log-mel
    ncm_static = -((pte[:, None, half] - means[None, :, half]) ** 2).sum(-1)
    show = [int(np.flatnonzero(te.labels == WORDS.index(w))[0]) for w in ("tack", "cat")]
    n = cfg["n_mels"]
    return {"scores": {"duration alone": dur, "pooled nearest class mean": ncm,
                       "pooled nearest class mean (log-mel only)": ncm_static},
            "mean_duration": {w: float(dm[i]) for i, w in enumerate(WORDS)},
            "test_labels": te.labels, "test_speakers": te.speakers, "speaker_names": list(te.speaker_names),
            "showcase": {"index": show,
                         "log_mel": [te.xs[:te.lengths[i], i, :n].astype(np.float64).round(3) for i in show]},
            "sizes": {k: len(v) for k, v in sets.items()}}


def within_groups(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Forced choice inside each anagram group: accuracy and confusion counts per group present in ``labels``.

    ``scores`` ``(N, C)``, ``labels`` ``(N,)``; ``"mean"`` is the mean accuracy over those groups.
    """
    out = {}
    for g in ANAGRAM_GROUPS:
        idx = [WORDS.index(w) for w in g]
        sel = np.isin(labels, idx)
        if not sel.any():
            continue                                     # a group absent from the test labels
        pred = np.array(idx)[np.argmax(scores[sel][:, idx], axis=1)]
        conf = [[int(np.sum((labels[sel] == a) & (pred == b))) for b in idx] for a in idx]
        out["/".join(g)] = {"accuracy": float(np.mean(pred == labels[sel])), "chance": 1.0 / len(g),
                            "confusion": conf}
    out["mean"] = float(np.mean([v["accuracy"] for v in out.values()]))
    return out


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Both tasks through ``sweep``; choose on validation; score held-out speakers; figures; metrics."""
    from .. import speech_figures as figs

    cfg = QUICK if quick else FULL
    g = grids(cfg)
    todo = make_trials(cfg, seed)
    done = dict(zip((t.key for t in todo), (sweep or Sweep()).run(todo, desc="speech trials")))
    bt = done["words/baselines"]
    labels, speakers = np.asarray(bt["test_labels"]), np.asarray(bt["test_speakers"])
    chance_within = float(np.mean([1.0 / len(gr) for gr in ANAGRAM_GROUPS]))

    # trivial baselines
    base = {}
    for name, scores in bt["scores"].items():
        scores = np.asarray(scores)
        base[name] = {"test_accuracy": float(np.mean(np.argmax(scores, 1) == labels)),
                      "within_groups": within_groups(scores, labels)}

    # task A: choose each family's point on validation
    word_results, chosen_points, used, word_scores_by = {}, {}, {}, {}
    for fam, points in g["words"].items():
        runs = [done[f"words/{fam}/{i}"] for i in range(len(points))]
        best = choose(runs, "validation")
        i = runs.index(best)
        chosen_points[fam], used[fam] = points[i], best["used"]
        scores = np.asarray(best["test_scores"])
        word_scores_by[fam] = scores
        pred = np.argmax(scores, 1)
        by_speaker = {n: float(np.mean(pred[speakers == k] == labels[speakers == k]))
                      for k, n in enumerate(bt["speaker_names"])}
        word_results[fam] = {"chosen": points[i], "validation_accuracy": best["validation"],
                             "test_accuracy": best["test_accuracy"], "within_groups": within_groups(scores, labels),
                             "test_accuracy_by_speaker": by_speaker, "parameters": best["parameters"],
                             "seconds": best["seconds"], "grid_validation": [r["validation"] for r in runs]}
    word_fair = fairness_record(g["words"], Budget(**cfg["words"]["budget"]), chosen_points, used)

    # task B
    ctc_results, ctc_points, ctc_used = {}, {}, {}
    for fam, points in g["ctc"].items():
        runs = [done[f"ctc/{fam}/{i}"] for i in range(len(points))]
        best = choose(runs, "validation", higher_is_better=False)
        i = runs.index(best)
        ctc_points[fam], ctc_used[fam] = points[i], best["used"]
        ctc_results[fam] = {"chosen": points[i], "validation_per_greedy": best["validation"],
                            "test_per_greedy": best["test_per_greedy"], "test_per_beam": best["test_per_beam"],
                            "test_per_by_speaker": best["test_per_by_speaker"], "parameters": best["parameters"],
                            "seconds": best["seconds"], "grid_validation": [r["validation"] for r in runs]}
    ctc_fair = fairness_record(g["ctc"], Budget(**cfg["ctc"]["budget"]), ctc_points, ctc_used)

    figures = figs.write_all(out, done, g, chosen_points, ctc_points, word_results, base, labels)
    best_rec = max((f for f in word_results if f not in STATIC), key=lambda f: word_results[f]["test_accuracy"])
    best_ctc = min(ctc_results, key=lambda f: ctc_results[f]["test_per_beam"])
    summary = {
        "best_recurrent_word_model": best_rec,
        "best_recurrent_test_accuracy": word_results[best_rec]["test_accuracy"],
        "bag_of_frames_within_group": word_results.get("bag-of-frames MLP", {}).get("within_groups", {}).get("mean"),
        "chance_within_group": chance_within,
        "best_ctc_model": best_ctc, "best_ctc_test_per_beam": ctc_results[best_ctc]["test_per_beam"],
    }
    config = {**cfg, "features": f"{cfg['n_mels']} log-mel + deltas, 25 ms / 10 ms", "optimizer": "Adam",
              "word_loss": "softmax cross-entropy of the time-mean of per-frame scores",
              "held_out_speakers": [vars(s) for s in HELD_OUT_SPEAKERS],
              "training_speakers": [vars(s) for s in training_speakers(cfg["words"]["train_speakers"])],
              "vocabulary": {w: list(p) for w, p in VOCABULARY.items()},
              "anagram_groups": [list(gr) for gr in ANAGRAM_GROUPS],
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    return {"config": config, "summary": summary, "chance": 1.0 / len(WORDS), "chance_within_group": chance_within,
            "baselines": base, "mean_duration": bt["mean_duration"], "sizes": {"words": bt["sizes"],
            "ctc": next(iter(r["sizes"] for k, r in done.items() if k.startswith("ctc/")), None)},
            "words": word_results, "ctc": ctc_results,
            "fairness": {"words": word_fair, "ctc": ctc_fair}, "figures": figures}
