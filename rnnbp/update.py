"""One training step, read top to bottom the way the data flows: :func:`train_step`.

::

    graph = unroll(model, xs)            # forward: the time graph    (rnnbp/unroll.py)
    loss, dys = loss(graph.outputs, ys)  # the loss and dL/dy_t       (rnnbp/losses.py)
    graph.backward(dys)                  # BPTT into model.grads      (rnnbp/unroll.py, the cells)
    clip_grad_norm(model, clip)          # optional                   (rnnbp/clip.py)
    optimizer.step()                     # p -= lr * ...              (rnnbp/optim.py)

``rnnbp.fit`` (``rnnbp/loop.py``) calls it once per minibatch for full
BPTT; :class:`rnnbp.TruncatedBPTT` calls it once per window. A non-finite
loss or gradient raises :class:`rnnbp.NonFiniteError` naming the layer, the
parameter and the 0-based time step, and leaves the parameters unchanged.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _checks, buffers
from .buffers import BufferPool
from .clip import clip_grad_norm, global_norm
from .errors import NonFiniteError, nonfinite_gradient
from .protocol import Layer, State
from .unroll import TimeGraph, unroll

__all__ = ["train_step", "StepResult", "loss_and_grad", "last_valid_step", "check_optimizer"]

LossFn = Callable[..., tuple[float, np.ndarray]]
#: What a loss is computed on: every step's output, each sequence's last valid step, or each whole sequence.
TARGETS = ("every", "last", "sequence")


@dataclass
class StepResult:
    """What :func:`train_step` did.

    Attributes
    ----------
    loss : float
        The loss of the step's outputs (before the update).
    grad_norm : float
        Global gradient norm before clipping.
    clipped : bool
        Whether the gradients were clipped.
    graph : TimeGraph
        The step's time graph (its ``state_grad_norms`` show how far the
        error reached back).
    seen : tuple
        ``(outputs, targets, mask)`` as the loss saw them, for a metric.
    """

    loss: float
    grad_norm: float
    clipped: bool
    graph: TimeGraph = field(repr=False)
    seen: tuple = field(repr=False)


def train_step(model: Layer, batch: tuple, loss: LossFn, optimizer: Any, *,
               clip: float | None = None, target: str = "every", path: str = "fast",
               state: State | None = None, loss_from: int = 0, t0: int = 0,
               pool: BufferPool | None = None) -> StepResult:
    """One step of training: unroll, loss, backward, clip, update.

    Parameters
    ----------
    model : Layer
    batch : tuple
        ``(xs, targets)`` or ``(xs, targets, mask)``: ``xs`` of shape
        ``(T, B, D)``, ``mask`` ``(T, B)`` bool. Targets ``(T, B, ...)`` with
        ``target="every"``, ``(B, ...)`` with ``target="last"`` or
        ``"sequence"``.
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``, e.g.
        ``rnnbp.losses.mse``.
    optimizer : object or None
        An ``rnnbp.optim`` optimizer built on ``model``; ``None`` leaves the
        parameters alone (the gradients stay in ``model.grads``).
    clip : float, optional
        Clip the global gradient norm to this value before the update.
    target : {"every", "last", "sequence"}
        Loss on every step's output, on each sequence's last valid step, or
        on each whole output sequence against one target per sequence (a
        label sequence for ``rnnbp.losses.ctc``: a list of ``B`` 1-d int
        arrays, or a padded ``(B, L_max)`` int array, padding ``-1``).
        Anything else is a ``ValueError`` naming ``target``.
    path : {"fast", "step"}
        How the layers run (see :func:`rnnbp.unroll`); ``"step"`` calls every
        layer's one-step ``forward``/``backward``.
    state : state, optional
        Initial state (zeros when omitted).
    loss_from : int, default 0
        Outputs before this step carry no loss (truncated BPTT re-runs the
        steps of the previous window this way); targets and mask then cover
        the steps from ``loss_from`` on.
    t0 : int, default 0
        The stream step at which ``xs`` starts, so that errors name the
        right time step (truncated BPTT).
    pool : BufferPool, optional
        An explicit pool for the cell kernels' internal arrays and the CTC
        loss's scratch (see :func:`rnnbp.unroll` and
        :class:`rnnbp.BufferPool`); ``None``: fresh arrays.

    Returns
    -------
    StepResult

    Raises
    ------
    NonFiniteError
        When the loss or a gradient is NaN or infinite, naming the layer,
        parameter and time step; the parameters are then left unchanged.
        The error's ``graph`` attribute is the step's time graph (truncated
        BPTT carries the stream's state on from a finite forward pass).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> model = rnnbp.Sequential(rnnbp.LSTM(2, 8, seed=0), rnnbp.Linear(8, 1, seed=1))
    >>> xs = np.random.default_rng(0).normal(size=(6, 4, 2))
    >>> ys = xs.sum(axis=2, keepdims=True)
    >>> step = rnnbp.train_step(model, (xs, ys), rnnbp.losses.mse, rnnbp.optim.SGD(model, lr=0.1),
    ...                         clip=1.0, path="step")
    >>> step.graph.path, step.grad_norm > 0
    ('step', True)
    """
    target = _checks.choice(target, "target", TARGETS)
    if optimizer is not None:
        check_optimizer(optimizer, model)
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(f"batch: expected a tuple (xs, targets) or (xs, targets, mask), got "
                        f"{type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    return run_step(model, batch, loss, optimizer, clip=clip, target=target, path=path, state=state,
                loss_from=loss_from, t0=t0, pool=pool)


def run_step(model: Layer, batch: tuple, loss: LossFn, optimizer: Any, *, clip: float | None,
         target: str, path: str, state: State | None = None, loss_from: int = 0, t0: int = 0,
         pool: BufferPool | None = None) -> StepResult:
    """:func:`train_step` on arguments already checked (``fit`` checks once, then calls this per minibatch)."""
    xs, targets = batch[0], batch[1]
    mask = batch[2] if len(batch) == 3 else None
    graph = unroll(model, xs, state, mask, path=path, pool=pool)  # forward through time: the graph
    try:
        with contextlib.nullcontext() if pool is None else buffers.using(pool):  # (CTC's scratch)
            value, dys, seen = loss_and_grad(graph.outputs, targets, mask, loss, target, loss_from)
    except NonFiniteError as exc:
        raise _with_graph(_nonfinite_loss(exc, graph, t0, loss_from), graph) from None
    model.zero_grad()
    graph.backward(dys)                                          # BPTT: dL/dparams into model.grads
    norm = global_norm(model)
    if not math.isfinite(norm):
        raise _with_graph(_nonfinite_grad(model, graph, t0), graph)
    clipped = clip is not None and norm > clip
    if clipped:
        clip_grad_norm(model, clip)                              # rescale to the global norm `clip`
    if optimizer is not None:
        optimizer.step()                                         # p -= lr * (update from grads)
    return StepResult(float(value), norm, clipped, graph, seen)


def check_optimizer(optimizer: Any, model: Layer) -> None:
    """The optimizer must update this model's arrays (the same objects, not equal copies)."""
    if not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer: expected an rnnbp.optim optimizer (with a step() method) built on the "
                        f"model, got {type(optimizer).__name__}")
    params = getattr(optimizer, "params", None)
    if params is None:
        return                                           # a user's optimizer: trust it
    theirs = {id(p) for p in params.values()}
    missing = [k for k, p in model.params.items() if id(p) not in theirs]
    if missing:
        raise ValueError(f"optimizer: it updates other arrays than the model's (it was built on another "
                         f"model, or before the model's arrays were replaced): the model's {missing[:3]}"
                         f"{'...' if len(missing) > 3 else ''} are not among the optimizer's "
                         f"{sorted(params)[:3]}{'...' if len(params) > 3 else ''}; build it with "
                         f"{type(optimizer).__name__}(model, ...)")


def loss_and_grad(outputs: np.ndarray, ys: np.ndarray, mask: np.ndarray | None,
                   loss: LossFn, target: str, loss_from: int = 0):
    """The loss on the outputs ``target`` selects, its gradient with respect to every output, what it saw.

    Parameters
    ----------
    outputs : ndarray, shape (T, B, O)
    ys : ndarray
        Targets: ``(T - loss_from, B, ...)`` with ``target="every"``,
        ``(B, ...)`` with ``target="last"`` or ``"sequence"``.
    mask : ndarray of bool, shape (T, B), or None
    loss : callable
        ``loss(outputs, targets, mask) -> (value, doutputs)``.
    target : {"every", "last", "sequence"}
        Every step's output (from ``loss_from`` on) against per-step
        targets; each sequence's output at its last valid step; or every
        step's output against one target per sequence (CTC: the loss sees
        the ``(T, B, C)`` outputs, the ``(B, ...)`` labels and the mask).
    loss_from : int, default 0

    Returns
    -------
    value : float
    dys : ndarray, shape (T, B, O)
        Zero where the loss saw no output.
    seen : tuple
        ``(outputs, targets, mask)`` as the loss saw them.
    """
    T, B = outputs.shape[:2]
    dys = np.zeros_like(outputs)
    if target in ("every", "sequence"):
        seen = (outputs[loss_from:], ys, None if mask is None else mask[loss_from:])
        value, dys[loss_from:] = loss(*seen)
        return value, dys, seen
    idx, cols = last_valid_step(mask, T, B), np.arange(B)
    seen = (outputs[idx, cols], ys, None)
    value, dys[idx, cols] = loss(*seen)
    return value, dys, seen


def last_valid_step(mask: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """Index of each sequence's last valid step, shape ``(B,)`` (any mask, prefix or not).

    Examples
    --------
    >>> import numpy as np
    >>> last_valid_step(np.array([[0, 1, 1], [0, 0, 1], [1, 1, 1], [1, 0, 1], [1, 0, 0]], bool), 5, 3)
    array([4, 2, 3])
    """
    if mask is None:
        return np.full(B, T - 1)
    valid = mask.any(axis=0)
    if not valid.all():
        b = int(np.argmin(valid))
        raise ValueError(f"mask: sequence {b} has no valid step; target='last' needs at least one")
    return T - 1 - np.argmax(mask[::-1], axis=0)


# -- non-finite values: name the layer, the parameter and the time step -------
def _with_graph(exc: NonFiniteError, graph: TimeGraph) -> NonFiniteError:
    exc.graph = graph                                    # type: ignore[attr-defined]
    return exc


_HINT = "try clip=, a smaller learning rate, or on_nonfinite='skip'"


def _nonfinite_grad(model: Layer, graph: TimeGraph, t0: int) -> NonFiniteError:
    """The error for a non-finite gradient, with the latest step where ``||dL/dh_t||`` went bad."""
    bad = [name for name, g in model.grads.items() if not np.isfinite(g).all()]
    step = None
    if bad:
        norms = graph.state_grad_norms.get(bad[0].rpartition(".")[0])
        if norms is not None and (~np.isfinite(norms)).any():    # the walk runs backwards: latest bad step first
            step = t0 + int(np.nonzero(~np.isfinite(norms))[0][-1])
    return nonfinite_gradient(model.grads, "non-finite gradient", step=step, hint=_HINT)


def _nonfinite_loss(exc: NonFiniteError, graph: TimeGraph, t0: int, loss_from: int) -> NonFiniteError:
    """The loss's error with stream time steps: the layer whose output first went bad, or the loss's position.

    A loss numbers the steps of the outputs it saw from 0; the stream step
    is ``t0 + loss_from`` more (truncated BPTT), so every step in the message
    and in ``.step`` is the same 0-based stream step.
    """
    found = graph.first_nonfinite_output()
    if found is not None:
        layer, step = found
        where = f"layer {layer!r}" if layer else "the model"
        return NonFiniteError(f"non-finite loss: the output of {where} is not finite from time step "
                              f"{t0 + step} ({_shift(str(exc), t0 + loss_from)})", layer=layer, step=t0 + step)
    offset = t0 + loss_from
    if exc.step is None or not offset:
        return exc
    return NonFiniteError(_shift(str(exc), offset), layer=exc.layer, parameter=exc.parameter,
                          step=offset + exc.step)


def _shift(message: str, offset: int) -> str:
    """``(t, b) = (i, j)`` in a loss's message, with ``t`` moved on by ``offset`` stream steps."""
    return re.sub(r"\(t, b\) = \((\d+), (\d+)\)",
                  lambda m: f"(t, b) = ({int(m.group(1)) + offset}, {m.group(2)})", message)
