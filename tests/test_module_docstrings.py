"""Issue #20 items in the training modules: module docstrings say what a module is for (maintainer
notes are comments), io's docstring names the saved type truly, and checks run once per entry."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse


@pytest.mark.parametrize("module", ["unroll", "io", "monitor", "losses", "optim", "ctc", "checkpoint", "loop"])
def test_module_docstring_says_what_the_module_is_for_not_why_it_is_long(module):
    doc = importlib.import_module(f"rnnbp.{module}").__doc__
    assert doc and "lines" not in doc and "One module for one idea" not in doc


def test_io_names_the_saved_type_as_it_is_computed_and_keeps_no_module_list():
    io = importlib.import_module("rnnbp.io")
    assert "type(layer).__name__" not in io.__doc__ and "layer_type_name" in io.__doc__
    assert not hasattr(io, "_import_layer_modules") and not hasattr(io, "_LAYER_MODULES")


def _counting(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, wrapper, raising=False)
    return calls


@pytest.mark.parametrize("bptt", ["full", (2, 4)])
def test_fit_checks_the_optimizer_and_the_validation_data_once(monkeypatch, bptt):
    import rnnbp.loop
    import rnnbp.tbptt
    import rnnbp.update
    calls = []
    real = rnnbp.update.check_optimizer
    for module in (rnnbp.update, rnnbp.loop, rnnbp.tbptt):
        monkeypatch.setattr(module, "check_optimizer", lambda *a: (calls.append(a), real(*a))[1], raising=False)
    unpacked = _counting(monkeypatch, importlib.import_module("rnnbp._data"), "unpack") \
        if importlib.util.find_spec("rnnbp._data") else None
    xs = np.random.default_rng(0).normal(size=(8, 12, 1))
    model = rnnbp.Sequential(rnnbp.Elman(1, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    rnnbp.fit(model, (xs, xs), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1), epochs=3, batch_size=4,
              bptt=bptt, validation=(xs, xs), progress=False)
    assert len(calls) == 1                                   # 9 minibatches (36 windows), one check
    assert unpacked is not None and [a[1] for a in unpacked] == ["data", "validation"]


def test_truncated_run_leaves_the_checks_of_xs_to_unroll(monkeypatch):
    checks = importlib.import_module("rnnbp._checks")
    seen = _counting(monkeypatch, checks, "array")
    model = rnnbp.Sequential(rnnbp.Elman(1, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    xs = np.zeros((12, 2, 1))
    rnnbp.TruncatedBPTT(model, 4).run(xs, xs, mse, optimizer=rnnbp.optim.SGD(model, lr=0.1))
    assert [a[1] for a in seen].count("xs") == 3             # once per window, in unroll
    with pytest.raises(ValueError, match=r"xs: expected a time-major array \(T, B, D\), got shape \(4, 2\)"):
        rnnbp.TruncatedBPTT(model, 4).run(np.zeros((12, 2)), np.zeros((12, 2)), mse)
