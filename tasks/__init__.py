"""Data and experiments for rnnbp, run from a checkout (``python -m tasks ...``).

Not installed with ``rnnbp``; the library never imports it. Data generators:

- :mod:`tasks.sequences` -- synthetic sequence tasks (adding problem, temporal
  order, copy, embedded Reber grammar, temporal XOR, sine mixtures,
  Mackey–Glass, delayed classification), all returning time-major
  :class:`~tasks.sequences.SequenceData`;
- :mod:`tasks.text` -- character-level text from standard-library docstrings
  or any UTF-8 file;
- :mod:`tasks.ocr` -- characters rendered from matplotlib's bundled fonts, with
  train/test split by font.

Every generator takes ``seed`` (an int or a ``numpy.random.Generator``) and is
deterministic given it.

The names below are loaded on first use, not on ``import tasks``: ``python -m
tasks`` must set the BLAS thread count before anything imports numpy
(``tasks/__main__.py``), and importing this package runs first.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it.
_SOURCES = {
    **dict.fromkeys(["Distortion", "OCRDataset", "OCRSet", "available_fonts", "ocr_dataset",
                     "render_glyphs"], "ocr"),
    **dict.fromkeys(["ReberData", "SequenceData", "adding_baseline_mse", "adding_problem", "copy_task",
                     "delayed_class", "mackey_glass", "mackey_glass_sequences", "one_hot",
                     "reber_accepts", "reber_correct", "reber_next_symbols", "reber_sequences",
                     "reber_strings", "series_windows", "sine_mixture", "temporal_order",
                     "temporal_xor"], "sequences"),
    **dict.fromkeys(["Vocab", "load_text", "next_char_data", "stdlib_corpus", "text_streams",
                     "text_windows"], "text"),
}

__all__ = [
    "SequenceData", "ReberData", "one_hot", "adding_problem", "adding_baseline_mse",
    "temporal_order", "copy_task", "reber_strings", "reber_accepts", "reber_next_symbols",
    "reber_sequences", "reber_correct", "temporal_xor", "sine_mixture", "mackey_glass",
    "series_windows", "mackey_glass_sequences", "delayed_class",
    "stdlib_corpus", "load_text", "Vocab", "text_windows", "text_streams", "next_char_data",
    "Distortion", "OCRSet", "OCRDataset", "available_fonts", "render_glyphs", "ocr_dataset",
]


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
