"""Recurrent cells: ``Elman``, ``LSTM`` and ``GRU``, one file each.

Every cell has a one-step path (``forward``/``backward``, written to read like
the equations, an equation named on every backward line) and a fast sequence
path (``forward_seq``/``backward_seq``) whose kernels sit in the same file,
below the class: time blocks of ``time_block(B)`` steps, one GEMM per block
for the input projection and for each weight gradient, preallocated
``(T, B, .)`` caches, one recurrent GEMM per step into an ``out=`` buffer,
and the gate arithmetic fused into a handful of in-place calls per step
(``rnnbp.cells._base`` describes the layout and holds what the cells share).

The public parameters keep PyTorch's layout and gate order (see each class),
and so does the fast path: it works on private copies of the weights in
which only the sigmoid gates' columns are halved (exact: a power of two),
since ``sigmoid(a) = (1 + tanh(a / 2)) / 2``; one ``tanh`` call then covers
every gate of an LSTM. The sigmoid computed that way never overflows and
stays in the layer's dtype.

Each cell's ``forward_seq`` returns its own cache type (``ElmanCache``,
``LSTMCache``, ``GRUCache``), which its ``backward_seq`` reads (any other
cache is a ``TypeError``); ``seq_states`` also takes the step loop's
``StepCache``.

Masks follow the base-class step loop exactly: where ``mask[t, b]`` is False
the state is carried unchanged, the output is zero, the output gradient is
ignored and the state gradient passes straight through.
"""

from ._base import time_block
from .elman import Elman, ElmanCache
from .gru import GRU, GRUCache
from .lstm import LSTM, LSTMCache, LSTMState

__all__ = ["Elman", "LSTM", "LSTMState", "GRU", "ElmanCache", "LSTMCache", "GRUCache", "time_block"]
