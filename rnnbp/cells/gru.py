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

from ..layer import State
from ._base import Masks, _Cell, allocator, blocks, halved, masked_dys, record_norms, rows, time_block
from .lstm import _sigmoid

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
        W_ih, W_hh, b = (halved(p[k], (0, 1), H) for k in ("W_ih", "W_hh", "b"))
        hs, G, HN = gru_forward(xs, state[0], W_ih, W_hh, b, p["b_hn"], mask, self._pool(new_call=True))
        T = xs.shape[0]
        return self._outputs(hs, mask), (hs[T].copy(),), GRUCache(xs, hs, G, HN, mask)

    def backward_seq(self, dys: np.ndarray, dstate_T: State, cache: Any,
                     record: np.ndarray | None = None) -> tuple[np.ndarray, State]:
        """Walk T steps back: ``dys (T, B, H), (dh_T,) -> (dxs (T, B, D), (dh0,))``.

        ``record (T, B)``, optional, is filled with ``||dL/dh_t||`` per sequence.
        """
        self._check_seq_grad(dys, dstate_T, cache, record)
        p = self.params
        dxs, dh = gru_backward(dys, dstate_T[0], cache, p["W_ih"], p["W_hh"], self.grads, record,
                                   self._pool())
        return dxs, (dh,)


# -- the fast sequence kernels ------------------------------------------------
# Backward buffer dA, blocks (n, r, z, hn): the input-side gradient is the
# first three (da_n, da_r, da_z) and the recurrent-side gradient the last
# three (da_r, da_z, dhn) -- PyTorch's order, so dW_hh lands as it is.
GRU_X_ORDER = (2, 0, 1)   # n, r, z


def gru_forward(xs, h0, W_ih, W_hh, b, b_hn, mask, ws=None):
    """``hs (T+1, B, H)``, gate activations ``G (T, B, 3H)`` (r, z, n) and ``HN = h W_hn + b_hn``.

    ``W_ih``, ``W_hh``, ``b`` are private copies with the r, z columns halved.
    """
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    empty, cache_empty = allocator(ws), allocator(ws, cache=True)
    hs = cache_empty((T + 1, B, H), dt)
    hs[0] = h0
    G = cache_empty((T, B, 3 * H), dt)
    HN = cache_empty((T, B, H), dt)
    m = Masks(mask, T)
    tmp3 = empty((B, 3 * H), dt)
    tmp = empty((B, H), dt)
    # Per-step views made once (see lstm_forward).
    hs_t, HN_t = list(hs), list(HN)
    tmp3_rz, tmp3_n = tmp3[:, :2 * H], tmp3[:, 2 * H:]
    for t0, t1 in blocks(T, time_block(B)):
        A = G[t0:t1]
        np.matmul(rows(xs[t0:t1]), W_ih, out=rows(A))
        A += b                                           # a_t = x_t W_ih + b, whole block
        RZt, Rt, Zt, Nt = list(A[..., :2 * H]), list(A[..., :H]), list(A[..., H:2 * H]), list(A[..., 2 * H:])
        for j in range(t1 - t0):
            t = t0 + j
            np.matmul(hs_t[t], W_hh, out=tmp3)
            rz = RZt[j]
            rz += tmp3_rz
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5                                    # r, z = sigmoid(x W_i{r,z} + h W_h{r,z} + b)
            np.add(tmp3_n, b_hn, out=HN_t[t])            # hn = h W_hn + b_hn
            np.multiply(Rt[j], HN_t[t], out=tmp)
            n = Nt[j]
            n += tmp
            np.tanh(n, out=n)                            # n = tanh(x W_in + b_n + r hn)
            h = hs_t[t + 1]
            np.subtract(hs_t[t], n, out=h)
            h *= Zt[j]
            h += n                                       # h_t = (1 - z) n + z h_{t-1}
            if m.steps[t]:
                np.copyto(h, hs_t[t], where=m.skip[t])   # masked: h_t = h_{t-1}
    return hs, G, HN


def gru_backward(dys, dh_T, cache, W_ih, W_hh, grads, record, ws=None):
    """Full BPTT through a GRU fast-path cache (public-order weights); returns ``dxs, dh_0``."""
    xs, hs, G, HN = cache.xs, cache.hs, cache.gates, cache.hn
    if ws is not None:
        ws.adopt(hs, G, HN)                              # walked back: the next step wants them again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    c = time_block(B)
    m = Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    W_ih_x = np.concatenate([W_ih[:, k * H:(k + 1) * H] for k in GRU_X_ORDER], axis=1)
    empty = allocator(ws)
    dxs = np.empty((T, B, D), dtype=dt)                  # returned: always fresh
    dh = dh_T.copy()                                     # dL/dh_t arriving from step t + 1
    cb = min(c, T)
    P, dA = empty((cb, B, 4 * H), dt), empty((cb, B, 4 * H), dt)
    DH, DY, OMZ, Zm = (empty((cb, B, H), dt) for _ in range(4))
    tmp = empty((B, H), dt)
    tmp_ix, tmp_hh = empty((D, 3 * H), dt), empty(W_hh.shape, dt)
    gW_ih, gb = grads["W_ih"], grads["b"]
    # Per-step views made once (see lstm_forward).
    DHt, DH3t, dAht = list(DH), list(DH[:, :, None, :]), list(dA[..., H:])
    dA4t = list(dA.reshape(cb, B, 4, H))
    for t0, t1 in reversed(blocks(T, c)):
        k = t1 - t0
        skip_blk = m.block(t0, t1)
        dys_blk = masked_dys(dys, t0, t1, skip_blk, DY)  # masked steps ignore dy
        Ab = G[t0:t1]
        r, z, n, hn = Ab[..., :H], Ab[..., H:2 * H], Ab[..., 2 * H:], HN[t0:t1]
        Pb, omz = P[:k], OMZ[:k]
        Pn, Pr, Pz, Phn = Pb[..., :H], Pb[..., H:2 * H], Pb[..., 2 * H:3 * H], Pb[..., 3 * H:]
        # Block factors: [da_n, da_r, da_z, dhn] = dh_t * P.
        np.subtract(1, z, out=omz)
        np.multiply(n, n, out=Pn)
        np.subtract(1, Pn, out=Pn)                       # n = tanh(a_n)
        Pn *= omz                                        # h_t = (1 - z) n + z h_{t-1}
        np.subtract(hs[t0:t1], n, out=Pz)                # h_t = n + z (h_{t-1} - n)
        Pz *= z
        Pz *= omz                                        # z = sigmoid(a_z)
        np.subtract(1, r, out=Pr)
        Pr *= r                                          # r = sigmoid(a_r)
        Pr *= hn                                         # a_n = x W_in + b_n + r hn
        Pr *= Pn                                         # (chain through a_n)
        np.multiply(Pn, r, out=Phn)                      # a_n = x W_in + b_n + r hn
        zb = z
        if skip_blk is not None:                         # masked: no gate gradient, dh passes through
            np.copyto(Pb, 0, where=skip_blk)
            zb = Zm[:k]
            np.copyto(zb, z)
            np.copyto(zb, 1, where=skip_blk)
        P4t, Zbt, DYt = list(Pb.reshape(k, B, 4, H)), list(zb), list(dys_blk)
        for j in range(k - 1, -1, -1):
            dh_t = DHt[j]
            np.add(dh, DYt[j], out=dh_t)                 # y_t = h_t
            np.multiply(DH3t[j], P4t[j], out=dA4t[j])    # all gate gradients: dh_t * factors
            np.matmul(dAht[j], W_hh_T, out=dh)           # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
            np.multiply(dh_t, Zbt[j], out=tmp)           # h_t = ... + z h_{t-1}
            dh += tmp                                    # h_t = ... + z h_{t-1}
        dAb = rows(dA[:k])
        dAx, dAh = dAb[:, :3 * H], dAb[:, H:]
        np.matmul(rows(xs[t0:t1]).T, dAx, out=tmp_ix)   # a = x W_ih + b + ...
        gW_ih[:, :2 * H] += tmp_ix[:, H:]
        gW_ih[:, 2 * H:] += tmp_ix[:, :H]
        np.matmul(rows(hs[t0:t1]).T, dAh, out=tmp_hh)   # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
        grads["W_hh"] += tmp_hh
        sx = dAx.sum(axis=0)                             # a = x W_ih + b + ...
        gb[:2 * H] += sx[H:]
        gb[2 * H:] += sx[:H]
        grads["b_hn"] += dAb[:, 3 * H:].sum(axis=0)      # hn = h W_hn + b_hn
        np.matmul(dAx, W_ih_x.T, out=rows(dxs[t0:t1]))  # a = x W_ih + ...
        record_norms(record, t0, t1, DH[:k])
    return dxs, dh
