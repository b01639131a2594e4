"""Data and experiments for rnnbp, run from a checkout (``python -m tasks ...``).

Not installed with ``rnnbp``; the library never imports it.

- :mod:`tasks.data` -- every data generator and shipped data set
  (sequences, text, glyphs, text lines), each importable from its own module
  (``from tasks.data.sequences import adding_problem``);
- :mod:`tasks.experiments` -- the runnable experiments, ``python -m tasks run NAME``;
- :mod:`tasks.sweep` -- seeded trials on any ``concurrent.futures.Executor``;
- :mod:`tasks.figures` -- figures only the experiments draw.

Importing this package imports nothing else: ``python -m tasks`` must set the
BLAS thread count before anything imports numpy (``tasks/__main__.py``).
"""
