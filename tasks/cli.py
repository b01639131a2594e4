"""Command line of the experiments: ``python -m tasks list`` and ``python -m tasks run NAME``.

Each experiment is a module in ``tasks/experiments/`` (``some_name.py`` runs
as ``some-name``) with a one-line ``SUMMARY`` and a ``run(quick: bool, seed:
int, out: pathlib.Path) -> dict`` that writes its figures into ``out`` and
returns its metrics; an experiment made of independent trials also takes
``sweep`` (a :class:`tasks.sweep.Sweep`) and runs its trials through it. The
command line writes ``out/results.json``: the configuration, seed, versions
and metrics, and under ``"run"`` the facts of this run that are not results
(commit, clean tree, workers, BLAS threads, elapsed seconds).

Where outputs go: ``runs/NAME/`` (``runs/NAME/quick/`` for ``--quick``),
which git ignores; ``--record`` writes the committed record
``experiments/NAME/``; ``--out DIR`` any folder.

``python -m tasks`` pins BLAS to ``--threads`` threads (1 by default) per
process before numpy loads (``tasks/__main__.py`` calls
:func:`pin_blas_threads` first); this module imports nothing that loads numpy.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .sweep import BLAS_VARIABLES, Sweep, SweepError, blas_info, executor


def _discover() -> dict[str, str]:
    from . import experiments

    return {m.name.replace("_", "-"): f"tasks.experiments.{m.name}"
            for m in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda m: m.name)
            if not m.name.startswith("_")}


#: Experiment name -> module, one per module in ``tasks/experiments/``.
EXPERIMENTS: dict[str, str] = _discover()

ROOT = Path(__file__).resolve().parent.parent

#: The BLAS thread count :func:`pin_blas_threads` set, and what the environment had before.
PINNED: dict[str, Any] = {}


def threads_from_argv(argv: list[str]) -> int:
    """The ``--threads N`` of a command line, read before argparse (and numpy) load; 1 if absent or invalid.

    An invalid value is left for argparse to report.
    """
    value = "1"
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--threads="):
            value = arg.split("=", 1)[1]
    return int(value) if value.isdigit() and int(value) > 0 else 1


def pin_blas_threads(threads: int) -> None:
    """Set OpenBLAS, OpenMP and MKL to ``threads`` threads in this process and every process it starts.

    Must run before numpy is imported: BLAS reads these variables once, when
    it loads.

    Raises
    ------
    RuntimeError
        If numpy is already loaded (the setting would silently not apply).
    """
    if "numpy" in sys.modules:
        raise RuntimeError("pin_blas_threads: numpy is already imported, so its BLAS has read its thread "
                           "count; call this first thing in the process (tasks/__main__.py does)")
    PINNED["before"] = {name: os.environ.get(name) for name in BLAS_VARIABLES}
    os.environ.update({name: str(threads) for name in BLAS_VARIABLES})
    PINNED["threads"] = threads


def blas_threads() -> int | str:
    """BLAS threads per process for this run: the pinned count, else whatever the environment says."""
    if "threads" in PINNED:
        return PINNED["threads"]
    return os.environ.get("OPENBLAS_NUM_THREADS", "library default (not pinned)")


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the numbers."""
    import matplotlib
    import numpy
    import scipy

    import rnnbp

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "matplotlib": matplotlib.__version__,
            "rnnbp": rnnbp.__version__, "machine": platform.machine()}


def source_state(root: Path = ROOT) -> dict[str, Any]:
    """The commit the code is at and whether its code is clean; ``"unknown"`` outside a git checkout.

    "Clean" means no uncommitted change outside ``experiments/``: the records
    are what runs write, so rerunning several experiments one after another
    with ``--record`` still counts as running the committed code.
    """
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", ".", ":(exclude)experiments") if commit is not None else None
    return {"commit": commit.strip() if commit else "unknown",
            "clean": (status.strip() == "") if status is not None else "unknown"}


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def default_out(name: str, *, quick: bool = False, record: bool = False) -> Path:
    """``experiments/NAME`` for ``record``, else the git-ignored ``runs/NAME`` (``runs/NAME/quick``)."""
    if record:
        if quick:
            raise ValueError("record: a --quick run is not the record; drop --quick or --record")
        return ROOT / "experiments" / name
    return ROOT / "runs" / name / ("quick" if quick else "")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _sweeps(name: str) -> bool:
    """Whether experiment ``name`` is a sweep of independent trials (its ``run`` takes ``sweep``)."""
    return "sweep" in inspect.signature(importlib.import_module(EXPERIMENTS[name]).run).parameters


def run(name: str, *, quick: bool = False, seed: int = 0, out: Path | None = None, record: bool = False,
        jobs: int = 1, scheduler: str | None = None, resume: bool = False) -> dict[str, Any]:
    """Run the experiment ``name`` and write ``results.json`` and its figures.

    Parameters
    ----------
    name : str
        A key of ``EXPERIMENTS``.
    quick : bool
        The small size that finishes in seconds (what the tests run).
    seed : int
    out : pathlib.Path, optional
        Output folder. Default :func:`default_out`: ``runs/NAME`` (git-ignored;
        ``runs/NAME/quick`` for a quick run), or ``experiments/NAME`` with
        ``record``.
    record : bool
        Write the committed record ``experiments/NAME`` (when ``out`` is not given).
    jobs : int
        Worker processes for an experiment made of independent trials.
    scheduler : str, optional
        ``"local"`` or a Dask scheduler address (``tcp://host:8786``).
    resume : bool
        Skip the trials already in ``out/trials.jsonl``.

    Returns
    -------
    dict
        What was written to ``results.json``.

    Raises
    ------
    tasks.sweep.SweepError
        If trials failed (the others are in the journal; resume runs the rest).
    """
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    start = time.perf_counter()
    source = source_state()
    module = importlib.import_module(EXPERIMENTS[name])
    if out is None:
        out = default_out(name, quick=quick, record=record)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweeps = _sweeps(name)
    threads = PINNED.get("threads", 1)
    with executor(jobs if sweeps else 1, scheduler if sweeps else None, threads) as (pool, workers):
        note = "" if sweeps or (jobs == 1 and scheduler is None) else \
            f" ({name} has no independent trials: it runs in this process, --jobs/--scheduler ignored)"
        line = f"rnnbp tasks: {workers}{note}"
        if "threads" in PINNED:
            line += " (--threads N to change)"
            overridden = {k: v for k, v in PINNED["before"].items() if v not in (None, str(threads))}
            if overridden:
                line += "; overrides " + ", ".join(f"{k}={v}" for k, v in overridden.items())
        print(line, flush=True)
        print(f"{name}{' --quick' if quick else ''}: writing to {_shown(out)}", flush=True)
        if sweeps:
            with Sweep(pool, journal=out / "trials.jsonl", resume=resume) as sweep:
                metrics = module.run(quick=quick, seed=seed, out=out, sweep=sweep)
            trial_stats = {k: sweep.stats[k] for k in ("trials", "computed", "from_journal")}
            trial_stats["wall_seconds"] = round(sweep.stats["wall_seconds"], 2)
            trial_stats["trial_seconds"] = {k: (round(v, 3) if isinstance(v, float) else v)
                                            for k, v in sweep.stats["trial_seconds"].items()}
        else:
            metrics = module.run(quick=quick, seed=seed, out=out)
            trial_stats = None
    facts = {**source, "workers": workers, "jobs": jobs if sweeps else 1,
             "scheduler": (scheduler or ("processes" if jobs > 1 else "serial")) if sweeps else "serial",
             "blas_threads_per_process": blas_threads(), "blas_in_this_process": blas_info(),
             "cpu_count": os.cpu_count(),
             "seconds": round(time.perf_counter() - start, 2)}
    if trial_stats is not None:
        facts["trials"] = trial_stats
    record_ = {"experiment": name, "quick": quick, "seed": seed, "versions": versions(), **metrics,
               "run": facts}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(record_, indent=2, default=_json_default) + "\n")
    tmp.replace(out / "results.json")
    return record_


def main(argv: list[str] | None = None) -> int:
    """The command line; ``python -m tasks --help``."""
    parser = argparse.ArgumentParser(prog="python -m tasks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    p = sub.add_parser("run", help="run an experiment",
                       description="Run an experiment. Outputs go to the git-ignored runs/NAME/ "
                                   "(runs/NAME/quick/ with --quick); --record writes the committed "
                                   "record experiments/NAME/.")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="small size, seconds not minutes")
    p.add_argument("--seed", type=int, default=0)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME)")
    where.add_argument("--record", action="store_true",
                       help="write the committed record experiments/NAME/ (not with --quick)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="BLAS threads per process (default 1: the numbers do not depend on the machine)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes for an experiment's independent trials (default: one per core, "
                        "a local process pool; 1: serial in this process); the numbers do not depend on it")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help='run the trials on Dask: "local" starts a LocalCluster of --jobs workers, '
                        '"tcp://host:8786" uses a running scheduler (pip install -e ".[distributed]")')
    p.add_argument("--resume", action="store_true",
                   help="skip the trials already in the journal OUT/trials.jsonl of an interrupted run")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, mod in EXPERIMENTS.items():
            print(f"{name:<32} {importlib.import_module(mod).SUMMARY}")
        return 0
    if args.jobs is None:                                # a process pool over the machine's cores
        args.jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if not _sweeps(args.name):
            args.jobs = 1                                # nothing to spread: no "--jobs ignored" note
    for flag in ("threads", "jobs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag}: expected a positive integer, got {getattr(args, flag)}")
    if args.record and args.quick:
        parser.error("--record writes the committed record; a --quick run is not one (drop one of them)")
    try:
        record = run(args.name, quick=args.quick, seed=args.seed, out=args.out, record=args.record,
                     jobs=args.jobs, scheduler=args.scheduler, resume=args.resume)
    except ImportError as exc:
        if args.scheduler is not None and "distributed" in str(exc):
            raise SystemExit(str(exc)) from None
        raise
    except SweepError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:          # finished trials are in the journal; the sweep said how to resume
        return 130
    out = args.out if args.out is not None else default_out(args.name, quick=args.quick, record=args.record)
    figures = [_shown(out / f) for f in record.get("figures", [])]
    print(f"done in {record['run']['seconds']:.1f} s; results: {_shown(out / 'results.json')}"
          + (f"; figures: {', '.join(figures)}" if figures else ""), flush=True)
    return 0
