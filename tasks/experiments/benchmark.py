"""Benchmark: rnnbp's fast path against PyTorch CPU and a naive numpy BPTT, and memory-saving BPTT.

For every point (cell, dtype, B, T, H = D) each implementation runs in its
own worker process (``tasks/_bench_workers.py``): rnnbp (``unroll`` +
``backward``), rnnbp with the opt-in ``rnnbp.BufferPool`` (``unroll(...,
pool=...)``), ``torch.nn.{RNN, LSTM, GRU}`` with the same weights, and the
naive per-step numpy BPTT kept as the floor. Before anything is timed, the
gradients of all of them (``W_ih``, ``W_hh``, ``b``, ``b_hn``, the inputs) are
checked against rnnbp's (the pool's must be bit-identical). The pool's
speed-up, rnnbp time over pooled time, is the evidence for keeping it
(``POOL_BAR``: at least 1.15x on the whole train step). Then the workers are alternated A B C A B C
within the run, so drift of a shared machine hits all alike, each idling
``SWITCH_GAP`` seconds before its batch so that no worker's spinning BLAS
threads are still holding a core, and the median wall time per training
step (forward + full BPTT, loss = sum of outputs) is reported after one
warm-up round, with the ratio rnnbp / torch, the achieved GFLOP/s of the six
GEMM-shaped products of a step and their fraction of the GEMM peak measured
in the same run: ``n x n @ n x n`` (n = 1024, numpy, same threads, best of
5) beside every point, the peak being the best over the run.

Memory: an LSTM in float32 (B=32, H=256, T=10,000) trained by full BPTT and
by ``unroll(..., recompute=True)`` (segments of about sqrt(T) steps), each
in a fresh process: the rise of the peak resident set (``ru_maxrss``) over
the resident set once the inputs and the output gradient exist, and the peak
of numpy's allocations under ``tracemalloc``; and their times, alternated.

Other kinds of point, rnnbp against torch only, same workers and method
(gradients checked, then alternated, median): the CTC loss forward and
backward to the logits (``rnnbp.losses.ctc`` vs ``torch.nn.functional.ctc_loss``
at T = 200, B = 32, C = 80, L = 40, the target being at most
``CTC_TARGET`` x torch's time), and a ``Conv2D`` forward and backward. A full
run includes them; to run only them and merge their rows into the recorded
``results.json``::

    python -m tasks.experiments.benchmark --only ctc conv
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SUMMARY = "rnnbp vs PyTorch CPU vs naive numpy BPTT (time, GFLOP/s), full vs recompute BPTT memory"

ROOT = Path(__file__).resolve().parents[2]
CELLS = ("Elman", "LSTM", "GRU")
DTYPES = ("float32", "float64")
GATES = {"Elman": 1, "LSTM": 4, "GRU": 3}
#: Seconds every worker idles before its batch (see ``_time_point``).
SWITCH_GAP = 0.2
#: Gradient agreement: max |a - b| / max |b| per array.
TOLERANCE = {"float64": 1e-9, "float32": 2e-3}
#: Sizes of the other kinds of point (``tasks/_bench_workers.py``), each run in both dtypes.
EXTRA_POINTS = {"ctc": [{"T": 200, "B": 32, "C": 80, "L": 40}],
                "conv": [{"N": 256, "C_in": 1, "C_out": 8, "H": 16, "W": 16, "k": 3}]}
EXTRA_QUICK = {"ctc": [{"T": 20, "B": 4, "C": 6, "L": 5}],
               "conv": [{"N": 8, "C_in": 1, "C_out": 4, "H": 8, "W": 8, "k": 3}]}
#: The speed-up the opt-in BufferPool must show on the whole train step to earn its place (issue 9).
POOL_BAR = 1.15
#: The CTC loss should take at most this many times torch's time (issue 11).
CTC_TARGET = 3.0


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Worker:
    """One implementation in its own process, spoken to in JSON lines."""

    def __init__(self, impl: str, threads: int) -> None:
        self.impl = impl
        self.proc = subprocess.Popen([sys.executable, "-m", "tasks._bench_workers", impl],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=_env(threads), cwd=ROOT, text=True)

    def ask(self, **msg: Any) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.impl!r} died (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"benchmark worker {self.impl!r}: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.ask(cmd="quit")
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=30)


def _torch_available() -> tuple[bool, str]:
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, "
                            "torch.backends.mkldnn.is_available())"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return False, "torch is not installed: its columns are skipped"
    version, mkldnn = probe.stdout.split()
    return True, f"torch {version} (oneDNN available: {mkldnn})"


def flops(cell: str, B: int, T: int, H: int) -> float:
    """GEMM flops of a training step (D = H): input projection, recurrent product,
    and in the backward pass dW_ih, dW_hh, dx and dh -- six products of 2 T B H (G H)."""
    return 6 * 2.0 * T * B * H * GATES[cell] * H


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.abs(b).max()), 1e-30)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale)


def _check_grads(workers: dict[str, Worker], tmp: Path, point: dict) -> dict[str, float]:
    """Gradients of every implementation against rnnbp's; raises if they disagree."""
    got = {}
    for name, w in workers.items():
        path = tmp / f"{name}.npz"
        w.ask(cmd="grads", path=str(path))
        with np.load(path) as f:
            got[name] = {k: f[k] for k in f.files}
    errors = {}
    for name in workers:
        if name == "rnnbp":
            continue
        assert got[name].keys() == got["rnnbp"].keys(), (name, got[name].keys())
        worst = max(_rel_err(got["rnnbp"][k], got[name][k]) for k in got[name])
        errors[name] = worst
        if name == "rnnbp_pool" and worst != 0.0:
            raise AssertionError(f"the buffer pool changed rnnbp's gradients at {point}: relative error {worst:.2e}")
        if not worst < TOLERANCE[point["dtype"]]:
            raise AssertionError(f"gradients of rnnbp and {name} disagree at {point}: "
                                 f"relative error {worst:.2e} > {TOLERANCE[point['dtype']]:.0e}")
    return errors


def _time_point(workers: dict[str, Worker], rounds: int, budget: float,
                gap: float = 0.0) -> dict[str, list[float]]:
    """Warm up, then alternate the workers round by round, idle ``gap`` seconds before each batch.

    The gap matters: after a call, OpenBLAS's worker threads spin for about
    0.1 s (``THREAD_TIMEOUT``, 2**28 cycles) before they sleep, so without
    it the numpy workers' idle threads take a core from whichever worker runs
    next (measured: up to 1.5x slower for rnnbp and 1.9x for the naive worker).
    """
    warm = {name: min(w.ask(cmd="time", reps=1)["times"]) for name, w in workers.items()}
    reps = {name: max(1, min(20, int(budget / max(t, 1e-6)))) for name, t in warm.items()}
    if max(warm.values()) > 0.5:                  # the largest points: 3 rounds keep the run short
        rounds = min(rounds, 3)
    times: dict[str, list[float]] = {name: [] for name in workers}
    for _ in range(rounds):
        for name, w in workers.items():
            time.sleep(gap)
            times[name] += w.ask(cmd="time", reps=reps[name])["times"]
    return times


def _gemm_peak(worker: Worker, quick: bool, gap: float = 0.0) -> dict[str, float]:
    """GEMM GFLOP/s of ``n x n @ n x n`` per dtype in the rnnbp worker (best of a few repeats)."""
    n = 256 if quick else 1024
    out = {}
    for dt in DTYPES:
        time.sleep(gap)
        out[dt] = worker.ask(cmd="gemm", dtype=dt, n=n, reps=3 if quick else 5)["gflops"]
    return out


def _memory(T: int, B: int, H: int, repeats: int, threads: int) -> dict[str, Any]:
    """Full vs recompute BPTT of an LSTM float32, each run in a fresh process, alternated."""
    runs: dict[str, list[dict]] = {"full": [], "recompute": []}
    for _ in range(repeats):
        for mode in runs:
            out = subprocess.run([sys.executable, "-m", "tasks._bench_workers", "memory", mode,
                                  str(T), str(B), str(H)], capture_output=True, text=True,
                                 env=_env(threads), cwd=ROOT, check=True)
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary: dict[str, Any] = {"cell": "LSTM", "dtype": "float32", "B": B, "T": T, "H": H, "D": H}
    for mode, rs in runs.items():
        rss = max(r["peak_rss_delta_bytes"] for r in rs)
        summary[mode] = {"k": rs[0]["k"], "seconds_median": float(np.median([r["seconds"] for r in rs])),
                         "seconds": [r["seconds"] for r in rs],
                         "peak_rss_delta_bytes": rss, "tracemalloc_peak_bytes": rs[0]["tracemalloc_peak_bytes"],
                         "outputs_and_dx_bytes": rs[0]["io_bytes"],
                         "extra_rss_bytes": rss - rs[0]["io_bytes"]}
    full, rec = summary["full"], summary["recompute"]
    summary["recompute_over_full_extra_memory"] = rec["extra_rss_bytes"] / full["extra_rss_bytes"]
    summary["recompute_over_full_total_memory"] = rec["peak_rss_delta_bytes"] / full["peak_rss_delta_bytes"]
    summary["recompute_over_full_time"] = rec["seconds_median"] / full["seconds_median"]
    return summary


def _geomean(values: list[float]) -> float:
    return float(math.exp(np.mean(np.log(values)))) if values else float("nan")


def _figure(rows: list[dict], memory: dict, path: Path, has_torch: bool) -> None:
    from ..figures import Figure

    fig = Figure(figsize=(12, 4.2), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1.4, 1]})
    colors = {"Elman": "tab:blue", "LSTM": "tab:orange", "GRU": "tab:green"}
    for cell in CELLS:
        for dt, marker in zip(DTYPES, "o^"):
            pts = [r for r in rows if r["cell"] == cell and r["dtype"] == dt]
            if not pts:
                continue
            x = [r["flops"] for r in pts]
            if has_torch:
                ax1.scatter(x, [r["ratio_rnnbp_over_torch"] for r in pts], color=colors[cell],
                            marker=marker, label=f"{cell} {dt}", alpha=0.8)
            ax2.scatter(x, [r["gemm_peak_fraction"] for r in pts], color=colors[cell], marker=marker,
                        alpha=0.8, label=f"{cell} {dt}")
    if has_torch:
        ax1.axhline(1.0, color="k", lw=0.8)
        ax1.set_yscale("log")
        ax1.set_ylabel("time rnnbp / time torch")
        ax1.set_title("Training step time relative to PyTorch CPU")
        ax1.legend(fontsize=7, ncol=2)
    else:
        ax1.text(0.5, 0.5, "torch not installed", ha="center", transform=ax1.transAxes)
    ax1.set_xscale("log")
    ax1.set_xlabel("GEMM flops per training step")
    ax2.set_xscale("log")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("GEMM flops per training step")
    ax2.set_ylabel("fraction of measured GEMM peak")
    ax2.set_title("rnnbp: achieved GFLOP/s / peak")
    if memory:
        gb = 1e9
        names = ["full BPTT", f"recompute (k={memory['recompute']['k']})"]
        total = [memory[m]["peak_rss_delta_bytes"] / gb for m in ("full", "recompute")]
        extra = [memory[m]["extra_rss_bytes"] / gb for m in ("full", "recompute")]
        ax3.bar(names, total, color="0.75", label="peak RSS rise")
        ax3.bar(names, extra, color="tab:red", label="minus outputs and dx")
        ax3.set_ylabel("GB")
        ax3.set_title(f"LSTM T={memory['T']}, B={memory['B']}, H={memory['H']}, float32", fontsize=9)
        ax3.legend(fontsize=7)
    fig.savefig(path, dpi=110)


def _table(rows: list[dict], has_torch: bool) -> str:
    head = ("| cell | dtype | B | T | H | rnnbp ms | torch ms | naive ms | rnnbp/torch | GFLOP/s | of peak "
            "| pool ms | pool speed-up |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        torch_ms = f"{r['torch_ms']:.2f}" if has_torch else "-"
        ratio = f"{r['ratio_rnnbp_over_torch']:.2f}" if has_torch else "-"
        lines.append(f"| {r['cell']} | {r['dtype']} | {r['B']} | {r['T']} | {r['H']} | {r['rnnbp_ms']:.2f} | "
                     f"{torch_ms} | {r['naive_ms']:.2f} | {ratio} | {r['gflops']:.1f} | "
                     f"{100 * r['gemm_peak_fraction']:.0f}% | {r['rnnbp_pool_ms']:.2f} | {r['pool_speedup']:.2f} |")
    return "\n".join(lines) + "\n"


def run_extra(kinds: list[str], quick: bool, seed: int, threads: int) -> dict[str, Any]:
    """Time the CTC and Conv2D points (``kinds``) of rnnbp against torch, gradients checked first.

    Returns ``{kind: {"config": ..., "rows": [...]}}``, with ``{kind: {"skipped": why}}``
    when torch is not installed.
    """
    has_torch, torch_note = _torch_available()
    if not has_torch:
        return {kind: {"skipped": torch_note} for kind in kinds}
    rounds, budget, gap = (2, 0.01, 0.0) if quick else (15, 0.08, SWITCH_GAP)
    workers = {name: Worker(name, threads) for name in ("rnnbp", "rnnbp_pool", "torch")}
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                rows = []
                names = ("rnnbp", "rnnbp_pool", "torch") if kind == "ctc" else ("rnnbp", "torch")
                kind_workers = {n: workers[n] for n in names}
                for sizes in (EXTRA_QUICK if quick else EXTRA_POINTS)[kind]:
                    for dt in DTYPES:
                        point = {"kind": kind, "dtype": dt, **sizes}
                        for w in kind_workers.values():
                            w.ask(cmd="setup", seed=seed, **point)
                        errors = _check_grads(kind_workers, Path(tmp), point)
                        times = _time_point(kind_workers, rounds, budget, gap)
                        ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
                        row = {**point, **{f"{n}_ms": v for n, v in ms.items()},
                               **{f"{n}_samples": len(t) for n, t in times.items()},
                               "ratio_rnnbp_over_torch": ms["rnnbp"] / ms["torch"],
                               # best of the samples too: on a loaded machine it is the steadier estimate
                               **{f"{n}_ms_best": 1e3 * min(t) for n, t in times.items()},
                               "ratio_best_rnnbp_over_torch": min(times["rnnbp"]) / min(times["torch"]),
                               "grad_rel_err_torch": errors["torch"]}
                        if kind == "ctc":
                            row["within_target"] = row["ratio_rnnbp_over_torch"] <= CTC_TARGET
                            row["ratio_pool_over_torch"] = ms["rnnbp_pool"] / ms["torch"]
                            row["within_target_with_pool"] = row["ratio_pool_over_torch"] <= CTC_TARGET
                        rows.append(row)
                        print(f"{kind} {dt} {sizes}: rnnbp {ms['rnnbp']:.2f} ms, torch {ms['torch']:.2f} ms "
                              f"({row['ratio_rnnbp_over_torch']:.2f}x)", file=sys.stderr)
                what = {"ctc": "rnnbp.losses.ctc(logits, labels) vs F.ctc_loss(logits.log_softmax(2), ...)"
                               ".backward(), reduction mean, all inputs T steps and labels L long; "
                               f"target ratio <= {CTC_TARGET}",
                        "conv": "Conv2D.forward + backward (random upstream gradient) vs "
                                "F.conv2d(x, W, b).backward(dy)"}[kind]
                results[kind] = {"config": {"what": what, "threads": threads, "rounds": rounds,
                                            "warmup_rounds": 1, "switch_gap_seconds": gap,
                                            "timer": "wall clock, median (and best) over all samples",
                                            "torch": torch_note, "gradient_tolerance": TOLERANCE},
                                 "rows": rows}
    finally:
        for w in workers.values():
            w.close()
    return results


def _extra_table(extra: dict[str, Any]) -> str:
    lines = ["| kind | dtype | sizes | rnnbp ms | torch ms | rnnbp/torch | best: rnnbp/torch "
             "| with a BufferPool: rnnbp/torch |", "|" + "---|" * 8]
    for kind, res in extra.items():
        for r in res.get("rows", []):
            sizes = ", ".join(f"{k}={v}" for k, v in r.items() if k in {k for p in EXTRA_POINTS[kind] for k in p})
            pooled = f"{r['ratio_pool_over_torch']:.2f}" if "ratio_pool_over_torch" in r else "-"
            lines.append(f"| {kind} | {r['dtype']} | {sizes} | {r['rnnbp_ms']:.2f} | {r['torch_ms']:.2f} | "
                         f"{r['ratio_rnnbp_over_torch']:.2f} | {r['ratio_best_rnnbp_over_torch']:.2f} | {pooled} |")
    return "\n".join(lines) + "\n"


def run(quick: bool, seed: int, out: Path) -> dict[str, Any]:
    """Run the grid (or the --quick points), write ``benchmark.png`` and ``table.md``, return metrics."""
    threads = os.cpu_count() or 1
    has_torch, torch_note = _torch_available()
    print(torch_note, file=sys.stderr)
    if quick:
        grid = [(c, dt, 4, 12, 16) for c in CELLS for dt in DTYPES]
        rounds, budget, gap, mem_size, mem_repeats = 2, 0.01, 0.0, (300, 8, 16), 1
    else:
        grid = [(c, dt, B, T, H) for c, dt in itertools.product(CELLS, DTYPES)
                for B, T, H in itertools.product((1, 32, 128), (50, 200), (32, 128, 512))]
        rounds, budget, gap, mem_size, mem_repeats = 5, 0.08, SWITCH_GAP, (10_000, 32, 256), 2
    impls = ["rnnbp", "rnnbp_pool", "torch", "naive"] if has_torch else ["rnnbp", "rnnbp_pool", "naive"]
    workers = {name: Worker(name, threads) for name in impls}
    rows = []
    try:
        peaks = []
        with tempfile.TemporaryDirectory() as tmp:
            for cell, dt, B, T, H in grid:
                point = {"cell": cell, "dtype": dt, "B": B, "T": T, "H": H}
                for w in workers.values():
                    w.ask(cmd="setup", seed=seed, **point)
                errors = _check_grads(workers, Path(tmp), point)
                peaks.append(_gemm_peak(workers["rnnbp"], quick, gap))     # beside every point: drift shows
                times = _time_point(workers, rounds, budget, gap)
                ms = {name: 1e3 * float(np.median(t)) for name, t in times.items()}
                row = {**point, "D": H, "flops": flops(cell, B, T, H),
                       **{f"{n}_ms": v for n, v in ms.items()},
                       **{f"{n}_samples": len(t) for n, t in times.items()},
                       **{f"grad_rel_err_{n}": e for n, e in errors.items()}}
                row["gflops"] = row["flops"] / (ms["rnnbp"] * 1e-3) / 1e9
                row["gemm_gflops_beside"] = peaks[-1][dt]
                if has_torch:
                    row["ratio_rnnbp_over_torch"] = ms["rnnbp"] / ms["torch"]
                row["ratio_naive_over_rnnbp"] = ms["naive"] / ms["rnnbp"]
                row["pool_speedup"] = ms["rnnbp"] / ms["rnnbp_pool"]
                rows.append(row)
                print(f"{cell:5s} {dt} B={B:3d} T={T:3d} H={H:3d}: "
                      + "  ".join(f"{n} {v:8.2f} ms" for n, v in ms.items()), file=sys.stderr)
    finally:
        for w in workers.values():
            w.close()
    peak = {dt: max(p[dt] for p in peaks) for dt in DTYPES}
    for r in rows:
        r["gemm_peak_fraction"] = r["gflops"] / peak[r["dtype"]]
    memory = _memory(*mem_size, repeats=mem_repeats, threads=threads)
    summary: dict[str, Any] = {}
    for cell, dt in itertools.product(CELLS, DTYPES):
        sel = [r for r in rows if r["cell"] == cell and r["dtype"] == dt]
        s = {"naive_over_rnnbp_geomean": _geomean([r["ratio_naive_over_rnnbp"] for r in sel]),
             "pool_speedup_geomean": _geomean([r["pool_speedup"] for r in sel]),
             "pool_speedup_max": max(r["pool_speedup"] for r in sel),
             "pool_points_at_least_1.15": sum(r["pool_speedup"] >= POOL_BAR for r in sel)}
        if has_torch:
            s["rnnbp_over_torch_geomean"] = _geomean([r["ratio_rnnbp_over_torch"] for r in sel])
        big = [r for r in sel if r["B"] >= 32 and r["H"] == 512]
        if big:
            s["gemm_peak_fraction_B32plus_H512_min"] = min(r["gemm_peak_fraction"] for r in big)
            s["gemm_beside_fraction_B32plus_H512_min"] = min(r["gflops"] / r["gemm_gflops_beside"] for r in big)
        summary[f"{cell} {dt}"] = s
    extra = run_extra(list(EXTRA_POINTS), quick, seed, threads)
    table = _table(rows, has_torch) + "\n" + _extra_table(extra)
    (out / "table.md").write_text(table)
    _figure(rows, memory, out / "benchmark.png", has_torch)
    print(table, file=sys.stderr)
    return {"config": {"grid": "quick" if quick else "B in (1, 32, 128), T in (50, 200), H = D in (32, 128, 512)",
                       "threads": threads, "rounds": rounds, "warmup_rounds": 1,
                       "switch_gap_seconds": gap,
                       "timer": "wall clock (time.perf_counter), median over all samples",
                       "implementations": impls, "torch": torch_note,
                       "gradient_tolerance": TOLERANCE,
                       "memory": "peak RSS rise (ru_maxrss - RSS with xs and dys allocated), fresh process "
                                 "per run; 'extra' subtracts the outputs ys and the input gradient dxs"},
            "gemm_peak_gflops": peak, "gemm_peak_runs": peaks,
            "summary": summary, "memory": memory, "rows": rows, **extra,
            "figures": ["benchmark.png"], "table": "table.md"}


def main(argv: list[str] | None = None) -> int:
    """Run only some kinds of point and merge them into the recorded ``results.json``."""
    parser = argparse.ArgumentParser(prog="python -m tasks.experiments.benchmark",
                                     description="Run only the CTC and/or Conv2D points of the benchmark "
                                                 "and record them in its results.json.")
    parser.add_argument("--only", nargs="+", choices=sorted(EXTRA_POINTS), required=True)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks gradients, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of results.json (default experiments/benchmark, or its quick/)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "experiments" / "benchmark" / ("quick" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    extra = run_extra(args.only, args.quick, args.seed, os.cpu_count() or 1)
    print(_extra_table(extra), file=sys.stderr)
    from tasks.cli import versions

    path = out / "results.json"
    record = json.loads(path.read_text()) if path.exists() else {"experiment": "benchmark", "quick": args.quick}
    stamp = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": args.seed, "versions": versions(),
             "command": "python -m tasks.experiments.benchmark --only " + " ".join(args.only)
                        + (" --quick" if args.quick else "")}
    for kind, res in extra.items():
        record[kind] = {**res, **stamp}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {', '.join(extra)} into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
