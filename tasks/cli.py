"""Command line of the experiments: ``python -m tasks list`` and ``python -m tasks run NAME``.

Each experiment is a module in ``tasks/experiments/`` (``some_name.py`` runs
as ``some-name``) with a one-line ``SUMMARY`` and a ``run(quick: bool, seed:
int, out: pathlib.Path) -> dict`` that writes its figures into ``out`` and
returns its metrics; the command line writes ``out/results.json`` with the
configuration, seed, versions and metrics.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path
from typing import Any

def _discover() -> dict[str, str]:
    from . import experiments

    return {m.name.replace("_", "-"): f"tasks.experiments.{m.name}"
            for m in sorted(pkgutil.iter_modules(experiments.__path__), key=lambda m: m.name)
            if not m.name.startswith("_")}


#: Experiment name -> module, one per module in ``tasks/experiments/``.
EXPERIMENTS: dict[str, str] = _discover()

ROOT = Path(__file__).resolve().parent.parent


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that shape the numbers."""
    import matplotlib
    import numpy
    import scipy

    import rnnbp

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "matplotlib": matplotlib.__version__,
            "rnnbp": rnnbp.__version__, "machine": platform.machine()}


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run(name: str, *, quick: bool = False, seed: int = 0, out: Path | None = None) -> dict[str, Any]:
    """Run the experiment ``name`` and write ``results.json`` and its figures.

    Parameters
    ----------
    name : str
        A key of ``EXPERIMENTS``.
    quick : bool
        The small size that finishes in seconds (what the tests run).
    seed : int
    out : pathlib.Path, optional
        Output folder; ``experiments/NAME`` (``experiments/NAME/quick`` for a
        quick run) in the repository by default.

    Returns
    -------
    dict
        What was written to ``results.json``.
    """
    if name not in EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    module = importlib.import_module(EXPERIMENTS[name])
    if out is None:
        out = ROOT / "experiments" / name / ("quick" if quick else "")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    metrics = module.run(quick=quick, seed=seed, out=out)
    record = {"experiment": name, "quick": quick, "seed": seed, "versions": versions(),
              "seconds": round(time.perf_counter() - start, 2), **metrics}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
    tmp.replace(out / "results.json")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    p = sub.add_parser("run", help="run an experiment")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="small size, seconds not minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output folder (default experiments/NAME)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, mod in EXPERIMENTS.items():
            print(f"{name:<32} {importlib.import_module(mod).SUMMARY}")
        return 0
    record = run(args.name, quick=args.quick, seed=args.seed, out=args.out)
    print(f"wrote {Path(args.out or ROOT / 'experiments' / args.name / ('quick' if args.quick else '')) / 'results.json'}"
          f" in {record['seconds']} s", file=sys.stderr)
    return 0
