"""Central-difference gradient checks through a layer step or a whole unrolled graph.

The analytic gradient comes from the hand-written backward passes (through
``rnnbp.unroll`` and ``TimeGraph.backward``, or through one ``forward``/
``backward`` step); the numeric one from central differences of the same
scalar loss, one element at a time, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import _checks
from .protocol import Layer, State, map_state
from .unroll import PATHS, unroll

__all__ = ["gradcheck", "GradcheckResult"]

LossFn = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`.

    Attributes
    ----------
    errors : dict[str, float]
        Worst relative error per checked array: every parameter by name,
        ``"xs"`` (or ``"x"``) and ``"state[i]"`` for each component of the
        flattened initial state. The relative error of an array is
        ``max|a - n| / max(max|a|, max|n|, 1e-8)`` for analytic ``a`` and
        numeric ``n``: the worst element's error relative to the gradient's
        scale (the floor keeps an all-zero gradient from dividing by zero).
    analytic, numeric : dict[str, ndarray]
        The two gradients, by the same names.
    """

    errors: dict[str, float]
    analytic: dict[str, np.ndarray] = field(repr=False)
    numeric: dict[str, np.ndarray] = field(repr=False)

    @property
    def worst(self) -> float:
        """The largest relative error over all checked arrays."""
        return max(self.errors.values(), default=0.0)

    def passed(self, tol: float = 1e-6) -> bool:
        """True when every relative error is below ``tol``."""
        return self.worst < tol

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=4)
        lines = [f"{'array':<{width}}  relative error"]
        lines += [f"{k:<{width}}  {v:.3e}" for k, v in self.errors.items()]
        lines.append(f"{'worst':<{width}}  {self.worst:.3e}")
        return "\n".join(lines)


def _relative_error(a: np.ndarray, n: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(n))), 1e-8)
    return float(np.max(np.abs(a - n))) / scale


def gradcheck(model: Layer, xs: np.ndarray, *, state: State | None = None,
              mask: np.ndarray | None = None, loss: LossFn | None = None,
              step: bool = False, eps: float = 1e-6, seed: int = 0,
              inputs: bool = True, path: str = "fast") -> GradcheckResult:
    """Compare a model's backward pass with central differences.

    Parameters
    ----------
    model : Layer
        A float64 model (``Dropout`` must be in evaluation mode: the check
        needs a deterministic forward pass).
    xs : ndarray
        ``(T, B, D)`` for a whole unrolled graph, or ``(B, D)`` with
        ``step=True`` for one ``forward``/``backward`` step.
    state : state, optional
        Initial state; zeros when omitted. Its gradient is checked too.
    mask : ndarray of bool, shape (T, B), optional
        Only with ``step=False``.
    loss : callable, optional
        ``loss(outputs) -> (value, doutputs)``. The default is
        ``sum(outputs * R) + sum_k sum(state_T[k] * R_k)`` with random
        normal ``R`` and ``R_k`` drawn from ``seed``: a random upstream
        gradient exposes transposition bugs that an all-ones one hides, and
        the final-state term checks the state path.
    step : bool, default False
        Check one step (``forward``/``backward``) instead of the sequence
        path through ``rnnbp.unroll``.
    path : {"fast", "step"}, default "fast"
        With ``step=False``, how ``rnnbp.unroll`` runs the layers (their
        sequence kernels, or their one-step methods step by step).
    eps : float, default 1e-6
        Central-difference step.
    seed : int, default 0
        Seed of the default loss's random projections.
    inputs : bool, default True
        Also check the gradient with respect to ``xs`` (not for integer ids)
        and the initial state.

    Returns
    -------
    GradcheckResult

    Notes
    -----
    The model's ``grads`` are left as they were. Cost: two forward passes
    per checked scalar, so keep sizes small.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> cell = rnnbp.LSTM(3, 4, seed=0)
    >>> xs = np.random.default_rng(1).normal(size=(5, 2, 3))
    >>> rnnbp.gradcheck(cell, xs).passed(1e-6)
    True
    """
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    if model.dtype not in (None, np.dtype(np.float64)):
        raise TypeError(f"model: gradcheck needs a float64 model, got {model.dtype}")
    if model.takes_ids:                                  # integer ids: not differentiable, not checked
        _checks.ids(xs, "xs", ndim=xs.ndim if step else 2)
    elif not isinstance(xs, np.ndarray) or xs.dtype != np.float64:
        raise TypeError(f"xs: expected a float64 numpy array, got "
                        f"{getattr(xs, 'dtype', type(xs).__name__)}")
    path = _checks.choice(path, "path", PATHS)
    if step and mask is not None:
        raise ValueError("mask: not supported with step=True (a mask is per sequence)")
    rng = np.random.default_rng(seed)
    B = xs.shape[1] if not step else xs.shape[0]
    if state is None:
        state = model.initial_state(B)
    state = model.unflatten_state([map_state(_float64_copy, s) for s in model.flatten_state(state)])

    run = _step_runner(model, mask) if step else _seq_runner(model, mask, path)
    # Random projections for the default loss, drawn once from the first run.
    ys0, sT0 = run(xs, state)
    R = rng.standard_normal(ys0.shape)
    Rs = [map_state(lambda a: rng.standard_normal(a.shape), s) for s in model.flatten_state(sT0)]
    if loss is None:
        def value_and_grads(ys, sT):
            v = float(np.sum(ys * R))
            for s, rs in zip(model.flatten_state(sT), Rs):
                v += sum(float(np.sum(a * r)) for a, r in zip(s, rs))
            return v, R, model.unflatten_state(list(Rs))
    else:
        def value_and_grads(ys, sT):
            v, dys = loss(ys)
            return float(v), dys, None

    def f(xs_: np.ndarray, state_: State) -> float:
        return value_and_grads(*run(xs_, state_))[0]

    f0 = f(xs, state)
    if not np.isfinite(f0):
        raise ValueError(f"model: the loss at the given point is not finite ({f0}); "
                         "gradients cannot be checked there")
    if f(xs, state) != f0:
        raise ValueError("model: the forward pass is not deterministic (put Dropout "
                         "in evaluation mode with model.eval())")

    # Analytic gradients, leaving the model's grads as they were.
    saved = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    try:
        if step:
            dxs, dstate0 = _step_backward(model, xs, state, value_and_grads)
        else:
            dxs, dstate0 = _seq_backward(model, xs, state, mask, path, value_and_grads)
        analytic = {k: g.copy() for k, g in model.grads.items()}
    finally:
        for k, g in model.grads.items():
            g[...] = saved[k]

    numeric: dict[str, np.ndarray] = {}
    for name, p in model.params.items():
        numeric[name] = _numeric(lambda: f(xs, state), p, eps)
    if inputs:
        if not model.takes_ids:
            xname = "x" if step else "xs"
            xs_c = xs.copy()
            numeric[xname] = _numeric(lambda: f(xs_c, state), xs_c, eps)
            analytic[xname] = dxs
        flat = [map_state(_float64_copy, s) for s in model.flatten_state(state)]
        state_c = model.unflatten_state(list(flat))
        dflat = [a for s in model.flatten_state(dstate0) for a in s]
        for k, a in enumerate(a for s in flat for a in s):
            numeric[f"state[{k}]"] = _numeric(lambda: f(xs, state_c), a, eps)
            analytic[f"state[{k}]"] = dflat[k]
    errors = {k: _relative_error(analytic[k], numeric[k]) for k in numeric}
    return GradcheckResult(errors, analytic, numeric)


def _float64_copy(a: np.ndarray) -> np.ndarray:
    return np.array(a, dtype=np.float64)


def _numeric(f: Callable[[], float], a: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of ``f`` with respect to every element of ``a`` (perturbed in place)."""
    g = np.zeros(a.shape, dtype=np.float64)
    flat = a.reshape(-1)  # a view: a is contiguous
    assert np.shares_memory(flat, a) or a.size == 0
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        g.flat[i] = (fp - fm) / (2 * eps)
    return g


def _seq_runner(model: Layer, mask: np.ndarray | None, path: str):
    def run(xs, state):
        graph = unroll(model, xs, state, mask, path=path)
        return graph.outputs, graph.final_state
    return run


def _step_runner(model: Layer, mask: Any):
    def run(x, state):
        y, s, _ = model.forward(x, state)
        return y, s
    return run


def _seq_backward(model, xs, state, mask, path, value_and_grads):
    graph = unroll(model, xs, state, mask, path=path)
    _, dys, dstate = value_and_grads(graph.outputs, graph.final_state)
    return graph.backward(dys, dstate)


def _step_backward(model, x, state, value_and_grads):
    y, s, cache = model.forward(x, state)
    _, dy, dstate = value_and_grads(y, s)
    if dstate is None:
        dstate = map_state(np.zeros_like, s)
    return model.backward(dy, dstate, cache)
