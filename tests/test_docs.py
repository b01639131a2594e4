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
