"""The gated recurrent unit, PyTorch's reset-after formulation and gate order (r, z, n).

::

    r   = sigmoid(x W_ir + h W_hr + b_r)
    z   = sigmoid(x W_iz + h W_hz + b_z)
    hn  = h W_hn + b_hn
    n   = tanh(x W_in + b_n + r * hn)
    h'  = (1 - z) * n + z * h                  (also the output)

The file reads top to bottom: the class with its one-step
``forward``/``backward`` (every backward line names the forward equation it
differentiates), its sequence methods, then the fast sequence kernels they
call (layout: ``rnnbp.cells._base``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import activations, buffers
from ..protocol import State
from ._base import Masks, _Cell, blocks, halved, masked_dys, record_norms, rows, time_block

__all__ = ["GRU", "GRUCache"]


class GRUCache(NamedTuple):
    """What ``GRU.forward_seq`` keeps for ``backward_seq`` (never written afterwards).

    Attributes
    ----------
    xs : ndarray, shape (T, B, D)
        The inputs.
    hs : ndarray, shape (T + 1, B, H)
        The states; index 0 is the initial state.
    gates : ndarray, shape (T, B, 3H)
        The gate activations ``r, z, n`` of every step, in that order.
    hn : ndarray, shape (T, B, H)
        ``h_{t-1} W_hn + b_hn`` of every step (the reset gate multiplies it).
    mask : ndarray of bool, shape (T, B), or None
    """

    xs: np.ndarray
    hs: np.ndarray
    gates: np.ndarray
    hn: np.ndarray
    mask: np.ndarray | None


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
    cache_type = GRUCache

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
        r = activations.apply("sigmoid", ax[:, :H] + ah[:, :H])
        z = activations.apply("sigmoid", ax[:, H:2 * H] + ah[:, H:2 * H])
        hn = ah[:, 2 * H:] + p["b_hn"]
        n = activations.apply("tanh", ax[:, 2 * H:] + r * hn)
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
        W_ih, W_hh, b = (halved(p[k], (0, 1), H) for k in ("W_ih", "W_hh", "b"))
        hs, gates, hn = gru_forward(xs, state[0], W_ih, W_hh, b, p["b_hn"], mask)
        T = xs.shape[0]
        return self._outputs(hs, mask), (hs[T].copy(),), GRUCache(xs, hs, gates, hn, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh = gru_backward(dys, dstate_T[0], cache, p["W_ih"], p["W_hh"], self.grads, record)
        return dxs, (dh,)


# -- the fast sequence kernels ------------------------------------------------
# The backward walk's gradient buffer ``dgates`` has four blocks (n, r, z, hn):
# the input-side gradient is the first three (da_n, da_r, da_z) and the
# recurrent-side gradient the last three (da_r, da_z, dhn) -- PyTorch's
# order, so dW_hh lands as it is.
GRU_X_ORDER = (2, 0, 1)   # n, r, z


def gru_forward(xs, h0, W_ih, W_hh, b, b_hn, mask):
    """``hs (T+1, B, H)``, gate activations ``gates (T, B, 3H)`` (r, z, n) and ``hn = h W_hn + b_hn``.

    ``W_ih``, ``W_hh``, ``b`` are private copies with the r, z columns halved.
    """
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    hs = buffers.cache((T + 1, B, H), dt)
    hs[0] = h0
    gates = buffers.cache((T, B, 3 * H), dt)
    hn = buffers.cache((T, B, H), dt)
    masks = Masks(mask, T)
    h_W = buffers.scratch((B, 3 * H), dt)                   # h_{t-1} W_hh
    r_hn = buffers.scratch((B, H), dt)                      # r * hn of one step
    # Per-step views made once (see lstm_forward).
    hs_t, hn_t = list(hs), list(hn)
    h_W_rz, h_W_n = h_W[:, :2 * H], h_W[:, 2 * H:]
    for t0, t1 in blocks(T, time_block(B)):
        a_blk = gates[t0:t1]                             # pre-activations, turned into the gates in place
        np.matmul(rows(xs[t0:t1]), W_ih, out=rows(a_blk))
        a_blk += b                                       # a_t = x_t W_ih + b, whole block
        rz_t, r_t, z_t, n_t = (list(a_blk[..., :2 * H]), list(a_blk[..., :H]), list(a_blk[..., H:2 * H]),
                               list(a_blk[..., 2 * H:]))
        for j in range(t1 - t0):
            t = t0 + j
            np.matmul(hs_t[t], W_hh, out=h_W)
            rz = rz_t[j]
            rz += h_W_rz
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5                                    # r, z = sigmoid(x W_i{r,z} + h W_h{r,z} + b)
            np.add(h_W_n, b_hn, out=hn_t[t])             # hn = h W_hn + b_hn
            np.multiply(r_t[j], hn_t[t], out=r_hn)
            n = n_t[j]
            n += r_hn
            np.tanh(n, out=n)                            # n = tanh(x W_in + b_n + r hn)
            h = hs_t[t + 1]
            np.subtract(hs_t[t], n, out=h)
            h *= z_t[j]
            h += n                                       # h_t = (1 - z) n + z h_{t-1}
            if masks.steps[t]:
                np.copyto(h, hs_t[t], where=masks.skip[t])  # masked: h_t = h_{t-1}
    return hs, gates, hn


def gru_backward(dys, dh_T, cache, W_ih, W_hh, grads, record):
    """Full BPTT through a ``GRUCache`` (public-order weights); returns ``dxs, dh_0``.

    Per block, before its time loop, ``dgate_factors (n, B, 4H)``, blocks
    (n, r, z, hn): ``[da_n, da_r, da_z, dhn] = dh_t * dgate_factors`` (each
    gate's derivative times the factors it meets on the way to ``h_t``),
    zero at masked steps; and ``update``: ``z``, or ``z`` with 1 at masked
    steps (there ``dh`` passes through unchanged).
    """
    xs, hs, gates, hn = cache.xs, cache.hs, cache.gates, cache.hn
    buffers.adopt(hs, gates, hn)                         # walked back: the next step wants them again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    block = time_block(B)
    masks = Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    W_ih_nrz = np.concatenate([W_ih[:, k * H:(k + 1) * H] for k in GRU_X_ORDER], axis=1)
    dxs = np.empty((T, B, D), dtype=dt)
    dh_from_next = dh_T.copy()                           # dL/dh_t through step t + 1
    buf_steps = min(block, T)                            # steps the block buffers hold
    dgate_factors, dgates = (buffers.scratch((buf_steps, B, 4 * H), dt) for _ in range(2))
    # dL/dh_t in total, the masked dys, 1 - z, z with 1 where masked.
    dh_total, dys_buf, one_minus_z, update_or_one = (buffers.scratch((buf_steps, B, H), dt) for _ in range(4))
    z_dh = buffers.scratch((B, H), dt)                      # z * dh_t of one step
    tmp_ih_nrz, tmp_hh = buffers.scratch((D, 3 * H), dt), buffers.scratch(W_hh.shape, dt)
    grad_W_ih, grad_b = grads["W_ih"], grads["b"]
    # Per-step views made once (see lstm_forward).
    dh_total_t, dgates_h_t = list(dh_total), list(dgates[..., H:])
    dh_total_4t = list(dh_total[:, :, None, :])          # dh_t broadcast over the four blocks
    dgates_t = list(dgates.reshape(buf_steps, B, 4, H))
    for t0, t1 in reversed(blocks(T, block)):
        n_steps = t1 - t0
        skip_blk = masks.block(t0, t1)
        dys_blk = masked_dys(dys, t0, t1, skip_blk, dys_buf)  # masked steps ignore dy
        gates_blk = gates[t0:t1]
        r, z, n, hn_blk = gates_blk[..., :H], gates_blk[..., H:2 * H], gates_blk[..., 2 * H:], hn[t0:t1]
        factors, one_minus_z_blk = dgate_factors[:n_steps], one_minus_z[:n_steps]
        factor_n, factor_r, factor_z, factor_hn = (factors[..., :H], factors[..., H:2 * H],
                                                   factors[..., 2 * H:3 * H], factors[..., 3 * H:])
        np.subtract(1, z, out=one_minus_z_blk)
        np.multiply(n, n, out=factor_n)
        np.subtract(1, factor_n, out=factor_n)           # n = tanh(a_n)
        factor_n *= one_minus_z_blk                      # h_t = (1 - z) n + z h_{t-1}
        np.subtract(hs[t0:t1], n, out=factor_z)          # h_t = n + z (h_{t-1} - n)
        factor_z *= z
        factor_z *= one_minus_z_blk                      # z = sigmoid(a_z)
        np.subtract(1, r, out=factor_r)
        factor_r *= r                                    # r = sigmoid(a_r)
        factor_r *= hn_blk                               # a_n = x W_in + b_n + r hn
        factor_r *= factor_n                             # (chain through a_n)
        np.multiply(factor_n, r, out=factor_hn)          # a_n = x W_in + b_n + r hn
        update = z
        if skip_blk is not None:                         # masked: no gate gradient, dh passes through
            np.copyto(factors, 0, where=skip_blk)
            update = update_or_one[:n_steps]
            np.copyto(update, z)
            np.copyto(update, 1, where=skip_blk)
        factors_t, update_t, dys_t = list(factors.reshape(n_steps, B, 4, H)), list(update), list(dys_blk)
        for j in range(n_steps - 1, -1, -1):
            dh_t = dh_total_t[j]
            np.add(dh_from_next, dys_t[j], out=dh_t)     # y_t = h_t
            np.multiply(dh_total_4t[j], factors_t[j], out=dgates_t[j])  # all gate gradients: dh_t * factors
            np.matmul(dgates_h_t[j], W_hh_T, out=dh_from_next)  # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
            np.multiply(dh_t, update_t[j], out=z_dh)     # h_t = ... + z h_{t-1}
            dh_from_next += z_dh                         # h_t = ... + z h_{t-1}
        dgates_rows = rows(dgates[:n_steps])
        dgates_x, dgates_h = dgates_rows[:, :3 * H], dgates_rows[:, H:]  # (da_n, da_r, da_z), (da_r, da_z, dhn)
        np.matmul(rows(xs[t0:t1]).T, dgates_x, out=tmp_ih_nrz)  # a = x W_ih + b + ...
        grad_W_ih[:, :2 * H] += tmp_ih_nrz[:, H:]
        grad_W_ih[:, 2 * H:] += tmp_ih_nrz[:, :H]
        np.matmul(rows(hs[t0:t1]).T, dgates_h, out=tmp_hh)  # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
        grads["W_hh"] += tmp_hh
        db_nrz = dgates_x.sum(axis=0)                    # a = x W_ih + b + ...
        grad_b[:2 * H] += db_nrz[H:]
        grad_b[2 * H:] += db_nrz[:H]
        grads["b_hn"] += dgates_rows[:, 3 * H:].sum(axis=0)  # hn = h W_hn + b_hn
        np.matmul(dgates_x, W_ih_nrz.T, out=rows(dxs[t0:t1]))  # a = x W_ih + ...
        record_norms(record, t0, t1, dh_total[:n_steps])
    return dxs, dh_from_next
