"""Real-time recurrent learning (Williams & Zipser 1989): BPTT's gradient, forward in time.

For an :class:`~rnnbp.Elman` cell ``h_t = f(a_t)``, ``a_t = x_t W_ih + h_{t-1} W_hh + b``,
RTRL carries the sensitivity of the state to every parameter,
``P_t = dh_t / dtheta`` (per sequence ``(H, n_params)``), forward with the step

    P_t[j, :] = f'(a_t[j]) * ( sum_k W_hh[k, j] P_{t-1}[k, :] + da_t[j]/dtheta )      (1)

where the explicit term is ``x_t`` in the ``W_ih[:, j]`` columns, ``h_{t-1}``
in the ``W_hh[:, j]`` columns and 1 at ``b[j]``. A loss ``l_t`` on ``h_t``
then has the exact gradient ``dl_t/dtheta = sum_j dl_t/dh_t[j] P_t[j, :]``
(through the whole past) at once: no walk back, so gradients come online at
every step, and the sum over steps equals BPTT's gradient of ``sum_t l_t``.

Cost
----
With ``n = H`` hidden units, ``D`` inputs and ``n_params = D H + H^2 + H``,
the product in (1) takes ``B H^2 n_params`` multiply-adds per step —
``O(n^4)`` time per step (BPTT: ``O(n^2)``) — and ``P`` holds
``B H n_params`` numbers, ``O(n^3)`` memory, independent of the sequence
length (BPTT: ``O(T n)``). Two buffers are kept; sizes whose estimate exceeds
``max_bytes`` are refused before anything is allocated.

If the weights change between steps (online learning), ``P`` mixes
sensitivities of old weights: the usual RTRL approximation, exact for a
fixed set of weights.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import activations
from ._checks import array as _check_array, positive_int
from .cells import Elman

__all__ = ["RTRL", "rtrl_bytes"]


def rtrl_bytes(cell: Elman, batch_size: int) -> int:
    """Bytes of RTRL's two sensitivity buffers for ``cell`` and ``batch_size``.

    ``2 * B * H * (D H + H^2 + H) * itemsize``: ``O(n^3)`` in the hidden size.

    Examples
    --------
    >>> import rnnbp
    >>> rtrl_bytes(rnnbp.Elman(1, 64), 1)          # 2 * 64 * (64 + 4096 + 64) * 8
    4325376
    """
    if not isinstance(cell, Elman):
        raise TypeError(f"cell: expected a rnnbp.Elman, got {type(cell).__name__}")
    B, D, H = positive_int(batch_size, "batch_size"), cell.input_size, cell.hidden_size
    return 2 * B * H * (D * H + H * H + H) * cell.dtype.itemsize


def _default_max_bytes() -> int:
    """Half the physical memory available now (4 GiB where unknown)."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


class RTRL:
    """Real-time recurrent learning for an Elman cell: exact gradients online.

    Parameters
    ----------
    cell : Elman
        The cell whose ``grads`` receive the gradients (its ``params`` are read
        at every step, so an optimizer may update them online).
    batch_size : int
        B, sequences run side by side.
    state : tuple (h0,), optional
        Initial state ``(B, H)``; zeros when omitted (see :meth:`reset`).
    max_bytes : int, optional
        Refuse sizes whose sensitivities (:func:`rtrl_bytes`) exceed this;
        default half the physical memory available.

    Attributes
    ----------
    h : ndarray, shape (B, H)
        The current state.
    t : int
        Steps taken since the last reset.
    sensitivities : ndarray, shape (B, H, D*H + H*H + H)
        ``dh_t/dtheta`` with the parameters flattened in the order
        ``W_ih``, ``W_hh``, ``b`` (row-major).

    Raises
    ------
    MemoryError
        When the estimate exceeds ``max_bytes``; the message gives the bytes.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> cell = rnnbp.Elman(2, 4, seed=0)
    >>> xs = np.random.default_rng(0).normal(size=(6, 3, 2))
    >>> R = np.random.default_rng(1).normal(size=(6, 3, 4))      # loss sum_t sum(h_t * R_t)
    >>> rtrl = RTRL(cell, batch_size=3)
    >>> for t in range(6):
    ...     h = rtrl.step(xs[t])
    ...     rtrl.accumulate(R[t])                                  # dl_t/dh_t -> grads, now
    >>> online = cell.grads["W_hh"].copy()
    >>> cell.zero_grad()
    >>> _ = rnnbp.unroll(cell, xs).backward(R)                     # the same gradient by BPTT
    >>> bool(np.abs(online - cell.grads["W_hh"]).max() < 1e-12)
    True
    """

    def __init__(self, cell: Elman, batch_size: int, *, state: Any = None,
                 max_bytes: int | None = None) -> None:
        need = rtrl_bytes(cell, batch_size)
        limit = _default_max_bytes() if max_bytes is None else positive_int(max_bytes, "max_bytes")
        B, D, H = batch_size, cell.input_size, cell.hidden_size
        n = D * H + H * H + H
        if need > limit:
            raise MemoryError(
                f"RTRL: the sensitivities of Elman({D}, {H}) for batch_size={B} need about "
                f"{need:,} bytes ({need / 2**30:.2f} GiB = 2 buffers x B={B} x H={H} x "
                f"n_params={n} x {cell.dtype.itemsize} bytes; O(H^3) in the hidden size), "
                f"more than max_bytes={limit:,}; use a smaller hidden_size or batch_size, "
                f"or BPTT (rnnbp.unroll)")
        self.cell, self.batch_size = cell, B
        self._P = np.zeros((B, H, n), dtype=cell.dtype)
        self._Q = np.empty_like(self._P)
        self.reset(state)

    @property
    def sensitivities(self) -> np.ndarray:
        """``dh_t/dtheta``, shape ``(B, H, D*H + H*H + H)`` (read-only view)."""
        view = self._P.view()
        view.flags.writeable = False
        return view

    def reset(self, state: Any = None) -> None:
        """Start new sequences: state ``state`` (zeros when omitted), sensitivities zero."""
        B, H = self.batch_size, self.cell.hidden_size
        if state is None:
            h = np.zeros((B, H), dtype=self.cell.dtype)
        else:
            if not isinstance(state, tuple) or len(state) != 1:
                raise TypeError(f"state: expected a tuple (h0,) with h0 of shape ({B}, {H}), got {state!r:.60}")
            h = _check_array(state[0], "state[0]", ndim=2, dtype=self.cell.dtype)
            if h.shape != (B, H):
                raise ValueError(f"state[0]: expected shape ({B}, {H}), got {h.shape}")
        self.h = h.copy()
        self._P.fill(0)
        self.t = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        """Advance one step: ``x (B, D) -> h_t (B, H)``, carrying ``P_t = dh_t/dtheta`` forward.

        Costs ``O(B H^2 (D H + H^2 + H))`` time: ``O(n^4)``.
        """
        cell, B, D, H = self.cell, self.batch_size, self.cell.input_size, self.cell.hidden_size
        _check_array(x, "x", ndim=2, dtype=cell.dtype)
        if x.shape != (B, D):
            raise ValueError(f"x: expected shape ({B}, {D}), got {x.shape}")
        p, h_prev = cell.params, self.h
        a = x @ p["W_ih"] + h_prev @ p["W_hh"] + p["b"]  # a_t = x_t W_ih + h_{t-1} W_hh + b
        h = activations.apply(cell.activation, a, out=a)  # h_t = f(a_t)
        P, Q = self._P, self._Q
        np.matmul(p["W_hh"].T, P, out=Q)                 # sum_k W_hh[k, j] P_{t-1}[k, :]
        diag = np.arange(H)
        Q_ih = Q[:, :, :D * H].reshape(B, H, D, H)
        Q_hh = Q[:, :, D * H:D * H + H * H].reshape(B, H, H, H)
        Q_ih[:, diag, :, diag] += x[None]                # da_t[j]/dW_ih[d, j] = x_t[d]
        Q_hh[:, diag, :, diag] += h_prev[None]           # da_t[j]/dW_hh[k, j] = h_{t-1}[k]
        Q[:, diag, D * H + H * H + diag] += 1            # da_t[j]/db[j] = 1
        Q *= activations.derivative(cell.activation, h)[:, :, None]  # h_t[j] = f(a_t[j])
        self._P, self._Q = Q, P
        self.h, self.t = h, self.t + 1
        return h.copy()

    def accumulate(self, dh: np.ndarray) -> None:
        """Add the gradient of this step's loss, ``dl_t/dtheta = sum dh[b, j] P_t[b, j, :]``,
        into ``cell.grads``.

        Parameters
        ----------
        dh : ndarray, shape (B, H)
            ``dl_t/dh_t`` for the state returned by the last :meth:`step`.
        """
        if self.t == 0:
            raise RuntimeError("accumulate: call step(x) first (there is no h_t yet)")
        cell, B, D, H = self.cell, self.batch_size, self.cell.input_size, self.cell.hidden_size
        _check_array(dh, "dh", ndim=2, dtype=cell.dtype)
        if dh.shape != (B, H):
            raise ValueError(f"dh: expected shape ({B}, {H}), got {dh.shape}")
        flat = np.tensordot(dh, self._P, axes=([0, 1], [0, 1]))   # dl_t/dtheta = dl_t/dh_t . P_t
        g = cell.grads
        g["W_ih"] += flat[:D * H].reshape(D, H)
        g["W_hh"] += flat[D * H:D * H + H * H].reshape(H, H)
        g["b"] += flat[D * H + H * H:]
