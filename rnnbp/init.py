"""Weight initialisers.

Every initialiser returns a new array and draws its randomness only from the
``numpy.random.Generator`` it is given, never from numpy's global state.

Gated weights
-------------
Recurrent cells keep the weights of all G gates side by side: ``W_ih`` is
``(D, G*H)`` and ``W_hh`` is ``(H, G*H)``. Each gate is a map of its own, so
the initialisers treat the G column blocks of width ``H`` as G separate
matrices: Glorot and He use the fans of one block, ``orthogonal`` makes each
block orthogonal and ``identity`` makes each square block an identity.

Layers store initialisers by name (so their configuration stays JSON); use
``by_name`` to run one: ``by_name("orthogonal", (H, 4 * H), rng, gates=4)``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._checks import as_dtype, generator, positive_int

__all__ = [
    "glorot_uniform",
    "he_normal",
    "orthogonal",
    "identity",
    "zeros",
    "forget_gate_bias",
    "by_name",
    "check_name",
    "INITIALISERS",
]

Shape = tuple[int, ...]


def _shape(shape: Any) -> Shape:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(int(n) for n in shape)
    except TypeError as exc:
        raise TypeError(f"shape: expected a tuple of ints, got {shape!r}") from exc
    if any(n < 0 for n in dims):
        raise ValueError(f"shape: expected non-negative sizes, got {dims}")
    return dims


def _generator(rng: Any) -> np.random.Generator:
    """``rng``, which the initialisers require (no seed fallback: the caller owns the stream)."""
    if rng is None:
        raise TypeError("rng: expected a numpy.random.Generator (np.random.default_rng(seed)), got None")
    return generator(rng)


def _gate_blocks(shape: Shape, gates: int) -> int:
    """Width of one gate block of a 2-d ``(n_in, gates * n_out)`` weight."""
    gates = positive_int(gates, "gates")
    if len(shape) != 2:
        raise ValueError(f"shape: expected a 2-d weight shape (n_in, gates * n_out), got {shape}")
    if shape[1] % gates:
        raise ValueError(f"shape: {shape[1]} columns do not split into gates={gates} equal blocks")
    return shape[1] // gates


def glorot_uniform(fan_in: int, fan_out: int, shape: Shape, rng: np.random.Generator,
                   dtype: Any = np.float64) -> np.ndarray:
    """Glorot (Xavier) uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``.

    Parameters
    ----------
    fan_in, fan_out : int
        Number of inputs and outputs of the map (of one gate block for a
        gated weight).
    shape : tuple of int
        Shape of the returned array, e.g. ``(D, G*H)``.
    rng : numpy.random.Generator
    dtype : float64 or float32

    Returns
    -------
    ndarray, shape ``shape``

    Examples
    --------
    >>> W = glorot_uniform(4, 5, (4, 5), np.random.default_rng(0))
    >>> bool(np.all(np.abs(W) <= np.sqrt(6 / 9)))
    True
    """
    fan_in, fan_out = positive_int(fan_in, "fan_in"), positive_int(fan_out, "fan_out")
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    values = _generator(rng).uniform(-limit, limit, size=_shape(shape))
    return values.astype(as_dtype(dtype), copy=False)


def he_normal(fan_in: int, shape: Shape, rng: np.random.Generator,
              dtype: Any = np.float64) -> np.ndarray:
    """He (Kaiming) normal for ReLU units: ``N(0, 2 / fan_in)``.

    Parameters
    ----------
    fan_in : int
        Number of inputs of the map.
    shape : tuple of int
    rng : numpy.random.Generator
    dtype : float64 or float32

    Returns
    -------
    ndarray, shape ``shape``

    Examples
    --------
    >>> W = he_normal(100, (100, 50), np.random.default_rng(0))
    >>> W.shape
    (100, 50)
    """
    fan_in = positive_int(fan_in, "fan_in")
    values = _generator(rng).standard_normal(size=_shape(shape)) * np.sqrt(2.0 / fan_in)
    return values.astype(as_dtype(dtype), copy=False)


def _orthogonal_block(n_in: int, n_out: int, rng: np.random.Generator) -> np.ndarray:
    """An ``(n_in, n_out)`` matrix with orthonormal rows or columns (whichever fit)."""
    big, small = max(n_in, n_out), min(n_in, n_out)
    a = rng.standard_normal((big, small))
    q, r = np.linalg.qr(a)
    # Without the sign fix QR's sign convention would bias the distribution
    # away from Haar (uniform over orthogonal matrices).
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    q *= d
    return q if n_in >= n_out else q.T


def orthogonal(shape: Shape, rng: np.random.Generator, dtype: Any = np.float64,
               gain: float = 1.0, *, gates: int | None = None) -> np.ndarray:
    """Random orthogonal matrix (Saxe et al., 2014), block by gate.

    Each of the ``gates`` column blocks of width ``shape[1] // gates`` is
    drawn independently as the Q factor of a Gaussian matrix, with the signs
    fixed by ``diag(R)`` so the result is uniformly (Haar) distributed. A
    square block is orthogonal (``W_k.T @ W_k = I``); a rectangular one has
    orthonormal columns or rows, whichever fit.

    Parameters
    ----------
    shape : (int, int)
        ``(n_in, gates * n_out)``, e.g. ``(H, 4*H)`` for an LSTM's ``W_hh``.
    rng : numpy.random.Generator
    dtype : float64 or float32
    gain : float
        Scale applied to every block.
    gates : int, optional
        Number of column blocks. Default: ``shape[1] // shape[0]`` square
        blocks when the columns are a multiple of the rows (so ``(H, G*H)``
        gets G orthogonal ``H x H`` blocks), otherwise one block.

    Returns
    -------
    ndarray, shape ``shape``

    Examples
    --------
    >>> W = orthogonal((3, 6), np.random.default_rng(0))   # two 3 x 3 blocks
    >>> np.allclose(W[:, :3].T @ W[:, :3], np.eye(3))
    True
    """
    shape = _shape(shape)
    if gates is None:
        square = len(shape) == 2 and shape[0] > 0 and shape[1] % shape[0] == 0
        gates = shape[1] // shape[0] if square else 1
    width = _gate_blocks(shape, gates)
    rng = _generator(rng)
    blocks = [_orthogonal_block(shape[0], width, rng) for _ in range(gates)]
    out = np.concatenate(blocks, axis=1) * gain
    return out.astype(as_dtype(dtype), copy=False)


def identity(shape: Shape, dtype: Any = np.float64, gain: float = 1.0) -> np.ndarray:
    """Identity blocks, as in the IRNN (Le, Jaitly and Hinton, 2015).

    Parameters
    ----------
    shape : (int, int)
        ``(H, G*H)``: every ``H x H`` column block is ``gain * I``.
    dtype : float64 or float32
    gain : float

    Returns
    -------
    ndarray, shape ``shape``

    Examples
    --------
    >>> identity((2, 4))
    array([[1., 0., 1., 0.],
           [0., 1., 0., 1.]])
    """
    shape = _shape(shape)
    if len(shape) != 2 or shape[0] == 0 or shape[1] % shape[0]:
        raise ValueError(
            f"shape: identity needs (H, G*H) with square H x H blocks, got {shape} "
            f"(for an input weight this needs input_size == hidden_size)")
    eye = np.eye(shape[0]) * gain
    return np.tile(eye, (1, shape[1] // shape[0])).astype(as_dtype(dtype), copy=False)


def zeros(shape: Shape, dtype: Any = np.float64) -> np.ndarray:
    """All zeros (the default for biases).

    Parameters
    ----------
    shape : tuple of int
    dtype : float64 or float32

    Returns
    -------
    ndarray, shape ``shape``

    Examples
    --------
    >>> zeros((2,))
    array([0., 0.])
    """
    return np.zeros(_shape(shape), dtype=as_dtype(dtype))


def forget_gate_bias(hidden_size: int, forget_bias: float = 1.0,
                     dtype: Any = np.float64) -> np.ndarray:
    """LSTM bias in PyTorch's gate order (i, f, g, o): zeros except ``f``.

    A positive forget-gate bias keeps the cell memory open at the start of
    training (Jozefowicz et al., 2015). It is only an initial value: the
    forward pass never adds it.

    Parameters
    ----------
    hidden_size : int
        H.
    forget_bias : float
    dtype : float64 or float32

    Returns
    -------
    ndarray, shape (4*H,)

    Examples
    --------
    >>> forget_gate_bias(2, 1.0)
    array([0., 0., 1., 1., 0., 0., 0., 0.])
    """
    H = positive_int(hidden_size, "hidden_size")
    b = np.zeros(4 * H, dtype=as_dtype(dtype))
    b[H:2 * H] = forget_bias
    return b


def _by_glorot(shape, rng, dtype, gates):
    width = _gate_blocks(shape, gates)
    return glorot_uniform(shape[0], width, shape, rng, dtype)


def _by_he(shape, rng, dtype, gates):
    _gate_blocks(shape, gates)
    return he_normal(shape[0], shape, rng, dtype)


def _by_orthogonal(shape, rng, dtype, gates):
    return orthogonal(shape, rng, dtype, gates=gates)


def _by_identity(shape, rng, dtype, gates):
    if _gate_blocks(shape, gates) != shape[0]:
        raise ValueError(f"shape: identity needs square gate blocks (n_in == n_out), "
                         f"got {shape} with gates={gates}")
    return identity(shape, dtype)


def _by_zeros(shape, rng, dtype, gates):
    return zeros(shape, dtype)


_BY_NAME: dict[str, Callable[..., np.ndarray]] = {
    "glorot_uniform": _by_glorot,
    "he_normal": _by_he,
    "orthogonal": _by_orthogonal,
    "identity": _by_identity,
    "zeros": _by_zeros,
}

#: Names accepted by ``by_name`` (and by the cells' ``init_ih``/``init_hh``).
INITIALISERS: tuple[str, ...] = tuple(_BY_NAME)


def check_name(name: Any, argument: str = "name") -> str:
    """Return ``name`` if it names an initialiser, else raise naming the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"{argument}: expected an initialiser name (one of {', '.join(INITIALISERS)}), "
                        f"got {type(name).__name__}")
    if name not in _BY_NAME:
        raise ValueError(f"{argument}: unknown initialiser {name!r}; known: {', '.join(INITIALISERS)}")
    return name


def by_name(name: str, shape: Shape, rng: np.random.Generator, dtype: Any = np.float64,
            *, gates: int = 1) -> np.ndarray:
    """Initialise a ``(n_in, gates * n_out)`` weight with the initialiser called ``name``.

    Parameters
    ----------
    name : str
        One of ``INITIALISERS``: ``"glorot_uniform"`` (fans ``n_in`` and
        ``n_out``), ``"he_normal"`` (fan ``n_in``), ``"orthogonal"`` (each
        gate block orthogonal), ``"identity"`` (each gate block the identity;
        needs ``n_in == n_out``), ``"zeros"``.
    shape : (int, int)
    rng : numpy.random.Generator
        Used by the random initialisers; the others ignore it.
    dtype : float64 or float32
    gates : int
        Number of gate blocks side by side in the columns.

    Returns
    -------
    ndarray, shape ``shape``

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> W = by_name("orthogonal", (3, 12), np.random.default_rng(0), gates=4)
    >>> np.allclose(W[:, 3:6].T @ W[:, 3:6], np.eye(3))
    True
    """
    check_name(name)
    return _BY_NAME[name](_shape(shape), rng, dtype, gates)
