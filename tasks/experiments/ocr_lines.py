"""Static versus recurrent backprop on whole text lines: CTC, held-out fonts, images and pen strokes.

The glyph experiment (``static-vs-recurrent-ocr``) hands every network one
segmented character. Here the networks read a whole **line** whose
characters are not segmented (``tasks.data.lines.make_lines``: words from a fixed
word list, 8-40 characters, rendered from matplotlib's fonts with per-line
distortions, baseline jitter, ink thickness and noise). Every model emits, at
every time step, scores over the 41 symbols and the CTC blank, and every
model is trained with the same loss, connectionist temporal classification
(``rnnbp.losses.ctc``; Graves et al. 2006), which sums over every alignment
of the label to the steps, so nobody tells a network where a character sits.

Two views of the same lines:

- **image** -- the line as columns ``(T = width, B, 24)``, read left to right
  (``x_scale = 0.5``: about 4.9 columns per character);
- **pen** -- the same line as an online-handwriting trajectory of
  ``(dx, dy, pen_up)`` steps (the glyph outlines, about 8 points per
  character, joined from left to right).

Models (float32, one BLAS thread per worker, Adam, gradient-norm clipping, a
cosine learning-rate schedule, early stopping on validation CER):

- **static**: a time-delay MLP. Each step sees a fixed window of ``2k + 1``
  neighbouring steps, stacked as features (:func:`window_features`), and one
  ``Linear -> ReLU -> Linear`` maps them to the 42 scores; static backprop
  through a per-step network (``rnnbp.unroll`` of static layers). The window
  half-width ``k`` is chosen among a few values **on validation lines**: short
  runs of every window from two initialisations each (a short CTC run can stay
  on the all-blank plateau), then the best window and initialisation trained
  with the same budget as the recurrent nets (a fair baseline, not a straw man);
- **recurrent**: an LSTM and a GRU reading left to right (one direction),
  a one-layer bidirectional LSTM 2x64 (``rnnbp.Bidirectional``) with their
  parameter count and budget, and the main bidirectional model, two stacked
  bidirectional layers of 2x64 trained for longer; all trained by full BPTT.

Data: training lines in the 17 ``TRAIN_FONTS``, drawn with wider distortions
than the test lines (``"train_distortion"``: slant, stroke thickness, width;
the same for every model); validation on new lines of
the training fonts (used for the window choice and early stopping only);
test on new lines of the training fonts (*seen*) and on lines of the four
``HELD_OUT_FONTS`` (``cmti10``, ``STIXGeneralItalic``, ``cmss10``,
``cmtt10``), fixed in ``tasks.data.lines`` before any training. Decoding is greedy
(best path); prefix beam search is also reported for the bidirectional LSTM.

Every trial returns its decoded test lines; the scores (CER and WER per font,
by line length, the confusions of ambiguous letters) are computed here from
them, in the main process.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import ctc
from rnnbp.metrics import character_error_rate, word_error_rate

from ..data.lines import ALPHABET, HELD_OUT_FONTS, NUM_CLASSES, TRAIN_FONTS, LineDistortion, decode, make_lines
from ..sweep import Sweep, Trial

SUMMARY = ("Time-delay MLP vs LSTM, GRU and bidirectional LSTM, all CTC, reading whole text lines "
           "(images and pen strokes); CER/WER on held-out fonts")

#: The anchor of issue 11: PyTorch on similar synthetic lines (24 px, 41
#: characters + blank, 20,000 training lines from 17 matplotlib fonts, 4
#: held-out fonts, 9.5 minutes of training per model, greedy decoding).
ANCHOR = {
    "source": "issue 11, measured with PyTorch on this kind of machine",
    "setup": "24 px lines, 41 characters + blank, 20,000 training lines from 17 fonts, 4 held-out fonts, "
             "9.5 minutes of training per model, greedy decoding",
    "models": {
        "BiLSTM 2x64": {"seen_cer": 0.0079, "held_out_cer": 0.0378,
                        "note": "1.75% without cmti10, which held two thirds of the errors"},
        "LSTM 2x106 (one direction)": {"seen_cer": 0.071, "held_out_cer": 0.113,
                                        "note": "output only blanks for its first 4 minutes"},
        "static MLP +-5 columns": {"seen_cer": 0.014, "held_out_cer": 0.058},
    },
}

FULL: dict[str, Any] = {
    "data": {"height": 24, "x_scale": 0.5, "pen_spacing": 0.5, "chars": [8, 40],
             "n_train": 30_000, "n_val": 600, "n_test": 1000, "shard": 2000,
             # wider distortions for the training lines only (every model's, both views): slants up
             # to 0.4 (true italics lean ~0.25), thinner and bolder strokes, +-30% width. Chosen
             # on a leave-fonts-out check among the training faces (the four DejaVu Sans Mono faces
             # and STIX bold italic left out: their CER fell from 6.1% to 4.2%, validation CER
             # 0.66% -> 0.48%), never on the held-out faces; validation and test lines keep the
             # default LineDistortion().
             "train_distortion": {"shear": 0.4, "thickness": [-0.4, 0.9], "aspect": 0.3}},
    "batch_size": 32,
    "round_lines": 6000,        # training lines between two validations (one learning-curve point)
    "clip": 5.0,
    "lr_final_share": 0.05,       # the cosine schedule ends at this share of the initial rate
    "dtype": "float32",
    # the static window half-widths k tried per view, each in short runs from `search_starts`
    # initialisations (a short CTC run can stay on the all-blank plateau); the window and
    # initialisation with the lowest validation CER are then trained with the full budget
    "windows": {"image": [2, 4, 7], "pen": [4, 8, 14]},
    "search_rounds": {"image": 4, "pen": 4},
    "search_starts": 2,
    "models": {
        # name: kind, view, hidden units (per direction), Adam's learning rate, rounds of
        # `round_lines` lines, and for the bidirectional LSTM the stacked `layers` (default 1).
        # The one-direction nets have about the one-layer BiLSTM 2x64's parameters.
        "MLP / image": {"kind": "mlp", "view": "image", "hidden": 256, "lr": 1e-2, "rounds": 24},
        "LSTM / image": {"kind": "lstm", "view": "image", "hidden": 96, "lr": 1e-2, "rounds": 24},
        "GRU / image": {"kind": "gru", "view": "image", "hidden": 112, "lr": 1e-2, "rounds": 24},
        # the main bidirectional model: two stacked layers of 2x64 (the anchor's architecture),
        # trained for the time one worker has while the other trains the rest of the first stage
        "BiLSTM / image": {"kind": "bilstm", "view": "image", "hidden": 64, "layers": 2, "lr": 1e-2,
                           "rounds": 60, "beam": True},
        # one layer of 2x64: the one-direction nets' parameters and budget, for a matched comparison
        "BiLSTM 1 layer / image": {"kind": "bilstm", "view": "image", "hidden": 64, "lr": 1e-2, "rounds": 24},
        "MLP / pen": {"kind": "mlp", "view": "pen", "hidden": 256, "lr": 1e-2, "rounds": 12},
        "BiLSTM / pen": {"kind": "bilstm", "view": "pen", "hidden": 64, "lr": 1e-2, "rounds": 12},
    },
    # recurrent models trained after the window search, beside the static models, so that the
    # two workers finish each stage at about the same time
    "second_stage": ["BiLSTM / pen"],
    "beam_width": 8,              # prefix beam search for models with "beam", on the held-out fonts
    "length_buckets": [[8, 15], [16, 23], [24, 31], [32, 40]],
    "probe_font": "cmti10",       # the line whose CTC outputs and gradient norms are drawn
}

QUICK: dict[str, Any] = {
    **FULL,
    "data": {**FULL["data"], "n_train": 160, "n_val": 40, "n_test": 48, "chars": [8, 16], "shard": 200},
    "batch_size": 16, "round_lines": 160, "beam_width": 2,
    "windows": {"image": [1, 3], "pen": [2]}, "search_rounds": {"image": 1, "pen": 1}, "search_starts": 2,
    "models": {name: {**m, "hidden": {"bilstm": 8}.get(m["kind"], 12),
                      "rounds": 2}
               for name, m in FULL["models"].items()},
    "length_buckets": [[8, 11], [12, 16]],
}


# -- data ------------------------------------------------------------------------
SPLITS = ("train", "val", "seen", "held_out")


def _split_spec(split: str, data: dict[str, Any], seed: int) -> tuple[int, tuple, int]:
    """(lines, fonts, seed) of a split: every split has its own stream of lines."""
    n = {"train": data["n_train"], "val": data["n_val"], "seen": data["n_test"],
         "held_out": data["n_test"]}[split]
    fonts = HELD_OUT_FONTS if split == "held_out" else TRAIN_FONTS
    return n, fonts, 1000 * seed + SPLITS.index(split)


def make_data(data: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Render every split, in shards (``start=``), as flat arrays keyed ``"split/field"``.

    Images and pen steps are stored padded ``(T, N, D)`` with their lengths;
    labels ``(N, L_max)`` padded with 0; texts and fonts as string arrays.
    """
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        n, fonts, s = _split_spec(split, data, seed)
        distortion = None
        if split == "train" and data.get("train_distortion"):
            distortion = LineDistortion(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in data["train_distortion"].items()})
        parts = [make_lines(min(data["shard"], n - lo), fonts=fonts, seed=s, start=lo,
                            height=data["height"], chars=tuple(data["chars"]), x_scale=data["x_scale"],
                            pen_spacing=data["pen_spacing"], distortion=distortion)
                 for lo in range(0, n, data["shard"])]
        for field, lengths in (("images", "image_lengths"), ("pen", "pen_lengths")):
            T = max(getattr(p, field).shape[0] for p in parts)
            steps = np.concatenate(
                [np.pad(getattr(p, field), ((0, T - getattr(p, field).shape[0]), (0, 0), (0, 0)))
                 for p in parts], axis=1)
            if field == "images":   # ink in [0, 1] as bytes: a quarter of the memory, error <= 1/510
                steps = np.round(steps * 255).astype(np.uint8)
            arrays[f"{split}/{field}"] = steps
            arrays[f"{split}/{lengths}"] = np.concatenate([getattr(p, lengths) for p in parts])
        L = max(p.labels.shape[1] for p in parts)
        arrays[f"{split}/labels"] = np.concatenate(
            [np.pad(p.labels, ((0, 0), (0, L - p.labels.shape[1]))) for p in parts])
        arrays[f"{split}/label_lengths"] = np.concatenate([p.label_lengths for p in parts])
        arrays[f"{split}/texts"] = np.array([t for p in parts for t in p.texts], dtype=str)
        arrays[f"{split}/fonts"] = np.concatenate([p.fonts for p in parts]).astype(str)
    return arrays


def cache_path(data: dict[str, Any], seed: int) -> Path:
    """Where :func:`run` leaves the rendered splits for its workers: the temporary directory,
    named by a digest of ``(data, seed)``."""
    digest = hashlib.sha1(json.dumps([data, seed], sort_keys=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rnnbp-ocr-lines-{digest}.npz"


def load_data(data: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """The rendered splits: from :func:`cache_path` if :func:`run` wrote it, else rendered anew.

    The cache only saves time: the lines depend on ``(data, seed)`` alone, so
    a worker without the file (on another machine, or after the run removed
    it) renders the same arrays.
    """
    try:
        with np.load(cache_path(data, seed)) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return make_data(data, seed)


def pen_scale(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Scale of the pen features: ``(dx, dy)`` to unit standard deviation over the training steps."""
    pen, n = arrays["train/pen"], arrays["train/pen_lengths"]
    valid = np.arange(pen.shape[0])[:, None] < n[None, :]
    std = pen[valid][:, :2].astype(np.float64).std(axis=0)
    return np.array([1 / std[0], 1 / std[1], 1.0], dtype=np.float32)


def window_features(xs: np.ndarray, k: int) -> np.ndarray:
    """Stack each step with its ``k`` neighbours on either side: ``(T, B, D) -> (T, B, (2k+1) D)``.

    Steps before the start are zeros, as are those after the end (the
    padding of a shorter sequence is zeros too): feature block ``j`` of step
    ``t`` is ``xs[t + j - k]``.

    Examples
    --------
    >>> import numpy as np
    >>> window_features(np.arange(3.0).reshape(3, 1, 1), 1)[:, 0]
    array([[0., 0., 1.],
           [0., 1., 2.],
           [1., 2., 0.]])
    """
    T = xs.shape[0]
    padded = np.concatenate([np.zeros((k,) + xs.shape[1:], xs.dtype), xs,
                             np.zeros((k,) + xs.shape[1:], xs.dtype)])
    return np.concatenate([padded[j:j + T] for j in range(2 * k + 1)], axis=2)


class _View:
    """Minibatches of one split in one view: inputs (windowed for a static model), mask, labels."""

    def __init__(self, arrays: dict[str, np.ndarray], split: str, view: str, window: int | None,
                 scale: np.ndarray, dtype: np.dtype) -> None:
        field, lengths = ("images", "image_lengths") if view == "image" else ("pen", "pen_lengths")
        self.xs, self.lengths = arrays[f"{split}/{field}"], arrays[f"{split}/{lengths}"]
        self.labels, self.label_lengths = arrays[f"{split}/labels"], arrays[f"{split}/label_lengths"]
        self.texts, self.fonts = arrays[f"{split}/texts"], arrays[f"{split}/fonts"]
        self.window, self.dtype = window, dtype
        self.scale = scale if view == "pen" else np.asarray(1 / 255, dtype=dtype)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xs (T, B, D'), labels (B, L) padded with -1, mask (T, B))`` for lines ``ix``."""
        T = int(self.lengths[ix].max())
        xs = self.xs[:T, ix].astype(self.dtype)
        xs *= self.scale
        if self.window is not None:
            xs = window_features(xs, self.window)
        L = int(self.label_lengths[ix].max())
        labels = np.where(np.arange(L)[None, :] < self.label_lengths[ix, None], self.labels[ix, :L], -1)
        mask = np.arange(T)[:, None] < self.lengths[ix][None, :]
        return np.ascontiguousarray(xs), labels, mask

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """Index arrays of lines of similar length (less padding); shuffled with ``rng``.

        With ``rng``, lines are sorted by length plus a random jitter of up to
        a tenth of the longest, so batches change from epoch to epoch, and the
        batch order is shuffled.
        """
        key = self.lengths.astype(np.float64)
        if rng is not None:
            key = key + rng.uniform(0, 0.1 * key.max(), key.size)
        order = np.argsort(key, kind="stable")
        out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if rng is not None:
            out = [out[i] for i in rng.permutation(len(out))]
        return out


# -- models ---------------------------------------------------------------------------
def build_model(spec: dict[str, Any], input_size: int, dtype: np.dtype, seed: int) -> rnnbp.Sequential:
    """The model of ``spec`` over ``input_size`` features (already windowed for the MLP)."""
    H, C = spec["hidden"], NUM_CLASSES
    if spec["kind"] == "mlp":
        return rnnbp.Sequential(rnnbp.Linear(input_size, H, seed=seed, dtype=dtype), rnnbp.ReLU(),
                                rnnbp.Linear(H, C, seed=seed + 1, dtype=dtype))
    if spec["kind"] == "bilstm":
        # ``layers`` stacked bidirectional LSTMs, each reading the previous one's two directions
        # (the first layer's seeds are those of the one-layer model)
        stack, D = [], input_size
        for layer in range(spec.get("layers", 1)):
            s = seed + 10 * layer
            stack.append(rnnbp.Bidirectional(rnnbp.LSTM(D, H, seed=s, dtype=dtype), seed=s + 2))
            D = 2 * H
        return rnnbp.Sequential(*stack, rnnbp.Linear(D, C, seed=seed + 1, dtype=dtype))
    cell = {"lstm": rnnbp.LSTM, "gru": rnnbp.GRU}[spec["kind"]](input_size, H, seed=seed, dtype=dtype)
    return rnnbp.Sequential(cell, rnnbp.Linear(H, C, seed=seed + 1, dtype=dtype))


def _logits(model: rnnbp.Layer, view: _View, batch_size: int):
    """Yield ``(ix, logits (T, B, 42), mask)`` over the whole split, length-sorted batches."""
    for ix in view.batches(batch_size):
        xs, _, mask = view.batch(ix)
        yield ix, rnnbp.predict(model, xs, mask), mask


def read_lines(model: rnnbp.Layer, view: _View, batch_size: int, beam_width: int | None = None) -> list[str]:
    """The decoded text of every line of a split (greedy, or prefix beam search with ``beam_width``)."""
    hyps: list[str] = [""] * len(view)
    for ix, out, mask in _logits(model, view, batch_size):
        labels = (rnnbp.ctc_greedy_decode(out, mask) if beam_width is None
                  else rnnbp.ctc_beam_decode(out, mask, beam_width=beam_width))
        for i, lab in zip(ix, labels):
            hyps[i] = decode(lab)
    return hyps


def _probe(model: rnnbp.Layer, view: _View, line: int) -> dict[str, Any]:
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


def train_model(spec: dict[str, Any], cfg: dict[str, Any], seed: int, data_seed: int) -> dict[str, Any]:
    """Train one model with CTC and read the validation and test lines. A sweep trial.

    Training: ``spec["rounds"]`` rounds of ``cfg["round_lines"]`` lines in
    length-bucketed, shuffled minibatches (``rnnbp.train_step``: unroll, CTC,
    BPTT, clip, Adam), a cosine schedule over the rounds, and after every
    round the greedy CER on the validation lines; the parameters of the best
    round are kept (early stopping). Returns the curves, timings and the
    decoded validation and test lines.
    """
    t_start = time.perf_counter()
    dt = np.dtype(cfg["dtype"])
    arrays = load_data(cfg["data"], data_seed)
    scale = pen_scale(arrays)
    k = spec.get("window")
    views = {split: _View(arrays, split, spec["view"], k, scale, dt) for split in SPLITS}
    train = views["train"]
    D = train.xs.shape[2] * (1 if k is None else 2 * k + 1)
    model = build_model(spec, D, dt, seed)
    opt = rnnbp.optim.Adam(model, lr=spec["lr"])
    schedule = rnnbp.schedules.CosineLR(opt, T_max=spec["rounds"], eta_min=spec["lr"] * cfg["lr_final_share"])
    rng = np.random.default_rng([seed, 7])
    B = cfg["batch_size"]
    setup_seconds = time.perf_counter() - t_start

    curve: dict[str, list] = {"lines": [], "seconds": [], "train_loss": [], "val_cer": [], "lr": [],
                              "clipped_share": []}
    best = (np.inf, None, -1)
    queue: list[np.ndarray] = []
    lines_seen, train_seconds = 0, 0.0
    # the kernels' and the CTC loss's large arrays are reused from step to step (same numbers,
    # bit for bit; a BiLSTM-CTC step about 1.25x faster than with fresh arrays)
    pool = rnnbp.BufferPool()
    for r in range(spec["rounds"]):
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
        if val_cer < best[0]:
            best = (val_cer, {n: p.copy() for n, p in model.params.items()}, r)
    pool.clear()                                # the training steps' memory goes back
    for name, p in model.params.items():        # early stopping: the best validation round
        p[...] = best[1][name]
    result: dict[str, Any] = {
        "kind": spec["kind"], "view": spec["view"], "window": k, "hidden": spec["hidden"],
        "parameters": model.num_params, "lines_seen": lines_seen, "best_round": best[2] + 1,
        "val_cer": best[0], "curve": curve, "train_seconds": train_seconds, "setup_seconds": setup_seconds}
    if spec.get("search"):                     # a window-search run: the validation CER is all it is for
        return result
    t_eval = time.perf_counter()
    result["hyps"] = {split: read_lines(model, views[split], 2 * B) for split in ("seen", "held_out")}
    result["eval_seconds"] = time.perf_counter() - t_eval
    if spec.get("beam"):
        t0 = time.perf_counter()
        result["beam_hyps"] = {"held_out": read_lines(model, views["held_out"], 2 * B, cfg["beam_width"])}
        result["beam_seconds"] = time.perf_counter() - t0
    if spec["view"] == "image":
        result["probe"] = _probe(model, views["held_out"], probe_line(arrays, cfg))
    return result


def probe_line(arrays: dict[str, np.ndarray], cfg: dict[str, Any]) -> int:
    """The held-out line drawn in the figures: the first one in ``probe_font`` of 20 or more characters
    (else the longest line in that font)."""
    fonts, n = arrays["held_out/fonts"], arrays["held_out/label_lengths"]
    ix = np.flatnonzero(fonts == cfg["probe_font"])
    long = ix[n[ix] >= 20]
    return int(long[0] if long.size else ix[np.argmax(n[ix])])


# -- scores ---------------------------------------------------------------------------
def align(ref: str, hyp: str) -> list[tuple[str, str]]:
    """A minimum-edit alignment of two strings: pairs ``(r, h)``, ``""`` on the side of a gap.

    Among equally short alignments, substitutions are preferred to a
    deletion plus an insertion, so a misread letter shows as a pair.

    Examples
    --------
    >>> align("corn", "com")
    [('c', 'c'), ('o', 'o'), ('r', ''), ('n', 'm')]
    """
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1)
    pairs, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            pairs.append((ref[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", hyp[j - 1]))
            j -= 1
    return pairs[::-1]


#: Groups of look-alike symbols: how often a reference symbol of the group is
#: misread (substituted or dropped), per group.
AMBIGUOUS = {"m/n/r/u": "mnru", "l/1/i/j/t": "l1ijt", "o/0/c/e": "o0ce", "./,/'": ".,'"}


def confusions(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    """Misreadings of look-alike letters, from minimum-edit alignments of every line with an error.

    Returns the error rate of each :data:`AMBIGUOUS` group (misread
    occurrences / occurrences in the references) beside the rate over all
    other symbols; counts of ``m -> n``, ``n -> m``, ``rn -> m``, ``m -> rn``
    and of substitutions within ``{l, 1, i}``; and the most frequent
    substitutions.
    """
    occurrences = {g: sum(sum(r.count(c) for c in chars) for r in refs) for g, chars in AMBIGUOUS.items()}
    grouped = set("".join(AMBIGUOUS.values()))
    other_total = sum(sum(c not in grouped for c in r) for r in refs)
    misread = dict.fromkeys(AMBIGUOUS, 0)
    other_misread = 0
    named = {"m->n": 0, "n->m": 0, "rn->m": 0, "m->rn": 0, "l/1/i": 0}
    subs: dict[str, int] = {}
    for ref, hyp in zip(refs, hyps):
        if ref == hyp:
            continue
        pairs = align(ref, hyp)
        merged = set()                      # pairs that are half of an rn <-> m misreading
        for k, (a, b) in enumerate(zip(pairs, pairs[1:])):
            if (a[0], b[0]) == ("r", "n") and {a[1], b[1]} == {"m", ""}:
                named["rn->m"] += 1
                merged |= {k, k + 1}
            if (a[1], b[1]) == ("r", "n") and {a[0], b[0]} == {"m", ""}:
                named["m->rn"] += 1
                merged |= {k, k + 1}
        for k, (r, h) in enumerate(pairs):
            if r and r != h:
                group = next((g for g, chars in AMBIGUOUS.items() if r in chars), None)
                if group is None:
                    other_misread += 1
                else:
                    misread[group] += 1
            if r and h and r != h:
                subs[f"{r}->{h}"] = subs.get(f"{r}->{h}", 0) + 1
                if k not in merged:
                    named["m->n"] += (r, h) == ("m", "n")
                    named["n->m"] += (r, h) == ("n", "m")
                named["l/1/i"] += r in "l1i" and h in "l1i"
    return {"group_error_rate": {g: misread[g] / max(occurrences[g], 1) for g in AMBIGUOUS},
            "group_occurrences": occurrences,
            "other_error_rate": other_misread / max(other_total, 1),
            "named": named,
            "top_substitutions": dict(sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))[:12])}


def score(refs: list[str], hyps: list[str], fonts: np.ndarray, buckets: list[list[int]]) -> dict[str, Any]:
    """CER and WER of a test split: overall, per font and per line-length bucket (characters)."""
    def rates(ix):
        r, h = [refs[i] for i in ix], [hyps[i] for i in ix]
        return {"cer": character_error_rate(r, h), "wer": word_error_rate(r, h), "lines": len(ix),
                "chars": sum(map(len, r))}

    n = np.array([len(r) for r in refs])
    return {**rates(range(len(refs))),
            "by_font": {str(f): rates(np.flatnonzero(fonts == f)) for f in sorted(set(fonts.tolist()))},
            "by_length": [{"chars_range": list(b), **rates(np.flatnonzero((n >= b[0]) & (n <= b[1])))}
                          for b in buckets if ((n >= b[0]) & (n <= b[1])).any()],
            "lines_correct": float(np.mean([r == h for r, h in zip(refs, hyps)]))}


# -- figures ---------------------------------------------------------------------------
def _cer_figure(models: dict[str, Any], path: Path) -> None:
    """CER per model on seen fonts, all held-out fonts and each held-out font (log scale)."""
    from ..figures import Figure

    from ..figures import font_bars

    names = list(models)
    labels = ["seen fonts", "held-out fonts"] + [f"held out: {f}" for f in HELD_OUT_FONTS]
    values = [[models[n]["seen"]["cer"] for n in names], [models[n]["held_out"]["cer"] for n in names]]
    values += [[models[n]["held_out"]["by_font"][f]["cer"] for n in names] for f in HELD_OUT_FONTS]
    fig = Figure(figsize=(max(8.0, 1.3 * len(names) + 2), 4.8), layout="constrained")
    ax = fig.add_subplot()
    bars = font_bars(ax, names, values, labels, seen_grey="0.7", font_alpha=0.6, floor=1e-4)
    for group, vals in zip(bars[:2], values[:2]):          # numbers on the seen / held-out bars
        for b, v in zip(group, vals):
            ax.annotate(f"{100 * v:.2g}", (b.get_x() + b.get_width() / 2, max(v, 1e-4)), ha="center",
                        va="bottom", fontsize=6, rotation=90)
    ax.axhline(0.02, color="C3", ls="--", lw=1, label="target: 2% on held-out fonts")
    ax.tick_params(axis="x", labelsize="small")
    ax.set_yscale("log")
    ax.set_ylabel("character error rate (greedy decoding)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize="x-small", ncols=2)
    ax.set_title("Character error rate by model: fonts seen in training vs held-out fonts (numbers: %)")
    fig.savefig(path, dpi=110)


def _curves_figure(runs: dict[str, Any], path: Path) -> None:
    """Validation CER against training time and the training CTC loss against lines seen, every run.

    The window-search runs of the static nets are drawn thin and grey.
    """
    from ..figures import Figure

    fig = Figure(figsize=(13.0, 5.0), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    finals = [name for name in runs if "window search" not in name]
    for name, r in runs.items():
        c = r["curve"]
        if name in finals:
            i = finals.index(name)
            style = dict(color=f"C{i % 10}", ls="-" if r["view"] == "image" else "--", marker=".", ms=4, lw=1.6)
            label = name.replace("MLP", f"MLP k={r['window']}")
        else:
            style = dict(color="0.6", ls="-" if r["view"] == "image" else "--", lw=0.8)
            label = "window search, static (one line per k)" if name == min(
                n for n in runs if "window search" in n) else None
        ax.plot(c["seconds"], c["val_cer"], label=label, **style)
        ax2.plot(np.array(c["lines"]) / 1000, c["train_loss"], **style)
    ax.set_xlabel("training seconds (one core)")
    ax.set_ylabel("validation CER (new lines, training fonts)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Validation CER (greedy) during training; solid: image, dashed: pen", fontsize=10)
    ax2.set_xlabel("training lines seen (thousands)")
    ax2.set_ylabel("CTC loss per label character (training, mean over the round)")
    ax2.set_yscale("log")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.set_title("Training loss", fontsize=10)
    ax.legend(fontsize="x-small", ncols=2)
    fig.savefig(path, dpi=110)


def _lines_figure(arrays: dict[str, np.ndarray], hyps: dict[str, list[str]], lines: list[int], path: Path) -> None:
    """Held-out-font lines with their true text and each model's decoded text (errors in red)."""
    from ..figures import Figure

    text_height = 0.17 * (len(hyps) + 1)
    fig = Figure(figsize=(11.0, len(lines) * (0.85 + text_height) + 0.4), layout="constrained")
    axes = fig.subplots(2 * len(lines), 1, height_ratios=[0.85, text_height] * len(lines))
    for k, i in enumerate(lines):
        ax, tx = axes[2 * k], axes[2 * k + 1]
        n = int(arrays["held_out/image_lengths"][i])
        ax.imshow(arrays["held_out/images"][:n, i].T, cmap="gray_r", vmin=0, vmax=255, aspect="auto",
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        truth = str(arrays["held_out/texts"][i])
        ax.set_title(f"{arrays['held_out/fonts'][i]}", fontsize=8, loc="left")
        tx.axis("off")
        rows = [("true", truth, "black")] + [(name, h[i], "C2" if h[i] == truth else "C3")
                                            for name, h in hyps.items()]
        width = max(len(r[0]) for r in rows)
        for j, (name, text, color) in enumerate(rows):
            tx.text(0.0, 1.0 - j / len(rows), f"{name:<{width}}  {text!r}", transform=tx.transAxes,
                    fontsize=7.5, color=color, va="top", family="monospace")
    fig.suptitle("Held-out-font lines as the networks see them (x_scale 0.5) and what they read "
                 "(green: exact, red: not)", fontsize=9)
    fig.savefig(path, dpi=110)


def _spikes_figure(arrays: dict[str, np.ndarray], probes: dict[str, dict[str, Any]], path: Path) -> None:
    """The CTC outputs over one line: per-class posteriors over the columns, one panel per model."""
    from ..figures import Figure

    first = next(iter(probes.values()))
    i = first["line"]
    n = int(arrays["held_out/image_lengths"][i])
    fig = Figure(figsize=(12.0, 1.6 + 2.0 * len(probes)), layout="constrained")
    axes = fig.subplots(1 + len(probes), 1, sharex=True, height_ratios=[0.8] + [1.6] * len(probes))
    axes[0].imshow(arrays["held_out/images"][:n, i].T, cmap="gray_r", vmin=0, vmax=255, aspect="auto",
                   interpolation="nearest", extent=(-0.5, n - 0.5, 24, 0))
    axes[0].set_yticks([])
    axes[0].set_title(f"{arrays['held_out/fonts'][i]} (held out): {str(arrays['held_out/texts'][i])!r}",
                      fontsize=9, loc="left")
    for ax, (name, p) in zip(axes[1:], probes.items()):
        post = np.asarray(p["posteriors"])
        t = np.arange(len(post))
        ax.plot(t, post[:, 0], color="0.6", lw=1, ls="--", label="blank")
        best = post.argmax(axis=1)
        for c in sorted(set(best.tolist()) - {0}):
            ax.plot(t, post[:, c], lw=1)
        for s in np.flatnonzero((best != 0) & np.r_[True, best[1:] != best[:-1]]):
            ax.annotate(ALPHABET[best[s] - 1].replace(" ", "␣"), (s, post[s, best[s]]), ha="center",
                        va="bottom", fontsize=7)
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("posterior")
        ax.set_title(f"{name}, read {p['read']!r}: softmax outputs per column (coloured: each class that "
                     f"wins a column, labelled at its spike)", fontsize=8, loc="left")
        ax.legend(fontsize="x-small", loc="upper right")
    axes[-1].set_xlabel("column t")
    fig.savefig(path, dpi=110)


def _gradnorm_figure(arrays: dict[str, np.ndarray], probes: dict[str, dict[str, Any]], path: Path) -> None:
    """``||dL/dh_t||`` over one line: the bidirectional LSTM's two directions and the one-way LSTM."""
    from ..figures import Figure

    fig = Figure(figsize=(10.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for name, p in probes.items():
        for key, norms in p["state_grad_norms"].items():
            # keys "<layer>.forward" / "<layer>.backward" for the bidirectional stack
            direction = (f"layer {int(key.split('.')[0]) + 1} {key.split('.')[-1]}" if "." in key
                         else "one direction")
            ax.plot(np.arange(len(norms)), norms, lw=1.2, label=f"{name}: {direction} (read {p['read']!r})")
    i = next(iter(probes.values()))["line"]
    ax.set_yscale("log")
    ax.set_xlabel("column t")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(f"CTC gradient reaching each column's hidden state, trained models, held-out line "
                 f"{str(arrays['held_out/texts'][i])!r}", fontsize=9)
    fig.savefig(path, dpi=110)


def _length_figure(models: dict[str, Any], path: Path) -> None:
    """CER by line length (characters), seen and held-out fonts."""
    from ..figures import Figure

    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, ("seen", "held_out")):
        for i, (name, m) in enumerate(models.items()):
            b = m[split]["by_length"]
            x = [np.mean(r["chars_range"]) for r in b]
            ax.plot(x, [max(r["cer"], 1e-4) for r in b], marker="o", color=f"C{i}",
                    ls="-" if m["view"] == "image" else "--", label=name)
        ax.set_xticks([np.mean(r["chars_range"]) for r in b], [f"{r['chars_range'][0]}-{r['chars_range'][1]}"
                                                               for r in b])
        ax.set_xlabel("line length (characters)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title({"seen": "seen fonts", "held_out": "held-out fonts"}[split])
    axes[0].set_ylabel("CER")
    axes[0].legend(fontsize="x-small")
    fig.savefig(path, dpi=110)


def _views_figure(arrays: dict[str, np.ndarray], line: int, path: Path) -> None:
    """One line in the two views: image columns and the pen trajectory (dots: pen down again)."""
    from ..figures import Figure

    n = int(arrays["held_out/image_lengths"][line])
    P = int(arrays["held_out/pen_lengths"][line])
    pen = arrays["held_out/pen"][:P, line].astype(np.float64)
    pos = np.cumsum(pen[:, :2], axis=0)
    fig = Figure(figsize=(12.0, 3.4), layout="constrained")
    ax, ax2 = fig.subplots(2, 1)
    ax.imshow(arrays["held_out/images"][:n, line].T, cmap="gray_r", vmin=0, vmax=255, aspect="auto",
              interpolation="nearest")
    ax.set_yticks([])
    ax.set_title(f"image view: {n} columns of 24 pixels", fontsize=8, loc="left")
    starts = np.flatnonzero(pen[:, 2] > 0.5)
    for a, b in zip(starts, list(starts[1:]) + [P]):
        ax2.plot(pos[a:b, 0], pos[a:b, 1], "-", lw=0.8, color="C0")
        ax2.plot(pos[a, 0], pos[a, 1], "o", ms=1.5, color="C3")
    ax2.set_aspect("equal")
    ax2.set_yticks([])
    ax2.set_title(f"pen view: {P} steps (dx, dy, pen_up), red dot: pen put down (pen_up = 1)",
                  fontsize=8, loc="left")
    fig.suptitle(f"One held-out line ({arrays['held_out/fonts'][line]}): {str(arrays['held_out/texts'][line])!r}",
                 fontsize=9)
    fig.savefig(path, dpi=110)


# -- the experiment ------------------------------------------------------------------
def _cost(spec: dict[str, Any], cfg: dict[str, Any]) -> float:
    """A rough relative cost of a trial, to start the longest first: lines x (parameters + the loss's share)."""
    D = cfg["data"]["height"] if spec["view"] == "image" else 3
    params = build_model(spec, D * (2 * spec.get("window", 0) + 1), np.dtype(cfg["dtype"]), 0).num_params
    return spec["rounds"] * (1.2 if spec["view"] == "pen" else 1.0) * (params + 30_000)


def _trial(name: str, spec: dict[str, Any], cfg: dict[str, Any], seed: int, start: int = 0) -> Trial:
    """The trial of model ``name``; ``start`` numbers its initialisations (window search)."""
    i = list(cfg["models"]).index(name)
    k = spec.get("window") or 0
    key = name if not spec.get("search") else f"{name} k={k} start={start} (window search)"
    return Trial(key, train_model, {"spec": spec, "cfg": cfg, "seed": seed * 10_000 + 1000 * start + 100 * i + k,
                                    "data_seed": seed})


def first_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """The static window search (short runs: each window from ``search_starts`` initialisations)
    and the recurrent models, longest first."""
    trials = []
    for name, spec in cfg["models"].items():
        if spec["kind"] == "mlp":
            trials += [_trial(name, {**spec, "window": k, "rounds": cfg["search_rounds"][spec["view"]],
                                     "search": True}, cfg, seed, start)
                       for k in cfg["windows"][spec["view"]] for start in range(cfg["search_starts"])]
        elif name not in cfg["second_stage"]:
            trials.append(_trial(name, spec, cfg, seed))
    return sorted(trials, key=lambda t: -_cost(t.kwargs["spec"], cfg))


def second_trials(cfg: dict[str, Any], seed: int, chosen: dict[str, tuple[int, int]]) -> list[Trial]:
    """The static models with their chosen window and initialisation, trained with the full budget,
    and the ``second_stage`` recurrent models, longest first."""
    trials = []
    for name, spec in cfg["models"].items():
        if spec["kind"] == "mlp":
            k, start = chosen[spec["view"]]
            trials.append(_trial(name, {**spec, "window": k}, cfg, seed, start))
        elif name in cfg["second_stage"]:
            trials.append(_trial(name, spec, cfg, seed))
    return sorted(trials, key=lambda t: -_cost(t.kwargs["spec"], cfg))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Render the lines, train every model (through ``sweep``), score the decoded lines, draw the figures."""
    cfg = QUICK if quick else FULL
    t0 = time.perf_counter()
    arrays = make_data(cfg["data"], seed)
    data_seconds = time.perf_counter() - t0
    cache = cache_path(cfg["data"], seed)
    partial = cache.with_name(cache.stem + f".{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(cache)
    print(f"rendered {sum(len(arrays[f'{s}/texts']) for s in SPLITS)} lines in {data_seconds:.1f} s "
          f"(train {len(arrays['train/texts'])}, validation {len(arrays['val/texts'])}, test "
          f"{len(arrays['seen/texts'])} seen-font + {len(arrays['held_out/texts'])} held-out-font lines)",
          flush=True)
    sweep = sweep or Sweep()
    try:
        # 1. the window search of the static nets (short runs) beside the recurrent models
        first = first_trials(cfg, seed)
        runs = {t.key: r for t, r in zip(first, sweep.run(first, desc="ocr-lines: window search, recurrent"))}
        window_search, chosen = {}, {}
        for view, ks in cfg["windows"].items():
            search = {(k, start): runs[f"MLP / {view} k={k} start={start} (window search)"]
                      for k in ks for start in range(cfg["search_starts"])}
            starts = range(cfg["search_starts"])
            window_search[view] = {str(k): {"val_cer": min(search[k, s]["val_cer"] for s in starts),
                                            "starts": [{"val_cer": search[k, s]["val_cer"],
                                                        "val_cer_curve": search[k, s]["curve"]["val_cer"],
                                                        "lines_seen": search[k, s]["lines_seen"],
                                                        "train_seconds": search[k, s]["train_seconds"]}
                                                       for s in range(cfg["search_starts"])]} for k in ks}
            chosen[view] = min(search, key=lambda ks_: search[ks_]["val_cer"])
            print(f"static window on {view}: validation CER " + "; ".join(
                f"k={k} " + ", ".join(f"{100 * s['val_cer']:.1f}%" for s in window_search[view][str(k)]["starts"])
                for k in ks) + f"; chosen k={chosen[view][0]} (start {chosen[view][1]})", flush=True)
        # 2. the static nets with their chosen windows, trained with the full budget, and the rest
        second = second_trials(cfg, seed, chosen)
        runs.update({t.key: r for t, r in zip(second, sweep.run(second, desc="ocr-lines: static with its window"))})
    finally:
        cache.unlink(missing_ok=True)
    refs = {split: [str(t) for t in arrays[f"{split}/texts"]] for split in ("seen", "held_out")}
    fonts = {split: arrays[f"{split}/fonts"] for split in ("seen", "held_out")}
    buckets = cfg["length_buckets"]
    models: dict[str, Any] = {}
    for name in cfg["models"]:
        r = runs[name]
        m = {k: r[k] for k in ("kind", "view", "window", "hidden", "parameters", "lines_seen", "best_round",
                               "val_cer", "train_seconds", "eval_seconds", "setup_seconds", "curve")}
        for split in ("seen", "held_out"):
            m[split] = score(refs[split], r["hyps"][split], fonts[split], buckets)
            m[split]["confusions"] = confusions(refs[split], r["hyps"][split])
        held = [i for i, f in enumerate(fonts["held_out"]) if f != "cmti10"]
        m["held_out_cer_without_cmti10"] = character_error_rate([refs["held_out"][i] for i in held],
                                                                [r["hyps"]["held_out"][i] for i in held])
        if "beam_hyps" in r:
            beam = r["beam_hyps"]["held_out"]
            m["beam"] = {"beam_width": cfg["beam_width"], "seconds": r["beam_seconds"],
                         "held_out": {"cer": character_error_rate(refs["held_out"], beam),
                                      "wer": word_error_rate(refs["held_out"], beam),
                                      "by_font": {f: character_error_rate(
                                          [refs["held_out"][i] for i in np.flatnonzero(fonts["held_out"] == f)],
                                          [beam[i] for i in np.flatnonzero(fonts["held_out"] == f)])
                                          for f in HELD_OUT_FONTS}}}
        if "probe" in r:
            m["probe"] = {"line": r["probe"]["line"], "loss": r["probe"]["loss"],
                          "state_grad_norms": r["probe"]["state_grad_norms"]}
        models[name] = m
        window = f"window k={m['window']}, " if m["window"] else ""
        print(f"{name} ({window}{m['parameters']:,} parameters, {m['train_seconds']:.0f} s): CER seen "
              f"{100 * m['seen']['cer']:.2f}%, held-out {100 * m['held_out']['cer']:.2f}% "
              f"(WER {100 * m['seen']['wer']:.1f}% / {100 * m['held_out']['wer']:.1f}%)", flush=True)

    # static / recurrent, and where recurrence matters most
    comparisons: dict[str, Any] = {}
    for view in ("image", "pen"):
        static, recurrent = f"MLP / {view}", f"BiLSTM / {view}"
        if static not in models or recurrent not in models:
            continue
        s, rec = models[static], models[recurrent]
        comparisons[view] = {
            "static": static, "recurrent": recurrent,
            "cer_ratio_static_over_recurrent": {split: _ratio(s[split]["cer"], rec[split]["cer"])
                                                for split in ("seen", "held_out")},
            "by_length_cer_ratio": {split: [{"chars_range": a["chars_range"], "static": a["cer"],
                                             "recurrent": b["cer"], "ratio": _ratio(a["cer"], b["cer"])}
                                            for a, b in zip(s[split]["by_length"], rec[split]["by_length"])]
                                    for split in ("seen", "held_out")},
            "ambiguous_error_rate": {split: {g: {"static": s[split]["confusions"]["group_error_rate"][g],
                                                 "recurrent": rec[split]["confusions"]["group_error_rate"][g]}
                                             for g in AMBIGUOUS} | {
                "other symbols": {"static": s[split]["confusions"]["other_error_rate"],
                                  "recurrent": rec[split]["confusions"]["other_error_rate"]}}
                for split in ("seen", "held_out")},
        }
    bi = models.get("BiLSTM / image")
    one_way = {n: models[n]["held_out"]["cer"] for n in ("LSTM / image", "GRU / image") if n in models}
    targets = None
    if bi is not None:
        targets = {"target_held_out_cer": 0.02, "bilstm_held_out_cer": bi["held_out"]["cer"],
                   "bilstm_seen_cer": bi["seen"]["cer"],
                   "meets_held_out_target": bi["held_out"]["cer"] <= 0.02,
                   "missed_by": max(0.0, bi["held_out"]["cer"] - 0.02),
                   "one_direction_held_out_cer": one_way,
                   "better_than_one_direction": all(bi["held_out"]["cer"] < v for v in one_way.values())}

    # figures
    figures = ["cer.png", "curves.png", "by_length.png", "lines.png", "views.png"]
    _cer_figure(models, out / "cer.png")
    _curves_figure(dict(sorted(runs.items())), out / "curves.png")
    _length_figure(models, out / "by_length.png")
    shown = [n for n in ("BiLSTM / image", "LSTM / image", "GRU / image", "MLP / image") if n in models]
    picks = []
    for f in HELD_OUT_FONTS:
        ix = np.flatnonzero((fonts["held_out"] == f)
                            & (arrays["held_out/label_lengths"] >= min(24, cfg["data"]["chars"][1])))
        if ix.size:
            picks.append(int(ix[0]))
    _lines_figure(arrays, {n.replace("MLP", f"MLP k={models[n]['window']}"): runs[n]["hyps"]["held_out"]
                           for n in shown}, picks, out / "lines.png")
    probes = {n.replace("MLP", f"MLP k={models[n]['window']}"):
              {**runs[n]["probe"], "read": runs[n]["hyps"]["held_out"][runs[n]["probe"]["line"]]}
              for n in ("BiLSTM / image", "LSTM / image", "MLP / image") if n in models and "probe" in runs[n]}
    if probes:
        _spikes_figure(arrays, probes, out / "ctc_outputs.png")
        recurrent_probes = {n: p for n, p in probes.items() if not n.startswith("MLP")}
        _gradnorm_figure(arrays, recurrent_probes, out / "grad_norms.png")
        figures += ["ctc_outputs.png", "grad_norms.png"]
    _views_figure(arrays, next(iter(probes.values()))["line"] if probes else picks[0], out / "views.png")
    samples = {"lines": [{"font": str(fonts["held_out"][i]), "text": refs["held_out"][i],
                          **{n: runs[n]["hyps"]["held_out"][i] for n in models}} for i in picks]}

    return {"config": {**cfg, "optimizer": "Adam", "schedule": "CosineLR over the rounds",
                       "loss": "rnnbp.losses.ctc (mean over lines of loss / label length)",
                       "decoding": "greedy (best path); beam search for the models with beam=True",
                       "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
            "train_fonts": list(TRAIN_FONTS), "held_out_fonts": list(HELD_OUT_FONTS),
            "data_seconds": round(data_seconds, 2),
            "window_search": window_search,
            "chosen_window": {view: {"k": k, "start": start} for view, (k, start) in chosen.items()},
            "models": models, "comparisons": comparisons, "targets": targets, "anchor": ANCHOR,
            "samples": samples,
            "figures": figures}
