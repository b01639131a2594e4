"""The documentation: every docstring example runs, once (the guides' code: tests/test_guides.py)."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import rnnbp

ROOT = Path(__file__).resolve().parent.parent
# Every public module, subpackages included (rnnbp.cells.*), each once; the
# deprecated old paths (modules with ALIAS_OF) have no examples of their own.
MODULES = sorted(m.name for m in pkgutil.walk_packages(rnnbp.__path__, "rnnbp.")
                 if not any(part.startswith("_") for part in m.name.split("."))
                 and not hasattr(importlib.import_module(m.name), "ALIAS_OF"))


def test_every_module_with_examples_is_collected():
    assert {"rnnbp.cells.lstm", "rnnbp.cells.gru", "rnnbp.cells.elman", "rnnbp.loop"} <= set(MODULES)
    assert "rnnbp.train" not in MODULES and len(MODULES) == len(set(MODULES))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np, "rnnbp": rnnbp}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert not any(tmp_path.iterdir()), f"{name}: an example wrote into the current directory"


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


@pytest.mark.slow
def test_readme_python_example_prints_what_it_says(capsys):
    """The README's dozen lines print ``||dL/dh_t||`` for t = 0..T-1 of full BPTT.

    Checked against what they claim: one norm per time step of the data
    (T = 30), finite and non-negative, and the last one is the norm of the
    gradient the output layer sends into h_{T-1} (the loss is at the last
    step only), computed here independently as ``dys @ W.T``.
    """
    code = re.findall(r"```python\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)[0]
    assert 'print(graph.state_grad_norms["0"])' in code
    namespace = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    printed = np.array(re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?", out), dtype=float)
    graph, data, model = namespace["graph"], namespace["data"], namespace["model"]
    T = data.xs.shape[0]
    assert T == 30 and graph.outputs.shape[:2] == (T, 8)  # "the time graph of 8 sequences"
    assert printed.shape == (T,), out
    assert np.all(np.isfinite(printed) & (printed >= 0))
    norms = graph.state_grad_norms["0"]
    np.testing.assert_allclose(printed, norms, rtol=1e-6, atol=1e-12)
    W = model.params["1.W"]  # Linear(24, 1): y = h W + b
    np.testing.assert_allclose(norms[-1], np.linalg.norm(namespace["dys"] @ W.T), rtol=1e-12)
    assert np.all(norms[:-1] > 0)  # full BPTT reaches every earlier step


def test_protocol_page_lists_every_member_of_layer():
    """docs/protocol.md's "Every member" table names each public member of rnnbp.Layer."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("## Every member")[1].split("\n## ")[0]
    listed = set(re.findall(r"`([a-z_]+)(?:\(|`)", table))
    missing = sorted(n for n in dir(rnnbp.Layer) if not n.startswith("_") and n not in listed)
    assert not missing, f"docs/protocol.md's member table lacks {missing}"
