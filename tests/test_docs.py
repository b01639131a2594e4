"""The documentation: every public name is in the API reference, every docstring example runs."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import rnnbp

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.iter_modules(rnnbp.__path__, "rnnbp.") if not m.name.split(".")[-1].startswith("_"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "rnnbp": rnnbp}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_name_has_a_docstring():
    for name in rnnbp.__all__:
        obj = getattr(rnnbp, name)
        assert (obj.__doc__ or "").strip(), name


def test_readme_gives_the_two_commands_that_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert blocks[:2] == ['pip install -e . && python -m tasks run static-vs-recurrent-ocr',
                          'pip install -e ".[test]" && python -m pytest']
    assert blocks[1] in ci.splitlines()


def test_readme_python_example_runs(capsys):
    code = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)[0]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert "[" in capsys.readouterr().out
