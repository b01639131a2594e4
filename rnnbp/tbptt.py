"""Truncated backpropagation through time, BPTT(k1, k2) (Williams & Peng 1990).

A long stream is consumed ``k1`` new steps at a time. After each chunk, the
error of the chunk's ``k1`` new outputs is sent back through the last ``k2``
steps (``k2 >= k1``), and no further:

::

    stream:   ... s_{t-k2} | x_{t-k2+1} ... x_{t-k1} | x_{t-k1+1} ... x_t
                  ^ cut        old steps (re-run,       new steps (loss
                  (constant)   no loss)                 on their outputs)

What is and is not back-propagated
----------------------------------
- Back-propagated: the loss of the **new** ``k1`` outputs only, through the
  last ``k2`` steps: into the parameters (every one of those ``k2`` steps
  contributes to the parameter gradient), and into the inputs of those steps.
- Not back-propagated: anything into the state ``s_{t-k2}`` at the window's
  start, which is treated as a constant; the outputs of the ``k2 - k1`` old
  steps contribute no loss in this window (their loss was counted in the
  window where they were new). So each output's error is counted exactly
  once, and reaches between ``k2 - k1 + 1`` and ``k2`` steps back.
- The state itself is always carried forward across windows; only the
  gradient is truncated. With fixed parameters the forward pass over the
  stream is exact. When an optimizer updates the parameters between windows
  and ``k2 > k1``, the ``k2 - k1`` old steps are re-run with the *new*
  parameters from a state computed with the old ones (the usual practice,
  Williams & Peng 1990), so the state entering the new steps can differ
  slightly from ``state`` after the previous window.

With ``k1 == k2`` this is the common "chunked" BPTT (PyTorch's detach every
``k`` steps, Keras's ``stateful=True``). With ``k1 == k2 == T`` over a
stream of length ``T`` it is full BPTT.

The ``k2 - k1`` old steps are re-run from the stored state at the window
start, so a window costs ``k2`` forward and ``k2`` backward steps; memory
holds one window's graph.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from . import _checks
from .buffers import BufferPool
from .errors import NonFiniteError
from .protocol import Layer, State, map_state
from .update import StepResult, check_optimizer, run_step
from .unroll import PATHS, TimeGraph

__all__ = ["TruncatedBPTT"]

LossFn = Callable[..., tuple[float, np.ndarray]]


class TruncatedBPTT:
    """Truncated BPTT(k1, k2) over a long stream, with the state carried across windows.

    Each window is one :func:`rnnbp.train_step` (unroll, loss on the new
    outputs, backward, clip, update), run from the state stored at the
    window's start.

    Parameters
    ----------
    model : Layer
    k1 : int
        New steps per window: the gradient is computed every ``k1`` steps.
    k2 : int, optional
        Steps the error is sent back through (``k2 >= k1``); defaults to ``k1``.
    path : {"fast", "step"}, default "fast"
        How the layers run (see :func:`rnnbp.unroll`).
    pool : BufferPool, optional
        An explicit pool for the cell kernels' internal arrays, reused
        window after window (see :class:`rnnbp.BufferPool`).

    Attributes
    ----------
    state : state or None
        The model's state at the end of the stream so far (None before the
        first window, or after ``reset()`` without a state).
    graph : TimeGraph or None
        The last completed window's graph (its ``state_grad_norms`` show how
        far the truncated gradient reached).
    last_step : StepResult or None
        What the last completed window's training step did.
    window_start : int
        Stream step at which the last attempted window starts (its first,
        possibly re-run, step).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> model = rnnbp.Sequential(rnnbp.Elman(1, 8, seed=0), rnnbp.Linear(8, 1, seed=1))
    >>> xs = np.sin(np.linspace(0, 20, 201))[:, None, None]
    >>> tbptt = rnnbp.TruncatedBPTT(model, k1=10, k2=30)
    >>> opt = rnnbp.optim.Adam(model, lr=1e-2)
    >>> losses = tbptt.run(xs[:-1], xs[1:], rnnbp.losses.mse, optimizer=opt)
    >>> len(losses)
    20
    """

    def __init__(self, model: Layer, k1: int, k2: int | None = None, *, path: str = "fast",
                 pool: BufferPool | None = None) -> None:
        _checks.instance(model, Layer, "model", "a rnnbp.Layer")
        self.model = model
        self.k1 = _checks.positive_int(k1, "k1")
        self.k2 = self.k1 if k2 is None else _checks.positive_int(k2, "k2")
        if self.k2 < self.k1:
            raise ValueError(f"k2: expected k2 >= k1 = {self.k1}, got {self.k2}")
        for name, leaf in model.leaves():
            if not leaf.causal:
                raise ValueError(f"model: truncated BPTT carries the state forward window by window, but layer "
                                 f"{name or type(leaf).__name__!r} ({type(leaf).__name__}) reads later steps; "
                                 f"train it with full BPTT (bptt='full')")
        self.path = _checks.choice(path, "path", PATHS)
        self.pool = _checks.instance(pool, BufferPool, "pool", "a rnnbp.BufferPool", or_none=True)
        self.reset()

    def reset(self, state: State | None = None) -> None:
        """Start a new stream, from ``state`` (zeros when omitted)."""
        self._start_state = None if state is None else map_state(np.copy, state)
        self._history_xs: np.ndarray | None = None
        self._history_mask: np.ndarray | None = None
        self.state: State | None = self._start_state
        self.graph: TimeGraph | None = None
        self.last_step: StepResult | None = None
        self.window_start = 0
        self._stream_steps = 0

    def train_step(self, batch: tuple, loss: LossFn, optimizer: Any = None, *,
                   clip: float | None = None) -> StepResult:
        """Take ``n <= k1`` new steps: the truncated gradient into ``grads``, then update.

        The window is the ``n`` new steps plus the ``k2 - k1`` steps before
        them (``k2`` steps for a full chunk; for a shorter last chunk of
        ``n < k1`` steps the error goes back ``n + k2 - k1`` steps), run from
        the stored state at its start. ``model.grads`` is zeroed first and
        then holds this window's gradient; with ``optimizer`` the parameters
        are updated (after clipping to ``clip``).

        Parameters
        ----------
        batch : tuple ``(xs, targets, mask)``
            ``xs`` (n, B, D): the new inputs, ``1 <= n <= k1``; ``targets``:
            targets of the new outputs, passed to ``loss`` as given;
            ``mask`` (n, B) bool or None.
        loss : callable
            ``loss(outputs, targets, mask) -> (value, doutputs)`` as in
            ``rnnbp.losses``, applied to the ``n`` new outputs only.
        optimizer : object, optional
            Stepped after the backward pass when given.
        clip : float, optional
            Maximum global gradient norm.

        Returns
        -------
        StepResult
            ``.loss`` is the loss of the new outputs, ``.graph`` the window's
            time graph, ``.grad_norm`` the global gradient norm.

        Raises
        ------
        NonFiniteError
            As :func:`rnnbp.train_step`, naming the stream's time step. The
            stream still moves on when the forward pass was finite.
        """
        if optimizer is not None:
            check_optimizer(optimizer, self.model)
        if clip is not None:
            clip = _checks.positive_number(clip, "clip")
        return self._window(batch, loss, optimizer, clip)

    def _window(self, batch: tuple, loss: LossFn, optimizer: Any, clip: float | None) -> StepResult:
        """:meth:`train_step` with the optimizer and clip already checked (``fit`` and ``run`` check once)."""
        xs, targets, mask = batch
        n = xs.shape[0] if isinstance(xs, np.ndarray) and xs.ndim >= 1 else 0
        if not 1 <= n <= self.k1:
            raise ValueError(f"xs: expected 1 to k1 = {self.k1} new steps, got shape "
                             f"{getattr(xs, 'shape', type(xs).__name__)}")
        if mask is not None:
            _checks.mask_array(mask, n, xs.shape[1])
        hist = self._history_xs
        if hist is not None and hist.shape[1:] != xs.shape[1:]:
            raise ValueError(f"xs: expected steps of shape {hist.shape[1:]} (as before in this "
                             f"stream; call reset() to start a new one), got {xs.shape[1:]}")
        if (mask is None) != (self._history_mask is None) and hist is not None and len(hist):
            raise ValueError("mask: give a mask for every chunk of a stream or for none")
        window = xs if hist is None else np.concatenate([hist, xs])
        wmask = mask if mask is None or hist is None else np.concatenate([self._history_mask, mask])
        L = window.shape[0]
        self.window_start = self._stream_steps - (L - n)
        try:
            result = run_step(self.model, (window, targets, wmask), loss, optimizer, clip=clip,
                              target="every", path=self.path, state=self._start_state, loss_from=L - n,
                              t0=self.window_start, pool=self.pool)
        except NonFiniteError as exc:
            graph = getattr(exc, "graph", None)
            if graph is not None and graph.first_nonfinite_output() is None:
                self._advance(graph, wmask, n)           # a bad gradient: the forward pass still holds
            raise
        self._advance(result.graph, wmask, n)
        self.last_step = result
        return result

    def _advance(self, graph: TimeGraph, wmask: np.ndarray | None, n: int) -> None:
        """Carry the stream on: the next window starts k2 - k1 steps before this one's end."""
        L = graph.inputs.shape[0]
        keep = min(self.k2 - self.k1, L)
        self._start_state = map_state(np.copy, graph.state_at(L - keep))
        self._history_xs = graph.inputs[L - keep:].copy()
        self._history_mask = None if wmask is None else wmask[L - keep:].copy()
        self.state = graph.final_state
        self.graph = graph
        self._stream_steps += n

    def run(self, xs: np.ndarray, targets: np.ndarray, loss: LossFn, *,
            optimizer: Any = None, clip: float | None = None,
            mask: np.ndarray | None = None,
            callback: Callable[[int, float], None] | None = None) -> list[float]:
        """Train over a whole stream: :meth:`train_step` every ``k1`` steps.

        The stream continues from the current state (call :meth:`reset` for a
        new one).

        Parameters
        ----------
        xs : ndarray, shape (T, B, D), or int (T, B) ids for a model that takes ids
        targets : ndarray, shape (T, ...)
            Time-aligned targets; sliced like ``xs``.
        loss : callable
            As in :meth:`train_step`.
        optimizer : object with ``step()``, optional
        clip : float, optional
            Maximum global gradient norm.
        mask : ndarray of bool, shape (T, B), optional
        callback : callable, optional
            ``callback(window_index, loss_value)`` after each window.

        Returns
        -------
        list[float]
            The loss of every window.
        """
        # xs itself is checked by unroll, window by window (one set of checks, one message style)
        if not isinstance(xs, np.ndarray) or xs.ndim < 1:
            raise TypeError(f"xs: expected a time-major numpy array (T, B, D), got "
                            f"{getattr(xs, 'shape', type(xs).__name__)}")
        if optimizer is not None:
            check_optimizer(optimizer, self.model)
        if clip is not None:
            clip = _checks.positive_number(clip, "clip")
        if not isinstance(targets, np.ndarray) or targets.ndim < 1 or targets.shape[0] != xs.shape[0]:
            raise ValueError(f"targets: expected an array with {xs.shape[0]} steps first, got "
                             f"{getattr(targets, 'shape', type(targets).__name__)}")
        losses = []
        for w, t0 in enumerate(range(0, xs.shape[0], self.k1)):
            window = slice(t0, t0 + self.k1)
            value = self._window((xs[window], targets[window], None if mask is None else mask[window]),
                                 loss, optimizer, clip).loss
            losses.append(value)
            if callback is not None:
                callback(w, value)
        return losses

    def step(self, xs: np.ndarray, targets: Any, loss: LossFn,
             mask: np.ndarray | None = None, *, optimizer: Any = None,
             clip: float | None = None) -> float:
        """Deprecated: ``train_step((xs, targets, mask), loss, optimizer, clip=clip).loss``.

        The one window method is :meth:`train_step`; this spelling goes in
        rnnbp 0.3.0.
        """
        warnings.warn("TruncatedBPTT.step(xs, targets, loss, mask, optimizer=, clip=) is deprecated; use "
                      "TruncatedBPTT.train_step((xs, targets, mask), loss, optimizer, clip=clip).loss",
                      DeprecationWarning, stacklevel=2)
        return self.train_step((xs, targets, mask), loss, optimizer, clip=clip).loss
