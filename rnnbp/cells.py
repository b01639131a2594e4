"""Recurrent cells: ``Elman``, ``LSTM`` and ``GRU``.

Every cell has a one-step path (``forward``/``backward``, written to read like
the equations) and a fast sequence path (``forward_seq``/``backward_seq``)
whose kernels live in ``rnnbp._fastpath`` (see its docstring for the layout):
time blocks of ``time_block(B)`` steps, one GEMM per block for the input
projection and for each weight gradient, preallocated ``(T, B, .)`` caches,
one recurrent GEMM per step into an ``out=`` buffer, and the gate arithmetic
fused into a handful of in-place calls per step. The caches and scratch come
from a small per-layer pool (``rnnbp._workspace``) that reuses a buffer only
once nothing outside the pool references it (a live graph, a cache, a view of
``seq_states``), so steady training does not page-fault fresh memory every
step. The pool is locked, so concurrent ``forward_seq`` calls on one layer
stay correct; ``backward_seq`` on one layer from two threads at once is not
supported (``grads`` accumulate without a lock).

The public parameters keep PyTorch's layout and gate order (see each class);
internally the forward pass works on reordered copies of the weights so that
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

from . import _fastpath as _fp
from . import _workspace
from . import init as _init
from ._checks import array as _check_array, generator, mask_array as _check_mask, positive_int
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


def _halved(W: np.ndarray, blocks: tuple[int, ...], H: int) -> np.ndarray:
    """Copy of ``W (..., G*H)`` with the columns of the given gate blocks halved (exact in binary)."""
    W = W.copy()
    for k in blocks:
        W[..., k * H:(k + 1) * H] *= 0.5
    return W


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
        rng = generator(rng, seed)
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

    def _check_seq_grad(self, dys: Any, dstate_T: Any, cache: _fp.SeqCache,
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
    def _outputs(self, hs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """``ys = hs[1:]``, zero where masked (there ``hs`` carries the old state)."""
        if mask is None:
            return hs[1:].copy()
        return np.where(mask[:, :, None], hs[1:], self.dtype.type(0))

    def _pool(self, new_call: bool = False) -> _workspace.Workspace:
        """This layer's pool of fast-path arrays (``rnnbp._workspace``); ``new_call`` in ``forward_seq``."""
        ws = self.__dict__.get("_ws")
        if ws is None:
            ws = self._ws = _workspace.Workspace()
        if new_call:
            ws.begin()
        return ws

    def time_block(self, batch_size: int) -> int:
        """Steps per time block of the fast path (see ``Layer.time_block``)."""
        return _fp.time_block(batch_size)

    def seq_states(self, cache: Any) -> State:
        """States at every step: one read-only ``(T + 1, B, H)`` view per component.

        Index 0 is the initial state, index t the state after step t.
        """
        if not isinstance(cache, _fp.SeqCache):
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
        self._check_seq(xs, state, mask)
        p = self.params
        hs = _fp.elman_forward(xs, state[0], p["W_ih"], p["W_hh"], p["b"], self.activation == "relu", mask,
                               self._pool(new_call=True))
        T = xs.shape[0]
        return self._outputs(hs, mask), (hs[T].copy(),), _fp.SeqCache(xs, hs, None, None, None, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _fp.SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh = _fp.elman_backward(dys, dstate_T[0], cache, p["W_ih"], p["W_hh"],
                                     self.activation == "relu", self.grads, record, self._pool())
        return dxs, (dh,)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``Elman(**config)`` rebuilds it."""
        config = super().get_config()
        config["activation"] = self.activation
        return config


# ---------------------------------------------------------------------------
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
        self._check_seq(xs, state, mask)
        H, p = self.hidden_size, self.params
        # Private copies with the sigmoid (i, f, o) columns halved, so tanh(z)
        # gives tanh(z/2) there: sigmoid(z) = (1 + tanh(z/2)) / 2.
        W_ih, W_hh, b = (_halved(p[k], _fp.LSTM_SIGMOID_BLOCKS, H) for k in ("W_ih", "W_hh", "b"))
        hs, cs, G = _fp.lstm_forward(xs, state[0], state[1], W_ih, W_hh, b, mask, self._pool(new_call=True))
        T = xs.shape[0]
        cache = _fp.SeqCache(xs, hs, cs, G, None, mask)
        return self._outputs(hs, mask), LSTMState(hs[T].copy(), cs[T].copy()), cache

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, LSTMState]:
        """Walk T steps back: ``dys (T, B, H), (dh_T, dc_T) -> (dxs (T, B, D), LSTMState(dh0, dc0))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _fp.SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh, dc = _fp.lstm_backward(dys, dstate_T[0], dstate_T[1], cache, p["W_ih"], p["W_hh"],
                                        self.grads, record, self._pool())
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
        self._check_seq(xs, state, mask)
        H, p = self.hidden_size, self.params
        # Private copies with the r, z columns halved: sigmoid(a) = (1 + tanh(a/2)) / 2.
        W_ih, W_hh, b = (_halved(p[k], (0, 1), H) for k in ("W_ih", "W_hh", "b"))
        hs, G, HN = _fp.gru_forward(xs, state[0], W_ih, W_hh, b, p["b_hn"], mask, self._pool(new_call=True))
        T = xs.shape[0]
        return self._outputs(hs, mask), (hs[T].copy(),), _fp.SeqCache(xs, hs, None, G, HN, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        if not isinstance(cache, _fp.SeqCache):
            return super().backward_seq(dys, dstate_T, cache, record)
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh = _fp.gru_backward(dys, dstate_T[0], cache, p["W_ih"], p["W_hh"], self.grads, record,
                                   self._pool())
        return dxs, (dh,)
