"""The runnable experiments: one module each, found by ``tasks.cli``.

A module ``tasks/experiments/some_name.py`` is the experiment
``some-name``. It defines ``SUMMARY`` (one line for ``python -m tasks list``)
and ``run(quick: bool, seed: int, out: pathlib.Path) -> dict``, which writes
its figures into ``out`` and returns its configuration and metrics (a
``"figures"`` list names the files it wrote). ``--quick`` sizes finish in
well under 30 seconds; the test suite runs every experiment at that size.
"""
