"""Static versus recurrent backprop on OCR-style characters, tested on unseen fonts.

The same rendered digits (``tasks.data.glyphs.ocr_dataset``: matplotlib's fonts,
seeded affine distortion, stroke thickness and noise) are shown to networks
in three views, and every test character is drawn in a font that never
appears in training:

- **image** — static backprop on the whole ``S x S`` picture: an MLP on the
  flattened pixels and a small convolutional net (``Conv2D``/``MaxPool2D``);
- **rows** — the image read top to bottom as a sequence of ``T = S`` rows of
  ``S`` pixels, classified at the last row by Elman, LSTM and GRU nets
  trained by full BPTT;
- **pen** — the glyph outline as an online-handwriting trajectory of
  ``(dx, dy, pen_lift)`` steps, classified at the last step by the same
  recurrent nets.

Besides the held-out-font test set, each model is also scored on fresh
samples of the *training* fonts, so the cost of a new typeface is measured.

A second part shows over- and under-fitting: a large MLP on a small training
set, trained long, without regularisation, with L2 weight decay plus dropout,
and with far too much weight decay; training and test accuracy and loss are
recorded every epoch.

The fairness rule (``tasks.fairness``): every model of the first part
chooses its size (hidden units, or the conv net's channels) and Adam's
learning rate from a grid of the same size (four points) on *validation*
accuracy -- new samples of the training fonts, never the held-out fonts --
and every run gets the same :class:`~tasks.fairness.Budget` (at most
``max_epochs`` epochs, early stopping after ``patience`` epochs without a
better validation loss, the best epoch's weights restored). The record's
``"fairness"`` entry states the grids, the choices, the budget and what each
chosen run used. The held-out-font test set is scored after every epoch only
to draw curves: nothing is selected on it. (The over-fitting part is a
demonstration of regularisation, not a comparison: it passes the test set as
``validation`` to record its curves and stops nothing early.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp import plot
from rnnbp.losses import softmax_cross_entropy

from ..figures import accuracy_curves, confusion_matrix, image_grid
from ..data.glyphs import DIGITS, OCRSet, ocr_dataset, render_glyphs
from ..fairness import Budget, check_grids, choose, fairness_record, grid

SUMMARY = "MLP and conv net on images vs Elman/LSTM/GRU on rows and pen strokes: OCR on held-out fonts"

FULL: dict[str, Any] = {
    "charset": DIGITS,
    "size": 16,
    "pen_steps": 32,
    "n_train": 3000,
    "n_test": 2000,            # from the held-out fonts
    "n_seen": 1000,            # fresh samples of the training fonts
    "n_val": 600,              # validation: more fresh samples of the training fonts (chooses and stops)
    "test_fonts": 4,
    "budget": {"max_epochs": 30, "patience": 5},   # tasks.fairness.Budget: the same for every run
    "batch_size": 64,
    "clip": 5.0,               # global gradient-norm clipping for the recurrent nets
    # the fairness rule: every family's grid has 4 points (its size x Adam's learning rate)
    "grids": {"MLP": {"hidden": [128, 512], "lr": [3e-3, 1e-2]},
              "CNN": {"channels": [[8, 16], [16, 32]], "lr": [3e-3, 1e-2]},
              "recurrent": {"hidden": [64, 128], "lr": [3e-3, 1e-2]}},
    "models": [["MLP", "image"], ["CNN", "image"],
               ["Elman", "rows"], ["LSTM", "rows"], ["GRU", "rows"],
               ["Elman", "pen"], ["LSTM", "pen"], ["GRU", "pen"]],
    "dtype": "float32",
    # over- and under-fitting: a large MLP on a small training set
    "reg": {"n_train": 400, "hidden": 512, "epochs": 100, "batch_size": 32, "lr": 1e-3,
            "variants": {"none": {"weight_decay": 0.0, "dropout": 0.0},
                         "L2": {"weight_decay": 1e-3, "dropout": 0.0},
                         "dropout": {"weight_decay": 0.0, "dropout": 0.5},
                         "L2 + dropout": {"weight_decay": 1e-3, "dropout": 0.5},
                         "too much L2": {"weight_decay": 5e-2, "dropout": 0.0}}},
}

QUICK: dict[str, Any] = {
    **FULL, "pen_steps": 24, "n_train": 600, "n_test": 300, "n_seen": 200, "n_val": 100,
    "budget": {"max_epochs": 2, "patience": 1},
    "grids": {"MLP": {"hidden": [32], "lr": [3e-3, 1e-2]},
              "CNN": {"channels": [[4, 8]], "lr": [3e-3, 1e-2]},
              "recurrent": {"hidden": [8, 16], "lr": [1e-2]}},
    "models": [["MLP", "image"], ["CNN", "image"], ["GRU", "rows"], ["LSTM", "pen"]],
    "reg": {**FULL["reg"], "n_train": 200, "hidden": 64, "epochs": 5},
}


# -- data ----------------------------------------------------------------------
def _view(data: OCRSet, view: str, pen_scale: np.ndarray) -> np.ndarray:
    """The inputs of one view: (N, S*S) images, (S, N, S) rows or (T, N, 3) pen steps."""
    if view == "image":
        return np.ascontiguousarray(data.flat())
    if view == "rows":
        return np.ascontiguousarray(data.rows())
    return np.ascontiguousarray(data.pen * pen_scale)


def family_grid(kind: str, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid of points (size and learning rate) a model of ``kind`` chooses from."""
    axes = cfg["grids"][kind if kind in ("MLP", "CNN") else "recurrent"]
    return grid(**axes)


def _build(kind: str, view: str, point: dict[str, Any], cfg: dict[str, Any], seed: int) -> rnnbp.Sequential:
    S, C, dt = cfg["size"], len(cfg["charset"]), np.dtype(cfg["dtype"])
    if kind == "MLP":
        H = point["hidden"]
        return rnnbp.Sequential(rnnbp.Linear(S * S, H, seed=seed, dtype=dt), rnnbp.ReLU(),
                                rnnbp.Linear(H, C, seed=seed + 1, dtype=dt))
    if kind == "CNN":
        c1, c2 = point["channels"]
        return rnnbp.Sequential(
            rnnbp.Reshape((1, S, S)),
            rnnbp.Conv2D(1, c1, 3, padding=1, seed=seed, dtype=dt), rnnbp.ReLU(), rnnbp.MaxPool2D(2),
            rnnbp.Conv2D(c1, c2, 3, padding=1, seed=seed + 1, dtype=dt), rnnbp.ReLU(), rnnbp.MaxPool2D(2),
            rnnbp.Flatten(), rnnbp.Linear(c2 * (S // 4) ** 2, C, seed=seed + 2, dtype=dt))
    D = S if view == "rows" else 3
    H = point["hidden"]
    cell = {"Elman": rnnbp.Elman, "LSTM": rnnbp.LSTM, "GRU": rnnbp.GRU}[kind](D, H, seed=seed, dtype=dt)
    return rnnbp.Sequential(cell, rnnbp.Linear(H, C, seed=seed + 1, dtype=dt))


def _outputs(model: rnnbp.Layer, xs: np.ndarray) -> np.ndarray:
    """Class scores ``(N, C)``: the only output of static data, the last step of a sequence."""
    out = rnnbp.predict(model, xs)
    return out if xs.ndim == 2 else out[-1]


def _scores(model: rnnbp.Layer, xs: np.ndarray, labels: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(accuracy, cross-entropy, predictions) in evaluation mode."""
    out = _outputs(model, xs)
    loss, _ = softmax_cross_entropy(out, labels)
    pred = np.argmax(out, axis=-1)
    return float(np.mean(pred == labels)), float(loss), pred


# -- figures -----------------------------------------------------------------------
def _accuracy_figure(results: dict[str, Any], test_fonts: tuple, chance: float, path: Path) -> None:
    """Grouped bars: each model's accuracy on seen fonts, on all held-out fonts and per held-out font."""
    from ..figures import Figure

    from ..figures import font_bars

    names = list(results)
    labels = ["seen fonts (new samples)", "held-out fonts (all)"] + [f"held out: {f}" for f in test_fonts]
    values = [[results[n]["seen_font_accuracy"] for n in names], [results[n]["test_accuracy"] for n in names]]
    values += [[results[n]["test_accuracy_by_font"][f] for n in names] for f in test_fonts]
    fig = Figure(figsize=(max(7.0, 1.2 * len(names) + 2), 4.6), layout="constrained")
    ax = fig.add_subplot()
    font_bars(ax, names, values, labels)
    ax.axhline(chance, color="0.3", ls="--", lw=1, label=f"chance {chance:.2g}")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", ncols=2, loc="lower left")
    ax.set_title("Test accuracy by model and view: fonts seen in training vs held-out fonts")
    fig.savefig(path, dpi=110)


def _views_figure(data: OCRSet, n: int, path: Path) -> None:
    """A few characters in the image view (read row by row) and the pen view."""
    from ..figures import Figure

    fig = Figure(figsize=(1.6 * n, 3.4), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(data.images[i], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"'{data.charset[data.labels[i]]}' {data.fonts[i]}", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[1, i]
        pos = np.cumsum(data.pen[:, i, :2], axis=0)
        lift = data.pen[:, i, 2] > 0.5
        start = np.flatnonzero(lift)
        for a, b in zip(start, list(start[1:]) + [len(pos)]):
            ax.plot(pos[a:b, 0], pos[a:b, 1], "-", lw=1, color="C0")
            ax.plot(pos[a, 0], pos[a, 1], "o", ms=2.5, color="C3")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image / rows", fontsize=8)
    axes[1, 0].set_ylabel("pen (dot: stroke start)", fontsize=8)
    fig.suptitle("Two of the three views: the image (MLP, CNN; or T = S rows for BPTT) "
                 "and the pen trajectory", fontsize=9)
    fig.savefig(path, dpi=130)


def _sample_grids(test: OCRSet, pred: np.ndarray, model_name: str, out: Path, n: int) -> list[str]:
    """Grids of correctly and incorrectly classified held-out-font test samples."""
    files = []
    for kind, pick in (("correct", pred == test.labels), ("incorrect", pred != test.labels)):
        idx = np.flatnonzero(pick)[:n]
        if idx.size == 0:
            continue
        cs = test.charset
        fig = image_grid(test.images[idx], labels=[str(f) for f in test.fonts[idx]],
                         titles=[f"{cs[test.labels[i]]} -> {cs[pred[i]]}" for i in idx], ncols=8,
                         title=f"{model_name}: {kind}ly classified test samples "
                               f"(true -> predicted; font below)")
        for ax in fig.axes[:idx.size]:
            ax.title.set_color("C2" if kind == "correct" else "C3")
            ax.xaxis.label.set_fontsize(5)
        name = f"samples_{kind}.png"
        fig.savefig(out / name, dpi=110)
        files.append(name)
    return files


# -- the experiment ------------------------------------------------------------------
def _train_point(kind: str, view: str, point: dict[str, Any], cfg: dict[str, Any], data, val: OCRSet,
                 pen_scale: np.ndarray, seed: int, order_seed: int) -> tuple[rnnbp.Layer, rnnbp.History, dict]:
    """Train one model at one grid point within the budget; early stopping on validation loss.

    The held-out-font test set is scored after every epoch for the curves only.
    """
    budget = Budget(**cfg["budget"])
    train, test = data.train, data.test
    model = _build(kind, view, point, cfg, seed)
    xs, tx = _view(train, view, pen_scale), _view(test, view, pen_scale)
    static = view == "image"
    test_curve: dict[str, list[float]] = {"acc": [], "loss": []}

    def record_test(epoch: int, hist: rnnbp.History) -> None:     # curves only: nothing is chosen on it
        acc, loss, _ = _scores(model, tx, test.labels)
        test_curve["acc"].append(acc)
        test_curve["loss"].append(loss)

    t0 = time.perf_counter()
    hist = rnnbp.fit(model, (xs, train.labels), loss=softmax_cross_entropy,
                     optimizer=rnnbp.optim.Adam(model, lr=point["lr"]), **budget.fit_kwargs(),
                     batch_size=cfg["batch_size"], clip=None if static else cfg["clip"],
                     target="last", metric=rnnbp.accuracy,
                     validation=(_view(val, view, pen_scale), val.labels),
                     callbacks=[record_test], seed=order_seed, progress=False)
    seconds = time.perf_counter() - t0
    val_acc, val_loss, _ = _scores(model, _view(val, view, pen_scale), val.labels)
    used = {"epochs": hist.epochs, "best_epoch": hist.best_epoch,         # 1-based, as in tasks.fairness
            "stopped_by": "patience" if hist.stopped_early else "max_epochs", "seconds": round(seconds, 2)}
    return model, hist, {"point": point, "validation": val_acc, "validation_loss": val_loss,
                         "test_curve": test_curve, "used": used}


def _train_main(cfg: dict[str, Any], data, val: OCRSet, seen: OCRSet, pen_scale: np.ndarray, seed: int
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Every model at every point of its grid; the point with the best validation accuracy is reported."""
    results, histories, preds = {}, {}, {}
    grids = {f"{kind} / {view}": family_grid(kind, cfg) for kind, view in cfg["models"]}
    check_grids(grids)                          # before any training: the same number of points each
    chosen, used, search = {}, {}, {}
    train, test = data.train, data.test
    for i, (kind, view) in enumerate(cfg["models"]):
        name = f"{kind} / {view}"
        runs = [_train_point(kind, view, point, cfg, data, val, pen_scale, seed + 100 * (i + 1), seed + i)
                for point in grids[name]]
        search[name] = [{"point": r[2]["point"], "validation": r[2]["validation"],
                         "validation_loss": r[2]["validation_loss"], **r[2]["used"]} for r in runs]
        model, hist, info = next(r for r in runs if r[2] is choose([r[2] for r in runs], "validation"))
        chosen[name], used[name] = info["point"], info["used"]
        xs, tx = _view(train, view, pen_scale), _view(test, view, pen_scale)
        train_acc, train_loss, _ = _scores(model, xs, train.labels)
        test_acc, test_loss, pred = _scores(model, tx, test.labels)
        seen_acc, _, seen_pred = _scores(model, _view(seen, view, pen_scale), seen.labels)
        seen_by_font = {str(f): float(np.mean(seen_pred[seen.fonts == f] == seen.labels[seen.fonts == f]))
                        for f in data.train_fonts}
        by_font = {str(f): float(np.mean(pred[test.fonts == f] == test.labels[test.fonts == f]))
                   for f in data.test_fonts}
        results[name] = {"model": kind, "view": view, "parameters": model.num_params, **info["point"],
                         "validation_accuracy": info["validation"],
                         "train_accuracy": train_acc, "train_loss": train_loss,
                         "test_accuracy": test_acc, "test_loss": test_loss,
                         "seen_font_accuracy": seen_acc, "test_accuracy_by_font": by_font,
                         "seen_font_accuracy_by_font": seen_by_font,
                         "gap": train_acc - test_acc, "font_gap": seen_acc - test_acc,
                         "epochs": hist.epochs, "best_epoch": info["used"]["best_epoch"],
                         "train_accuracy_per_epoch": hist.metric, "val_accuracy_per_epoch": hist.val_metric,
                         "test_accuracy_per_epoch": info["test_curve"]["acc"],
                         "train_loss_per_epoch": hist.loss, "val_loss_per_epoch": hist.val_loss,
                         "test_loss_per_epoch": info["test_curve"]["loss"],
                         "seconds": info["used"]["seconds"]}
        histories[name] = rnnbp.History(loss=hist.loss, metric=hist.metric, val_loss=info["test_curve"]["loss"],
                                        val_metric=info["test_curve"]["acc"])
        preds[name] = pred
        print(f"{name}: chose {info['point']} (validation {info['validation']:.3f}; grid "
              + ", ".join(f"{s['validation']:.3f}" for s in search[name])
              + f"), {hist.epochs} epochs (best {info['used']['best_epoch']}): train {train_acc:.3f}, "
              f"seen fonts {seen_acc:.3f}, held-out fonts {test_acc:.3f}", flush=True)
    fairness = fairness_record(grids, Budget(**cfg["budget"]), chosen, used)
    fairness["choice"] = "validation accuracy (new samples of the training fonts), one point per model"
    fairness["search"] = search
    return results, histories, preds, fairness


def _train_regularisation(cfg: dict[str, Any], data, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A large MLP on a small training set, with and without regularisation."""
    rc = cfg["reg"]
    S, C, dt = cfg["size"], len(cfg["charset"]), np.dtype(cfg["dtype"])
    n = rc["n_train"]
    xs, ys = np.ascontiguousarray(data.train.flat()[:n]), data.train.labels[:n]
    vx, vy = np.ascontiguousarray(data.test.flat()), data.test.labels
    results, histories = {}, {}
    for j, (label, v) in enumerate(rc["variants"].items()):
        H, p = rc["hidden"], v["dropout"]
        layers: list[rnnbp.Layer] = [rnnbp.Linear(S * S, H, seed=seed + 7, dtype=dt), rnnbp.ReLU()]
        if p:
            layers.append(rnnbp.Dropout(p))
        layers += [rnnbp.Linear(H, H, seed=seed + 8, dtype=dt), rnnbp.ReLU()]
        if p:
            layers.append(rnnbp.Dropout(p))
        layers.append(rnnbp.Linear(H, C, seed=seed + 9, dtype=dt))
        model = rnnbp.Sequential(*layers)   # same initial weights for every variant
        clean: dict[str, list[float]] = {"acc": [], "loss": []}

        def record_train(epoch: int, hist: rnnbp.History, model=model, clean=clean) -> None:
            acc, loss, _ = _scores(model, xs, ys)    # evaluation mode: no dropout
            clean["acc"].append(acc)
            clean["loss"].append(loss)

        t0 = time.perf_counter()
        hist = rnnbp.fit(model, (xs, ys), loss=softmax_cross_entropy,
                         optimizer=rnnbp.optim.Adam(model, lr=rc["lr"], weight_decay=v["weight_decay"]),
                         epochs=rc["epochs"], batch_size=rc["batch_size"], metric=rnnbp.accuracy,
                         validation=(vx, vy), callbacks=[record_train], seed=seed + 50 + j, progress=True)
        seconds = time.perf_counter() - t0
        best = int(np.argmax(hist.val_metric))
        results[label] = {
            **v, "parameters": model.num_params,
            "train_accuracy": clean["acc"][-1], "test_accuracy": hist.val_metric[-1],
            "gap": clean["acc"][-1] - hist.val_metric[-1],
            "train_loss": clean["loss"][-1], "test_loss": hist.val_loss[-1],
            "min_test_loss": float(min(hist.val_loss)), "min_test_loss_epoch": int(np.argmin(hist.val_loss)) + 1,
            "best_test_accuracy": hist.val_metric[best], "best_test_accuracy_epoch": best + 1,
            "train_accuracy_per_epoch": clean["acc"], "test_accuracy_per_epoch": hist.val_metric,
            "train_loss_per_epoch": clean["loss"], "test_loss_per_epoch": hist.val_loss,
            "seconds": round(seconds, 2)}
        # curves in evaluation mode on both sets, so the gap is not blurred by dropout noise
        histories[label] = rnnbp.History(loss=clean["loss"], metric=clean["acc"],
                                         val_loss=hist.val_loss, val_metric=hist.val_metric)
        r = results[label]
        print(f"regularisation '{label}': train {r['train_accuracy']:.3f}, test {r['test_accuracy']:.3f}, "
              f"gap {r['gap']:.3f}, test loss {r['test_loss']:.3f} (min {r['min_test_loss']:.3f} "
              f"at epoch {r['min_test_loss_epoch']})", flush=True)
    return results, histories


def run(quick: bool, seed: int, out: Path) -> dict[str, Any]:
    """Train every model on its view, the regularisation variants, write the figures; return metrics."""
    cfg = QUICK if quick else FULL
    dt = np.dtype(cfg["dtype"])
    t_data = time.perf_counter()
    data = ocr_dataset(cfg["n_train"], cfg["n_test"], size=cfg["size"], charset=cfg["charset"],
                       test_fonts=cfg["test_fonts"], pen_steps=cfg["pen_steps"], seed=seed, dtype=dt)
    seen = render_glyphs(cfg["n_seen"], fonts=data.train_fonts, charset=cfg["charset"], size=cfg["size"],
                         pen_steps=cfg["pen_steps"], seed=np.random.default_rng([seed, 1]), dtype=dt)
    val = render_glyphs(cfg["n_val"], fonts=data.train_fonts, charset=cfg["charset"], size=cfg["size"],
                        pen_steps=cfg["pen_steps"], seed=np.random.default_rng([seed, 2]), dtype=dt)
    # pen steps are a few hundredths of the image side: scale (dx, dy) to unit spread on the training set
    spread = data.train.pen[..., :2].std(axis=(0, 1))
    pen_scale = np.array([1 / spread[0], 1 / spread[1], 1.0], dtype=dt)
    data_seconds = time.perf_counter() - t_data
    chance = 1.0 / len(cfg["charset"])
    print(f"held-out test fonts: {', '.join(data.test_fonts)}", flush=True)

    results, histories, preds, fairness = _train_main(cfg, data, val, seen, pen_scale, seed)
    reg_results, reg_histories = _train_regularisation(cfg, data, seed)

    figures = ["accuracy.png", "curves.png", "views.png"]
    _accuracy_figure(results, data.test_fonts, chance, out / "accuracy.png")
    fig = accuracy_curves(histories, chance=chance, val_label="test",
                          title="Accuracy per epoch (train: during the epoch; test: held-out fonts)")
    fig.set_size_inches(8.0, 5.0)
    fig.axes[0].set_ylim(0.0, 1.01)
    fig.axes[0].legend(fontsize="x-small", ncols=2, loc="lower right")
    fig.savefig(out / "curves.png", dpi=110)
    _views_figure(data.train, 8, out / "views.png")
    best = {}
    for view in ("image", "rows", "pen"):
        in_view = [n for n in results if results[n]["view"] == view]
        if not in_view:
            continue
        name = max(in_view, key=lambda n: results[n]["test_accuracy"])
        best[view] = name
        fig = confusion_matrix(data.test.labels, preds[name], class_names=cfg["charset"],
                               title=f"{name}: held-out fonts, accuracy {results[name]['test_accuracy']:.3f}")
        fig.savefig(out / f"confusion_{view}.png", dpi=110)
        figures.append(f"confusion_{view}.png")
    best_overall = max(results, key=lambda n: results[n]["test_accuracy"])
    figures += _sample_grids(data.test, preds[best_overall], best_overall, out, 24 if not quick else 8)
    rc = cfg["reg"]
    title = f"MLP {rc['hidden']}-{rc['hidden']}, {rc['n_train']} training samples"
    for what, fig in (("accuracy", accuracy_curves(reg_histories, chance=chance, val_label="test",
                                                   title=f"{title}: accuracy")),
                      ("loss", plot.training_curves(reg_histories, log=False, title=f"{title}: cross-entropy"))):
        fig.set_size_inches(7.5, 5.0)
        for line in fig.axes[0].lines:    # the validation data here is the held-out-font test set
            line.set_label(line.get_label().replace("(validation)", "(test)"))
        fig.axes[0].legend(fontsize="x-small", ncols=2)
        fig.savefig(out / f"regularisation_{what}.png", dpi=110)
    figures += ["regularisation_accuracy.png", "regularisation_loss.png"]

    return {"config": {**cfg, "models": [" / ".join(m) for m in cfg["models"]],
                       "optimizer": "Adam (learning rate from each model's grid)", "pen_scale": pen_scale,
                       "seen_fonts_seed": [seed, 1], "validation_seed": [seed, 2],
                       "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
            "train_fonts": list(data.train_fonts), "test_fonts": list(data.test_fonts),
            "chance": chance, "data_seconds": round(data_seconds, 2), "fairness": fairness,
            "models": results, "best_per_view": best, "best_overall": best_overall,
            "regularisation": reg_results, "figures": figures}
