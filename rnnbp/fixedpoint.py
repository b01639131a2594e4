"""Settling recurrent networks and recurrent backprop (Almeida 1987, Pineda 1987).

A :class:`FixedPoint` layer runs ``h <- (1 - alpha) h + alpha f(x W_ih + h W_hh + b)``
from ``h = 0`` until the state settles, and outputs the fixed point

    h* = f(x W_ih + h* W_hh + b)                                     (forward)

For a loss with ``g = dL/dh*`` the implicit function theorem gives every
gradient from the solution ``z`` of a second, linear fixed point (rows are
batch elements, ``f' = f'(a*)``, ``a* = x W_ih + h* W_hh + b``):

    z = g + (z * f') W_hh^T                                          (adjoint)
    da = z * f',  dW_ih = x^T da,  dW_hh = h*^T da,  db = sum da,  dx = da W_ih^T

``method`` chooses how the adjoint (or the gradient) is found:

- ``"rbp"``: Almeida–Pineda, the damped adjoint iteration to ``backward_tol``;
- ``"neumann"``: Liao et al. (2018), the first ``neumann_terms`` terms of
  ``z = sum_k g (J^T)^k``: an approximation by design (no error; its
  residual is in the trace);
- ``"gmres"``, ``"bicgstab"``: scipy Krylov solves of ``(I - J^T) z = g``
  with a matrix-free ``LinearOperator``; ``"cg"``: CG on the normal
  equations (Liao's CG-RBP; the system is not symmetric);
- ``"bptt"``: backprop through every settling iteration, re-run through
  :func:`rnnbp.unroll` as an Elman-like cell with the drive
  ``x W_ih + b`` held constant; ``"tbptt"``: through the last ``truncate``.

No convergence within the cap raises :class:`ConvergenceError` with the
residual and the iteration count; the exact methods never return a gradient
computed at an unsettled state. See ``docs/recurrent_backprop.md``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from . import activations
from . import init as _init
from ._checks import as_dtype, generator, number, positive_int, positive_number
from .errors import ConvergenceError
from .protocol import Layer, StaticLayer, State
from .unroll import unroll

__all__ = ["FixedPoint", "ConvergenceError", "Settle", "METHODS", "ACTIVATIONS"]

#: Backward methods of :class:`FixedPoint`.
METHODS = ("rbp", "neumann", "gmres", "bicgstab", "cg", "bptt", "tbptt")
#: Activations of :class:`FixedPoint`, each with ``sup |f'|`` (which enters the
#: contraction condition); read from ``rnnbp.activations``.
ACTIVATIONS = MappingProxyType({name: activations.gamma(name) for name in activations.NAMES})


@dataclass(frozen=True)
class Settle:
    """One entry of ``FixedPoint.trace``: how a forward or backward pass went.

    Attributes
    ----------
    phase : {"forward", "backward"}
    method : str -- ``"settle"`` for the forward pass, else the backward method.
    iterations : int -- iterations (Krylov: matrix-vector products; BPTT: steps walked).
    residual : float -- final residual (``nan`` where none is defined, e.g. BPTT).
    residuals : ndarray or None -- forward only: the residual after every iteration.
    """

    phase: str
    method: str
    iterations: int
    residual: float
    residuals: np.ndarray | None = field(default=None, repr=False)


class FixedPoint(StaticLayer):
    """A settling recurrent layer: ``x (..., D) -> h* (..., H)``, the fixed point of
    ``h = f(x W_ih + h W_hh + b)``, found by damped iteration from ``h = 0``.

    Parameters
    ----------
    input_size, hidden_size : int
        D and H.
    activation : {"tanh", "sigmoid", "relu"}, default "tanh"
    damping : float in (0, 1], default 1.0
        ``alpha`` of ``h <- (1 - alpha) h + alpha f(...)``; it leaves the fixed
        point unchanged and can make a non-contracting map converge.
    tol : float, optional
        Forward tolerance on the residual ``max|f(a(h)) - h| / max(1, max|h|)``;
        default ``sqrt(eps)`` of the dtype (1.5e-8 in float64).
    max_iter : int, default 500
        Forward iteration cap: beyond it :class:`ConvergenceError`.
    steps : int, optional
        Run exactly this many iterations instead (no tolerance, no error):
        a K-step settling network. BPTT is then exact for it; the RBP methods
        still demand a residual within ``tol``.
    method : str, default "rbp"
        Backward method, one of :data:`METHODS` (see the module docstring).
    backward_tol : float, optional
        Tolerance on the adjoint's relative residual
        ``max|g + (z f') W_hh^T - z| / max|g|``; default ``tol``.
    backward_max_iter : int, default 1000
        Adjoint iteration cap (Krylov: matrix-vector products).
    neumann_terms : int, default 20
    truncate : int, default 20
        Iterations walked back by ``"tbptt"``.
    recurrent_gain : float, default 0.5
        ``W_hh`` is initialised as ``init_hh`` times this gain; with an
        orthogonal ``W_hh`` it is the spectral norm, so below ``1 / max f'``
        the map starts as a contraction.
    dtype, seed, rng, init_ih, init_hh
        As for :class:`rnnbp.Elman`.

    Attributes
    ----------
    params : dict
        ``W_ih`` (D, H), ``W_hh`` (H, H), ``b`` (H,), the Elman layout.
    trace : list[Settle] or None
        Set it to a list and every forward and backward pass appends a
        :class:`Settle` record (the only thing ``forward`` ever writes).

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> layer = FixedPoint(3, 4, tol=1e-12, seed=0)
    >>> layer.trace = []
    >>> x = np.random.default_rng(0).normal(size=(5, 3))
    >>> h, _, cache = layer.forward(x)
    >>> a = x @ layer.params["W_ih"] + h @ layer.params["W_hh"] + layer.params["b"]
    >>> bool(np.abs(np.tanh(a) - h).max() < 1e-11)
    True
    >>> dx, _ = layer.backward(np.ones_like(h), (), cache)
    >>> [(s.phase, s.method) for s in layer.trace]
    [('forward', 'settle'), ('backward', 'rbp')]
    >>> model = rnnbp.Sequential(layer, rnnbp.Linear(4, 2, seed=1))   # a readout on top
    >>> rnnbp.unroll(model, x[None]).outputs.shape
    (1, 5, 2)
    """

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh", *,
                 damping: float = 1.0, tol: float | None = None, max_iter: int = 500,
                 steps: int | None = None, method: str = "rbp", backward_tol: float | None = None,
                 backward_max_iter: int = 1000, neumann_terms: int = 20, truncate: int = 20,
                 recurrent_gain: float = 0.5, dtype: Any = np.float64, seed: int | None = None,
                 rng: np.random.Generator | None = None, init_ih: str = "glorot_uniform",
                 init_hh: str = "orthogonal") -> None:
        super().__init__(as_dtype(dtype))
        self.input_size = positive_int(input_size, "input_size")
        self.hidden_size = self.output_size = positive_int(hidden_size, "hidden_size")
        self.activation = activations.check(activation)
        eps_tol = float(np.sqrt(np.finfo(self.dtype).eps))
        self.damping = number(damping, "damping", low=0.0, high=1.0, low_open=True)
        self.tol = eps_tol if tol is None else number(tol, "tol", low=0.0)
        self.max_iter = positive_int(max_iter, "max_iter")
        self.steps = None if steps is None else positive_int(steps, "steps")
        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        self.method = method
        self.backward_tol = self.tol if backward_tol is None else positive_number(backward_tol, "backward_tol")
        self.backward_max_iter = positive_int(backward_max_iter, "backward_max_iter")
        self.neumann_terms = positive_int(neumann_terms, "neumann_terms")
        self.truncate = positive_int(truncate, "truncate")
        self.recurrent_gain = number(recurrent_gain, "recurrent_gain", low=0.0)
        self.init_ih = _init.check_name(init_ih, "init_ih")
        self.init_hh = _init.check_name(init_hh, "init_hh")
        rng = generator(rng, seed)
        D, H = self.input_size, self.hidden_size
        self._add_param("W_ih", _init.by_name(init_ih, (D, H), rng, self.dtype))
        self._add_param("W_hh", _init.by_name(init_hh, (H, H), rng, self.dtype) * self.recurrent_gain)
        self._add_param("b", np.zeros(H, dtype=self.dtype))
        self.trace: list[Settle] | None = None

    # -- forward: settle --------------------------------------------------------
    def forward(self, x: np.ndarray, state: State = ()) -> tuple[np.ndarray, State, Any]:
        """Settle: ``x (..., D) -> h* (..., H)``; raises :class:`ConvergenceError` past ``max_iter``."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected shape (..., {self.input_size}), got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype}, got {x.dtype} "
                            f"(convert once with x.astype(np.{self.dtype.name}))")
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        p = self.params
        x2 = x.reshape(-1, self.input_size)
        c = x2 @ p["W_ih"]
        c += p["b"]                                      # c = x W_ih + b, held constant
        # tbptt needs the iterate `truncate` steps before the end; the others keep nothing
        window = collections.deque(maxlen=self.truncate + 1) if self.method == "tbptt" else None
        with np.errstate(over="ignore", invalid="ignore"):   # divergence is reported below
            h, k, r, residuals = self._settle(c, window)
        if self.trace is not None:
            self.trace.append(Settle("forward", "settle", k, r, residuals))
        if self.steps is None and not r <= self.tol:
            raise self._not_settled(r, k)
        return h.reshape(x.shape[:-1] + (self.hidden_size,)), (), _Cache(x2, c, h, k, r, window, x.shape)

    def _settle(self, c: np.ndarray, window: Any) -> tuple[np.ndarray, int, float, np.ndarray]:
        """Iterate ``h <- (1-alpha) h + alpha f(c + h W_hh)`` from 0: ``(h, iterations, residual, residuals)``."""
        W_hh, alpha = self.params["W_hh"], self.dtype.type(self.damping)
        h = np.zeros_like(c)
        if window is not None:
            window.append(h)
        cap = self.steps or self.max_iter
        residuals, k, r = np.empty(cap), 0, np.inf
        while k < cap:
            y = activations.apply(self.activation, h @ W_hh + c)     # y = f(c + h W_hh)
            r = float(np.max(np.abs(y - h), initial=0.0)) / max(1.0, float(np.max(np.abs(h), initial=0.0)))
            h = y if self.damping == 1.0 else (1 - alpha) * h + alpha * y
            residuals[k], k = r, k + 1
            if window is not None:
                window.append(h)
            if not np.isfinite(r) or (self.steps is None and r <= self.tol):
                break
        return h, k, r, residuals[:k]

    def _not_settled(self, r: float, k: int) -> ConvergenceError:
        norm = float(np.linalg.norm(self.params["W_hh"], 2))
        what = "diverged" if not np.isfinite(r) else f"residual {r:.3e} > tol={self.tol:.1e}"
        return ConvergenceError(
            f"FixedPoint forward: no fixed point after {k} iterations ({what}); "
            f"||W_hh||_2 * max f' = {norm * ACTIVATIONS[self.activation]:.3f} "
            f"(< 1 guarantees a contraction): lower W_hh (clip_recurrent_norm), "
            f"lower damping or raise max_iter={self.max_iter}",
            phase="forward", method="settle", residual=r, iterations=k, tol=self.tol)

    # -- backward --------------------------------------------------------------
    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """``dy (..., H) -> dx (..., D)``; adds ``dW_ih``, ``dW_hh``, ``db`` into ``grads``."""
        if not isinstance(dy, np.ndarray) or dy.dtype != self.dtype:
            raise TypeError(f"dy: expected a {self.dtype} numpy array, got {getattr(dy, 'dtype', type(dy).__name__)}")
        want = cache.shape[:-1] + (self.hidden_size,)
        if dy.shape != want:
            raise ValueError(f"dy: expected shape {want}, got {dy.shape}")
        method = self.method
        if method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
        p, gr = self.params, self.grads
        g = dy.reshape(-1, self.hidden_size)
        if method in ("bptt", "tbptt"):
            dc, r = self._bptt(g, cache, method), np.nan
            iters = cache.iterations if method == "bptt" else len(cache.window) - 1
        else:
            if not cache.residual <= self.tol:
                raise ConvergenceError(
                    f"FixedPoint backward ({method}): the forward state is not a fixed point "
                    f"(residual {cache.residual:.3e} > tol={self.tol:.1e} after {cache.iterations} "
                    f"steps), so the implicit gradient would be wrong; use method='bptt' or more steps",
                    phase="forward", method="settle", residual=cache.residual,
                    iterations=cache.iterations, tol=self.tol)
            h = cache.h
            a = h @ p["W_hh"] + cache.c                                             # a* = h* W_hh + c
            fp = activations.derivative(self.activation, activations.apply(self.activation, a))  # f'(a*)
            z, iters, r = self._adjoint(g, fp, method)
            dc = z * fp                                  # h* = f(a*)
            gr["W_hh"] += h.T @ dc                       # a* = c + h* W_hh
        gr["W_ih"] += cache.x.T @ dc                     # c = x W_ih + b
        gr["b"] += dc.sum(axis=0)                        # c = x W_ih + b
        dx = dc @ p["W_ih"].T                            # c = x W_ih + b
        if self.trace is not None:
            self.trace.append(Settle("backward", method, iters, r))
        return dx.reshape(cache.shape), ()

    def _adjoint(self, g: np.ndarray, fp: np.ndarray, method: str) -> tuple[np.ndarray, int, float]:
        """Solve ``z = g + (z f') W_hh^T``: returns ``(z, iterations, residual)``."""
        W_hh_T = np.ascontiguousarray(self.params["W_hh"].T)
        alpha, tol, cap = self.dtype.type(self.damping), self.backward_tol, self.backward_max_iter
        scale = float(np.max(np.abs(g), initial=0.0))
        if scale == 0.0:
            return np.zeros_like(g), 0, 0.0

        def residual(z: np.ndarray) -> float:
            return float(np.max(np.abs(g + (z * fp) @ W_hh_T - z))) / scale

        # neumann: z = alpha sum_k g (J^T)^k, J = (1-alpha) I + alpha diag(f') W_hh^T
        if method == "neumann":
            v = alpha * g
            z = v.copy()
            for _ in range(self.neumann_terms - 1):
                v = (1 - alpha) * v + alpha * ((v * fp) @ W_hh_T)
                z += v
            return z, self.neumann_terms, residual(z)
        if method == "rbp":                              # z <- (1-alpha) z + alpha (g + (z f') W_hh^T)
            z, r, k = g.copy(), np.inf, 0
            while k < cap:
                u = g + (z * fp) @ W_hh_T
                r = float(np.max(np.abs(u - z))) / scale  # residual of the current z
                z = u if self.damping == 1.0 else (1 - alpha) * z + alpha * u
                k += 1
                if not np.isfinite(r) or r <= tol:
                    break
            if not r <= tol:
                raise self._adjoint_failed(method, r, k)
            return z, k, r
        return self._krylov(g, fp, W_hh_T, method, residual)

    def _krylov(self, g, fp, W_hh_T, method, residual) -> tuple[np.ndarray, int, float]:
        from scipy.sparse import linalg as sla

        shape, n, count = g.shape, g.size, [0]

        def A(v):                                        # (I - J^T) z = z - (z f') W_hh^T
            count[0] += 1
            z = v.reshape(shape)
            return (z - (z * fp) @ W_hh_T).ravel()

        def AT(v):                                       # (I - J) z = z - (z W_hh) f'
            count[0] += 1
            z = v.reshape(shape)
            return (z - (z @ W_hh_T.T) * fp).ravel()

        tol, cap, rhs = self.backward_tol, self.backward_max_iter, g.ravel()
        kw = dict(x0=rhs.copy(), rtol=tol, atol=0.0)
        if method == "gmres":                            # cap counts inner iterations
            restart = min(30, n, cap)
            sol, info = sla.gmres(sla.LinearOperator((n, n), matvec=A, dtype=self.dtype), rhs,
                                  restart=restart, maxiter=-(-cap // restart), **kw)
        elif method == "bicgstab":
            sol, info = sla.bicgstab(sla.LinearOperator((n, n), matvec=A, dtype=self.dtype), rhs, maxiter=cap, **kw)
        else:                                            # CG on the normal equations A^T A z = A^T g
            normal = sla.LinearOperator((n, n), matvec=lambda v: AT(A(v)), dtype=self.dtype)
            sol, info = sla.cg(normal, AT(rhs), maxiter=cap, **kw)
        z = np.asarray(sol, dtype=self.dtype).reshape(shape)
        r = residual(z)
        if info != 0 or not np.isfinite(r):
            raise self._adjoint_failed(method, r, count[0], info)
        return z, count[0], r

    def _adjoint_failed(self, method: str, r: float, k: int, info: int | None = None) -> ConvergenceError:
        extra = "" if info is None else f", scipy info={info}"
        return ConvergenceError(
            f"FixedPoint backward ({method}): the adjoint z = g + (z f') W_hh^T did not converge "
            f"after {k} iterations (relative residual {r:.3e} > backward_tol={self.backward_tol:.1e}"
            f"{extra}); raise backward_max_iter or make W_hh contracting",
            phase="backward", method=method, residual=r, iterations=k, tol=self.backward_tol)

    def _bptt(self, g: np.ndarray, cache: "_Cache", method: str) -> np.ndarray:
        """BPTT through the settling, re-run through ``rnnbp.unroll``; returns ``dc``."""
        if method == "bptt":
            h0, m = np.zeros_like(cache.h), cache.iterations
        elif cache.window is None:
            raise ValueError("method: 'tbptt' must be set before the forward pass (it keeps the "
                             "last iterates), got a cache from a forward pass with another method")
        else:
            h0, m = cache.window[0], len(cache.window) - 1
        cell = _SettlingCell(self)
        cs = np.broadcast_to(cache.c, (m,) + cache.c.shape)  # the input held constant
        graph = unroll(cell, cs, state=(h0,))
        dcs, _ = graph.backward(np.zeros_like(graph.outputs), (g,))  # loss on h_m only
        return dcs.sum(axis=0)                           # c_t = c for every t

    # -- helpers ------------------------------------------------------------
    def clip_recurrent_norm(self, max_norm: float) -> float:
        """Scale ``W_hh`` in place so that ``||W_hh||_2 <= max_norm``; return the norm before.

        With ``max_norm * max f' < 1`` the undamped map is a contraction for
        every input, so the forward and adjoint iterations converge.

        Examples
        --------
        >>> layer = FixedPoint(2, 3, recurrent_gain=2.0, seed=0)
        >>> round(layer.clip_recurrent_norm(0.9), 6), round(float(np.linalg.norm(layer.params["W_hh"], 2)), 6)
        (2.0, 0.9)
        """
        max_norm = positive_number(max_norm, "max_norm")
        W = self.params["W_hh"]
        norm = float(np.linalg.norm(W, 2))
        if norm > max_norm:
            W *= self.dtype.type(max_norm / norm)
        return norm

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments: ``FixedPoint(**config)`` rebuilds it."""
        names = ("input_size", "hidden_size", "activation", "damping", "tol", "max_iter", "steps",
                 "method", "backward_tol", "backward_max_iter", "neumann_terms", "truncate",
                 "recurrent_gain", "init_ih", "init_hh")
        return {**{k: getattr(self, k) for k in names}, "dtype": self.dtype.name}


class _Cache:
    """What ``FixedPoint.backward`` needs: inputs ``x (N, D)``, drive ``c (N, H)``,
    state ``h (N, H)``, iterations, last residual, the last ``truncate + 1`` iterates."""

    __slots__ = ("x", "c", "h", "iterations", "residual", "window", "shape")

    def __init__(self, x, c, h, iterations, residual, window, shape) -> None:
        self.x, self.c, self.h, self.iterations = x, c, h, iterations
        self.residual, self.window, self.shape = residual, window, shape


class _SettlingCell(Layer):
    """One settling iteration as an Elman-like cell on the drive ``c = x W_ih + b``:
    ``h' = (1 - alpha) h + alpha f(c + h W_hh)``. Shares ``W_hh`` and its gradient
    with the :class:`FixedPoint` it comes from."""

    output_is_hidden = True

    def __init__(self, parent: FixedPoint) -> None:
        super().__init__(parent.dtype)
        H = parent.hidden_size
        self.input_size = self.output_size = H
        self.state_sizes = (H,)
        self.activation, self.alpha = parent.activation, parent.dtype.type(parent.damping)
        self.params = {"W_hh": parent.params["W_hh"]}
        self.grads = {"W_hh": parent.grads["W_hh"]}

    def forward(self, c, state):
        (h,) = state
        y = activations.apply(self.activation, h @ self.params["W_hh"] + c)      # y = f(c + h W_hh)
        h_next = y if self.alpha == 1 else (1 - self.alpha) * h + self.alpha * y
        return h_next, (h_next,), (h, y)

    def backward(self, dy, dstate_next, cache):
        h, y = cache
        dh_next = dstate_next[0] + dy                    # output = h'
        da = (self.alpha * dh_next) * activations.derivative(self.activation, y)  # h' = (1-alpha) h + alpha f(a)
        self.grads["W_hh"] += h.T @ da                   # a = c + h W_hh
        dh = da @ self.params["W_hh"].T                  # a = c + h W_hh
        if self.alpha != 1:
            dh += (1 - self.alpha) * dh_next             # h' = (1-alpha) h + ...
        return da, (dh,)                                 # a = c + h W_hh: dc = da
