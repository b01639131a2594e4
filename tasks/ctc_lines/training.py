"""Training a line reader with CTC, and reading lines with it: the one place CTC training lives.

:func:`train_model` is the only function that trains a model of the line
experiments. It calls :func:`rnnbp.train_step` with the library's loss,
``rnnbp.losses.ctc``, and ``target="sequence"`` on labels padded with -1,
with no wrapper: the step that ``rnnbp.fit`` loops. It keeps a loop of its
own for what ``fit`` does not do: minibatches of lines of similar length,
rounds of a fixed number of lines, and early stopping on the validation CER.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import ctc
from rnnbp.metrics import character_error_rate

from ..data.lines import decode
from ..fairness import Budget, BudgetTracker
from .data import SPLITS, LineView, load_data, pen_scale
from .models import build_model

__all__ = ["read_lines", "probe", "probe_line", "train_model"]


def _logits(model: rnnbp.Layer, view: LineView, batch_size: int):
    """Yield ``(ix, logits (T, B, 42), mask)`` over the whole split, length-sorted batches."""
    for ix in view.batches(batch_size):
        xs, _, mask = view.batch(ix)
        yield ix, rnnbp.predict(model, xs, mask), mask


def read_lines(model: rnnbp.Layer, view: LineView, batch_size: int, beam_width: int | None = None) -> list[str]:
    """The decoded text of every line of a split (greedy, or prefix beam search with ``beam_width``)."""
    hyps: list[str] = [""] * len(view)
    for ix, out, mask in _logits(model, view, batch_size):
        labels = (rnnbp.ctc_greedy_decode(out, mask) if beam_width is None
                  else rnnbp.ctc_beam_decode(out, mask, beam_width=beam_width))
        for i, lab in zip(ix, labels):
            hyps[i] = decode(lab)
    return hyps


def probe(model: rnnbp.Layer, view: LineView, line: int) -> dict[str, Any]:
    """One line's CTC outputs (per-class posteriors over the steps) and ``||dL/dh_t||`` per direction."""
    xs, labels, mask = view.batch(np.array([line]))
    graph = rnnbp.unroll(model, xs, mask=mask)
    value, dlogits = ctc(graph.outputs, labels, mask)          # labels padded with -1
    graph.backward(dlogits)
    z = graph.outputs[:, 0].astype(np.float64)
    post = np.exp(z - z.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    return {"line": int(line), "loss": float(value), "posteriors": post.astype(np.float32),
            "state_grad_norms": {k: np.asarray(v, dtype=np.float64) for k, v in graph.state_grad_norms.items()}}


def train_model(spec: dict[str, Any], budget: dict[str, Any], cfg: dict[str, Any], seed: int,
                data_seed: int, search: bool = False) -> dict[str, Any]:
    """Train one model with CTC within ``budget`` and read the validation and test lines. A sweep trial.

    Parameters
    ----------
    spec : dict
        The model (:func:`tasks.ctc_lines.models.build_model`: ``kind``,
        ``view``, ``hidden``, ``layers``, ``window`` for the MLP) and Adam's
        ``lr``; ``beam=True`` also decodes the held-out lines by prefix beam
        search.
    budget : dict
        A :class:`tasks.fairness.Budget` as a dict; an epoch is a round of
        ``cfg["round_lines"]`` training lines.
    cfg : dict
        The experiment's configuration (``data``, ``dtype``, ``batch_size``,
        ``round_lines``, ``clip``, ``lr_final_share``, ``beam_width``).
    seed, data_seed : int
        The model's initialisation and batch order; the rendered lines.
    search : bool, default False
        A grid-search run: return after training, with the validation CER
        and curves only.

    Training: rounds of ``cfg["round_lines"]`` lines in length-bucketed,
    shuffled minibatches (``rnnbp.train_step``: unroll, CTC, BPTT, clip,
    Adam), a cosine schedule over ``budget["max_epochs"]`` rounds, and after
    every round the greedy CER on the validation lines, which a
    :class:`~tasks.fairness.BudgetTracker` uses to stop early; the parameters
    of the best round are kept. Returns the curves, timings, what the run used
    of its budget and the decoded test lines.
    """
    t_start = time.perf_counter()
    budget_ = Budget(**budget)
    dt = np.dtype(cfg["dtype"])
    arrays = load_data(cfg["data"], data_seed)
    scale = pen_scale(arrays)
    k = spec.get("window")
    views = {split: LineView(arrays, split, spec["view"], k, scale, dt) for split in SPLITS}
    train = views["train"]
    D = train.xs.shape[2] * (1 if k is None else 2 * k + 1)
    model = build_model(spec, D, dt, seed)
    opt = rnnbp.optim.Adam(model, lr=spec["lr"])
    schedule = rnnbp.schedules.CosineLR(opt, T_max=budget_.max_epochs, eta_min=spec["lr"] * cfg["lr_final_share"])
    rng = np.random.default_rng([seed, 7])
    B = cfg["batch_size"]
    setup_seconds = time.perf_counter() - t_start

    curve: dict[str, list] = {"lines": [], "seconds": [], "train_loss": [], "val_cer": [], "lr": [],
                              "clipped_share": []}
    tracker = BudgetTracker(budget_, higher_is_better=False)
    best: dict[str, np.ndarray] = {}
    queue: list[np.ndarray] = []
    lines_seen, train_seconds = 0, 0.0
    # the kernels' and the CTC loss's large arrays are reused from step to step (same numbers,
    # bit for bit; a BiLSTM-CTC step about 1.25x faster than with fresh arrays)
    pool = rnnbp.BufferPool()
    while True:
        t0 = time.perf_counter()
        losses, weights, clipped = [], [], 0
        done = 0
        while done < cfg["round_lines"]:
            if not queue:
                queue = train.batches(B, rng)
            ix = queue.pop()
            step = rnnbp.train_step(model, train.batch(ix), ctc, opt, clip=cfg["clip"], target="sequence",
                                    pool=pool)
            losses.append(step.loss)
            weights.append(len(ix))
            clipped += step.clipped
            done += len(ix)
        lines_seen += done
        curve["lr"].append(opt.lr)
        schedule.step()
        train_seconds += time.perf_counter() - t0
        hyps = read_lines(model, views["val"], 2 * B)
        val_cer = character_error_rate(list(views["val"].texts), hyps)
        curve["lines"].append(lines_seen)
        curve["seconds"].append(round(train_seconds, 2))
        curve["train_loss"].append(float(np.average(losses, weights=weights)))
        curve["val_cer"].append(val_cer)
        curve["clipped_share"].append(clipped / len(losses))
        if tracker.improved(val_cer):
            best = {n: p.copy() for n, p in model.params.items()}
        if not tracker.update(val_cer):
            break
    pool.clear()                                # the training steps' memory goes back
    for name, p in model.params.items():        # early stopping: the best validation round
        p[...] = best[name]
    result: dict[str, Any] = {
        "kind": spec["kind"], "view": spec["view"], "window": k, "hidden": spec["hidden"], "lr": spec["lr"],
        "parameters": model.num_params, "lines_seen": lines_seen, "best_round": tracker.best_epoch,
        "val_cer": tracker.best_score, "curve": curve, "used": {**tracker.used(), "seconds": round(train_seconds, 2)},
        "train_seconds": train_seconds, "setup_seconds": setup_seconds}
    if search:                                  # a grid-search run: the validation CER is all it is for
        return result
    t_eval = time.perf_counter()
    result["hyps"] = {split: read_lines(model, views[split], 2 * B) for split in ("seen", "held_out")}
    result["eval_seconds"] = time.perf_counter() - t_eval
    if spec.get("beam"):
        t0 = time.perf_counter()
        result["beam_hyps"] = {"held_out": read_lines(model, views["held_out"], 2 * B, cfg["beam_width"])}
        result["beam_seconds"] = time.perf_counter() - t0
    if spec["view"] == "image":
        result["probe"] = probe(model, views["held_out"], probe_line(arrays, cfg["probe_font"]))
    return result


def probe_line(arrays: dict[str, np.ndarray], font: str) -> int:
    """The held-out line drawn in the figures: the first one in ``font`` of 20 or more characters
    (else the longest line in that font)."""
    fonts, n = arrays["held_out/fonts"], arrays["held_out/label_lengths"]
    ix = np.flatnonzero(fonts == font)
    if not ix.size:
        raise ValueError(f"font: no held-out line is in {font!r}; fonts there: {sorted(set(fonts.tolist()))}")
    long = ix[n[ix] >= 20]
    return int(long[0] if long.size else ix[np.argmax(n[ix])])
