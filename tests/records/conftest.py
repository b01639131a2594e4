"""Record audits: the tests in this folder check committed data, not code.

They read the committed ``experiments/NAME/results.json`` files and train
nothing, so no change to ``rnnbp/`` or ``tasks/`` can make them fail; they
fail when a record is missing, stale or no longer shows what the docs claim.
Every test here is marked ``records`` (``pytest -m records`` runs only the
audits, ``-m 'not records'`` only the code's tests). The code's tests of the
same experiments run their ``--quick`` size: ``tests/test_experiments_quick.py``.
"""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.records)
