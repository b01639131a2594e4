r"""Monitors: how gradients travel back through time in a recorded graph.

A monitor reads what training already produced — a :class:`~rnnbp.TimeGraph`
or a :class:`~rnnbp.History` — and measures it; it never changes a model's
parameters or gradients. Plots (``rnnbp.plot``) draw what monitors return.

- :func:`state_jacobians` / :func:`jacobian_norms`: the Jacobian products
  :math:`\partial s_{T-1} / \partial s_t` of a recurrent layer's state, for
  every step ``t``, computed exactly by backward passes through the layer's
  own step ``backward`` (one batched walk, the cotangents being the unit
  vectors of the last state), and their spectral or Frobenius norms.
- :func:`vanishing_bound`: the analytic bound of Pascanu, Mikolov & Bengio
  (2013) for an Elman layer,

  .. math::

      \Big\lVert \frac{\partial h_{t+1}}{\partial h_t} \Big\rVert_2
      = \lVert \operatorname{diag}(f'(a_{t+1}))\, W_{hh}^\top \rVert_2
      \le \lambda_1 \gamma,
      \qquad
      \Big\lVert \frac{\partial h_{T-1}}{\partial h_t} \Big\rVert_2
      \le (\lambda_1 \gamma)^{T-1-t},

  with :math:`\lambda_1` the largest singular value of ``W_hh`` and
  :math:`\gamma = \sup |f'|` (1 for tanh and ReLU, 1/4 for the logistic
  sigmoid). When :math:`\lambda_1 \gamma < 1` the gradient of a loss at the
  last step vanishes at least geometrically into the past.
- :class:`GradientRecorder`: collects ``||dL/dh_t||``, the global gradient
  norm, clipping events and (optionally) exact Jacobian-product norms on a
  fixed probe batch during training — as a ``fit`` callback (one row per
  epoch) or, in a hand-written loop, one :meth:`GradientRecorder.record` call
  per update.

Time indexing follows ``TimeGraph.state_grad_norms``: index ``t`` (0-based)
is the state *after* step ``t``, i.e. ``graph.layer_states(name)[k][t + 1]``,
so ``norms[t]`` of a Jacobian product and ``state_grad_norms[name][t]`` refer
to the same state and the last index ``T - 1`` is the final state.
"""

# One module for one idea, measuring how gradients travel back through time; past ~450
# lines because the recorder's two ways of being fed (a fit callback, or one call per
# update) are documented with examples.

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import _checks, activations
from .clip import global_norm
from .protocol import Layer, state_like
from .unroll import TimeGraph, unroll

__all__ = ["state_jacobians", "jacobian_norms", "vanishing_bound", "ACTIVATION_GAMMA",
           "GradientRecorder"]

#: ``sup |f'|`` of each activation, the ``gamma`` of Pascanu et al. (2013) (from ``rnnbp.activations``).
ACTIVATION_GAMMA: dict[str, float] = {name: activations.gamma(name) for name in activations.NAMES}

_NORMS = ("spectral", "frobenius")


# -- Jacobian products ---------------------------------------------------------

def _leaf(graph: TimeGraph, layer_name: str) -> tuple[Layer, np.ndarray]:
    """The leaf layer called ``layer_name`` and the ``(T, B, D)`` inputs it saw."""
    if not isinstance(graph, TimeGraph):
        raise TypeError(f"graph: expected a rnnbp.TimeGraph (from rnnbp.unroll), got {type(graph).__name__}")
    if not isinstance(layer_name, str) or layer_name not in graph.layer_names:
        raise KeyError(f"layer_name: expected one of {graph.layer_names}, got {layer_name!r}")
    leaves = dict(graph.model.leaves())
    leaf = leaves[layer_name]
    if not leaf.state_sizes:
        recurrent = [n for n in graph.layer_names if leaves[n].state_sizes]
        raise ValueError(f"layer_name: expected a recurrent layer (one of {recurrent}), "
                         f"got the static layer {layer_name!r} ({type(leaf).__name__})")
    i = graph.layer_names.index(layer_name)
    xs = graph.inputs if i == 0 else graph.layer_outputs(graph.layer_names[i - 1])
    return leaf, xs


def _sequences(sequences: Any, B: int) -> np.ndarray:
    if sequences is None:
        return np.arange(B)
    idx = np.asarray(sequences)
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size == 0:
        raise TypeError(f"sequences: expected a non-empty 1-d array of integer indices, got {sequences!r}")
    if idx.min() < -B or idx.max() >= B:
        raise ValueError(f"sequences: expected indices in [-{B}, {B}), got {idx.min()}..{idx.max()}")
    return idx % B


def _walk(graph: TimeGraph, layer_name: str, sequences: Any) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(t, M_t)`` for ``t = T-1, ..., 0``; ``M_t`` is ``(B', K, K)``.

    ``M_t[b] = d s_{T-1} / d s_t`` for sequence ``b`` with the state components
    concatenated (``K = sum(state_sizes)``): row ``k`` is the gradient of the
    ``k``-th component of the last state. The walk runs the layer's step
    ``forward`` from each recorded state (to rebuild that step's cache) and its
    step ``backward`` with ``K * B'`` cotangent rows at once; the parameter
    gradients it adds are restored afterwards.
    """
    leaf, xs = _leaf(graph, layer_name)
    states = graph.layer_states(layer_name)              # each (T + 1, B, H_k)
    T, B = xs.shape[:2]
    idx = _sequences(sequences, B)
    sizes = leaf.state_sizes
    K, n = int(sum(sizes)), idx.size
    offsets = np.cumsum((0,) + tuple(sizes))
    dtype = states[0].dtype
    mask = None if graph.mask is None else graph.mask[:, idx]

    def tile(a: np.ndarray) -> np.ndarray:               # (n, .) -> (K * n, .), row k*n + b
        return np.broadcast_to(a, (K,) + a.shape).reshape(K * n, a.shape[-1])

    # Cotangent rows: row (k, b) is e_k for sequence b, split into the components.
    eye = np.eye(K, dtype=dtype)
    rows = np.repeat(eye, n, axis=0)                     # (K * n, K)
    dstate = tuple(np.ascontiguousarray(rows[:, offsets[j]:offsets[j + 1]]) for j in range(len(sizes)))
    saved = {k: g.copy() for k, g in leaf.grads.items()}
    template = leaf.initial_state(1)                     # its type: LSTMState for an LSTM
    try:
        def collect(ds: tuple) -> np.ndarray:
            M = np.concatenate(ds, axis=1).reshape(K, n, K)  # [k, b, :] = row k of M_t[b]
            return np.ascontiguousarray(M.transpose(1, 0, 2))

        yield T - 1, collect(dstate)
        dy = np.zeros((K * n, leaf.output_size), dtype=dtype)
        for t in range(T - 1, 0, -1):
            # Step t maps s_{t-1} (states[.][t]) and x_t to s_t (states[.][t + 1]).
            s_prev = tuple(tile(s[t][idx]) for s in states)
            _, _, cache = leaf.forward(tile(xs[t][idx]), state_like(template, s_prev))
            _, dprev = leaf.backward(dy, state_like(template, dstate), cache)
            if mask is not None and not mask[t].all():
                carried = np.tile(~mask[t], K)[:, None]      # masked: s_t = s_{t-1}
                dprev = tuple(np.where(carried, d, p) for d, p in zip(dstate, dprev))
            dstate = tuple(dprev)
            yield t - 1, collect(dstate)
    finally:
        for k, g in leaf.grads.items():
            g[...] = saved[k]


def state_jacobians(graph: TimeGraph, layer_name: str, *, sequences: Any = None) -> np.ndarray:
    r"""Jacobians of a recurrent layer's last state with respect to every earlier state.

    .. math::

        M_t = \frac{\partial s_{T-1}}{\partial s_t}
            = J_{T-1} J_{T-2} \cdots J_{t+1},
        \qquad J_u = \frac{\partial s_u}{\partial s_{u-1}},
        \qquad M_{T-1} = I,

    where ``s_t`` is the layer's state after step ``t`` with its components
    concatenated: ``h`` for Elman and GRU, ``(h, c)`` for an LSTM. Computed
    exactly (no finite differences) by walking the layer's step ``backward``
    from the states recorded in ``graph``. At steps where ``graph.mask`` is
    False the state is carried, so ``J_u = I`` there.

    Parameters
    ----------
    graph : TimeGraph
        From :func:`rnnbp.unroll`. Its gradients need not have been computed;
        the layer's ``grads`` are left as they were.
    layer_name : str
        A recurrent leaf of ``graph.layer_names`` (``""`` for a bare cell,
        ``"0"`` for the first layer of a ``Sequential``).
    sequences : array of int, optional
        Which sequences of the batch (default all).

    Returns
    -------
    ndarray, shape (T, B', K, K)
        ``M[t, b]`` for sequence ``b``, in the layer's dtype; ``K`` is
        ``sum(layer.state_sizes)``. Memory is ``T * B' * K**2``: use
        :func:`jacobian_norms` when only the norms are needed.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> cell = rnnbp.Elman(2, 3, seed=0)
    >>> graph = rnnbp.unroll(cell, np.random.default_rng(0).normal(size=(5, 4, 2)))
    >>> M = state_jacobians(graph, "")
    >>> M.shape
    (5, 4, 3, 3)
    >>> bool(np.allclose(M[-1], np.eye(3)))           # d h_{T-1} / d h_{T-1}
    True
    """
    out = None
    for t, M in _walk(graph, layer_name, sequences):
        if out is None:
            out = np.empty((t + 1,) + M.shape, dtype=M.dtype)
        out[t] = M
    return out


def jacobian_norms(graph: TimeGraph, layer_name: str, *, norm: str = "spectral",
                   sequences: Any = None) -> np.ndarray:
    r"""Norms of the Jacobian products :math:`\partial s_{T-1} / \partial s_t` for every step.

    ``norm="spectral"`` (the default) is the largest singular value, the
    operator norm in which the bound of Pascanu et al. (2013) holds (see
    :func:`vanishing_bound`); ``"frobenius"`` is the root sum of squares
    (:math:`\ge` the spectral norm, :math:`\le \sqrt{K}` times it). For a loss
    only at the last step, :math:`\lVert \partial L/\partial s_t \rVert \le
    \lVert M_t \rVert_2 \, \lVert \partial L / \partial s_{T-1} \rVert`.

    Parameters
    ----------
    graph : TimeGraph
    layer_name : str
        A recurrent leaf of ``graph.layer_names``.
    norm : {"spectral", "frobenius"}
    sequences : array of int, optional
        Which sequences of the batch (default all).

    Returns
    -------
    ndarray, shape (T, B'), float64
        ``norms[t, b] = ||M_t||`` for sequence ``b``; ``norms[T - 1] == 1``
        (spectral) or ``sqrt(K)`` (Frobenius). The state is the whole state,
        ``(h, c)`` for an LSTM (see :func:`state_jacobians`).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> cell = rnnbp.Elman(2, 8, seed=0)
    >>> cell.params["W_hh"] *= 0.5                   # orthogonal * 0.5: lambda_1 = 0.5
    >>> graph = rnnbp.unroll(cell, np.random.default_rng(0).normal(size=(20, 3, 2)))
    >>> norms = jacobian_norms(graph, "")
    >>> norms.shape
    (20, 3)
    >>> bool(np.all(norms <= vanishing_bound(cell, 20)[:, None] + 1e-12))
    True
    """
    if norm not in _NORMS:
        raise ValueError(f"norm: expected one of {_NORMS}, got {norm!r}")
    out = None
    for t, M in _walk(graph, layer_name, sequences):
        if out is None:
            out = np.empty((t + 1, M.shape[0]), dtype=np.float64)
        M = M.astype(np.float64, copy=False)
        if norm == "spectral":
            out[t] = np.linalg.svd(M, compute_uv=False)[:, 0]
        else:
            out[t] = np.sqrt(np.einsum("bij,bij->b", M, M))
    return out


def vanishing_bound(layer: Any, steps: int, *, gamma: float | None = None) -> np.ndarray:
    r"""Pascanu et al.'s (2013) upper bound on :math:`\lVert \partial h_{T-1}/\partial h_t \rVert_2`.

    For an Elman layer :math:`h_t = f(x_t W_{ih} + h_{t-1} W_{hh} + b)` one
    step's Jacobian is :math:`\operatorname{diag}(f'(a_t)) W_{hh}^\top`, so

    .. math::

        \Big\lVert \frac{\partial h_{T-1}}{\partial h_t} \Big\rVert_2
        \le \prod_{u=t+1}^{T-1} \lVert \operatorname{diag}(f'(a_u)) \rVert_2
            \lVert W_{hh}^\top \rVert_2
        \le (\lambda_1 \gamma)^{T-1-t}.

    If :math:`\lambda_1 \gamma < 1` the gradients vanish at least this fast
    (a sufficient condition); :math:`\lambda_1 \gamma > 1` is necessary for
    them to explode. For ReLU (:math:`\gamma = 1`) the bound is the power of
    :math:`\lambda_1` alone.

    Parameters
    ----------
    layer : Elman or ndarray
        An ``rnnbp.Elman`` (its ``W_hh`` and activation), or a recurrent
        weight matrix ``W_hh`` of shape (H, H) together with ``gamma``.
    steps : int
        T, the number of steps.
    gamma : float, optional
        :math:`\sup |f'|`; taken from the layer's activation when omitted
        (see ``ACTIVATION_GAMMA``). Required for a bare matrix.

    Returns
    -------
    ndarray, shape (T,), float64
        ``bound[t] = (lambda_1 * gamma) ** (T - 1 - t)``, indexed like
        :func:`jacobian_norms` (``bound[T - 1] == 1``).

    Examples
    --------
    >>> import numpy as np
    >>> vanishing_bound(0.5 * np.eye(3), 4, gamma=1.0)
    array([0.125, 0.25 , 0.5  , 1.   ])
    >>> float(vanishing_bound(np.eye(2), 3, gamma=0.25)[0])      # a sigmoid layer
    0.0625
    """
    steps = _checks.positive_int(steps, "steps")
    if _elman_type(layer):
        W = layer.params["W_hh"]
        if gamma is None:
            gamma = activations.gamma(layer.activation)
    elif isinstance(layer, np.ndarray):
        W = layer
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"layer: expected a square W_hh of shape (H, H), got shape {W.shape}")
        if gamma is None:
            raise TypeError("gamma: required with a bare matrix (sup |f'|: 1 for tanh and relu, "
                            "0.25 for sigmoid)")
    else:
        raise TypeError(f"layer: expected an rnnbp.Elman or a square ndarray W_hh, "
                        f"got {type(layer).__name__} (the bound is for Elman layers; "
                        f"measure LSTM and GRU with jacobian_norms)")
    gamma = _checks.positive_number(gamma, "gamma")
    lam1 = float(np.linalg.norm(W.astype(np.float64), 2))
    return (lam1 * float(gamma)) ** np.arange(steps - 1, -1, -1, dtype=np.float64)


def _elman_type(layer: Any) -> bool:
    """Whether ``layer`` is an Elman-type layer, ``h' = f(x W_ih + h W_hh + b)``: the bound's premise.

    Read from the protocol (a ``W_hh`` and a named activation), not from a
    cell class, so a user's Elman-type cell qualifies too.
    """
    return (isinstance(layer, Layer) and "W_hh" in layer.params
            and layer.params["W_hh"].shape == (layer.state_sizes or (0,))[0:1] * 2
            and getattr(layer, "activation", None) in activations.NAMES)


# -- recording during training ---------------------------------------------------

class GradientRecorder:
    """Collect ``||dL/dh_t||``, gradient norms, clipping events and Jacobian norms during training.

    Two ways to feed it:

    - as a ``fit`` callback, ``fit(..., callbacks=[recorder])``: after every
      epoch it takes that epoch's row of ``history.state_grad_norms`` (the
      mean over the epoch's batches), the global gradient norm and clipping
      flag of every update of the epoch, and, when a ``probe`` batch was
      given, measures the Jacobian norms on it;
    - in a hand-written loop, :meth:`record` once per update with the graph
      just walked back: one row per update.

    Parameters
    ----------
    model : Layer
        The model being trained (read, never modified).
    layer_name : str, default "0"
        A recurrent leaf of the model (``""`` for a bare cell).
    probe : ndarray, shape (T, B, D), optional
        A fixed batch on which :meth:`measure` (and the ``fit`` callback)
        computes ``jacobian_norms`` with the current weights.
    norm : {"spectral", "frobenius"}, default "spectral"
        The norm of the probe's Jacobian products.

    Attributes
    ----------
    state_grad_norms : ndarray, shape (rows, T)
        ``||dL/dh_t||``, one row per epoch (callback) or per update (record).
    grad_norm : ndarray, shape (updates,)
        Global gradient norm before clipping.
    clipped : ndarray of bool, shape (updates,)
    row_updates : ndarray of int, shape (rows,)
        How many updates had been made when each row was recorded.
    jacobian_norms : ndarray, shape (measurements, T, B)
        ``||d s_{T-1} / d s_t||`` on the probe, one per :meth:`measure`.
    bounds : ndarray, shape (measurements, T)
        :func:`vanishing_bound` at each measurement (Elman layers only;
        empty otherwise).
    measured_at : ndarray of int, shape (measurements,)
        Updates made before each measurement.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> rng = np.random.default_rng(0)
    >>> xs, ys = rng.normal(size=(12, 32, 1)), rng.normal(size=(32, 1))
    >>> model = rnnbp.Sequential(rnnbp.Elman(1, 8, seed=0), rnnbp.Linear(8, 1, seed=1))
    >>> rec = GradientRecorder(model, "0", probe=xs[:, :4])
    >>> rec.measure()                                  # before training
    >>> hist = rnnbp.fit(model, (xs, ys), loss=rnnbp.losses.mse, target="last",
    ...                  optimizer=rnnbp.optim.SGD(model, lr=0.1), epochs=3, batch_size=8,
    ...                  clip=0.05, callbacks=[rec], progress=False)
    >>> rec.state_grad_norms.shape, rec.grad_norm.shape, rec.jacobian_norms.shape
    ((3, 12), (12,), (4, 12, 4))
    >>> int(rec.clipped.sum()) == sum(hist.clipped)
    True
    """

    def __init__(self, model: Layer, layer_name: str = "0", *, probe: np.ndarray | None = None,
                 norm: str = "spectral") -> None:
        _checks.instance(model, Layer, "model", "a rnnbp.Layer")
        leaves = dict(model.leaves())
        if layer_name not in leaves:
            raise KeyError(f"layer_name: expected one of {list(leaves)}, got {layer_name!r}")
        if not leaves[layer_name].state_sizes:
            raise ValueError(f"layer_name: expected a recurrent layer, got the static layer "
                             f"{layer_name!r} ({type(leaves[layer_name]).__name__})")
        if probe is not None:
            _checks.array(probe, "probe", ndim=3, dtype=model.dtype or probe.dtype)
        if norm not in _NORMS:
            raise ValueError(f"norm: expected one of {_NORMS}, got {norm!r}")
        self.model, self.layer_name, self.probe, self.norm = model, layer_name, probe, norm
        self._rows: list[np.ndarray] = []
        self._row_updates: list[int] = []
        self._grad_norm: list[float] = []
        self._clipped: list[bool] = []
        self._jac: list[np.ndarray] = []
        self._bounds: list[np.ndarray] = []
        self._measured_at: list[int] = []
        self._seen_updates = 0                           # of history.grad_norm consumed

    # -- feeding ------------------------------------------------------------
    def record(self, graph: TimeGraph, *, grad_norm: float | None = None,
               clipped: bool | None = None) -> None:
        """Add one update's row: ``graph.state_grad_norms[layer_name]`` and its norms.

        Parameters
        ----------
        graph : TimeGraph
            Walked back (``graph.backward``) for this update.
        grad_norm : float, optional
            The global gradient norm before clipping (what
            ``rnnbp.clip_grad_norm`` returns); computed from the model's
            ``grads`` when omitted (call before clipping then).
        clipped : bool, optional
            Whether this update was clipped (default False).
        """
        if not isinstance(graph, TimeGraph):
            raise TypeError(f"graph: expected a rnnbp.TimeGraph, got {type(graph).__name__}")
        if self.layer_name not in graph.state_grad_norms:
            raise ValueError("graph: expected a graph walked back with graph.backward "
                             f"(no state_grad_norms for layer {self.layer_name!r})")
        if grad_norm is None:
            grad_norm = global_norm(self.model)
        self._grad_norm.append(float(grad_norm))
        self._clipped.append(bool(clipped))
        self._seen_updates += 1
        norms, _ = graph.running_state_grad_norms()[self.layer_name]   # over the sequences still running
        self._rows.append(np.array(norms, dtype=np.float64))
        self._row_updates.append(len(self._grad_norm))

    def __call__(self, epoch: int, history: Any) -> None:
        """The ``fit`` callback: take the epoch's records from ``history``, measure the probe."""
        new = slice(self._seen_updates, len(history.grad_norm))
        self._grad_norm.extend(float(v) for v in history.grad_norm[new])
        self._clipped.extend(bool(v) for v in history.clipped[new])
        self._seen_updates = len(history.grad_norm)
        rows = history.state_grad_norms.get(self.layer_name)
        if rows is not None and len(rows) > len(self._rows):
            self._rows.append(np.array(rows[-1], dtype=np.float64))
            self._row_updates.append(len(self._grad_norm))
        if self.probe is not None:
            self.measure()

    def measure(self) -> None:
        """Measure ``jacobian_norms`` (and the Elman bound) on the probe with the current weights."""
        if self.probe is None:
            raise ValueError("probe: measure() needs the probe batch given to GradientRecorder")
        was_training = self.model.training
        self.model.eval()
        try:
            graph = unroll(self.model, self.probe)
            self._jac.append(jacobian_norms(graph, self.layer_name, norm=self.norm))
        finally:
            self.model.train(was_training)
        leaf = dict(self.model.leaves())[self.layer_name]
        if _elman_type(leaf):
            self._bounds.append(vanishing_bound(leaf, self.probe.shape[0]))
        self._measured_at.append(len(self._grad_norm))

    # -- reading ------------------------------------------------------------
    @property
    def state_grad_norms(self) -> np.ndarray:
        """``||dL/dh_t||`` rows, shape (rows, T): one per epoch (callback) or update (record)."""
        return np.array(self._rows, dtype=np.float64).reshape(len(self._rows), -1)

    @property
    def grad_norm(self) -> np.ndarray:
        """Global gradient norm before clipping, shape (updates,)."""
        return np.array(self._grad_norm, dtype=np.float64)

    @property
    def clipped(self) -> np.ndarray:
        """Whether each update was clipped, shape (updates,), bool."""
        return np.array(self._clipped, dtype=bool)

    @property
    def row_updates(self) -> np.ndarray:
        """Updates made when each row was recorded, shape (rows,)."""
        return np.array(self._row_updates, dtype=np.int64)

    @property
    def jacobian_norms(self) -> np.ndarray:
        """Probe Jacobian-product norms, shape (measurements, T, B)."""
        if not self._jac:
            return np.empty((0, 0, 0))
        return np.stack(self._jac)

    @property
    def bounds(self) -> np.ndarray:
        """``vanishing_bound`` at each measurement, shape (measurements, T) (Elman only)."""
        if not self._bounds:
            return np.empty((0, 0))
        return np.stack(self._bounds)

    @property
    def measured_at(self) -> np.ndarray:
        """Updates made before each measurement, shape (measurements,)."""
        return np.array(self._measured_at, dtype=np.int64)
