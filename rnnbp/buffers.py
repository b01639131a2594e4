"""An explicit, bounded pool for the fast kernels' large internal arrays.

By default every training step allocates fresh ``(T, B, .)`` caches and
block scratch, and numpy returns them to the system when the graph is
dropped: memory use follows the live graphs and nothing else. Large fresh
arrays cost page faults on their first touch, though, and for the LSTM at
mid sizes that is measurable (``docs/performance.md``: the whole train
step, pool on versus off). A :class:`BufferPool` trades memory for that
time, only where the caller asks for it::

    pool = rnnbp.BufferPool(max_bytes=512 * 2**20)
    history = rnnbp.fit(model, data, loss=loss, optimizer=opt, pool=pool)
    pool.clear()                     # the memory goes back now

or ``unroll(..., pool=pool)`` / ``train_step(..., pool=pool)``. The pool is
an object the caller holds: no layer is mutated, nothing is kept once the
pool is cleared or dropped, and ``max_bytes`` bounds what it keeps.

**What is pooled.** Only internal arrays of at least ``min_bytes``: the
caches a cell kernel's forward pass fills (``hs``, ``cs``, gate
activations), its backward walk's block scratch, and the scratch of
``rnnbp.losses.ctc`` when ``train_step``/``fit`` call it with a pool. What a call returns
(outputs, final states, ``dxs``, initial-state gradients) is always fresh,
so nothing a caller sees aliases a pooled buffer except through the cache
it holds. A cache array joins the pool only when a backward walk uses it
(``adopt``): an inference pass, or the checkpointing pass of
``recompute=k``, leaves nothing behind.

**When a buffer is reused.** Only when the pool's own list is the only
reference to it. CPython counts references exactly, and every view of an
array (``hs[1:]``, the read-only ``seq_states``, ``hs[t]`` held by a user)
references its owning base array, as does a cache held by a live
``TimeGraph``. So a buffer whose count equals that of an unreferenced
sentinel, measured by the same expression, is reachable by nobody else:
overwriting it is unobservable. A mistake in counting can only err on the
safe side (an extra reference makes a buffer look busy, and a fresh one is
allocated). Interpreters without exact reference counts (no
``sys.getrefcount``, or a free-threaded build with the GIL off) get fresh
arrays every time: :attr:`BufferPool.active` is False there.

**How much is kept.** Each ``unroll`` starts a new *call*. The pool forgets
every idle buffer it did not hand out during the last ``keep_calls`` calls,
so a change of shapes (another T or B, full BPTT then ``recompute=k``)
releases the old buffers within that many calls. Before a new buffer joins,
idle buffers are evicted, least recently used first, until the pool's bytes
plus the new buffer fit in ``max_bytes``; a buffer that still does not fit
is handed out fresh and not kept. ``clear()`` drops the pool's references to
every buffer at once: after ``del graph`` (and any views of its caches)
that memory is back with the system.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _checks

__all__ = ["BufferPool", "using", "scratch", "cache", "adopt"]


def _refs(bufs: list, i: int) -> int:
    """The reference count of ``bufs[i]``; every count the pool compares goes through this one expression."""
    return sys.getrefcount(bufs[i])


def _counts_exactly() -> bool:
    """Whether reference counts tell an unreferenced pooled array from a referenced one here."""
    if not hasattr(sys, "getrefcount"):
        return False
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        return False
    bufs = [np.empty(0), np.empty(1)]
    idle = _refs(bufs, 1) == _refs(bufs, 0)
    held = bufs[1][:]                                    # a view holds its base
    busy = _refs(bufs, 1) > _refs(bufs, 0)
    del held
    return idle and busy and _refs(bufs, 1) == _refs(bufs, 0)


_EXACT_COUNTS = _counts_exactly()


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    n = dtype.itemsize
    for s in shape:
        n *= s
    return n


class BufferPool:
    """A bounded pool of the fast kernels' internal arrays, used only where passed.

    Parameters
    ----------
    max_bytes : int, default 1 GiB
        The most bytes the pool keeps (busy and idle buffers together).
    min_bytes : int, default 64 KiB
        Smaller arrays are never pooled (malloc recycles them from its heap
        without page faults).
    keep_calls : int, default 2
        An idle buffer not handed out during the last ``keep_calls`` unroll
        calls is forgotten.

    Attributes
    ----------
    active : bool
        Whether this interpreter counts references exactly; if not, the
        pool hands out fresh arrays and keeps none.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> model = rnnbp.Sequential(rnnbp.LSTM(3, 64, seed=0), rnnbp.Linear(64, 2, seed=1))
    >>> xs = np.random.default_rng(0).normal(size=(50, 8, 3))
    >>> pool = rnnbp.BufferPool(max_bytes=64 * 2**20)
    >>> for _ in range(3):
    ...     graph = rnnbp.unroll(model, xs, pool=pool)
    ...     _ = graph.backward(np.ones_like(graph.outputs))
    >>> del graph
    >>> pool.nbytes() > 0
    True
    >>> pool.clear() > 0          # bytes let go
    True
    >>> pool.nbytes()
    0
    """

    def __init__(self, max_bytes: int = 1 << 30, *, min_bytes: int = 1 << 16, keep_calls: int = 2) -> None:
        self.max_bytes = _checks.count(max_bytes, "max_bytes")
        self.min_bytes = _checks.count(min_bytes, "min_bytes")
        self.keep_calls = _checks.positive_int(keep_calls, "keep_calls")
        self.active = _EXACT_COUNTS
        # Index 0 is a sentinel nobody else references: its count is the count of an idle buffer.
        self._bufs: list[np.ndarray] = [np.empty(0)]
        self._keys: list[Any] = [None]
        self._stamps: list[int] = [0]
        self._call = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"BufferPool(max_bytes={self.max_bytes}, buffers={len(self)}, "
                f"nbytes={self.nbytes()}, idle_nbytes={self.idle_nbytes()})")

    def __len__(self) -> int:
        return len(self._bufs) - 1

    def __reduce__(self):
        # copies and pickles are new, empty pools with the same settings (deepcopy goes through here too)
        return (BufferPool, (self.max_bytes,), {"min_bytes": self.min_bytes, "keep_calls": self.keep_calls})

    def __setstate__(self, state: dict) -> None:
        self.__init__(self.max_bytes, **state)

    # -- what a user calls ----------------------------------------------------
    def clear(self) -> int:
        """Let go of every buffer; returns the bytes the pool held.

        Busy buffers stay with whoever holds them (a live graph) and are
        freed with it; the pool only drops its own references.
        """
        with self._lock:
            held = sum(b.nbytes for b in self._bufs)
            self._keep([0])
            return held

    def nbytes(self) -> int:
        """Bytes held by the pool (busy and idle buffers)."""
        with self._lock:
            return sum(b.nbytes for b in self._bufs)

    def idle_nbytes(self) -> int:
        """Bytes of pooled buffers nobody but the pool references."""
        with self._lock:
            idle = _refs(self._bufs, 0)
            return sum(self._bufs[i].nbytes for i in range(1, len(self._bufs))
                       if _refs(self._bufs, i) == idle)

    # -- what the kernels call (through the module functions below) -----------
    def begin_call(self) -> None:
        """Start a new unroll call: forget idle buffers not handed out during the last ``keep_calls`` calls."""
        with self._lock:
            self._call += 1
            oldest = self._call - self.keep_calls + 1
            bufs, stamps = self._bufs, self._stamps
            idle = _refs(bufs, 0)
            if any(stamps[i] < oldest and _refs(bufs, i) == idle for i in range(1, len(bufs))):
                self._keep([i for i in range(len(bufs))
                            if i == 0 or stamps[i] >= oldest or _refs(bufs, i) != idle])

    def take(self, shape: tuple[int, ...], dtype: Any, join: bool) -> np.ndarray:
        """An idle pooled buffer of this shape and dtype, or a new one (kept if ``join`` and it fits)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = _nbytes(shape, dtype)
        if not self.active or nbytes < self.min_bytes:
            return np.empty(shape, dtype=dtype)
        key = (shape, dtype)
        with self._lock:
            bufs, keys, stamps = self._bufs, self._keys, self._stamps
            idle = _refs(bufs, 0)
            for i in range(1, len(bufs)):
                if keys[i] == key and _refs(bufs, i) == idle:
                    stamps[i] = self._call
                    return bufs[i]
            buf = np.empty(shape, dtype=dtype)
            if join:
                self._join(buf, key)
            return buf

    def adopt(self, *arrays: np.ndarray | None) -> None:
        """Keep these cache arrays (a backward walk used them: the next step will want them again).

        Only arrays that own their memory are taken: pooling a view could
        hand out memory whose owner somebody still holds.
        """
        if not self.active:
            return
        with self._lock:
            for a in arrays:
                if (a is None or a.base is not None or not a.flags.owndata
                        or a.nbytes < self.min_bytes or not a.flags.c_contiguous):
                    continue
                for i in range(1, len(self._bufs)):
                    if self._bufs[i] is a:
                        self._stamps[i] = self._call
                        break
                else:
                    self._join(a, (a.shape, a.dtype))

    def _join(self, buf: np.ndarray, key: Any) -> None:
        """Add ``buf`` if it fits in ``max_bytes`` after evicting idle buffers, least recently used first."""
        bufs, stamps = self._bufs, self._stamps
        need = sum(b.nbytes for b in bufs) + buf.nbytes - self.max_bytes
        if need > 0:
            idle = _refs(bufs, 0)
            order = sorted((i for i in range(1, len(bufs)) if _refs(bufs, i) == idle),
                           key=lambda i: stamps[i])
            drop = set()
            for i in order:
                if need <= 0:
                    break
                drop.add(i)
                need -= bufs[i].nbytes
            if need > 0:
                return                                   # does not fit: handed out, not kept
            self._keep([i for i in range(len(bufs)) if i not in drop])
        self._bufs.append(buf)
        self._keys.append(key)
        self._stamps.append(self._call)

    def _keep(self, index: list[int]) -> None:
        """Keep only the entries at ``index`` (dropping the pool's reference to the others)."""
        self._bufs = [self._bufs[i] for i in index]
        self._keys = [self._keys[i] for i in index]
        self._stamps = [self._stamps[i] for i in index]


# -- the pool in use: set by unroll / TimeGraph.backward, read by the kernels --
_ACTIVE: contextvars.ContextVar[BufferPool | None] = contextvars.ContextVar("rnnbp_buffer_pool", default=None)


@contextlib.contextmanager
def using(pool: BufferPool | None) -> Iterator[None]:
    """Within the block, the cell kernels take their internal arrays from ``pool`` (``None``: fresh arrays)."""
    _checks.instance(pool, BufferPool, "pool", "a rnnbp.BufferPool", or_none=True)
    token = _ACTIVE.set(pool)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def scratch(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Scratch like ``np.empty``: from the pool in use (joining it), else fresh. Contents arbitrary."""
    pool = _ACTIVE.get()
    return np.empty(shape, dtype) if pool is None else pool.take(shape, dtype, True)


def cache(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A cache array like ``np.empty``: an idle pooled buffer, or a fresh one that joins only through ``adopt``."""
    pool = _ACTIVE.get()
    return np.empty(shape, dtype) if pool is None else pool.take(shape, dtype, False)


def adopt(*arrays: np.ndarray | None) -> None:
    """Keep these walked-back cache arrays in the pool in use (no-op without one)."""
    pool = _ACTIVE.get()
    if pool is not None:
        pool.adopt(*arrays)
