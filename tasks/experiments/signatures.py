"""Online signature verification: static versus recurrent backprop against skilled forgeries.

A forger who has seen a signature can copy its shape, not its timing. The
signatures are synthetic, from the sigma-lognormal model
(``tasks.data.signatures.lognormal``): each writer has a template of 8-20
lognormal strokes, genuine samples jitter it (with an inter-session drift),
skilled forgeries copy the template's path and trace it with a forger's
timing, random forgeries are other writers' genuine samples.

Protocol (fixed before any training): writers ``0 .. n_train-1`` train,
``VALIDATION_BASE + i`` validate (choice of grid point and early stopping),
``TEST_BASE + i`` are the held-out test writers. Every validation and test
writer has 5 reference genuine samples (session 0) and is questioned with 10
genuine samples (5 from each session), 10 skilled forgeries and 10 random
forgeries (genuine samples of the other writers of its set). A verifier's
score is the mean distance to the 5 references over the references' own mean
mutual distance (``tasks.verification.reference_scores``); one global
threshold; the equal error rate (EER) for skilled and for random forgeries.

Verifiers:

- **learned embeddings** (one embedding of size ``embed`` per sample,
  Euclidean distance), trained on the training writers with the soft-margin
  triplet loss (``tasks.verification.triplet_loss``): anchor and positive are
  two genuine samples of a training writer, the negative is, with even odds,
  a skilled forgery of the same writer or a genuine sample of another. The
  loss is the verifier's own question (is a genuine sample nearer its
  writer's genuine samples than a forgery?), it is relative per writer, as
  the per-writer references are, and its soft margin adds no
  hyper-parameter. Static: an MLP and a CNN (``rnnbp.Conv2D``) on the
  ``image`` view, an MLP on the ``resampled`` path (order kept, timing lost).
  Recurrent, trained by full BPTT with masks over the trajectory
  (``x, y, pen_down, dt, dx, dy``; every ``step``-th sample): LSTM, GRU and
  bidirectional LSTM encoders whose per-step outputs are averaged over the
  valid steps (mean pooling: the same readout for one and two directions).
- **DTW** on the trajectories (z-normalised ``x, y, dx, dy``; Sakoe-Chiba
  band), the classic non-learned online verifier.
- **trivial features**: total duration, number of points, number of pen-ups
  and mean speed, each scaled by its within-writer spread on the training
  writers -- the check that the generator does not give the forgery away.

Fairness (``tasks.fairness``): every learned family chooses hidden size and
learning rate from a grid of the same size on the validation writers' mean
of skilled and random EER; every run gets the same ``Budget`` (epochs with
early stopping on that validation score, the best epoch's weights kept).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp

from ..data.signatures.lognormal import Signature, genuine, skilled_forgery
from ..data.signatures.views import encoder_features, image, pad_batch, resampled
from ..fairness import Budget, BudgetTracker, choose, fairness_record, grid
from ..sweep import Sweep, Trial
from ..verification import dtw, equal_error_rate, reference_scores, triplet_loss

SUMMARY = ("Signature verification on sigma-lognormal signatures: MLP/CNN on images, MLP on resampled paths "
           "vs LSTM/GRU/BiLSTM on trajectories vs DTW; EER on skilled and random forgeries")

VALIDATION_BASE = 5000
TEST_BASE = 9000
REFS, N_GENUINE_TEST, N_SKILLED, N_RANDOM = 5, 10, 10, 10
GENUINE_PER_WRITER = REFS + N_GENUINE_TEST

#: The learned families: (view, kind).
FAMILIES = {"MLP / image": ("image", "MLP"), "CNN / image": ("image", "CNN"),
            "MLP / resampled": ("resampled", "MLP"),
            "LSTM / trajectory": ("trajectory", "LSTM"), "GRU / trajectory": ("trajectory", "GRU"),
            "BiLSTM / trajectory": ("trajectory", "BiLSTM")}
STATIC = ("MLP / image", "CNN / image", "MLP / resampled")
RECURRENT = ("LSTM / trajectory", "GRU / trajectory", "BiLSTM / trajectory")

FULL: dict[str, Any] = {
    "n_train": 100, "n_val": 20, "n_test": 40,
    "rate": 100.0, "step": 2, "image_size": 32, "resample": 64, "embed": 16,
    "batch": 32, "batches_per_epoch": 40, "clip": 5.0, "dtype": "float32",
    "budget": {"max_epochs": 25, "patience": 6},
    "grids": {"MLP / image": {"hidden": [64, 128], "lr": [3e-3, 1e-2]},
              "CNN / image": {"channels": [4, 8], "lr": [3e-3, 1e-2]},
              "MLP / resampled": {"hidden": [64, 128], "lr": [3e-3, 1e-2]},
              "LSTM / trajectory": {"hidden": [16, 32], "lr": [3e-3, 1e-2]},
              "GRU / trajectory": {"hidden": [16, 32], "lr": [3e-3, 1e-2]},
              "BiLSTM / trajectory": {"hidden": [12, 24], "lr": [3e-3, 1e-2]}},
    "dtw": {"band": 0.2, "chunks": 4},
}

QUICK: dict[str, Any] = {
    **FULL, "n_train": 6, "n_val": 2, "n_test": 3, "step": 4, "image_size": 16, "resample": 32, "embed": 8,
    "batch": 8, "batches_per_epoch": 2, "budget": {"max_epochs": 2, "patience": 1},
    "grids": {name: {k: v[:1] for k, v in g.items()} for name, g in FULL["grids"].items()},
    "dtw": {"band": 0.2, "chunks": 1},
}


# -- data ------------------------------------------------------------------------------
def _writers(cfg: dict[str, Any], part: str) -> list[int]:
    if part == "train":
        return list(range(cfg["n_train"]))
    base, n = (VALIDATION_BASE, cfg["n_val"]) if part == "val" else (TEST_BASE, cfg["n_test"])
    return [base + i for i in range(n)]


@functools.lru_cache(maxsize=4)
def _signatures(seed: int, cfg_json: str, part: str) -> dict[str, list[list[Signature]]]:
    """Every writer's genuine samples and skilled forgeries of one part (cached per process)."""
    cfg = json.loads(cfg_json)
    ws = _writers(cfg, part)
    return {"genuine": [[genuine(w, k, seed, rate=cfg["rate"]) for k in range(GENUINE_PER_WRITER)] for w in ws],
            "skilled": [[skilled_forgery(w, k, seed, rate=cfg["rate"]) for k in range(N_SKILLED)] for w in ws]}


def _view(sig: Signature, view: str, cfg: dict[str, Any]) -> np.ndarray:
    if view == "image":
        return image(sig, cfg["image_size"]).ravel()
    if view == "resampled":
        return resampled(sig, cfg["resample"]).ravel()
    return encoder_features(sig, cfg["step"])


@functools.lru_cache(maxsize=8)
def _views(seed: int, cfg_json: str, part: str, view: str) -> dict[str, list[list[np.ndarray]]]:
    """One view of every signature of a part, in the model dtype; trajectories scaled by the training spread."""
    cfg = json.loads(cfg_json)
    sigs = _signatures(seed, cfg_json, part)
    out = {k: [[_view(s, view, cfg) for s in row] for row in rows] for k, rows in sigs.items()}
    dt = np.dtype(cfg["dtype"])
    if view == "trajectory":
        scale = _trajectory_scale(seed, cfg_json)
        out = {k: [[(x / scale).astype(dt) for x in row] for row in rows] for k, rows in out.items()}
    else:
        out = {k: [[x.astype(dt) for x in row] for row in rows] for k, rows in out.items()}
    return out


@functools.lru_cache(maxsize=2)
def _trajectory_scale(seed: int, cfg_json: str) -> np.ndarray:
    """Per-column standard deviation of the training trajectories (pen_down left as 0/1)."""
    cfg = json.loads(cfg_json)
    sigs = _signatures(seed, cfg_json, "train")
    rows = np.concatenate([encoder_features(s, cfg["step"]) for k in ("genuine", "skilled")
                           for row in sigs[k] for s in row])
    scale = rows.std(axis=0)
    scale[2] = 1.0
    return np.maximum(scale, 1e-6)


# -- the verification protocol -------------------------------------------------------
def _protocol(n_writers: int) -> list[dict[str, Any]]:
    """For each writer of a set: which samples are references, genuine, skilled and random questions."""
    plan = []
    for i in range(n_writers):
        others = [j for j in range(n_writers) if j != i] or [i]
        random = [(others[r % len(others)], REFS + (r % N_GENUINE_TEST)) for r in range(N_RANDOM)]
        plan.append({"refs": list(range(REFS)), "genuine": list(range(REFS, GENUINE_PER_WRITER)),
                     "skilled": list(range(N_SKILLED)), "random": random})
    return plan


def _scores_from_distance(n_writers: int, distance) -> dict[str, list[float]]:
    """Normalised scores of every question, ``distance(a, b)`` on ("genuine"|"skilled", writer, sample) keys."""
    out: dict[str, list[float]] = {"genuine": [], "skilled": [], "random": []}
    for i, p in enumerate(_protocol(n_writers)):
        refs = [("genuine", i, k) for k in p["refs"]]
        among = np.array([[distance(a, b) if a != b else 0.0 for b in refs] for a in refs])
        questions = {"genuine": [("genuine", i, k) for k in p["genuine"]],
                     "skilled": [("skilled", i, k) for k in p["skilled"]],
                     "random": [("genuine", j, k) for j, k in p["random"]]}
        for kind, qs in questions.items():
            d = np.array([[distance(q, r) for r in refs] for q in qs])
            out[kind] += reference_scores(d, among).tolist()
    return out


def _eers(scores: dict[str, list[float]]) -> dict[str, float]:
    return {"skilled": equal_error_rate(scores["genuine"], scores["skilled"]),
            "random": equal_error_rate(scores["genuine"], scores["random"])}


# -- learned embeddings ---------------------------------------------------------------
def build(family: str, point: dict[str, Any], cfg: dict[str, Any], seed: int) -> rnnbp.Sequential:
    """The encoder of ``family`` at grid ``point``: inputs of its view -> ``cfg["embed"]`` per sample (or step)."""
    view, kind = FAMILIES[family]
    dt, E = np.dtype(cfg["dtype"]), cfg["embed"]
    if view == "trajectory":
        H = point["hidden"]
        if kind == "BiLSTM":
            rnn = rnnbp.Bidirectional(rnnbp.LSTM(6, H, seed=seed, dtype=dt), seed=seed + 1)
            return rnnbp.Sequential(rnn, rnnbp.Linear(2 * H, E, seed=seed + 2, dtype=dt))
        cell = {"LSTM": rnnbp.LSTM, "GRU": rnnbp.GRU}[kind](6, H, seed=seed, dtype=dt)
        return rnnbp.Sequential(cell, rnnbp.Linear(H, E, seed=seed + 2, dtype=dt))
    D = cfg["image_size"] ** 2 if view == "image" else 3 * cfg["resample"]
    if kind == "MLP":
        H = point["hidden"]
        return rnnbp.Sequential(rnnbp.Linear(D, H, seed=seed, dtype=dt), rnnbp.ReLU(),
                                rnnbp.Linear(H, E, seed=seed + 1, dtype=dt))
    S, c = cfg["image_size"], point["channels"]
    return rnnbp.Sequential(
        rnnbp.Reshape((1, S, S)),
        rnnbp.Conv2D(1, c, 3, padding=1, seed=seed, dtype=dt), rnnbp.ReLU(), rnnbp.MaxPool2D(2),
        rnnbp.Conv2D(c, 2 * c, 3, padding=1, seed=seed + 1, dtype=dt), rnnbp.ReLU(), rnnbp.MaxPool2D(2),
        rnnbp.Flatten(), rnnbp.Linear(2 * c * (S // 4) ** 2, E, seed=seed + 2, dtype=dt))


def embed_forward(model: rnnbp.Layer, items: list[np.ndarray]) -> tuple[rnnbp.TimeGraph, np.ndarray, np.ndarray]:
    """Embeddings ``(N, E)`` of ``items``: static vectors ``(D,)`` or sequences ``(T_i, D)``.

    Returns the time graph, the embeddings and the mask (``(1, N)`` for
    static inputs); a sequence's embedding is the mean of its outputs over
    its valid steps.
    """
    if items[0].ndim == 1:
        xs = np.stack(items)[None]
        graph = rnnbp.unroll(model, xs)
        return graph, graph.outputs[0], np.ones((1, len(items)), dtype=bool)
    xs, mask = pad_batch(items, dtype=items[0].dtype)
    graph = rnnbp.unroll(model, xs, mask=mask)
    n = mask.sum(axis=0)[:, None]
    return graph, (graph.outputs * mask[..., None]).sum(axis=0) / n, mask


def embed_backward(graph: rnnbp.TimeGraph, mask: np.ndarray, demb: np.ndarray) -> None:
    """Backpropagate ``dL/d(embedding)`` ``(N, E)`` through the mean pooling and the graph into the model's grads."""
    n = mask.sum(axis=0)[:, None]
    dys = (mask[..., None] * (demb / n)[None]).astype(graph.outputs.dtype)   # e = sum_t m_t y_t / n
    graph.backward(dys)


def _embed_all(model: rnnbp.Layer, views: dict[str, list[list[np.ndarray]]], chunk: int = 128):
    """Embeddings of every genuine and skilled sample of a part, as {(kind, writer, sample): vector}."""
    keys = [(kind, i, k) for kind, rows in views.items() for i, row in enumerate(rows) for k in range(len(row))]
    out = {}
    for a in range(0, len(keys), chunk):
        part = keys[a:a + chunk]
        _, e, _ = embed_forward(model, [views[k][i][j] for k, i, j in part])
        out.update({key: e[r].astype(np.float64) for r, key in enumerate(part)})
    return out


def _embedding_scores(model: rnnbp.Layer, views) -> dict[str, list[float]]:
    emb = _embed_all(model, views)
    return _scores_from_distance(len(views["genuine"]), lambda a, b: float(np.linalg.norm(emb[a] - emb[b])))


def train_trial(family: str, point: dict[str, Any], cfg: dict[str, Any], data_seed: int, seed: int) -> dict[str, Any]:
    """Train one family at one grid point on the training writers; scores on validation and test writers."""
    t_start = time.perf_counter()
    cfg_json = json.dumps(cfg, sort_keys=True)
    view = FAMILIES[family][0]
    train = _views(data_seed, cfg_json, "train", view)
    val = _views(data_seed, cfg_json, "val", view)
    test = _views(data_seed, cfg_json, "test", view)
    data_seconds = time.perf_counter() - t_start
    model = build(family, point, cfg, seed)
    opt = rnnbp.optim.Adam(model, lr=point["lr"])
    rng = np.random.default_rng([seed, 1])
    budget = Budget(**cfg["budget"])
    tracker = BudgetTracker(budget, higher_is_better=False)
    W, B = len(train["genuine"]), cfg["batch"]
    best = {k: v.copy() for k, v in model.params.items()}
    losses, val_curve = [], []
    while True:
        total = 0.0
        for _ in range(cfg["batches_per_epoch"]):
            w = rng.integers(W, size=B)
            pair = np.array([rng.choice(GENUINE_PER_WRITER, size=2, replace=False) for _ in range(B)])
            skilled = rng.random(B) < 0.5
            other = (w + rng.integers(1, W, size=B)) % W
            items = ([train["genuine"][w[b]][pair[b, 0]] for b in range(B)]
                     + [train["genuine"][w[b]][pair[b, 1]] for b in range(B)]
                     + [train["skilled"][w[b]][rng.integers(N_SKILLED)] if skilled[b]
                        else train["genuine"][other[b]][rng.integers(GENUINE_PER_WRITER)] for b in range(B)])
            graph, emb, mask = embed_forward(model, items)
            value, (da, dp, dn) = triplet_loss(emb[:B], emb[B:2 * B], emb[2 * B:])
            model.zero_grad()
            embed_backward(graph, mask, np.concatenate([da, dp, dn]))
            rnnbp.clip_grad_norm(model, cfg["clip"])
            opt.step()
            total += value
        losses.append(total / cfg["batches_per_epoch"])
        v = _eers(_embedding_scores(model, val))
        score = (v["skilled"] + v["random"]) / 2
        val_curve.append(v)
        if not np.isfinite(losses[-1]):
            score = 1.0
        if tracker.improved(score):
            best = {k: p.copy() for k, p in model.params.items()}
        if not tracker.update(score):
            break
    for k, p in model.params.items():
        p[...] = best[k]
    val_scores = _embedding_scores(model, val)
    test_scores = _embedding_scores(model, test)
    v, t = _eers(val_scores), _eers(test_scores)
    return {"family": family, "point": point, "parameters": model.num_params,
            "validation": (v["skilled"] + v["random"]) / 2, "val_eer": v, "test_eer": t,
            "test_scores": test_scores, "train_loss": losses, "val_eer_per_epoch": val_curve,
            "used": tracker.used(), "data_seconds": round(data_seconds, 2),
            "seconds": round(time.perf_counter() - t_start, 2)}


# -- anchors: DTW and trivial features ------------------------------------------------------
def _dtw_features(sig: Signature, step: int) -> np.ndarray:
    f = encoder_features(sig, step)[:, [0, 1, 4, 5]]
    return (f - f.mean(axis=0)) / np.maximum(f.std(axis=0), 1e-9)


def dtw_trial(cfg: dict[str, Any], data_seed: int, part: str, writers: list[int]) -> dict[str, Any]:
    """DTW scores of the questions of the given writers (indices into ``part``)."""
    t0 = time.perf_counter()
    sigs = _signatures(data_seed, json.dumps(cfg, sort_keys=True), part)
    feats = {kind: [[_dtw_features(s, cfg["step"]) for s in row] for row in rows] for kind, rows in sigs.items()}
    band = cfg["dtw"]["band"]
    n = len(sigs["genuine"])
    scores = _scores_from_distance(n, lambda a, b: dtw(feats[a[0]][a[1]][a[2]], feats[b[0]][b[1]][b[2]], band)
                                   if a[1] in writers or b[1] in writers else 0.0)
    keep = {k: [] for k in scores}
    per = {"genuine": N_GENUINE_TEST, "skilled": N_SKILLED, "random": N_RANDOM}
    for k, v in scores.items():       # only the given writers' questions (the others were skipped)
        for i in writers:
            keep[k] += v[i * per[k]:(i + 1) * per[k]]
    return {"writers": writers, "scores": keep, "seconds": round(time.perf_counter() - t0, 2)}


TRIVIAL = ("duration", "points", "pen_ups", "mean_speed")
#: The least within-writer spread of each trivial feature: 2 % for the logs of duration, points and
#: speed, one pen-up for the count (a writer never changes it, and a zero spread would let one
#: pen-up of difference swamp the other three features).
TRIVIAL_FLOOR = np.array([0.02, 0.02, 1.0, 0.02])


def _trivial_features(sig: Signature) -> np.ndarray:
    return np.array([np.log(sig.duration), np.log(sig.num_points), sig.num_pen_ups, np.log(sig.mean_speed)])


def trivial_scores(cfg: dict[str, Any], data_seed: int) -> dict[str, Any]:
    """EERs of the trivial features, alone and together, each scaled by its within-writer spread on training writers.

    The spread is the root-mean-square over training writers of each
    writer's standard deviation, at least :data:`TRIVIAL_FLOOR`.
    """
    cfg_json = json.dumps(cfg, sort_keys=True)
    train = _signatures(data_seed, cfg_json, "train")
    within = np.array([np.std([_trivial_features(s) for s in row], axis=0) for row in train["genuine"]])
    spread = np.maximum(np.sqrt(np.mean(within ** 2, axis=0)), TRIVIAL_FLOOR)
    test = _signatures(data_seed, cfg_json, "test")
    f = {kind: [[_trivial_features(s) / spread for s in row] for row in rows] for kind, rows in test.items()}
    n = len(test["genuine"])
    out = {}
    for name, cols in [("all four", [0, 1, 2, 3])] + [(t, [i]) for i, t in enumerate(TRIVIAL)]:
        scores = _scores_from_distance(n, lambda a, b: float(np.linalg.norm(
            f[a[0]][a[1]][a[2]][cols] - f[b[0]][b[1]][b[2]][cols])) + 1e-9)
        out[name] = {"test_eer": _eers(scores), "test_scores": scores}
    return {"features": list(TRIVIAL), "within_writer_spread": spread.tolist(), "results": out}


# -- the experiment ---------------------------------------------------------------------------
def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    trials = []
    for f, (family, axes) in enumerate(cfg["grids"].items()):
        for p, point in enumerate(grid(**axes)):
            trials.append(Trial(f"{family}/{json.dumps(point, sort_keys=True)}", train_trial,
                                {"family": family, "point": point, "cfg": cfg, "data_seed": seed,
                                 "seed": seed * 1000 + 100 * f + 10 * p + 1}))
    chunks = np.array_split(np.arange(cfg["n_test"]), cfg["dtw"]["chunks"])
    for c, idx in enumerate(chunks):
        trials.append(Trial(f"DTW/test/{c}", dtw_trial, {"cfg": cfg, "data_seed": seed, "part": "test",
                                                          "writers": [int(i) for i in idx]}))
    return trials


def _collect(cfg: dict[str, Any], trials: list[Trial], done: list[Any]) -> dict[str, Any]:
    by_family: dict[str, list[dict[str, Any]]] = {f: [] for f in cfg["grids"]}
    dtw_parts = []
    for t, r in zip(trials, done):
        if t.fn is train_trial:
            by_family[r["family"]].append(r)
        else:
            dtw_parts.append(r)
    dtw_scores: dict[str, list[float]] = {"genuine": [], "skilled": [], "random": []}
    for part in dtw_parts:
        for k in dtw_scores:
            dtw_scores[k] += part["scores"][k]
    return {"families": by_family, "dtw": {"test_eer": _eers(dtw_scores), "test_scores": dtw_scores,
                                           "seconds": sum(p["seconds"] for p in dtw_parts)}}


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Every family's grid and DTW through ``sweep``, the trivial features here; figures and the record."""
    from ..signature_figures import write_figures

    cfg = QUICK if quick else FULL
    trials = make_trials(cfg, seed)
    done = (sweep or Sweep()).run(trials, desc="signature verification trials")
    got = _collect(cfg, trials, done)
    trivial = trivial_scores(cfg, seed)
    grids = {family: grid(**axes) for family, axes in cfg["grids"].items()}
    chosen, used, models = {}, {}, {}
    for family, results in got["families"].items():
        best = choose(results, "validation", higher_is_better=False)
        chosen[family] = best["point"]
        used[family] = best["used"]
        models[family] = {k: best[k] for k in ("point", "parameters", "validation", "val_eer", "test_eer",
                                                "train_loss", "val_eer_per_epoch", "used", "seconds")}
        models[family]["grid"] = [{"point": r["point"], "validation": r["validation"], "val_eer": r["val_eer"],
                                   "test_eer": r["test_eer"], "used": r["used"]} for r in results]
        print(f"{family}: chose {best['point']} on validation ({best['validation']:.3f}); test EER skilled "
              f"{best['test_eer']['skilled']:.2%}, random {best['test_eer']['random']:.2%}", flush=True)
    budget = Budget(**cfg["budget"])
    table = {family: models[family]["test_eer"] for family in models}
    table["DTW"] = got["dtw"]["test_eer"]
    table["trivial features"] = trivial["results"]["all four"]["test_eer"]
    print(f"DTW: test EER skilled {table['DTW']['skilled']:.2%}, random {table['DTW']['random']:.2%}", flush=True)
    print(f"trivial features: skilled {table['trivial features']['skilled']:.2%}, "
          f"random {table['trivial features']['random']:.2%}", flush=True)
    best_rec = min(RECURRENT, key=lambda f: models[f]["validation"]) if all(f in models for f in RECURRENT) else None
    best_static = min((f for f in STATIC if f in models), key=lambda f: models[f]["validation"])
    targets = {}
    if best_rec is not None:
        rec = table[best_rec]
        static_best_test = min(table[f]["skilled"] for f in STATIC if f in table)
        targets = {"best_recurrent (chosen on validation)": best_rec,
                   "best_static (chosen on validation)": best_static,
                   "skilled_eer_at_most_3_percent": rec["skilled"] <= 0.03,
                   "at_most_half_of_best_static": rec["skilled"] <= 0.5 * static_best_test,
                   "at_most_half_of_dtw": rec["skilled"] <= 0.5 * table["DTW"]["skilled"],
                   "random_eer_at_most_1_percent": rec["random"] <= 0.01}
    scores = {f: next(r for r in got["families"][f] if r["point"] == chosen[f])["test_scores"] for f in models}
    scores["DTW"] = got["dtw"]["test_scores"]
    scores["trivial features"] = trivial["results"]["all four"]["test_scores"]
    figures = write_figures(out, cfg, seed, scores, table, best_rec or best_static, best_static, TEST_BASE)
    return {"config": {**cfg, "optimizer": "Adam", "loss": "soft-margin triplet",
                       "protocol": {"refs": REFS, "genuine": N_GENUINE_TEST, "skilled": N_SKILLED,
                                    "random": N_RANDOM, "validation_writers_from": VALIDATION_BASE,
                                    "test_writers_from": TEST_BASE},
                       "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
            "eer": table, "models": models, "dtw": {k: v for k, v in got["dtw"].items() if k != "test_scores"},
            "trivial": {"features": trivial["features"], "within_writer_spread": trivial["within_writer_spread"],
                        "test_eer": {k: v["test_eer"] for k, v in trivial["results"].items()}},
            "targets": targets,
            "fairness": fairness_record(grids, budget, chosen, used),
            "figures": figures}
