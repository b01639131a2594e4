"""Load a committed ``experiments/NAME/results.json`` for the record audits in this folder."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def folder(name: str) -> Path:
    """``experiments/NAME`` in the checkout: the committed record of experiment ``name``."""
    return ROOT / "experiments" / name


def load_record(name: str, *, min_figure_bytes: int = 1000) -> dict:
    """The committed full-size record of ``name``; checks its name, size flag and figures."""
    path = folder(name) / "results.json"
    record = json.loads(path.read_text())
    assert record["experiment"] == name and record["quick"] is False
    for fig in record["figures"]:
        data = (path.parent / fig).read_bytes()
        assert len(data) > min_figure_bytes, fig
    return record
