"""Sampling from a trained sequence model: :func:`sample` feeds each drawn symbol back as the next input.

For language models over a vocabulary of ``V`` symbols whose outputs are
``V`` logits per step, reading either ids (the model starts with an
``rnnbp.Embedding``) or one-hot vectors of size ``V``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from .protocol import Layer, State

__all__ = ["sample"]


def sample(model: Layer, start: Any, steps: int, *, temperature: float = 1.0,
           rng: Any = None, state: State | None = None) -> np.ndarray:
    """Draw ``steps`` symbols from a model, one step at a time, carrying its state.

    The model first reads ``start`` (its state carried from step to step);
    then, ``steps`` times, a symbol is drawn from
    ``softmax(logits / temperature)`` of the last output and fed back as the
    next input. The model runs in evaluation mode (no dropout) and is put
    back in its former mode afterwards.

    Parameters
    ----------
    model : Layer
        Outputs ``(1, V)`` logits per step; reads ids ``(1,)`` when it
        ``takes_ids`` (an ``Embedding`` first), else one-hot vectors
        ``(1, V)`` (then ``model.input_size`` must be ``V``).
    start : sequence of int or 1-d int ndarray
        The ids to read first (at least one), each in ``[0, V)``.
    steps : int
        Symbols to draw, >= 1.
    temperature : float, default 1.0
        ``> 0``: divides the logits (below 1: likelier, more repetitive
        sequences; 1: the model's own distribution). ``0``: always the most
        likely symbol (greedy; ``rng`` is not used).
    rng : int or numpy.random.Generator, optional
        The draws' generator (an int seeds a new one); ``None``: an unseeded
        generator.
    state : state, optional
        The state to start from (zeros when omitted).

    Returns
    -------
    ndarray of int64, shape (steps,)
        The drawn ids (``start`` not included).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> V = 5
    >>> model = rnnbp.Sequential(rnnbp.Embedding(V, 4, seed=0), rnnbp.LSTM(4, 8, seed=1),
    ...                          rnnbp.Linear(8, V, seed=2))
    >>> ids = rnnbp.sample(model, [1, 2], 6, rng=0)
    >>> ids.shape, bool(((ids >= 0) & (ids < V)).all())
    ((6,), True)
    >>> bool((rnnbp.sample(model, [1, 2], 6, rng=0) == ids).all())   # same seed, same draws
    True
    """
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    steps = _checks.positive_int(steps, "steps")
    temperature = _checks.number(temperature, "temperature", low=0.0)
    start = np.asarray(start)
    if start.ndim != 1 or start.size == 0 or start.dtype.kind not in "iu":
        raise ValueError(f"start: expected a non-empty 1-d sequence of int ids, got shape {start.shape} "
                         f"dtype {start.dtype}")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(_checks.count(rng, "rng"))
    rng = _checks.generator(rng)
    dtype = model.dtype or np.float64
    V = None if model.takes_ids else model.input_size
    if V is not None and ((start < 0) | (start >= V)).any():
        raise ValueError(f"start: expected ids in [0, {V}) (the model reads one-hot vectors of size {V}), "
                         f"got {start.min()}..{start.max()}")

    def read(i: int, state: State):                      # an id, or its one-hot vector
        if model.takes_ids:
            x = np.array([i])
        else:
            x = np.zeros((1, V), dtype=dtype)
            x[0, i] = 1
        return model.forward(x, state)

    was = model.training
    model.eval()
    try:
        state = model.initial_state(1) if state is None else state
        for i in start:
            logits, state, _ = read(int(i), state)
        n = logits.shape[-1]
        if V is not None and n != V:
            raise ValueError(f"model: its outputs have {n} logits but it reads one-hot vectors of size {V}; "
                             f"a drawn symbol could not be fed back")
        drawn = np.empty(steps, dtype=np.int64)
        for k in range(steps):
            if temperature == 0:
                i = int(np.argmax(logits[0]))
            else:
                z = logits[0].astype(np.float64) / temperature
                p = np.exp(z - z.max())
                i = int(rng.choice(n, p=p / p.sum()))
            drawn[k] = i
            logits, state, _ = read(i, state)
    finally:
        model.train(was)
    return drawn
