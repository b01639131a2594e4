"""Reuse of the cells' large per-call arrays between calls: a small per-layer pool.

Every training step used to allocate fresh ``(T, B, .)`` caches and block
scratch in ``forward_seq``/``backward_seq``; large arrays come from fresh
mmapped pages and the allocator churns (measured: a GRU float32 step at
B = 128, H = 128 took 290 ms with fresh arrays and 219 ms with this pool,
2 threads). A library must not change process-wide malloc settings, so the
cells take those arrays from
a ``Workspace`` (one per layer) that hands a buffer out again once nobody
uses it any more.

**The rule.** A pooled buffer is reused only when the pool's own list is the
only reference to it. CPython counts references exactly: every live view
(``hs[1:]``, the read-only views of ``seq_states``/``graph.layer_states``,
``hs[t]`` held by a user, ``reshape``/``as_strided``/``frombuffer`` results)
keeps a reference to its owning base array (numpy points ``.base`` at the
owner), as do a ``SeqCache`` kept by a live ``TimeGraph``, a ``memoryview``
or any object holding the buffer. So a buffer whose reference count equals
that of an unreferenced sentinel in the same list, measured by the same
expression, is reachable by nobody but the pool: nothing can read or write
it, and overwriting it is unobservable. Mistakes in counting can only err on
the safe side (an extra reference, say from an uncollected reference cycle,
makes a buffer look busy and a fresh one is allocated). The one thing outside
the rule is a raw data pointer kept without the array (``a.ctypes.data``,
``__array_interface__``) after the array itself was dropped: numpy never
promised such a pointer stays valid either.

Only internal arrays come from the pool: caches and backward scratch. What a
call returns (``ys``, final states, ``dxs``, initial-state gradients) is
always freshly allocated, so nothing a caller can see aliases a pooled buffer
except through the cache object it holds (which holds the buffer).

**Retention.** Buffers are pooled per layer and per (shape, dtype), only
above ``_MIN_BYTES`` (smaller ones malloc recycles from its heap). Backward
scratch joins the pool when it is allocated (``empty``). A cache array
allocated by ``forward_seq`` (``cache``) joins only when ``backward_seq``
walks that cache (``adopt``): a forward pass whose cache is dropped unwalked
-- inference, the checkpointing pass of ``recompute=k`` -- leaves nothing
behind. Each ``forward_seq`` starts a new *call*; the pool forgets every
buffer it did not hand out during the last three calls (the current one and
the two before), and before it allocates a new buffer it drops every idle
buffer that neither the current nor the previous call used. So a change of
shapes (full BPTT then ``recompute=k`` segments, another T or B) releases
the old buffers within two calls, and between steps a layer keeps at most
the caches and scratch of its last step -- two steps' worth when the loop
still holds the previous graph while it runs the next one (``graph =
unroll(...)`` in a loop: both sets were live at once anyway, and they then
alternate). With ``recompute=k`` that is one segment's cache and scratch
(two when k does not divide T: the shorter last segment's too).
``_MAX_BUFFERS`` caps the list as a safety net.

**Threads.** ``empty`` and ``begin`` run under a per-pool lock and a caller
holds a strong reference to the array it got before the lock is released, so
two threads running ``forward_seq`` on one layer never receive the same
buffer. (Using one layer's ``backward_seq`` from two threads at once is not
supported anyway: both add into ``layer.grads``.) Interpreters without exact
reference counts (no ``sys.getrefcount``, or CPython's free-threaded build
with the GIL off) get fresh arrays every time: ``ENABLED`` is False there.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

__all__ = ["Workspace", "ENABLED"]

#: Smallest array (bytes) taken from the pool; below it malloc's heap recycles memory without faults.
_MIN_BYTES = 1 << 16
#: Most buffers one pool keeps (a safety net: the call-age rule keeps far fewer).
_MAX_BUFFERS = 64
#: Calls a buffer survives in the pool after it was last handed out (the current one and the two before).
_KEEP_CALLS = 2


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


#: Whether pooling is on (module-level switch; tests turn it off to compare with fresh arrays).
ENABLED = _counts_exactly()


class Workspace:
    """A per-layer pool of the fast path's internal arrays (see the module docstring).

    Not part of the public API. A layer owns one; copies of the layer get a
    new, empty one.
    """

    __slots__ = ("_bufs", "_keys", "_stamps", "_call", "_lock")

    def __init__(self) -> None:
        # Index 0 is a sentinel nobody else references: its count is the count of an idle buffer.
        self._bufs: list[np.ndarray] = [np.empty(0)]
        self._keys: list = [None]
        self._stamps: list[int] = [0]
        self._call = 0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo: dict) -> "Workspace":
        return Workspace()

    def __copy__(self) -> "Workspace":
        return Workspace()

    def __reduce__(self):
        return (Workspace, ())

    def begin(self) -> None:
        """Start a new call (``forward_seq``): forget buffers not handed out during the last calls."""
        with self._lock:
            self._call += 1
            oldest = self._call - _KEEP_CALLS
            stamps = self._stamps
            if any(stamps[i] < oldest for i in range(1, len(stamps))):
                self._keep([0] + [i for i in range(1, len(stamps)) if stamps[i] >= oldest])

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Scratch like ``np.empty(shape, dtype)``: an idle pooled buffer, or a new one that joins the pool.

        The contents are arbitrary (like ``np.empty``): callers write before they read.
        """
        return self._take(shape, dtype, True)

    def cache(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A cache array: an idle pooled buffer, or a new one that joins the pool only through ``adopt``.

        A forward pass whose cache is never walked back (inference, the
        checkpointing pass of ``recompute=k``) thus leaves nothing behind.
        """
        return self._take(shape, dtype, False)

    def adopt(self, *arrays: np.ndarray) -> None:
        """Pool these cache arrays (a backward walk uses them: the next step will want them again).

        Only arrays that own their memory are taken: pooling a view could
        hand out memory whose owner somebody still holds.
        """
        if not ENABLED:
            return
        with self._lock:
            for a in arrays:
                if (a is None or a.base is not None or not a.flags.owndata
                        or a.nbytes < _MIN_BYTES or not a.flags.c_contiguous):
                    continue
                for i in range(1, len(self._bufs)):
                    if self._bufs[i] is a:
                        self._stamps[i] = self._call
                        break
                else:
                    if len(self._bufs) <= _MAX_BUFFERS:
                        self._bufs.append(a)
                        self._keys.append((a.shape, a.dtype))
                        self._stamps.append(self._call)

    def _take(self, shape: tuple[int, ...], dtype: np.dtype, join: bool) -> np.ndarray:
        dtype = np.dtype(dtype)
        shape = tuple(int(n) for n in shape)
        nbytes = dtype.itemsize
        for n in shape:
            nbytes *= n
        if not ENABLED or nbytes < _MIN_BYTES:
            return np.empty(shape, dtype=dtype)
        key = (shape, dtype)
        with self._lock:
            bufs, keys, stamps = self._bufs, self._keys, self._stamps
            idle = _refs(bufs, 0)
            for i in range(1, len(bufs)):
                if keys[i] == key and _refs(bufs, i) == idle:
                    stamps[i] = self._call
                    return bufs[i]
            # About to grow: first let go of idle buffers neither this call nor the last one used.
            recent = self._call - 1
            self._keep([i for i in range(len(bufs))
                        if i == 0 or stamps[i] >= recent or _refs(bufs, i) != idle])
            buf = np.empty(shape, dtype=dtype)
            if join and len(self._bufs) <= _MAX_BUFFERS:
                self._bufs.append(buf)
                self._keys.append(key)
                self._stamps.append(self._call)
            return buf

    def _keep(self, index: list[int]) -> None:
        """Keep only the entries at ``index`` (dropping the pool's reference to the others)."""
        self._bufs = [self._bufs[i] for i in index]
        self._keys = [self._keys[i] for i in index]
        self._stamps = [self._stamps[i] for i in index]

    def nbytes(self) -> int:
        """Bytes held by the pool (busy and idle buffers; the sentinel is empty)."""
        with self._lock:
            return sum(b.nbytes for b in self._bufs)

    def idle_nbytes(self) -> int:
        """Bytes of pooled buffers nobody but the pool references."""
        with self._lock:
            idle = _refs(self._bufs, 0)
            return sum(self._bufs[i].nbytes for i in range(1, len(self._bufs))
                       if _refs(self._bufs, i) == idle)

    def __len__(self) -> int:
        return len(self._bufs) - 1
