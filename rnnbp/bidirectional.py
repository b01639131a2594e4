"""``Bidirectional``: a recurrent layer run forward in time, a second one backward, outputs merged.

A composition of two layers, not a new cell (as ocropy's ``Reversed`` and
``Parallel``): the forward layer reads ``x_1 .. x_L``; the backward layer
reads the same sequence reversed, ``x_L .. x_1``, and its outputs are
reversed back, so at step ``t`` the merged output sees the whole sequence,
the past through the forward layer and the future through the backward one.

With a mask, each sequence is reversed **within its valid prefix** of length
``L_b``: step ``t < L_b`` is read from ``L_b - 1 - t``, and the padding stays
where it is. (Reversing the whole padded array would feed the backward
layer the padding first and start it from a state that has read zeros.)
The reversal is a permutation that is its own inverse, so the backward pass
reverses the output gradients with the same index, walks the backward layer
back, and reverses its input gradients again.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from . import _checks
from .protocol import Layer, State, layer_type_name

__all__ = ["Bidirectional", "reverse_valid_prefix"]

MERGES = ("concat", "sum")


def reverse_valid_prefix(mask: np.ndarray | None, T: int, B: int) -> np.ndarray:
    """Time index ``(T, B)`` that reverses each sequence's valid prefix and keeps its padding.

    ``a[index, np.arange(B)]`` reverses ``a (T, B, ...)`` sequence by sequence;
    applied twice it gives ``a`` back.

    Parameters
    ----------
    mask : ndarray of bool, shape (T, B), or None
        ``True`` on each sequence's valid prefix; ``None``: every step valid.
    T, B : int

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[1, 1], [1, 1], [1, 0], [0, 0]], bool)     # lengths 3 and 2
    >>> reverse_valid_prefix(mask, 4, 2)
    array([[2, 1],
           [1, 0],
           [0, 2],
           [3, 3]])
    """
    t = np.arange(T)[:, None]
    lengths = np.full(B, T) if mask is None else mask.sum(axis=0)
    return np.where(t < lengths, lengths - 1 - t, t)


class _Cache(NamedTuple):
    forward: Any
    backward: Any
    index: np.ndarray
    width: int


class Bidirectional(Layer):
    """Run ``layer`` forward in time and ``backward_layer`` backward, and merge their outputs.

    Parameters
    ----------
    layer : Layer
        A recurrent leaf layer (``Elman``, ``LSTM``, ``GRU`` or your own
        cell), run from ``t = 0`` to the end of each sequence.
    backward_layer : Layer, optional
        The layer run backward over each sequence's valid prefix. By default
        a fresh copy of ``layer``: the same configuration, new weights drawn
        from ``numpy.random.default_rng(seed)`` (the layer's class must take
        ``rng=``, as rnnbp's cells do).
    merge : {"concat", "sum"}, default "concat"
        ``concat``: ``y_t = [y_fwd_t, y_bwd_t]``, ``(B, 2H)``; ``sum``:
        ``y_fwd_t + y_bwd_t``, ``(B, H)``.
    seed : int, optional
        Seed of the default backward layer's weights.

    Attributes
    ----------
    forward_layer, backward_layer : Layer
    params, grads : dict[str, ndarray]
        The forward layer's arrays under their own names and the backward
        layer's with ``_reverse`` appended (the same array objects), as
        PyTorch names a bidirectional layer's weights: for an LSTM,
        ``W_ih = weight_ih_l0.T``, ``W_ih_reverse = weight_ih_l0_reverse.T``,
        ``b_reverse = bias_ih_l0_reverse + bias_hh_l0_reverse``, and so on
        (see ``docs/protocol.md`` for each cell's conversion).
    record_names : ("forward", "backward")
        ``rnnbp.unroll`` records ``||dL/dh_t||`` of both directions, under
        ``"<layer>.forward"`` and ``"<layer>.backward"``, each indexed by the
        input step ``t``.

    Notes
    -----
    The layer carries no state across calls: both directions start from
    zeros on every sequence (``state_sizes == ()``), and it is not causal
    (its output at step ``t`` depends on later inputs), so truncated BPTT
    refuses it. Masks must be prefix masks (``True`` then ``False`` in each
    column). With ``unroll(..., recompute=k)`` the layer keeps its caches.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> bi = rnnbp.Bidirectional(rnnbp.LSTM(3, 4, seed=0), seed=1)
    >>> model = rnnbp.Sequential(bi, rnnbp.Linear(8, 2, seed=2))
    >>> graph = rnnbp.unroll(model, np.ones((5, 2, 3)))
    >>> graph.outputs.shape
    (5, 2, 2)
    >>> _ = graph.backward(np.ones_like(graph.outputs))
    >>> sorted(graph.state_grad_norms)
    ['0.backward', '0.forward']
    """

    causal = False
    record_names = ("forward", "backward")

    def __init__(self, layer: Layer, backward_layer: Layer | None = None, merge: str = "concat", *,
                 seed: int | None = None) -> None:
        _check_direction(layer, "layer")
        if backward_layer is None:
            try:
                backward_layer = type(layer)(**layer.get_config(), rng=_checks.generator(None, seed))
            except TypeError as exc:
                raise TypeError(f"backward_layer: a fresh copy of {type(layer).__name__} needs a constructor "
                                f"that takes rng= ({exc}); pass backward_layer explicitly") from None
        _check_direction(backward_layer, "backward_layer")
        if backward_layer.dtype != layer.dtype:
            raise TypeError(f"backward_layer: expected dtype {layer.dtype} (the forward layer's), "
                            f"got {backward_layer.dtype}")
        if (backward_layer.input_size, backward_layer.output_size) != (layer.input_size, layer.output_size):
            raise ValueError(f"backward_layer: expected sizes (input, output) = ({layer.input_size}, "
                             f"{layer.output_size}) as the forward layer, got ({backward_layer.input_size}, "
                             f"{backward_layer.output_size})")
        super().__init__(layer.dtype)
        self.forward_layer, self.backward_layer = layer, backward_layer
        self.merge = _checks.choice(merge, "merge", MERGES)
        self.input_size = layer.input_size
        self.output_size = layer.output_size * (2 if self.merge == "concat" else 1)
        for name in layer.params:
            self.params[name], self.grads[name] = layer.params[name], layer.grads[name]
        for name in backward_layer.params:
            self.params[f"{name}_reverse"] = backward_layer.params[name]
            self.grads[f"{name}_reverse"] = backward_layer.grads[name]

    # -- the two directions ------------------------------------------------------
    def _run(self, xs: np.ndarray, mask: np.ndarray | None, path: str) -> tuple[np.ndarray, _Cache]:
        T, B = xs.shape[:2]
        if mask is not None:
            _checks.mask_array(mask, T, B)
            if (mask[1:] & ~mask[:-1]).any():
                b = int(np.argmax((mask[1:] & ~mask[:-1]).any(axis=0)))
                raise ValueError(f"mask: Bidirectional needs prefix masks (True, then False, in each column); "
                                 f"sequence {b} has a gap")
        fwd, bwd = self.forward_layer, self.backward_layer
        run_fwd = fwd.forward_seq if path == "fast" else fwd.forward_steps
        run_bwd = bwd.forward_seq if path == "fast" else bwd.forward_steps
        index, cols = reverse_valid_prefix(mask, T, B), np.arange(B)
        ys_f, _, cache_f = run_fwd(xs, fwd.initial_state(B), mask)
        ys_b, _, cache_b = run_bwd(xs[index, cols], bwd.initial_state(B), mask)
        ys_b = ys_b[index, cols]                                   # back to input time
        ys = np.concatenate([ys_f, ys_b], axis=-1) if self.merge == "concat" else ys_f + ys_b
        return ys, _Cache(cache_f, cache_b, index, ys_f.shape[-1])

    def _walk_back(self, dys: np.ndarray, cache: _Cache, record: Any, path: str) -> np.ndarray:
        if not isinstance(cache, _Cache):
            raise TypeError(f"cache: expected the cache Bidirectional.forward_seq returned, got {type(cache).__name__}")
        fwd, bwd = self.forward_layer, self.backward_layer
        T, B = dys.shape[:2]
        index, cols, H = cache.index, np.arange(B), cache.width
        if self.merge == "concat":
            dys_f, dys_b = dys[..., :H], dys[..., H:]              # y = [y_fwd, y_bwd]
        else:
            dys_f = dys_b = dys                                    # y = y_fwd + y_bwd
        rec_f = rec_b = None
        if record is not None:
            if not isinstance(record, dict) or set(record) != set(self.record_names):
                raise ValueError(f"record: expected a dict of (T, B) arrays with keys {self.record_names}")
            rec_f, rec_b = record["forward"], np.empty((T, B), dtype=np.float64)
        back_f = fwd.backward_seq if path == "fast" else fwd.backward_steps
        back_b = bwd.backward_seq if path == "fast" else bwd.backward_steps
        def zeros(layer: Layer) -> tuple:
            return tuple(np.zeros((B, n), dtype=dys.dtype) for n in layer.state_sizes)
        dxs_f, _ = back_f(np.ascontiguousarray(dys_f), _like(fwd, zeros(fwd)), cache.forward, record=rec_f)
        dxs_b, _ = back_b(np.ascontiguousarray(dys_b[index, cols]), _like(bwd, zeros(bwd)), cache.backward,
                          record=rec_b)
        if record is not None:
            record["backward"][...] = rec_b[index, cols]           # in input time, as the forward record
        return dxs_f + dxs_b[index, cols]                          # x feeds both directions

    def forward_seq(self, xs, state=(), mask=None):
        """``xs (T, B, D) -> ys (T, B, 2H or H)``, through the layers' sequence kernels."""
        ys, cache = self._run(xs, mask, "fast")
        return ys, (), cache

    def backward_seq(self, dys, dstate_T=(), cache=None, record=None):
        """``dys (T, B, 2H or H) -> dxs (T, B, D)``; ``record`` a dict by ``record_names``."""
        return self._walk_back(dys, cache, record, "fast"), ()

    def forward_steps(self, xs, state=(), mask=None):
        """As :meth:`forward_seq`, through each layer's one-step methods (the step path)."""
        ys, cache = self._run(xs, mask, "step")
        return ys, (), cache

    def backward_steps(self, dys, dstate_T=(), cache=None, record=None):
        """As :meth:`backward_seq`, through each layer's one-step methods (the step path)."""
        return self._walk_back(dys, cache, record, "step"), ()

    def forward(self, x, state=()):
        """Not defined: a bidirectional layer's output at a step needs the whole sequence."""
        raise TypeError("Bidirectional has no one-step forward: its output at step t depends on later steps; "
                        "run it over a sequence with rnnbp.unroll")

    def backward(self, dy, dstate_next, cache):
        """Not defined (see :meth:`forward`)."""
        raise TypeError("Bidirectional has no one-step backward; use rnnbp.unroll(...).backward")

    def seq_states(self, cache):
        return ()

    # -- the protocol's bookkeeping --------------------------------------------------
    def zero_grad(self) -> None:
        self.forward_layer.zero_grad()
        self.backward_layer.zero_grad()

    def train(self, mode: bool = True) -> "Bidirectional":
        self.training = bool(mode)
        self.forward_layer.train(mode)
        self.backward_layer.train(mode)
        return self

    def reseed(self, rng: np.random.Generator) -> None:
        self.forward_layer.reseed(rng)
        self.backward_layer.reseed(rng)

    def get_config(self) -> dict[str, Any]:
        return {"layer": _spec(self.forward_layer), "backward_layer": _spec(self.backward_layer),
                "merge": self.merge}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Callable[[Any, str], Layer]) -> "Bidirectional":
        """Rebuild both directions from their specs (their weights are loaded afterwards)."""
        if set(config) != {"layer", "backward_layer", "merge"}:
            raise ValueError(f"config: expected keys ['backward_layer', 'layer', 'merge'], got {sorted(config)}")
        return cls(build(config["layer"], "layer"), build(config["backward_layer"], "backward_layer"),
                   config["merge"])

    def __repr__(self) -> str:
        return f"Bidirectional({self.forward_layer!r}, {self.backward_layer!r}, merge={self.merge!r})"


def _check_direction(layer: Any, name: str) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"{name}: expected a recurrent rnnbp.Layer (Elman, LSTM, GRU), got {type(layer).__name__}")
    if not layer.state_sizes or list(layer.leaves()) != [("", layer)] or not layer.causal:
        raise TypeError(f"{name}: expected a recurrent leaf layer (Elman, LSTM, GRU, or a cell of your own), "
                        f"got {type(layer).__name__} (state sizes {layer.state_sizes})")


def _spec(layer: Layer) -> dict[str, Any]:
    return {"type": layer_type_name(type(layer)), "config": layer.get_config()}


def _like(layer: Layer, zeros: tuple) -> State:
    """Zero state gradients typed like the layer's state (``LSTMState`` stays named)."""
    template = layer.initial_state(1)
    return type(template)(*zeros) if hasattr(template, "_fields") else zeros
