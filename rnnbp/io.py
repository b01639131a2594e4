"""Save and load models: one ``.npz`` file of arrays plus a JSON spec, no pickle.

File format (version 1)
-----------------------
A model file is a zip archive readable by ``numpy.load(path,
allow_pickle=False)``. It holds one ``.npy`` member per trainable array,
named by its qualified name in ``model.params`` (``"0.W_ih.npy"``), and one
reserved member, ``"__rnnbp__.npy"``: a 1-d ``uint8`` array of UTF-8 JSON,

.. code-block:: text

    {"format": "rnnbp", "version": 1, "rnnbp_version": "0.2.0",
     "dtype": "float64",
     "model": {"type": "Sequential",
               "config": {"layers": [{"type": "LSTM", "config": {...}}, ...]}},
     "params": {"0.W_ih": {"shape": [3, 32], "dtype": "float64"}, ...}}

``model`` is ``{"type": layer_type_name(type(layer)), "config": layer.get_config()}``
(``rnnbp.protocol.layer_type_name``: the name the class is registered under in
``rnnbp.protocol.LAYER_TYPES``);
``dtype`` is the model's dtype (``null`` for a parameter-free model).

Members are stored uncompressed (``ZIP_STORED``): trained weights are
close to random bits and deflate saves a few percent at most, while stored
members load faster and bound what a file can make ``load`` read by the
file's own size (no decompression bombs).

Paths
-----
Like ``numpy.savez``, ``save`` appends ``.npz`` to a path that does not end
with it, and ``load`` applies the same rule, so ``load(p)`` reads what
``save(model, p)`` wrote for any ``p``. ``save`` returns the path it wrote.

Non-finite weights
------------------
``load`` refuses a file whose parameters hold NaN or infinity (a diverged
run saved by mistake), naming the parameter; ``load(path,
allow_nonfinite=True)`` reads it anyway, with a warning.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from . import _checks
from .errors import LoadError
from .protocol import LAYER_TYPES, Layer, layer_type_name

# One module for one idea, a safe file format; past ~450 lines because every way a file
# can be refused (truncated, hand-made, oversized, pickled) is checked and named here,
# next to the atomic write. Training checkpoints (rnnbp/checkpoint.py) reuse it.

__all__ = ["save", "load", "LoadError", "FORMAT_VERSION", "HEADER_KEY"]

#: Version of the file format written by ``save`` and read by ``load``.
FORMAT_VERSION = 1
#: Name of the reserved array holding the JSON header.
HEADER_KEY = "__rnnbp__"

_SUFFIX = ".npz"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_HEADER_BYTES = 64 * 2**20
# Room for the magic, version and header of a .npy member (numpy reads
# headers of at most 10000 bytes by default).
_NPY_OVERHEAD = 16384
# What a truncated, corrupted or hand-made archive can raise while it is read.
# (RuntimeError: zipfile's "encrypted member"; struct.error: short binary fields.)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, LookupError,
                ValueError, TypeError, RuntimeError, OverflowError, MemoryError)

PathLike = str | os.PathLike


# -- paths --------------------------------------------------------------------
def _model_path(path: Any) -> Path:
    """The file ``save`` writes and ``load`` reads for ``path``: ``.npz`` appended if missing."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path: expected a str or os.PathLike of str, got {type(path).__name__}")
    if not path.endswith(_SUFFIX):
        path += _SUFFIX
    return Path(path)


# -- save ---------------------------------------------------------------------
def save(model: Layer, path: PathLike) -> Path:
    """Write a model's architecture and parameters to one ``.npz`` file, atomically.

    Parameters
    ----------
    model : Layer
        Any layer or ``Sequential`` whose classes are registered in
        ``rnnbp.protocol.LAYER_TYPES`` (every public ``Layer`` subclass is).
    path : str or os.PathLike
        Target file; ``.npz`` is appended when the name does not end with it.

    Returns
    -------
    pathlib.Path
        The file written (with the ``.npz`` suffix).

    Raises
    ------
    TypeError
        ``model`` is not a ``Layer``, one of its classes is not registered,
        its config is not JSON, or a parameter is not a numeric array.
    ValueError
        The config does not rebuild a model with the same parameter names,
        shapes and dtypes (the file would not load), or a parameter name is
        the reserved ``"__rnnbp__"``.
    FileNotFoundError
        The target's directory does not exist.

    Notes
    -----
    The file is written to a temporary file in the target's directory,
    flushed and ``fsync``-ed, then renamed over the target with
    ``os.replace`` (and the directory is ``fsync``-ed where the platform
    allows), so a crash or error mid-save leaves any previous file intact
    and no temporary file behind. A replaced file keeps its permission bits;
    a new one gets the usual ``0o666 & ~umask``.

    Before touching the disk, ``save`` rebuilds the model from its JSON
    config (as ``load`` will) and checks that the parameter names, shapes
    and dtypes agree, so a file that cannot be loaded is never written. This
    costs one model construction.

    Only parameters and architecture are saved: not gradients, not the
    training/eval mode, not optimizer state (it lives in the optimizer), and
    not a ``Dropout`` layer's random generator.

    Examples
    --------
    >>> import os, tempfile
    >>> from rnnbp.layers import Linear, Sequential, Tanh
    >>> from rnnbp.io import load, save
    >>> model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save(model, os.path.join(tmp, "model"))
    ...     print(path.name, sorted(os.listdir(tmp)))
    model.npz ['model.npz']
    """
    _checks.instance(model, Layer, "model", "a rnnbp.Layer")
    target = _model_path(path)
    header, arrays = _serialise(model)
    _check_rebuilds(model, header)
    _atomic_write(target, header, arrays)
    return target


def _check_registered(layer: Layer, where: str) -> None:
    name = layer_type_name(type(layer))
    if LAYER_TYPES.get(name) is not type(layer):
        raise TypeError(
            f"model: {where} is a {type(layer).__module__}.{type(layer).__qualname__}, "
            f"which is not registered in rnnbp.protocol.LAYER_TYPES under {name!r} "
            "(classes whose names start with '_' are never registered), so it could not be loaded")
    for leaf_name, leaf in layer.leaves():
        if leaf is not layer:
            _check_registered(leaf, f"{where}'s layer {leaf_name!r}")


def _serialise(model: Layer) -> tuple[bytes, dict[str, np.ndarray]]:
    """The JSON header (UTF-8) and the arrays to store, checked."""
    _check_registered(model, "model")
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, dict[str, Any]] = {}
    for name, p in model.params.items():
        if not isinstance(name, str) or name == HEADER_KEY:
            raise ValueError(f"model.params: parameter name {name!r} is reserved or not a str")
        if not isinstance(p, np.ndarray) or p.dtype.kind not in "fc":
            got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise TypeError(f"model.params[{name!r}]: expected a float numpy array, got {got}")
        arrays[name] = p
        meta[name] = {"shape": list(p.shape), "dtype": p.dtype.name}
    spec = {"format": "rnnbp", "version": FORMAT_VERSION,
            "rnnbp_version": _rnnbp_version(),
            "dtype": None if model.dtype is None else np.dtype(model.dtype).name,
            "model": {"type": layer_type_name(type(model)), "config": model.get_config()},
            "params": meta}
    try:
        text = json.dumps(spec, allow_nan=False, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"model: get_config() must return JSON (str, int, float, bool, None, "
                        f"lists, dicts; finite numbers): {exc}") from exc
    return text.encode("utf-8"), arrays


def _rnnbp_version() -> str:
    from . import __version__  # at call time: the package is fully imported by then
    return __version__


def _check_rebuilds(model: Layer, header: bytes) -> None:
    """Rebuild from the JSON as ``load`` will; refuse a config that loses parameters."""
    spec = json.loads(header.decode("utf-8"))["model"]
    try:
        rebuilt = _build(spec, "model")
    except _BuildError as exc:
        raise ValueError(f"model: get_config() does not rebuild the model, so the file "
                         f"would not load: {exc}") from exc
    want = {k: (p.shape, p.dtype) for k, p in model.params.items()}
    got = {k: (p.shape, p.dtype) for k, p in rebuilt.params.items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()), key=str)
        raise ValueError(f"model: get_config() rebuilds different parameters, so the file "
                         f"would not load: expected {sorted(want.items(), key=str)}, "
                         f"rebuilt {sorted(got.items(), key=str)} (differences: {diff})")


def _atomic_write(target: Path, header: bytes, arrays: dict[str, np.ndarray]) -> None:
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"path: directory {directory} does not exist (writing {target})")
    mode = _file_mode(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # numpy.savez's own layout, written here so that no parameter name
            # can collide with savez's keyword arguments and nothing is pickled
            with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED,
                                 allowZip64=True) as zf:
                _write_member(zf, HEADER_KEY, np.frombuffer(header, dtype=np.uint8))
                for name, p in arrays.items():
                    _write_member(zf, name, p)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _write_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(name + ".npy", mode="w", force_zip64=True) as member:
        npy_format.write_array(member, array, allow_pickle=False)


def _file_mode(target: Path) -> int | None:
    """Permission bits for the new file: the old file's, else ``0o666 & ~umask``."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        pass
    if os.name != "posix":
        return None
    try:  # Linux: read the umask without changing it (thread-safe)
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform can open a directory."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- load ---------------------------------------------------------------------
def load(path: PathLike, *, allow_nonfinite: bool = False) -> Layer:
    """Rebuild a model saved by ``save``: bit-identical parameters, no pickle.

    Parameters
    ----------
    path : str or os.PathLike
        The file; ``.npz`` is appended when the name does not end with it
        (the same rule as ``save``).
    allow_nonfinite : bool, default False
        Load parameters that hold NaN or infinity, with a ``RuntimeWarning``
        naming them, instead of refusing the file.

    Returns
    -------
    Layer
        A new model of the saved architecture, in training mode, whose
        parameters equal the saved arrays bit for bit (same dtype) and whose
        gradients are zero.

    Raises
    ------
    LoadError
        A ``ValueError`` naming the file and what was wrong: not a zip
        archive, truncated or corrupted; no or malformed JSON header; wrong
        format or version; a layer type not in ``rnnbp.protocol.LAYER_TYPES``
        or a config its constructor refuses; an object (or other non-float)
        array; a missing or unexpected array; a wrong shape or dtype; a
        parameter holding NaN or infinity (unless ``allow_nonfinite``).
    FileNotFoundError
        No such file.

    Notes
    -----
    Nothing in the file is ever unpickled, imported or evaluated: arrays are
    read with ``numpy.load(path, allow_pickle=False)``, layer types are
    looked up by name in ``LAYER_TYPES`` only, and configs (plain JSON
    values) are passed to those constructors as keyword arguments. The
    declared shapes and dtypes are checked before any array data is read.

    The model is built from its config and the saved arrays are copied
    *into* its parameter arrays (``p[...] = saved``), never rebound, so a
    ``Sequential`` still shares its children's arrays. A ``Dropout`` layer
    gets a fresh, unseeded generator: reseed it (``layer.rng =
    numpy.random.default_rng(seed)``; ``rnnbp.fit`` does this from its
    ``seed``) for reproducible masks.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from rnnbp.layers import Linear, Sequential, Tanh
    >>> from rnnbp.io import load, save
    >>> model = Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load(save(model, os.path.join(tmp, "model")))
    >>> loaded
    Sequential(
      Linear(input_size=3, output_size=4, bias=True, dtype='float64', init='glorot_uniform'),
      Tanh(),
      Linear(input_size=4, output_size=2, bias=True, dtype='float64', init='glorot_uniform')
    )
    >>> all(np.array_equal(loaded.params[k], model.params[k]) for k in model.params)
    True
    >>> loaded.params["0.W"] is loaded.layers[0].params["W"]
    True
    """
    source = _model_path(path)
    with open(source, "rb") as f:  # FileNotFoundError, PermissionError: as they are
        magic = f.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        got = "an empty file" if not magic else f"a file starting with {magic!r}"
        raise LoadError(source, f"not an rnnbp model file: expected a .npz (zip) archive "
                                f"starting with {_ZIP_MAGIC!r}, got {got}")
    try:
        # a zip archive, so numpy returns a lazy NpzFile; nothing is read yet
        with np.load(source, allow_pickle=False) as npz:
            return _read(source, npz, _checks.flag(allow_nonfinite, "allow_nonfinite"))
    except LoadError:
        raise
    except _READ_ERRORS as exc:
        raise LoadError(source, f"corrupted, truncated or unreadable .npz archive "
                                f"({type(exc).__name__}: {exc})") from exc


def _read(source: Path, npz: Any, allow_nonfinite: bool = False) -> Layer:
    members = npz.zip.namelist()
    odd = [m for m in members if not m.endswith(".npy")]
    if odd:
        raise LoadError(source, f"unexpected non-array member(s) {odd} in the archive")
    if len(set(members)) != len(members):
        raise LoadError(source, "duplicate member names in the archive")
    names = {m[:-len(".npy")] for m in members}
    if HEADER_KEY not in names:
        raise LoadError(source, f"no rnnbp header (array {HEADER_KEY!r} is missing): "
                                "not a file written by rnnbp.io.save")
    header = _read_header(source, npz)

    try:
        model = _build(header["model"], "model")
    except _BuildError as exc:
        raise LoadError(source, f"cannot rebuild the model (file written by rnnbp "
                                f"{header.get('rnnbp_version')!s}): {exc}") from None

    model_dtype = None if model.dtype is None else np.dtype(model.dtype).name
    if header["dtype"] != model_dtype:
        raise LoadError(source, f"header 'dtype': expected {model_dtype!r} "
                                f"(the rebuilt model's), got {header['dtype']!r}")

    expected = model.params
    _same_names(source, "header 'params'", set(expected), set(header["params"]))
    for name, p in expected.items():
        entry = header["params"][name]
        if not isinstance(entry, dict) or entry.get("shape") != list(p.shape) \
                or entry.get("dtype") != p.dtype.name:
            raise LoadError(source, f"header 'params' entry {name!r}: expected "
                                    f"{{'shape': {list(p.shape)}, 'dtype': {p.dtype.name!r}}}, got {entry!r}")
    _same_names(source, "arrays", set(expected), names - {HEADER_KEY})

    for name, p in expected.items():
        saved = _read_array(source, npz, name, p.shape, p.dtype)
        bad = ~np.isfinite(saved)
        if bad.any():
            what = (f"parameter {name!r} holds {int(bad.sum())} non-finite value(s) (first "
                    f"{saved[bad][0]} at index {tuple(int(i) for i in np.argwhere(bad)[0])})")
            if not allow_nonfinite:
                raise LoadError(source, f"{what}; pass allow_nonfinite=True to load it anyway")
            warnings.warn(f"{source}: {what}", RuntimeWarning, stacklevel=3)
        p[...] = saved  # into the existing array: Sequential shares it with its child
    return model


def _same_names(source: Path, what: str, expected: set[str], got: set[str]) -> None:
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing parameter(s) {missing}")
        if extra:
            parts.append(f"unexpected parameter(s) {extra}")
        raise LoadError(source, f"{what}: {' and '.join(parts)} "
                                f"(the model has {sorted(expected)})")


def _read_header(source: Path, npz: Any) -> dict[str, Any]:
    shape, dtype = _npy_header(source, npz, HEADER_KEY)
    if dtype != np.uint8 or len(shape) != 1:
        raise LoadError(source, f"header {HEADER_KEY!r}: expected a 1-d uint8 array of "
                                f"UTF-8 JSON, got shape {shape} dtype {dtype}")
    if shape[0] > _MAX_HEADER_BYTES:
        raise LoadError(source, f"header {HEADER_KEY!r}: expected at most "
                                f"{_MAX_HEADER_BYTES} bytes, got {shape[0]}")
    _check_member_size(source, npz, HEADER_KEY, shape[0])
    raw = npz[HEADER_KEY]
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(source, f"header {HEADER_KEY!r}: expected UTF-8 JSON, got "
                                f"malformed text ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise LoadError(source, f"header: expected a JSON object, got {type(header).__name__}")
    if header.get("format") != "rnnbp":
        raise LoadError(source, f"header 'format': expected 'rnnbp', got {header.get('format')!r}")
    version = header.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        hint = " (written by a newer rnnbp; upgrade to read it)" if newer else ""
        raise LoadError(source, f"header 'version': expected {FORMAT_VERSION}, got {version!r}{hint}")
    missing = [k for k in ("dtype", "model", "params") if k not in header]
    if missing:
        raise LoadError(source, f"header: missing key(s) {missing}")
    if header["dtype"] not in ("float64", "float32", None):
        raise LoadError(source, f"header 'dtype': expected 'float64', 'float32' or null, "
                                f"got {header['dtype']!r}")
    if not isinstance(header["params"], dict):
        raise LoadError(source, f"header 'params': expected a JSON object, got "
                                f"{type(header['params']).__name__}")
    return header


def _npy_header(source: Path, npz: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype declared by a member's .npy header, read without its data."""
    with npz.zip.open(name + ".npy") as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise LoadError(source, f"array {name!r}: expected .npy format version 1.0 or 2.0, "
                                    f"got {version[0]}.{version[1]}")
    if dtype.hasobject:
        raise LoadError(source, f"array {name!r}: object arrays are refused (loading never "
                                f"unpickles), got dtype {dtype}")
    return tuple(shape), dtype


def _check_member_size(source: Path, npz: Any, name: str, nbytes: int) -> None:
    size = npz.zip.getinfo(name + ".npy").file_size
    if size > nbytes + _NPY_OVERHEAD:
        raise LoadError(source, f"array {name!r}: expected about {nbytes} bytes of data, "
                                f"the archive member holds {size}")


def _read_array(source: Path, npz: Any, name: str, shape: tuple[int, ...],
                dtype: np.dtype) -> np.ndarray:
    got_shape, got_dtype = _npy_header(source, npz, name)
    if got_dtype != dtype:
        raise LoadError(source, f"parameter {name!r}: expected dtype {dtype}, got {got_dtype}")
    if got_shape != tuple(shape):
        raise LoadError(source, f"parameter {name!r}: expected shape {tuple(shape)}, got {got_shape}")
    _check_member_size(source, npz, name, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    saved = npz[name]
    if not isinstance(saved, np.ndarray) or saved.dtype != dtype or saved.shape != tuple(shape):
        raise LoadError(source, f"parameter {name!r}: expected a {dtype} array of shape "
                                f"{tuple(shape)}, read {getattr(saved, 'dtype', type(saved))} "
                                f"{getattr(saved, 'shape', '')}")
    return saved


# -- rebuilding a model from its spec -----------------------------------------
class _BuildError(Exception):
    """A spec that does not describe a buildable model (message says where and why)."""


def _build(spec: Any, where: str) -> Layer:
    """Build the layer ``{"type": name, "config": {...}}`` (children recursively)."""
    if not isinstance(spec, dict) or set(spec) != {"type", "config"}:
        raise _BuildError(f"{where}: expected {{'type': ..., 'config': {{...}}}}, got {_short(spec)}")
    name, config = spec["type"], spec["config"]
    if not isinstance(name, str) or name not in LAYER_TYPES:
        raise _BuildError(f"{where}: unknown layer type {name!r}; expected one of "
                          f"{sorted(LAYER_TYPES)}")
    if not isinstance(config, dict):
        raise _BuildError(f"{where} ({name}): expected a config object, got {_short(config)}")
    cls = LAYER_TYPES[name]
    try:
        return cls.from_config(dict(config), lambda child, at: _build(child, f"{where}.{at}"))
    except _BuildError:
        raise
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise _BuildError(f"{where}: {name}(**{_short(config)}) failed: "
                          f"{type(exc).__name__}: {exc}") from None


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
