"""The figures of a line-reading experiment (drawn in the main process from the trials' results)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.lines import ALPHABET, HELD_OUT_FONTS

__all__ = ["cer_figure", "curves_figure", "lines_figure", "spikes_figure", "gradnorm_figure",
           "length_figure", "views_figure"]


def cer_figure(models: dict[str, Any], path: Path) -> None:
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


def curves_figure(runs: dict[str, Any], path: Path) -> None:
    """Validation CER against training time and the training CTC loss against lines seen, every run.

    The short grid-search runs (keys containing ``"grid search"``) are drawn thin and grey.
    """
    from ..figures import Figure

    fig = Figure(figsize=(13.0, 5.0), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    finals = [name for name in runs if "grid search" not in name]
    searches = [name for name in runs if "grid search" in name]
    for name, r in runs.items():
        c = r["curve"]
        if name in finals:
            i = finals.index(name)
            style = dict(color=f"C{i % 10}", ls="-" if r["view"] == "image" else "--", marker=".", ms=4, lw=1.6)
            label = name.replace("MLP", f"MLP k={r['window']}") if r.get("window") else name
        else:
            style = dict(color="0.6", ls="-" if r["view"] == "image" else "--", lw=0.8)
            label = "grid search (short runs, every model and point)" if name == searches[0] else None
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


def lines_figure(arrays: dict[str, np.ndarray], hyps: dict[str, list[str]], lines: list[int], path: Path) -> None:
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


def spikes_figure(arrays: dict[str, np.ndarray], probes: dict[str, dict[str, Any]], path: Path) -> None:
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


def gradnorm_figure(arrays: dict[str, np.ndarray], probes: dict[str, dict[str, Any]], path: Path) -> None:
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


def length_figure(models: dict[str, Any], path: Path) -> None:
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


def views_figure(arrays: dict[str, np.ndarray], line: int, path: Path) -> None:
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
