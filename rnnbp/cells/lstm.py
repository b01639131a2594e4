"""The long short-term memory cell, PyTorch's formulation and gate order (i, f, g, o).

::

    z_t = x_t W_ih + h_{t-1} W_hh + b          (B, 4H), blocks i, f, g, o
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)                        (also the output y_t)

The file reads top to bottom: the class with its one-step
``forward``/``backward`` (every backward line names the forward equation it
differentiates), its sequence methods, then the fast sequence kernels they
call (layout: ``rnnbp.cells._base``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import activations, buffers
from .. import init as _init
from ..protocol import State
from ._base import (Masks, _Cell, blocks, halved, masked_dys, read_only, record_norms, rows,
                    time_block, weight_grads)

__all__ = ["LSTM", "LSTMState", "LSTMCache"]


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



class LSTMCache(NamedTuple):
    """What ``LSTM.forward_seq`` keeps for ``backward_seq`` (never written afterwards).

    Attributes
    ----------
    xs : ndarray, shape (T, B, D)
        The inputs.
    hs, cs : ndarray, shape (T + 1, B, H)
        Hidden states and cell memories; index 0 is the initial state.
    gates : ndarray, shape (T, B, 4H)
        The gate activations ``i, f, g, o`` of every step, in that order.
    mask : ndarray of bool, shape (T, B), or None
    """

    xs: np.ndarray
    hs: np.ndarray
    cs: np.ndarray
    gates: np.ndarray
    mask: np.ndarray | None


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
    cache_type = LSTMCache

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
        i = activations.apply("sigmoid", z[:, :H])
        f = activations.apply("sigmoid", z[:, H:2 * H])
        g = activations.apply("tanh", z[:, 2 * H:3 * H])
        o = activations.apply("sigmoid", z[:, 3 * H:])
        c_next = f * c + i * g
        tc = activations.apply("tanh", c_next)
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
        W_ih, W_hh, b = (halved(p[k], LSTM_SIGMOID_BLOCKS, H) for k in ("W_ih", "W_hh", "b"))
        hs, cs, gates = lstm_forward(xs, state[0], state[1], W_ih, W_hh, b, mask)
        T = xs.shape[0]
        cache = LSTMCache(xs, hs, cs, gates, mask)
        return self._outputs(hs, mask), LSTMState(hs[T].copy(), cs[T].copy()), cache

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, LSTMState]:
        """Walk T steps back: ``dys (T, B, H), (dh_T, dc_T) -> (dxs (T, B, D), LSTMState(dh0, dc0))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh, dc = lstm_backward(dys, dstate_T[0], dstate_T[1], cache, p["W_ih"], p["W_hh"],
                                        self.grads, record)
        return dxs, LSTMState(dh, dc)

    def seq_states(self, cache: Any) -> LSTMState:
        """States at every step: ``LSTMState(hs, cs)``, read-only ``(T + 1, B, H)`` each.

        Takes this cell's ``forward_seq`` cache or the base-class step loop's.
        """
        if not isinstance(cache, LSTMCache):
            return LSTMState(*super().seq_states(cache))
        return LSTMState(read_only(cache.hs), read_only(cache.cs))

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``LSTM(**config)`` rebuilds it."""
        config = super().get_config()
        config["forget_bias"] = self.forget_bias
        return config



# -- the fast sequence kernels ------------------------------------------------
# Cache and gradient gate order are PyTorch's (i, f, g, o), the public order:
# the weight-gradient GEMMs land as they are, and the backward walk's
# activation derivatives s (1 - s) are taken over the whole contiguous 4H
# width in two calls (numpy is 2-6x slower per element on a strided H-wide
# slice of a (., 4H) array than on a contiguous array), then the g block is
# redone as 1 - g^2.
# (A gate-major layout -- four (B, H) @ (H, H) GEMMs per step into (4, B, H),
# every elementwise call contiguous -- was faster single-threaded at H = 128
# but 1.15-1.4x slower with two BLAS threads: four thread hand-offs per step.)
#: Halve these gate blocks (i, f, o) of the private weight copies: sigmoid(z) = (1 + tanh(z/2)) / 2.
LSTM_SIGMOID_BLOCKS = (0, 1, 3)


def lstm_forward(xs, h0, c0, W_ih, W_hh, b, mask):
    """``hs, cs (T+1, B, H)`` and the gate activations ``gates (T, B, 4H)`` in order i, f, g, o.

    ``W_ih``, ``W_hh``, ``b`` are private copies with the sigmoid (i, f, o)
    columns halved (``LSTM_SIGMOID_BLOCKS``).
    """
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    hs = buffers.cache((T + 1, B, H), dt)
    cs = buffers.cache((T + 1, B, H), dt)
    hs[0], cs[0] = h0, c0
    gates = buffers.cache((T, B, 4 * H), dt)
    masks = Masks(mask, T)
    h_W = buffers.scratch((B, 4 * H), dt)                   # h_{t-1} W_hh
    i_g, tanh_c = (buffers.scratch((B, H), dt) for _ in range(2))  # i * g and tanh(c_t) of one step
    # Per-column factors and shifts as whole (B, 4H) arrays: a same-shape operand
    # takes numpy's contiguous loop, about 2x faster than broadcasting a (4H,) row.
    half = np.tile(np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype=dt), H), (B, 1))
    shift = np.tile(np.repeat(np.array([0.5, 0.5, 0.0, 0.5], dtype=dt), H), (B, 1))
    # Per-step views made once (``list`` of an array: one view per step at C
    # speed): at B = 1 slicing inside the loop cost as much as two ufunc calls.
    hs_t, cs_t = list(hs), list(cs)
    for t0, t1 in blocks(T, time_block(B)):
        z_blk = gates[t0:t1]                             # z_t, turned into the gates in place
        np.matmul(rows(xs[t0:t1]), W_ih, out=rows(z_blk))
        z_blk += b                                       # z_t = x_t W_ih + b, whole block
        z_t = list(z_blk)
        i_t, f_t, g_t, o_t = (list(z_blk[..., k * H:(k + 1) * H]) for k in range(4))
        for j in range(t1 - t0):
            t = t0 + j
            z = z_t[j]
            np.matmul(hs_t[t], W_hh, out=h_W)
            z += h_W                                     # z_t += h_{t-1} W_hh
            np.tanh(z, out=z)
            z *= half                                    # g: times 1 plus 0, exact
            z += shift                                   # i, f, o = sigmoid(.) = (1 + tanh(./2)) / 2; g = tanh(.)
            c_t = cs_t[t + 1]
            np.multiply(f_t[j], cs_t[t], out=c_t)
            np.multiply(i_t[j], g_t[j], out=i_g)
            c_t += i_g                                   # c_t = f c_{t-1} + i g
            np.tanh(c_t, out=tanh_c)
            np.multiply(o_t[j], tanh_c, out=hs_t[t + 1])  # h_t = o tanh(c_t)
            if masks.steps[t]:
                skip = masks.skip[t]
                np.copyto(hs_t[t + 1], hs_t[t], where=skip)  # masked: h_t = h_{t-1}
                np.copyto(c_t, cs_t[t], where=skip)      # masked: c_t = c_{t-1}
    return hs, cs, gates


def lstm_backward(dys, dh_T, dc_T, cache, W_ih, W_hh, grads, record):
    """Full BPTT through an ``LSTMCache`` (public-order weights); returns ``dxs, dh_0, dc_0``.

    Per block, before its time loop, the factors that do not depend on the
    incoming gradient:

    - ``dz_factors (n, B, 4H)``: ``dz_t = dc_t * dz_factors`` for the gates
      i, f, g and ``dz_t = dh_t * dz_factors`` for o (each gate's derivative
      times what it multiplies in ``c_t = f c_{t-1} + i g`` or ``h_t = o tanh(c_t)``);
    - ``dc_from_dh (n, B, H)``: ``o (1 - tanh^2(c_t))``, so that
      ``dc_t = dh_t * dc_from_dh + dc_from_next``;
    - ``forget``: ``f``, or ``f`` with 1 at masked steps (there ``dc`` passes
      through unchanged).

    Zeroing both factors at masked steps gives those steps no gate gradient.
    """
    xs, hs, cs, gates = cache.xs, cache.hs, cache.cs, cache.gates
    buffers.adopt(hs, cs, gates)                         # walked back: the next step wants them again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    block = time_block(B)
    masks = Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    dxs = np.empty((T, B, D), dtype=dt)
    dh_from_next = dh_T.copy()                           # dL/dh_t through step t + 1 (z_{t+1})
    dc_from_next = dc_T.copy()                           # dL/dc_t through step t + 1 (c_{t+1})
    buf_steps = min(block, T)                            # steps the block buffers hold
    dz_factors, dz = (buffers.scratch((buf_steps, B, 4 * H), dt) for _ in range(2))
    # dL/dh_t in total, dc_from_dh, tanh(c_t), the masked dys, f with 1 where masked.
    dh_total, dc_from_dh, tanh_c, dys_buf, forget_or_one = (buffers.scratch((buf_steps, B, H), dt)
                                                            for _ in range(5))
    dc_t = buffers.scratch((B, H), dt)                      # dL/dc_t in total, one step
    tmp_ih, tmp_hh = buffers.scratch(W_ih.shape, dt), buffers.scratch(W_hh.shape, dt)
    # Per-step views made once, as in the forward pass.
    dc_t_ifg = dc_t[:, None, :]                          # dc_t broadcast over the i, f, g blocks
    dh_total_t, dz_t, dz_o_t = list(dh_total), list(dz), list(dz[..., 3 * H:])
    dz_ifg_t = list(dz[..., :3 * H].reshape(buf_steps, B, 3, H))
    for t0, t1 in reversed(blocks(T, block)):
        n_steps = t1 - t0
        skip_blk = masks.block(t0, t1)
        dys_blk = masked_dys(dys, t0, t1, skip_blk, dys_buf)  # masked steps ignore dy
        gates_blk = gates[t0:t1]
        i, f, g, o = (gates_blk[..., :H], gates_blk[..., H:2 * H], gates_blk[..., 2 * H:3 * H],
                      gates_blk[..., 3 * H:])
        factors, dc_from_dh_blk, tanh_c_blk = dz_factors[:n_steps], dc_from_dh[:n_steps], tanh_c[:n_steps]
        factor_i, factor_f, factor_g, factor_o = (factors[..., :H], factors[..., H:2 * H],
                                                  factors[..., 2 * H:3 * H], factors[..., 3 * H:])
        # Block factors, contiguous calls first.
        np.multiply(gates_blk, gates_blk, out=factors)
        np.subtract(gates_blk, factors, out=factors)    # i, f, o = sigmoid: s (1 - s)
        np.multiply(g, g, out=factor_g)
        np.subtract(1, factor_g, out=factor_g)           # g = tanh: 1 - g^2
        factor_i *= g                                    # c_t = f c_{t-1} + i g
        factor_f *= cs[t0:t1]                            # c_t = f c_{t-1} + i g
        factor_g *= i                                    # c_t = f c_{t-1} + i g
        np.tanh(cs[t0 + 1:t1 + 1], out=tanh_c_blk)       # h_t = o tanh(c_t)
        factor_o *= tanh_c_blk                           # h_t = o tanh(c_t)
        np.multiply(tanh_c_blk, tanh_c_blk, out=dc_from_dh_blk)
        np.subtract(1, dc_from_dh_blk, out=dc_from_dh_blk)
        dc_from_dh_blk *= o                              # h_t = o tanh(c_t): dc_t += dh_t o (1 - tanh^2)
        forget = f
        if skip_blk is not None:                         # masked: no gate gradient, dc passes through
            np.copyto(factors, 0, where=skip_blk)
            np.copyto(dc_from_dh_blk, 0, where=skip_blk)
            forget = forget_or_one[:n_steps]
            np.copyto(forget, f)
            np.copyto(forget, 1, where=skip_blk)
        factors_ifg_t = list(factors[..., :3 * H].reshape(n_steps, B, 3, H))
        factors_o_t, dc_from_dh_t, forget_t, dys_t = list(factor_o), list(dc_from_dh_blk), list(forget), \
            list(dys_blk)
        for j in range(n_steps - 1, -1, -1):
            dh_t = dh_total_t[j]
            np.add(dh_from_next, dys_t[j], out=dh_t)     # y_t = h_t
            np.multiply(dh_t, factors_o_t[j], out=dz_o_t[j])  # h_t = o tanh(c_t); o = sigmoid(z_o)
            np.multiply(dh_t, dc_from_dh_t[j], out=dc_t)  # h_t = o tanh(c_t)
            dc_t += dc_from_next                         # c_{t+1} = f c_t + ...
            np.multiply(dc_t_ifg, factors_ifg_t[j], out=dz_ifg_t[j])  # c_t = f c_{t-1} + i g; gates i, f, g
            np.multiply(dc_t, forget_t[j], out=dc_from_next)  # c_t = f c_{t-1} + ...
            np.matmul(dz_t[j], W_hh_T, out=dh_from_next)  # z_t = x_t W_ih + h_{t-1} W_hh + b
            if masks.steps[t0 + j]:
                np.copyto(dh_from_next, dh_t, where=masks.skip[t0 + j])  # masked: h_t = h_{t-1}
        dz_rows = rows(dz[:n_steps])
        weight_grads(grads, rows(xs[t0:t1]), rows(hs[t0:t1]), dz_rows, tmp_ih, tmp_hh)
        np.matmul(dz_rows, W_ih.T, out=rows(dxs[t0:t1]))  # z_t = x_t W_ih + ...
        record_norms(record, t0, t1, dh_total[:n_steps])
    return dxs, dh_from_next, dc_from_next
