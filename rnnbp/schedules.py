"""Learning-rate schedules: set ``optimizer.lr`` once per epoch by a closed form.

A schedule wraps an :class:`rnnbp.optim.Optimizer`, remembers its learning
rate at epoch 0 (``base_lr``) and, on each ``step()``, sets ``optimizer.lr``
to the formula's value at the next epoch. The formulas are PyTorch's
(``torch.optim.lr_scheduler``), so the learning rate epoch by epoch matches
PyTorch's to rounding::

    opt = SGD(model, lr=0.1)
    sched = CosineLR(opt, T_max=n_epochs)
    for epoch in range(n_epochs):
        ...                    # one epoch of opt.step()
        sched.step()

With :func:`rnnbp.fit`, step the schedule from a callback:
``fit(..., callbacks=[lambda epoch, history: sched.step()])``.

Examples
--------
>>> import numpy as np
>>> from rnnbp.optim import SGD
>>> from rnnbp.schedules import ExponentialLR
>>> opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=1.0)
>>> sched = ExponentialLR(opt, gamma=0.5)
>>> sched.step(); opt.lr, sched.epoch
(0.5, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._checks import count, number, positive_int, positive_number
from .optim import Optimizer

__all__ = ["StepLR", "ExponentialLR", "CosineLR"]


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
        self.base_lr = positive_number(state_dict["base_lr"], "state_dict['base_lr']")
        self.epoch = count(state_dict["epoch"], "state_dict['epoch']")
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
    >>> from rnnbp.optim import SGD
    >>> from rnnbp.schedules import StepLR
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
        self.gamma = positive_number(gamma, "gamma")

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
    >>> from rnnbp.optim import SGD
    >>> from rnnbp.schedules import ExponentialLR
    >>> opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=1.0)
    >>> sched = ExponentialLR(opt, gamma=0.5)
    >>> sched.step(); sched.step(); opt.lr
    0.25
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        super().__init__(optimizer)
        self.gamma = positive_number(gamma, "gamma")

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
    >>> from rnnbp.optim import SGD
    >>> from rnnbp.schedules import CosineLR
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
        self.eta_min = number(eta_min, "eta_min", low=0.0)

    def _lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
