"""The committed full-size record of ``benchmark`` is complete and says what ``docs/performance.md`` quotes.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
The benchmark's code runs at its ``--quick`` size in ``tests/test_experiments_quick.py``.
"""

from __future__ import annotations

import itertools
import re

import pytest

from tasks.experiments import benchmark
from tests.records._record import ROOT, load_record

DOC = (ROOT / "docs" / "performance.md").read_text()


@pytest.fixture(scope="module")
def record() -> dict:
    return load_record("benchmark", min_figure_bytes=10_000)


def test_every_grid_point_was_measured_with_and_without_the_pool(record):
    rows = record["rows"]
    points = {(r["cell"], r["dtype"], r["B"], r["T"], r["H"]) for r in rows}
    assert points == set(itertools.product(benchmark.CELLS, benchmark.DTYPES, (1, 32, 128), (50, 200),
                                           (32, 128, 512)))
    for r in rows:
        assert r["grad_rel_err_rnnbp_pool"] == 0.0          # the pool changes no bit
        assert r["pool_speedup"] == pytest.approx(r["rnnbp_ms"] / r["rnnbp_pool_ms"])
    assert "rnnbp_pool" in record["config"]["implementations"]


def test_the_record_was_made_from_a_clean_checkout(record):
    assert record["run"]["clean"] is True and len(record["run"]["commit"]) == 40


def test_the_docs_quote_the_recorded_summary(record):
    """Each cell/dtype row of the Results table carries the record's geometric means, to two digits."""
    for key, s in record["summary"].items():
        cell, dtype = key.split()
        line = next((ln for ln in DOC.splitlines() if re.match(rf"\|\s*{cell}\s*\|\s*{dtype}\s*\|", ln)), None)
        assert line is not None, key
        for name in ("rnnbp_over_torch_geomean", "pool_speedup_geomean", "naive_over_rnnbp_geomean"):
            assert f"{s[name]:.2f}" in line, (key, name, line)


def test_the_docs_quote_the_recorded_ctc_ratios(record):
    for r in record["ctc"]["rows"]:
        line = next(ln for ln in DOC.splitlines() if re.match(rf"\|\s*CTC\s*\|\s*{r['dtype']}\s*\|", ln))
        assert f"{r['ratio_rnnbp_over_torch']:.2f}" in line and f"{r['ratio_pool_over_torch']:.2f}" in line, line
