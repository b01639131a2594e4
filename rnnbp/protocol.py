"""The layer protocol shared by static layers and recurrent cells.

A static layer is a recurrent layer whose state is empty: every layer speaks
the same protocol, so the unroller and every training algorithm can treat a
feedforward network, a recurrent cell and a stack of both alike.

Shapes
------
- one step: ``x`` is ``(B, D)``, ``y`` is ``(B, O)``;
- a sequence (time-major): ``xs`` is ``(T, B, D)``, ``ys`` is ``(T, B, O)``;
- a state is a tuple of ``(B, H)`` arrays: ``()`` for static layers;
- a mask is a ``(T, B)`` boolean array, ``False`` where a sequence has ended.
"""

# Maintainers: one module for one idea, the protocol. It passes ~450 lines
# because every member (the step loop, state helpers, the hooks reseed,
# from_config, summary) carries its documentation here.

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from ._checks import as_dtype

__all__ = ["Layer", "StaticLayer", "StepCache", "State", "LAYER_TYPES", "layer_type_name", "map_state", "state_like"]

State = tuple  # tuple of (B, H) arrays; () for a static layer

#: Every public ``Layer`` subclass, by :func:`layer_type_name` (used by ``rnnbp.load``).
LAYER_TYPES: dict[str, type["Layer"]] = {}


def map_state(fn: Any, state: Any) -> Any:
    """Apply ``fn`` to every array of a (nested) state, keeping its structure.

    Named tuples (``LSTMState``) keep their type; a ``Sequential``'s nested
    tuples stay nested.

    Examples
    --------
    >>> import numpy as np
    >>> map_state(np.zeros_like, ((np.ones(2),), ()))
    ((array([0., 0.]),), ())
    """
    if isinstance(state, np.ndarray):
        return fn(state)
    parts = [map_state(fn, s) for s in state]
    return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)


def state_like(part: State, arrays: Any) -> State:
    """``arrays`` as one layer's state of the same type as ``part`` (keeps ``LSTMState``)."""
    arrays = list(arrays)
    return type(part)(*arrays) if hasattr(part, "_fields") else tuple(arrays)


def layer_type_name(cls: type) -> str:
    """The name a layer class is saved and registered under.

    rnnbp's own layers go by their class name (``"LSTM"``); any other class
    by its module and qualified name (``"mypackage.layers.Leaky"``), so a
    user's class never replaces a built-in of the same name.
    """
    module = cls.__module__
    if module == "rnnbp" or module.startswith("rnnbp."):
        return cls.__name__
    return f"{module}.{cls.__qualname__}"


class Layer:
    """Base class of every layer, static or recurrent.

    Attributes
    ----------
    params : dict[str, ndarray]
        The trainable arrays, by name.
    grads : dict[str, ndarray]
        Same keys and shapes as ``params``. ``backward`` *adds* into these
        arrays in place and never rebinds them.
    dtype : numpy.dtype or None
        float64 or float32; ``None`` for parameter-free layers, which take
        the dtype of whatever flows through them.
    input_size, output_size : int or None
        Feature sizes; ``None`` for shape-preserving layers (activations).
    state_sizes : tuple[int, ...]
        Width of each state component: ``()`` for static layers, ``(H,)`` for
        Elman and GRU, ``(H, H)`` for LSTM.
    training : bool
        Training mode (affects ``Dropout``); see ``train`` and ``eval``.

    Notes
    -----
    Subclasses implement ``forward`` and ``backward`` for one step. The
    sequence methods ``forward_seq``/``backward_seq`` default to a loop over
    the step methods; recurrent cells override them with a fast path.
    Masked steps (``mask[t, b] == False``) carry the state unchanged, output
    zeros, and ignore the output gradient that arrives there.
    """

    state_sizes: tuple[int, ...] = ()
    #: True when a step's output *is* its hidden state h (Elman, LSTM, GRU).
    output_is_hidden: bool = False
    #: True for elementwise layers whose output has the input's shape
    #: (activations, Dropout): sizes are read through them in a Sequential.
    preserves_shape: bool = False
    #: True for layers whose input is integer ids, ``(T, B)`` over a sequence,
    #: rather than features (``Embedding``): the unroller then checks ids.
    takes_ids: bool = False
    #: False for layers whose output at step t depends on later steps
    #: (``Bidirectional``): truncated BPTT refuses them.
    causal: bool = True

    @property
    def record_names(self) -> tuple[str, ...]:
        """The hidden states whose ``||dL/dh_t||`` ``backward_seq(record=)`` fills.

        ``("",)`` for a layer with state (one record, the ``(T, B)`` array
        itself), ``()`` for a static one. A layer with several hidden states
        (``Bidirectional``: ``("forward", "backward")``) takes ``record`` as a
        dict of ``(T, B)`` arrays by these names; the unroller keeps each under
        ``"<layer>.<name>"`` in ``TimeGraph.state_grad_norms``.
        """
        return ("",) if self.state_sizes else ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LAYER_TYPES[layer_type_name(cls)] = cls

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = None if dtype is None else as_dtype(dtype)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True
        self.input_size: int | None = None
        self.output_size: int | None = None

    # -- parameters ---------------------------------------------------------
    def _add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a trainable array and its zero gradient."""
        value = np.ascontiguousarray(value, dtype=self.dtype)
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        return value

    def zero_grad(self) -> None:
        """Fill every gradient with zeros in place (views stay valid)."""
        for g in self.grads.values():
            g.fill(0)

    @property
    def num_params(self) -> int:
        """Total number of trainable scalars."""
        return int(sum(p.size for p in self.params.values()))

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Layer":
        """Set training mode (``Dropout`` drops units only in training mode)."""
        self.training = bool(mode)
        return self

    def eval(self) -> "Layer":
        """Set evaluation mode; same as ``train(False)``."""
        return self.train(False)

    # -- state --------------------------------------------------------------
    def initial_state(self, batch_size: int) -> State:
        """Return the zero state for a batch: a tuple of ``(B, H)`` arrays."""
        dtype = self.dtype or np.float64
        return tuple(np.zeros((batch_size, n), dtype=dtype) for n in self.state_sizes)

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, "Layer"]]:
        """Yield ``(qualified_name, layer)`` for every non-container layer."""
        yield prefix, self

    def flatten_state(self, state: State) -> list[State]:
        """Split a model state into the list of its leaf layers' states."""
        return [state]

    def unflatten_state(self, states: list[State]) -> State:
        """Inverse of ``flatten_state``: consumes states from the list's front."""
        return states.pop(0)

    # -- one step -----------------------------------------------------------
    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """One step: ``(x (B, D), state) -> (y (B, O), state_next, cache)``."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """One step back: ``(dy, dstate_next, cache) -> (dx, dstate)``; adds into ``grads``."""
        raise NotImplementedError

    # -- T steps, one at a time: the step path --------------------------------
    def forward_steps(self, xs: np.ndarray, state: State,
                      mask: np.ndarray | None = None) -> tuple[np.ndarray, State, Any]:
        """Run T steps by calling :meth:`forward` once per step (the step path).

        This is the loop a student reads and a debugger stops in:
        ``rnnbp.unroll(..., path="step")`` calls it for every layer, so a
        breakpoint in a cell's ``forward``/``backward`` is hit during training.
        It is also the default of :meth:`forward_seq`.

        Parameters
        ----------
        xs : ndarray, shape (T, B, D)
        state : tuple of ndarray, each (B, H)
        mask : ndarray of bool, shape (T, B), optional
            Where ``False`` the step is skipped: the state is carried
            unchanged and the output is zero.

        Returns
        -------
        ys : ndarray, shape (T, B, O)
        state_T : state
        cache : object
            One step cache per step, for :meth:`backward_steps`.
        """
        T = xs.shape[0]
        caches: list[Any] = []
        states: list[State] = [state]
        ys = None
        for t in range(T):
            y, state_next, cache = self.forward(xs[t], state)
            if mask is not None:
                m = mask[t][:, None]
                state_next = state_like(state_next, (np.where(m, a, b) for a, b in zip(state_next, state)))
                y = np.where(_broadcast_step(mask[t], y), y, 0).astype(y.dtype, copy=False)
            if ys is None:
                ys = np.empty((T,) + y.shape, dtype=y.dtype)
            ys[t] = y
            caches.append(cache)
            states.append(state_next)
            state = state_next
        return ys, state, StepCache(caches, states, mask, xs.shape)

    def backward_steps(self, dys: np.ndarray, dstate_T: State, cache: "StepCache",
                       record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back by calling :meth:`backward` once per step (the step path).

        Parameters
        ----------
        dys : ndarray, shape (T, B, O)
            Gradient of the loss with respect to each step's output.
        dstate_T : tuple of ndarray
            Gradient with respect to the final state (zeros if unused).
        cache : StepCache
            What :meth:`forward_steps` returned.
        record : ndarray, shape (T, B), optional
            If given and the layer has state, filled with the norm of the
            total gradient reaching the hidden state ``h_t`` at each step,
            per sequence: ``||dL/dh_t||``. For layers whose output is their
            hidden state (``output_is_hidden``: Elman, LSTM, GRU) that is the
            gradient from the step's own output plus the one from step
            ``t + 1``; for other layers, the gradient of the first state
            component arriving from step ``t + 1``.

        Returns
        -------
        dxs : ndarray, shape (T, B, D)
        dstate_0 : tuple of ndarray
        """
        if not isinstance(cache, StepCache):
            raise TypeError(f"cache: expected the StepCache that forward_steps returned, "
                            f"got {type(cache).__name__}")
        caches, mask = cache.caches, cache.mask
        T = len(caches)
        dxs = np.empty(cache.input_shape, dtype=dys.dtype)
        dstate = dstate_T
        for t in range(T - 1, -1, -1):
            dy = dys[t]
            if mask is not None:
                m = mask[t][:, None]
                dy = np.where(_broadcast_step(mask[t], dy), dy, 0).astype(dys.dtype, copy=False)
            if record is not None and self.state_sizes:
                dh = dstate[0] + dy if self.output_is_hidden else dstate[0]
                record[t] = np.sqrt(np.einsum("bh,bh->b", dh, dh))
            if mask is None:
                dx, dstate = self.backward(dy, dstate, caches[t])
            else:                                        # masked: the state was carried, so is its gradient
                carried = tuple(np.where(m, 0, d) for d in dstate)
                passed = state_like(dstate, (np.where(m, d, 0) for d in dstate))
                dx, dprev = self.backward(dy, passed, caches[t])
                dstate = state_like(dprev, (a + b for a, b in zip(dprev, carried)))
            dxs[t] = dx
        return dxs, dstate

    # -- T steps: the sequence path (cells override it with fast kernels) ------
    def forward_seq(self, xs: np.ndarray, state: State,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, State, Any]:
        """Run T steps: ``(xs (T, B, D), state) -> (ys (T, B, O), state_T, cache)``.

        The default is :meth:`forward_steps`; recurrent cells override it
        with a fast sequence kernel that gives the same result (to rounding).
        Arguments and results as in :meth:`forward_steps`.
        """
        return self.forward_steps(xs, state, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``(dys (T, B, O), dstate_T, cache) -> (dxs, dstate_0)``.

        The default is :meth:`backward_steps`; ``cache`` is what
        :meth:`forward_seq` returned. Arguments and results as in
        :meth:`backward_steps`.
        """
        return self.backward_steps(dys, dstate_T, cache, record)

    def time_block(self, batch_size: int) -> int:
        """Steps per time block of this layer's sequence path (1: no blocks).

        A layer whose ``forward_seq``/``backward_seq`` work in blocks of ``c``
        steps, aligned at multiples of ``c`` from the first step (the cells do:
        one GEMM per block), performs exactly the same floating-point
        operations on a sequence cut at multiples of ``c``. ``rnnbp.unroll``
        rounds its ``recompute`` segment length up to such a multiple, which
        makes memory-saving BPTT bit-identical to full BPTT.
        """
        return 1

    def seq_states(self, cache: Any) -> State:
        """States at every step from a ``forward_seq`` cache.

        Returns
        -------
        tuple of ndarray
            One ``(T + 1, B, H)`` array per state component; index 0 is the
            initial state, index t the state after step t. ``()`` for static
            layers.
        """
        if not self.state_sizes:
            return ()
        return tuple(np.stack(parts) for parts in zip(*cache.states))

    # -- randomness -----------------------------------------------------------
    def reseed(self, rng: np.random.Generator) -> None:
        """Take ``rng`` for whatever the layer draws while it runs.

        ``rnnbp.fit(seed=...)`` gives every leaf layer its own generator
        through this hook, so training is reproducible whatever the layers
        are. Layers that draw nothing (the default) ignore it; ``Dropout``
        draws its masks from it.
        """

    # -- description --------------------------------------------------------
    def summary(self, file: Any = None) -> None:
        """Print a table of the model's leaf layers: name, type, output size, state sizes, parameters.

        Parameters
        ----------
        file : text stream, optional
            Where to print (default ``sys.stdout``).

        Examples
        --------
        >>> import rnnbp
        >>> rnnbp.Sequential(rnnbp.LSTM(3, 8, seed=0), rnnbp.Tanh(), rnnbp.Linear(8, 2, seed=1)).summary()
        layer  type    output  state   parameters
        0      LSTM    8       (8, 8)         384
        1      Tanh    same    -                0
        2      Linear  2       -               18
        total                                 402
        """
        rows = [("layer", "type", "output", "state", "parameters")]
        for name, leaf in self.leaves():
            output = ("same" if leaf.preserves_shape and leaf.output_size is None
                      else "?" if leaf.output_size is None else str(leaf.output_size))
            state = str(tuple(leaf.state_sizes)) if leaf.state_sizes else "-"
            rows.append((name or "-", type(leaf).__name__, output, state, str(leaf.num_params)))
        rows.append(("total", "", "", "", str(self.num_params)))
        widths = [max(len(r[k]) for r in rows) for k in range(5)]
        lines = ["  ".join([*(r[k].ljust(widths[k]) for k in range(4)), r[4].rjust(max(widths[4], 10))]).rstrip()
                 for r in rows]
        print("\n".join(lines), file=file)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (used by ``rnnbp.save``)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Callable[[Any, str], "Layer"]) -> "Layer":
        """Rebuild a layer from what :meth:`get_config` returned (used by ``rnnbp.load``).

        The default is ``cls(**config)``. A container overrides it to build
        its children from their specs with ``build(spec, where)``, where
        ``spec`` is ``{"type": name, "config": {...}}`` and ``where`` names the
        child in error messages (``"model.layers[0]"``).
        """
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class StepCache:
    """Cache of :meth:`Layer.forward_steps`: one step cache per step, and the states.

    Attributes
    ----------
    caches : list
        What ``forward`` returned as cache at each step, in time order.
    states : list of state
        The state before step 0 and after every step (``T + 1`` entries).
    mask : ndarray of bool, shape (T, B), or None
    input_shape : tuple of int
        ``xs.shape``, to allocate ``dxs``.
    """

    __slots__ = ("caches", "states", "mask", "input_shape")

    def __init__(self, caches: list, states: list, mask: np.ndarray | None,
                 input_shape: tuple[int, ...]) -> None:
        self.caches = caches
        self.states = states
        self.mask = mask
        self.input_shape = input_shape


class StaticLayer(Layer):
    """A layer without state whose step works on any leading shape.

    ``forward_seq`` applies the step to all ``(T, B, D)`` at once (one call,
    one GEMM for ``Linear``), then zeroes the outputs at masked steps.
    Subclasses implement ``forward(x, ())``/``backward(dy, (), cache)`` so
    they accept arrays of shape ``(..., D)``.
    """

    def forward_seq(self, xs, state, mask=None):
        ys, _, cache = self.forward(xs, ())
        if mask is not None:
            ys = np.where(_broadcast_mask(mask, ys), ys, 0).astype(ys.dtype, copy=False)
        return ys, (), _StaticSeqCache(cache, mask)

    def backward_seq(self, dys, dstate_T, cache, record=None):
        if cache.mask is not None:
            dys = np.where(_broadcast_mask(cache.mask, dys), dys, 0).astype(dys.dtype, copy=False)
        dxs, _ = self.backward(dys, (), cache.cache)
        return dxs, ()

    def seq_states(self, cache):
        return ()


def _broadcast_step(mask_t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A step's ``(B,)`` mask shaped to broadcast over ``a`` of shape ``(B, ...)`` (images too)."""
    return mask_t.reshape(mask_t.shape + (1,) * (a.ndim - 1))


def _broadcast_mask(mask: np.ndarray, a: np.ndarray) -> np.ndarray:
    """A ``(T, B)`` mask shaped to broadcast over ``a`` of shape ``(T, B, ...)``."""
    return mask.reshape(mask.shape + (1,) * (a.ndim - 2))


class _StaticSeqCache:
    __slots__ = ("cache", "mask")

    def __init__(self, cache: Any, mask: np.ndarray | None) -> None:
        self.cache = cache
        self.mask = mask
