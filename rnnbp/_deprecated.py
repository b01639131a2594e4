"""Old module paths kept for one release after a rename.

Each old module (``rnnbp/layer.py``, ``rnnbp/train.py``, ``rnnbp/step.py``)
is a few lines that call :func:`alias_module`: any name read from it comes
from the new module, with a :class:`DeprecationWarning` that names the new
path. The API reference skips modules that carry ``ALIAS_OF``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable

#: The release that removes the old paths.
REMOVED_IN = "0.3.0"


def alias_module(old: str, new: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a module ``old`` renamed to ``new``.

    Parameters
    ----------
    old, new : str
        Dotted module names, e.g. ``"rnnbp.layer"`` and ``"rnnbp.protocol"``.

    Returns
    -------
    (getattr, dir) : the two module-level hooks (PEP 562).
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(new)
        try:
            value = getattr(target, name)
        except AttributeError:
            raise AttributeError(f"module {old!r} has no attribute {name!r}") from None
        warnings.warn(f"{old} was renamed to {new}; import {name} from {new} "
                      f"(the old path goes in rnnbp {REMOVED_IN})", DeprecationWarning, stacklevel=2)
        return value

    def __dir__() -> list[str]:
        return sorted(n for n in dir(importlib.import_module(new)) if not n.startswith("__"))

    return __getattr__, __dir__
