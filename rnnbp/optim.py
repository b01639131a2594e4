"""Optimizers and learning-rate schedules.

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

Schedules (:class:`StepLR`, :class:`ExponentialLR`, :class:`CosineLR`) set
``optimizer.lr`` from the base learning rate by PyTorch's closed-form
formulas; call their ``step()`` once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._checks import FLOAT_DTYPES, positive_int
from .layer import Layer

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad",
           "StepLR", "ExponentialLR", "CosineLR"]


def _number(value: Any, name: str, *, low: float = 0.0, low_open: bool = False,
            high: float | None = None) -> float:
    """Return ``value`` as a finite float in ``[low, high)`` (``(low, high)`` if ``low_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    x = float(value)
    ok = math.isfinite(x) and (x > low if low_open else x >= low) and (high is None or x < high)
    if not ok:
        interval = ("(" if low_open else "[") + f"{low:g}, " + ("inf)" if high is None else f"{high:g})")
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value!r}")
    return x


def _count(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


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
        self.lr = _number(lr, "lr", low_open=True)
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
        self._lr = _number(value, "lr")

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
        self.steps = _count(state_dict["steps"], "state_dict['steps']")

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
        self.momentum = _number(momentum, "momentum", high=1.0)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov: expected a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum requires momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        self.weight_decay = _number(weight_decay, "weight_decay")
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
        self.betas = (_number(betas[0], "betas[0]", high=1.0), _number(betas[1], "betas[1]", high=1.0))
        self.eps = _number(eps, "eps", low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay")
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
        self.alpha = _number(alpha, "alpha", high=1.0)
        self.eps = _number(eps, "eps", low_open=True)
        self.momentum = _number(momentum, "momentum", high=1.0)
        self.weight_decay = _number(weight_decay, "weight_decay")
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
        self.eps = _number(eps, "eps", low_open=True)
        self.weight_decay = _number(weight_decay, "weight_decay")
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


# -- learning-rate schedules ----------------------------------------------------

class _Schedule:
    """Base class: sets ``optimizer.lr`` from ``base_lr`` by a closed form in the epoch."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an rnnbp.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        #: The learning rate at epoch 0 (the optimizer's ``lr`` when the schedule was made).
        self.base_lr = optimizer.lr
        #: Number of ``step()`` calls so far.
        self.epoch = 0

    def _lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        """The learning rate of the current epoch."""
        return self._lr_at(self.epoch)

    def step(self) -> None:
        """Advance one epoch and set ``optimizer.lr``; call once per epoch."""
        self.epoch += 1
        self.optimizer.lr = self._lr_at(self.epoch)

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch": int, "base_lr": float}``."""
        return {"epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the epoch and base lr, and set ``optimizer.lr`` accordingly."""
        self.base_lr = _number(state_dict["base_lr"], "state_dict['base_lr']", low_open=True)
        self.epoch = _count(state_dict["epoch"], "state_dict['epoch']")
        self.optimizer.lr = self._lr_at(self.epoch)


class StepLR(_Schedule):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr(e) = base_lr * gamma ** (e // step_size)`` (PyTorch's ``StepLR``).

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Epochs between decays, >= 1.
    gamma : float, default 0.1
        Decay factor, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import SGD, StepLR
    >>> opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(opt.lr); sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        self.step_size = positive_int(step_size, "step_size")
        self.gamma = _number(gamma, "gamma", low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(_Schedule):
    r"""Multiply the learning rate by ``gamma`` every epoch.

    ``lr(e) = base_lr * gamma ** e`` (PyTorch's ``ExponentialLR``).

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        Decay factor, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import SGD, ExponentialLR
    >>> opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=1.0)
    >>> sched = ExponentialLR(opt, gamma=0.5)
    >>> sched.step(); sched.step(); opt.lr
    0.25
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        super().__init__(optimizer)
        self.gamma = _number(gamma, "gamma", low_open=True)

    def _lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineLR(_Schedule):
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs.

    .. math::

        \eta(e) = \eta_{min} + (\eta_{base} - \eta_{min})
                  \frac{1 + \cos(\pi e / T_{max})}{2}

    (PyTorch's ``CosineAnnealingLR``, without restarts). As in PyTorch, the
    curve is periodic: stepping past ``T_max`` follows the cosine back up,
    so set ``T_max`` to the number of epochs.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Epochs of the half period, >= 1.
    eta_min : float, default 0
        Final learning rate, >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.optim import SGD, CosineLR
    >>> opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=1.0)
    >>> sched = CosineLR(opt, T_max=2)
    >>> sched.step(); round(opt.lr, 12)
    0.5
    >>> sched.step(); opt.lr
    0.0
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        self.T_max = positive_int(T_max, "T_max")
        self.eta_min = _number(eta_min, "eta_min")

    def _lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
