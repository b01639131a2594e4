"""The generated API reference covers every public name.

The docs are built once into a temporary directory (skipped when the docs
extra is not installed; CI installs it) and the inventory Sphinx writes,
``objects.inv``, is checked against the public names found here, by walking
the package independently of the docs extension: every public module (no
path component starting with ``_``) and every name in each one's ``__all__``
must be in the inventory, and must link to an anchor that exists.
"""

import importlib
import os
import pkgutil
import posixpath
import subprocess
import sys
from pathlib import Path

import pytest

import rnnbp

pytestmark = pytest.mark.slow      # builds the Sphinx site once (~15 s)

ROOT = Path(__file__).resolve().parent.parent


def public_names():
    """``{qualified name: module}`` for every public module and ``__all__`` name."""
    names = {"rnnbp": "rnnbp"}
    modules = ["rnnbp"] + [m.name for m in pkgutil.walk_packages(rnnbp.__path__, "rnnbp.")
                           if not any(p.startswith("_") for p in m.name.split("."))]
    for modname in modules:
        module = importlib.import_module(modname)
        if hasattr(module, "ALIAS_OF"):          # a deprecated old path (rnnbp/_deprecated.py)
            continue
        names[modname] = modname
        for name in getattr(module, "__all__", ()):
            names[f"{modname}.{name}"] = modname
    return names


def missing_from(inventory, html_dir, expected):
    """Names absent from the inventory, or whose link points at no anchor."""
    missing = []
    pages = {}
    for name in expected:
        if name not in inventory:
            missing.append(name)
            continue
        uri = inventory[name]
        page, _, anchor = uri.partition("#")
        if page not in pages:
            pages[page] = (html_dir / page).read_text(encoding="utf-8")
        if anchor and f'id="{anchor}"' not in pages[page]:
            missing.append(f"{name} (dead link {uri})")
    return missing


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        pytest.importorskip(module)
    from sphinx.util.inventory import InventoryFile

    out = tmp_path_factory.mktemp("docs")
    html = out / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "--keep-going", "-b", "html", "-d", str(out / "doctrees"),
         str(ROOT / "docs"), str(html)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]
    with open(html / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", posixpath.join)
    items = inv.data if hasattr(inv, "data") else inv   # Sphinx >= 8.2 wraps the dict
    inventory = {}
    for role, entries in items.items():
        if role.startswith("py:"):
            for name, item in entries.items():
                inventory.setdefault(name, item.uri if hasattr(item, "uri") else item[2])
    return inventory, html


def test_every_public_name_is_in_the_generated_reference(built_docs):
    inventory, html = built_docs
    expected = public_names()
    assert len(expected) > 50          # the walk found the package, not an empty shell
    missing = missing_from(inventory, html, expected)
    assert not missing, f"not in the generated API reference: {missing}"


def test_the_check_fails_when_a_name_is_missing(built_docs):
    inventory, html = built_docs
    expected = public_names()
    some = sorted(n for n in expected if n.count(".") == 1 and n.split(".")[1][0].isupper())[0]
    pruned = {k: v for k, v in inventory.items() if k != some}
    assert missing_from(pruned, html, expected) == [some]
    dead = {**inventory, some: inventory[some].partition("#")[0] + "#no-such-anchor"}
    assert missing_from(dead, html, expected) == [f"{some} (dead link {dead[some]})"]

