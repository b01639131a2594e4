"""Static image layers: ``Conv2D`` and ``MaxPool2D`` (``Flatten`` lives beside ``Reshape`` in ``rnnbp.layers``).

Images are channels-first, ``(..., C, H, W)``, with any leading dimensions:
``(B, C, H, W)`` for one step, ``(T, B, C, H, W)`` for a sequence (a static
layer runs the whole sequence in one call). Weights follow PyTorch's
``Conv2d`` layout and cross-correlation, so they convert one to one.

Kernels
-------
``Conv2D`` is im2col + GEMM: the windows of the padded input are copied once
into a ``(C·kh·kw, N·Ho·Wo)`` matrix (``N`` = product of the leading
dimensions), so the forward pass, the weight gradient and the window gradient
are one large matrix product each, and the only transposes move whole
``Ho·Wo`` planes. col2im adds the window gradient back with one strided slice
per kernel offset (``kh·kw`` adds, never a loop over pixels). ``MaxPool2D``
likewise loops over kernel offsets only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import init as _init
from . import _checks
from ._checks import as_dtype, generator, positive_int
from .protocol import StaticLayer, State

__all__ = ["Conv2D", "MaxPool2D"]

Pair = tuple[int, int]


# -- argument helpers ---------------------------------------------------------
def _pair(value: Any, name: str, *, minimum: int = 1) -> Pair:
    """Return an int or a pair of ints as ``(rows, cols)``, each >= ``minimum``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    kind = "a positive" if minimum == 1 else "a non-negative"
    if len(items) != 2:
        raise ValueError(f"{name}: expected {kind} int or a pair of them, got {value!r}")
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name}: expected {kind} int or a pair of them, got {value!r}")
        if v < minimum:
            raise ValueError(f"{name}: expected {kind} int or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def _pair_config(value: Pair) -> int | list[int]:
    """JSON form of a pair: an int when square, else a two-item list."""
    return value[0] if value[0] == value[1] else [value[0], value[1]]


def _out_size(size: int, kernel: int, stride: int, pad: int, name: str,
              shape: tuple[int, ...]) -> int:
    """Output length of a window sweep: ``(size + 2·pad - kernel) // stride + 1``."""
    if size + 2 * pad < kernel:
        raise ValueError(f"{name}: spatial size {size} (padded {size + 2 * pad}) is smaller "
                         f"than the kernel {kernel}; got shape {shape}")
    return (size + 2 * pad - kernel) // stride + 1


# -- Conv2D -------------------------------------------------------------------
class Conv2D(StaticLayer):
    """2-d convolution (cross-correlation, as PyTorch's ``Conv2d``).

    ``y[n, o, i, j] = b[o] + sum_{c, p, q} W[o, c, p, q] · xp[n, c, i·sh + p, j·sw + q]``
    where ``xp`` is ``x`` zero-padded by ``padding`` on each side.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    stride : int or (int, int), default 1
        ``(sh, sw)``.
    padding : int or (int, int), default 0
        Zeros added on both sides of each spatial axis, ``(ph, pw)``.
    dtype : float64 or float32, default float64
        Dtype of the parameters and of every array that flows through.
    seed : int, optional
        Seed for the initialiser (ignored when ``rng`` is given).
    rng : numpy.random.Generator, optional
        Generator for the initial weights.

    Attributes
    ----------
    params : dict
        ``W`` ``(O, C, kh, kw)`` — He normal (``rnnbp.init.he_normal``),
        ``std = sqrt(2 / (C·kh·kw))``, PyTorch's ``Conv2d.weight`` as is;
        ``b`` ``(O,)`` — zeros.

    Notes
    -----
    Shapes: ``x`` ``(..., C, H, W)`` -> ``y`` ``(..., O, Ho, Wo)`` with
    ``Ho = (H + 2·ph - kh) // sh + 1`` and ``Wo = (W + 2·pw - kw) // sw + 1``.
    The cache holds the im2col matrix, ``kh·kw / (sh·sw)`` times the input.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.conv import Conv2D
    >>> conv = Conv2D(1, 8, 3, padding=1, seed=0)
    >>> x = np.random.default_rng(1).standard_normal((4, 1, 16, 16))
    >>> y, state, cache = conv.forward(x, ())
    >>> y.shape, state
    ((4, 8, 16, 16), ())
    >>> dx, _ = conv.backward(np.ones_like(y), (), cache)
    >>> dx.shape, conv.grads["W"].shape
    ((4, 1, 16, 16), (8, 1, 3, 3))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Pair,
                 stride: int | Pair = 1, padding: int | Pair = 0, *,
                 dtype: Any = np.float64, seed: int | None = None,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(dtype=as_dtype(dtype))
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding", minimum=0)
        rng = generator(rng, seed)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self._add_param("W", _init.he_normal(self.in_channels * kh * kw, shape, rng, self.dtype))
        self._add_param("b", np.zeros(self.out_channels, dtype=self.dtype))

    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """Convolve: ``x (..., C, H, W) -> y (..., O, Ho, Wo)``.

        Returns
        -------
        y : ndarray, shape (..., O, Ho, Wo)
        state : ()
        cache : object
            Opaque; hand it to ``backward``.
        """
        _checks.image(x, "x", self.dtype, self.in_channels)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        *lead, C, H, W_ = x.shape
        Ho = _out_size(H, kh, sh, ph, "x", x.shape)
        Wo = _out_size(W_, kw, sw, pw, "x", x.shape)
        N = int(np.prod(lead, dtype=np.int64))
        x4 = x.reshape(N, C, H, W_)
        xp = np.pad(x4, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x4
        windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        # im2col: windows (N, C, Ho, Wo, kh, kw) -> rows (c, p, q), columns (n, i, j)
        cols = np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * kh * kw, -1)
        W2 = self.params["W"].reshape(self.out_channels, -1)
        z = W2 @ cols                                    # (O, N·Ho·Wo), one GEMM
        z += self.params["b"][:, None]
        y = np.ascontiguousarray(z.reshape(-1, N, Ho, Wo).transpose(1, 0, 2, 3))
        y = y.reshape(*lead, self.out_channels, Ho, Wo)
        return y, (), (cols, x.shape, y.shape)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """Back through the convolution; adds into ``grads["W"]`` and ``grads["b"]``.

        Returns
        -------
        dx : ndarray, shape (..., C, H, W)
        dstate : ()
        """
        cols, x_shape, y_shape = cache
        _checks.output_grad(dy, y_shape, self.dtype)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        C, H, W_ = x_shape[-3:]
        O, Ho, Wo = y_shape[-3:]
        N = cols.shape[1] // (Ho * Wo)
        W2 = self.params["W"].reshape(O, -1)
        # y = z transposed to (N, O, Ho, Wo)
        dz = np.ascontiguousarray(dy.reshape(N, O, Ho, Wo).transpose(1, 0, 2, 3)).reshape(O, -1)
        self.grads["b"] += dz.sum(axis=1)                                        # z = W2 @ cols + b
        self.grads["W"] += (dz @ cols.T).reshape(self.grads["W"].shape)          # z = W2 @ cols
        dcols = (W2.T @ dz).reshape(C, kh, kw, N, Ho, Wo)                        # z = W2 @ cols
        dxp = np.zeros((N, C, H + 2 * ph, W_ + 2 * pw), dtype=self.dtype)
        # cols = im2col(xp): xp[n, c, i·sh + p, j·sw + q]
        for p in range(kh):
            for q in range(kw):
                dxp[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw] += \
                    dcols[:, p, q].transpose(1, 0, 2, 3)             # each offset (p, q) reads a strided slice of xp
        dx = dxp[:, :, ph:ph + H, pw:pw + W_]                                    # xp = pad(x)
        return np.ascontiguousarray(dx).reshape(x_shape), ()

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON: ``type(layer)(**layer.get_config())`` rebuilds it."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _pair_config(self.kernel_size),
                "stride": _pair_config(self.stride),
                "padding": _pair_config(self.padding),
                "dtype": self.dtype.name}


# -- MaxPool2D ----------------------------------------------------------------
class MaxPool2D(StaticLayer):
    """2-d max pooling over ``kernel_size`` windows (as PyTorch's ``MaxPool2d``).

    ``y[n, c, i, j] = max_{p, q} x[n, c, i·sh + p, j·sw + q]``; windows that
    would run past the edge are dropped (floor mode, no padding).

    Parameters
    ----------
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    stride : int or (int, int), optional
        ``(sh, sw)``; defaults to ``kernel_size`` (non-overlapping windows).

    Notes
    -----
    Shapes: ``x`` ``(..., C, H, W)`` -> ``y`` ``(..., C, Ho, Wo)`` with
    ``Ho = (H - kh) // sh + 1``, ``Wo = (W - kw) // sw + 1``. The gradient of
    each output goes to the first maximum of its window in row-major order
    (ties as PyTorch); overlapping windows add. A NaN in a window makes its
    output NaN. Both loops run over the ``kh·kw`` kernel offsets, each a
    strided slice of the whole input, never over pixels. Parameter-free:
    float64 and float32 inputs both pass through in their own dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnbp.conv import MaxPool2D
    >>> pool = MaxPool2D(2)
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> y, _, cache = pool.forward(x, ())
    >>> y[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> dx, _ = pool.backward(np.ones_like(y), (), cache)
    >>> dx[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None) -> None:
        super().__init__(dtype=None)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")

    def forward(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State, Any]:
        """Pool: ``x (..., C, H, W) -> y (..., C, Ho, Wo)``.

        Returns
        -------
        y : ndarray, shape (..., C, Ho, Wo)
        state : ()
        cache : object
            Opaque; hand it to ``backward``.
        """
        _checks.image(x, "x")
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        *lead, C, H, W_ = x.shape
        Ho = _out_size(H, kh, sh, 0, "x", x.shape)
        Wo = _out_size(W_, kw, sw, 0, "x", x.shape)
        N = int(np.prod(lead, dtype=np.int64))
        x4 = x.reshape(N, C, H, W_)
        # a running maximum over the kh·kw kernel offsets, each a strided slice of x;
        # a later offset wins only if strictly greater: ties go to the first, as PyTorch
        arg = np.zeros((N, C, Ho, Wo), dtype=np.uint8 if kh * kw <= 256 else np.intp)
        y = np.array(x4[:, :, 0:sh * (Ho - 1) + 1:sh, 0:sw * (Wo - 1) + 1:sw])
        for p in range(kh):
            for q in range(kw):
                if p == q == 0:
                    continue
                window = x4[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw]
                np.copyto(arg, p * kw + q, where=window > y)
                np.maximum(y, window, out=y)            # NaN propagates to y
        return y.reshape(*lead, C, Ho, Wo), (), (arg, x.shape, x.dtype)

    def backward(self, dy: np.ndarray, dstate_next: State, cache: Any) -> tuple[np.ndarray, State]:
        """Route each output gradient to its window's argmax.

        Returns
        -------
        dx : ndarray, shape (..., C, H, W)
        dstate : ()
        """
        arg, x_shape, dtype = cache
        N, C, Ho, Wo = arg.shape
        _checks.output_grad(dy, tuple(x_shape[:-2]) + (Ho, Wo), dtype)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        H, W_ = x_shape[-2:]
        dy4 = dy.reshape(N, C, Ho, Wo)
        dx = np.zeros((N, C, H, W_), dtype=dtype)
        # y = x[n, c, i·sh + p*, j·sw + q*] at the argmax (p*, q*)
        for p in range(kh):
            for q in range(kw):
                dx[:, :, p:p + sh * (Ho - 1) + 1:sh, q:q + sw * (Wo - 1) + 1:sw] += \
                    np.where(arg == p * kw + q, dy4, 0)                           # (overlapping windows add)
        return dx.reshape(x_shape), ()

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON: ``type(layer)(**layer.get_config())`` rebuilds it."""
        return {"kernel_size": _pair_config(self.kernel_size),
                "stride": _pair_config(self.stride)}
