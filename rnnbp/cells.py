"""Recurrent cells: ``Elman``, ``LSTM`` and ``GRU``.

Every cell has a one-step path (``forward``/``backward``, written to read like
the equations) and a fast sequence path (``forward_seq``/``backward_seq``):

- the input projection of all T steps is one GEMM, ``xs (T*B, D) @ W_ih + b``;
- caches are preallocated ``(T, B, .)`` arrays filled in place;
- each step does one recurrent GEMM into an ``out=`` buffer and in-place
  elementwise ops on ``(B, .)`` slices into preallocated scratch arrays (no
  allocation inside the time loop). The backward pass derives each step's
  gate derivatives from the cached activations right there rather than for
  all T steps up front: per-step slices stay in the CPU cache, whereas whole
  ``(T, B, 4H)`` temporaries cost more in memory traffic than they save in
  calls (measured);
- the weight gradients are one GEMM each at the end,
  ``dW_ih = xs2d.T @ dz2d``, ``dW_hh = hs_prev2d.T @ dz2d``, ``db = dz2d.sum(0)``.

The public parameters keep PyTorch's layout and gate order (see each class);
internally the fast path works on reordered copies of the weights so that
the gates sharing a nonlinearity are contiguous. The sigmoid is computed as
``(1 + tanh(z / 2)) / 2``, which never overflows and stays in the layer's
dtype; in the fast path the halving is folded into those weight copies
(exact: a power of two), so one ``tanh`` call covers every gate of an LSTM.

Masks follow the base-class step loop exactly: where ``mask[t, b]`` is False
the state is carried unchanged, the output is zero, the output gradient is
ignored and the state gradient passes straight through.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import init as _init
from ._checks import array as _check_array, mask_array as _check_mask, positive_int
from .layer import Layer, State

__all__ = ["Elman", "LSTM", "LSTMState", "GRU"]


class LSTMState(NamedTuple):
    """State of an ``LSTM``: hidden state and cell memory.

    Attributes
    ----------
    h : ndarray, shape (B, H)
        Hidden state (also the cell's output).
    c : ndarray, shape (B, H)
        Cell memory.
    """

    h: np.ndarray
    c: np.ndarray


# -- helpers ----------------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic sigmoid as ``(1 + tanh(z/2)) / 2``: no overflow, dtype kept."""
    s = np.multiply(z, 0.5)
    np.tanh(s, out=s)
    s *= 0.5
    s += 0.5
    return s


def _blocks(W: np.ndarray, order: tuple[int, ...], H: int) -> np.ndarray:
    """Copy of ``W (..., G*H)`` with its gate blocks in ``order``."""
    return np.concatenate([W[..., k * H:(k + 1) * H] for k in order], axis=-1)


def _add_blocks(grad: np.ndarray, dW: np.ndarray, order: tuple[int, ...], H: int) -> None:
    """``grad += dW`` where ``dW``'s block j belongs to ``grad``'s block ``order[j]``."""
    for j, k in enumerate(order):
        grad[..., k * H:(k + 1) * H] += dW[..., j * H:(j + 1) * H]


def _scale_blocks(W: np.ndarray, blocks: slice, H: int, factor: float) -> np.ndarray:
    """In place: scale the columns of the given gate blocks (``W`` is a private copy)."""
    W[..., blocks.start * H:blocks.stop * H] *= factor
    return W


def _row_norms(dh: np.ndarray) -> np.ndarray:
    """``||dh[b]||`` per row, computed exactly as the base-class step loop does."""
    return np.sqrt(np.einsum("bh,bh->b", dh, dh))


class _SeqCache:
    """Cache of a cell's fast ``forward_seq``: preallocated ``(T, B, .)`` arrays.

    ``hs``/``cs`` are ``(T + 1, B, H)`` with index 0 the initial state;
    ``gates`` holds the gate activations (the cell's internal gate order) and
    ``aux`` ``(T, B, H)`` one more per-step array: ``tanh(c_t)`` for the LSTM,
    ``h_{t-1} W_hn + b_hn`` for the GRU. Nothing here is written after
    ``forward_seq`` returns, so a cache can be walked back any number of times.
    """

    __slots__ = ("xs", "hs", "cs", "gates", "aux", "mask")

    def __init__(self, xs: np.ndarray, hs: np.ndarray, cs: np.ndarray | None,
                 gates: np.ndarray | None, aux: np.ndarray | None,
                 mask: np.ndarray | None) -> None:
        self.xs, self.hs, self.cs, self.gates, self.aux, self.mask = xs, hs, cs, gates, aux, mask


def _read_only(a: np.ndarray) -> np.ndarray:
    view = a.view()
    view.flags.writeable = False
    return view


class _Cell(Layer):
    """Shared constructor, argument checks and sequence plumbing of the cells."""

    output_is_hidden = True
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, *, dtype: Any, seed: int | None,
                 rng: np.random.Generator | None, init_ih: str, init_hh: str) -> None:
        super().__init__(dtype)
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = positive_int(hidden_size, "hidden_size")
        self.output_size = self.hidden_size
        self.init_ih = _init.check_name(init_ih, "init_ih")
        self.init_hh = _init.check_name(init_hh, "init_hh")
        if rng is None:
            rng = np.random.default_rng(seed)
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        D, H, G = self.input_size, self.hidden_size, self._gates
        if init_ih == "identity" and D != H:
            raise ValueError(f"init_ih: 'identity' needs input_size == hidden_size, "
                             f"got input_size={D}, hidden_size={H}")
        self._add_param("W_ih", _init.by_name(init_ih, (D, G * H), rng, self.dtype, gates=G))
        self._add_param("W_hh", _init.by_name(init_hh, (H, G * H), rng, self.dtype, gates=G))
        self._add_param("b", np.zeros(G * H, dtype=self.dtype))

    # -- checks (O(1): shapes and dtypes only, no pass over the data) -------
    def _check_state(self, state: Any, B: int, name: str) -> None:
        n, H = len(self.state_sizes), self.hidden_size
        what = "(h,)" if n == 1 else "LSTMState(h, c)"
        if not isinstance(state, (tuple, list)) or len(state) != n:
            got = (f"a {type(state).__name__} of length {len(state)}"
                   if isinstance(state, (tuple, list)) else type(state).__name__)
            raise TypeError(f"{name}: expected a tuple {what} of {n} array(s) of shape "
                            f"({B}, {H}), got {got}")
        for k, s in enumerate(state):
            _check_array(s, f"{name}[{k}]", ndim=2, dtype=self.dtype, finite=False)
            if s.shape != (B, H):
                raise ValueError(f"{name}[{k}]: expected shape ({B}, {H}), got {s.shape}")

    def _check_step(self, x: Any, state: Any) -> int:
        _check_array(x, "x", ndim=2, dtype=self.dtype, finite=False)
        if x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape (B, {self.input_size}), got {x.shape}")
        self._check_state(state, x.shape[0], "state")
        return x.shape[0]

    def _check_step_grad(self, dy: Any, dstate_next: Any, cache: Any) -> None:
        B = cache[0].shape[0]
        _check_array(dy, "dy", ndim=2, dtype=self.dtype, finite=False)
        if dy.shape != (B, self.hidden_size):
            raise ValueError(f"dy: expected shape ({B}, {self.hidden_size}), got {dy.shape}")
        self._check_state(dstate_next, B, "dstate_next")

    def _check_seq(self, xs: Any, state: Any, mask: Any) -> tuple[int, int]:
        _check_array(xs, "xs", ndim=3, dtype=self.dtype, finite=False)
        if xs.shape[2] != self.input_size:
            raise ValueError(f"xs: expected shape (T, B, {self.input_size}), got {xs.shape}")
        T, B = xs.shape[:2]
        self._check_state(state, B, "state")
        if mask is not None:
            _check_mask(mask, T, B)
        return T, B

    def _check_seq_grad(self, dys: Any, dstate_T: Any, cache: _SeqCache,
                        record: Any) -> tuple[int, int]:
        T, B = cache.xs.shape[:2]
        _check_array(dys, "dys", ndim=3, dtype=self.dtype, finite=False)
        if dys.shape != (T, B, self.hidden_size):
            raise ValueError(f"dys: expected shape ({T}, {B}, {self.hidden_size}), got {dys.shape}")
        self._check_state(dstate_T, B, "dstate_T")
        if record is not None:
            if not isinstance(record, np.ndarray) or record.shape != (T, B):
                got = record.shape if isinstance(record, np.ndarray) else type(record).__name__
                raise ValueError(f"record: expected an array of shape ({T}, {B}), got {got}")
        return T, B

    # -- shared sequence plumbing ---------------------------------------------
    def _start(self, xs: np.ndarray, state: State, mask: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Allocate ``hs (T+1, B, H)`` with the initial state; the mask's complement."""
        T, B = xs.shape[:2]
        hs = np.empty((T + 1, B, self.hidden_size), dtype=self.dtype)
        hs[0] = state[0]
        skip = None if mask is None else ~mask[:, :, None]
        return hs, skip

    def _outputs(self, hs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``ys = hs[1:]``, zero where masked (there ``hs`` carries the old state)."""
        if mask is None:
            return hs[1:].copy()
        return np.where(mask[:, :, None], hs[1:], self.dtype.type(0))

    def _masked_dys(self, dys: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if mask is None:
            return dys
        return np.where(mask[:, :, None], dys, self.dtype.type(0))

    def seq_states(self, cache: Any) -> State:
        """States at every step: one read-only ``(T + 1, B, H)`` view per component.

        Index 0 is the initial state, index t the state after step t.
        """
        if not isinstance(cache, _SeqCache):
            return super().seq_states(cache)
        if cache.cs is None:
            return (_read_only(cache.hs),)
        return LSTMState(_read_only(cache.hs), _read_only(cache.cs))

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(cell)(**config)`` rebuilds it."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "dtype": self.dtype.name, "init_ih": self.init_ih, "init_hh": self.init_hh}


# ---------------------------------------------------------------------------
class Elman(_Cell):
    """Elman (vanilla) RNN cell: ``h' = act(x W_ih + h W_hh + b)``.

    Matches ``torch.nn.RNN`` (one layer): ``W_ih = weight_ih_l0.T``,
    ``W_hh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``.

    Parameters
    ----------
    input_size : int
        D, features per step.
    hidden_size : int
        H, size of the hidden state (and of the output).
    activation : {"tanh", "relu"}
        The nonlinearity ``act``.
    dtype : float64 or float32, default float64
    seed : int, optional
        Seed for the initialisers (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional
    init_ih : str, default "glorot_uniform"
        Initialiser name for ``W_ih`` (see ``rnnbp.init``).
    init_hh : str, default "orthogonal"
        Initialiser name for ``W_hh``. The IRNN (Le et al., 2015) is
        ``Elman(D, H, activation="relu", init_hh="identity")``.

    Attributes
    ----------
    params : dict
        ``W_ih`` (D, H), ``W_hh`` (H, H), ``b`` (H,); ``b`` starts at zero.
    state_sizes : (H,)
        The state is ``(h,)`` with ``h`` of shape (B, H); the output is ``h``.

    Examples
    --------
    >>> import numpy as np
    >>> cell = Elman(3, 4, seed=0)
    >>> xs = np.ones((5, 2, 3))                     # (T, B, D)
    >>> ys, (h,), cache = cell.forward_seq(xs, cell.initial_state(2))
    >>> ys.shape, h.shape
    ((5, 2, 4), (2, 4))
    >>> dxs, (dh0,) = cell.backward_seq(np.ones_like(ys), (np.zeros_like(h),), cache)
    >>> dxs.shape, cell.grads["W_hh"].shape
    ((5, 2, 3), (4, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh", *,
                 dtype: Any = np.float64, seed: int | None = None,
                 rng: np.random.Generator | None = None,
                 init_ih: str = "glorot_uniform", init_hh: str = "orthogonal") -> None:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation: expected 'tanh' or 'relu', got {activation!r}")
        self.activation = activation
        super().__init__(input_size, hidden_size, dtype=dtype, seed=seed, rng=rng,
                         init_ih=init_ih, init_hh=init_hh)
        self.state_sizes = (self.hidden_size,)

    def _act_(self, a: np.ndarray) -> np.ndarray:
        """Apply the activation in place."""
        if self.activation == "tanh":
            return np.tanh(a, out=a)
        return np.maximum(a, 0, out=a)

    def _act_grad(self, h_next: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``act'(a)`` from the activation's output ``h' = act(a)`` (into ``out`` if given)."""
        if out is None:
            out = np.empty_like(h_next)
        if self.activation == "tanh":
            np.multiply(h_next, h_next, out=out)
            return np.subtract(1, out, out=out)          # tanh' = 1 - tanh^2
        return np.greater(h_next, 0, out=out)            # relu' = [a > 0] = [h' > 0]

    # -- one step -------------------------------------------------------------
    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """One step: ``x (B, D), (h (B, H),) -> (y (B, H), (h' (B, H),), cache)``; ``y = h'``."""
        self._check_step(x, state)
        (h,) = state
        p = self.params
        a = x @ p["W_ih"]
        a += h @ p["W_hh"]
        a += p["b"]
        h_next = self._act_(a)
        return h_next.copy(), (h_next,), (x, h, h_next)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """One step back: ``dy (B, H), (dh' (B, H),) -> (dx (B, D), (dh (B, H),))``."""
        self._check_step_grad(dy, dstate_next, cache)
        x, h, h_next = cache
        p, g = self.params, self.grads
        dh_next = dstate_next[0] + dy                    # y = h'
        da = dh_next * self._act_grad(h_next)            # h' = act(a)
        g["W_ih"] += x.T @ da                            # a = x W_ih + h W_hh + b
        g["W_hh"] += h.T @ da                            # a = x W_ih + h W_hh + b
        g["b"] += da.sum(axis=0)                         # a = x W_ih + h W_hh + b
        dx = da @ p["W_ih"].T                            # a = x W_ih + h W_hh + b
        dh = da @ p["W_hh"].T                            # a = x W_ih + h W_hh + b
        return dx, (dh,)

    # -- T steps --------------------------------------------------------------
    def forward_seq(self, xs: np.ndarray, state: State,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, State, Any]:
        """Run T steps: ``xs (T, B, D), (h0,) -> (ys (T, B, H), (h_T,), cache)``.

        ``mask (T, B)`` bool, optional: where False the state is carried and
        the output is zero.
        """
        T, B = self._check_seq(xs, state, mask)
        D, H, p = self.input_size, self.hidden_size, self.params
        hs, skip = self._start(xs, state, mask)
        A = hs.reshape((T + 1) * B, H)[B:]               # hs[1:] as (T*B, H)
        np.matmul(xs.reshape(T * B, D), p["W_ih"], out=A)
        A += p["b"]                                      # a_t = x_t W_ih + b, all steps
        W_hh = p["W_hh"]
        tmp = np.empty((B, H), dtype=self.dtype)
        for t in range(T):
            h = hs[t + 1]
            np.matmul(hs[t], W_hh, out=tmp)
            h += tmp                                     # a_t += h_{t-1} W_hh
            self._act_(h)                                # h_t = act(a_t)
            if skip is not None:
                np.copyto(h, hs[t], where=skip[t])
        return self._outputs(hs, mask), (hs[T].copy(),), _SeqCache(xs, hs, None, None, None, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        T, B = self._check_seq_grad(dys, dstate_T, cache, record)
        D, H, p, g = self.input_size, self.hidden_size, self.params, self.grads
        xs, hs, mask = cache.xs, cache.hs, cache.mask
        skip = None if mask is None else ~mask[:, :, None]
        dys = self._masked_dys(dys, mask)                # masked steps ignore dy
        dA = np.empty((T, B, H), dtype=self.dtype)
        W_hh_T = np.ascontiguousarray(p["W_hh"].T)
        dh, dh_prev = dstate_T[0].copy(), np.empty((B, H), dtype=self.dtype)
        dact = np.empty((B, H), dtype=self.dtype)
        for t in range(T - 1, -1, -1):
            dh += dys[t]                                 # y_t = h_t
            if record is not None:
                record[t] = _row_norms(dh)               # ||dL/dh_t|| (total, as the step loop)
            da = dA[t]
            np.multiply(dh, self._act_grad(hs[t + 1], dact), out=da)  # h_t = act(a_t)
            if skip is not None:
                np.copyto(da, 0, where=skip[t])          # masked: h_t = h_{t-1}, a_t unused
            np.matmul(da, W_hh_T, out=dh_prev)           # a_t = x_t W_ih + h_{t-1} W_hh + b
            if skip is not None:
                np.copyto(dh_prev, dh, where=skip[t])    # masked: h_t = h_{t-1}
            dh, dh_prev = dh_prev, dh
        dA2 = dA.reshape(T * B, H)
        xs2 = xs.reshape(T * B, D)
        g["W_ih"] += xs2.T @ dA2                         # a_t = x_t W_ih + ...
        g["W_hh"] += hs[:-1].reshape(T * B, H).T @ dA2   # a_t = ... + h_{t-1} W_hh + ...
        g["b"] += dA2.sum(axis=0)                        # a_t = ... + b
        dxs = (dA2 @ p["W_ih"].T).reshape(T, B, D)       # a_t = x_t W_ih + ...
        return dxs, (dh,)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``Elman(**config)`` rebuilds it."""
        config = super().get_config()
        config["activation"] = self.activation
        return config


# ---------------------------------------------------------------------------
# Internal LSTM gate order (o, i, f, g): the three sigmoid gates first, and
# the three gates multiplied by dc (i, f, g) contiguous for the backward pass.
_LSTM_ORDER = (3, 0, 1, 2)


class LSTM(_Cell):
    """Long short-term memory cell, PyTorch's formulation and gate order (i, f, g, o).

    ::

        z  = x W_ih + h W_hh + b           (B, 4H), blocks i, f, g, o
        i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
        c' = f * c + i * g
        h' = o * tanh(c')                  (also the output)

    Matches ``torch.nn.LSTM`` (one layer): ``W_ih = weight_ih_l0.T``,
    ``W_hh = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0``.

    Parameters
    ----------
    input_size : int
        D.
    hidden_size : int
        H.
    dtype : float64 or float32, default float64
    seed : int, optional
        Seed for the initialisers (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional
    init_ih : str, default "glorot_uniform"
        Initialiser for ``W_ih``, applied per gate block.
    init_hh : str, default "orthogonal"
        Initialiser for ``W_hh``, applied per gate block.
    forget_bias : float, default 1.0
        Initial value of the forget-gate block of ``b`` (the rest starts at
        zero). Only an initial value: nothing is added in the forward pass.

    Attributes
    ----------
    params : dict
        ``W_ih`` (D, 4H), ``W_hh`` (H, 4H), ``b`` (4H,).
    state_sizes : (H, H)
        The state is ``LSTMState(h, c)``, each (B, H); the output is ``h``.

    Examples
    --------
    >>> import numpy as np
    >>> cell = LSTM(3, 4, seed=0)
    >>> xs = np.ones((5, 2, 3))                     # (T, B, D)
    >>> ys, state, cache = cell.forward_seq(xs, cell.initial_state(2))
    >>> ys.shape, state.c.shape
    ((5, 2, 4), (2, 4))
    >>> zeros = LSTMState(np.zeros((2, 4)), np.zeros((2, 4)))
    >>> dxs, dstate0 = cell.backward_seq(np.ones_like(ys), zeros, cache)
    >>> dxs.shape, dstate0.c.shape
    ((5, 2, 3), (2, 4))
    """

    _gates = 4

    def __init__(self, input_size: int, hidden_size: int, *, dtype: Any = np.float64,
                 seed: int | None = None, rng: np.random.Generator | None = None,
                 init_ih: str = "glorot_uniform", init_hh: str = "orthogonal",
                 forget_bias: float = 1.0) -> None:
        try:
            self.forget_bias = float(forget_bias)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"forget_bias: expected a number, got {forget_bias!r}") from exc
        if not np.isfinite(self.forget_bias):
            raise ValueError(f"forget_bias: expected a finite number, got {forget_bias!r}")
        super().__init__(input_size, hidden_size, dtype=dtype, seed=seed, rng=rng,
                         init_ih=init_ih, init_hh=init_hh)
        self.params["b"][...] = _init.forget_gate_bias(self.hidden_size, self.forget_bias, self.dtype)
        self.state_sizes = (self.hidden_size, self.hidden_size)

    def initial_state(self, batch_size: int) -> LSTMState:
        """Zero state ``LSTMState(h, c)``, each of shape (batch_size, H)."""
        h, c = super().initial_state(batch_size)
        return LSTMState(h, c)

    # -- one step -------------------------------------------------------------
    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, LSTMState, Any]:
        """One step: ``x (B, D), (h, c) (B, H) each -> (y (B, H), LSTMState(h', c'), cache)``."""
        self._check_step(x, state)
        h, c = state
        H, p = self.hidden_size, self.params
        z = x @ p["W_ih"]
        z += h @ p["W_hh"]
        z += p["b"]
        i = _sigmoid(z[:, :H])
        f = _sigmoid(z[:, H:2 * H])
        g = np.tanh(z[:, 2 * H:3 * H])
        o = _sigmoid(z[:, 3 * H:])
        c_next = f * c + i * g
        tc = np.tanh(c_next)
        h_next = o * tc
        return h_next.copy(), LSTMState(h_next, c_next), (x, h, c, i, f, g, o, tc)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, LSTMState]:
        """One step back: ``dy (B, H), (dh', dc') -> (dx (B, D), LSTMState(dh, dc))``."""
        self._check_step_grad(dy, dstate_next, cache)
        x, h, c, i, f, g, o, tc = cache
        p, grads = self.params, self.grads
        dh_next = dstate_next[0] + dy                    # y = h'
        do = dh_next * tc                                # h' = o * tanh(c')
        dc_next = dstate_next[1] + dh_next * o * (1 - tc * tc)  # h' = o * tanh(c')
        di = dc_next * g                                 # c' = f * c + i * g
        df = dc_next * c                                 # c' = f * c + i * g
        dg = dc_next * i                                 # c' = f * c + i * g
        dc = dc_next * f                                 # c' = f * c + i * g
        dz = np.concatenate([di * i * (1 - i),           # i = sigmoid(z_i)
                             df * f * (1 - f),           # f = sigmoid(z_f)
                             dg * (1 - g * g),           # g = tanh(z_g)
                             do * o * (1 - o)], axis=1)  # o = sigmoid(z_o)
        grads["W_ih"] += x.T @ dz                        # z = x W_ih + h W_hh + b
        grads["W_hh"] += h.T @ dz                        # z = x W_ih + h W_hh + b
        grads["b"] += dz.sum(axis=0)                     # z = x W_ih + h W_hh + b
        dx = dz @ p["W_ih"].T                            # z = x W_ih + h W_hh + b
        dh = dz @ p["W_hh"].T                            # z = x W_ih + h W_hh + b
        return dx, LSTMState(dh, dc)

    # -- T steps --------------------------------------------------------------
    def forward_seq(self, xs: np.ndarray, state: State,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, LSTMState, Any]:
        """Run T steps: ``xs (T, B, D), (h0, c0) -> (ys (T, B, H), LSTMState(h_T, c_T), cache)``.

        ``mask (T, B)`` bool, optional: where False the state is carried and
        the output is zero.
        """
        T, B = self._check_seq(xs, state, mask)
        D, H, p = self.input_size, self.hidden_size, self.params
        # Private copies in gate order (o, i, f, g) with the sigmoid columns
        # halved, so tanh(z) gives tanh(z/2) there: sigmoid(z) = (1 + tanh(z/2)) / 2.
        W_ih = _scale_blocks(_blocks(p["W_ih"], _LSTM_ORDER, H), slice(0, 3), H, 0.5)
        W_hh = _scale_blocks(_blocks(p["W_hh"], _LSTM_ORDER, H), slice(0, 3), H, 0.5)
        b = _scale_blocks(_blocks(p["b"], _LSTM_ORDER, H), slice(0, 3), H, 0.5)
        hs, skip = self._start(xs, state, mask)
        cs = np.empty_like(hs)
        cs[0] = state[1]
        G = np.empty((T, B, 4 * H), dtype=self.dtype)
        np.matmul(xs.reshape(T * B, D), W_ih, out=G.reshape(T * B, 4 * H))
        G += b                                           # z_t = x_t W_ih + b, all steps
        TC = np.empty((T, B, H), dtype=self.dtype)
        tmp4 = np.empty((B, 4 * H), dtype=self.dtype)
        tmp = np.empty((B, H), dtype=self.dtype)
        for t in range(T):
            z = G[t]
            np.matmul(hs[t], W_hh, out=tmp4)
            z += tmp4                                    # z_t += h_{t-1} W_hh
            np.tanh(z, out=z)
            sig = z[:, :3 * H]
            sig *= 0.5
            sig += 0.5                                   # o, i, f = sigmoid(.); g = tanh(.)
            o, i, f, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
            c = cs[t + 1]
            np.multiply(f, cs[t], out=c)
            np.multiply(i, g, out=tmp)
            c += tmp                                     # c_t = f c_{t-1} + i g
            np.tanh(c, out=TC[t])
            np.multiply(o, TC[t], out=hs[t + 1])         # h_t = o tanh(c_t)
            if skip is not None:
                np.copyto(hs[t + 1], hs[t], where=skip[t])
                np.copyto(c, cs[t], where=skip[t])
        cache = _SeqCache(xs, hs, cs, G, TC, mask)
        return self._outputs(hs, mask), LSTMState(hs[T].copy(), cs[T].copy()), cache

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, LSTMState]:
        """Walk T steps back: ``dys (T, B, H), (dh_T, dc_T) -> (dxs (T, B, D), LSTMState(dh0, dc0))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        T, B = self._check_seq_grad(dys, dstate_T, cache, record)
        D, H, p, grads = self.input_size, self.hidden_size, self.params, self.grads
        xs, hs, cs, G, TC, mask = cache.xs, cache.hs, cache.cs, cache.gates, cache.aux, cache.mask
        skip = None if mask is None else ~mask[:, :, None]
        dys = self._masked_dys(dys, mask)                # masked steps ignore dy
        dZ = np.empty((T, B, 4 * H), dtype=self.dtype)   # gate order o, i, f, g
        W_hh_T = np.ascontiguousarray(_blocks(p["W_hh"], _LSTM_ORDER, H).T)
        new = lambda: np.empty((B, H), dtype=self.dtype)  # noqa: E731
        dh, dh_prev, dc, dc_prev, dct, tmp = dstate_T[0].copy(), new(), dstate_T[1].copy(), new(), new(), new()
        tmp3 = np.empty((B, 3 * H), dtype=self.dtype)
        if skip is not None:
            dh_in, dc_in = new(), new()
        for t in range(T - 1, -1, -1):
            dh += dys[t]                                 # y_t = h_t
            if record is not None:
                record[t] = _row_norms(dh)               # ||dL/dh_t|| (total, as the step loop)
            if skip is None:
                dh_t, dc_t = dh, dc
            else:                                        # masked: the step is skipped
                dh_t, dc_t = dh_in, dc_in
                np.copyto(dh_t, dh)                      # masked: h_t = h_{t-1}
                np.copyto(dh_t, 0, where=skip[t])        # masked: h_t = h_{t-1}
                np.copyto(dc_t, dc)                      # masked: c_t = c_{t-1}
                np.copyto(dc_t, 0, where=skip[t])        # masked: c_t = c_{t-1}
            z, dz, tc = G[t], dZ[t], TC[t]
            o, i, f, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
            np.multiply(tc, tc, out=dct)                 # h_t = o tanh(c_t)
            np.subtract(1, dct, out=dct)                 # h_t = o tanh(c_t)
            dct *= o                                     # h_t = o tanh(c_t)
            dct *= dh_t                                  # h_t = o tanh(c_t)
            dct += dc_t                                  # c_{t+1} = f c_t + ... (dL/dc_t from t+1)
            np.multiply(dh_t, tc, out=dz[:, :H])         # h_t = o tanh(c_t)
            np.multiply(dct, g, out=dz[:, H:2 * H])      # c_t = f c_{t-1} + i g
            np.multiply(dct, cs[t], out=dz[:, 2 * H:3 * H])  # c_t = f c_{t-1} + i g
            np.multiply(dct, i, out=dz[:, 3 * H:])       # c_t = f c_{t-1} + i g
            np.subtract(1, z[:, :3 * H], out=tmp3)       # o, i, f = sigmoid(z_{o,i,f})
            tmp3 *= z[:, :3 * H]                         # o, i, f = sigmoid(z_{o,i,f})
            dz[:, :3 * H] *= tmp3                        # o, i, f = sigmoid(z_{o,i,f})
            np.multiply(g, g, out=tmp)                   # g = tanh(z_g)
            np.subtract(1, tmp, out=tmp)                 # g = tanh(z_g)
            dz[:, 3 * H:] *= tmp                         # g = tanh(z_g)
            np.multiply(dct, f, out=dc_prev)             # c_t = f c_{t-1} + i g
            np.matmul(dz, W_hh_T, out=dh_prev)           # z_t = x_t W_ih + h_{t-1} W_hh + b
            if skip is not None:
                np.copyto(dh_prev, dh, where=skip[t])    # masked: h_t = h_{t-1}
                np.copyto(dc_prev, dc, where=skip[t])    # masked: c_t = c_{t-1}
            dh, dh_prev = dh_prev, dh
            dc, dc_prev = dc_prev, dc
        dZ2 = dZ.reshape(T * B, 4 * H)
        xs2 = xs.reshape(T * B, D)
        _add_blocks(grads["W_ih"], xs2.T @ dZ2, _LSTM_ORDER, H)   # z_t = x_t W_ih + ...
        _add_blocks(grads["W_hh"], hs[:-1].reshape(T * B, H).T @ dZ2, _LSTM_ORDER, H)  # z_t = ... + h_{t-1} W_hh
        _add_blocks(grads["b"], dZ2.sum(axis=0), _LSTM_ORDER, H)  # z_t = ... + b
        dxs = (dZ2 @ _blocks(p["W_ih"], _LSTM_ORDER, H).T).reshape(T, B, D)  # z_t = x_t W_ih + ...
        return dxs, LSTMState(dh, dc)

    def seq_states(self, cache: Any) -> State:
        """States at every step: ``LSTMState(hs, cs)``, read-only ``(T + 1, B, H)`` each."""
        states = super().seq_states(cache)
        return states if isinstance(states, LSTMState) else LSTMState(*states)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``LSTM(**config)`` rebuilds it."""
        config = super().get_config()
        config["forget_bias"] = self.forget_bias
        return config


# ---------------------------------------------------------------------------
# GRU backward buffer layout (n, z, r, hn): the input-side gradient is the
# first three blocks (gate order n, z, r) and the recurrent-side gradient the
# last three (z, r, n), both contiguous, so each weight gradient is one GEMM.
_GRU_X_ORDER = (2, 1, 0)   # n, z, r
_GRU_H_ORDER = (1, 0, 2)   # z, r, n


class GRU(_Cell):
    """Gated recurrent unit, PyTorch's reset-after formulation and gate order (r, z, n).

    ::

        r  = sigmoid(x W_ir + h W_hr + b_r)
        z  = sigmoid(x W_iz + h W_hz + b_z)
        n  = tanh(x W_in + b_n + r * (h W_hn + b_hn))
        h' = (1 - z) * n + z * h           (also the output)

    Matches ``torch.nn.GRU`` (one layer): ``W_ih = weight_ih_l0.T``,
    ``W_hh = weight_hh_l0.T``, ``b = bias_ih_l0 + [bias_hh_r, bias_hh_z, 0]``
    and ``b_hn = bias_hh_n`` (the recurrent candidate bias sits inside the
    reset gate, so it cannot be folded into ``b``).

    Parameters
    ----------
    input_size : int
        D.
    hidden_size : int
        H.
    dtype : float64 or float32, default float64
    seed : int, optional
        Seed for the initialisers (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional
    init_ih : str, default "glorot_uniform"
        Initialiser for ``W_ih``, applied per gate block.
    init_hh : str, default "orthogonal"
        Initialiser for ``W_hh``, applied per gate block.

    Attributes
    ----------
    params : dict
        ``W_ih`` (D, 3H), ``W_hh`` (H, 3H), ``b`` (3H,), ``b_hn`` (H,);
        biases start at zero.
    state_sizes : (H,)
        The state is ``(h,)`` with ``h`` of shape (B, H); the output is ``h``.

    Examples
    --------
    >>> import numpy as np
    >>> cell = GRU(3, 4, seed=0)
    >>> xs = np.ones((5, 2, 3))                     # (T, B, D)
    >>> ys, (h,), cache = cell.forward_seq(xs, cell.initial_state(2))
    >>> dxs, (dh0,) = cell.backward_seq(np.ones_like(ys), (np.zeros_like(h),), cache)
    >>> dxs.shape, cell.grads["b_hn"].shape
    ((5, 2, 3), (4,))
    """

    _gates = 3

    def __init__(self, input_size: int, hidden_size: int, *, dtype: Any = np.float64,
                 seed: int | None = None, rng: np.random.Generator | None = None,
                 init_ih: str = "glorot_uniform", init_hh: str = "orthogonal") -> None:
        super().__init__(input_size, hidden_size, dtype=dtype, seed=seed, rng=rng,
                         init_ih=init_ih, init_hh=init_hh)
        self._add_param("b_hn", np.zeros(self.hidden_size, dtype=self.dtype))
        self.state_sizes = (self.hidden_size,)

    # -- one step -------------------------------------------------------------
    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """One step: ``x (B, D), (h (B, H),) -> (y (B, H), (h' (B, H),), cache)``; ``y = h'``."""
        self._check_step(x, state)
        (h,) = state
        H, p = self.hidden_size, self.params
        ax = x @ p["W_ih"]
        ax += p["b"]
        ah = h @ p["W_hh"]
        r = _sigmoid(ax[:, :H] + ah[:, :H])
        z = _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        hn = ah[:, 2 * H:] + p["b_hn"]
        n = np.tanh(ax[:, 2 * H:] + r * hn)
        h_next = (1 - z) * n + z * h
        return h_next.copy(), (h_next,), (x, h, r, z, n, hn)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """One step back: ``dy (B, H), (dh' (B, H),) -> (dx (B, D), (dh (B, H),))``."""
        self._check_step_grad(dy, dstate_next, cache)
        x, h, r, z, n, hn = cache
        p, grads = self.params, self.grads
        dh_next = dstate_next[0] + dy                    # y = h'
        dn = dh_next * (1 - z)                           # h' = (1 - z) n + z h
        dz = dh_next * (h - n)                           # h' = (1 - z) n + z h
        da_n = dn * (1 - n * n)                          # n = tanh(a_n)
        dr = da_n * hn                                   # a_n = x W_in + b_n + r * hn
        dhn = da_n * r                                   # a_n = x W_in + b_n + r * hn
        da_r = dr * r * (1 - r)                          # r = sigmoid(a_r)
        da_z = dz * z * (1 - z)                          # z = sigmoid(a_z)
        dax = np.concatenate([da_r, da_z, da_n], axis=1)  # a_{r,z,n} = x W_i{r,z,n} + b_{r,z,n} + ...
        dah = np.concatenate([da_r, da_z, dhn], axis=1)  # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
        grads["W_ih"] += x.T @ dax                       # a = x W_ih + b + ...
        grads["b"] += dax.sum(axis=0)                    # a = x W_ih + b + ...
        grads["W_hh"] += h.T @ dah                       # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
        grads["b_hn"] += dhn.sum(axis=0)                 # hn = h W_hn + b_hn
        dx = dax @ p["W_ih"].T                           # a = x W_ih + b + ...
        dh = dh_next * z + dah @ p["W_hh"].T             # h' = ... + z h; a_{r,z}, hn use h W_hh
        return dx, (dh,)

    # -- T steps --------------------------------------------------------------
    def forward_seq(self, xs: np.ndarray, state: State,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, State, Any]:
        """Run T steps: ``xs (T, B, D), (h0,) -> (ys (T, B, H), (h_T,), cache)``.

        ``mask (T, B)`` bool, optional: where False the state is carried and
        the output is zero.
        """
        T, B = self._check_seq(xs, state, mask)
        D, H, p = self.input_size, self.hidden_size, self.params
        # Private copies with the r, z columns halved: sigmoid(a) = (1 + tanh(a/2)) / 2.
        W_ih = _scale_blocks(p["W_ih"].copy(), slice(0, 2), H, 0.5)
        W_hh = _scale_blocks(p["W_hh"].copy(), slice(0, 2), H, 0.5)
        b = _scale_blocks(p["b"].copy(), slice(0, 2), H, 0.5)
        b_hn = p["b_hn"]
        hs, skip = self._start(xs, state, mask)
        G = np.empty((T, B, 3 * H), dtype=self.dtype)
        np.matmul(xs.reshape(T * B, D), W_ih, out=G.reshape(T * B, 3 * H))
        G += b                                           # a_t = x_t W_ih + b, all steps
        HN = np.empty((T, B, H), dtype=self.dtype)
        tmp3 = np.empty((B, 3 * H), dtype=self.dtype)
        tmp = np.empty((B, H), dtype=self.dtype)
        for t in range(T):
            a = G[t]
            np.matmul(hs[t], W_hh, out=tmp3)
            rz = a[:, :2 * H]
            rz += tmp3[:, :2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5                                    # r, z = sigmoid(x W_i{r,z} + h W_h{r,z} + b)
            r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
            np.add(tmp3[:, 2 * H:], b_hn, out=HN[t])     # hn = h W_hn + b_hn
            np.multiply(r, HN[t], out=tmp)
            n += tmp
            np.tanh(n, out=n)                            # n = tanh(x W_in + b_n + r hn)
            h = hs[t + 1]
            np.subtract(hs[t], n, out=h)
            h *= z
            h += n                                       # h_t = (1 - z) n + z h_{t-1}
            if skip is not None:
                np.copyto(h, hs[t], where=skip[t])
        return self._outputs(hs, mask), (hs[T].copy(),), _SeqCache(xs, hs, None, G, HN, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        T, B = self._check_seq_grad(dys, dstate_T, cache, record)
        D, H, p, grads = self.input_size, self.hidden_size, self.params, self.grads
        xs, hs, G, HN, mask = cache.xs, cache.hs, cache.gates, cache.aux, cache.mask
        skip = None if mask is None else ~mask[:, :, None]
        dys = self._masked_dys(dys, mask)                # masked steps ignore dy
        dA = np.empty((T, B, 4 * H), dtype=self.dtype)   # blocks: da_n, da_z, da_r, dhn
        W_hh_T = np.ascontiguousarray(_blocks(p["W_hh"], _GRU_H_ORDER, H).T)
        new = lambda: np.empty((B, H), dtype=self.dtype)  # noqa: E731
        dh, dh_prev, tmp, dz_gate = dstate_T[0].copy(), new(), new(), new()
        if skip is not None:
            dh_in = new()
        for t in range(T - 1, -1, -1):
            dh += dys[t]                                 # y_t = h_t
            if record is not None:
                record[t] = _row_norms(dh)               # ||dL/dh_t|| (total, as the step loop)
            if skip is None:
                dh_t = dh
            else:                                        # masked: the step is skipped
                dh_t = dh_in
                np.copyto(dh_t, dh)                      # masked: h_t = h_{t-1}
                np.copyto(dh_t, 0, where=skip[t])        # masked: h_t = h_{t-1}
            a, da = G[t], dA[t]
            r, z, n, hn = a[:, :H], a[:, H:2 * H], a[:, 2 * H:], HN[t]
            da_n, da_z, da_r, dhn = da[:, :H], da[:, H:2 * H], da[:, 2 * H:3 * H], da[:, 3 * H:]
            np.subtract(1, z, out=dz_gate)               # h_t = (1 - z) n + z h_{t-1}
            np.multiply(n, n, out=tmp)                   # n = tanh(a_n)
            np.subtract(1, tmp, out=tmp)                 # n = tanh(a_n)
            tmp *= dz_gate                               # h_t = (1 - z) n + z h_{t-1}
            np.multiply(dh_t, tmp, out=da_n)             # h_t = (1 - z) n + z h_{t-1}; n = tanh(a_n)
            dz_gate *= z                                 # z = sigmoid(a_z): z (1 - z)
            np.subtract(hs[t], n, out=tmp)               # h_t = n + z (h_{t-1} - n)
            tmp *= dh_t                                  # h_t = n + z (h_{t-1} - n)
            np.multiply(tmp, dz_gate, out=da_z)          # h_t = n + z (h_{t-1} - n); z = sigmoid(a_z)
            np.subtract(1, r, out=tmp)                   # r = sigmoid(a_r)
            tmp *= r                                     # r = sigmoid(a_r)
            tmp *= hn                                    # a_n = x W_in + b_n + r hn
            np.multiply(da_n, tmp, out=da_r)             # a_n = x W_in + b_n + r hn; r = sigmoid(a_r)
            np.multiply(da_n, r, out=dhn)                # a_n = x W_in + b_n + r hn
            np.matmul(da[:, H:], W_hh_T, out=dh_prev)    # a_{z,r} = ... + h W_h{z,r}; hn = h W_hn + b_hn
            np.multiply(dh_t, z, out=tmp)                # h_t = ... + z h_{t-1}
            dh_prev += tmp                               # h_t = ... + z h_{t-1}
            if skip is not None:
                np.copyto(dh_prev, dh, where=skip[t])    # masked: h_t = h_{t-1}
            dh, dh_prev = dh_prev, dh
        dA2 = dA.reshape(T * B, 4 * H)
        dAx, dAh = dA2[:, :3 * H], dA2[:, H:]
        xs2 = xs.reshape(T * B, D)
        _add_blocks(grads["W_ih"], xs2.T @ dAx, _GRU_X_ORDER, H)  # a_t = x_t W_ih + b + ...
        _add_blocks(grads["b"], dAx.sum(axis=0), _GRU_X_ORDER, H)  # a_t = x_t W_ih + b + ...
        _add_blocks(grads["W_hh"], hs[:-1].reshape(T * B, H).T @ dAh, _GRU_H_ORDER, H)  # h_{t-1} W_hh
        grads["b_hn"] += dA2[:, 3 * H:].sum(axis=0)      # hn = h W_hn + b_hn
        dxs = (dAx @ _blocks(p["W_ih"], _GRU_X_ORDER, H).T).reshape(T, B, D)  # a_t = x_t W_ih + ...
        return dxs, (dh,)
