"""Static layers: ``Linear``, activations, ``Dropout``, ``Reshape``/``Flatten`` and the ``Sequential`` container.

Static layers have an empty state; their step works on arrays of any
leading shape, so a whole ``(T, B, D)`` sequence is one call (one GEMM for
``Linear``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from . import _checks, activations
from . import init as _init
from ._checks import generator, positive_int, probability
from .protocol import Layer, StaticLayer, State, layer_type_name

__all__ = ["Linear", "Tanh", "Sigmoid", "ReLU", "Dropout", "Reshape", "Flatten", "Sequential"]


def _check_features(x: np.ndarray, size: int, dtype: np.dtype, name: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape (..., {size}), got {x.shape}")
    if x.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {x.dtype}")


class Linear(StaticLayer):
    """Affine map ``y = x @ W + b``.

    Parameters
    ----------
    input_size, output_size : int
        ``D`` and ``O``.
    bias : bool, default True
        Whether to learn ``b``.
    dtype : {float64, float32}, default float64
    seed : int, optional
        Seed for the initialiser (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional
    init : str, default "glorot_uniform"
        Name of the initialiser for ``W`` (see ``rnnbp.init``).

    Attributes
    ----------
    params : {"W": (D, O), "b": (O,)}
        ``W`` is the transpose of PyTorch's ``Linear.weight``.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> layer = rnnbp.Linear(3, 2, seed=0)
    >>> y, _, cache = layer.forward(np.ones((4, 3)), ())
    >>> y.shape
    (4, 2)
    """

    def __init__(self, input_size: int, output_size: int, *, bias: bool = True,
                 dtype: Any = np.float64, seed: int | None = None,
                 rng: np.random.Generator | None = None,
                 init: str = "glorot_uniform") -> None:
        super().__init__(dtype)
        self.input_size = positive_int(input_size, "input_size")
        self.output_size = positive_int(output_size, "output_size")
        self.bias = bool(bias)
        self.init = _init.check_name(init, "init")
        rng = generator(rng, seed)
        self._add_param("W", _init.by_name(init, (self.input_size, self.output_size), rng, self.dtype))
        if self.bias:
            self._add_param("b", np.zeros(self.output_size, dtype=self.dtype))

    def forward(self, x: np.ndarray, state: State = ()) -> tuple[np.ndarray, State, Any]:
        """``x (..., D) -> y (..., O)``; the cache is ``x``."""
        _check_features(x, self.input_size, self.dtype, "x")
        y = x @ self.params["W"]                                   # y = x W
        if self.bias:
            y += self.params["b"]                                  # y += b
        return y, (), x

    def backward(self, dy: np.ndarray, dstate_next: State, cache: np.ndarray) -> tuple[np.ndarray, State]:
        """``dy (..., O) -> dx (..., D)``; adds ``dW`` and ``db`` into ``grads``."""
        x = cache
        x2 = x.reshape(-1, self.input_size)
        dy2 = dy.reshape(-1, self.output_size)
        self.grads["W"] += x2.T @ dy2                              # y = x W
        if self.bias:
            self.grads["b"] += dy2.sum(axis=0)                     # y = ... + b
        dx = dy @ self.params["W"].T                               # y = x W
        return dx, ()

    def get_config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "output_size": self.output_size,
                "bias": self.bias, "dtype": self.dtype.name, "init": self.init}


class _Activation(StaticLayer):
    """Elementwise activation from ``rnnbp.activations``; the cache is the output (f' is read from it)."""

    preserves_shape = True
    activation = ""                                                # the name in rnnbp.activations

    def __init__(self) -> None:
        super().__init__(None)

    def forward(self, x, state=()):
        """``x (..., D) -> y (..., D)``."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
        y = activations.apply(self.activation, x)
        return y, (), y

    def backward(self, dy, dstate_next, cache):
        """``dy (..., D) -> dx (..., D)``."""
        return dy * activations.derivative(self.activation, cache), ()   # y = f(x)


class Tanh(_Activation):
    """Hyperbolic tangent, ``y = tanh(x)``, ``dy/dx = 1 - y**2``.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> float(rnnbp.Tanh().forward(np.zeros(1), ())[0][0])
    0.0
    """

    activation = "tanh"


class Sigmoid(_Activation):
    """Logistic sigmoid, ``y = 1 / (1 + exp(-x))``, ``dy/dx = y (1 - y)``.

    Computed as ``(1 + tanh(x / 2)) / 2``, which never overflows.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> float(rnnbp.Sigmoid().forward(np.zeros(1), ())[0][0])
    0.5
    """

    activation = "sigmoid"


class ReLU(_Activation):
    """Rectified linear unit, ``y = max(x, 0)``; the derivative at 0 is taken as 0.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> rnnbp.ReLU().forward(np.array([-1.0, 2.0]), ())[0]
    array([0., 2.])
    """

    activation = "relu"


class Dropout(StaticLayer):
    """Inverted dropout: in training mode each unit is zeroed with probability
    ``p`` and the survivors are scaled by ``1 / (1 - p)``; in evaluation mode
    it is the identity.

    Parameters
    ----------
    p : float in [0, 1)
        Drop probability.
    seed : int, optional
        Seed of the layer's own generator (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional

    Notes
    -----
    Over a sequence a fresh mask is drawn for every step. ``rnnbp.fit`` gives
    the layer a generator derived from ``fit``'s own ``seed``
    (:meth:`reseed`; the layer's ``seed`` is then not used), so training is
    reproducible.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> drop = rnnbp.Dropout(0.5, seed=0)
    >>> y, _, _ = drop.forward(np.ones((2, 4)), ())
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> float(drop.eval().forward(np.ones((2, 4)), ())[0].sum())
    8.0
    """

    preserves_shape = True

    def __init__(self, p: float = 0.5, *, seed: int | None = None,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(None)
        self.p = probability(p, "p")
        self.rng = generator(rng, seed)

    def forward(self, x, state=()):
        """``x (..., D) -> y (..., D)``; the cache is the scaled keep-mask (or None)."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
        if not self.training or self.p == 0.0:
            return x, (), None
        keep = self.rng.random(x.shape) >= self.p
        scale = (keep / (1.0 - self.p)).astype(x.dtype)
        return x * scale, (), scale

    def reseed(self, rng: np.random.Generator) -> None:
        """Draw the masks from ``rng`` from now on (``fit(seed=...)`` calls this)."""
        self.rng = rng

    def backward(self, dy, dstate_next, cache):
        """``dy -> dx = dy * mask / (1 - p)``."""
        if cache is None:
            return dy, ()                                          # y = x
        return dy * cache, ()                                      # y = x * mask / (1 - p)

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}


class Reshape(StaticLayer):
    """Reshape the feature axis: ``(..., D) -> (..., *shape)`` with ``D = prod(shape)``.

    Lets image layers (``Conv2D`` on ``(..., C, H, W)``) take flat
    ``(B, D)`` steps, so image models train on ``(N, D)`` data like any other
    static model; ``Flatten`` is the inverse.

    Parameters
    ----------
    shape : tuple of int
        The per-sample shape, e.g. ``(1, 16, 16)``.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> rnnbp.Reshape((1, 4, 4)).forward(np.zeros((8, 16)), ())[0].shape
    (8, 1, 4, 4)
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__(None)
        if isinstance(shape, (int, np.integer)) or not all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1 for n in shape):
            raise ValueError(f"shape: expected a tuple of positive integers, got {shape!r}")
        self.shape = tuple(int(n) for n in shape)
        self.input_size = int(np.prod(self.shape))

    def forward(self, x, state=()):
        """``x (..., D) -> y (..., *shape)``."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
        if x.ndim < 1 or x.shape[-1] != self.input_size:
            raise ValueError(f"x: expected shape (..., {self.input_size}), got {x.shape}")
        return x.reshape(x.shape[:-1] + self.shape), (), None

    def backward(self, dy, dstate_next, cache):
        """``dy (..., *shape) -> dx (..., D)``."""
        lead = dy.shape[:dy.ndim - len(self.shape)]
        return dy.reshape(lead + (self.input_size,)), ()       # y = reshape(x)

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}


class Flatten(StaticLayer):
    """Flatten the last three axes: ``(..., C, H, W) -> (..., C·H·W)``; the inverse of ``Reshape``.

    The order is row-major (C, then H, then W), as ``torch.flatten(x, -3)``,
    so a following ``Linear`` converts one to one. Parameter-free.

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> flat = rnnbp.Flatten()
    >>> y, _, cache = flat.forward(np.zeros((5, 2, 8, 4, 4)), ())
    >>> y.shape
    (5, 2, 128)
    >>> flat.backward(np.ones_like(y), (), cache)[0].shape
    (5, 2, 8, 4, 4)
    """

    def __init__(self) -> None:
        super().__init__(None)

    def forward(self, x, state=()):
        """``x (..., C, H, W) -> y (..., C·H·W)``; the cache is the input shape."""
        _checks.image(x, "x")
        return x.reshape(*x.shape[:-3], -1), (), (x.shape, x.dtype)

    def backward(self, dy, dstate_next, cache):
        """``dy (..., C·H·W) -> dx (..., C, H, W)``."""
        x_shape, dtype = cache
        _checks.output_grad(dy, tuple(x_shape[:-3]) + (int(np.prod(x_shape[-3:])),), dtype)
        return dy.reshape(x_shape), ()                             # y = reshape(x)


class Sequential(Layer):
    """A stack of layers applied in order; itself a ``Layer``.

    Parameters
    ----------
    *layers : Layer
        The children, first to last.

    Attributes
    ----------
    layers : list[Layer]
    params, grads : dict[str, ndarray]
        The children's arrays under qualified names (``"0.W_ih"``): the very
        same array objects, so optimizers, clipping and save/load see every
        trainable array through these dicts alone.

    Notes
    -----
    A container: it holds the children's parameters, lists its leaves,
    flattens and rebuilds the nested state, and runs one step through the
    stack (``forward``/``backward``, for nesting and step-wise use). Over a
    sequence, ``rnnbp.unroll`` runs the stack layer-major (each leaf over all
    T steps, then the next), which is exact for stacks without feedback and
    keeps every layer on its fast path: the unroller is the one place that
    loops over a stack's layers in time. (``forward_seq`` on a stack is the
    generic step loop of :class:`~rnnbp.Layer`, correct but step-major.)

    Examples
    --------
    >>> import numpy as np, rnnbp
    >>> model = rnnbp.Sequential(rnnbp.LSTM(3, 8, seed=0), rnnbp.Linear(8, 2, seed=1))
    >>> sorted(model.params)[:3]
    ['0.W_hh', '0.W_ih', '0.b']
    >>> rnnbp.unroll(model, np.zeros((5, 4, 3))).outputs.shape
    (5, 4, 2)
    """

    def __init__(self, *layers: Layer) -> None:
        super().__init__(None)
        if not layers:
            raise ValueError("layers: expected at least one layer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}]: expected a rnnbp.Layer, got {type(layer).__name__}")
        self.layers = list(layers)
        dtypes = {l.dtype for l in self.layers if l.dtype is not None}
        if len(dtypes) > 1:
            found = ", ".join(f"layers[{i}]: {l.dtype}" for i, l in enumerate(self.layers) if l.dtype is not None)
            raise TypeError(f"layers: expected one dtype for the whole model, got {found}")
        self.dtype = dtypes.pop() if dtypes else None
        # Feature sizes are read through shape-preserving layers (activations,
        # Dropout) and stop at shape-changing ones of unknown size (Conv2D, ...).
        size, source = None, None
        for j, layer in enumerate(self.layers):
            if layer.input_size is not None:
                if size is not None and size != layer.input_size:
                    raise ValueError(f"layers[{j}]: expected input_size {size} "
                                     f"(output of layers[{source}]), got {layer.input_size}")
            if not layer.preserves_shape:
                size, source = layer.output_size, j
        self.output_size = size
        self.input_size = None
        for layer in self.layers:
            if layer.input_size is not None or not layer.preserves_shape:
                self.input_size = layer.input_size
                break
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                self.params[f"{i}.{name}"] = p
                self.grads[f"{i}.{name}"] = layer.grads[name]

    @property
    def takes_ids(self) -> bool:  # type: ignore[override]
        """Whether the first layer takes integer ids (``Embedding``)."""
        return self.layers[0].takes_ids

    @property
    def state_sizes(self) -> tuple:  # type: ignore[override]
        """Nested: one entry per child."""
        return tuple(l.state_sizes for l in self.layers)

    def train(self, mode: bool = True) -> "Sequential":
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def zero_grad(self) -> None:
        for layer in self.layers:
            layer.zero_grad()

    def initial_state(self, batch_size: int) -> State:
        return tuple(l.initial_state(batch_size) for l in self.layers)

    def leaves(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        for i, layer in enumerate(self.layers):
            yield from layer.leaves(f"{prefix}.{i}" if prefix else str(i))

    def flatten_state(self, state: State) -> list[State]:
        self._check_state_arity(state)
        out: list[State] = []
        for layer, s in zip(self.layers, state):
            out.extend(layer.flatten_state(s))
        return out

    def unflatten_state(self, states: list[State]) -> State:
        return tuple(layer.unflatten_state(states) for layer in self.layers)

    def _check_state_arity(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != len(self.layers):
            got = f"a tuple of {len(state)}" if isinstance(state, tuple) else type(state).__name__
            raise ValueError(f"state: expected a tuple of {len(self.layers)} per-layer states, got {got}")

    def forward(self, x, state):
        self._check_state_arity(state)
        caches, new_state = [], []
        for layer, s in zip(self.layers, state):
            x, s, c = layer.forward(x, s)
            caches.append(c)
            new_state.append(s)
        return x, tuple(new_state), caches

    def backward(self, dy, dstate_next, cache):
        dstate = [None] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, dstate[i] = self.layers[i].backward(dy, dstate_next[i], cache[i])
        return dy, tuple(dstate)

    def get_config(self) -> dict[str, Any]:
        return {"layers": [{"type": layer_type_name(type(l)), "config": l.get_config()} for l in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], build: Callable[[Any, str], Layer]) -> "Sequential":
        """Rebuild the stack: each child from its spec in ``config["layers"]``."""
        children = config.get("layers")
        if not isinstance(children, list) or set(config) != {"layers"}:
            raise ValueError(f"config: expected {{'layers': [child specs]}}, got keys {sorted(config)}")
        return cls(*(build(child, f"layers[{i}]") for i, child in enumerate(children)))

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"Sequential(\n  {inner}\n)"
