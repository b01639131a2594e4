"""Training and inference: :func:`fit`, :func:`evaluate`, :func:`predict`.

:func:`fit` is a loop over epochs and minibatches around one training step,
:func:`rnnbp.train_step` (``rnnbp/update.py``: unroll, loss, backward, clip,
update) for full BPTT, or around :meth:`rnnbp.TruncatedBPTT.train_step` for
truncated BPTT, which calls the same step for every window. Everything random (shuffling,
dropout) comes from ``seed``, so the same seed gives bit-identical training.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import _checks
from .buffers import BufferPool
from .errors import NonFiniteError
from .history import History, Progress
from .protocol import Layer
from .update import StepResult, check_optimizer, last_valid_step, loss_and_grad, train_step
from .tbptt import TruncatedBPTT
from .unroll import PATHS, unroll

__all__ = ["fit", "evaluate", "predict", "accuracy"]

LossFn = Callable[..., tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]
Callback = Callable[[int, "History"], "bool | None"]
TARGETS = ("every", "last", "sequence")


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


# -- data --------------------------------------------------------------------
def _recurrent(model: Layer) -> list[str]:
    return [name or type(leaf).__name__ for name, leaf in model.leaves() if leaf.state_sizes]


def _unpack(data: Any, name: str, model: Layer):
    """Check ``(xs, ys[, mask])``; 2-d static inputs become one-step sequences."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(f"{name}: expected a tuple (xs, targets) or (xs, targets, mask), "
                        f"got {type(data).__name__}" + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    xs, ys = data[0], data[1]
    mask = data[2] if len(data) == 3 else None
    if not isinstance(ys, np.ndarray):
        raise TypeError(f"{name}[1] (targets): expected a numpy array, got {type(ys).__name__}")
    if model.takes_ids:                                  # integer ids (T, N): sequences of tokens
        _checks.ids(xs, f"{name}[0] (xs)", ndim=2)
        if mask is not None:
            _checks.mask_array(mask, xs.shape[0], xs.shape[1], f"{name}[2] (mask)")
        return xs, ys, mask, False
    _checks.array(xs, f"{name}[0] (xs)", dtype=model.dtype)
    if xs.ndim == 2:
        recurrent = _recurrent(model)
        if recurrent:
            n, d = xs.shape
            raise ValueError(
                f"{name}[0] (xs): got 2-d data of shape {xs.shape}, but the model is recurrent "
                f"(layer {recurrent[0]!r} has state), and 2-d data would be read as {n} independent "
                f"one-step samples. Sequences are time-major (T, N, D): for one sequence of {n} steps "
                f"use xs[:, None] (shape ({n}, 1, {d})); for N sequences stack them as (T, N, D).")
        if mask is not None:
            raise ValueError(f"{name}[2] (mask): static (N, D) data takes no mask")
        return xs[None], ys, None, True
    if xs.ndim < 2:
        raise ValueError(f"{name}[0] (xs): expected (T, N, D) sequences or (N, D) static data, got shape {xs.shape}")
    if mask is not None:
        _checks.mask_array(mask, xs.shape[0], xs.shape[1], f"{name}[2] (mask)")
    return xs, ys, mask, False


def _check_targets(ys: np.ndarray, xs: np.ndarray, target: str, static: bool, name: str) -> None:
    T, N = xs.shape[:2]
    if target == "every" and not static:
        ok, want = ys.ndim >= 2 and ys.shape[:2] == (T, N), f"({T}, {N}, ...)"
    else:
        ok, want = ys.ndim >= 1 and ys.shape[0] == N, f"({N}, ...)"
    if ok:
        return
    if not static and xs.ndim == 3 and ys.ndim >= 1 and (
            (target == "last" and ys.shape[0] == T) or (target == "every" and ys.shape[:2] == (N, T))):
        first = "sequences first" if target != "every" else "steps first, then sequences"
        raise ValueError(f"xs looks batch-major (N, T, D) = {xs.shape} (the targets have {first}); "
                         f"rnnbp is time-major: use xs.transpose(1, 0, 2)")
    raise ValueError(f"{name}: with target={target!r} expected targets of shape {want}, got {ys.shape}")


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


# -- inference ---------------------------------------------------------------
def predict(model: Layer, xs: np.ndarray, mask: np.ndarray | None = None,
            batch_size: int = 256, *, target: str = "every", path: str = "fast") -> np.ndarray:
    """Outputs of ``model`` in evaluation mode, computed in batches.

    Parameters
    ----------
    model : Layer
    xs : ndarray, shape (T, N, D), or (N, D) for a static model
    mask : ndarray of bool, shape (T, N), optional
    batch_size : int
    target : {"every", "last", "sequence"}, default "every"
        ``"every"`` and ``"sequence"``: every step's output. ``"last"``:
        each sequence's output at its last valid step, as ``fit``/``evaluate``
        use with ``target="last"``.
    path : {"fast", "step"}

    Returns
    -------
    ndarray
        ``(T, N, O)`` with ``target="every"``; ``(N, O)`` with
        ``target="last"`` or for static ``(N, D)`` data.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> predict(rnnbp.Linear(3, 2, seed=0), np.ones((5, 3))).shape
    (5, 2)
    >>> predict(rnnbp.Elman(3, 2, seed=0), np.ones((7, 5, 3)), target="last").shape
    (5, 2)
    """
    _checks.choice(target, "target", TARGETS)
    xs3, _, mask, static = _unpack((xs, np.empty(0), mask) if mask is not None else (xs, np.empty(0)),
                                   "xs", model)
    batch_size = _checks.positive_int(batch_size, "batch_size")
    was = model.training
    model.eval()
    try:
        parts = [unroll(model, xs3[:, i:i + batch_size],
                        mask=None if mask is None else mask[:, i:i + batch_size], path=path).outputs
                 for i in range(0, xs3.shape[1], batch_size)]
    finally:
        model.train(was)
    out = np.concatenate(parts, axis=1)
    if static:
        return out[0]
    if target == "last":
        T, N = out.shape[:2]
        return out[last_valid_step(mask, T, N), np.arange(N)]
    return out


def evaluate(model: Layer, data: Any, loss: LossFn, *, metric: Metric | None = None,
             target: str = "every", batch_size: int = 256, path: str = "fast") -> tuple[float, float | None]:
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
    target : {"every", "last", "sequence"}
        As for :func:`fit`.
    batch_size : int
    path : {"fast", "step"}

    Returns
    -------
    (loss, metric or None)
        Means over sequences (weighted by batch size).
    """
    _checks.choice(target, "target", TARGETS)
    _checks.function(loss, "loss", "rnnbp.losses.mse")
    xs, ys, mask, static = _unpack(data, "data", model)
    _check_targets(ys, xs, target, static, "data[1] (targets)")
    outputs = predict(model, xs if not static else xs[0], mask, batch_size, path=path)
    if static:
        outputs = outputs[None]
    value, _, seen = loss_and_grad(outputs, ys, mask, loss, "last" if static else target)
    return float(value), (None if metric is None else float(metric(*seen)))


# -- the loop ----------------------------------------------------------------
def fit(model: Layer, data: Any, *, loss: LossFn, optimizer: Any, epochs: int = 1,
        batch_size: int = 32, bptt: Any = "full", clip: float | None = None,
        target: str = "every", metric: Metric | None = None,
        validation: Any = None, patience: int | None = None,
        callbacks: Sequence[Callback] = (), seed: int = 0,
        shuffle: bool = True, on_nonfinite: str = "raise",
        progress: bool | None = None, path: str = "fast", pool: BufferPool | None = None) -> History:
    """Train ``model`` on ``data`` by backpropagation through time.

    Parameters
    ----------
    model : Layer
    data : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``. ``xs`` is ``(T, N, D)``
        time-major sequences in the model's dtype, or ``(N, D)`` static data
        for a model without recurrent layers (one step, no state: plain
        backprop). ``mask`` is ``(T, N)`` bool.
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
    target : {"every", "last", "sequence"}, default "every"
        ``"every"``: targets ``(T, N, ...)``, one per step. ``"last"``:
        targets ``(N, ...)``, compared with the output at each sequence's
        last valid step. ``"sequence"``: targets ``(N, ...)``, one per
        sequence, compared with its whole output sequence (e.g. label
        sequences for ``rnnbp.losses.ctc``; the loss gets the ``(T, B, C)``
        outputs, the ``(B, ...)`` targets and the mask). Static ``(N, D)`` data takes targets ``(N, ...)``.
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
        Seeds shuffling and every layer that draws random numbers (through
        ``Layer.reseed``): the same seed (and the same initial model) gives
        bit-identical results.
    shuffle : bool, default True
    on_nonfinite : {"raise", "skip"}, default "raise"
        On a non-finite loss or gradient, raise :class:`rnnbp.NonFiniteError`
        (naming the layer, parameter and time step) or skip that update.
    progress : bool, optional
        Show a progress bar on stderr; by default only when stderr is a
        terminal.
    path : {"fast", "step"}, default "fast"
        How the layers run (see :func:`rnnbp.unroll`): ``"step"`` calls every
        layer's one-step ``forward``/``backward``, so a breakpoint in a cell's
        ``backward`` is hit; same gradients to rounding, slower.
    pool : BufferPool, optional
        Reuse the cell kernels' large internal arrays from step to step
        through this explicit, bounded pool (:class:`rnnbp.BufferPool`):
        bit-identical results, fewer page faults, memory kept until
        ``pool.clear()``. ``None`` (the default): fresh arrays every step.

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
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    _checks.function(loss, "loss", "rnnbp.losses.mse")
    target = _checks.choice(target, "target", TARGETS)
    on_nonfinite = _checks.choice(on_nonfinite, "on_nonfinite", ("raise", "skip"))
    path = _checks.choice(path, "path", PATHS)
    check_optimizer(optimizer, model)
    if metric is not None:
        _checks.function(metric, "metric", "rnnbp.accuracy")
    xs, ys, mask, static = _unpack(data, "data", model)
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
    if clip is not None:
        clip = _checks.positive_number(clip, "clip")
    if validation is not None:
        vx, vy, _, vstatic = _unpack(validation, "validation", model)
        _check_targets(vy, vx, target, vstatic, "validation[1] (targets)")
    if static:
        target = "last"                                  # one step: the targets are per sample

    seeds = np.random.SeedSequence(seed)
    order_seed, *leaf_seeds = seeds.spawn(1 + len(list(model.leaves())))
    order_rng = np.random.default_rng(order_seed)
    for (_, leaf), s in zip(model.leaves(), leaf_seeds):
        leaf.reseed(np.random.default_rng(s))

    T, N = xs.shape[:2]
    show = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = Progress(epochs * math.ceil(N / batch_size), "fit") if show else None
    tbptt = TruncatedBPTT(model, *truncated, path=path, pool=pool) if truncated is not None else None
    hist = History()
    best_loss, best_params, waited = math.inf, None, 0
    model.train()

    for epoch in range(epochs):
        t_start = time.perf_counter()
        order = order_rng.permutation(N) if shuffle else np.arange(N)
        totals = {"loss": 0.0, "metric": 0.0, "weight": 0.0}
        norm_sums: dict[str, np.ndarray] = {}
        norm_batches = 0
        for b0 in range(0, N, batch_size):
            idx = order[b0:b0 + batch_size]
            batch = (xs[:, idx], ys[:, idx] if target == "every" else ys[idx],
                     None if mask is None else mask[:, idx])
            if tbptt is None:
                steps = [_attempt(lambda: train_step(model, batch, loss, optimizer, clip=clip,
                                                     target=target, path=path, pool=pool),
                                  hist, on_nonfinite)]
                windows = [1]
            else:
                tbptt.reset()
                steps, windows = [], []
                for t0 in range(0, T, tbptt.k1):
                    window = tuple(None if a is None else a[t0:t0 + tbptt.k1] for a in batch)
                    steps.append(_attempt(lambda: tbptt.train_step(window, loss, optimizer, clip=clip),
                                          hist, on_nonfinite))
                    windows.append(window[0].shape[0])   # a window weighs by its new steps
            for step, weight in zip(steps, windows):
                if step is None:
                    continue
                w = weight * len(idx)
                totals["loss"] += step.loss * w
                totals["weight"] += w
                if metric is not None:
                    totals["metric"] += metric(*step.seen) * w
            if tbptt is None and steps[0] is not None:
                norm_batches += 1
                for name, norms in steps[0].graph.state_grad_norms.items():
                    norm_sums[name] = norm_sums.get(name, 0.0) + norms
            if bar is not None:
                last = next((s.loss for s in reversed(steps) if s is not None), math.nan)
                bar.update(info=f"epoch {epoch + 1}/{epochs} loss {last:.4g}")
        weight = totals["weight"]
        hist.loss.append(totals["loss"] / weight if weight else math.nan)
        if metric is not None:
            hist.metric.append(totals["metric"] / weight if weight else math.nan)
        for name, s in norm_sums.items():
            row = (s / norm_batches)[None]
            prev = hist.state_grad_norms.get(name)
            hist.state_grad_norms[name] = row if prev is None else np.concatenate([prev, row])
        if validation is not None:
            try:
                vloss, vmetric = evaluate(model, validation, loss, metric=metric, target=target, path=path)
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
    if best_params is not None:
        for k, p in model.params.items():
            p[...] = best_params[k]
    return hist


def _attempt(step: Callable[[], StepResult], hist: History, on_nonfinite: str) -> StepResult | None:
    """Run one training step; record its norm, or count it skipped on a non-finite value."""
    try:
        result = step()
    except NonFiniteError:
        if on_nonfinite == "raise":
            raise
        hist.skipped += 1
        return None
    hist.grad_norm.append(result.grad_norm)
    hist.clipped.append(result.clipped)
    return result
