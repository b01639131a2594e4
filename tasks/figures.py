"""Figures that only the experiments draw: accuracy curves, image grids,
confusion matrices, loss surfaces and sweeps.

The diagnostic figures a library user needs (gradient norms over time,
training curves, decay under a bound, training traces) live in
:mod:`rnnbp.plot`; these are the ones the experiments under
``tasks/experiments`` add on top. Like ``rnnbp.plot``, every function builds a
``matplotlib.figure.Figure`` directly (no ``pyplot`` state, so they work
headless with any backend) and returns it.

This module and ``rnnbp.plot`` are the only ones that import matplotlib for
drawing, and only lazily: an experiment that draws a figure of its own takes
the class from here (``from tasks.figures import Figure``), so importing
``tasks`` never loads matplotlib.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["accuracy_curves", "image_grid", "confusion_matrix", "loss_surface", "sweep_curves", "font_bars"]


def __getattr__(name: str) -> Any:
    # ``Figure`` is matplotlib's, loaded on first use (a module-level import
    # would make every ``import tasks...`` pay for matplotlib).
    if name == "Figure":
        from matplotlib.figure import Figure

        return Figure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def accuracy_curves(histories: Mapping[str, Any], *, chance: float | None = None,
                    val_label: str = "validation", title: str | None = None):
    """Training (and validation) metric per epoch for one or more runs.

    The training metric (``History.metric``, measured during the epoch, so
    with dropout active) is drawn solid; the validation metric
    (``History.val_metric``, in evaluation mode) dotted in the same colour.
    The gap between the two is how over-fitting shows.

    Parameters
    ----------
    histories : mapping of str to History
        Label of each run and what ``rnnbp.fit(..., metric=rnnbp.accuracy)``
        returned for it.
    chance : float, optional
        The accuracy of guessing, drawn as a dashed line (e.g. ``1 / C``).
    val_label : str, default "validation"
        What to call the validation curves in the legend (e.g. ``"test"``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``histories`` is empty or a run recorded no metric at all.

    Examples
    --------
    >>> from rnnbp.history import History
    >>> fig = accuracy_curves({"run": History(metric=[0.5, 0.8], val_metric=[0.4, 0.7])}, chance=0.1)
    >>> len(fig.axes), len(fig.axes[0].lines)
    (1, 3)
    """
    if not histories:
        raise ValueError("histories: expected at least one run, got none")
    for label, hist in histories.items():
        if not getattr(hist, "metric", None) and not getattr(hist, "val_metric", None):
            raise ValueError(f"histories[{label!r}]: no metric recorded "
                             "(train with fit(..., metric=rnnbp.accuracy))")
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    for i, (label, hist) in enumerate(histories.items()):
        color = f"C{i % 10}"
        if hist.metric:
            ax.plot(np.arange(1, len(hist.metric) + 1), hist.metric, color=color, label=f"{label} (train)")
        if hist.val_metric:
            ax.plot(np.arange(1, len(hist.val_metric) + 1), hist.val_metric, color=color, ls=":",
                    label=f"{label} ({val_label})")
    if chance is not None:
        ax.axhline(chance, color="0.4", ls="--", lw=1, label=f"chance {chance:.3g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def _per_item(values: Any, n: int, name: str) -> list | None:
    """``values`` as a list of ``n`` items, or None; a clear error otherwise."""
    if values is None:
        return None
    if isinstance(values, str) or not hasattr(values, "__len__"):
        raise TypeError(f"{name}: expected a sequence of {n} items (one per image), "
                        f"got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"{name}: expected {n} items (one per image), got {len(values)}")
    return list(values)


def image_grid(images: np.ndarray, labels: Sequence[Any] | None = None,
               titles: Sequence[str] | None = None, *, ncols: int = 8,
               cmap: str = "gray_r", title: str | None = None):
    """A grid of small images, one axes per image, row by row.

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (N, H, W, 3 | 4)
        Greyscale images (drawn with ``cmap`` on a common 0..max range, so
        intensities compare across cells) or RGB(A) images.
    labels : sequence of N, optional
        A caption under each image (e.g. the true class).
    titles : sequence of N str, optional
        A caption above each image (e.g. the prediction).
    ncols : int, default 8
        Images per row; the grid has ``ceil(N / ncols)`` rows.
    cmap : str, default "gray_r"
        Colour map of greyscale images (``"gray_r"``: ink is dark).
    title : str, optional
        A title over the whole grid.

    Returns
    -------
    matplotlib.figure.Figure
        With exactly N axes, each holding one image.

    Raises
    ------
    TypeError, ValueError
        If ``images`` is not an (N, H, W) or (N, H, W, 3|4) array with N >= 1,
        or ``labels``/``titles`` do not have one entry per image.

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((5, 8, 8))
    >>> fig = image_grid(images, labels=list("abcde"), ncols=3)
    >>> len(fig.axes), len(fig.axes[0].images)
    (5, 1)
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images: expected a numpy array of shape (N, H, W), got {type(images).__name__}")
    rgb = images.ndim == 4 and images.shape[-1] in (3, 4)
    if not (images.ndim == 3 or rgb):
        hint = " (reshape flat images to (N, H, W) first)" if images.ndim == 2 else ""
        raise ValueError(f"images: expected shape (N, H, W) or (N, H, W, 3|4), got {images.shape}{hint}")
    if images.shape[0] < 1 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"images: expected at least one non-empty image, got shape {images.shape}")
    if images.dtype.kind not in "biuf":
        raise TypeError(f"images: expected a numeric dtype, got {images.dtype}")
    if isinstance(ncols, (bool, np.bool_)) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols: expected a positive integer, got {ncols!r}")
    n = images.shape[0]
    labels = _per_item(labels, n, "labels")
    titles = _per_item(titles, n, "titles")
    ncols = min(int(ncols), n)
    nrows = -(-n // ncols)
    cell = 1.1 + 0.25 * ((labels is not None) + (titles is not None))
    fig = _figure(1.1 * ncols + 0.2, cell * nrows + (0.4 if title else 0.1))
    finite = images[np.isfinite(images)] if images.dtype.kind == "f" else images
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size else 1.0
    vmax = vmax if vmax > vmin else vmin + 1.0
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if rgb:
            ax.imshow(images[i], interpolation="nearest")
        else:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if labels is not None:
            ax.set_xlabel(str(labels[i]), fontsize="small")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def _class_labels(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array of class indices, got shape {a.shape}")
    if a.size and a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected integer class indices, got dtype {a.dtype}")
    if a.size and a.min() < 0:
        raise ValueError(f"{name}: expected class indices >= 0, got {int(a.min())}")
    return a.astype(np.int64)


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     class_names: Sequence[str] | None = None, normalize: bool = True, *,
                     title: str | None = None):
    """Confusion matrix of a classifier: true class down, predicted class across.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
        True and predicted class indices in ``[0, C)``.
    class_names : sequence of str, optional
        Name of each class (``C`` of them); indices by default. A string
        names one class per character (e.g. ``"0123456789"``).
    normalize : bool, default True
        Show each row as fractions of that class's samples (so the diagonal
        is the per-class recall), rather than counts.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        The matrix axes and its colour bar. Cells are annotated with their
        values when there are at most 20 classes.

    Raises
    ------
    TypeError, ValueError
        If the labels are not 1-d integer arrays of one length (N >= 1), or
        ``class_names`` has fewer names than the classes present.

    Examples
    --------
    >>> fig = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], class_names=["a", "b", "c"])
    >>> len(fig.axes), fig.axes[0].images[0].get_array().shape
    (2, (3, 3))
    """
    t = _class_labels(y_true, "y_true")
    p = _class_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_pred: expected {t.shape[0]} predictions (one per y_true), got {p.shape[0]}")
    if t.size == 0:
        raise ValueError("y_true: expected at least one sample, got none")
    n_classes = int(max(t.max(), p.max())) + 1
    if isinstance(class_names, str):
        class_names = list(class_names)       # a charset string: one character per class
    if class_names is not None:
        names = [str(c) for c in _per_item(class_names, len(class_names), "class_names")]
        if len(names) < n_classes:
            raise ValueError(f"class_names: expected at least {n_classes} names (labels go up to "
                             f"{n_classes - 1}), got {len(names)}")
        n_classes = len(names)
    else:
        names = [str(i) for i in range(n_classes)]
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        shown = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    else:
        shown = counts.astype(np.float64)
    side = min(3.0 + 0.35 * n_classes, 14.0)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(float(shown.max()), 1.0)
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="fraction of true class" if normalize else "count", shrink=0.8)
    ticks = np.arange(n_classes)
    ax.set_xticks(ticks, names, fontsize="small", rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(ticks, names, fontsize="small")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n_classes <= 20:
        for i in range(n_classes):
            for j in range(n_classes):
                if counts[i, j] == 0:
                    continue
                text = f"{shown[i, j]:.2f}".lstrip("0") if normalize else str(counts[i, j])
                ax.text(j, i, text, ha="center", va="center", fontsize="x-small",
                        color="white" if shown[i, j] > 0.6 * vmax else "black")
    acc = float(np.trace(counts) / counts.sum())
    ax.set_title(title if title else f"accuracy {acc:.3f} (N = {counts.sum()})", fontsize="medium")
    return fig


def loss_surface(x: np.ndarray, y: np.ndarray, loss: np.ndarray,
                 paths: Mapping[str, np.ndarray] | None = None, *,
                 styles: Mapping[str, Mapping[str, Any]] | None = None,
                 xlabel: str = "w", ylabel: str = "b", title: str | None = None):
    """A loss surface over two parameters (log colour scale) with optimisation paths.

    Parameters
    ----------
    x : ndarray, shape (nx,)
        Grid of the first parameter.
    y : ndarray, shape (ny,)
        Grid of the second parameter.
    loss : ndarray, shape (ny, nx)
        ``loss[j, i]`` at ``(x[i], y[j])``.
    paths : mapping of str to ndarray, shape (steps, 2), optional
        Parameter values ``(x, y)`` along each path; drawn with a circle at
        the start and a cross at the end. The axes keep the grid's limits, so
        a step that leaves the grid leaves the frame.
    styles : mapping of str to dict, optional
        Matplotlib line options per path label (e.g. ``{"color": "C3",
        "ls": "--"}``); by default each path gets its own colour.
    xlabel, ylabel, title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> w, b = np.linspace(-1, 1, 20), np.linspace(-1, 1, 10)
    >>> L = (w[None] ** 2 + b[:, None] ** 2)
    >>> fig = loss_surface(w, b, L, {"path": np.array([[0.9, 0.9], [0.5, 0.4], [0.1, 0.0]])})
    >>> len(fig.axes)                                   # the plot and its colour bar
    2
    """
    x, y, loss = (np.asarray(a, dtype=np.float64) for a in (x, y, loss))
    if x.ndim != 1 or y.ndim != 1 or loss.shape != (y.size, x.size):
        raise ValueError(f"loss: expected shape (len(y), len(x)) = ({y.size}, {x.size}) "
                         f"with 1-d x and y, got {loss.shape}")
    n_paths = len(paths or {})
    fig = _figure(7.5, 6.0 + 0.22 * n_paths)
    ax = fig.add_subplot()
    positive = loss[np.isfinite(loss) & (loss > 0)]
    floor = max(positive.min(), positive.max() * 1e-12) if positive.size else 1e-12
    z = np.log10(np.clip(loss, floor, None))
    cs = ax.contourf(x, y, z, levels=40, cmap="viridis")
    fig.colorbar(cs, ax=ax, label=r"$\log_{10}$ loss")
    for i, (label, p) in enumerate((paths or {}).items()):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 2:
            raise ValueError(f"paths[{label!r}]: expected shape (steps, 2), got {p.shape}")
        style = {"color": ("white", "C3", "C1", "C6", "C9")[i % 5], "lw": 1.3, "marker": ".", "ms": 3}
        style.update((styles or {}).get(label, {}))
        color = style["color"]
        ax.plot(p[:, 0], p[:, 1], label=label, **style)
        ax.plot(*p[0], marker="o", color=color, ms=7, mec="black")
        ax.plot(*p[-1], marker="X", color=color, ms=8, mec="black")
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(y[0], y[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if paths:
        fig.legend(fontsize="small", loc="outside lower center", ncols=1, frameon=False)
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def sweep_curves(x: Sequence[float], panels: Mapping[str, Mapping[str, np.ndarray]], *,
                 xlabel: str, marks: Mapping[str, float] | None = None,
                 logy: Sequence[str] = (), title: str | None = None):
    """Metrics over a swept setting (e.g. the truncation length k2), one panel per metric.

    Parameters
    ----------
    x : sequence of float, length n
        The swept values.
    panels : mapping of str to mapping of str to ndarray
        ``{panel title: {curve label: values}}``; values are ``(n,)``, or
        ``(n, R)`` for R repeats (drawn as their mean with a min–max band).
    xlabel : str
    marks : mapping of str to float, optional
        Vertical reference lines drawn in every panel, ``{label: x}``.
    logy : sequence of str
        Titles of the panels with a logarithmic y axis.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = sweep_curves([1, 2, 4], {"accuracy": {"GRU": np.array([0.3, 0.3, 1.0])}},
    ...                    xlabel="k2", marks={"lag": 3})
    >>> len(fig.axes)
    1
    """
    x = np.asarray(x, dtype=np.float64)
    if not panels:
        raise ValueError("panels: expected at least one panel, got none")
    fig = _figure(max(4.3 * len(panels), 6.0), 3.8 if len(panels) > 1 else 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, curves) in zip(axes, panels.items()):
        for i, (label, v) in enumerate(curves.items()):
            v = np.asarray(v, dtype=np.float64)
            if v.shape[:1] != x.shape or v.ndim > 2:
                raise ValueError(f"panels[{name!r}][{label!r}]: expected shape ({x.size},) or "
                                 f"({x.size}, R), got {v.shape}")
            mean = v if v.ndim == 1 else v.mean(axis=1)
            ax.plot(x, mean, color=f"C{i}", marker="o", ms=4, label=label)
            if v.ndim == 2 and v.shape[1] > 1:
                ax.fill_between(x, v.min(axis=1), v.max(axis=1), color=f"C{i}", alpha=0.2, lw=0)
        for j, (mlabel, mx) in enumerate((marks or {}).items()):
            ax.axvline(mx, color="0.35", ls=(":", "--", "-.")[j % 3], lw=1, label=mlabel)
        if name in logy:
            ax.set_yscale("log")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def font_bars(ax: Any, names: Sequence[str], values: Sequence[Sequence[float]], labels: Sequence[str], *,
              seen_grey: str = "0.75", font_alpha: float = 0.7, floor: float | None = None) -> list:
    """Grouped bars of one score per model: seen fonts, all held-out fonts, then each held-out font.

    The OCR experiments' shared figure. Group 0 is drawn grey, group 1 in
    ``C0``, the per-font groups in ``C2``, ``C3``, ... with ``font_alpha``.

    Parameters
    ----------
    ax : matplotlib Axes
    names : sequence of str
        The models, one tick each (``" / "`` becomes a line break).
    values : sequence of sequences of float, shape (groups, models)
    labels : sequence of str
        The legend label of each group.
    seen_grey : str, default "0.75"
        The grey of the seen-fonts group.
    font_alpha : float, default 0.7
    floor : float, optional
        Bars are drawn at least this high (for a log scale).

    Returns
    -------
    list of matplotlib BarContainer, one per group
    """
    width = 0.8 / len(values)
    x = np.arange(len(names))
    containers = []
    for k, (vals, label) in enumerate(zip(values, labels)):
        style = (dict(color=seen_grey) if k == 0 else dict(color="C0") if k == 1
                 else dict(color=f"C{k}", alpha=font_alpha))
        heights = vals if floor is None else np.maximum(vals, floor)
        containers.append(ax.bar(x + (k - (len(values) - 1) / 2) * width, heights, width, label=label, **style))
    ax.set_xticks(x, [n.replace(" / ", "\n") for n in names])
    return containers
