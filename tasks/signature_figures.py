"""Figures of the ``signatures`` experiment: DET curves, a signature and its forgery by speed, distances."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .data.signatures.lognormal import Signature, genuine, skilled_forgery
from .verification import error_curves, probit

__all__ = ["write_figures", "det_figure", "speed_figure", "distance_figure"]

_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4]


def _figure(width: float, height: float):
    from .figures import Figure                     # matplotlib's, loaded on first use

    return Figure(figsize=(width, height), layout="constrained")


def det_figure(scores: Mapping[str, Mapping[str, list[float]]], eers: Mapping[str, Mapping[str, float]]):
    """DET curves (FRR against FAR on normal-deviate axes), skilled and random forgeries side by side."""
    fig = _figure(11.0, 5.2)
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("skilled", "random")):
        for i, (name, s) in enumerate(scores.items()):
            _, far, frr = error_curves(s["genuine"], s[kind])
            ls = "-" if "trajectory" in name else ("--" if name in ("DTW", "trivial features") else ":")
            ax.plot(probit(far), probit(frr), ls, color=f"C{i}", lw=1.5,
                    label=f"{name} (EER {eers[name][kind]:.1%})")
        t = probit(np.array(_TICKS))
        ax.plot([t[0], t[-1]], [t[0], t[-1]], color="0.7", lw=0.8)
        ax.set_xticks(t, [f"{v:.1%}" for v in _TICKS], fontsize=7)
        ax.set_yticks(t, [f"{v:.1%}" for v in _TICKS], fontsize=7)
        ax.set_xlim(t[0], t[-1])
        ax.set_ylim(t[0], t[-1])
        ax.set_xlabel("false acceptance rate")
        ax.set_ylabel("false rejection rate")
        ax.set_title(f"{kind} forgeries, held-out writers")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("DET curves (the diagonal crosses each curve at its EER; lower left is better)")
    return fig


def _speed(sig: Signature) -> np.ndarray:
    v = np.concatenate([[0.0], np.linalg.norm(np.diff(sig.xy, axis=0), axis=1) / np.diff(sig.t)])
    v[~sig.pen_down] = np.nan
    return v


def speed_figure(writer: int, seed: int, rate: float):
    """A genuine sample and a skilled forgery of ``writer``, pen positions coloured by speed, and speed over time."""
    sigs = [genuine(writer, 0, seed, rate=rate), genuine(writer, 12, seed, rate=rate),
            skilled_forgery(writer, 0, seed, rate=rate)]
    titles = ["genuine (session 1)", "genuine (session 2)", "skilled forgery"]
    vmax = max(np.nanpercentile(_speed(s), 99) for s in sigs)
    fig = _figure(12.0, 6.4)
    grid = fig.add_gridspec(2, 3, height_ratios=[1.3, 1])
    for c, (sig, title) in enumerate(zip(sigs, titles)):
        ax = fig.add_subplot(grid[0, c])
        sc = ax.scatter(sig.xy[:, 0], sig.xy[:, 1], c=_speed(sig), s=4, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_aspect("equal")
        ax.set_title(f"{title}: {sig.duration:.2f} s, {sig.num_points} points, {sig.mean_speed:.1f} cm/s",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=fig.axes, shrink=0.6, label="pen speed (cm/s)")
    ax = fig.add_subplot(grid[1, :])
    for sig, title, color in zip(sigs, titles, ("C0", "C9", "C3")):
        ax.plot(sig.t, _speed(sig), color=color, lw=1, label=title)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("speed (cm/s)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.suptitle(f"Held-out writer {writer}: the forger copies the shape; his speed profile is his own "
                 "(more, even, less-overlapped strokes, pauses, tremor)", fontsize=10)
    return fig


def distance_figure(scores: Mapping[str, Mapping[str, list[float]]]):
    """Histograms of the normalised distance to the references: genuine, skilled and random questions."""
    names = list(scores)
    fig = _figure(3.2 * len(names), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names):
        s = scores[name]
        top = np.percentile(np.concatenate([s["genuine"], s["skilled"], s["random"]]), 98)
        bins = np.linspace(0, top, 40)
        for kind, color in (("genuine", "C2"), ("skilled", "C3"), ("random", "C7")):
            ax.hist(np.clip(s[kind], 0, top), bins=bins, color=color, alpha=0.55, label=kind)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("distance / references' spread", fontsize=8)
    axes[0].set_ylabel("questions")
    axes[0].legend(fontsize=8)
    fig.suptitle("Distances to the writer's references (held-out writers)")
    return fig


def write_figures(out: Path, cfg: Mapping[str, Any], seed: int, scores: Mapping[str, Any],
                  eers: Mapping[str, Any], best: str, best_static: str, writer: int) -> list[str]:
    """Write ``det.png``, ``speed.png`` (of ``writer``) and ``distances.png`` into ``out``; return their names."""
    det_figure(scores, eers).savefig(out / "det.png", dpi=110)
    speed_figure(writer, seed, cfg["rate"]).savefig(out / "speed.png", dpi=110)
    picked = {name: scores[name] for name in dict.fromkeys([best, best_static, "DTW", "trivial features"])}
    distance_figure(picked).savefig(out / "distances.png", dpi=110)
    return ["det.png", "speed.png", "distances.png"]
