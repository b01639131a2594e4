"""Sphinx configuration: the guides are MyST Markdown, the API reference is
generated from the numpydoc docstrings by ``_ext/rnnbp_api.py``.

Build (warnings are errors)::

    pip install -e ".[docs]" && python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))      # document this checkout, installed or not
os.environ.setdefault("MPLBACKEND", "Agg")

import rnnbp  # noqa: E402

project = "rnnbp"
author = "rnnbp developers"
copyright = "rnnbp developers"
version = release = rnnbp.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "rnnbp_api",
]

root_doc = "index"
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "README.md", "Thumbs.db", ".DS_Store"]

# MyST: $...$ maths as in the guides, and anchors for "page.md#section" links.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 4

# autodoc: signatures as written, documented members in source order.
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_preserve_defaults = False


# numpydoc: each class's members are documented by autodoc's :members:, so no
# second member table; parameter types stay text (shapes such as "(T, B, D)").
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True
# Structural checks that fail the -W build: unknown or misordered sections
# (GL06, GL07), documented parameters the signature does not have (PR02) and
# "name: type" without the space (PR10).
numpydoc_validation_checks = {"GL06", "GL07", "PR02", "PR10"}

html_theme = "alabaster"
html_title = f"rnnbp {release}"
html_static_path = []
