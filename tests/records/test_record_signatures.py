"""The committed full-size record of ``signatures`` shows what its docs page says.

The record was made from a clean checkout with the current ``FULL``
configuration; every family chose on validation from a grid of the same
size under one budget; the trivial features do not separate skilled
forgeries; the target check agrees with the measured EERs; and
``docs/experiments/signatures.md`` quotes every EER of the record.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
"""

from __future__ import annotations

import json

from tasks.experiments import signatures as experiment
from tests.records._record import ROOT, load_record

DOCS = ROOT / "docs" / "experiments" / "signatures.md"


def _record() -> dict:
    return load_record("signatures")


def test_record_is_a_clean_full_run_of_the_current_configuration():
    r = _record()
    assert r["run"]["clean"] is True
    cfg = {k: r["config"][k] for k in experiment.FULL}
    assert json.loads(json.dumps(cfg)) == json.loads(json.dumps(experiment.FULL))


def test_fair_choice_on_validation():
    r = _record()
    fair = r["fairness"]
    assert len({len(g) for g in fair["grids"].values()}) == 1
    for name, m in r["models"].items():
        assert m["validation"] == min(g["validation"] for g in m["grid"])
        assert m["point"] == fair["chosen"][name]
        assert m["used"]["epochs"] <= fair["budget"]["max_epochs"]


def test_trivial_features_do_not_give_the_forgery_away():
    r = _record()
    assert r["eer"]["trivial features"]["skilled"] > 0.3


def test_target_check_agrees_with_the_eers():
    r = _record()
    t, eer = r["targets"], r["eer"]
    best = eer[t["best_recurrent (chosen on validation)"]]
    static = min(eer[f]["skilled"] for f in experiment.STATIC)
    assert t["skilled_eer_at_most_3_percent"] == (best["skilled"] <= 0.03)
    assert t["at_most_half_of_best_static"] == (best["skilled"] <= 0.5 * static)
    assert t["at_most_half_of_dtw"] == (best["skilled"] <= 0.5 * eer["DTW"]["skilled"])
    assert t["random_eer_at_most_1_percent"] == (best["random"] <= 0.01)


def test_page_quotes_the_record():
    r = _record()
    page = DOCS.read_text()
    for name, e in r["eer"].items():
        assert f"{e['skilled']:.2%}" in page, (name, "skilled")
        assert f"{e['random']:.2%}" in page, (name, "random")
