"""The cells' fast sequence kernels (``forward_seq``/``backward_seq``).

Layout, shared by the three cells:

- **Time blocks.** Time is cut into blocks of ``c = time_block(B)`` steps
  whose boundaries sit at multiples of ``c`` from ``t = 0``. Per block: one
  GEMM for the input projection ``xs_blk (c*B, D) @ W_ih`` (forward) and, in
  the backward walk, one GEMM each for ``dW_ih += xs_blk.T @ dZ_blk``,
  ``dW_hh += hs_blk.T @ dZ_blk`` and ``dxs_blk = dZ_blk @ W_ih.T``. The
  gradient ``dZ`` therefore needs only a ``(c, B, .)`` buffer, and a sequence
  cut at a multiple of ``c`` performs *exactly* the same floating-point
  operations in the same order, which is what makes memory-saving BPTT
  (``rnnbp.unroll(..., recompute=k)``) bit-identical to full BPTT.
- **Caches** are preallocated ``(T, B, .)`` arrays filled in place: the
  states ``hs`` (and ``cs``) and the gate activations; nothing else. They
  and the backward walk's block scratch come from the layer's workspace
  pool (``ws``, see ``rnnbp._workspace``), which hands a buffer out again
  only when nothing but the pool references it; arrays a kernel returns
  (``dxs``, the initial-state gradients) are always fresh.
- **Forward step**: one recurrent GEMM into an ``out=`` buffer and in-place
  elementwise ops on contiguous gate blocks (one ``tanh`` covers all four
  LSTM gates: the sigmoid columns of private weight copies are halved, exact
  in binary, and ``sigmoid(a) = (1 + tanh(a/2)) / 2``).
- **Backward step**: everything that does not depend on the incoming
  gradient (activation derivatives times the factors they meet in the chain
  rule) is computed for a whole block in a dozen vectorised calls before the
  block's time loop. What is left per step is one broadcasting multiply
  per group of gates and the recurrent GEMM: 2 elementwise calls per step
  for Elman, 4 for the GRU, 6 for the LSTM.
- **Per-step views are made once** per call or block (``list(array)``
  yields one view per step at C speed) instead of slicing inside the time
  loop: at B = 1 the slicing cost about as much as two ufunc calls.
- **Masks** stay on the fast path: masked steps get zero factors (and a
  forget gate / update gate of exactly 1 on the gradient side), and the one
  ``copyto`` that carries a state runs only at steps where some sequence is
  masked.
"""

from __future__ import annotations

import numpy as np

__all__ = ["time_block", "SeqCache"]

#: Rows (block steps x batch) a block's GEMMs aim for, and the bounds on the block length.
_BLOCK_ROWS, _MIN_BLOCK, _MAX_BLOCK = 1024, 4, 128


def time_block(batch_size: int) -> int:
    """Steps per time block for a batch of ``batch_size``: about 1024 GEMM rows, 4 to 128 steps.

    Long enough that the per-block GEMMs run near full speed on two BLAS
    threads (256 rows cost 10-20% at two threads), short enough that the
    block buffers stay small and recompute segments stay fine-grained.
    """
    return min(_MAX_BLOCK, max(_MIN_BLOCK, -(-_BLOCK_ROWS // batch_size)))


class SeqCache:
    """Cache of a cell's fast ``forward_seq``: preallocated ``(T, B, .)`` arrays.

    ``hs``/``cs`` are ``(T + 1, B, H)`` with index 0 the initial state;
    ``gates`` holds the gate activations (the cell's internal gate order) and
    ``aux`` one more per-step array (``h_{t-1} W_hn + b_hn`` for the GRU).
    Nothing here is written after ``forward_seq`` returns, so a cache can be
    walked back any number of times.
    """

    __slots__ = ("xs", "hs", "cs", "gates", "aux", "mask")

    def __init__(self, xs, hs, cs, gates, aux, mask) -> None:
        self.xs, self.hs, self.cs, self.gates, self.aux, self.mask = xs, hs, cs, gates, aux, mask


class _Masks:
    """A mask's complement per step and per block.

    ``steps[t]`` says whether any sequence is masked at step t (all False
    without a mask), so the time loops test one list item; ``skip`` is
    ``~mask`` as ``(T, B, 1)`` (None without a mask).
    """

    def __init__(self, mask: np.ndarray | None, T: int) -> None:
        if mask is None:
            self.skip, self.steps = None, [False] * T
        else:
            self.skip = ~mask[:, :, None]                        # (T, B, 1)
            self.steps = (~mask).any(axis=1).tolist()            # any sequence skipped at t

    def block(self, t0: int, t1: int) -> np.ndarray | None:
        return self.skip[t0:t1] if any(self.steps[t0:t1]) else None


def _allocator(ws, cache=False):
    """``empty(shape, dtype)`` for a kernel's caches or scratch: the layer's workspace pool, or fresh."""
    if ws is None:
        return np.empty
    return ws.cache if cache else ws.empty


def _blocks(T: int, c: int) -> list[tuple[int, int]]:
    return [(t0, min(t0 + c, T)) for t0 in range(0, T, c)]


def _rows(a: np.ndarray) -> np.ndarray:
    """``(n, B, K) -> (n*B, K)`` (a view when ``a`` is contiguous, else a copy)."""
    return a.reshape(-1, a.shape[-1])


def _masked_dys(dys, t0, t1, skip_blk, buf):
    """The block's output gradients, zero where the step is masked."""
    if skip_blk is None:
        return dys[t0:t1]
    out = buf[:t1 - t0]
    np.copyto(out, dys[t0:t1])
    np.copyto(out, 0, where=skip_blk)
    return out


def _record(record, t0, t1, DH):
    """``record[t] = ||dL/dh_t||`` per sequence for a block, from the block's total ``dh``."""
    if record is not None:
        np.sqrt(np.einsum("tbh,tbh->tb", DH, DH), out=record[t0:t1])


def _weight_grads(grads, xs_blk, hs_blk, dZ, tmp_ih, tmp_hh):
    """``dW_ih += xs.T dZ``, ``dW_hh += hs.T dZ``, ``db += sum dZ`` for one block (public order)."""
    np.matmul(xs_blk.T, dZ, out=tmp_ih)
    grads["W_ih"] += tmp_ih                              # z = x W_ih + ...
    np.matmul(hs_blk.T, dZ, out=tmp_hh)
    grads["W_hh"] += tmp_hh                              # z = ... + h W_hh + ...
    grads["b"] += dZ.sum(axis=0)                         # z = ... + b


# -- Elman -------------------------------------------------------------------

def elman_forward(xs, h0, W_ih, W_hh, b, relu, mask, ws=None):
    """``hs (T+1, B, H)`` of ``h_t = act(x_t W_ih + h_{t-1} W_hh + b)``."""
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    empty, cache_empty = _allocator(ws), _allocator(ws, cache=True)
    hs = cache_empty((T + 1, B, H), W_hh.dtype)
    hs[0] = h0
    m = _Masks(mask, T)
    tmp = empty((B, H), W_hh.dtype)
    hs_t = list(hs)                                      # per-step views made once (see lstm_forward)
    for t0, t1 in _blocks(T, time_block(B)):
        A = hs[t0 + 1:t1 + 1]
        np.matmul(_rows(xs[t0:t1]), W_ih, out=_rows(A))
        A += b                                           # a_t = x_t W_ih + b, whole block
        for t in range(t0, t1):
            h = hs_t[t + 1]
            np.matmul(hs_t[t], W_hh, out=tmp)
            h += tmp                                     # a_t += h_{t-1} W_hh
            if relu:
                np.maximum(h, 0, out=h)                  # h_t = relu(a_t)
            else:
                np.tanh(h, out=h)                        # h_t = tanh(a_t)
            if m.steps[t]:
                np.copyto(h, hs_t[t], where=m.skip[t])   # masked: h_t = h_{t-1}
    return hs


def elman_backward(dys, dh_T, cache, W_ih, W_hh, relu, grads, record, ws=None):
    """Full BPTT through an Elman fast-path cache; adds into ``grads``; returns ``dxs, dh_0``."""
    xs, hs = cache.xs, cache.hs
    if ws is not None:
        ws.adopt(hs)                                     # walked back: the next step wants it again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    c = time_block(B)
    m = _Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    empty = _allocator(ws)
    dxs = np.empty((T, B, D), dtype=dt)                  # returned: always fresh
    dh = dh_T.copy()                                     # dL/dh_t arriving from step t + 1
    DH, DA, DACT, DY = (empty((min(c, T), B, H), dt) for _ in range(4))
    tmp_ih, tmp_hh = empty(W_ih.shape, dt), empty(W_hh.shape, dt)
    DHt, DAt = list(DH), list(DA)                        # per-step views made once (see lstm_forward)
    for t0, t1 in reversed(_blocks(T, c)):
        n = t1 - t0
        skip_blk = m.block(t0, t1)
        dys_blk = _masked_dys(dys, t0, t1, skip_blk, DY)  # masked steps ignore dy
        dact, h_blk = DACT[:n], hs[t0 + 1:t1 + 1]
        if relu:
            np.greater(h_blk, 0, out=dact)               # relu'(a) = [h > 0]
        else:
            np.multiply(h_blk, h_blk, out=dact)
            np.subtract(1, dact, out=dact)               # tanh'(a) = 1 - h^2
        if skip_blk is not None:
            np.copyto(dact, 0, where=skip_blk)           # masked: a_t unused
        DYt, DACTt = list(dys_blk), list(dact)
        for j in range(n - 1, -1, -1):
            dh_t, da = DHt[j], DAt[j]
            np.add(dh, DYt[j], out=dh_t)                 # y_t = h_t
            np.multiply(dh_t, DACTt[j], out=da)          # h_t = act(a_t)
            np.matmul(da, W_hh_T, out=dh)                # a_t = x_t W_ih + h_{t-1} W_hh + b
            if m.steps[t0 + j]:
                np.copyto(dh, dh_t, where=m.skip[t0 + j])  # masked: h_t = h_{t-1}
        dA = _rows(DA[:n])
        _weight_grads(grads, _rows(xs[t0:t1]), _rows(hs[t0:t1]), dA, tmp_ih, tmp_hh)
        np.matmul(dA, W_ih.T, out=_rows(dxs[t0:t1]))     # a_t = x_t W_ih + ...
        _record(record, t0, t1, DH[:n])
    return dxs, dh


# -- LSTM --------------------------------------------------------------------
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


def lstm_forward(xs, h0, c0, W_ih, W_hh, b, mask, ws=None):
    """``hs, cs (T+1, B, H)`` and gate activations ``G (T, B, 4H)`` in order i, f, g, o.

    ``W_ih``, ``W_hh``, ``b`` are private copies with the sigmoid (i, f, o)
    columns halved (``LSTM_SIGMOID_BLOCKS``).
    """
    T, B, _ = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    empty, cache_empty = _allocator(ws), _allocator(ws, cache=True)
    hs = cache_empty((T + 1, B, H), dt)
    cs = cache_empty((T + 1, B, H), dt)
    hs[0], cs[0] = h0, c0
    G = cache_empty((T, B, 4 * H), dt)
    m = _Masks(mask, T)
    tmp4 = empty((B, 4 * H), dt)
    tmp, tc = empty((B, H), dt), empty((B, H), dt)
    # Per-column factors and shifts as whole (B, 4H) arrays: a same-shape operand
    # takes numpy's contiguous loop, about 2x faster than broadcasting a (4H,) row.
    half = np.tile(np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dtype=dt), H), (B, 1))
    shift = np.tile(np.repeat(np.array([0.5, 0.5, 0.0, 0.5], dtype=dt), H), (B, 1))
    # Per-step views made once (``list`` of an array: one view per step at C
    # speed): at B = 1 slicing inside the loop cost as much as two ufunc calls.
    hs_t, cs_t = list(hs), list(cs)
    for t0, t1 in _blocks(T, time_block(B)):
        Z = G[t0:t1]
        np.matmul(_rows(xs[t0:t1]), W_ih, out=_rows(Z))
        Z += b                                           # z_t = x_t W_ih + b, whole block
        Zt = list(Z)
        It, Ft, Gt, Ot = (list(Z[..., k * H:(k + 1) * H]) for k in range(4))
        for j in range(t1 - t0):
            t = t0 + j
            z = Zt[j]
            np.matmul(hs_t[t], W_hh, out=tmp4)
            z += tmp4                                    # z_t += h_{t-1} W_hh
            np.tanh(z, out=z)
            z *= half                                    # g: times 1 plus 0, exact
            z += shift                                   # i, f, o = sigmoid(.) = (1 + tanh(./2)) / 2; g = tanh(.)
            c = cs_t[t + 1]
            np.multiply(Ft[j], cs_t[t], out=c)
            np.multiply(It[j], Gt[j], out=tmp)
            c += tmp                                     # c_t = f c_{t-1} + i g
            np.tanh(c, out=tc)
            np.multiply(Ot[j], tc, out=hs_t[t + 1])      # h_t = o tanh(c_t)
            if m.steps[t]:
                skip = m.skip[t]
                np.copyto(hs_t[t + 1], hs_t[t], where=skip)  # masked: h_t = h_{t-1}
                np.copyto(c, cs_t[t], where=skip)        # masked: c_t = c_{t-1}
    return hs, cs, G


def lstm_backward(dys, dh_T, dc_T, cache, W_ih, W_hh, grads, record, ws=None):
    """Full BPTT through an LSTM fast-path cache (public-order weights); returns ``dxs, dh_0, dc_0``."""
    xs, hs, cs, G = cache.xs, cache.hs, cache.cs, cache.gates
    if ws is not None:
        ws.adopt(hs, cs, G)                              # walked back: the next step wants them again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    c = time_block(B)
    m = _Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    empty = _allocator(ws)
    dxs = np.empty((T, B, D), dtype=dt)                  # returned: always fresh
    dh, dc = dh_T.copy(), dc_T.copy()                    # dL/dh_t, dL/dc_t from step t + 1
    cb = min(c, T)
    P, dZ = empty((cb, B, 4 * H), dt), empty((cb, B, 4 * H), dt)
    DH, Q, TC, DY, F = (empty((cb, B, H), dt) for _ in range(5))
    dct = empty((B, H), dt)
    tmp_ih, tmp_hh = empty(W_ih.shape, dt), empty(W_hh.shape, dt)
    # Per-step views made once, as in the forward pass.
    dct3 = dct[:, None, :]
    DHt, dZt, dZot = list(DH), list(dZ), list(dZ[..., 3 * H:])
    dZ3t = list(dZ[..., :3 * H].reshape(cb, B, 3, H))
    for t0, t1 in reversed(_blocks(T, c)):
        n = t1 - t0
        skip_blk = m.block(t0, t1)
        dys_blk = _masked_dys(dys, t0, t1, skip_blk, DY)  # masked steps ignore dy
        Zb = G[t0:t1]
        i, f, g, o = Zb[..., :H], Zb[..., H:2 * H], Zb[..., 2 * H:3 * H], Zb[..., 3 * H:]
        Pb, Qb, tc = P[:n], Q[:n], TC[:n]
        Pi, Pf, Pg, Po = Pb[..., :H], Pb[..., H:2 * H], Pb[..., 2 * H:3 * H], Pb[..., 3 * H:]
        # Block factors (dz = dh_or_dct * P, dct = dh * Q + dc), contiguous calls first.
        np.multiply(Zb, Zb, out=Pb)
        np.subtract(Zb, Pb, out=Pb)                      # i, f, o = sigmoid: s (1 - s)
        np.multiply(g, g, out=Pg)
        np.subtract(1, Pg, out=Pg)                       # g = tanh: 1 - g^2
        Pi *= g                                          # c_t = f c_{t-1} + i g
        Pf *= cs[t0:t1]                                  # c_t = f c_{t-1} + i g
        Pg *= i                                          # c_t = f c_{t-1} + i g
        np.tanh(cs[t0 + 1:t1 + 1], out=tc)               # h_t = o tanh(c_t)
        Po *= tc                                         # h_t = o tanh(c_t)
        np.multiply(tc, tc, out=Qb)
        np.subtract(1, Qb, out=Qb)
        Qb *= o                                          # h_t = o tanh(c_t): dc_t += dh_t o (1 - tanh^2)
        fb = f
        if skip_blk is not None:                         # masked: no gate gradient, dc passes through
            np.copyto(Pb, 0, where=skip_blk)
            np.copyto(Qb, 0, where=skip_blk)
            fb = F[:n]
            np.copyto(fb, f)
            np.copyto(fb, 1, where=skip_blk)
        P3t, Pot, Qt, Fbt, DYt = (list(Pb[..., :3 * H].reshape(n, B, 3, H)), list(Po), list(Qb), list(fb),
                                  list(dys_blk))
        for j in range(n - 1, -1, -1):
            dh_t = DHt[j]
            np.add(dh, DYt[j], out=dh_t)                 # y_t = h_t
            np.multiply(dh_t, Pot[j], out=dZot[j])       # h_t = o tanh(c_t); o = sigmoid(z_o)
            np.multiply(dh_t, Qt[j], out=dct)            # h_t = o tanh(c_t)
            dct += dc                                    # c_{t+1} = f c_t + ...
            np.multiply(dct3, P3t[j], out=dZ3t[j])       # c_t = f c_{t-1} + i g; gates i, f, g
            np.multiply(dct, Fbt[j], out=dc)             # c_t = f c_{t-1} + ...
            np.matmul(dZt[j], W_hh_T, out=dh)            # z_t = x_t W_ih + h_{t-1} W_hh + b
            if m.steps[t0 + j]:
                np.copyto(dh, dh_t, where=m.skip[t0 + j])  # masked: h_t = h_{t-1}
        dZb = _rows(dZ[:n])
        _weight_grads(grads, _rows(xs[t0:t1]), _rows(hs[t0:t1]), dZb, tmp_ih, tmp_hh)
        np.matmul(dZb, W_ih.T, out=_rows(dxs[t0:t1]))    # z_t = x_t W_ih + ...
        _record(record, t0, t1, DH[:n])
    return dxs, dh, dc


# -- GRU ---------------------------------------------------------------------
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
    empty, cache_empty = _allocator(ws), _allocator(ws, cache=True)
    hs = cache_empty((T + 1, B, H), dt)
    hs[0] = h0
    G = cache_empty((T, B, 3 * H), dt)
    HN = cache_empty((T, B, H), dt)
    m = _Masks(mask, T)
    tmp3 = empty((B, 3 * H), dt)
    tmp = empty((B, H), dt)
    # Per-step views made once (see lstm_forward).
    hs_t, HN_t = list(hs), list(HN)
    tmp3_rz, tmp3_n = tmp3[:, :2 * H], tmp3[:, 2 * H:]
    for t0, t1 in _blocks(T, time_block(B)):
        A = G[t0:t1]
        np.matmul(_rows(xs[t0:t1]), W_ih, out=_rows(A))
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
    xs, hs, G, HN = cache.xs, cache.hs, cache.gates, cache.aux
    if ws is not None:
        ws.adopt(hs, G, HN)                              # walked back: the next step wants them again
    T, B, D = xs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    c = time_block(B)
    m = _Masks(cache.mask, T)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    W_ih_x = np.concatenate([W_ih[:, k * H:(k + 1) * H] for k in GRU_X_ORDER], axis=1)
    empty = _allocator(ws)
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
    for t0, t1 in reversed(_blocks(T, c)):
        k = t1 - t0
        skip_blk = m.block(t0, t1)
        dys_blk = _masked_dys(dys, t0, t1, skip_blk, DY)  # masked steps ignore dy
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
        dAb = _rows(dA[:k])
        dAx, dAh = dAb[:, :3 * H], dAb[:, H:]
        np.matmul(_rows(xs[t0:t1]).T, dAx, out=tmp_ix)   # a = x W_ih + b + ...
        gW_ih[:, :2 * H] += tmp_ix[:, H:]
        gW_ih[:, 2 * H:] += tmp_ix[:, :H]
        np.matmul(_rows(hs[t0:t1]).T, dAh, out=tmp_hh)   # a_{r,z} = ... + h W_h{r,z}; hn = h W_hn + b_hn
        grads["W_hh"] += tmp_hh
        sx = dAx.sum(axis=0)                             # a = x W_ih + b + ...
        gb[:2 * H] += sx[H:]
        gb[2 * H:] += sx[:H]
        grads["b_hn"] += dAb[:, 3 * H:].sum(axis=0)      # hn = h W_hn + b_hn
        np.matmul(dAx, W_ih_x.T, out=_rows(dxs[t0:t1]))  # a = x W_ih + ...
        _record(record, t0, t1, DH[:k])
    return dxs, dh
