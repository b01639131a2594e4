"""The line readers: a time-delay MLP over a window of steps, and (bidirectional) recurrent nets.

Every model maps each step's features to scores over ``NUM_CLASSES`` (the
alphabet and the CTC blank, class 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rnnbp

from ..data.lines import NUM_CLASSES

__all__ = ["build_model"]


def build_model(spec: dict[str, Any], input_size: int, dtype: np.dtype, seed: int) -> rnnbp.Sequential:
    """The model of ``spec`` over ``input_size`` features (already windowed for the MLP).

    ``spec["kind"]`` is ``"mlp"`` (``Linear -> ReLU -> Linear`` applied at
    every step), ``"lstm"``, ``"gru"`` (one direction) or ``"bilstm"``
    (``spec.get("layers", 1)`` stacked ``rnnbp.Bidirectional`` LSTMs);
    ``spec["hidden"]`` units (per direction).
    """
    H, C = spec["hidden"], NUM_CLASSES
    if spec["kind"] == "mlp":
        return rnnbp.Sequential(rnnbp.Linear(input_size, H, seed=seed, dtype=dtype), rnnbp.ReLU(),
                                rnnbp.Linear(H, C, seed=seed + 1, dtype=dtype))
    if spec["kind"] == "bilstm":
        # ``layers`` stacked bidirectional LSTMs, each reading the previous one's two directions
        # (the first layer's seeds are those of the one-layer model)
        stack, D = [], input_size
        for layer in range(spec.get("layers", 1)):
            s = seed + 10 * layer
            stack.append(rnnbp.Bidirectional(rnnbp.LSTM(D, H, seed=s, dtype=dtype), seed=s + 2))
            D = 2 * H
        return rnnbp.Sequential(*stack, rnnbp.Linear(D, C, seed=seed + 1, dtype=dtype))
    cell = {"lstm": rnnbp.LSTM, "gru": rnnbp.GRU}[spec["kind"]](input_size, H, seed=seed, dtype=dtype)
    return rnnbp.Sequential(cell, rnnbp.Linear(H, C, seed=seed + 1, dtype=dtype))


