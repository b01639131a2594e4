"""Training checkpoints: everything :func:`rnnbp.fit` needs to resume exactly, in one file.

``fit(..., checkpoint=path)`` writes one after every epoch and
``fit(..., resume=path)`` reads it back; a resumed run equals the
uninterrupted one bit for bit (parameters and :class:`rnnbp.History`, except
the wall-clock ``epoch_time``). The file follows the rules of
:func:`rnnbp.save`: a ``.npz`` archive of arrays plus one JSON header,
written to a temporary file and renamed, read with ``allow_pickle=False``,
every declared shape and dtype checked before any data is read.

What a checkpoint holds
-----------------------
- the model (architecture and parameters, as :func:`rnnbp.save` writes it);
- the optimizer's full state (kind, ``lr``, step count, every buffer) and
  the learning-rate schedule's state when ``fit`` has one;
- the :class:`~rnnbp.History` so far and the number of epochs completed;
- for ``patience``: the best validation loss, the epochs waited since, and
  the best epoch's parameters;
- the state of every random generator ``fit`` uses: the shuffling order's
  and that of every layer that draws (``Dropout``; through ``Layer.reseed``);
- the settings that shape the run (``batch_size``, ``shuffle``, ``bptt``,
  ``target``, ``patience``, the number of sequences), so that a resume with
  different ones warns that it is no longer the same run.
"""

# Array members are named "<part>/<name>": "model/0.W_ih", "optimizer/0.W_ih/exp_avg",
# "best/0.W_ih", "history/loss", "history/state_grad_norms/0". The header lists every
# member with its shape and dtype; nothing else may be in the archive.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import _versions, io
from .errors import LoadError
from .history import History
from .protocol import Layer

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION"]

#: The ``format`` field of a checkpoint's header (a model file has ``"rnnbp"``).
CHECKPOINT_FORMAT = "rnnbp-checkpoint"
#: Version of the checkpoint layout written and read here.
CHECKPOINT_VERSION = 1

_HISTORY_FLOATS = ("loss", "metric", "val_loss", "val_metric", "grad_norm", "epoch_time")
_RNG_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}


def write(path: Any, *, model: Layer, optimizer: Any, schedule: Any, history: History,
          epochs_done: int, best_loss: float, waited: int, best_params: dict[str, np.ndarray] | None,
          rngs: list[np.random.Generator], settings: dict[str, Any], stopped: bool) -> Path:
    """Write one checkpoint atomically (see the module docstring for what it holds)."""
    target = io._model_path(path)
    spec_bytes, params = io._serialise(model)
    arrays: dict[str, np.ndarray] = {f"model/{k}": p for k, p in params.items()}
    state = optimizer.state_dict()
    for name, bufs in state["state"].items():
        for b, a in bufs.items():
            arrays[f"optimizer/{name}/{b}"] = a
    if best_params is not None:
        arrays.update({f"best/{k}": p for k, p in best_params.items()})
    for key in _HISTORY_FLOATS:
        arrays[f"history/{key}"] = np.asarray(getattr(history, key), dtype=np.float64)
    arrays["history/clipped"] = np.asarray(history.clipped, dtype=bool)
    for name, rows in history.state_grad_norms.items():
        arrays[f"history/state_grad_norms/{name}"] = np.asarray(rows, dtype=np.float64)
    arrays["fit/best_loss"] = np.asarray(best_loss, dtype=np.float64)
    header = {
        "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
        "rnnbp_version": io._rnnbp_version(),
        "spec": json.loads(spec_bytes.decode("utf-8")),
        "optimizer": {"type": state["type"], "lr": state["lr"], "steps": state["steps"],
                      "hyper": _jsonable(state["hyper"])},
        "schedule": None if schedule is None else {"type": type(schedule).__name__,
                                                   **_jsonable(schedule.state_dict())},
        "history": {"skipped": history.skipped, "best_epoch": history.best_epoch,
                    "stopped_early": history.stopped_early,
                    "state_grad_norms": list(history.state_grad_norms)},
        "epochs_done": epochs_done, "waited": waited, "has_best": best_params is not None,
        "stopped": stopped, "rngs": [g.bit_generator.state for g in rngs],
        "settings": settings,
        "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.name} for k, a in arrays.items()},
    }
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    io._atomic_write(target, text, arrays)
    return target


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


class Restored:
    """What :func:`read` gives back to ``fit`` beyond what it loads in place."""

    def __init__(self, history: History, epochs_done: int, best_loss: float, waited: int,
                 best_params: dict[str, np.ndarray] | None, rng_states: list[dict], settings: dict,
                 stopped: bool) -> None:
        self.history, self.epochs_done, self.best_loss, self.waited = history, epochs_done, best_loss, waited
        self.best_params, self.rng_states, self.settings, self.stopped = best_params, rng_states, settings, stopped


def read(path: Any, *, model: Layer, optimizer: Any, schedule: Any, n_rngs: int) -> Restored:
    """Check a checkpoint against the model, optimizer and schedule, then load it into them.

    Everything is checked before anything is changed: a refused file leaves
    the model, optimizer and schedule as they were.

    Raises
    ------
    LoadError
        Not a checkpoint, truncated, tampered (a wrong shape, dtype, member
        or header field), another architecture, another optimizer kind or
        schedule kind, or non-finite parameters.
    FileNotFoundError
        No such file.
    """
    source = io._model_path(path)
    with open(source, "rb") as f:
        magic = f.read(len(io._ZIP_MAGIC))
    if magic != io._ZIP_MAGIC:
        raise LoadError(source, f"not an rnnbp checkpoint: expected a .npz (zip) archive, got "
                                f"{'an empty file' if not magic else repr(magic)}")
    try:
        with np.load(source, allow_pickle=False) as npz:
            return _read(source, npz, model, optimizer, schedule, n_rngs)
    except LoadError:
        raise
    except io._READ_ERRORS as exc:
        raise LoadError(source, f"corrupted, truncated or unreadable checkpoint "
                                f"({type(exc).__name__}: {exc})") from exc


def _read(source: Path, npz: Any, model: Layer, optimizer: Any, schedule: Any, n_rngs: int) -> Restored:
    members = npz.zip.namelist()
    if io.HEADER_KEY + ".npy" not in members:
        raise LoadError(source, "no rnnbp header: not a file written by fit(checkpoint=...)")
    header = _header(source, npz)
    declared = header["arrays"]
    names = {m[:-len(".npy")] for m in members if m.endswith(".npy")} - {io.HEADER_KEY}
    if len(members) != len(set(members)) or any(not m.endswith(".npy") for m in members):
        raise LoadError(source, "unexpected or duplicate members in the archive")
    io._same_names(source, "arrays", set(declared), names)
    arrays = {}
    for name, entry in declared.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) \
                or entry.get("dtype") not in ("float64", "float32", "bool"):
            raise LoadError(source, f"header 'arrays' entry {name!r}: expected {{'shape': [...], "
                                    f"'dtype': 'float64'|'float32'|'bool'}}, got {entry!r}")
        arrays[name] = io._read_array(source, npz, name, tuple(entry["shape"]), np.dtype(entry["dtype"]))

    # the model: the same architecture as the file's, parameters of the same shapes, finite
    spec_bytes, params = io._serialise(model)
    ours = json.loads(spec_bytes.decode("utf-8"))
    if header["spec"].get("model") != ours["model"]:
        raise LoadError(source, f"the checkpoint holds another model: expected "
                                f"{io._short(ours['model'])}, got {io._short(header['spec'].get('model'))}")
    for name, p in params.items():
        saved = _get(source, arrays, f"model/{name}", p)
        bad = ~np.isfinite(saved)
        if bad.any():
            raise LoadError(source, f"parameter {name!r} holds {int(bad.sum())} non-finite value(s) "
                                    f"(first at index {tuple(int(i) for i in np.argwhere(bad)[0])})")

    # the optimizer: the same kind, the same buffers
    saved_opt = header["optimizer"]
    if not isinstance(saved_opt, dict) or saved_opt.get("type") != type(optimizer).__name__:
        got = saved_opt.get("type") if isinstance(saved_opt, dict) else saved_opt
        raise LoadError(source, f"optimizer: the checkpoint holds the state of optimizer {got!r}, fit was "
                                f"given a {type(optimizer).__name__} (build the optimizer as for the saved run)")
    if _jsonable(optimizer.state_dict()["hyper"]) != saved_opt.get("hyper"):
        raise LoadError(source, f"optimizer: the checkpoint's {saved_opt['type']} has hyper-parameters "
                                f"{saved_opt.get('hyper')}, the optimizer given has "
                                f"{_jsonable(optimizer.state_dict()['hyper'])}")
    opt_state = {"type": saved_opt["type"], "lr": saved_opt.get("lr"), "steps": saved_opt.get("steps"),
                 "state": {}}
    for name, bufs in optimizer.state.items():
        opt_state["state"][name] = {b: _get(source, arrays, f"optimizer/{name}/{b}", a) for b, a in bufs.items()}
    extra = [k for k in arrays if k.startswith("optimizer/")
             and k.split("/", 1)[1].rpartition("/")[0] not in optimizer.state]
    if extra:
        raise LoadError(source, f"optimizer: buffers of parameters the model does not have: {extra[:3]}")

    # the schedule
    saved_sched = header["schedule"]
    if (saved_sched is None) != (schedule is None) or (
            schedule is not None and saved_sched.get("type") != type(schedule).__name__):
        got = None if saved_sched is None else saved_sched.get("type")
        want = None if schedule is None else type(schedule).__name__
        raise LoadError(source, f"schedule: the checkpoint holds {got!r}, fit was given {want!r}")

    # the history and the loop's own state
    h = header["history"]
    history = History(**{k: [float(v) for v in _get(source, arrays, f"history/{k}")] for k in _HISTORY_FLOATS})
    history.clipped = [bool(v) for v in _get(source, arrays, "history/clipped")]
    history.state_grad_norms = {n: _get(source, arrays, f"history/state_grad_norms/{n}").copy()
                                for n in h["state_grad_norms"]}
    history.skipped, history.best_epoch, history.stopped_early = h["skipped"], h["best_epoch"], h["stopped_early"]
    best_params = None
    if header["has_best"]:
        best_params = {k: _get(source, arrays, f"best/{k}", p).copy() for k, p in params.items()}
    rng_states = header["rngs"]
    if not isinstance(rng_states, list) or len(rng_states) != n_rngs or not all(
            isinstance(r, dict) and set(r) == _RNG_KEYS and r["bit_generator"] == "PCG64" for r in rng_states):
        raise LoadError(source, f"header 'rngs': expected {n_rngs} PCG64 generator states (one for the "
                                f"shuffling, one per layer), got {io._short(rng_states)}")
    for state in rng_states:                   # refuse a malformed state now, not mid-training
        try:
            np.random.PCG64().state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise LoadError(source, f"header 'rngs': a malformed generator state ({exc})") from None
    restored = Restored(history, header["epochs_done"], float(_get(source, arrays, "fit/best_loss")),
                        header["waited"], best_params, rng_states, header["settings"], header["stopped"])
    if len(history.loss) != restored.epochs_done:
        raise LoadError(source, f"header 'epochs_done' is {restored.epochs_done}, but the history "
                                f"holds {len(history.loss)} epochs")

    # every check passed: load in place
    for name, p in params.items():
        p[...] = arrays[f"model/{name}"]
        _versions.bump(p)
    try:
        optimizer.load_state_dict(opt_state)
        if schedule is not None:
            schedule.load_state_dict({k: v for k, v in saved_sched.items() if k != "type"})
    except (TypeError, ValueError, KeyError) as exc:
        raise LoadError(source, f"optimizer or schedule state refused: {exc}") from None
    return restored


def _get(source: Path, arrays: dict[str, np.ndarray], name: str, like: np.ndarray | None = None) -> np.ndarray:
    if name not in arrays:
        raise LoadError(source, f"array {name!r} is missing")
    a = arrays[name]
    if like is not None and (a.shape != like.shape or a.dtype != like.dtype):
        raise LoadError(source, f"array {name!r}: expected shape {like.shape} and dtype {like.dtype}, "
                                f"got {a.shape} {a.dtype}")
    return a


def _header(source: Path, npz: Any) -> dict[str, Any]:
    shape, dtype = io._npy_header(source, npz, io.HEADER_KEY)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > io._MAX_HEADER_BYTES:
        raise LoadError(source, f"header: expected a 1-d uint8 array of UTF-8 JSON, got shape {shape} dtype {dtype}")
    io._check_member_size(source, npz, io.HEADER_KEY, shape[0])
    try:
        header = json.loads(npz[io.HEADER_KEY].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LoadError(source, f"header: malformed JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        got = header.get("format") if isinstance(header, dict) else type(header).__name__
        hint = " (a model file: load it with rnnbp.load)" if got == "rnnbp" else ""
        raise LoadError(source, f"header 'format': expected {CHECKPOINT_FORMAT!r}, got {got!r}{hint}")
    if header.get("version") != CHECKPOINT_VERSION:
        raise LoadError(source, f"header 'version': expected {CHECKPOINT_VERSION}, got {header.get('version')!r}")
    want = {"spec": dict, "optimizer": dict, "history": dict, "epochs_done": int, "waited": int,
            "has_best": bool, "stopped": bool, "rngs": list, "settings": dict, "arrays": dict}
    for key, kind in want.items():
        if not isinstance(header.get(key), kind) or (kind is int and isinstance(header.get(key), bool)):
            raise LoadError(source, f"header {key!r}: expected a {kind.__name__}, got {io._short(header.get(key))}")
    if "schedule" not in header or not (header["schedule"] is None or isinstance(header["schedule"], dict)):
        raise LoadError(source, "header 'schedule': expected an object or null")
    h = header["history"]
    if not (isinstance(h.get("skipped"), int) and isinstance(h.get("stopped_early"), bool)
            and (h.get("best_epoch") is None or isinstance(h.get("best_epoch"), int))
            and isinstance(h.get("state_grad_norms"), list)):
        raise LoadError(source, f"header 'history': malformed {io._short(h)}")
    return header
