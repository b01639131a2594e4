"""The runnable experiments: one module each, found by ``tasks.cli``.

A module ``tasks/experiments/some_name.py`` is the experiment
``some-name``. It defines ``SUMMARY`` (one line for ``python -m tasks list``)
and ``run(quick: bool, seed: int, out: pathlib.Path) -> dict``, which writes
its figures into ``out`` and returns its configuration and metrics (a
``"figures"`` list names the files it wrote). An experiment made of
independent runs also takes ``sweep`` (a ``tasks.sweep.Sweep``): it builds a
list of seeded ``Trial`` objects around a module-level trial function and runs
them with ``sweep.run(trials)``, so ``--jobs N`` and ``--scheduler`` spread
them over workers with the same numbers. ``--quick`` sizes finish in
well under 30 seconds; the test suite runs every experiment at that size.
"""
