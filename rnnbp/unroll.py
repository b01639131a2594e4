"""The unroller: run a model over a sequence and record its time graph.

``unroll(model, xs)`` runs every layer of the model over all T steps
(layer-major, so each layer takes its fast path) and returns a
:class:`TimeGraph`. Its ``backward`` walks the graph from the last step to
the first (full BPTT), adds every layer's parameter gradients into
``layer.grads``, and records for every recurrent layer the norm of the
gradient reaching its hidden state at each step, ``||dL/dh_t||``.

The unroller knows the layer protocol, not the layer types.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import _checks
from .layer import Layer, State

__all__ = ["unroll", "TimeGraph", "Node"]


class Node(NamedTuple):
    """One step of a time graph, as a user inspects it.

    Attributes
    ----------
    t : int
        Time step, 0-based.
    input : ndarray, shape (B, D)
    output : ndarray, shape (B, O)
    state_in : state
        The model's state before the step (structured like ``initial_state``).
    state_out : state
        The model's state after the step.
    mask : ndarray of bool, shape (B,), or None
        Which sequences are still running at this step.
    """

    t: int
    input: np.ndarray
    output: np.ndarray
    state_in: State
    state_out: State
    mask: np.ndarray | None


def _check_state(model: Layer, state: Any, batch_size: int, dtype: np.dtype, name: str) -> State:
    """Validate a model-structured state against the model's state sizes."""
    leaves = list(model.leaves())
    try:
        parts = model.flatten_state(state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: does not match the model's state structure ({exc})") from None
    for (lname, leaf), s in zip(leaves, parts):
        where = f"{name}" + (f" of layer {lname!r}" if lname else "")
        if not isinstance(s, tuple) or len(s) != len(leaf.state_sizes):
            got = f"a tuple of {len(s)}" if isinstance(s, tuple) else type(s).__name__
            raise ValueError(f"{where}: expected a tuple of {len(leaf.state_sizes)} arrays, got {got}")
        for k, (a, n) in enumerate(zip(s, leaf.state_sizes)):
            _checks.array(a, f"{where}[{k}]", ndim=2, dtype=dtype)
            if a.shape != (batch_size, n):
                raise ValueError(f"{where}[{k}]: expected shape ({batch_size}, {n}), got {a.shape}")
    return state


class TimeGraph:
    """The record of a model run over a sequence: what the backward walk needs.

    Built by :func:`unroll`; not constructed directly.

    Attributes
    ----------
    model : Layer
    inputs : ndarray, shape (T, B, D)
    outputs : ndarray, shape (T, B, O)
    initial_state, final_state : state
        Structured like ``model.initial_state(B)``. With a mask, the final
        state of each sequence is its state at its last valid step.
    mask : ndarray of bool, shape (T, B), or None
    layer_names : list[str]
        Qualified names of the leaf layers, in order (``"0"``, ``"1"``, ...;
        ``""`` for a single-layer model).
    state_grad_norms : dict[str, ndarray]
        After ``backward``: for each recurrent layer, ``||dL/dh_t||`` over
        the whole batch, shape ``(T,)``.
    state_grad_norms_per_sequence : dict[str, ndarray]
        After ``backward``: the same per sequence, shape ``(T, B)``.
    """

    def __init__(self, model: Layer, xs: np.ndarray, initial_state: State,
                 mask: np.ndarray | None, leaves: list[tuple[str, Layer]],
                 layer_inputs: list[np.ndarray], layer_outputs: list[np.ndarray],
                 caches: list[Any], final_parts: list[State]) -> None:
        self.model = model
        self.inputs = xs
        self.mask = mask
        self.initial_state = initial_state
        self._leaves = leaves
        self._layer_inputs = layer_inputs
        self._layer_outputs = layer_outputs
        self._caches = caches
        self._final_parts = final_parts
        self.outputs = layer_outputs[-1]
        self.final_state = model.unflatten_state(list(final_parts))
        self.layer_names = [name for name, _ in leaves]
        self._states: list[State] | None = None
        self.state_grad_norms: dict[str, np.ndarray] = {}
        self.state_grad_norms_per_sequence: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def batch_size(self) -> int:
        """B."""
        return self.inputs.shape[1]

    # -- inspection ---------------------------------------------------------
    def layer_states(self, name: str) -> State:
        """States of one leaf layer at every step.

        Returns
        -------
        tuple of ndarray
            One ``(T + 1, B, H)`` array per state component (index 0 is the
            initial state); ``()`` for a static layer.
        """
        return self._all_states()[self._index(name)]

    def layer_outputs(self, name: str) -> np.ndarray:
        """Outputs of one leaf layer at every step, shape ``(T, B, O)``."""
        return self._layer_outputs[self._index(name)]

    def state_at(self, t: int) -> State:
        """The model's state after ``t`` steps (``t = 0``: the initial state)."""
        T = len(self)
        if not 0 <= t <= T:
            raise IndexError(f"t: expected 0 <= t <= {T}, got {t}")
        parts = [_like(final, [a[t] for a in states])
                 for final, states in zip(self._final_parts, self._all_states())]
        return self.model.unflatten_state(parts)

    def node(self, t: int) -> Node:
        """The step ``t`` of the graph: its input, output and states."""
        T = len(self)
        if not -T <= t < T:
            raise IndexError(f"t: expected -{T} <= t < {T}, got {t}")
        t = t % T
        return Node(t, self.inputs[t], self.outputs[t], self.state_at(t), self.state_at(t + 1),
                    None if self.mask is None else self.mask[t])

    @property
    def nodes(self) -> list[Node]:
        """Every step's :class:`Node`, in time order."""
        return [self.node(t) for t in range(len(self))]

    def first_nonfinite_output(self) -> tuple[str, int] | None:
        """``(layer name, step)`` where an output first became NaN or infinite, or None."""
        for name, ys in zip(self.layer_names, self._layer_outputs):
            bad = ~np.isfinite(ys).reshape(ys.shape[0], -1).all(axis=1)
            if bad.any():
                return name, int(np.argmax(bad))
        return None

    def _index(self, name: str) -> int:
        try:
            return self.layer_names.index(name)
        except ValueError:
            raise KeyError(f"name: expected one of {self.layer_names}, got {name!r}") from None

    def _all_states(self) -> list[State]:
        if self._states is None:
            self._states = [leaf.seq_states(c) for (_, leaf), c in zip(self._leaves, self._caches)]
        return self._states

    # -- the backward walk --------------------------------------------------
    def backward(self, dys: np.ndarray, dstate: State | None = None) -> tuple[np.ndarray, State]:
        """Full BPTT: walk the graph from the last step to the first.

        Adds the gradient of every parameter into its layer's ``grads``
        (call ``model.zero_grad()`` first for a fresh gradient) and records
        ``state_grad_norms``. May be called more than once; each call adds.

        Parameters
        ----------
        dys : ndarray, shape (T, B, O)
            Gradient of the loss with respect to the outputs (for example the
            second value returned by a loss in ``rnnbp.losses``). Entries at
            masked steps are ignored.
        dstate : state, optional
            Gradient with respect to the final state, structured like it;
            zeros when omitted.

        Returns
        -------
        dxs : ndarray, shape (T, B, D)
            Gradient with respect to the inputs.
        dstate0 : state
            Gradient with respect to the initial state.
        """
        _checks.array(dys, "dys", ndim=self.outputs.ndim, dtype=self.outputs.dtype, finite=False)
        if dys.shape != self.outputs.shape:
            raise ValueError(f"dys: expected shape {self.outputs.shape} (the outputs), got {dys.shape}")
        B = self.batch_size
        if dstate is None:
            dparts = [tuple(np.zeros_like(a) for a in s) for s in self._final_parts]
        else:
            _check_state(self.model, dstate, B, self.outputs.dtype, "dstate")
            dparts = self.model.flatten_state(dstate)
        T = len(self)
        d = dys
        d0_parts: list[State] = [()] * len(self._leaves)
        for i in range(len(self._leaves) - 1, -1, -1):
            name, leaf = self._leaves[i]
            record = np.empty((T, B), dtype=np.float64) if leaf.state_sizes else None
            d, d0_parts[i] = leaf.backward_seq(d, dparts[i], self._caches[i], record=record)
            if record is not None:
                self.state_grad_norms_per_sequence[name] = record
                self.state_grad_norms[name] = np.sqrt(np.einsum("tb,tb->t", record, record))
        return d, self.model.unflatten_state(d0_parts)


def unroll(model: Layer, xs: np.ndarray, state: State | None = None,
           mask: np.ndarray | None = None) -> TimeGraph:
    """Run ``model`` over the sequence ``xs`` and record the time graph.

    Parameters
    ----------
    model : Layer
        Any layer: a cell, a static layer or a ``Sequential`` stack.
    xs : ndarray, shape (T, B, D)
        Time-major inputs in the model's dtype (``T >= 1``; images and other
        feature shapes ``(T, B, ...)`` go to layers that accept them).
    state : state, optional
        Initial state, structured like ``model.initial_state(B)``; zeros when
        omitted.
    mask : ndarray of bool, shape (T, B), optional
        ``False`` where a sequence has ended: there its state is carried
        unchanged, its output is zero and its gradients are zero.

    Returns
    -------
    TimeGraph

    Raises
    ------
    TypeError, ValueError
        For inputs of the wrong type, rank, size or dtype, for non-finite
        inputs, and for a state or mask of the wrong structure or shape.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> model = rnnbp.Sequential(rnnbp.Elman(2, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    >>> xs = np.random.default_rng(0).normal(size=(6, 3, 2))
    >>> graph = rnnbp.unroll(model, xs)
    >>> graph.outputs.shape
    (6, 3, 1)
    >>> dxs, dstate0 = graph.backward(np.ones_like(graph.outputs))
    >>> graph.state_grad_norms["0"].shape
    (6,)
    """
    if not isinstance(model, Layer):
        raise TypeError(f"model: expected a rnnbp.Layer, got {type(model).__name__}")
    dtype = model.dtype
    if dtype is None:
        if not isinstance(xs, np.ndarray):
            raise TypeError(f"xs: expected a numpy array, got {type(xs).__name__}")
        dtype = _checks.as_dtype(xs.dtype, "xs.dtype")
    _checks.array(xs, "xs", dtype=dtype)
    if xs.ndim < 3:
        raise ValueError(f"xs: expected a time-major array (T, B, D), got shape {xs.shape}"
                         + (" (add a time axis with xs[None] for a single step)" if xs.ndim == 2 else ""))
    T, B = xs.shape[:2]
    if T < 1 or B < 1:
        raise ValueError(f"xs: expected at least one step and one sequence, got shape {xs.shape}")
    if model.input_size is not None and (xs.ndim != 3 or xs.shape[2] != model.input_size):
        raise ValueError(f"xs: expected shape (T, B, {model.input_size}), got {xs.shape}")
    if mask is not None:
        _checks.mask_array(mask, T, B)
    if state is None:
        state = model.initial_state(B)
        if model.dtype is None:
            state = _cast_state(state, dtype)
    else:
        _check_state(model, state, B, dtype, "state")
    leaves = list(model.leaves())
    parts = model.flatten_state(state)
    inputs, outputs, caches, finals = [], [], [], []
    h = xs
    for (_, leaf), s in zip(leaves, parts):
        inputs.append(h)
        h, s_T, cache = leaf.forward_seq(h, s, mask)
        outputs.append(h)
        caches.append(cache)
        finals.append(s_T)
    return TimeGraph(model, xs, state, mask, leaves, inputs, outputs, caches, finals)


def _like(part: State, arrays: list[np.ndarray]) -> State:
    """``arrays`` as a state of the same type as ``part`` (keeps ``LSTMState``)."""
    return type(part)(*arrays) if hasattr(part, "_fields") else tuple(arrays)


def _cast_state(state: Any, dtype: np.dtype) -> Any:
    if isinstance(state, np.ndarray):
        return state.astype(dtype, copy=False)
    if isinstance(state, tuple):
        return type(state)(*(_cast_state(s, dtype) for s in state)) if hasattr(state, "_fields") \
            else tuple(_cast_state(s, dtype) for s in state)
    return state
