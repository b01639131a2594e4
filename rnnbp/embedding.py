"""``Embedding``: integer ids in, learned vectors out (the input layer of text models).

A lookup ``y = W[x]`` is a ``Linear`` layer applied to a one-hot input
``onehot(x) @ W``, without building the one-hot array: the forward pass is
one fancy-indexing gather, and the backward pass scatters ``dy`` into the
rows of ``W`` that were read (``np.add.at``, which adds repeated ids).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _checks
from .protocol import StaticLayer, State

__all__ = ["Embedding"]


class Embedding(StaticLayer):
    """Map integer ids to learned vectors: ``y = W[x]``, ``(T, B)`` ids to ``(T, B, dim)``.

    Matches ``torch.nn.Embedding``: ``W`` is its ``weight``, initialised from
    the standard normal distribution, and the row ``padding_idx`` starts at
    zero and never receives a gradient.

    Parameters
    ----------
    num_embeddings : int
        V, the number of ids (ids run from 0 to V - 1).
    embedding_dim : int
        The size of each vector (the layer's ``output_size``).
    padding_idx : int, optional
        An id whose vector stays zero (padding); negative values count from V.
    dtype : {float64, float32}, default float64
    seed : int, optional
        Seed for the initialiser (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional

    Attributes
    ----------
    params : {"W": (V, dim)}
    takes_ids : True
        The input is an integer array of ids, ``(T, B)`` for a sequence and
        ``(B,)`` for a step, not features; ``rnnbp.unroll`` and ``rnnbp.fit``
        accept integer ``xs`` for a model that starts with this layer. The
        gradient with respect to the ids is zero (ids are not differentiable).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> emb = rnnbp.Embedding(10, 4, padding_idx=0, seed=0)
    >>> ids = np.array([[1, 0], [3, 3]])               # (T, B)
    >>> graph = rnnbp.unroll(emb, ids)
    >>> graph.outputs.shape, bool((graph.outputs[0, 1] == 0).all())
    ((2, 2, 4), True)
    """

    takes_ids = True

    def __init__(self, num_embeddings: int, embedding_dim: int, *, padding_idx: int | None = None,
                 dtype: Any = np.float64, seed: int | None = None,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(dtype)
        self.num_embeddings = _checks.positive_int(num_embeddings, "num_embeddings")
        self.output_size = _checks.positive_int(embedding_dim, "embedding_dim")
        V = self.num_embeddings
        if padding_idx is not None:
            if not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool) \
                    or not -V <= padding_idx < V:
                raise ValueError(f"padding_idx: expected None or an int in [-{V}, {V}), got {padding_idx!r}")
            padding_idx = int(padding_idx) % V
        self.padding_idx = padding_idx
        W = _checks.generator(rng, seed).standard_normal((V, self.output_size))
        if padding_idx is not None:
            W[padding_idx] = 0
        self._add_param("W", W)

    def _check_ids(self, x: Any, name: str) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{name}: expected an integer numpy array of ids, got {got}")
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            bad = tuple(int(i) for i in np.argwhere((x < 0) | (x >= self.num_embeddings))[0])
            raise ValueError(f"{name}: expected ids in [0, {self.num_embeddings}), got {x[bad]} at index {bad}")
        return x

    def forward(self, x: np.ndarray, state: State = ()) -> tuple[np.ndarray, State, Any]:
        """``x (...) ids -> y (..., dim)``; the cache is ``x``."""
        self._check_ids(x, "x")
        return self.params["W"][x], (), x                          # y = W[x]

    def backward(self, dy: np.ndarray, dstate_next: State, cache: np.ndarray) -> tuple[np.ndarray, State]:
        """``dy (..., dim) -> dx`` (zeros: ids have no gradient); adds ``dW`` into ``grads``."""
        x = cache
        _checks.output_grad(dy, x.shape + (self.output_size,), self.dtype)
        rows, dy_rows = x.reshape(-1), dy.reshape(-1, self.output_size)
        if self.padding_idx is not None:                           # the padding vector stays zero
            keep = rows != self.padding_idx
            rows, dy_rows = rows[keep], dy_rows[keep]
        np.add.at(self.grads["W"], rows, dy_rows)                  # y = W[x]: dW[x] += dy
        return np.zeros(x.shape, dtype=self.dtype), ()

    def get_config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.output_size,
                "padding_idx": self.padding_idx, "dtype": self.dtype.name}
