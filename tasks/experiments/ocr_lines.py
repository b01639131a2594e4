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
cosine learning-rate schedule over the budget, early stopping on validation
CER):

- **static**: a time-delay MLP. Each step sees a fixed window of ``2k + 1``
  neighbouring steps, stacked as features
  (:func:`tasks.ctc_lines.data.window_features`), and one
  ``Linear -> ReLU -> Linear`` maps them to the 42 scores; static backprop
  through a per-step network (``rnnbp.unroll`` of static layers);
- **recurrent**: an LSTM and a GRU reading left to right (one direction), a
  one-layer bidirectional LSTM (``rnnbp.Bidirectional``), and the main
  bidirectional model, two stacked bidirectional layers; all trained by full
  BPTT.

The fairness rule (``tasks.fairness``), the same for every model: each
chooses its size (the MLP: its window half-width ``k``; the recurrent nets:
their hidden units) and Adam's learning rate from a grid of the same size,
by the validation CER of short runs that all get the same ``search_budget``;
the chosen point is then trained from scratch with the one ``budget`` (at
most ``max_epochs`` rounds of ``round_lines`` lines, stopped after
``patience`` rounds without a better validation CER, the best round kept).
The record's ``"fairness"`` entry states the grids, choices, both budgets and
what every chosen run used.

Data: training lines in the 17 ``TRAIN_FONTS``, drawn with wider distortions
than the test lines (``"train_distortion"``: slant, stroke thickness, width;
the same for every model); validation on new lines of the training fonts
(the only data that chooses or stops anything); test on new lines of the
training fonts (*seen*) and on lines of the four ``HELD_OUT_FONTS``, fixed in
``tasks.data.lines`` before any training. Decoding is greedy (best path);
prefix beam search is also reported for the main bidirectional LSTM.

The pieces (data and its cache, models, CTC training, scoring, figures) live
in :mod:`tasks.ctc_lines`; this module is the configuration and the run.
Every trial returns its decoded test lines; the scores are computed here
from them, in the main process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from rnnbp.metrics import character_error_rate, word_error_rate

from ..ctc_lines import figures
from ..ctc_lines.data import SPLITS, cached
from ..ctc_lines.models import build_model
from ..ctc_lines.scoring import AMBIGUOUS, align, cer_without, confusions, ratio, score
from ..ctc_lines.training import train_model
from ..data.lines import HELD_OUT_FONTS, TRAIN_FONTS
from ..fairness import Budget, check_grids, choose, fairness_record, grid
from ..sweep import Sweep, Trial

__all__ = ["SUMMARY", "ANCHOR", "FULL", "QUICK", "grids", "search_trials", "final_trials", "run",
           "AMBIGUOUS", "align"]

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
    "round_lines": 6000,        # training lines in one round (an epoch of the budget; one curve point)
    "clip": 5.0,
    "lr_final_share": 0.05,     # the cosine schedule ends at this share of the initial rate
    "dtype": "float32",
    # the fairness rule: one budget for every model's final run (rounds of `round_lines` lines), and
    # one shorter budget for every grid point's search run
    "budget": {"max_epochs": 60, "patience": 10},
    "search_budget": {"max_epochs": 4, "patience": None},
    "models": {
        # name: kind, view, the fixed part of the model (the MLP's hidden units, the stacked
        # `layers` of the bidirectional LSTM), and its grid: 4 points of size x Adam's learning rate
        "MLP / image": {"kind": "mlp", "view": "image", "hidden": 512,
                        "grid": {"window": [4, 7], "lr": [3e-3, 1e-2]}},
        "LSTM / image": {"kind": "lstm", "view": "image", "grid": {"hidden": [64, 96], "lr": [3e-3, 1e-2]}},
        "GRU / image": {"kind": "gru", "view": "image", "grid": {"hidden": [80, 112], "lr": [3e-3, 1e-2]}},
        # the main bidirectional model: two stacked bidirectional layers (the anchor's architecture)
        "BiLSTM / image": {"kind": "bilstm", "view": "image", "layers": 2, "beam": True,
                           "grid": {"hidden": [48, 64], "lr": [3e-3, 1e-2]}},
        # one bidirectional layer: about the one-direction nets' parameters
        "BiLSTM 1 layer / image": {"kind": "bilstm", "view": "image",
                                   "grid": {"hidden": [48, 64], "lr": [3e-3, 1e-2]}},
        "MLP / pen": {"kind": "mlp", "view": "pen", "hidden": 512,
                      "grid": {"window": [8, 14], "lr": [3e-3, 1e-2]}},
        "BiLSTM / pen": {"kind": "bilstm", "view": "pen", "grid": {"hidden": [48, 64], "lr": [3e-3, 1e-2]}},
    },
    # the static / recurrent pairs whose CER ratio the record reports, per view
    "comparisons": {"image": ["MLP / image", "BiLSTM / image"], "pen": ["MLP / pen", "BiLSTM / pen"]},
    "beam_width": 8,              # prefix beam search for models with "beam", on the held-out fonts
    "length_buckets": [[8, 15], [16, 23], [24, 31], [32, 40]],
    # the held-out font whose line's CTC outputs and gradient norms are drawn: the first one of
    # tasks.data.lines.HELD_OUT_FONTS (fixed before any training)
    "probe_font": HELD_OUT_FONTS[0],
}

QUICK: dict[str, Any] = {
    **FULL,
    "data": {**FULL["data"], "n_train": 160, "n_val": 40, "n_test": 48, "chars": [8, 16], "shard": 200},
    "batch_size": 16, "round_lines": 96, "beam_width": 2,
    "budget": {"max_epochs": 2, "patience": 1}, "search_budget": {"max_epochs": 1, "patience": None},
    "models": {name: {**m, **({"hidden": 12} if m["kind"] == "mlp" else {}),
                      "grid": ({"window": [1, 2], "lr": [1e-2]} if m["kind"] == "mlp"
                               else {"hidden": [6, 8], "lr": [1e-2]})}
               for name, m in FULL["models"].items()},
    "length_buckets": [[8, 11], [12, 16]],
}


# -- the trials ---------------------------------------------------------------------
def grids(cfg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every model's grid of points (checked: the same number for every model)."""
    out = {name: grid(**spec["grid"]) for name, spec in cfg["models"].items()}
    check_grids(out)
    return out


def _spec(name: str, point: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """The model spec of ``name`` at grid ``point`` (what :func:`train_model` builds and trains)."""
    return {**{k: v for k, v in cfg["models"][name].items() if k != "grid"}, **point}


def _cost(spec: dict[str, Any], budget: dict[str, Any], cfg: dict[str, Any]) -> float:
    """A rough relative cost of a trial, to start the longest first: rounds x (parameters + the loss's share)."""
    D = cfg["data"]["height"] if spec["view"] == "image" else 3
    params = build_model(spec, D * (2 * spec.get("window", 0) + 1), np.dtype(cfg["dtype"]), 0).num_params
    return budget["max_epochs"] * (1.2 if spec["view"] == "pen" else 1.0) * (params + 30_000)


def _key(name: str, point: dict[str, Any]) -> str:
    return f"{name} " + ",".join(f"{k}={v}" for k, v in point.items())


def _trial(name: str, j: int, point: dict[str, Any], cfg: dict[str, Any], seed: int, search: bool) -> Trial:
    """Model ``name`` at its ``j``-th grid point: a short search run or the final run.

    The final run starts from the same seed as the chosen point's search run.
    """
    i = list(cfg["models"]).index(name)
    budget = cfg["search_budget"] if search else cfg["budget"]
    key = _key(name, point) + " (grid search)" if search else name
    return Trial(key, train_model, {"spec": _spec(name, point, cfg), "budget": budget, "cfg": cfg,
                                    "seed": seed * 10_000 + 100 * i + 10 * j, "data_seed": seed,
                                    "search": search})


def search_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """The short runs of every model at every point of its grid, longest first."""
    trials = [_trial(name, j, point, cfg, seed, True) for name, g in grids(cfg).items() for j, point in enumerate(g)]
    return sorted(trials, key=lambda t: -_cost(t.kwargs["spec"], t.kwargs["budget"], cfg))


def final_trials(cfg: dict[str, Any], seed: int, chosen: dict[str, dict[str, Any]]) -> list[Trial]:
    """Every model at its chosen point, trained with the full budget, longest first."""
    g = grids(cfg)
    trials = [_trial(name, g[name].index(point), point, cfg, seed, False) for name, point in chosen.items()]
    return sorted(trials, key=lambda t: -_cost(t.kwargs["spec"], t.kwargs["budget"], cfg))


# -- the experiment ------------------------------------------------------------------
def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Render the lines, search every model's grid, train the chosen points (through ``sweep``),
    score the decoded lines, draw the figures."""
    cfg = QUICK if quick else FULL
    g = grids(cfg)                               # fails before any training if the grids differ in size
    sweep = sweep or Sweep()
    t0 = time.perf_counter()
    with cached(cfg["data"], seed) as arrays:
        data_seconds = time.perf_counter() - t0
        print(f"rendered {sum(len(arrays[f'{s}/texts']) for s in SPLITS)} lines in {data_seconds:.1f} s "
              f"(train {len(arrays['train/texts'])}, validation {len(arrays['val/texts'])}, test "
              f"{len(arrays['seen/texts'])} seen-font + {len(arrays['held_out/texts'])} held-out-font lines)",
              flush=True)
        # 1. every model's grid, in short runs of the search budget; the choice is on validation CER
        first = search_trials(cfg, seed)
        runs = {t.key: r for t, r in zip(first, sweep.run(first, desc="ocr-lines: grid search"))}
        search, chosen = {}, {}
        for name, points in g.items():
            search[name] = [{"point": point, "validation": runs[_key(name, point) + " (grid search)"]["val_cer"],
                             "val_cer_curve": runs[_key(name, point) + " (grid search)"]["curve"]["val_cer"]}
                            for point in points]
            chosen[name] = choose(search[name], "validation", higher_is_better=False)["point"]
            print(f"{name}: validation CER " + "; ".join(
                f"{_key('', s['point']).strip()} {100 * s['validation']:.1f}%" for s in search[name])
                + f"; chosen {_key('', chosen[name]).strip()}", flush=True)
        # 2. every model at its chosen point, from scratch, with the one budget
        second = final_trials(cfg, seed, chosen)
        runs.update({t.key: r for t, r in zip(second, sweep.run(second, desc="ocr-lines: chosen points"))})
    fairness = fairness_record(g, Budget(**cfg["budget"]), chosen, {name: runs[name]["used"] for name in g})
    fairness["choice"] = "validation CER (new lines of the training fonts) after the search budget"
    fairness["search_budget"] = Budget(**cfg["search_budget"]).to_record()
    fairness["search"] = search
    refs = {split: [str(t) for t in arrays[f"{split}/texts"]] for split in ("seen", "held_out")}
    fonts = {split: arrays[f"{split}/fonts"] for split in ("seen", "held_out")}
    buckets = cfg["length_buckets"]
    models: dict[str, Any] = {}
    for name in cfg["models"]:
        r = runs[name]
        m = {k: r[k] for k in ("kind", "view", "window", "hidden", "lr", "parameters", "lines_seen", "best_round",
                               "val_cer", "used", "train_seconds", "eval_seconds", "setup_seconds", "curve")}
        for split in ("seen", "held_out"):
            m[split] = score(refs[split], r["hyps"][split], fonts[split], buckets)
            m[split]["confusions"] = confusions(refs[split], r["hyps"][split])
        m["held_out_cer_without_font"] = cer_without(refs["held_out"], r["hyps"]["held_out"], fonts["held_out"])
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
        print(f"{name} ({'window k=%d, ' % m['window'] if m['window'] else ''}{m['parameters']:,} parameters, "
              f"{m['used']['epochs']} rounds, best {m['best_round']}, {m['train_seconds']:.0f} s): CER seen "
              f"{100 * m['seen']['cer']:.2f}%, held-out {100 * m['held_out']['cer']:.2f}% "
              f"(WER {100 * m['seen']['wer']:.1f}% / {100 * m['held_out']['wer']:.1f}%)", flush=True)

    # static / recurrent, and where recurrence matters most
    comparisons: dict[str, Any] = {}
    for view, (static, recurrent) in cfg["comparisons"].items():
        s, rec = models[static], models[recurrent]
        comparisons[view] = {
            "static": static, "recurrent": recurrent,
            "cer_ratio_static_over_recurrent": {split: ratio(s[split]["cer"], rec[split]["cer"])
                                                for split in ("seen", "held_out")},
            "by_length_cer_ratio": {split: [{"chars_range": a["chars_range"], "static": a["cer"],
                                             "recurrent": b["cer"], "ratio": ratio(a["cer"], b["cer"])}
                                            for a, b in zip(s[split]["by_length"], rec[split]["by_length"])]
                                    for split in ("seen", "held_out")},
            "ambiguous_error_rate": {split: {grp: {"static": s[split]["confusions"]["group_error_rate"][grp],
                                                   "recurrent": rec[split]["confusions"]["group_error_rate"][grp]}
                                             for grp in AMBIGUOUS} | {
                "other symbols": {"static": s[split]["confusions"]["other_error_rate"],
                                  "recurrent": rec[split]["confusions"]["other_error_rate"]}}
                for split in ("seen", "held_out")},
        }
    bi = models["BiLSTM / image"]
    one_way = {n: models[n]["held_out"]["cer"] for n in ("LSTM / image", "GRU / image") if n in models}
    targets = {"target_held_out_cer": 0.02, "bilstm_held_out_cer": bi["held_out"]["cer"],
               "bilstm_seen_cer": bi["seen"]["cer"],
               "meets_held_out_target": bi["held_out"]["cer"] <= 0.02,
               "missed_by": max(0.0, bi["held_out"]["cer"] - 0.02),
               "one_direction_held_out_cer": one_way,
               "better_than_one_direction": all(bi["held_out"]["cer"] < v for v in one_way.values())}

    # figures
    names = {n: n.replace("MLP", f"MLP k={models[n]['window']}") for n in models}
    files = ["cer.png", "curves.png", "by_length.png", "lines.png", "views.png"]
    figures.cer_figure(models, out / "cer.png")
    figures.curves_figure(dict(sorted(runs.items())), out / "curves.png")
    figures.length_figure(models, out / "by_length.png")
    shown = [n for n in ("BiLSTM / image", "LSTM / image", "GRU / image", "MLP / image") if n in models]
    picks = []
    for f in HELD_OUT_FONTS:
        ix = np.flatnonzero((fonts["held_out"] == f)
                            & (arrays["held_out/label_lengths"] >= min(24, cfg["data"]["chars"][1])))
        if ix.size:
            picks.append(int(ix[0]))
    figures.lines_figure(arrays, {names[n]: runs[n]["hyps"]["held_out"] for n in shown}, picks, out / "lines.png")
    probes = {names[n]: {**runs[n]["probe"], "read": runs[n]["hyps"]["held_out"][runs[n]["probe"]["line"]]}
              for n in ("BiLSTM / image", "LSTM / image", "MLP / image") if n in models and "probe" in runs[n]}
    figures.spikes_figure(arrays, probes, out / "ctc_outputs.png")
    figures.gradnorm_figure(arrays, {n: p for n, p in probes.items() if not n.startswith("MLP")},
                            out / "grad_norms.png")
    files += ["ctc_outputs.png", "grad_norms.png"]
    figures.views_figure(arrays, next(iter(probes.values()))["line"], out / "views.png")
    samples = {"lines": [{"font": str(fonts["held_out"][i]), "text": refs["held_out"][i],
                          **{n: runs[n]["hyps"]["held_out"][i] for n in models}} for i in picks]}

    return {"config": {**cfg, "optimizer": "Adam", "schedule": "CosineLR over the budget's max_epochs rounds",
                       "loss": "rnnbp.losses.ctc (mean over lines of loss / label length)",
                       "decoding": "greedy (best path); beam search for the models with beam=True",
                       "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")},
            "train_fonts": list(TRAIN_FONTS), "held_out_fonts": list(HELD_OUT_FONTS),
            "data_seconds": round(data_seconds, 2), "fairness": fairness,
            "models": models, "comparisons": comparisons, "targets": targets, "anchor": ANCHOR,
            "samples": samples, "figures": files}
