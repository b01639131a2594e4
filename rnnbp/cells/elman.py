"""The Elman (vanilla) RNN cell.

::

    a_t = x_t W_ih + h_{t-1} W_hh + b          (B, H)
    h_t = act(a_t)                             (also the output y_t)

with ``act`` tanh or relu. The file reads top to bottom: the class with its
one-step ``forward``/``backward`` (every backward line names the forward
equation it differentiates), its sequence methods, then the fast sequence
kernels they call (layout: ``rnnbp.cells._base``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import activations, buffers
from ..protocol import State
from ._base import (Masks, _Cell, blocks, masked_dys, record_norms, rows, time_block,
                    weight_grads)

__all__ = ["Elman", "ElmanCache"]


class ElmanCache(NamedTuple):
    """What ``Elman.forward_seq`` keeps for ``backward_seq`` (never written afterwards).

    Attributes
    ----------
    xs : ndarray, shape (T, B, D)
        The inputs.
    hs : ndarray, shape (T + 1, B, H)
        The states; ``hs[0]`` is the initial state, ``hs[t]`` the state after step t.
    mask : ndarray of bool, shape (T, B), or None
    """

    xs: np.ndarray
    hs: np.ndarray
    mask: np.ndarray | None


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

    cache_type = ElmanCache

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

    # -- one step -------------------------------------------------------------
    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """One step: ``x (B, D), (h (B, H),) -> (y (B, H), (h' (B, H),), cache)``; ``y = h'``."""
        self._check_step(x, state)
        (h,) = state
        p = self.params
        a = x @ p["W_ih"]
        a += h @ p["W_hh"]
        a += p["b"]
        h_next = activations.apply(self.activation, a, out=a)
        return h_next.copy(), (h_next,), (x, h, h_next)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """One step back: ``dy (B, H), (dh' (B, H),) -> (dx (B, D), (dh (B, H),))``."""
        self._check_step_grad(dy, dstate_next, cache)
        x, h, h_next = cache
        p, g = self.params, self.grads
        dh_next = dstate_next[0] + dy                    # y = h'
        da = dh_next * activations.derivative(self.activation, h_next)  # h' = act(a)
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
        hs = elman_forward(xs, state[0], p["W_ih"], p["W_hh"], p["b"], self.activation, mask)
        T = xs.shape[0]
        return self._outputs(hs, mask), (hs[T].copy(),), ElmanCache(xs, hs, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh = elman_backward(dys, dstate_T[0], cache, p["W_ih"], p["W_hh"], self.activation,
                                 self.grads, record)
        return dxs, (dh,)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``Elman(**config)`` rebuilds it."""
        config = super().get_config()
        config["activation"] = self.activation
        return config



# -- the fast sequence kernels ------------------------------------------------

def elman_forward(xs, h0, W_ih, W_hh, b, activation, mask):
    """``hs (T+1, B, H)`` of ``h_t = act(x_t W_ih + h_{t-1} W_hh + b)``; ``hs[0] = h0``."""
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    hs = buffers.cache((T + 1, B, H), W_hh.dtype)
    hs[0] = h0
    masks = Masks(mask, T)
    h_W = buffers.scratch((B, H), W_hh.dtype)               # h_{t-1} W_hh
    hs_t = list(hs)                                      # per-step views made once (see _base)
    for t0, t1 in blocks(T, time_block(B)):
        a_blk = hs[t0 + 1:t1 + 1]                        # a_t is computed where h_t will be
        np.matmul(rows(xs[t0:t1]), W_ih, out=rows(a_blk))
        a_blk += b                                       # a_t = x_t W_ih + b, whole block
        for t in range(t0, t1):
            h = hs_t[t + 1]
            np.matmul(hs_t[t], W_hh, out=h_W)
            h += h_W                                     # a_t += h_{t-1} W_hh
            activations.apply(activation, h, out=h)      # h_t = act(a_t)
            if masks.steps[t]:
                np.copyto(h, hs_t[t], where=masks.skip[t])  # masked: h_t = h_{t-1}
    return hs


def elman_backward(dys, dh_T, cache, W_ih, W_hh, activation, grads, record):
    """Full BPTT through an ``ElmanCache``; adds into ``grads``; returns ``dxs, dh_0``."""
    xs, hs = cache.xs, cache.hs
    buffers.adopt(hs)                                    # walked back: the next step wants it again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    block = time_block(B)
    masks = Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    dxs = np.empty((T, B, D), dtype=dt)
    dh_from_next = dh_T.copy()                           # dL/dh_t through step t + 1 (a_{t+1})
    # Block buffers, (block, B, H) each: the total dL/dh_t, dL/da_t, act'(a_t), masked dys.
    dh_total, da, act_grad, dys_buf = (buffers.scratch((min(block, T), B, H), dt) for _ in range(4))
    tmp_ih, tmp_hh = buffers.scratch(W_ih.shape, dt), buffers.scratch(W_hh.shape, dt)
    dh_total_t, da_t = list(dh_total), list(da)          # per-step views made once (see _base)
    for t0, t1 in reversed(blocks(T, block)):
        n_steps = t1 - t0
        skip_blk = masks.block(t0, t1)
        dys_blk = masked_dys(dys, t0, t1, skip_blk, dys_buf)  # masked steps ignore dy
        act_grad_blk, h_blk = act_grad[:n_steps], hs[t0 + 1:t1 + 1]
        activations.derivative(activation, h_blk, out=act_grad_blk)  # act'(a_t) from h_t = act(a_t)
        if skip_blk is not None:
            np.copyto(act_grad_blk, 0, where=skip_blk)   # masked: a_t unused
        dys_t, act_grad_t = list(dys_blk), list(act_grad_blk)
        for j in range(n_steps - 1, -1, -1):
            dh_t = dh_total_t[j]
            np.add(dh_from_next, dys_t[j], out=dh_t)     # y_t = h_t
            np.multiply(dh_t, act_grad_t[j], out=da_t[j])  # h_t = act(a_t)
            np.matmul(da_t[j], W_hh_T, out=dh_from_next)  # a_t = x_t W_ih + h_{t-1} W_hh + b
            if masks.steps[t0 + j]:
                np.copyto(dh_from_next, dh_t, where=masks.skip[t0 + j])  # masked: h_t = h_{t-1}
        da_rows = rows(da[:n_steps])
        weight_grads(grads, rows(xs[t0:t1]), rows(hs[t0:t1]), da_rows, tmp_ih, tmp_hh)
        np.matmul(da_rows, W_ih.T, out=rows(dxs[t0:t1]))  # a_t = x_t W_ih + ...
        record_norms(record, t0, t1, dh_total[:n_steps])
    return dxs, dh_from_next
