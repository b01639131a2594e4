"""The experiments' command line lists every experiment.

Each experiment's ``--quick`` run is tested in ``tests/test_experiments_quick.py``;
the committed full-size records are audited in ``tests/records/``.
"""

from tasks import cli


def test_list_names_every_experiment(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in cli.EXPERIMENTS:
        assert name in out
