"""Figures of the ``speech`` experiment (``tasks/experiments/speech.py``), drawn from its trials' results.

- ``words_frames.png``: the log-mel spectrogram of a held-out speaker's
  "tack" and "cat", under each the per-frame probabilities of the two words
  from the chosen time-delay MLP and the best recurrent model;
- ``within_groups.png``: forced-choice accuracy inside each anagram group,
  per model and trivial baseline, against chance;
- ``confusion_<model>.png``: the 20-word confusion matrix on the held-out speakers;
- ``grad_norms.png``: ``||dL/dh_t||`` over time for the chosen recurrent models;
- ``ctc_outputs.png``: a held-out utterance's spectrogram and the chosen CTC
  models' per-frame phone probabilities.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .data.speech.phones import PHONE_NAMES
from .data.speech.words import ANAGRAM_GROUPS, WORDS

__all__ = ["write_all", "words_frames", "within_groups_bars", "grad_norms", "ctc_outputs"]

_STATIC = ("bag-of-frames MLP (log-mel only)", "bag-of-frames MLP", "time-delay MLP")


def _spectrogram(ax: Any, log_mel: np.ndarray, title: str) -> None:
    ax.imshow(np.asarray(log_mel).T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_ylabel("mel band")
    ax.set_title(title, fontsize=9)


def words_frames(showcase: Mapping[str, Any], models: Mapping[str, np.ndarray]):
    """Spectrograms of "tack" and "cat" and, per model, the per-frame probability of each word.

    ``models`` maps a model name to its ``(T, 2, C)`` per-frame probabilities.
    """
    from .figures import Figure

    words = ("tack", "cat")
    fig = Figure(figsize=(10.0, 2.2 + 1.7 * len(models)), layout="constrained")
    axes = fig.subplots(1 + len(models), 2, squeeze=False, sharex="col")
    for j, w in enumerate(words):
        lm = np.asarray(showcase["log_mel"][j])
        _spectrogram(axes[0, j], lm, f'held-out speaker says "{w}": log-mel energies')
        for i, (name, probs) in enumerate(models.items()):
            ax = axes[1 + i, j]
            p = np.asarray(probs)[:lm.shape[0], j]
            for k, v in enumerate(words):
                ax.plot(p[:, WORDS.index(v)], color=f"C{k}", label=f'P("{v}")')
            others = np.delete(p, [WORDS.index(v) for v in words], axis=1).max(axis=1)
            ax.plot(others, color="0.6", lw=0.8, ls=":", label="best other word")
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel(name, fontsize=8)
            ax.grid(True, alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize="x-small", loc="upper left")
        axes[-1, j].set_xlabel("frame (10 ms)")
    fig.suptitle("Per-frame word probabilities (each model is trained on their time-mean)", fontsize=10)
    return fig


def within_groups_bars(rows: Mapping[str, Mapping[str, Any]]):
    """Forced-choice accuracy inside each anagram group for each model or baseline (``rows[name]["within_groups"]``)."""
    from .figures import Figure

    groups = ["/".join(g) for g in ANAGRAM_GROUPS]
    names = list(rows)
    fig = Figure(figsize=(max(8.0, 1.3 * len(names) + 2), 4.8), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    for k, g in enumerate(groups):
        ax.bar(np.arange(len(names)) - 0.4 + (k + 0.5) * width,
               [rows[n]["within_groups"][g]["accuracy"] for n in names],
               width, color=f"C{k}", label=g)
    ax.set_xticks(np.arange(len(names)), [n.replace(" (", "\n(") for n in names])
    for k, n in enumerate(names):
        ax.plot(k, rows[n]["within_groups"]["mean"], "k_", ms=22, mew=2)
    chances = sorted({round(1 / len(g), 3) for g in ANAGRAM_GROUPS})
    for c in chances:
        ax.axhline(c, color="0.3", ls="--", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy choosing among the group's words")
    ax.set_title("Held-out speakers: telling anagrams apart (black bar: mean over groups; "
                 f"dashed: chance {', '.join(map(str, chances))})", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize="xx-small", ncols=4, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def grad_norms(curves: Mapping[str, Mapping[str, list]]):
    """``||dL/dh_t||`` against t, one line per model and recurrent layer (direction)."""
    from .figures import Figure

    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, per_layer) in enumerate(curves.items()):
        for j, (layer, values) in enumerate(per_layer.items()):
            v = np.asarray(values, float)
            v = v[:np.flatnonzero(v > 0)[-1] + 1] if np.any(v > 0) else v    # until the longest word ends
            ax.semilogy(np.arange(v.size), np.maximum(v, 1e-12), color=f"C{i}", ls=["-", "--"][j % 2],
                        label=f"{name} (layer {layer})")
    ax.set_xlabel("frame t (10 ms)")
    ax.set_ylabel("||dL/dh_t||, mean over the words still running")
    ax.set_title("Held-out test words: how the loss reaches each step's state", fontsize=9)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="x-small")
    return fig


def ctc_outputs(showcase: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]]):
    """A held-out utterance's spectrogram and each CTC model's per-frame phone probabilities (blank dotted)."""
    from .figures import Figure

    lm = np.asarray(showcase["log_mel"])
    fig = Figure(figsize=(11.0, 2.2 + 1.8 * len(models)), layout="constrained")
    axes = fig.subplots(1 + len(models), 1, squeeze=False, sharex=True)[:, 0]
    ref = " ".join(PHONE_NAMES[p - 1] for p in showcase["reference"])
    _spectrogram(axes[0], lm, f"held-out utterance: {ref}")
    for ax, (name, r) in zip(axes[1:], models.items()):
        k = int(r.get("stack", 1))                       # each output step covers k frames
        p = np.asarray(r["probabilities"])[:-(-lm.shape[0] // k)]    # the utterance's own steps
        t = (np.arange(p.shape[0]) + 0.5) * k - 0.5
        ax.plot(t, p[:, 0], color="0.6", ls=":", lw=0.8)
        for c in range(1, p.shape[1]):
            ax.plot(t, p[:, c], lw=1.0, color=f"C{(c - 1) % 10}")
            for i in np.flatnonzero((p[:, c] > 0.5) & (p[:, c] >= p.max(axis=1))):
                ax.text(t[i], min(1.0, p[i, c] + 0.02), PHONE_NAMES[c - 1], fontsize=6, ha="center")
        hyp = " ".join(PHONE_NAMES[q - 1] for q in r["hypothesis"])
        ax.set_ylabel(name, fontsize=8)
        ax.set_ylim(-0.02, 1.12)
        ax.set_title(f"greedy: {hyp}", fontsize=8)
    axes[-1].set_xlabel("frame (10 ms)")
    fig.suptitle("CTC: per-frame phone probabilities (dotted: blank)", fontsize=10)
    return fig


def write_all(out: Path, done: Mapping[str, Any], grids: Mapping[str, Any], chosen: Mapping[str, Any],
              ctc_chosen: Mapping[str, Any], word_results: Mapping[str, Any], baselines: Mapping[str, Any],
              labels: np.ndarray) -> list[str]:
    """Every figure of the experiment into ``out``; returns the file names."""
    from .figures import confusion_matrix

    def chosen_run(task: str, fam: str, point: Mapping[str, Any]) -> Mapping[str, Any]:
        return done[f"{task}/{fam}/{list(grids[task][fam]).index(point)}"]

    files = []
    runs = {fam: chosen_run("words", fam, p) for fam, p in chosen.items()}
    recurrent = [f for f in runs if f not in _STATIC]
    best = max(recurrent, key=lambda f: word_results[f]["test_accuracy"]) if recurrent else None
    show = {f: runs[f]["showcase"]["probabilities"] for f in ("time-delay MLP", best) if f in runs}
    if show:
        words_frames(done["words/baselines"]["showcase"], show).savefig(out / "words_frames.png", dpi=110)
        files.append("words_frames.png")
    rows = {**{f"{n} (baseline)": b for n, b in baselines.items()}, **word_results}
    within_groups_bars(rows).savefig(out / "within_groups.png", dpi=110)
    files.append("within_groups.png")
    for fam in [f for f in (*_STATIC, best) if f in runs]:
        pred = np.argmax(np.asarray(runs[fam]["test_scores"]), axis=1)
        name = "confusion_" + re.sub(r"[^a-z0-9]+", "_", fam.lower()).strip("_") + ".png"
        confusion_matrix(labels, pred, class_names=list(WORDS),
                         title=f"{fam}: held-out speakers, accuracy {np.mean(pred == labels):.3f}"
                         ).savefig(out / name, dpi=110)
        files.append(name)
    curves = {f: runs[f]["grad_norms"] for f in recurrent if "grad_norms" in runs[f]}
    if curves:
        grad_norms(curves).savefig(out / "grad_norms.png", dpi=110)
        files.append("grad_norms.png")
    ctc_runs = {fam: chosen_run("ctc", fam, p)["showcase"] for fam, p in ctc_chosen.items()}
    if ctc_runs:
        ctc_outputs(next(iter(ctc_runs.values())), ctc_runs).savefig(out / "ctc_outputs.png", dpi=110)
        files.append("ctc_outputs.png")
    return files
