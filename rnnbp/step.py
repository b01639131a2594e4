"""Deprecated: renamed to :mod:`rnnbp.update`; this path goes in rnnbp 0.3.0."""

from ._deprecated import alias_module

ALIAS_OF = "rnnbp.update"
__getattr__, __dir__ = alias_module(__name__, ALIAS_OF)
