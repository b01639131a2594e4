"""Old import paths kept for one release after the 0.2.0 renames: they work and warn."""

import importlib
import warnings

import pytest

import rnnbp

RENAMED = [("rnnbp.layer", "rnnbp.protocol", "Layer"),
           ("rnnbp.train", "rnnbp.loop", "fit"),
           ("rnnbp.step", "rnnbp.update", "train_step")]


@pytest.mark.parametrize("old, new, name", RENAMED)
def test_old_module_path_gives_the_same_object_and_warns(old, new, name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("old, new, name", RENAMED)
def test_from_import_of_old_path_warns(old, new, name):
    with pytest.warns(DeprecationWarning, match="0.3.0"):
        exec(f"from {old} import {name}", {})


@pytest.mark.parametrize("old, new, name", RENAMED)
def test_old_path_reachable_as_package_attribute(old, new, name):
    with pytest.warns(DeprecationWarning):
        assert getattr(getattr(rnnbp, old.split(".")[1]), name) is getattr(importlib.import_module(new), name)


def test_unknown_name_on_old_path_is_an_attribute_error():
    module = importlib.import_module("rnnbp.layer")
    with pytest.raises(AttributeError, match="rnnbp.layer"):
        module.no_such_name


def test_new_paths_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from rnnbp.loop import fit  # noqa: F401
        from rnnbp.protocol import Layer  # noqa: F401
        from rnnbp.update import train_step  # noqa: F401


def test_version_is_written_once():
    from importlib.metadata import version
    assert version("rnnbp") == rnnbp.__version__
