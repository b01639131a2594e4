"""Every experiment runs at its --quick size and writes its results and figures."""

import json

import pytest

from tasks import cli


@pytest.mark.parametrize("name", sorted(cli.EXPERIMENTS))
def test_quick_run_writes_results_and_figures(name, tmp_path):
    record = cli.run(name, quick=True, seed=0, out=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["experiment"] == name and saved["quick"] is True and saved["seed"] == 0
    assert saved["versions"]["numpy"] == record["versions"]["numpy"]
    for fig in saved["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000


def test_list_names_every_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in cli.EXPERIMENTS:
        assert name in out


def test_quickstart_full_size_record_shows_lstm_beating_elman():
    """The committed full-size run: LSTM learns the adding problem, Elman does not."""
    path = cli.ROOT / "experiments" / "quickstart" / "results.json"
    record = json.loads(path.read_text())
    assert record["quick"] is False
    assert record["models"]["LSTM"]["test_mse"] < 0.01 < record["baseline_mse"] * 0.9 < record["models"]["Elman"]["test_mse"]
