"""Character-level text for next-character prediction, with no download.

The default corpus is built at run time from the docstrings of a fixed,
sorted list of Python standard-library modules (:func:`stdlib_corpus`); any
UTF-8 file works too (:func:`load_text`). A :class:`Vocab` maps characters to
indices; :func:`text_windows` cuts random windows and :func:`text_streams`
contiguous streams (for truncated BPTT), both ``(T + 1, N)`` int64 id arrays,
and :func:`next_char_data` turns such an array into one-hot
:class:`~tasks.data.sequences.SequenceData` with next-character targets.

Example::

    text = stdlib_corpus(max_chars=100_000)
    vocab = Vocab.from_text(text)
    data = next_char_data(text_windows(vocab.encode(text), 32, 50, seed=0), vocab.size)
    # data.xs: (50, 32, vocab.size) one-hot; data.ys: (50, 32) next-character ids
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import SequenceData, as_rng, float_dtype, one_hot, positive_int

__all__ = ["STDLIB_MODULES", "stdlib_corpus", "load_text", "Vocab", "text_windows",
           "text_streams", "next_char_data", "sample_text"]

#: Modules whose docstrings make the default corpus (sorted; no side effects on import).
STDLIB_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "collections", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions",
    "functools", "heapq", "html", "inspect", "io", "ipaddress", "itertools", "json",
    "logging", "math", "numbers", "operator", "pathlib", "pprint", "queue", "random", "re",
    "shlex", "shutil", "statistics", "string", "struct", "tempfile", "textwrap", "threading",
    "timeit", "tokenize", "traceback", "typing", "unittest", "uuid", "warnings", "weakref",
    "zipfile",
)


def _docs(module_name: str):
    """Yield the module's docstring, then those of its own public classes
    (with their methods) and functions, in sorted-name order."""
    module = importlib.import_module(module_name)
    yield module.__doc__

    def own(obj) -> bool:
        owner = getattr(obj, "__module__", None)
        return isinstance(owner, str) and (owner == module_name
                                           or owner.startswith(module_name + "."))

    for name in sorted(vars(module)):
        obj = vars(module)[name]
        if name.startswith("_") or not (inspect.isclass(obj) or callable(obj)) or not own(obj):
            continue
        yield getattr(obj, "__doc__", None) if not inspect.isclass(obj) else obj.__dict__.get("__doc__")
        if inspect.isclass(obj):
            for attr in sorted(obj.__dict__):
                member = obj.__dict__[attr]
                if attr.startswith("_") and attr != "__init__":
                    continue
                member = getattr(member, "__func__", member)  # classmethod / staticmethod
                if callable(member) or isinstance(member, property):
                    yield getattr(member, "__doc__", None)


def stdlib_corpus(max_chars: int | None = 500_000, *,
                  modules: tuple[str, ...] = STDLIB_MODULES) -> str:
    """A text corpus made of standard-library docstrings.

    Modules are read in sorted order; in each, the module docstring, then the
    docstrings of its public classes (and their methods) and functions, sorted
    by name, each cleaned with :func:`inspect.cleandoc`, duplicates dropped,
    joined by blank lines. The text is the same on every run of a given
    Python version (docstrings change between versions).

    Parameters
    ----------
    max_chars : int or None -- truncate to this many characters.
    modules : tuple of str -- module names (sorted before use).

    Returns
    -------
    str
    """
    if max_chars is not None:
        max_chars = positive_int("max_chars", max_chars)
    parts, seen, size = [], set(), 0
    for name in sorted(modules):
        for doc in _docs(name):
            if not isinstance(doc, str):
                continue
            doc = inspect.cleandoc(doc)
            # " at 0x" marks a repr with a memory address (e.g. a generated
            # dataclass signature): it would change from run to run.
            if not doc or doc in seen or " at 0x" in doc:
                continue
            seen.add(doc)
            parts.append(doc)
            size += len(doc) + 2
            if max_chars is not None and size >= max_chars:
                break
        if max_chars is not None and size >= max_chars:
            break
    text = "\n\n".join(parts) + "\n"
    if len(text) < 2:
        raise RuntimeError("standard-library docstrings are empty (is Python running with -OO?)")
    return text if max_chars is None else text[:max_chars]


def load_text(path, *, max_chars: int | None = None, encoding: str = "utf-8") -> str:
    """Read a text file (UTF-8 by default), optionally truncated to ``max_chars``."""
    text = Path(path).read_text(encoding=encoding)
    return text if max_chars is None else text[:positive_int("max_chars", max_chars)]


@dataclass(frozen=True)
class Vocab:
    """A character vocabulary: ``chars[i]`` is the character with index ``i``.

    Attributes
    ----------
    chars : str -- distinct characters, sorted by code point.
    """

    chars: str
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise ValueError("chars must be a non-empty string of distinct characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        """The vocabulary of every character in ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        """V, the number of characters."""
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Map a string to indices, shape ``(len(text),)`` int64.

        Raises ``ValueError`` naming any character not in the vocabulary.
        """
        try:
            return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, indices) -> str:
        """Map indices (any 1-D int array-like) back to a string."""
        ids = np.asarray(indices, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"indices must lie in [0, {self.size}); got [{ids.min()}, {ids.max()}]")
        return "".join(self.chars[i] for i in ids)


def _ids(ids) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D integer array; got {a.dtype} {a.shape}")
    return a.astype(np.int64, copy=False)


def text_windows(ids, n: int, length: int, *, seed) -> np.ndarray:
    """Random windows of ``length + 1`` consecutive ids.

    Parameters
    ----------
    ids : ndarray, shape (L,) int -- an encoded text.
    n : int -- N windows, start points uniform over the text.
    length : int -- T input steps.
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray, shape (T + 1, N), int64 -- column n is ``ids[s_n : s_n + T + 1]``.
    """
    ids = _ids(ids)
    N, T = positive_int("n", n), positive_int("length", length)
    if ids.shape[0] < T + 1:
        raise ValueError(f"text of {ids.shape[0]} ids is shorter than length + 1 = {T + 1}")
    start = as_rng(seed).integers(0, ids.shape[0] - T, size=N)
    return ids[start[None, :] + np.arange(T + 1)[:, None]]


def text_streams(ids, batch_size: int) -> np.ndarray:
    """Split a text into ``batch_size`` contiguous streams (char-rnn layout).

    Column ``b`` is the ``b``-th of ``batch_size`` equal consecutive pieces
    of the text (the tail that does not divide evenly is dropped), so
    consecutive windows ``streams[k*T : (k+1)*T + 1]`` continue each other and
    a truncated-BPTT trainer can carry state across them.

    Returns
    -------
    ndarray, shape (L // batch_size, batch_size), int64
    """
    ids, B = _ids(ids), positive_int("batch_size", batch_size)
    L = ids.shape[0] // B
    if L < 2:
        raise ValueError(f"text of {ids.shape[0]} ids is too short for batch_size={B}")
    return ids[:L * B].reshape(B, L).T.copy()


def next_char_data(windows, vocab_size: int, *, dtype=np.float64) -> SequenceData:
    """One-hot inputs and next-character targets from an id array.

    Parameters
    ----------
    windows : ndarray, shape (T + 1, N) int -- from :func:`text_windows` or a
        slice of :func:`text_streams`.
    vocab_size : int -- V.
    dtype : float32 or float64

    Returns
    -------
    SequenceData
        ``xs`` (T, N, V) one-hot of ``windows[:-1]``, ``ys`` (T, N) int64
        ``windows[1:]``, mask all True, ``target_at="every"``.
    """
    w = np.asarray(windows)
    if w.ndim != 2 or w.shape[0] < 2 or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"windows must be (T + 1, N) integer ids with T >= 1; got {w.dtype} {w.shape}")
    T, N = w.shape[0] - 1, w.shape[1]
    return SequenceData(one_hot(w[:-1], positive_int("vocab_size", vocab_size), float_dtype(dtype)),
                        w[1:].astype(np.int64), np.ones((T, N), dtype=bool), "every",
                        np.full(N, T, dtype=np.int64))


def sample_text(model, vocab: Vocab, prime: str, n: int, *, temperature: float = 1.0,
                rng) -> str:
    """Let a trained next-character model write ``n`` characters after ``prime``.

    The model (any ``rnnbp.Layer`` mapping one-hot characters ``(B, V)``, or
    character ids ``(B,)`` when it starts with an ``rnnbp.Embedding``, to
    logits ``(B, V)``) first reads ``prime``; then, one step at a time, a
    character is drawn from ``softmax(logits / temperature)`` and fed back
    as the next input. Low temperatures give the likeliest, more repetitive
    text; 1.0 samples the model's own distribution.

    Parameters
    ----------
    model : rnnbp.Layer
        Put in evaluation mode for the duration.
    vocab : Vocab
    prime : str
        Non-empty start text; every character must be in ``vocab``.
    n : int
        Characters to write.
    temperature : float, default 1.0
        > 0.
    rng : int or numpy.random.Generator

    Returns
    -------
    str
        ``prime`` followed by the ``n`` sampled characters.
    """
    n = positive_int("n", n)
    if not isinstance(prime, str) or not prime:
        raise ValueError(f"prime: expected a non-empty string, got {prime!r}")
    if not temperature > 0:
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    gen = as_rng(rng)
    dtype = model.dtype or np.float64
    V = vocab.size
    was_training = model.training
    model.eval()
    try:
        state = model.initial_state(1)
        out = list(prime)
        logits = None
        def step(i: int, state):                       # ids to a model that embeds, else one-hot
            x = np.array([i]) if model.takes_ids else one_hot(np.array([i]), V, dtype=dtype)
            return model.forward(x, state)

        for i in vocab.encode(prime):
            logits, state, _ = step(i, state)
        for _ in range(n):
            z = logits[0].astype(np.float64) / temperature
            p = np.exp(z - z.max())
            i = int(gen.choice(V, p=p / p.sum()))
            out.append(vocab.decode([i]))
            logits, state, _ = step(i, state)
    finally:
        model.train(was_training)
    return "".join(out)
