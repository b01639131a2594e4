"""Training loop: ``fit()``, ``evaluate()``, the ``History`` it returns, and progress.

``fit`` draws minibatches of sequences, unrolls the model over each
(``rnnbp.unroll``), takes the loss, walks the graph back (full BPTT, or
truncated BPTT(k1, k2) through ``rnnbp.TruncatedBPTT``), optionally clips,
and steps the optimizer. Everything random (shuffling, dropout) comes from
``seed``, so the same seed gives bit-identical training.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import _checks
from .clip import clip_grad_norm
from .errors import NonFiniteError
from .layer import Layer
from .layers import Dropout
from .tbptt import TruncatedBPTT
from .unroll import TimeGraph, unroll

__all__ = ["fit", "evaluate", "predict", "History", "accuracy", "Progress"]

LossFn = Callable[..., tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]
Callback = Callable[[int, "History"], "bool | None"]


@dataclass
class History:
    """What ``fit`` recorded, one entry per epoch unless said otherwise.

    Attributes
    ----------
    loss : list[float]
        Mean training loss per epoch (weighted by batch size).
    metric : list[float]
        Training metric per epoch (when ``metric`` was given).
    val_loss, val_metric : list[float]
        On the validation set (when ``validation`` was given).
    grad_norm : list[float]
        Global gradient norm before clipping, one per optimizer update.
    clipped : list[bool]
        Whether each update was clipped.
    state_grad_norms : dict[str, ndarray]
        For each recurrent layer (by qualified name), ``||dL/dh_t||`` per
        epoch and time step, shape ``(epochs, T)``: the mean over the epoch's
        batches of the batch-level norm. Recorded with full BPTT only.
    skipped : int
        Updates skipped because of non-finite gradients
        (``on_nonfinite="skip"``).
    epoch_time : list[float]
        Wall-clock seconds per epoch.
    best_epoch : int or None
        Epoch with the lowest validation loss (when validating).
    stopped_early : bool
        Whether early stopping or a callback ended training.
    """

    loss: list[float] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)
    state_grad_norms: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: int = 0
    epoch_time: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.loss)


def accuracy(outputs: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Share of valid positions whose arg-max output equals the integer label.

    Parameters
    ----------
    outputs : ndarray, shape (..., C)
    labels : ndarray of int, shape (...)
    mask : ndarray of bool, shape (...), optional

    Examples
    --------
    >>> import numpy as np
    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    hit = np.argmax(outputs, axis=-1) == labels
    if mask is not None:
        n = int(mask.sum())
        return float(hit[mask].sum() / n) if n else 0.0
    return float(hit.mean()) if hit.size else 0.0


class Progress:
    """A one-line text progress bar on a stream (stderr by default).

    On a terminal it redraws in place at most ten times a second; elsewhere
    (logs, CI) it prints one line per ``every`` updates and at the end.

    Parameters
    ----------
    total : int
        Number of updates expected.
    desc : str
        Prefix shown before the bar.
    stream : file, optional
    every : int, optional
        Lines between prints when not on a terminal (default: about 10 lines).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progress(4, "demo", stream=out)
    >>> for _ in range(4):
    ...     bar.update(info="loss 0.1")
    >>> bar.close()
    >>> "4/4" in out.getvalue()
    True
    """

    def __init__(self, total: int, desc: str = "", stream: Any = None, every: int | None = None) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every or max(self.total // 10, 1)
        self.n = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._info = ""

    def update(self, n: int = 1, info: str | None = None) -> None:
        """Advance by ``n`` and optionally replace the trailing text."""
        self.n += n
        if info is not None:
            self._info = info
        now = time.perf_counter()
        if self.tty:
            if now - self._last >= 0.1 or self.n >= self.total:
                self._last = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif self.n % self.every == 0 or self.n == self.total:
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        frac = min(self.n / self.total, 1.0)
        width = 24
        filled = int(round(frac * width))
        elapsed = now - self.start
        eta = elapsed / self.n * (self.total - self.n) if self.n else float("nan")
        bar = "#" * filled + "." * (width - filled)
        return (f"{self.desc} [{bar}] {self.n}/{self.total} "
                f"{elapsed:5.1f}s<{eta:5.1f}s {self._info}").rstrip()

    def close(self) -> None:
        """Finish the line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -- data ------------------------------------------------------------------
def _unpack(data: Any, name: str, dtype: np.dtype | None):
    """Check ``(xs, ys[, mask])``; 2-d static inputs become one-step sequences."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(f"{name}: expected a tuple (xs, targets) or (xs, targets, mask), "
                        f"got {type(data).__name__}" + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    xs, ys = data[0], data[1]
    mask = data[2] if len(data) == 3 else None
    _checks.array(xs, f"{name}[0] (xs)", dtype=dtype)
    if not isinstance(ys, np.ndarray):
        raise TypeError(f"{name}[1] (targets): expected a numpy array, got {type(ys).__name__}")
    if xs.ndim == 2:  # static data (N, D): one step, targets (N, ...)
        if mask is not None:
            raise ValueError(f"{name}[2] (mask): static (N, D) data takes no mask")
        return xs[None], ys, None, True
    if xs.ndim < 2:
        raise ValueError(f"{name}[0] (xs): expected (T, N, D) sequences or (N, D) static data, got shape {xs.shape}")
    if mask is not None:
        _checks.mask_array(mask, xs.shape[0], xs.shape[1], f"{name}[2] (mask)")
    return xs, ys, mask, False


def _last_index(mask: np.ndarray | None, T: int, B: int, name: str) -> np.ndarray:
    """Index of each sequence's last valid step."""
    if mask is None:
        return np.full(B, T - 1)
    lengths_ok = mask.any(axis=0)
    if not lengths_ok.all():
        b = int(np.argmin(lengths_ok))
        raise ValueError(f"{name}: sequence {b} has no valid step; target='last' needs at least one")
    return T - 1 - np.argmax(mask[::-1], axis=0)


def _batch_loss(outputs: np.ndarray, ys: np.ndarray, mask: np.ndarray | None,
                loss: LossFn, target: str, static: bool):
    """Loss value, output gradient and the (outputs, targets, mask) the metric sees."""
    T, B = outputs.shape[:2]
    if target == "every" and not static:
        value, dys = loss(outputs, ys, mask)
        return value, dys, (outputs, ys, mask)
    idx = _last_index(mask, T, B, "mask")
    cols = np.arange(B)
    out_last = outputs[idx, cols]
    value, dlast = loss(out_last, ys, None)
    dys = np.zeros_like(outputs)
    dys[idx, cols] = dlast
    return value, dys, (out_last, ys, None)


def _select(ys: np.ndarray, idx: np.ndarray, target: str, static: bool) -> np.ndarray:
    """Targets of the sequences ``idx``: batch axis 1 for per-step targets, else 0."""
    return ys[:, idx] if target == "every" and not static else ys[idx]


def _check_targets(ys: np.ndarray, xs: np.ndarray, target: str, static: bool, name: str) -> None:
    T, N = xs.shape[:2]
    if target == "every" and not static:
        if ys.ndim < 2 or ys.shape[:2] != (T, N):
            raise ValueError(f"{name}: with target='every' expected targets of shape ({T}, {N}, ...), got {ys.shape}")
    elif ys.ndim < 1 or ys.shape[0] != N:
        raise ValueError(f"{name}: with target='last' expected targets of shape ({N}, ...), got {ys.shape}")


# -- non-finite values -----------------------------------------------------
def _nonfinite_grad(model: Layer, graph: TimeGraph | None, offset: int = 0) -> NonFiniteError | None:
    """The error describing the first non-finite gradient, or None if all are finite.

    ``offset`` is the stream step where ``graph`` starts (truncated BPTT).
    """
    for lname, leaf in model.leaves():
        for pname, g in leaf.grads.items():
            if np.isfinite(g).all():
                continue
            step = None
            if graph is not None and lname in graph.state_grad_norms:
                bad = ~np.isfinite(graph.state_grad_norms[lname])
                if bad.any():  # the walk runs backwards: the latest bad step came first
                    step = offset + int(np.nonzero(bad)[0][-1])
            where = f"layer {lname!r}, " if lname else ""
            at = f" at time step {step}" if step is not None else ""
            return NonFiniteError(f"non-finite gradient in {where}parameter {pname!r}{at} "
                                  f"(try clip=, a smaller learning rate, or on_nonfinite='skip')",
                                  layer=lname, parameter=pname, step=step)
    return None


def _nonfinite_loss(exc: NonFiniteError, graph: TimeGraph | None, offset: int = 0) -> NonFiniteError:
    found = None if graph is None else graph.first_nonfinite_output()
    if found is None:
        return exc
    lname, step = found
    step += offset
    where = f"layer {lname!r}" if lname else "the model"
    return NonFiniteError(f"non-finite loss: the output of {where} is not finite from time step {step} ({exc})",
                          layer=lname, step=step)


def _bptt_setting(bptt: Any) -> tuple[int, int] | None:
    if isinstance(bptt, str) and bptt == "full":
        return None
    if isinstance(bptt, (int, np.integer)) and not isinstance(bptt, bool):
        k = _checks.positive_int(bptt, "bptt")
        return k, k
    if isinstance(bptt, tuple) and len(bptt) == 2:
        k1 = _checks.positive_int(bptt[0], "bptt[0] (k1)")
        k2 = _checks.positive_int(bptt[1], "bptt[1] (k2)")
        if k2 < k1:
            raise ValueError(f"bptt: expected k2 >= k1, got (k1, k2) = ({k1}, {k2})")
        return k1, k2
    raise ValueError(f"bptt: expected 'full', an int k, or a tuple (k1, k2), got {bptt!r}")


# -- the loop --------------------------------------------------------------
def predict(model: Layer, xs: np.ndarray, mask: np.ndarray | None = None,
            batch_size: int = 256) -> np.ndarray:
    """Outputs of ``model`` in evaluation mode, computed in batches.

    Parameters
    ----------
    model : Layer
    xs : ndarray, shape (T, N, D), or (N, D) for static data
    mask : ndarray of bool, shape (T, N), optional
    batch_size : int

    Returns
    -------
    ndarray, shape (T, N, O), or (N, O) for static data

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> predict(rnnbp.Linear(3, 2, seed=0), np.ones((5, 3))).shape
    (5, 2)
    """
    static = isinstance(xs, np.ndarray) and xs.ndim == 2
    xs3 = xs[None] if static else xs
    batch_size = _checks.positive_int(batch_size, "batch_size")
    was = model.training
    model.eval()
    try:
        parts = [unroll(model, xs3[:, i:i + batch_size],
                        mask=None if mask is None else mask[:, i:i + batch_size]).outputs
                 for i in range(0, xs3.shape[1], batch_size)]
    finally:
        model.train(was)
    out = np.concatenate(parts, axis=1)
    return out[0] if static else out


def evaluate(model: Layer, data: Any, loss: LossFn, *, metric: Metric | None = None,
             target: str = "every", batch_size: int = 256) -> tuple[float, float | None]:
    """Loss (and metric) of ``model`` on ``data`` in evaluation mode.

    Parameters
    ----------
    model : Layer
    data : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``, as for :func:`fit`.
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``.
    metric : callable, optional
        ``metric(outputs, targets, mask) -> float``, e.g. :func:`accuracy`.
    target : {"every", "last"}
    batch_size : int

    Returns
    -------
    (loss, metric or None)
        Means over sequences (weighted by batch size).
    """
    xs, ys, mask, static = _unpack(data, "data", model.dtype)
    _check_targets(ys, xs, target, static, "data[1] (targets)")
    outputs = predict(model, xs, mask, batch_size) if not static else predict(model, xs[0], None, batch_size)[None]
    value, _, seen = _batch_loss(outputs, ys, mask, loss, target, static)
    return float(value), (None if metric is None else float(metric(*seen)))


def fit(model: Layer, data: Any, *, loss: LossFn, optimizer: Any, epochs: int = 1,
        batch_size: int = 32, bptt: Any = "full", clip: float | None = None,
        target: str = "every", metric: Metric | None = None,
        validation: Any = None, patience: int | None = None,
        callbacks: Sequence[Callback] = (), seed: int = 0,
        shuffle: bool = True, on_nonfinite: str = "raise",
        progress: bool | None = None) -> History:
    """Train ``model`` on ``data`` by backpropagation through time.

    Parameters
    ----------
    model : Layer
    data : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``. ``xs`` is ``(T, N, D)``
        time-major sequences in the model's dtype, or ``(N, D)`` static data
        (one step, no state: plain backprop). ``mask`` is ``(T, N)`` bool.
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``, e.g.
        ``rnnbp.losses.mse``.
    optimizer : object
        An ``rnnbp.optim`` optimizer built on ``model`` (``step()`` and a
        ``lr``); schedules are stepped by a callback.
    epochs : int, default 1
    batch_size : int, default 32
        Sequences per update.
    bptt : "full", int or (k1, k2), default "full"
        Full BPTT over each batch, or truncated BPTT(k1, k2) through
        ``rnnbp.TruncatedBPTT`` (an int ``k`` means ``(k, k)``), with an
        update after every window and the state carried across windows.
        Truncation needs ``target="every"``.
    clip : float, optional
        Clip the global gradient norm to this value before each update.
    target : {"every", "last"}, default "every"
        ``"every"``: targets ``(T, N, ...)``, one per step. ``"last"``:
        targets ``(N, ...)``, compared with the output at each sequence's
        last valid step. Static ``(N, D)`` data takes targets ``(N, ...)``.
    metric : callable, optional
        ``metric(outputs, targets, mask) -> float``, e.g. ``rnnbp.accuracy``.
    validation : tuple, optional
        Validation data like ``data``; evaluated after every epoch.
    patience : int, optional
        Early stopping: stop when the validation loss has not improved for
        this many epochs, and restore the parameters of the best epoch.
    callbacks : sequence of callables
        ``callback(epoch, history)`` after every epoch; returning ``True``
        stops training.
    seed : int, default 0
        Seeds shuffling and every ``Dropout`` layer: the same seed (and the
        same initial model) gives bit-identical results.
    shuffle : bool, default True
    on_nonfinite : {"raise", "skip"}, default "raise"
        On a non-finite loss or gradient, raise :class:`rnnbp.NonFiniteError`
        (naming the layer, parameter and time step) or skip that update.
    progress : bool, optional
        Show a progress bar on stderr; by default only when stderr is a
        terminal.

    Returns
    -------
    History

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> rng = np.random.default_rng(0)
    >>> xs = rng.normal(size=(10, 64, 1))
    >>> ys = np.cumsum(xs, axis=0) / 3              # running sum: needs memory
    >>> model = rnnbp.Sequential(rnnbp.Elman(1, 16, seed=0), rnnbp.Linear(16, 1, seed=1))
    >>> hist = rnnbp.fit(model, (xs, ys), loss=rnnbp.losses.mse,
    ...                  optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=30, progress=False)
    >>> hist.loss[-1] < hist.loss[0] / 5
    True
    """
    if not isinstance(model, Layer):
        raise TypeError(f"model: expected a rnnbp.Layer, got {type(model).__name__}")
    xs, ys, mask, static = _unpack(data, "data", model.dtype)
    if target not in ("every", "last"):
        raise ValueError(f"target: expected 'every' or 'last', got {target!r}")
    if on_nonfinite not in ("raise", "skip"):
        raise ValueError(f"on_nonfinite: expected 'raise' or 'skip', got {on_nonfinite!r}")
    _check_targets(ys, xs, target, static, "data[1] (targets)")
    epochs = _checks.positive_int(epochs, "epochs")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    truncated = _bptt_setting(bptt)
    if truncated is not None and (target != "every" or static):
        raise ValueError("bptt: truncated BPTT needs per-step targets (target='every') on sequences")
    if patience is not None:
        patience = _checks.positive_int(patience, "patience")
        if validation is None:
            raise ValueError("patience: early stopping needs validation data")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip: expected a positive maximum norm, got {clip!r}")
    if validation is not None:
        vx, vy, _, vstatic = _unpack(validation, "validation", model.dtype)
        _check_targets(vy, vx, target, vstatic, "validation[1] (targets)")

    seeds = np.random.SeedSequence(seed)
    order_rng = np.random.default_rng(seeds.spawn(1)[0])
    dropouts = [leaf for _, leaf in model.leaves() if isinstance(leaf, Dropout)]
    for leaf, s in zip(dropouts, seeds.spawn(len(dropouts) + 1)[1:]):
        leaf.rng = np.random.default_rng(s)

    T, N = xs.shape[:2]
    n_batches = math.ceil(N / batch_size)
    show = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = Progress(epochs * n_batches, "fit") if show else None
    tb = TruncatedBPTT(model, *truncated) if truncated is not None else None
    hist = History()
    best_loss, best_params, waited = math.inf, None, 0
    model.train()

    def update() -> None:
        if clip is not None:
            norm = clip_grad_norm(model, clip)
        else:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in model.grads.values()))
        hist.grad_norm.append(norm)
        hist.clipped.append(clip is not None and norm > clip)
        optimizer.step()

    def attempt(forward_backward: Callable[[], float],
                where: Callable[[], tuple[TimeGraph | None, int]]) -> float | None:
        """Run one forward/backward and update; on a non-finite loss or
        gradient raise (naming layer, parameter, stream step) or skip."""
        try:
            value = forward_backward()
        except NonFiniteError as exc:
            if on_nonfinite == "raise":
                raise _nonfinite_loss(exc, *where()) from None
            hist.skipped += 1
            return None
        err = _nonfinite_grad(model, *where())
        if err is not None:
            if on_nonfinite == "raise":
                raise err
            hist.skipped += 1
            return None
        update()
        return value

    for epoch in range(epochs):
        t_start = time.perf_counter()
        order = order_rng.permutation(N) if shuffle else np.arange(N)
        total, count, metric_sum = 0.0, 0, 0.0
        norm_sums: dict[str, np.ndarray] = {}
        norm_batches = 0
        for b0 in range(0, N, batch_size):
            idx = order[b0:b0 + batch_size]
            bx, by = xs[:, idx], _select(ys, idx, target, static)
            bmask = None if mask is None else mask[:, idx]
            model.zero_grad()
            if tb is not None:
                tb.reset()
                window_sum, window_steps = 0.0, 0
                for t0 in range(0, T, tb.k1):
                    model.zero_grad()
                    sl = slice(t0, min(t0 + tb.k1, T))
                    value = attempt(lambda: tb.step(bx[sl], by[sl], loss, None if bmask is None else bmask[sl]),
                                    lambda: (tb.last_graph, tb.window_start))
                    if value is not None:
                        window_sum += value * (sl.stop - sl.start)  # windows weigh by their new steps
                        window_steps += sl.stop - sl.start
                value = window_sum / window_steps if window_steps else math.nan
                seen = None
            else:
                graph = unroll(model, bx, mask=bmask)
                seen = None

                def full_bptt() -> float:
                    nonlocal seen
                    value, dys, seen = _batch_loss(graph.outputs, by, bmask, loss, target, static)
                    graph.backward(dys)
                    return value

                value = attempt(full_bptt, lambda: (graph, 0))
                if value is None:
                    continue
                norm_batches += 1
                for name, norms in graph.state_grad_norms.items():
                    norm_sums[name] = norm_sums.get(name, 0.0) + norms
            if not math.isnan(value):
                total += value * len(idx)
                count += len(idx)
                if metric is not None and seen is not None:
                    metric_sum += metric(*seen) * len(idx)
            if bar is not None:
                bar.update(info=f"epoch {epoch + 1}/{epochs} loss {value:.4g}")
        hist.loss.append(total / count if count else math.nan)
        if metric is not None and tb is None:
            hist.metric.append(metric_sum / count if count else math.nan)
        for name, s in norm_sums.items():
            row = (s / norm_batches)[None]
            prev = hist.state_grad_norms.get(name)
            hist.state_grad_norms[name] = row if prev is None else np.concatenate([prev, row])
        if validation is not None:
            try:
                vloss, vmetric = evaluate(model, validation, loss, metric=metric, target=target)
            except NonFiniteError:
                if on_nonfinite == "raise":
                    raise
                vloss, vmetric = math.nan, (None if metric is None else math.nan)
            hist.val_loss.append(vloss)
            if vmetric is not None:
                hist.val_metric.append(vmetric)
            if vloss < best_loss:  # False for NaN: a diverged epoch is never the best
                best_loss, waited, hist.best_epoch = vloss, 0, epoch
                if patience is not None:
                    best_params = {k: p.copy() for k, p in model.params.items()}
            else:
                waited += 1
        hist.epoch_time.append(time.perf_counter() - t_start)
        stop = any([cb(epoch, hist) is True for cb in callbacks])  # call every callback
        if patience is not None and waited >= patience:
            stop = True
        if stop:
            hist.stopped_early = epoch < epochs - 1
            break
    if bar is not None:
        bar.close()
    if best_params is not None and patience is not None:
        for k, p in model.params.items():
            p[...] = best_params[k]
    return hist
