"""Run independent, seeded trials on any ``concurrent.futures.Executor``, with a journal.

An experiment (or a user's own sweep) is a list of :class:`Trial` objects: a
picklable top-level function and its keyword arguments, which carry the
trial's own seed. :func:`run_trials` (or a :class:`Sweep`, which also
collects timings) runs them serially in this process, on a local process
pool, or on a Dask cluster's executor, and returns the results **in trial
order**, whatever order they finished in. Nothing depends on which worker
ran a trial or when, so the numbers are the same however it runs.

Each finished trial is appended to a journal (JSON lines, written with one
``write`` and an ``fsync``) as soon as it completes; with ``resume=True``
trials already in the journal are not run again. Results must be
JSON-serialisable (numpy scalars and arrays are converted to Python numbers
and lists); every result, fresh or from the journal, is returned as its JSON
round trip, so a resumed sweep returns exactly what an uninterrupted one
does (floats are written by ``repr`` and read back bit for bit).

A trial that raises does not stop the others: the sweep finishes every other
trial, then raises :class:`SweepError` naming each failed trial's key,
configuration and traceback.

This module imports neither numpy nor Dask at load time: ``python -m tasks``
imports it before pinning BLAS threads, and Dask is optional.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Trial", "TrialFailure", "SweepError", "Sweep", "run_trials", "executor",
           "blas_environment", "blas_info", "BLAS_VARIABLES", "DASK_MISSING"]

#: Environment variables that set the thread count of OpenBLAS, OpenMP and MKL.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

#: What to do when Dask is asked for and not installed.
DASK_MISSING = ('--scheduler needs Dask, an optional extra: pip install -e ".[distributed]" '
                "(from the repository root)")


@dataclass(frozen=True)
class Trial:
    """One independent unit of a sweep: ``fn(**kwargs)``.

    Parameters
    ----------
    key : str
        Unique within the sweep and stable across runs (``"LSTM/seed=3"``):
        the journal finds finished trials by it.
    fn : callable
        A module-level function (picklable by reference, so a worker process
        or a Dask worker can import it). It returns a JSON-serialisable
        result: dicts, lists, str, bool, None, numbers, numpy scalars or
        arrays.
    kwargs : mapping
        Its keyword arguments, including its own explicit seed; nothing may
        depend on global random state or on the order trials run in.
    """

    key: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise TypeError(f"Trial.key: expected a non-empty str, got {self.key!r}")
        if not callable(self.fn):
            raise TypeError(f"Trial.fn: expected a callable, got {type(self.fn).__name__}")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"Trial.kwargs: expected a mapping, got {type(self.kwargs).__name__}")

    def config(self) -> dict[str, Any]:
        """The function's import name and the keyword arguments, as JSON values (for the journal and reports)."""
        name = f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', repr(self.fn))}"
        return json.loads(json.dumps({"fn": name, "kwargs": dict(self.kwargs)}, default=_to_json_or_repr,
                                     sort_keys=True))


@dataclass(frozen=True)
class TrialFailure:
    """A trial that raised: its key, its configuration and the worker's traceback."""

    key: str
    config: dict[str, Any]
    error: str
    traceback: str

    def __str__(self) -> str:
        return (f"trial {self.key!r} failed: {self.error}\n  configuration: "
                f"{json.dumps(self.config, sort_keys=True)}\n" + _indent(self.traceback.rstrip()))


class SweepError(RuntimeError):
    """Some trials failed; every other trial finished (and is in the journal, if there is one).

    Attributes
    ----------
    failures : list of TrialFailure
    results : list
        In trial order; ``None`` where the trial failed.
    """

    def __init__(self, failures: list[TrialFailure], results: list[Any], journal: Path | None) -> None:
        self.failures, self.results = failures, results
        done = len(results) - len(failures)
        kept = (f"; they are in {journal}, and a rerun with resume (--resume) runs only the failed"
                if journal is not None else "")
        super().__init__(f"{len(failures)} of {len(results)} trials failed, {done} finished{kept}:\n"
                         + "\n".join(str(f) for f in failures))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _to_json(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (the ``default`` of ``json.dumps``)."""
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return value.tolist()
    raise TypeError(f"trial result: {type(value).__name__} is not JSON-serialisable; "
                    f"return numbers, str, bool, None, lists, dicts or numpy arrays")


def _to_json_or_repr(value: Any) -> Any:
    try:
        return _to_json(value)
    except TypeError:
        return repr(value)


def _execute(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[bool, str, float]:
    """Run one trial where it is scheduled: ``(ok, JSON text of the result or the traceback, seconds)``.

    The result is serialised here, in the worker, so a result that cannot be
    journalled fails its own trial instead of the sweep.
    """
    start = time.perf_counter()
    try:
        text = json.dumps(fn(**kwargs), default=_to_json)
    except Exception:  # reported with the trial's configuration; the other trials go on
        return False, traceback.format_exc(), time.perf_counter() - start
    return True, text, time.perf_counter() - start


# -- the journal ----------------------------------------------------------------

class _Journal:
    """Finished trials as JSON lines: ``{"key", "config", "seconds", "result"}``, one per line."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[str, dict[str, Any]] = {}
        if resume and self.path.exists():
            lines = []
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:      # a line cut short by a crash mid-write
                    continue
                if isinstance(entry, dict) and {"key", "config", "result"} <= set(entry):
                    self.entries[entry["key"]] = entry
                    lines.append(line)
            _write_atomic(self.path, "".join(line + "\n" for line in lines))
        else:
            _write_atomic(self.path, "")
        self._fd: int | None = None

    def finished(self, trial: Trial) -> dict[str, Any] | None:
        entry = self.entries.get(trial.key)
        return entry if entry is not None and entry["config"] == trial.config() else None

    def append(self, trial: Trial, result_text: str, seconds: float) -> None:
        line = (f'{{"key": {json.dumps(trial.key)}, "config": {json.dumps(trial.config(), sort_keys=True)}, '
                f'"seconds": {seconds!r}, "result": {result_text}}}\n')
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, line.encode())
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


# -- the runner -----------------------------------------------------------------

class Sweep:
    """Runs lists of trials on one executor, journals them, and keeps their timings.

    Parameters
    ----------
    executor : concurrent.futures.Executor, optional
        Where trials run: ``None`` runs them one after another in this
        process; a ``ProcessPoolExecutor``, a Dask ``Client.get_executor()``
        or any other executor runs them concurrently (see :func:`executor`).
    journal : path, optional
        The JSON-lines journal. Without ``resume`` it is started empty.
    resume : bool
        Skip trials whose key and configuration are already in the journal.
    progress : bool
        Show done/total, elapsed and estimated time left on stderr
        (``rnnbp.history.Progress``, the display ``fit`` uses).

    Attributes
    ----------
    stats : dict
        ``trials``, ``computed``, ``from_journal``, ``wall_seconds`` (time
        spent in :meth:`run`) and ``trial_seconds`` (per key, as measured
        where the trial ran), over every :meth:`run` so far.
    """

    def __init__(self, executor: cf.Executor | None = None, *, journal: str | os.PathLike | None = None,
                 resume: bool = False, progress: bool = True) -> None:
        if executor is not None and not isinstance(executor, cf.Executor):
            raise TypeError(f"executor: expected a concurrent.futures.Executor or None, "
                            f"got {type(executor).__name__}")
        if resume and journal is None:
            raise ValueError("resume: True needs a journal to resume from; got journal=None")
        self.executor = executor
        self.journal = _Journal(Path(journal), resume) if journal is not None else None
        self.progress = progress
        self.stats: dict[str, Any] = {"trials": 0, "computed": 0, "from_journal": 0, "wall_seconds": 0.0,
                                      "trial_seconds": {}}

    def run(self, trials: Sequence[Trial], desc: str = "trials") -> list[Any]:
        """Run ``trials`` and return their results in the same order.

        Raises
        ------
        SweepError
            After every other trial has finished, if any trial raised.
        """
        started = time.perf_counter()
        trials = list(trials)
        for i, t in enumerate(trials):
            if not isinstance(t, Trial):
                raise TypeError(f"trials[{i}]: expected a tasks.sweep.Trial, got {type(t).__name__}")
        keys = [t.key for t in trials]
        if len(set(keys)) != len(keys):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            raise ValueError(f"trials: keys must be unique, got duplicates {dup}")
        results: list[Any] = [None] * len(trials)
        todo = []
        for i, t in enumerate(trials):
            entry = self.journal.finished(t) if self.journal is not None else None
            if entry is None:
                todo.append(i)
            else:
                results[i] = entry["result"]
                self.stats["trial_seconds"][t.key] = entry.get("seconds")
        resumed = len(trials) - len(todo)
        self.stats["trials"] += len(trials)
        self.stats["from_journal"] += resumed
        if resumed:
            print(f"{desc}: {resumed} of {len(trials)} trials from the journal {self.journal.path}, "
                  f"{len(todo)} to run", flush=True)
        bar = None
        if self.progress and todo:
            from rnnbp.history import Progress

            bar = Progress(len(todo), desc)
        failures: list[TrialFailure] = []

        def finish(i: int, ok: bool, text: str, seconds: float) -> None:
            t = trials[i]
            if ok:
                if self.journal is not None:
                    self.journal.append(t, text, seconds)
                results[i] = json.loads(text)
                self.stats["computed"] += 1
                self.stats["trial_seconds"][t.key] = seconds
            else:
                failures.append(TrialFailure(t.key, t.config(), text.strip().splitlines()[-1], text))
            if bar is not None:
                bar.update(info=f"{t.key} {'failed' if not ok else f'{seconds:.1f}s'}")

        try:
            if self.executor is None:
                for i in todo:
                    finish(i, *_execute(trials[i].fn, dict(trials[i].kwargs)))
            else:
                futures = {self.executor.submit(_execute, trials[i].fn, dict(trials[i].kwargs)): i
                           for i in todo}
                try:
                    for fut in cf.as_completed(futures):
                        try:
                            ok, text, seconds = fut.result()
                        except Exception as exc:  # the worker itself died, or the cluster was lost
                            ok, text, seconds = False, "".join(traceback.format_exception(exc)), float("nan")
                        finish(futures[fut], ok, text, seconds)
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        except KeyboardInterrupt:
            where = f" in {self.journal.path}; resume to run the rest" if self.journal is not None else ""
            print(f"\ninterrupted: {sum(r is not None for r in results)} of {len(trials)} trials finished{where}",
                  file=sys.stderr, flush=True)
            raise
        finally:
            if bar is not None:
                bar.close()
            self.stats["wall_seconds"] += time.perf_counter() - started
        if failures:
            order = {k: i for i, k in enumerate(keys)}
            failures.sort(key=lambda f: order[f.key])
            raise SweepError(failures, results, self.journal.path if self.journal is not None else None)
        return results

    def close(self) -> None:
        """Close the journal file."""
        if self.journal is not None:
            self.journal.close()

    def __enter__(self) -> Sweep:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_trials(trials: Sequence[Trial], executor: cf.Executor | None = None, *,
               journal: str | os.PathLike | None = None, resume: bool = False,
               progress: bool = True, desc: str = "trials") -> list[Any]:
    """Run independent trials and return their results in trial order.

    Parameters
    ----------
    trials : sequence of Trial
    executor : concurrent.futures.Executor, optional
        ``None``: serially in this process. Otherwise any executor, e.g. from
        :func:`executor`.
    journal : path, optional
        JSON-lines file each finished trial is appended to.
    resume : bool
        Reuse the trials already in ``journal`` (same key and configuration).
    progress : bool
    desc : str
        Label of the progress line.

    Returns
    -------
    list
        One JSON-round-tripped result per trial, in the order of ``trials``.

    Raises
    ------
    SweepError
        If a trial raised; every other trial has finished first.

    Examples
    --------
    >>> from tasks.sweep import Trial, run_trials
    >>> run_trials([Trial(f"x={x}", pow, {"base": x, "exp": 2}) for x in range(4)], progress=False)
    [0, 1, 4, 9]
    """
    with Sweep(executor, journal=journal, resume=resume, progress=progress) as sweep:
        return sweep.run(trials, desc)


# -- executors ------------------------------------------------------------------

@contextlib.contextmanager
def blas_environment(threads: int) -> Iterator[None]:
    """Set the BLAS thread variables to ``threads`` for the duration (processes started inside inherit them)."""
    saved = {name: os.environ.get(name) for name in BLAS_VARIABLES}
    os.environ.update({name: str(threads) for name in BLAS_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class PinnedProcessPool(cf.ProcessPoolExecutor):
    """A process pool of fresh interpreters (``spawn``), each with its BLAS pinned to ``threads``.

    The workers are started inside ``submit`` (the standard library starts
    them on demand there), so they are started inside
    :func:`blas_environment`: the thread count is in their environment before
    they import numpy, even when the parent imported numpy with more threads.
    """

    def __init__(self, max_workers: int, threads: int = 1) -> None:
        super().__init__(max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"))
        self.threads = threads

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        with blas_environment(self.threads):
            return super().submit(fn, *args, **kwargs)


def blas_info() -> dict[str, Any]:
    """What a worker's BLAS is set to: the variables and, with threadpoolctl installed, the live count."""
    info: dict[str, Any] = {name: os.environ.get(name) for name in BLAS_VARIABLES}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return info
    import numpy  # noqa: F401  (load BLAS so threadpoolctl can see it)

    info["threadpoolctl"] = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
    return info


def _import_dask() -> Any:
    try:
        import dask.distributed
    except ImportError as exc:
        raise ImportError(f"{DASK_MISSING}; the import said: {exc}") from exc
    return dask.distributed


@contextlib.contextmanager
def executor(jobs: int = 1, scheduler: str | None = None, threads: int = 1) -> Iterator[tuple[cf.Executor | None, str]]:
    """The executor the command line asks for, and one line that says what it is.

    Parameters
    ----------
    jobs : int
        Worker processes: 1 runs serially in this process (``None`` is
        yielded), more starts a :class:`PinnedProcessPool`; with
        ``scheduler="local"``, the number of Dask workers.
    scheduler : str, optional
        ``"local"``: a Dask ``LocalCluster`` on this machine (``jobs``
        worker processes, one thread each); ``"tcp://host:8786"``: an
        existing Dask scheduler, through ``Client(address).get_executor()``.
        Dask is imported only here.
    threads : int
        BLAS threads per worker process (the pool and the local cluster; a
        remote cluster's workers are set up by whoever started them: Dask's
        nanny pins them to one thread by default).

    Yields
    ------
    (executor or None, str)
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs: expected a positive int, got {jobs!r}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads: expected a positive int, got {threads!r}")
    blas = f"{threads} BLAS thread{'s' if threads > 1 else ''}"
    if scheduler is None:
        if jobs == 1:
            yield None, f"1 worker (this process) x {blas}"
            return
        with PinnedProcessPool(jobs, threads) as pool:
            yield pool, f"{jobs} worker processes x {blas} each"
        return
    if scheduler != "local" and not scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise ValueError(f"scheduler: expected 'local' or a Dask scheduler address such as "
                         f"'tcp://host:8786', got {scheduler!r}")
    dd = _import_dask()
    import logging

    with contextlib.ExitStack() as stack:
        if scheduler == "local":
            env = {name: str(threads) for name in BLAS_VARIABLES}
            cluster = stack.enter_context(dd.LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR, env=env))
            client = stack.enter_context(dd.Client(cluster))
            where = "Dask LocalCluster"
        else:
            client = stack.enter_context(dd.Client(scheduler, timeout="30s"))
            where = f"Dask scheduler {scheduler}"
        workers = client.scheduler_info()["workers"]
        slots = sum(w.get("nthreads", 1) for w in workers.values())
        seen = {",".join(map(str, v["threadpoolctl"])) if "threadpoolctl" in v else str(v["OPENBLAS_NUM_THREADS"])
                for v in client.run(blas_info).values()}
        blas_seen = "/".join(sorted(seen))
        yield (client.get_executor(pure=False),
               f"{where}: {len(workers)} workers, {slots} task slots, BLAS threads per worker {blas_seen}")
