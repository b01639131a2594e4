"""Synthetic sequence tasks from the recurrent-network literature, by family.

- :mod:`~tasks.data.sequences.adding`: the adding problem;
- :mod:`~tasks.data.sequences.memory`: temporal order, copy (delayed recall),
  delayed class (accuracy versus lag);
- :mod:`~tasks.data.sequences.grammars`: the (embedded) Reber grammar, temporal XOR;
- :mod:`~tasks.data.sequences.series`: sine mixtures, Mackey–Glass windows;
- :class:`SequenceData` and :func:`one_hot` come from :mod:`tasks.data.common`
  and are re-exported here.

Every name is importable from ``tasks.data.sequences`` itself
(``from tasks.data.sequences import adding_problem``).

Every generator is deterministic given ``seed`` (an ``int`` or a
``numpy.random.Generator``; numpy's global state is never touched) and
returns time-major arrays in a :class:`SequenceData`:

- ``xs``: ``(T, N, D)`` float inputs (``dtype`` float64 by default, float32
  allowed), zero on padding;
- ``ys``: the targets. With ``target_at == "last"`` there is one target per
  sequence, ``(N, K)`` float or ``(N,)`` int64 class labels, belonging to the
  output at the last real step ``lengths - 1``. With ``target_at == "every"``
  there is one per step, ``(T, N, K)`` float or ``(T, N)`` int64 labels;
- ``mask``: ``(T, N)`` bool, True where an output is scored (the loss mask):
  for ``"last"`` exactly the step ``lengths[n] - 1`` of each column;
- ``lengths``: ``(N,)`` int64 real steps per sequence (``T`` unless padded);
  ``data.valid`` is the ``(T, N)`` input-validity mask that an unroller's
  ``mask=`` expects.
"""

from .adding import adding_baseline_mse, adding_problem
from ..common import SequenceData, one_hot
from .grammars import (REBER_SYMBOLS, ReberData, reber_accepts, reber_correct, reber_next_symbols,
                       reber_sequences, reber_strings, temporal_xor)
from .memory import TEMPORAL_ORDER_SYMBOLS, copy_task, delayed_class, temporal_order
from .series import mackey_glass, mackey_glass_sequences, series_windows, sine_mixture

__all__ = [
    "SequenceData", "ReberData", "one_hot",
    "adding_problem", "adding_baseline_mse", "temporal_order", "copy_task",
    "REBER_SYMBOLS", "TEMPORAL_ORDER_SYMBOLS", "reber_strings", "reber_accepts", "reber_next_symbols",
    "reber_sequences", "reber_correct", "temporal_xor", "sine_mixture",
    "mackey_glass", "series_windows", "mackey_glass_sequences", "delayed_class",
]
