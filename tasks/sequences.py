"""Synthetic sequence tasks from the recurrent-network literature.

Every generator is deterministic given ``seed`` (an ``int`` or a
``numpy.random.Generator``; numpy's global state is never touched) and
returns time-major arrays in a :class:`SequenceData`:

- ``xs``: ``(T, N, D)`` float inputs (``dtype`` float64 by default, float32
  allowed), zero on padding;
- ``ys``: the targets. With ``target_at == "last"`` there is one target per
  sequence, ``(N, K)`` float or ``(N,)`` int64 class labels, belonging to the
  output at the last real step ``lengths - 1``. With ``target_at == "every"``
  there is one per step, ``(T, N, K)`` float or ``(T, N)`` int64 labels;
- ``mask``: ``(T, N)`` bool, True where an output is scored (the loss mask):
  for ``"last"`` exactly the step ``lengths[n] - 1`` of each column;
- ``lengths``: ``(N,)`` int64 real steps per sequence (``T`` unless padded);
  ``data.valid`` is the ``(T, N)`` input-validity mask that an unroller's
  ``mask=`` expects.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "SequenceData", "ReberData", "one_hot",
    "adding_problem", "adding_baseline_mse", "temporal_order", "copy_task",
    "REBER_SYMBOLS", "reber_strings", "reber_accepts", "reber_next_symbols",
    "reber_sequences", "reber_correct", "temporal_xor", "sine_mixture",
    "mackey_glass", "series_windows", "mackey_glass_sequences", "delayed_class",
]


# --------------------------------------------------------------------------
# container and helpers

@dataclass(frozen=True, eq=False)
class SequenceData:
    """A batch of time-major sequences with targets (see the module docstring).

    Attributes
    ----------
    xs : ndarray, shape (T, N, D), float
    ys : ndarray, shape (N, K) / (N,) for ``"last"``, (T, N, K) / (T, N) for ``"every"``
    mask : ndarray, shape (T, N), bool -- where outputs are scored.
    target_at : {"last", "every"}
    lengths : ndarray, shape (N,), int64 -- real steps per sequence.
    """

    xs: np.ndarray
    ys: np.ndarray
    mask: np.ndarray
    target_at: str
    lengths: np.ndarray

    def __post_init__(self):
        if self.xs.ndim != 3:
            raise ValueError(f"xs must be (T, N, D); got shape {self.xs.shape}")
        T, N, _ = self.xs.shape
        if self.target_at not in ("last", "every"):
            raise ValueError(f"target_at must be 'last' or 'every'; got {self.target_at!r}")
        lead = (N,) if self.target_at == "last" else (T, N)
        if self.ys.shape[:len(lead)] != lead or self.ys.ndim > len(lead) + 1:
            raise ValueError(f"ys for target_at={self.target_at!r} must start with {lead}; "
                             f"got shape {self.ys.shape}")
        if self.mask.shape != (T, N) or self.mask.dtype != bool:
            raise ValueError(f"mask must be bool {(T, N)}; got {self.mask.dtype} {self.mask.shape}")
        if self.lengths.shape != (N,):
            raise ValueError(f"lengths must be {(N,)}; got {self.lengths.shape}")

    @property
    def valid(self) -> np.ndarray:
        """(T, N) bool: True on the real (non-padding) input steps."""
        return np.arange(self.xs.shape[0])[:, None] < self.lengths[None, :]

    def last_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """Pick each sequence's output at its last real step.

        Parameters
        ----------
        outputs : ndarray, shape (T, N, ...)

        Returns
        -------
        ndarray, shape (N, ...)
        """
        return outputs[self.lengths - 1, np.arange(self.lengths.shape[0])]

    def take(self, index) -> "SequenceData":
        """The sub-batch of columns ``index`` (an int array, slice or bool mask over N)."""
        ys = self.ys[index] if self.target_at == "last" else self.ys[:, index]
        return replace(self, xs=self.xs[:, index], ys=ys, mask=self.mask[:, index],
                       lengths=self.lengths[index])


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be an int or a numpy.random.Generator; got {type(seed).__name__}")


def _dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return dt


def _positive(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def one_hot(indices, size: int, dtype=np.float64) -> np.ndarray:
    """One-hot encode integer indices.

    Parameters
    ----------
    indices : array_like of int, any shape S, values in ``[0, size)``
    size : int
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape S + (size,)
    """
    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"indices must lie in [0, {size}); got range "
                         f"[{indices.min()}, {indices.max()}]")
    return np.eye(size, dtype=_dtype(dtype))[indices]


def _last_mask(lengths: np.ndarray, T: int) -> np.ndarray:
    mask = np.zeros((T, lengths.shape[0]), dtype=bool)
    mask[lengths - 1, np.arange(lengths.shape[0])] = True
    return mask


def _fixed(N: int, T: int) -> np.ndarray:
    return np.full(N, T, dtype=np.int64)


# --------------------------------------------------------------------------
# adding problem

def adding_problem(n: int, length: int, *, variant: str = "le", seed,
                   dtype=np.float64) -> SequenceData:
    """The adding problem: remember two marked values and output their sum.

    Each step has ``D = 2`` inputs ``(value, marker)``.

    ``variant="le"`` (Le, Jaitly & Hinton 2015, "A simple way to initialize
    recurrent networks of rectified linear units"; the form of Arjovsky et al.
    2016): values ``U[0, 1]``, exactly one marker 1 in each half of the fixed
    length ``T = length``; target ``a + b``.

    ``variant="hochreiter"`` (Hochreiter & Schmidhuber 1997, "Long short-term
    memory", experiment 4): lengths uniform in ``[length, length + length//10]``
    (padded with zeros), values ``U[-1, 1]``; ``X1`` is marked (1.0) at one of
    the first ten steps, ``X2`` at one of the unmarked steps ``1 .. length/2 - 1``;
    the first and last real steps carry marker -1 unless marked; if the first
    step is marked its value is set to 0. Target ``0.5 + (X1 + X2) / 4``.

    Parameters
    ----------
    n : int -- number of sequences N.
    length : int -- T (the minimum length for ``"hochreiter"``, >= 8; >= 2 for ``"le"``).
    variant : {"le", "hochreiter"}
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 2), ``ys`` (N, 1) float, ``target_at="last"``.
    """
    N, T0 = _positive("n", n), _positive("length", length, 2 if variant == "le" else 8)
    rng, dt = _rng(seed), _dtype(dtype)
    cols = np.arange(N)
    if variant == "le":
        xs = np.zeros((T0, N, 2), dtype=np.float64)
        xs[:, :, 0] = rng.uniform(0.0, 1.0, size=(T0, N))
        half = T0 // 2
        i = rng.integers(0, half, size=N)
        j = rng.integers(half, T0, size=N)
        xs[i, cols, 1] = 1.0
        xs[j, cols, 1] = 1.0
        ys = xs[i, cols, 0] + xs[j, cols, 0]
        lengths = _fixed(N, T0)
    elif variant == "hochreiter":
        lengths = rng.integers(T0, T0 + T0 // 10 + 1, size=N).astype(np.int64)
        T = int(lengths.max())
        xs = np.zeros((T, N, 2), dtype=np.float64)
        valid = np.arange(T)[:, None] < lengths[None, :]
        xs[:, :, 0] = np.where(valid, rng.uniform(-1.0, 1.0, size=(T, N)), 0.0)
        xs[0, :, 1] = -1.0
        xs[lengths - 1, cols, 1] = -1.0
        i = rng.integers(0, min(10, T0 // 2), size=N)
        # X2 uniformly over steps 1 .. T0/2 - 1 other than i.
        choices = T0 // 2 - 1 - (i >= 1)
        j = 1 + rng.integers(0, choices, size=N)
        j = j + ((i >= 1) & (j >= i))
        xs[i, cols, 1] = 1.0
        xs[j, cols, 1] = 1.0
        xs[0, i == 0, 0] = 0.0
        ys = 0.5 + (xs[i, cols, 0] + xs[j, cols, 0]) / 4.0
    else:
        raise ValueError(f"variant must be 'le' or 'hochreiter'; got {variant!r}")
    T = xs.shape[0]
    return SequenceData(xs.astype(dt), ys[:, None].astype(dt), _last_mask(lengths, T),
                        "last", lengths)


def adding_baseline_mse(variant: str = "le") -> float:
    """MSE of the trivial predictor that always outputs the mean target.

    It is the target variance: ``2 * 1/12 = 1/6`` for ``"le"`` and
    ``(0.9 * 1/3 + 1/3) / 16 = 0.0396`` for ``"hochreiter"`` (``X1`` is zeroed
    when the first step is marked, probability 1/10). A model has learned the
    task only when its MSE falls well below this number.

    Parameters
    ----------
    variant : {"le", "hochreiter"}

    Returns
    -------
    float
    """
    if variant == "le":
        return 1.0 / 6.0
    if variant == "hochreiter":
        return (0.9 / 3.0 + 1.0 / 3.0) / 16.0
    raise ValueError(f"variant must be 'le' or 'hochreiter'; got {variant!r}")


# --------------------------------------------------------------------------
# temporal order

TEMPORAL_ORDER_SYMBOLS = "EBabcdXY"


def temporal_order(n: int, *, n_relevant: int = 2, length: tuple[int, int] = (100, 110),
                   seed, dtype=np.float64) -> SequenceData:
    """Temporal order problem (Hochreiter & Schmidhuber 1997, experiments 6a/6b).

    A sequence starts with ``E``, ends with the trigger ``B``, and is filled
    with distractors ``a b c d``, except at ``n_relevant`` positions that hold
    ``X`` or ``Y``. The class is the X/Y pattern read as a binary number with
    X = 0, Y = 1, first symbol most significant: for 6a, XX→0 (Q), XY→1 (R),
    YX→2 (S), YY→3 (U); for 6b, eight classes. Lengths are uniform in
    ``length`` (paper: 100..110), padded with zeros. The relevant positions are
    drawn from the paper's windows scaled by ``length[0] / 100``: 6a
    ``t1 ∈ [10, 20]``, ``t2 ∈ [50, 60]``; 6b ``[10, 20]``, ``[33, 43]``, ``[66, 76]``.

    Parameters
    ----------
    n : int -- N.
    n_relevant : {2, 3} -- experiment 6a (4 classes) or 6b (8 classes).
    length : (int, int) -- inclusive range of sequence lengths, min >= 20.
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 8) one-hot over ``TEMPORAL_ORDER_SYMBOLS = "EBabcdXY"``,
        ``ys`` (N,) int64 in ``[0, 2**n_relevant)``, ``target_at="last"``.
    """
    N = _positive("n", n)
    windows = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}
    if n_relevant not in windows:
        raise ValueError(f"n_relevant must be 2 or 3; got {n_relevant!r}")
    lo, hi = length
    if not (20 <= lo <= hi):
        raise ValueError(f"length must be (min, max) with 20 <= min <= max; got {length!r}")
    rng, dt = _rng(seed), _dtype(dtype)
    lengths = rng.integers(lo, hi + 1, size=N).astype(np.int64)
    T = int(lengths.max())
    sym = rng.integers(2, 6, size=(T, N))  # distractors a..d
    sym[0] = 0
    cols = np.arange(N)
    sym[lengths - 1, cols] = 1
    bits = rng.integers(0, 2, size=(n_relevant, N))
    scale = lo / 100.0
    for k, (a, b) in enumerate(windows[n_relevant]):
        pos = rng.integers(round(a * scale), round(b * scale) + 1, size=N)
        sym[pos, cols] = 6 + bits[k]
    xs = one_hot(sym, 8, dt)
    xs[np.arange(T)[:, None] >= lengths[None, :]] = 0.0
    labels = (bits * (2 ** np.arange(n_relevant - 1, -1, -1))[:, None]).sum(axis=0)
    return SequenceData(xs, labels.astype(np.int64), _last_mask(lengths, T), "last", lengths)


# --------------------------------------------------------------------------
# copy / delayed recall

def copy_task(n: int, *, n_symbols: int = 8, n_recall: int = 10, delay: int = 10,
              seed, dtype=np.float64) -> SequenceData:
    """Copy (delayed recall) memory task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016).

    Steps ``0 .. K-1`` show ``K = n_recall`` random symbols, then ``delay``
    blanks, then one recall cue at step ``K + delay``; during the last ``K``
    steps (inputs blank) the network must output the ``K`` symbols in order.
    ``T = 2K + delay + 1``.

    Parameters
    ----------
    n : int -- N.
    n_symbols : int -- alphabet size A.
    n_recall : int -- K.
    delay : int -- blanks between the last symbol and the cue (>= 0).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, A + 2) one-hot: symbols ``0..A-1``, blank ``A``, cue
        ``A + 1``. ``ys`` (T, N) int64 labels over ``A + 1`` classes: the symbol
        during the recall steps, the blank class ``A`` elsewhere.
        ``mask`` is True on the K recall steps only (score every step by
        using ``data.valid`` instead). ``target_at="every"``.
    """
    N, A, K = _positive("n", n), _positive("n_symbols", n_symbols), _positive("n_recall", n_recall)
    delay = _positive("delay", delay, 0)
    rng, dt = _rng(seed), _dtype(dtype)
    T = 2 * K + delay + 1
    symbols = rng.integers(0, A, size=(K, N))
    inp = np.full((T, N), A)
    inp[:K] = symbols
    inp[K + delay] = A + 1
    ys = np.full((T, N), A, dtype=np.int64)
    ys[T - K:] = symbols
    mask = np.zeros((T, N), dtype=bool)
    mask[T - K:] = True
    return SequenceData(one_hot(inp, A + 2, dt), ys, mask, "every", _fixed(N, T))


# --------------------------------------------------------------------------
# embedded Reber grammar

REBER_SYMBOLS = "BTPSXVE"

# Reber's automaton: node -> {symbol: next node}; node 1 is entered after B,
# node 6 accepts only E (Reber 1967; Cleeremans, Servan-Schreiber & McClelland 1989).
_REBER = {1: {"T": 2, "P": 3}, 2: {"S": 2, "X": 4}, 3: {"T": 3, "V": 5},
          4: {"X": 3, "S": 6}, 5: {"P": 4, "V": 6}, 6: {"E": 7}}


def _reber_walk(string: str, embedded: bool):
    """Yield the legal next-symbol set after each prefix; None once the string is illegal."""
    # State: (phase, branch, node). Plain grammar: phase "start" → B → node walk.
    # Embedded: B, T|P (branch), inner string B...E, branch again, E.
    phase, branch, node = "start", None, None
    legal = frozenset("B")
    for ch in string:
        if ch not in legal:
            yield None
            return
        if phase == "start":
            phase, legal = ("branch", frozenset("TP")) if embedded else ("inner", None)
            if not embedded:
                node = 1
        elif phase == "branch":
            phase, branch, legal = "inner_start", ch, frozenset("B")
        elif phase == "inner_start":
            phase, node = "inner", 1
        elif phase == "inner":
            node = _REBER[node][ch]
            if node == 7:
                phase, legal = (("close", frozenset(branch)) if embedded else ("done", frozenset()))
        elif phase == "close":
            phase, legal = "end", frozenset("E")
        elif phase == "end":
            phase, legal = "done", frozenset()
        if phase == "inner":
            legal = frozenset(_REBER[node])
        yield legal


def reber_next_symbols(prefix: str, *, embedded: bool = True) -> frozenset:
    """The set of symbols that may legally follow ``prefix``.

    Parameters
    ----------
    prefix : str -- a legal prefix (possibly empty) over ``REBER_SYMBOLS``.
    embedded : bool -- embedded Reber grammar (default) or the plain one.

    Returns
    -------
    frozenset of str -- empty after a complete string.
    """
    legal = frozenset("B")
    for legal in _reber_walk(prefix, embedded):
        if legal is None:
            raise ValueError(f"prefix {prefix!r} is not legal in the "
                             f"{'embedded ' if embedded else ''}Reber grammar")
    return legal


def reber_accepts(string: str, *, embedded: bool = True) -> bool:
    """True when ``string`` is a complete sentence of the (embedded) Reber grammar."""
    if not isinstance(string, str) or not string:
        return False
    legal = None
    for legal in _reber_walk(string, embedded):
        if legal is None:
            return False
    return legal == frozenset()


def reber_strings(n: int, *, embedded: bool = True, seed) -> list[str]:
    """Sample ``n`` strings of the (embedded) Reber grammar.

    Each branch point chooses its two successors with probability 1/2
    (Cleeremans et al. 1989; Hochreiter & Schmidhuber 1997, experiment 1).

    Returns
    -------
    list of str, e.g. ``"BTBTSSXXTVVETE"`` for the embedded grammar.
    """
    N, rng = _positive("n", n), _rng(seed)
    out = []
    for _ in range(N):
        s = "B"
        while True:
            legal = sorted(reber_next_symbols(s, embedded=embedded), key=REBER_SYMBOLS.index)
            if not legal:
                break
            s += legal[0] if len(legal) == 1 else legal[int(rng.integers(len(legal)))]
        out.append(s)
    return out


@dataclass(frozen=True, eq=False)
class ReberData(SequenceData):
    """:class:`SequenceData` for next-symbol prediction, plus the legal sets.

    Attributes
    ----------
    legal : ndarray, shape (T, N, 7), bool -- symbols that may follow step t.
    strings : tuple of str -- the N sampled strings.
    """

    legal: np.ndarray = None
    strings: tuple = ()

    def take(self, index) -> "ReberData":
        picked = np.arange(len(self.strings))[index]
        return replace(super().take(index), legal=self.legal[:, index],
                       strings=tuple(self.strings[i] for i in np.atleast_1d(picked)))


def reber_sequences(n: int, *, embedded: bool = True, seed, dtype=np.float64) -> ReberData:
    """Next-symbol prediction on the (embedded) Reber grammar.

    A string ``s`` of length L gives inputs ``one_hot(s[:-1])`` and targets
    ``s[1:]``; strings of different lengths are padded to ``T = max L - 1``.

    Returns
    -------
    ReberData
        ``xs`` (T, N, 7) one-hot over ``REBER_SYMBOLS = "BTPSXVE"``; ``ys``
        (T, N) int64 next symbol; ``mask`` = ``valid`` (T, N);
        ``legal`` (T, N, 7) bool; ``target_at="every"``. Score with
        :func:`reber_correct`.
    """
    strings = reber_strings(n, embedded=embedded, seed=seed)
    dt = _dtype(dtype)
    N = len(strings)
    lengths = np.array([len(s) - 1 for s in strings], dtype=np.int64)
    T = int(lengths.max())
    ids = np.zeros((T + 1, N), dtype=np.int64)
    legal = np.zeros((T, N, 7), dtype=bool)
    for col, s in enumerate(strings):
        ids[:len(s), col] = [REBER_SYMBOLS.index(c) for c in s]
        for t, nxt in enumerate(_reber_walk(s[:-1], embedded)):
            legal[t, col, [REBER_SYMBOLS.index(c) for c in nxt]] = True
    valid = np.arange(T)[:, None] < lengths[None, :]
    xs = one_hot(ids[:-1], 7, dt) * valid[:, :, None]
    ys = np.where(valid, ids[1:], 0)
    return ReberData(xs, ys, valid, "every", lengths, legal=legal, strings=tuple(strings))


def reber_correct(outputs: np.ndarray, data: ReberData, *, threshold: float | None = None):
    """Score next-symbol predictions the standard way.

    A step is correct when the legal next symbols are exactly the
    ``k = #legal`` largest outputs (``threshold=None``; Hochreiter &
    Schmidhuber 1997), or when every legal output exceeds ``threshold`` and
    every illegal one does not (Fahlman 1991's criterion). A string is correct
    when all its real steps are.

    Parameters
    ----------
    outputs : ndarray, shape (T, N, 7) -- scores, probabilities or logits.
    data : ReberData

    Returns
    -------
    step_correct : ndarray, shape (T, N), bool (False on padding)
    string_correct : ndarray, shape (N,), bool
    """
    if outputs.shape != data.legal.shape:
        raise ValueError(f"outputs must have shape {data.legal.shape}; got {outputs.shape}")
    legal = data.legal
    if threshold is None:
        k = legal.sum(axis=-1, keepdims=True)
        ranks = np.argsort(np.argsort(-outputs, axis=-1, kind="stable"), axis=-1)
        ok = np.all((ranks < k) == legal, axis=-1)
    else:
        ok = np.all((outputs > threshold) == legal, axis=-1)
    ok &= data.valid
    return ok, np.all(ok | ~data.valid, axis=0)


# --------------------------------------------------------------------------
# temporal XOR

def temporal_xor(n: int, length: int, *, random_phase: bool = False, seed,
                 dtype=np.float64) -> SequenceData:
    """Elman's (1990, "Finding structure in time") temporal XOR.

    A bit stream of triples ``(a, b, a XOR b)`` with random ``a, b``; the
    task is to predict the next bit. Only the XOR bits are predictable, so
    ``mask`` marks the steps whose target is an XOR bit (Elman's error drops
    on every third step only).

    Parameters
    ----------
    n : int -- N streams.
    length : int -- T.
    random_phase : bool -- start each stream at a random point of its triple
        (default: streams start with ``a``, as in Elman's single stream).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 1) bits, ``ys`` (T, N, 1) float next bits,
        ``mask`` (T, N) predictable steps, ``target_at="every"``.
    """
    N, T = _positive("n", n), _positive("length", length)
    rng, dt = _rng(seed), _dtype(dtype)
    n_triples = (T + 1 + 2) // 3 + 1
    ab = rng.integers(0, 2, size=(n_triples, 2, N))
    stream = np.concatenate([ab, (ab[:, 0] ^ ab[:, 1])[:, None]], axis=1).reshape(3 * n_triples, N)
    phase = rng.integers(0, 3, size=N) if random_phase else np.zeros(N, dtype=np.int64)
    idx = phase[None, :] + np.arange(T + 1)[:, None]
    bits = np.take_along_axis(stream, idx, axis=0)
    # an XOR bit is predictable once both of its operands have been seen
    mask = ((idx[1:] % 3) == 2) & (np.arange(T)[:, None] >= 1)
    return SequenceData(bits[:-1, :, None].astype(dt), bits[1:, :, None].astype(dt), mask,
                        "every", _fixed(N, T))


# --------------------------------------------------------------------------
# continuous series

def sine_mixture(n: int, length: int, *, n_components: int = 3,
                 periods: tuple[float, float] = (4.0, 40.0), seed,
                 dtype=np.float64) -> SequenceData:
    """Next-value prediction of random sine mixtures.

    Each sequence is ``x_t = sum_k a_k sin(2 pi t / P_k + phi_k)`` with
    periods ``P_k`` log-uniform in ``periods``, phases uniform, amplitudes
    ``U[0.5, 1]`` normalised so that ``sum_k a_k = 1`` (so ``|x| <= 1``).

    Returns
    -------
    SequenceData
        ``xs`` (T, N, 1) = ``x_0 .. x_{T-1}``, ``ys`` (T, N, 1) =
        ``x_1 .. x_T``, ``target_at="every"``, mask all True.
    """
    N, T, K = _positive("n", n), _positive("length", length), _positive("n_components", n_components)
    if not 0 < periods[0] <= periods[1]:
        raise ValueError(f"periods must be (min, max) with 0 < min <= max; got {periods!r}")
    rng, dt = _rng(seed), _dtype(dtype)
    P = np.exp(rng.uniform(np.log(periods[0]), np.log(periods[1]), size=(K, N)))
    phi = rng.uniform(0.0, 2 * np.pi, size=(K, N))
    a = rng.uniform(0.5, 1.0, size=(K, N))
    a /= a.sum(axis=0)
    t = np.arange(T + 1, dtype=np.float64)[:, None, None]
    x = (a * np.sin(2 * np.pi * t / P + phi)).sum(axis=1)
    return SequenceData(x[:-1, :, None].astype(dt), x[1:, :, None].astype(dt),
                        np.ones((T, N), dtype=bool), "every", _fixed(N, T))


@functools.lru_cache(maxsize=8)
def _mackey_glass(n_samples, tau, beta, gamma, exponent, dt, sample_interval, discard, x0):
    K = int(round(tau / dt))
    every = int(round(sample_interval / dt))
    skip = int(round(discard / dt))
    total = skip + (n_samples - 1) * every + 1
    x = np.empty(K + total)
    x[:K + 1] = x0  # constant history on [-tau, 0]
    # Between grid points the ODE x' = -gamma x + g(t) is linear, with the
    # delayed forcing g(t) = beta x(t - tau) / (1 + x(t - tau)^n) already known
    # for a whole delay span; integrate it exactly for g linear on each step.
    a = np.exp(-gamma * dt)
    c0 = (1.0 - a) / gamma
    c1 = (dt * c0 - (1.0 - a * (1.0 + gamma * dt)) / gamma ** 2) / dt
    b0, b1 = c0 - c1, c1
    # Within a block the recurrence x_{k+1} = a x_k + u_k sums in closed form:
    # x_k = a^k (x_0 + sum_{j<k} a^{-(j+1)} u_j); a^{-K} = e^{gamma tau} stays small.
    powers = a ** np.arange(1, K + 1)
    i = K  # x[i] is time 0, known
    while i < K + total - 1:
        m = min(K, K + total - 1 - i)
        xd = x[i - K:i - K + m + 1]
        g = beta * xd / (1.0 + xd ** exponent)
        u = b0 * g[:-1] + b1 * g[1:]
        x[i + 1:i + 1 + m] = powers[:m] * (x[i] + np.cumsum(u / powers[:m]))
        i += m
    out = x[K + skip::every][:n_samples].copy()
    out.setflags(write=False)
    return out


def mackey_glass(n_samples: int, *, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                 exponent: float = 10.0, dt: float = 0.01, sample_interval: float = 1.0,
                 discard: float = 500.0, x0: float = 1.2) -> np.ndarray:
    """The Mackey–Glass delay series (Mackey & Glass 1977), chaotic for tau = 17.

    Integrates ``dx/dt = beta x(t-tau) / (1 + x(t-tau)^n) - gamma x(t)`` from
    the constant history ``x = x0`` on ``[-tau, 0]`` with step ``dt``: over each
    step the linear decay is solved exactly and the delayed forcing is taken
    linear between grid points (error O(dt^2)). Deterministic, no randomness;
    results are cached.

    Parameters
    ----------
    n_samples : int -- number of returned samples.
    tau, beta, gamma, exponent : float -- the equation's constants.
    dt : float -- integration step; ``tau``, ``sample_interval`` and
        ``discard`` should be multiples of it.
    sample_interval : float -- time between returned samples.
    discard : float -- initial transient dropped.
    x0 : float -- constant initial history.

    Returns
    -------
    ndarray, shape (n_samples,), float64, read-only.
    """
    N = _positive("n_samples", n_samples)
    if dt <= 0 or tau < dt or sample_interval < dt or discard < 0:
        raise ValueError("need dt > 0, tau >= dt, sample_interval >= dt, discard >= 0; got "
                         f"dt={dt}, tau={tau}, sample_interval={sample_interval}, discard={discard}")
    return _mackey_glass(N, float(tau), float(beta), float(gamma), float(exponent), float(dt),
                         float(sample_interval), float(discard), float(x0))


def series_windows(series, n: int, length: int, *, horizon: int = 1, seed,
                   dtype=np.float64) -> SequenceData:
    """Random windows of a series for next-value prediction.

    Parameters
    ----------
    series : array_like, shape (L,) or (L, D)
    n : int -- N windows, start points uniform over the series.
    length : int -- T.
    horizon : int -- predict ``x_{t + horizon}`` from ``x_0 .. x_t``.
    seed : int or numpy.random.Generator

    Returns
    -------
    SequenceData
        ``xs`` (T, N, D), ``ys`` (T, N, D), ``target_at="every"``.
    """
    s = np.asarray(series, dtype=np.float64)
    s = s[:, None] if s.ndim == 1 else s
    if s.ndim != 2:
        raise ValueError(f"series must be (L,) or (L, D); got shape {np.shape(series)}")
    N, T, H = _positive("n", n), _positive("length", length), _positive("horizon", horizon)
    if s.shape[0] < T + H:
        raise ValueError(f"series of length {s.shape[0]} is shorter than length + horizon = {T + H}")
    rng, dt = _rng(seed), _dtype(dtype)
    start = rng.integers(0, s.shape[0] - T - H + 1, size=N)
    idx = start[None, :] + np.arange(T)[:, None]
    return SequenceData(s[idx].astype(dt), s[idx + H].astype(dt), np.ones((T, N), dtype=bool),
                        "every", _fixed(N, T))


def mackey_glass_sequences(n: int, length: int, *, n_samples: int = 5000, horizon: int = 1,
                           seed, dtype=np.float64, **series_kwargs) -> SequenceData:
    """Windows of :func:`mackey_glass` (``n_samples`` long, centred to mean 0)
    for next-value prediction; see :func:`series_windows` for the shapes."""
    s = mackey_glass(n_samples, **series_kwargs)
    return series_windows(s - s.mean(), n, length, horizon=horizon, seed=seed, dtype=dtype)


# --------------------------------------------------------------------------
# accuracy versus lag

def delayed_class(n: int, lag: int, *, n_classes: int = 4, n_distractors: int = 4,
                  length: int | None = None, seed, dtype=np.float64) -> SequenceData:
    """Recall the class shown ``lag`` steps before the end, among distractors.

    Step ``T - 1 - lag`` shows one of ``n_classes`` class symbols; every other
    step shows a random distractor (symbols disjoint from the classes). The
    label is the class, scored at the last step. A static model that sees only
    the last ``w`` steps (a window MLP) is at chance once ``lag >= w``, while a
    recurrent network must hold the class for ``lag`` steps — an
    accuracy-versus-lag probe in the spirit of Bengio, Simard & Frasconi 1994.

    Parameters
    ----------
    n : int -- N.
    lag : int -- >= 0.
    n_classes, n_distractors : int
    length : int, optional -- T (default ``lag + 10``; at least ``lag + 1``).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, n_classes + n_distractors) one-hot, ``ys`` (N,) int64,
        ``target_at="last"``.
    """
    N, lag = _positive("n", n), _positive("lag", lag, 0)
    C, M = _positive("n_classes", n_classes, 2), _positive("n_distractors", n_distractors)
    T = lag + 10 if length is None else _positive("length", length, lag + 1)
    rng, dt = _rng(seed), _dtype(dtype)
    sym = C + rng.integers(0, M, size=(T, N))
    labels = rng.integers(0, C, size=N).astype(np.int64)
    sym[T - 1 - lag] = labels
    return SequenceData(one_hot(sym, C + M, dt), labels, _last_mask(_fixed(N, T), T), "last",
                        _fixed(N, T))
