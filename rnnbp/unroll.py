"""The unroller: run a model over a sequence and record its time graph.

``unroll(model, xs)`` runs every layer of the model over all T steps
(layer-major, so each layer takes its fast path) and returns a
:class:`TimeGraph`. Its ``backward`` walks the graph from the last step to
the first (full BPTT), adds every layer's parameter gradients into
``layer.grads``, and records for every recurrent layer the norm of the
gradient reaching its hidden state at each step, ``||dL/dh_t||``.

``unroll(model, xs, recompute=k)`` is memory-saving BPTT (Chen et al. 2016;
Gruslys et al. 2016): each recurrent layer keeps only its state every k
steps (plus its input and output sequences, which any BPTT holds), and the
backward walk recomputes one k-step segment at a time from its checkpoint.
k is rounded up to a multiple of the layers' ``time_block``, so a segment
performs exactly the floating-point operations of the full walk: the
gradients are bit-identical to full BPTT.

``unroll(model, xs, path="step")`` runs every leaf through its one-step
``forward``/``backward`` (``Layer.forward_steps``/``backward_steps``): the
code a student reads and a debugger stops in. ``path="fast"`` (the default)
runs the sequence kernels (``forward_seq``/``backward_seq``). The two agree
to rounding (1e-12 relative in float64).

The unroller knows the layer protocol, not the layer types; it is the one
place that loops over a stack's layers in time.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _versions, buffers
from .protocol import Layer, State, map_state, state_like

# One module for one idea, the time graph; past ~450 lines because the graph's inspection
# (layer_states, state_at, nodes) and memory-saving recompute read the same records as the
# walk and stay beside it.

__all__ = ["unroll", "TimeGraph", "Node", "PATHS"]

#: The two ways through a layer over T steps: its sequence kernel, or its one-step methods.
PATHS = ("fast", "step")


def _forward(leaf: Layer, path: str):
    """The leaf's T-step forward for ``path``: ``forward_seq`` (fast) or ``forward_steps``."""
    return leaf.forward_seq if path == "fast" else leaf.forward_steps


def _backward(leaf: Layer, path: str):
    """The leaf's T-step backward for ``path``: ``backward_seq`` (fast) or ``backward_steps``."""
    return leaf.backward_seq if path == "fast" else leaf.backward_steps


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
        the whole batch, shape ``(T,)``. A layer with several hidden states
        (``record_names``, e.g. ``Bidirectional``) records each under
        ``"<layer>.<name>"`` (``"0.forward"``, ``"0.backward"``).
    state_grad_norms_per_sequence : dict[str, ndarray]
        After ``backward``: the same per sequence, shape ``(T, B)``.
    recompute : int or None
        The segment length of memory-saving BPTT (``unroll(..., recompute=k)``
        after rounding), or None for full BPTT.
    path : {"fast", "step"}
        Whether the layers ran their sequence kernels or their one-step
        methods (``unroll(..., path=...)``); ``backward`` walks the same way.
    pool : BufferPool or None
        The pool the cell kernels took their internal arrays from
        (``unroll(..., pool=...)``); ``backward`` uses it too.
    """

    def __init__(self, model: Layer, xs: np.ndarray, initial_state: State,
                 mask: np.ndarray | None, leaves: list[tuple[str, Layer]],
                 layer_inputs: list[np.ndarray], layer_outputs: list[np.ndarray],
                 caches: list[Any], final_parts: list[State],
                 recompute: int | None = None, checkpoints: list[list[State] | None] | None = None,
                 path: str = "fast", pool: buffers.BufferPool | None = None) -> None:
        self.model = model
        self.recompute = recompute
        self.path = path
        self.pool = pool
        # Per leaf: None (cache kept) or the leaf's state at every segment start.
        self._checkpoints = checkpoints or [None] * len(leaves)
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
        # the parameters' versions at the forward pass: backward refuses changed weights
        self._versions = {k: _versions.version(p) for k, p in model.params.items()}
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
        parts = [state_like(final, (a[t] for a in states))
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
            self._states = [leaf.seq_states(c if c is not None else self._full_cache(i))
                            for i, ((_, leaf), c) in enumerate(zip(self._leaves, self._caches))]
        return self._states

    def _full_cache(self, i: int) -> Any:
        """A recomputed leaf's whole-sequence cache (inspection only: costs full-BPTT memory)."""
        leaf, checkpoints = self._leaves[i][1], self._checkpoints[i]
        return _forward(leaf, self.path)(self._layer_inputs[i], checkpoints[0], self.mask)[2]

    def _segments(self) -> list[tuple[int, int]]:
        T, k = len(self), self.recompute
        return [(s, min(s + k, T)) for s in range(0, T, k)]

    def _backward_recomputed(self, i: int, d: np.ndarray, dstate: State,
                             record: np.ndarray | None) -> tuple[np.ndarray, State]:
        """One recurrent leaf's walk back, segment by segment from its checkpoints."""
        leaf, xs, mask = self._leaves[i][1], self._layer_inputs[i], self.mask
        dxs = None
        segments = self._segments()
        for (s0, s1), state in zip(reversed(segments), reversed(self._checkpoints[i])):
            seg_mask = None if mask is None else mask[s0:s1]
            _, _, cache = _forward(leaf, self.path)(xs[s0:s1], state, seg_mask)
            seg_record = None if record is None else record[s0:s1]
            dx, dstate = _backward(leaf, self.path)(d[s0:s1], dstate, cache, record=seg_record)
            del cache
            if dxs is None:
                dxs = np.empty((len(self),) + dx.shape[1:], dtype=dx.dtype)
            dxs[s0:s1] = dx
        return dxs, dstate

    # -- the backward walk --------------------------------------------------
    def backward(self, dys: np.ndarray, dstate: State | None = None) -> tuple[np.ndarray, State]:
        """Full BPTT: walk the graph from the last step to the first.

        With ``recompute=k`` each recurrent layer's k-step segments are
        recomputed from their checkpoints on the way (same result, bit for bit).
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

        Raises
        ------
        RuntimeError
            When a parameter the forward pass used has changed since (an
            optimizer ``step()``, ``fit`` restoring the best epoch, a loaded
            checkpoint): unroll again. Writes of your own into
            ``layer.params`` are not tracked.
        """
        changed = [k for k, p in self.model.params.items() if _versions.version(p) != self._versions.get(k)]
        if changed:
            raise RuntimeError(f"graph.backward: parameter(s) {changed[:3]}{'...' if len(changed) > 3 else ''} "
                               f"changed since the forward pass (an optimizer step, or loaded state), so the "
                               f"graph's caches no longer match the weights and the gradients would be wrong; "
                               f"unroll again with the current parameters")
        _checks.array(dys, "dys", ndim=self.outputs.ndim, dtype=self.outputs.dtype, finite=False)
        if dys.shape != self.outputs.shape:
            raise ValueError(f"dys: expected shape {self.outputs.shape} (the outputs), got {dys.shape}")
        B = self.batch_size
        if dstate is None:
            dparts = [map_state(np.zeros_like, s) for s in self._final_parts]
        else:
            _check_state(self.model, dstate, B, self.outputs.dtype, "dstate")
            dparts = self.model.flatten_state(dstate)
        with _pool_in_use(self.pool):
            return self._backward(dys, dparts)

    def running_state_grad_norms(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``||dL/dh_t||`` per layer over the sequences still running at each step, for summaries.

        Without a mask this is ``state_grad_norms`` itself. With a mask,
        sequences that have ended carry no gradient, so the batch-level norm
        shrinks at late steps only because fewer sequences run there (and
        seems to grow going back in time); here each step's norm is scaled
        as if every sequence ran like the running ones,
        ``sqrt(B * mean over running b of ||dL/dh_{t,b}||^2)``.

        Returns
        -------
        dict[str, (ndarray (T,), ndarray of bool (T,))]
            For every recurrent layer (empty before ``backward`` or for a
            static model): the norms (0 where no sequence runs) and where at
            least one sequence runs.
        """
        T, B = len(self), self.batch_size
        if self.mask is None:
            return {k: (v, np.ones(T, dtype=bool)) for k, v in self.state_grad_norms.items()}
        running = self.mask.sum(axis=1)
        out = {}
        for key, r in self.state_grad_norms_per_sequence.items():
            sq = np.einsum("tb,tb->t", r, r * self.mask)
            out[key] = (np.sqrt(np.divide(sq * B, running, out=np.zeros(T), where=running > 0)), running > 0)
        return out

    def _backward(self, dys: np.ndarray, dparts: list[State]) -> tuple[np.ndarray, State]:
        T, B = len(self), self.batch_size
        d = dys
        d0_parts: list[State] = [()] * len(self._leaves)
        for i in range(len(self._leaves) - 1, -1, -1):
            name, leaf = self._leaves[i]
            records = {n: np.empty((T, B), dtype=np.float64) for n in leaf.record_names}
            record = records.get("", records or None)    # one hidden state: its array; several: the dict
            if self._checkpoints[i] is None:
                d, d0_parts[i] = _backward(leaf, self.path)(d, dparts[i], self._caches[i], record=record)
            else:
                d, d0_parts[i] = self._backward_recomputed(i, d, dparts[i], record)
            for n, r in records.items():
                key = ".".join(part for part in (name, n) if part)
                self.state_grad_norms_per_sequence[key] = r
                self.state_grad_norms[key] = np.sqrt(np.einsum("tb,tb->t", r, r))
        return d, self.model.unflatten_state(d0_parts)


def _pool_in_use(pool: buffers.BufferPool | None) -> Any:
    """``buffers.using(pool)``, or a null context without a pool (the default route stays out of buffers.py)."""
    return contextlib.nullcontext() if pool is None else buffers.using(pool)


def unroll(model: Layer, xs: np.ndarray, state: State | None = None,
           mask: np.ndarray | None = None, *, recompute: bool | int | None = None,
           path: str = "fast", pool: buffers.BufferPool | None = None, batch_first: bool = False) -> TimeGraph:
    """Run ``model`` over the sequence ``xs`` and record the time graph.

    Parameters
    ----------
    model : Layer
        Any layer: a cell, a static layer or a ``Sequential`` stack.
    xs : ndarray, shape (T, B, D)
        Time-major inputs in the model's dtype (``T >= 1``; images and other
        feature shapes ``(T, B, ...)`` go to layers that accept them; integer
        ids ``(T, B)`` when the model starts with a layer that
        ``takes_ids``, such as ``Embedding``).
    state : state, optional
        Initial state, structured like ``model.initial_state(B)``; zeros when
        omitted.
    mask : ndarray of bool, shape (T, B), optional
        ``False`` where a sequence has ended: there its state is carried
        unchanged, its output is zero and its gradients are zero.
    recompute : bool or int, optional
        Memory-saving BPTT. An int k: every recurrent layer stores its state
        only every k steps and ``graph.backward`` recomputes each k-step
        segment (one extra forward pass; memory for the layer's cache falls
        from T steps to about T/k states plus k steps). ``True``: k about
        sqrt(T). k is rounded up to a multiple of the layers' ``time_block``
        (a few steps), which makes the gradients bit-identical to full BPTT;
        ``graph.recompute`` is the k used. ``None``/``False``: full BPTT.
        Static layers keep their caches (a ``Dropout`` mask is drawn once).
        Inspecting the states of a recomputed layer (``layer_states``,
        ``state_at``, ``nodes``) recomputes its whole sequence.
    path : {"fast", "step"}, default "fast"
        ``"fast"``: each layer runs its sequence kernel (``forward_seq``/
        ``backward_seq``). ``"step"``: each layer runs its one-step
        ``forward``/``backward`` once per time step (``forward_steps``/
        ``backward_steps``), so a breakpoint in a cell's ``backward`` is hit;
        slower, same gradients to rounding, same ``state_grad_norms``.
    pool : BufferPool, optional
        Take the cell kernels' large internal arrays (caches, backward
        scratch) from this explicit, bounded pool and give them back to it
        for the next call, instead of allocating fresh ones; ``graph.backward``
        uses it too. Same results, bit for bit; trades memory for the page
        faults of fresh arrays (see :class:`rnnbp.BufferPool`). ``None``
        (the default): fresh arrays, freed with the graph.
    batch_first : bool, default False
        ``True``: ``xs`` is ``(B, T, ...)`` (ids ``(B, T)``) and ``mask``
        ``(B, T)``, as with PyTorch's ``batch_first``. They are transposed to
        time-major here, at the boundary; the graph (``inputs``, ``outputs``,
        the states and the gradients ``backward`` takes and returns) is
        time-major, ``(T, B, ...)``.

    Returns
    -------
    TimeGraph

    Raises
    ------
    TypeError, ValueError
        For inputs of the wrong type, rank, size or dtype, for non-finite
        inputs, for a state or mask of the wrong structure or shape, and for
        a ``recompute`` that is not a positive int or a bool.

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
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    path = _checks.choice(path, "path", PATHS)
    _checks.instance(pool, buffers.BufferPool, "pool", "a rnnbp.BufferPool", or_none=True)
    if _checks.flag(batch_first, "batch_first"):
        if not isinstance(xs, np.ndarray) or xs.ndim < 2:
            raise ValueError(f"xs: with batch_first=True expected an array (B, T, ...), got "
                             f"{getattr(xs, 'shape', type(xs).__name__)}")
        xs = np.ascontiguousarray(np.swapaxes(xs, 0, 1))
        if isinstance(mask, np.ndarray) and mask.ndim == 2:
            mask = np.ascontiguousarray(mask.T)
    dtype = model.dtype
    if model.takes_ids:
        _checks.ids(xs, "xs", ndim=2)
    elif dtype is None:
        if not isinstance(xs, np.ndarray):
            raise TypeError(f"xs: expected a numpy array, got {type(xs).__name__}")
        dtype = _checks.as_dtype(xs.dtype, "xs.dtype")
    if not model.takes_ids:
        _checks.array(xs, "xs", dtype=dtype)
    if xs.ndim < 3 and not model.takes_ids:
        hint = ""
        if xs.ndim == 2:
            n, d = xs.shape
            hint = (f": if it is one sequence of {n} steps, use xs[:, None] (shape ({n}, 1, {d})); "
                    f"if it is one step of {n} sequences, use xs[None] (shape (1, {n}, {d}))")
        raise ValueError(f"xs: expected a time-major array (T, B, D), got shape {xs.shape}{hint}")
    T, B = xs.shape[:2]
    if T < 1 or B < 1:
        raise ValueError(f"xs: expected at least one step and one sequence, got shape {xs.shape}")
    if model.input_size is not None and (xs.ndim != 3 or xs.shape[2] != model.input_size):
        raise ValueError(f"xs: expected shape (T, B, {model.input_size}), got {xs.shape}")
    if mask is not None:
        if isinstance(mask, np.ndarray) and mask.shape == (B, T) and T != B:
            raise ValueError(f"mask: got shape {mask.shape} for xs of shape {xs.shape}: the data looks "
                             f"batch-major (N, T, D); rnnbp is time-major: use xs.transpose(1, 0, 2) and "
                             f"mask.T (fit, evaluate and predict take batch_first=True)")
        _checks.mask_array(mask, T, B)
    if state is None:
        state = model.initial_state(B)
        if model.dtype is None:
            state = map_state(lambda a: a.astype(dtype, copy=False), state)
    else:
        _check_state(model, state, B, dtype, "state")
    leaves = list(model.leaves())
    k = _segment_length(recompute, T, B, leaves)
    parts = model.flatten_state(state)
    inputs, outputs, caches, finals, checkpoints = [], [], [], [], []
    h = xs
    if pool is not None:
        pool.begin_call()
    with _pool_in_use(pool):
        for (_, leaf), s in zip(leaves, parts):
            inputs.append(h)
            if k is None or not leaf.state_sizes:
                h, s_T, cache = _forward(leaf, path)(h, s, mask)
                checkpoints.append(None)
            else:
                h, s_T, cache = _forward_checkpointed(_forward(leaf, path), h, s, mask, k, checkpoints)
            outputs.append(h)
            caches.append(cache)
            finals.append(s_T)
    return TimeGraph(model, xs, state, mask, leaves, inputs, outputs, caches, finals,
                     recompute=k, checkpoints=checkpoints, path=path, pool=pool)


def _segment_length(recompute: Any, T: int, B: int, leaves: list[tuple[str, Layer]]) -> int | None:
    """The recompute segment length: k (or about sqrt(T)) rounded up to the layers' time block."""
    if recompute is None or recompute is False:
        return None
    if recompute is True:
        k = math.isqrt(T - 1) + 1                                # ceil(sqrt(T))
    elif isinstance(recompute, (int, np.integer)) and not isinstance(recompute, bool):
        k = int(recompute)
        if k < 1:
            raise ValueError(f"recompute: expected a positive number of steps per segment, got {k}")
    else:
        raise TypeError(f"recompute: expected True, False, None or a positive int, "
                        f"got {type(recompute).__name__} {recompute!r}")
    block = 1
    for _, leaf in leaves:
        if leaf.state_sizes:
            block = math.lcm(block, int(leaf.time_block(B)))
    return -(-k // block) * block


def _forward_checkpointed(forward: Any, xs: np.ndarray, state: State, mask: np.ndarray | None,
                          k: int, checkpoints: list) -> tuple[np.ndarray, State, None]:
    """Run a recurrent leaf's ``forward`` segment by segment, keeping its state at every segment start."""
    T = xs.shape[0]
    ys, saved = None, []
    state = map_state(np.copy, state)                            # the caller may reuse its arrays
    for s0 in range(0, T, k):
        s1 = min(s0 + k, T)
        saved.append(state)
        y, state, _ = forward(xs[s0:s1], state, None if mask is None else mask[s0:s1])
        if ys is None:
            ys = np.empty((T,) + y.shape[1:], dtype=y.dtype)
        ys[s0:s1] = y
    checkpoints.append(saved)
    return ys, state, None
