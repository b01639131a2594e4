"""Figures: training curves and gradient norms over time.

Only this module imports matplotlib, and only inside its functions. It
never calls ``pyplot``'s global figure manager: functions build a
``matplotlib.figure.Figure`` directly (so they work headless, with any
backend) and return it; save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["training_curves", "state_grad_norms"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


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

    Examples
    --------
    >>> from rnnbp.train import History
    >>> fig = training_curves({"run": History(loss=[1.0, 0.5, 0.2])})
    >>> len(fig.axes)
    1
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
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def state_grad_norms(norms: Mapping[str, np.ndarray], *, title: str | None = None,
                     epochs: Sequence[int] | None = None):
    """How ``||dL/dh_t||`` varies over time step and training, one panel per run.

    Each run gets a heatmap (time step across, epoch down, logarithmic
    colour scale) and, below it, the curves of the first, middle and last
    recorded epoch on a logarithmic axis: vanishing gradients show as a
    decay towards early time steps, exploding ones as growth.

    Parameters
    ----------
    norms : mapping of str to ndarray, shape (epochs, T) or (T,)
        E.g. ``{"LSTM": history.state_grad_norms["0"]}``.
    title : str, optional
    epochs : sequence of int, optional
        Which rows to draw as curves (default first, middle, last).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = state_grad_norms({"toy": np.exp(-np.arange(20.0))[None].repeat(3, 0)})
    >>> len(fig.axes) >= 2
    True
    """
    from matplotlib.colors import LogNorm

    runs = {k: np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in norms.items()}
    if not runs:
        raise ValueError("norms: expected at least one run, got none")
    fig = _figure(4.2 * len(runs), 6.0)
    axes = fig.subplots(2, len(runs), squeeze=False, height_ratios=[3, 2])
    for j, (label, a) in enumerate(runs.items()):
        positive = a[np.isfinite(a) & (a > 0)]
        lo, hi = (positive.min(), positive.max()) if positive.size else (1e-12, 1.0)
        hi = max(hi, lo * 10)
        ax = axes[0, j]
        im = ax.imshow(np.where(a > 0, a, np.nan), aspect="auto", origin="upper",
                       norm=LogNorm(vmin=lo, vmax=hi), cmap="viridis", interpolation="nearest")
        ax.set_title(label)
        ax.set_xlabel("time step t")
        ax.set_ylabel("epoch")
        fig.colorbar(im, ax=ax, label=r"$\|\partial L/\partial h_t\|$")
        ax = axes[1, j]
        rows = epochs if epochs is not None else sorted({0, a.shape[0] // 2, a.shape[0] - 1})
        for k, r in enumerate(rows):
            ax.semilogy(np.arange(a.shape[1]), np.where(a[r] > 0, a[r], np.nan),
                        color=f"C{k}", label=f"epoch {r + 1}")
        ax.set_xlabel("time step t")
        ax.set_ylabel(r"$\|\partial L/\partial h_t\|$")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
