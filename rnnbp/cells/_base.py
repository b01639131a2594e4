"""What the three cells share: the constructor, the argument checks, the
sequence plumbing and the helpers of the fast sequence kernels.

The kernels themselves live in each cell's file, one screen below the
equations they speed up. They share this layout:

- **Time blocks.** Time is cut into blocks of ``block = time_block(B)`` steps
  whose boundaries sit at multiples of ``block`` from ``t = 0``. Per block:
  one GEMM for the input projection ``xs_blk (block*B, D) @ W_ih`` (forward)
  and, in the backward walk, one GEMM each for ``dW_ih += xs_blk.T @ dz_blk``,
  ``dW_hh += hs_blk.T @ dz_blk`` and ``dxs_blk = dz_blk @ W_ih.T``. The
  pre-activation gradient therefore needs only a ``(block, B, .)`` buffer,
  and a sequence cut at a multiple of ``block`` performs *exactly* the same
  floating-point operations in the same order, which is what makes
  memory-saving BPTT (``rnnbp.unroll(..., recompute=k)``) bit-identical to
  full BPTT.
- **Caches** are preallocated ``(T, B, .)`` arrays filled in place: the
  states ``hs`` (and ``cs``) and the gate activations (and the GRU's
  ``hn``); nothing else. They
  and the backward walk's ``(block, B, .)`` scratch come from
  ``rnnbp.buffers``: fresh ``np.empty`` arrays, owned by the cache or the
  call, so nothing outlives the graph -- unless the caller passed an
  explicit ``rnnbp.BufferPool`` (``unroll(..., pool=...)``), which hands
  back buffers nobody references any more and keeps at most ``max_bytes``
  until ``pool.clear()``. The layer itself never holds them.
- **Forward step**: one recurrent GEMM into an ``out=`` buffer and in-place
  elementwise ops on contiguous gate blocks. The weights keep the public
  gate order; for the LSTM and GRU only their sigmoid columns are halved in
  a private copy (exact in binary), because ``sigmoid(a) = (1 + tanh(a/2))
  / 2``: one ``tanh`` then covers every gate of an LSTM.
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

from typing import Any

import numpy as np

from .. import init as _init
from .._checks import array as _check_array, generator, mask_array as _check_mask, positive_int
from ..protocol import Layer, State

__all__ = ["time_block", "Masks", "blocks", "rows", "masked_dys", "record_norms", "weight_grads",
           "halved", "read_only"]

#: Rows (block steps x batch) a block's GEMMs aim for, and the bounds on the block length.
_BLOCK_ROWS, _MIN_BLOCK, _MAX_BLOCK = 1024, 4, 128


def time_block(batch_size: int) -> int:
    """Steps per time block for a batch of ``batch_size``: about 1024 GEMM rows, 4 to 128 steps.

    Long enough that the per-block GEMMs run near full speed on two BLAS
    threads (256 rows cost 10-20% at two threads), short enough that the
    block buffers stay small and recompute segments stay fine-grained.

    Examples
    --------
    >>> time_block(1), time_block(32), time_block(256)
    (128, 32, 4)
    """
    return min(_MAX_BLOCK, max(_MIN_BLOCK, -(-_BLOCK_ROWS // batch_size)))


class _Cell(Layer):
    """Shared constructor, argument checks and sequence plumbing of the cells.

    (Underscored so that ``Layer``'s registry of saveable layer types skips it.)
    """

    output_is_hidden = True
    _gates = 1
    #: The cache type of this cell's ``forward_seq`` (set by each cell).
    cache_type: type = tuple

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

    def _check_seq_grad(self, dys: Any, dstate_T: Any, cache: Any, record: Any) -> tuple[int, int]:
        if not isinstance(cache, self.cache_type):
            raise TypeError(f"cache: expected the {self.cache_type.__name__} that "
                            f"{type(self).__name__}.forward_seq returned, got {type(cache).__name__}")
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

    def time_block(self, batch_size: int) -> int:
        """Steps per time block of the fast path (see ``Layer.time_block``)."""
        return time_block(batch_size)

    def seq_states(self, cache: Any) -> State:
        """States at every step: one read-only ``(T + 1, B, H)`` view per component.

        Index 0 is the initial state, index t the state after step t. Takes
        this cell's ``forward_seq`` cache or the base-class step loop's.
        """
        if not isinstance(cache, self.cache_type):
            return super().seq_states(cache)
        return (read_only(cache.hs),)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``type(cell)(**config)`` rebuilds it."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "dtype": self.dtype.name, "init_ih": self.init_ih, "init_hh": self.init_hh}


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (what ``seq_states`` hands out: the cache stays intact)."""
    view = a.view()
    view.flags.writeable = False
    return view


def halved(W: np.ndarray, gate_blocks: tuple[int, ...], H: int) -> np.ndarray:
    """Copy of ``W (..., G*H)`` with the columns of the given gate blocks halved (exact in binary)."""
    W = W.copy()
    for k in gate_blocks:
        W[..., k * H:(k + 1) * H] *= 0.5
    return W


# -- helpers of the fast kernels ------------------------------------------------

class Masks:
    """A mask's complement per step and per block.

    ``steps[t]`` says whether any sequence is masked at step t (all False
    without a mask), so the time loops test one list item; ``skip`` is
    ``~mask`` as ``(T, B, 1)`` (None without a mask).
    """

    __slots__ = ("skip", "steps")

    def __init__(self, mask: np.ndarray | None, T: int) -> None:
        if mask is None:
            self.skip, self.steps = None, [False] * T
        else:
            self.skip = ~mask[:, :, None]                        # (T, B, 1)
            self.steps = (~mask).any(axis=1).tolist()            # any sequence skipped at t

    def block(self, t0: int, t1: int) -> np.ndarray | None:
        """``skip[t0:t1]``, or None when no sequence is masked in the block."""
        return self.skip[t0:t1] if any(self.steps[t0:t1]) else None


def blocks(T: int, block: int) -> list[tuple[int, int]]:
    """``(t0, t1)`` of each time block: ``[0, block), [block, 2 block), ...`` up to T."""
    return [(t0, min(t0 + block, T)) for t0 in range(0, T, block)]


def rows(a: np.ndarray) -> np.ndarray:
    """``(n, B, K) -> (n*B, K)`` (a view when ``a`` is contiguous, else a copy)."""
    return a.reshape(-1, a.shape[-1])


def masked_dys(dys: np.ndarray, t0: int, t1: int, skip_blk: np.ndarray | None,
               buf: np.ndarray) -> np.ndarray:
    """The block's output gradients, zero where the step is masked (copied into ``buf`` then)."""
    if skip_blk is None:
        return dys[t0:t1]
    out = buf[:t1 - t0]
    np.copyto(out, dys[t0:t1])
    np.copyto(out, 0, where=skip_blk)
    return out


def record_norms(record: np.ndarray | None, t0: int, t1: int, dh_total: np.ndarray) -> None:
    """``record[t] = ||dL/dh_t||`` per sequence for a block, from the block's total ``dL/dh``."""
    if record is not None:
        np.sqrt(np.einsum("tbh,tbh->tb", dh_total, dh_total), out=record[t0:t1])


def weight_grads(grads: dict[str, np.ndarray], xs_blk: np.ndarray, hs_blk: np.ndarray,
                 dz: np.ndarray, tmp_ih: np.ndarray, tmp_hh: np.ndarray) -> None:
    """``dW_ih += xs.T dz``, ``dW_hh += hs.T dz``, ``db += sum dz`` for one block (public order)."""
    np.matmul(xs_blk.T, dz, out=tmp_ih)
    grads["W_ih"] += tmp_ih                              # z = x W_ih + ...
    np.matmul(hs_blk.T, dz, out=tmp_hh)
    grads["W_hh"] += tmp_hh                              # z = ... + h W_hh + ...
    grads["b"] += dz.sum(axis=0)                         # z = ... + b
