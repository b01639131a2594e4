"""Optimizers: update a model's parameters in place from its gradients.

An optimizer updates a model's ``params`` in place from its ``grads``::

    opt = Adam(model, lr=1e-3)
    for epoch in range(n_epochs):
        opt.zero_grad()
        ...                    # forward, loss, backward fill model.grads
        opt.step()

The first argument is a :class:`rnnbp.Layer` (its ``params``/``grads`` dicts,
the very same arrays) or a pair of dicts ``(params, grads)``. ``step()``
never rebinds a parameter (a ``Sequential`` shares its children's arrays)
and never modifies a gradient. Optimizer state (momentum buffers, moment
estimates) lives in the optimizer, keyed by parameter name. All arithmetic
runs in each parameter's own dtype: float32 parameters stay float32.

The update formulas are PyTorch's (``torch.optim``) exactly, so a float64
trajectory matches PyTorch's to rounding. ``weight_decay`` is the classic
L2 penalty against overfitting, added to the gradient as ``torch.optim``
does: the update uses ``g + weight_decay * p`` in place of ``g`` (for Adam
this is L2 regularisation, not AdamW's decoupled decay).

Learning-rate schedules, which set ``optimizer.lr`` once per epoch, are in
:mod:`rnnbp.schedules` (``StepLR``, ``ExponentialLR``, ``CosineLR``).

Every optimizer's full state (hyper-parameters, ``lr``, step count, buffers)
round-trips through ``state_dict``/``load_state_dict`` as plain numbers and
arrays, which is how ``rnnbp.fit(checkpoint=...)`` saves it without pickle.
"""

# One module for one idea, the update rules: four optimizers whose formulas and PyTorch
# correspondence are documented in full take ~460 lines.

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _versions
from ._checks import FLOAT_DTYPES, count, flag, number, positive_number
from .protocol import Layer

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad"]

#: Names that moved to :mod:`rnnbp.schedules` in 0.1.0 (with a warning here
#: for that release); since 0.2.0 the error says where they are.
_MOVED_TO_SCHEDULES = ("StepLR", "ExponentialLR", "CosineLR")


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_SCHEDULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}: the schedules live in "
                             f"rnnbp.schedules (from rnnbp.schedules import {name})")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _resolve(model_or_params: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return ``(params, grads)`` from a ``Layer`` or a ``(params, grads)`` pair, checked."""
    if isinstance(model_or_params, Layer):
        params, grads = model_or_params.params, model_or_params.grads
    elif (isinstance(model_or_params, (tuple, list)) and len(model_or_params) == 2
          and all(isinstance(d, Mapping) for d in model_or_params)):
        params, grads = model_or_params
    else:
        raise TypeError("model_or_params: expected a Layer or a pair of dicts (params, grads), "
                        f"got {type(model_or_params).__name__}")
    if not params:
        raise ValueError("model_or_params: expected at least one parameter, got none")
    if set(params) != set(grads):
        raise ValueError(f"model_or_params: params and grads must have the same keys; "
                         f"missing grads {sorted(set(params) - set(grads))}, "
                         f"extra grads {sorted(set(grads) - set(params))}")
    for name, p in params.items():
        g = grads[name]
        if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
            raise TypeError(f"params[{name!r}]: expected a float64 or float32 numpy array, "
                            f"got {getattr(p, 'dtype', type(p).__name__)}")
        if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
            raise ValueError(f"grads[{name!r}]: expected an array of shape {p.shape} and dtype "
                             f"{p.dtype}, got {getattr(g, 'shape', type(g).__name__)} "
                             f"{getattr(g, 'dtype', '')}".rstrip())
        if not p.flags.writeable:
            raise ValueError(f"params[{name!r}]: expected a writeable array (updated in place)")
    return dict(params), dict(grads)


class Optimizer:
    """Base class: holds the parameters, gradients, learning rate and state.

    Parameters
    ----------
    model_or_params : Layer or tuple (dict[str, ndarray], dict[str, ndarray])
        A model, or its ``(params, grads)`` dicts; same keys, shapes, dtypes.
    lr : float
        Learning rate, > 0.

    Attributes
    ----------
    params, grads : dict[str, ndarray]
        The model's arrays (the same objects, not copies).
    lr : float
        The learning rate; public, schedules set it (>= 0 when assigned).
    steps : int
        Number of ``step()`` calls so far.
    state : dict[str, dict[str, ndarray]]
        Per-parameter buffers, by parameter name then buffer name.
    """

    #: Buffer names kept per parameter (set by the subclass for its options).
    _buffers: tuple[str, ...] = ()

    def __init__(self, model_or_params: Any, lr: float) -> None:
        self.params, self.grads = _resolve(model_or_params)
        self.lr = positive_number(lr, "lr")
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {
            name: {b: np.zeros_like(p) for b in self._buffers} for name, p in self.params.items()}
        self._scratch: dict[tuple[str, int], np.ndarray] = {}

    @property
    def lr(self) -> float:
        """The learning rate (a float >= 0)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = number(value, "lr", low=0.0)

    def _tmp(self, name: str, i: int) -> np.ndarray:
        """Scratch array ``i`` for parameter ``name`` (reused across steps, not state)."""
        key = (name, i)
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(self.params[name])
        return self._scratch[key]

    def _decayed(self, name: str, p: np.ndarray, g: np.ndarray, weight_decay: float) -> np.ndarray:
        """``g + weight_decay * p`` in a scratch array (``g`` itself if no decay)."""
        if not weight_decay:
            return g
        d = np.multiply(p, weight_decay, out=self._tmp(name, 0))
        d += g
        return d

    def step(self) -> None:
        """Update every parameter in place from its gradient."""
        self.steps += 1
        for name, p in self.params.items():
            self._update(name, p, self.grads[name], self.state[name])
            _versions.bump(p)                                  # graphs built before this step are stale

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Fill every gradient with zeros in place."""
        for g in self.grads.values():
            g.fill(0)

    def _hyper(self) -> dict[str, Any]:
        """The hyper-parameters other than ``lr``, as constructor keywords."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: plain dicts of numbers and array copies.

        Returns
        -------
        dict
            ``{"type": str, "lr": float, "steps": int, "hyper": dict,
            "state": {param_name: {buffer_name: ndarray}}}``
        """
        return {"type": type(self).__name__, "lr": self.lr, "steps": self.steps,
                "hyper": self._hyper(),
                "state": {n: {b: a.copy() for b, a in s.items()} for n, s in self.state.items()}}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (buffers are copied in place).

        The hyper-parameters (``momentum``, ``betas`` …) stay those of this
        optimizer; ``lr``, ``steps`` and the buffers are restored.
        """
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(f"state_dict: expected the state of optimizer {type(self).__name__}, "
                             f"got that of {state_dict.get('type')!r}")
        saved = state_dict["state"]
        if set(saved) != set(self.state):
            raise ValueError(f"state_dict: expected parameters {sorted(self.state)}, got {sorted(saved)}")
        for name, bufs in self.state.items():
            if set(saved[name]) != set(bufs):
                raise ValueError(f"state_dict['state'][{name!r}]: expected buffers {sorted(bufs)}, "
                                 f"got {sorted(saved[name])}")
            for b, a in bufs.items():
                src = np.asarray(saved[name][b])
                if src.shape != a.shape:
                    raise ValueError(f"state_dict['state'][{name!r}][{b!r}]: expected shape "
                                     f"{a.shape}, got {src.shape}")
                a[...] = src
        self.lr = state_dict["lr"]
        self.steps = count(state_dict["steps"], "state_dict['steps']")
        for p in self.params.values():                         # a resumed run: earlier graphs are stale
            _versions.bump(p)

    def __repr__(self) -> str:
        hyper = "".join(f", {k}={v!r}" for k, v in self._hyper().items())
        return f"{type(self).__name__}(<{len(self.params)} params>, lr={self.lr!r}{hyper})"


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum.

    With ``d = g + weight_decay * p`` (PyTorch's ``torch.optim.SGD``,
    dampening 0):

    .. math::

        b \leftarrow \mu b + d, \qquad
        p \leftarrow p - \eta \, (d + \mu b) \ \text{(Nesterov)}
        \quad\text{or}\quad p \leftarrow p - \eta \, b,

    and ``p <- p - lr * d`` without momentum. ``b`` starts at zero, so the
    first step's buffer is ``d`` as in PyTorch.

    Parameters
    ----------
    model_or_params : Layer or tuple (params, grads)
    lr : float
        Learning rate ``eta`` > 0.
    momentum : float, default 0
        ``mu`` in ``[0, 1)``.
    nesterov : bool, default False
        Nesterov momentum; requires ``momentum > 0``.
    weight_decay : float, default 0
        L2 penalty coefficient (>= 0), added to the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import SGD
    >>> params, grads = {"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -1.0])}
    >>> opt = SGD((params, grads), lr=0.1, momentum=0.9)
    >>> opt.step(); params["w"]
    array([0.95, 2.1 ])
    >>> opt.step(); params["w"]                 # buffer = 0.9 * g + g
    array([0.855, 2.29 ])
    """

    def __init__(self, model_or_params: Any, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        self.momentum = number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.nesterov = flag(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum requires momentum > 0, got momentum=0")
        self.weight_decay = number(weight_decay, "weight_decay", low=0.0)
        self._buffers = ("momentum_buffer",) if self.momentum else ()
        super().__init__(model_or_params, lr)

    def _hyper(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov, "weight_decay": self.weight_decay}

    def _update(self, name, p, g, state):
        d = self._decayed(name, p, g, self.weight_decay)       # d = g + wd p
        if self.momentum:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += d                                             # b = mu b + d
            if self.nesterov:
                s = np.multiply(b, self.momentum, out=self._tmp(name, 1))
                s += d                                         # d + mu b
                d = s
            else:
                d = b
        s = np.multiply(d, self.lr, out=self._tmp(name, 1))
        p -= s                                                 # p = p - lr d


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), PyTorch's ``torch.optim.Adam`` (no amsgrad).

    With ``d = g + weight_decay * p`` and ``t`` the step number:

    .. math::

        m \leftarrow m + (1 - \beta_1)(d - m), \qquad
        v \leftarrow \beta_2 v + (1 - \beta_2) d^2, \\
        p \leftarrow p - \frac{\eta}{1 - \beta_1^t} \,
            \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}.

    Parameters
    ----------
    model_or_params : Layer or tuple (params, grads)
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in ``[0, 1)``.
    eps : float, default 1e-8
        > 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient (not AdamW's decoupled decay).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import Adam
    >>> params, grads = {"w": np.array([1.0, 2.0])}, {"w": np.array([0.5, -1.0])}
    >>> opt = Adam((params, grads), lr=0.1)
    >>> opt.step(); params["w"].round(6)        # the first step moves by ~lr * sign(g)
    array([0.9, 2.1])
    """

    _buffers = ("exp_avg", "exp_avg_sq")

    def __init__(self, model_or_params: Any, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(number(betas[i], f"betas[{i}]", low=0.0, high=1.0, high_open=True) for i in (0, 1))
        self.eps = positive_number(eps, "eps")
        self.weight_decay = number(weight_decay, "weight_decay", low=0.0)
        super().__init__(model_or_params, lr)

    def _hyper(self) -> dict[str, Any]:
        return {"betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, name, p, g, state):
        beta1, beta2 = self.betas
        t = self.steps
        d = self._decayed(name, p, g, self.weight_decay)       # d = g + wd p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        s = np.subtract(d, m, out=self._tmp(name, 1))
        s *= 1 - beta1
        m += s                                                 # m = lerp(m, d, 1 - beta1)
        v *= beta2
        np.multiply(d, d, out=s)
        s *= 1 - beta2
        v += s                                                 # v = beta2 v + (1 - beta2) d^2
        np.sqrt(v, out=s)
        s /= math.sqrt(1 - beta2 ** t)
        s += self.eps                                          # sqrt(v_hat) + eps
        np.divide(m, s, out=s)
        s *= self.lr / (1 - beta1 ** t)
        p -= s                                                 # p = p - lr m_hat / (...)


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman & Hinton, 2012), PyTorch's ``torch.optim.RMSprop`` (not centered).

    With ``d = g + weight_decay * p``:

    .. math::

        v \leftarrow \alpha v + (1 - \alpha) d^2, \qquad
        p \leftarrow p - \eta \, \frac{d}{\sqrt{v} + \epsilon},

    or, with momentum ``mu > 0``, ``b <- mu b + d / (sqrt(v) + eps)`` and
    ``p <- p - lr b``.

    Parameters
    ----------
    model_or_params : Layer or tuple (params, grads)
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant in ``[0, 1)``.
    eps : float, default 1e-8
        > 0.
    momentum : float, default 0
        In ``[0, 1)``.
    weight_decay : float, default 0
        L2 penalty added to the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import RMSprop
    >>> params, grads = {"w": np.array([1.0])}, {"w": np.array([2.0])}
    >>> opt = RMSprop((params, grads), lr=0.01, alpha=0.75)
    >>> opt.step(); params["w"].round(6)        # 1 - 0.01 * 2 / sqrt(0.25 * 4)
    array([0.98])
    """

    def __init__(self, model_or_params: Any, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.alpha = number(alpha, "alpha", low=0.0, high=1.0, high_open=True)
        self.eps = positive_number(eps, "eps")
        self.momentum = number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        self.weight_decay = number(weight_decay, "weight_decay", low=0.0)
        self._buffers = ("square_avg", "momentum_buffer") if self.momentum else ("square_avg",)
        super().__init__(model_or_params, lr)

    def _hyper(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum,
                "weight_decay": self.weight_decay}

    def _update(self, name, p, g, state):
        d = self._decayed(name, p, g, self.weight_decay)       # d = g + wd p
        v = state["square_avg"]
        s = np.multiply(d, d, out=self._tmp(name, 1))
        s *= 1 - self.alpha
        v *= self.alpha
        v += s                                                 # v = alpha v + (1 - alpha) d^2
        np.sqrt(v, out=s)
        s += self.eps
        np.divide(d, s, out=s)                                 # d / (sqrt(v) + eps)
        if self.momentum:
            b = state["momentum_buffer"]
            b *= self.momentum
            b += s                                             # b = mu b + d / (sqrt(v) + eps)
            np.multiply(b, self.lr, out=s)
        else:
            s *= self.lr
        p -= s


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011), PyTorch's ``torch.optim.Adagrad`` (no lr decay).

    With ``d = g + weight_decay * p``:

    .. math::

        G \leftarrow G + d^2, \qquad
        p \leftarrow p - \eta \, \frac{d}{\sqrt{G} + \epsilon}.

    Parameters
    ----------
    model_or_params : Layer or tuple (params, grads)
    lr : float, default 1e-2
    eps : float, default 1e-10
        > 0.
    weight_decay : float, default 0
        L2 penalty added to the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import Adagrad
    >>> params, grads = {"w": np.array([1.0])}, {"w": np.array([3.0])}
    >>> opt = Adagrad((params, grads), lr=0.5)
    >>> opt.step(); params["w"].round(6)        # 1 - 0.5 * 3 / 3
    array([0.5])
    """

    _buffers = ("sum",)

    def __init__(self, model_or_params: Any, lr: float = 1e-2, eps: float = 1e-10,
                 weight_decay: float = 0.0) -> None:
        self.eps = positive_number(eps, "eps")
        self.weight_decay = number(weight_decay, "weight_decay", low=0.0)
        super().__init__(model_or_params, lr)

    def _hyper(self) -> dict[str, Any]:
        return {"eps": self.eps, "weight_decay": self.weight_decay}

    def _update(self, name, p, g, state):
        d = self._decayed(name, p, g, self.weight_decay)       # d = g + wd p
        G = state["sum"]
        s = np.multiply(d, d, out=self._tmp(name, 1))
        G += s                                                 # G = G + d^2
        np.sqrt(G, out=s)
        s += self.eps
        np.divide(d, s, out=s)
        s *= self.lr
        p -= s                                                 # p = p - lr d / (sqrt(G) + eps)
