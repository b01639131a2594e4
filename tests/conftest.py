"""Test-suite switches.

The record audits in ``tests/records/`` read committed ``results.json`` files
and cannot fail on a code change, so they are not part of the default run:
they run only when the marker expression names them (``python -m pytest -m
records``, a separate step of ``.ci/run``). ``-m "not slow"`` is the quick
run of the code's tests.
"""


def pytest_collection_modifyitems(config, items):
    if "records" in (config.option.markexpr or ""):
        return
    keep, audits = [], []
    for item in items:
        (audits if item.get_closest_marker("records") else keep).append(item)
    if audits:
        config.hook.pytest_deselected(items=audits)
        items[:] = keep
