"""The training loop: :func:`fit` (:func:`rnnbp.evaluate` and :func:`rnnbp.predict` are in :mod:`rnnbp.inference`).

:func:`fit` is a loop over epochs and minibatches around one training step,
:func:`rnnbp.train_step` (``rnnbp/update.py``: unroll, loss, backward, clip,
update) for full BPTT, or around :meth:`rnnbp.TruncatedBPTT.train_step` for
truncated BPTT, which calls the same step for every window. Everything random (shuffling,
dropout) comes from ``seed``, so the same seed gives bit-identical training, and
``fit(checkpoint=...)``/``fit(resume=...)`` stop and resume a run bit for bit
(:mod:`rnnbp.checkpoint`).

Epochs and updates are numbered from 1 everywhere: ``History.best_epoch``,
the ``epoch`` a callback receives, the ``step`` of ``on_batch_end`` and the
figures' epoch axes (epoch ``k`` is ``history.loss[k - 1]``).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

from . import _checks, _data, _versions, checkpoint as _checkpoint
from .buffers import BufferPool
from .errors import NonFiniteError
from .history import History, Progress
from .protocol import Layer
from .inference import _evaluate
# rnnbp.train (renamed rnnbp.loop in 0.2.0) exposed these; its shim reads them here until 0.3.0.
from .inference import accuracy, evaluate, predict  # noqa: F401
from .update import TARGETS, StepResult, check_optimizer, run_step
from .tbptt import TruncatedBPTT
from .unroll import PATHS

__all__ = ["fit"]   # evaluate, predict, accuracy: rnnbp.inference (still importable from here)

LossFn = Callable[..., tuple[float, np.ndarray]]
Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]
Callback = Callable[[int, "History"], "bool | None"]


# -- the loop ----------------------------------------------------------------
def _callbacks(callbacks: Any) -> tuple[list, list]:
    """Split ``callbacks`` into per-epoch callables and per-batch ``on_batch_end`` methods."""
    if callable(callbacks) or hasattr(callbacks, "on_epoch_end") or hasattr(callbacks, "on_batch_end"):
        callbacks = [callbacks]
    per_epoch, per_batch = [], []
    for i, cb in enumerate(callbacks):
        batch_end, epoch_end = getattr(cb, "on_batch_end", None), getattr(cb, "on_epoch_end", None)
        if batch_end is None and epoch_end is None:
            if not callable(cb):
                raise TypeError(f"callbacks[{i}]: expected a function callback(epoch, history) or an object "
                                f"with on_batch_end(step, loss, grad_norm) and/or "
                                f"on_epoch_end(epoch, history), got {type(cb).__name__}")
            per_epoch.append(cb)
            continue
        for method, name in ((batch_end, "on_batch_end"), (epoch_end, "on_epoch_end")):
            if method is not None and not callable(method):
                raise TypeError(f"callbacks[{i}].{name}: expected a method, got {type(method).__name__}")
        if epoch_end is not None:
            per_epoch.append(epoch_end)
        if batch_end is not None:
            per_batch.append(batch_end)
    return per_epoch, per_batch


def fit(model: Layer, data: Any, *, loss: LossFn, optimizer: Any, epochs: int = 1,
        batch_size: int = 32, bptt: Any = "full", clip: float | None = None,
        target: str = "every", metric: Metric | None = None,
        validation: Any = None, patience: int | None = None, restore_best: bool = True,
        schedule: Any = None, callbacks: Any = (), seed: int = 0,
        shuffle: bool = True, on_nonfinite: str = "raise",
        progress: bool | None = None, path: str = "fast", pool: BufferPool | None = None,
        batch_first: bool = False, checkpoint: Any = None, resume: Any = None) -> History:
    """Train ``model`` on ``data`` by backpropagation through time.

    Parameters
    ----------
    model : Layer
    data : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``. ``xs`` is ``(T, N, D)``
        time-major sequences in the model's dtype (``(N, T, D)`` with
        ``batch_first=True``), or ``(N, D)`` static data for a model without
        recurrent layers (one step, no state: plain backprop). ``mask`` is
        ``(T, N)`` bool. At least one sequence and one step.
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``: any loss of
        :mod:`rnnbp.losses` (``mse``, ``softmax_cross_entropy``,
        ``binary_cross_entropy``, ``ctc``) or one of yours with that protocol.
    optimizer : object
        An ``rnnbp.optim`` optimizer built on ``model`` (``step()`` and a
        ``lr``).
    epochs : int, default 1
        The total number of epochs, counting those of a resumed checkpoint.
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
        last valid step. ``"sequence"``: one target per sequence, compared
        with its whole output sequence; for ``rnnbp.losses.ctc`` the label
        sequences, as a list of ``N`` 1-d int arrays (ragged) or a padded
        ``(N, L_max)`` int array whose padding is ``-1``
        (:data:`rnnbp.ctc.PAD`). Static ``(N, D)`` data takes targets ``(N, ...)``.
    metric : callable, optional
        ``metric(outputs, targets, mask) -> float``, e.g. ``rnnbp.accuracy``.
    validation : tuple, optional
        Validation data like ``data``; evaluated after every epoch.
    patience : int, optional
        Early stopping: stop when the validation loss has not improved for
        this many epochs.
    restore_best : bool, default True
        With ``patience``: at the end of training -- stopped early *or*
        after all ``epochs`` -- set the parameters to those of the epoch
        with the lowest validation loss (``history.best_epoch``), as Keras's
        ``EarlyStopping(restore_best_weights=True)``. ``False`` keeps the
        last epoch's parameters.
    schedule : rnnbp.schedules schedule, optional
        A learning-rate schedule on ``optimizer``, stepped once after every
        epoch (and saved in checkpoints).
    callbacks : callable, object or sequence of them
        A function ``callback(epoch, history)`` runs after every epoch
        (``epoch`` counts from 1); returning ``True`` stops training. An
        object may instead have ``on_epoch_end(epoch, history)`` (the same)
        and/or ``on_batch_end(step, loss, grad_norm)``, called after every
        update (``step`` counts updates from 1 over the whole run; its
        return value is ignored).
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
    batch_first : bool, default False
        ``xs`` (and the validation inputs) are ``(N, T, D)``, masks
        ``(N, T)`` and ``target="every"`` targets ``(N, T, ...)``, as with
        PyTorch's ``batch_first=True``; converted once to time-major views.
    checkpoint : str or os.PathLike, optional
        After every epoch, write everything needed to resume -- model,
        optimizer and schedule state, history, epoch count, best weights,
        random generator states -- to this one file, atomically
        (``.npz`` appended when missing; see :mod:`rnnbp.checkpoint`).
    resume : str or os.PathLike, optional
        Continue the run saved in this checkpoint up to ``epochs`` in total:
        the parameters, optimizer, schedule, history and generators are
        restored, so the result equals the uninterrupted run bit for bit.
        ``model``, ``optimizer`` and ``schedule`` must be built as for the
        saved run; a run that had stopped (early stopping or a callback)
        stays stopped. Raises :class:`rnnbp.LoadError` for a file that is
        not such a checkpoint or does not match them.

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
    # -- every check, once -------------------------------------------------
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    _checks.function(loss, "loss", "rnnbp.losses.mse")
    target = _checks.choice(target, "target", TARGETS)
    on_nonfinite = _checks.choice(on_nonfinite, "on_nonfinite", ("raise", "skip"))
    path = _checks.choice(path, "path", PATHS)
    batch_first = _checks.flag(batch_first, "batch_first")
    restore_best = _checks.flag(restore_best, "restore_best")
    check_optimizer(optimizer, model)
    if schedule is not None and getattr(schedule, "optimizer", None) is not optimizer:
        raise ValueError(f"schedule: expected a schedule built on the optimizer passed to fit, got "
                         f"{type(schedule).__name__} on {getattr(schedule, 'optimizer', None)!r}")
    if metric is not None:
        _checks.function(metric, "metric", "rnnbp.accuracy")
    per_epoch, per_batch = _callbacks(callbacks)
    xs, ys, mask, static = _data.unpack(data, "data", model, target, batch_first)
    _data.check_targets(ys, xs, target, static, "data[1] (targets)", mask)
    epochs = _checks.positive_int(epochs, "epochs")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    truncated = _data.bptt_setting(bptt)
    if truncated is not None and (target != "every" or static):
        raise ValueError("bptt: truncated BPTT needs per-step targets (target='every') on sequences")
    if patience is not None:
        patience = _checks.positive_int(patience, "patience")
        if validation is None:
            raise ValueError("patience: early stopping needs validation data")
    if clip is not None:
        clip = _checks.positive_number(clip, "clip")
    if validation is not None:
        val = _data.unpack(validation, "validation", model, target, batch_first)
        _data.check_targets(val[1], val[0], target, val[3], "validation[1] (targets)", val[2])
    if static:
        target = "last"                                  # one step: the targets are per sample
    T, N = xs.shape[:2]
    settings = {"batch_size": batch_size, "shuffle": bool(shuffle), "bptt": list(truncated or ()),
                "target": target, "patience": patience, "sequences": int(N)}

    # -- the run's state: fresh from seed, or restored ----------------------
    leaves = [leaf for _, leaf in model.leaves()]
    order_seed, *leaf_seeds = np.random.SeedSequence(seed).spawn(1 + len(leaves))
    rngs = [np.random.default_rng(s) for s in [order_seed, *leaf_seeds]]
    hist, done, best_loss, best_params, waited, stopped = History(), 0, math.inf, None, 0, False
    if resume is not None:
        saved = _checkpoint.read(resume, model=model, optimizer=optimizer, schedule=schedule, n_rngs=len(rngs))
        for g, state in zip(rngs, saved.rng_states):
            g.bit_generator.state = state
        hist, done, best_loss, best_params, waited, stopped = (saved.history, saved.epochs_done, saved.best_loss,
                                                               saved.best_params, saved.waited, saved.stopped)
        changed = {k: (saved.settings.get(k), v) for k, v in settings.items() if saved.settings.get(k) != v}
        if changed:
            warnings.warn(f"resume: the run continues with other settings than the checkpoint's "
                          f"(setting: (saved, now)) {changed}, so it will not equal the uninterrupted run",
                          stacklevel=2)
    order_rng = rngs[0]
    for leaf, g in zip(leaves, rngs[1:]):
        leaf.reseed(g)

    show = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar = Progress(max(epochs - done, 0) * math.ceil(N / batch_size), "fit") if show and not stopped else None
    tbptt = TruncatedBPTT(model, *truncated, path=path, pool=pool) if truncated is not None else None
    model.train()

    for epoch in range(done + 1, epochs + 1 if not stopped else done + 1):   # epochs count from 1
        t_start = time.perf_counter()
        order = order_rng.permutation(N) if shuffle else np.arange(N)
        totals = {"loss": 0.0, "metric": 0.0, "weight": 0.0}
        norm_sums: dict[str, np.ndarray] = {}            # ||dL/dh_t|| summed over batches where t runs
        norm_counts: dict[str, np.ndarray] = {}
        for b0 in range(0, N, batch_size):
            idx = order[b0:b0 + batch_size]
            batch = (xs[:, idx], _data.take(ys, idx, target), None if mask is None else mask[:, idx])
            if tbptt is None:
                steps = [_attempt(lambda: run_step(model, batch, loss, optimizer, clip=clip, target=target,
                                                   path=path, pool=pool), hist, on_nonfinite, idx)]
                windows = [1]
            else:
                tbptt.reset()
                steps, windows = [], []
                for t0 in range(0, T, tbptt.k1):
                    window = tuple(None if a is None else a[t0:t0 + tbptt.k1] for a in batch)
                    steps.append(_attempt(lambda: tbptt._window(window, loss, optimizer, clip),
                                          hist, on_nonfinite, idx))
                    windows.append(window[0].shape[0])   # a window weighs by its new steps
            for step, weight in zip(steps, windows):
                if step is None:
                    continue
                for on_batch_end in per_batch:
                    on_batch_end(len(hist.grad_norm), step.loss, step.grad_norm)
                w = weight * len(idx)
                totals["loss"] += step.loss * w
                totals["weight"] += w
                if metric is not None:
                    totals["metric"] += metric(*step.seen) * w
            if tbptt is None and steps[0] is not None:
                for name, (norms, running) in steps[0].graph.running_state_grad_norms().items():
                    norm_sums[name] = norm_sums.get(name, 0.0) + norms
                    norm_counts[name] = norm_counts.get(name, 0) + running
            if bar is not None:
                last = next((s.loss for s in reversed(steps) if s is not None), math.nan)
                bar.update(info=f"epoch {epoch}/{epochs} loss {last:.4g}")
        weight = totals["weight"]
        hist.loss.append(totals["loss"] / weight if weight else math.nan)
        if metric is not None:
            hist.metric.append(totals["metric"] / weight if weight else math.nan)
        for name, s in norm_sums.items():
            c = norm_counts[name]
            row = np.divide(s, c, out=np.full(s.shape, np.nan), where=c > 0)[None]
            prev = hist.state_grad_norms.get(name)
            hist.state_grad_norms[name] = row if prev is None else np.concatenate([prev, row])
        if validation is not None:
            try:
                vloss, vmetric = _evaluate(model, val, loss, metric, target, 256, path)
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
        if schedule is not None:
            schedule.step()
        stopped = any([cb(epoch, hist) is True for cb in per_epoch])  # call every callback
        if patience is not None and waited >= patience:
            stopped = True
        hist.stopped_early = stopped and epoch < epochs
        if checkpoint is not None:
            _checkpoint.write(checkpoint, model=model, optimizer=optimizer, schedule=schedule, history=hist,
                              epochs_done=epoch, best_loss=best_loss, waited=waited, best_params=best_params,
                              rngs=rngs, settings=settings, stopped=stopped)
        if stopped:
            break
    if bar is not None:
        bar.close()
    if best_params is not None and restore_best:
        for k, p in model.params.items():
            p[...] = best_params[k]
            _versions.bump(p)
    return hist


def _attempt(step: Callable[[], StepResult], hist: History, on_nonfinite: str,
             idx: np.ndarray) -> StepResult | None:
    """Run one training step; record its norm, or count it skipped on a non-finite value.

    Errors name sequences by their place in the data, not in the shuffled minibatch.
    """
    try:
        result = step()
    except NonFiniteError as exc:
        if on_nonfinite == "raise":
            moved = NonFiniteError(_data.in_data_coordinates(str(exc), idx), layer=exc.layer,
                                   parameter=exc.parameter, step=exc.step)
            moved.graph = getattr(exc, "graph", None)    # type: ignore[attr-defined]
            raise moved from exc
        hist.skipped += 1
        return None
    except ValueError as exc:
        raise ValueError(_data.in_data_coordinates(str(exc), idx)) from exc
    hist.grad_norm.append(result.grad_norm)
    hist.clipped.append(result.clipped)
    return result
