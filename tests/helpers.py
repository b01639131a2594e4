"""Helpers shared by several test modules (``from tests.helpers import ...``)."""

import numpy as np


def random_biases(model, rng: np.random.Generator):
    """Set every bias (a parameter whose name, after the last dot, starts with 'b') to N(0, 1) draws.

    Zero biases hide bias-gradient bugs and keep gates symmetric; the
    gradient tests draw them at random. Returns ``model``.
    """
    for name, p in model.params.items():
        if name.split(".")[-1].startswith("b"):
            p[...] = rng.normal(size=p.shape)
    return model


def collapse(path, blank=0):
    """CTC's many-to-one map, written independently of rnnbp: merge repeats, then drop blanks."""
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)
