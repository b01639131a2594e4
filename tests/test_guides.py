"""Every code example in the guides runs, and prints what the page says it prints.

For each Markdown page under ``docs/`` (the generated ``docs/api`` and the
build excepted), the ```python blocks run in order in one namespace, as a
reader would paste them into one session, in a temporary working directory,
which must stay empty: examples write files into a temporary directory of
their own (or ``runs/``), never into the current one. Where a ```python
block is followed directly by a ```text block, that text is what the block
must print, exactly (trailing spaces aside).

A block that cannot run here says so in an HTML comment on the line before
it, ``<!-- not run: why -->``; the reason is shown in the test output.
"""

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"(<!-- not run: (?P<why>[^>]*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)\n```", re.S)
SLOW = {"quickstart.md", "bptt.md", "recurrent_backprop.md"}


def pages():
    docs = ROOT / "docs"
    found = [p for p in sorted(docs.rglob("*.md")) if not {"_build", "api"} & set(p.relative_to(docs).parts)]
    return found            # the README's example: tests/test_docs.py, with its own checks


def blocks(path):
    """``[(lang, body, why_not_run)]`` of every fenced block of ``path``, in order."""
    return [(m["lang"], m["body"], m["why"]) for m in FENCE.finditer(path.read_text())]


def _param(path):
    marks = [pytest.mark.slow] if path.name in SLOW else []
    return pytest.param(path, id=str(path.relative_to(ROOT)), marks=marks)


def _normal(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


@pytest.mark.parametrize("path", [_param(p) for p in pages() if any(b[0] == "python" and not b[2] for b in blocks(p))])
def test_guide_code_runs_and_prints_what_the_page_says(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"guide_{path.stem}"}
    found = blocks(path)
    ran = 0
    for i, (lang, body, why) in enumerate(found):
        if lang != "python" or why:
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(body, f"{path.name} block {i}", "exec"), namespace)
        ran += 1
        if i + 1 < len(found) and found[i + 1][0] == "text" and not found[i + 1][2]:
            assert _normal(out.getvalue()) == _normal(found[i + 1][1]), (
                f"{path.name}: python block {i} printed\n{out.getvalue()}\nbut the page shows\n{found[i + 1][1]}")
    assert ran, f"{path.name}: no python block ran"
    written = sorted(p.name for p in tmp_path.iterdir())
    assert not written, f"{path.name}: examples wrote {written} into the current directory; use a temporary one"
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


def test_the_fence_reader_sees_skips_and_pairs(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("x\n```python\nprint(1)\n```\n\n```text\n1\n```\n<!-- not run: needs a GPU -->\n"
                    "```python\nraise SystemExit\n```\n")
    assert blocks(page) == [("python", "print(1)", None), ("text", "1", None),
                            ("python", "raise SystemExit", "needs a GPU")]
