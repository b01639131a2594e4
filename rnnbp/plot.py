"""Diagnostic figures: training curves and gradient norms over time.

The figures a library user needs to look inside training: the loss per
epoch (:func:`training_curves`), ``||dL/dh_t||`` over time step and epoch
(:func:`state_grad_norms`), a measured decay under its analytic bound
(:func:`decay_with_bound`) and the per-update loss and gradient norm
(:func:`training_trace`). Figures that only the experiments draw (image
grids, confusion matrices, sweeps, ...) live with the experiments in the
checkout's ``tasks/figures.py``.

Only this module of ``rnnbp`` imports matplotlib, and only inside its
functions, so ``import rnnbp`` never loads it. It never calls ``pyplot``'s
global figure manager: functions build a ``matplotlib.figure.Figure``
directly (so they work headless, with any backend) and return it; save it
with ``fig.savefig(path)``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["training_curves", "state_grad_norms", "decay_with_bound", "training_trace"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _integer_ticks(axis) -> None:
    """Ticks at whole numbers only (epochs are counted, so 1.5 means nothing)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def training_curves(histories: Mapping[str, Any], *, log: bool = True,
                    baseline: float | None = None, title: str | None = None):
    """Training (and validation) loss per epoch for one or more runs.

    Parameters
    ----------
    histories : mapping of str to History
        Label of each run and what ``rnnbp.fit`` returned for it.
    log : bool, default True
        Logarithmic loss axis.
    baseline : float, optional
        A reference loss drawn as a dashed line (e.g. a trivial predictor's).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes; epochs (counted from 1) have ticks at whole numbers only.

    Examples
    --------
    >>> from rnnbp.history import History
    >>> fig = training_curves({"run": History(loss=[1.0, 0.5, 0.2])})
    >>> len(fig.axes)
    1
    >>> all(float(t).is_integer() for t in fig.axes[0].get_xticks())
    True
    """
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for i, (label, hist) in enumerate(histories.items()):
        color = f"C{i}"
        epochs = np.arange(1, len(hist.loss) + 1)
        ax.plot(epochs, hist.loss, color=color, label=f"{label} (train)")
        if hist.val_loss:
            ax.plot(epochs[:len(hist.val_loss)], hist.val_loss, color=color, ls=":",
                    label=f"{label} (validation)")
    if baseline is not None:
        ax.axhline(baseline, color="0.4", ls="--", lw=1, label=f"baseline {baseline:.3g}")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def state_grad_norms(norms: Mapping[str, np.ndarray], *, title: str | None = None,
                     epochs: Sequence[int] | None = None, shared_scale: bool = True):
    r"""How ``||dL/dh_t||`` varies over time step and training, one panel per run.

    Each run gets a heatmap (time step across, epoch down, logarithmic
    colour scale) and, below it, the curves of the first, middle and last
    recorded epoch on a logarithmic axis: vanishing gradients show as a
    decay towards early time steps, exploding ones as growth. The norms
    ``fit`` and :class:`rnnbp.monitor.GradientRecorder` record average, at
    each step, over the sequences still running there (the figure says so),
    so variable-length batches do not fake a growth going back in time.

    Parameters
    ----------
    norms : mapping of str to ndarray, shape (epochs, T) or (T,)
        E.g. ``{"LSTM": history.state_grad_norms["0"]}``.
    title : str, optional
    epochs : sequence of int, optional
        Which epochs (counted from 1, as everywhere) to draw as curves
        (default first, middle, last).
    shared_scale : bool, default True
        One colour scale for every heatmap (a single colour bar) and one
        y axis for every curve panel, spanning all runs, so a colour or a
        height means the same norm in every panel: that is what comparing
        cells needs, and why it is the default. With False each run gets
        its own colour scale and colour bar, fitted to its own range, which
        shows more detail within a run but makes panels incomparable. One
        run draws the same either way.

    Returns
    -------
    matplotlib.figure.Figure
        The heatmaps on the top row, then their colour bar(s), then the
        curve panels (``2 * len(norms)`` axes plus the colour bars).

    Raises
    ------
    TypeError
        If ``shared_scale`` is not a bool.
    ValueError
        If ``norms`` is empty or a run is not 1-d or 2-d.

    Examples
    --------
    >>> import numpy as np
    >>> decay = np.exp(-np.arange(20.0))[None].repeat(3, 0)
    >>> fig = state_grad_norms({"a": decay, "b": 100 * decay})
    >>> a, b = (ax.images[0].norm for ax in fig.axes if ax.images)
    >>> (a.vmin, a.vmax) == (b.vmin, b.vmax)        # one colour scale
    True
    """
    from matplotlib.colors import LogNorm

    from ._checks import flag

    shared_scale = flag(shared_scale, "shared_scale")
    runs = {k: np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in norms.items()}
    if not runs:
        raise ValueError("norms: expected at least one run, got none")
    for k, a in runs.items():
        if a.ndim != 2:
            raise ValueError(f"norms[{k!r}]: expected shape (epochs, T) or (T,), got {a.shape}")

    def limits(arrays):
        positive = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays])
        lo, hi = (positive.min(), positive.max()) if positive.size else (1e-12, 1.0)
        return lo, max(hi, lo * 10)         # a flat run still gets a readable colour bar

    # One norm object for every heatmap when shared: equal limits by construction.
    common = LogNorm(*limits(runs.values())) if shared_scale else None
    fig = _figure(4.2 * len(runs), 6.0)
    axes = fig.subplots(2, len(runs), squeeze=False, height_ratios=[3, 2])
    label_norm = r"$\|\partial L/\partial h_t\|$"
    for j, (label, a) in enumerate(runs.items()):
        ax = axes[0, j]
        im = ax.imshow(np.where(a > 0, a, np.nan), aspect="auto", origin="upper",
                       norm=common if shared_scale else LogNorm(*limits([a])),
                       cmap="viridis", interpolation="nearest",
                       extent=(-0.5, a.shape[1] - 0.5, a.shape[0] + 0.5, 0.5))  # epochs from 1
        ax.set_title(label)
        ax.set_xlabel("time step t")
        ax.set_ylabel("epoch")
        _integer_ticks(ax.yaxis)
        if not shared_scale:
            fig.colorbar(im, ax=ax, label=label_norm)
        ax = axes[1, j]
        rows = [e - 1 for e in epochs] if epochs is not None else sorted({0, a.shape[0] // 2, a.shape[0] - 1})
        for k, r in enumerate(rows):
            ax.semilogy(np.arange(a.shape[1]), np.where(a[r] > 0, a[r], np.nan),
                        color=f"C{k}", label=f"epoch {r + 1}")
        ax.set_xlabel("time step t")
        ax.set_ylabel(label_norm)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    if shared_scale:
        # Only the curves share a y axis: the heatmaps' y axis is the epoch,
        # and runs of different lengths each keep their own rows.
        for ax in axes[1, 1:]:
            ax.sharey(axes[1, 0])
        fig.colorbar(im, ax=list(axes[0]), label=label_norm)
    if title:
        fig.suptitle(title)
    fig.text(0.01, 0.005, "each step: mean over the sequences still running at that step",
             fontsize="x-small", color="0.4", ha="left", va="bottom")
    return fig


# -- gradient-flow figures (read what rnnbp.monitor measures) -----------------

def decay_with_bound(measured: Mapping[str, np.ndarray],
                     bounds: Mapping[str, np.ndarray] | None = None, *,
                     title: str | None = None,
                     ylabel: str = r"$\|\partial h_{T-1}/\partial h_t\|_2$"):
    r"""Measured decay of a gradient quantity over time, under its analytic bound.

    Each run is drawn on a logarithmic axis against the time step: a 1-d
    array as a line, a 2-d array ``(T, B)`` (one column per sequence, e.g.
    from ``rnnbp.monitor.jacobian_norms``) as its largest value per step
    (solid) over the band between its smallest and largest (shaded). A bound
    (e.g. ``rnnbp.monitor.vanishing_bound``) is drawn dashed in the run's
    colour: the measured curve must stay under it.

    Parameters
    ----------
    measured : mapping of str to ndarray, shape (T,) or (T, B)
    bounds : mapping of str to ndarray, shape (T,), optional
        Keyed like ``measured`` (runs without a bound are drawn without one).
    title : str, optional
    ylabel : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(30.0)
    >>> fig = decay_with_bound({"rho = 0.8": 0.5 * 0.8 ** (29 - t)}, {"rho = 0.8": 0.8 ** (29 - t)})
    >>> len(fig.axes[0].lines)
    2
    """
    runs = {k: np.asarray(v, dtype=np.float64) for k, v in measured.items()}
    if not runs:
        raise ValueError("measured: expected at least one run, got none")
    for k, v in runs.items():
        if v.ndim not in (1, 2):
            raise ValueError(f"measured[{k!r}]: expected shape (T,) or (T, B), got {v.shape}")
    bounds = dict(bounds or {})
    fig = _figure(9.0, 4.6)
    ax = fig.add_subplot()
    for i, (label, a) in enumerate(runs.items()):
        color = f"C{i}"
        t = np.arange(a.shape[0])
        top = a if a.ndim == 1 else a.max(axis=1)
        ax.semilogy(t, np.where(top > 0, top, np.nan), color=color, lw=1.8, label=label)
        if a.ndim == 2 and a.shape[1] > 1:
            low = a.min(axis=1)
            ax.fill_between(t, np.where(low > 0, low, np.nan), np.where(top > 0, top, np.nan),
                            color=color, alpha=0.2, lw=0)
        if label in bounds:
            b = np.asarray(bounds[label], dtype=np.float64)
            if b.shape != (a.shape[0],):
                raise ValueError(f"bounds[{label!r}]: expected shape ({a.shape[0]},), got {b.shape}")
            ax.semilogy(t, np.where(b > 0, b, np.nan), color=color, ls="--", lw=1.2,
                        label=f"{label}: bound")
    ax.set_xlabel("time step t (the loss is at the last step)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def training_trace(grad_norms: Mapping[str, np.ndarray],
                   losses: Mapping[str, np.ndarray] | None = None, *,
                   clip: float | None = None, title: str | None = None):
    """Per-update training record: the loss (optional, top) and the gradient norm before clipping.

    Spikes of several orders of magnitude in the gradient norm are exploding
    gradients; a clipping threshold is drawn as a dashed line (every update
    above it was rescaled to it). Both axes are logarithmic. A run that
    diverged simply ends early; values above 1e200 (and non-finite ones) are
    left out, as logarithmic ticks cannot be drawn near the float64 limit.

    Parameters
    ----------
    grad_norms : mapping of str to ndarray, shape (updates,)
        E.g. ``{"no clipping": history.grad_norm}`` or a
        ``GradientRecorder.grad_norm``.
    losses : mapping of str to ndarray, shape (updates,), optional
        The training loss at each update, keyed like ``grad_norms``.
    clip : float, optional
        The clipping threshold.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = training_trace({"run": np.array([0.5, 80.0, 0.7])},
    ...                      {"run": np.array([0.3, 0.2, 0.9])}, clip=1.0)
    >>> [ax.get_yscale() for ax in fig.axes]
    ['log', 'log']
    """
    if not grad_norms:
        raise ValueError("grad_norms: expected at least one run, got none")
    panels = [("loss", losses)] if losses else []
    panels.append(("gradient norm before clipping", grad_norms))
    fig = _figure(6.5, 2.2 + 1.9 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    labels = list(grad_norms)
    for ax, (ylabel, runs) in zip(axes, panels):
        for label, v in runs.items():
            v = np.asarray(v, dtype=np.float64)
            if v.ndim != 1:
                raise ValueError(f"{'losses' if runs is losses else 'grad_norms'}[{label!r}]: "
                                 f"expected shape (updates,), got {v.shape}")
            i = labels.index(label) if label in labels else len(labels) + list(runs).index(label)
            shown = np.where((v > 0) & (v < 1e200), v, np.nan)   # log ticks overflow near 1e300
            ax.semilogy(np.arange(1, v.size + 1), shown, color=f"C{i}", lw=0.9, alpha=0.85, label=label)
        if runs is grad_norms and clip is not None:
            ax.axhline(clip, color="0.3", ls="--", lw=1, label=f"clipping threshold {clip:g}")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1].set_xlabel("update")
    if title:
        axes[0].set_title(title, fontsize="medium")
    return fig
