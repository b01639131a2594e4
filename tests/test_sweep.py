"""tasks.sweep: the same trial results serially, on a process pool and on Dask; a journal that resumes."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from tasks import sweep
from tasks.data.sequences import adding_problem
from tasks.sweep import PinnedProcessPool, SweepError, Trial, run_trials

ROOT = Path(__file__).resolve().parent.parent


# -- trial functions (module level: workers import them by name) ---------------

def fit_trial(hidden: int, seed: int) -> dict:
    """A small real trial: an LSTM fitted for two epochs; losses and the trained weights' norms."""
    data = adding_problem(64, 12, seed=seed)
    model = rnnbp.Sequential(rnnbp.LSTM(2, hidden, seed=seed), rnnbp.Linear(hidden, 1, seed=seed + 1))
    hist = rnnbp.fit(model, (data.xs, data.ys), loss=rnnbp.losses.mse, target="last",
                     optimizer=rnnbp.optim.Adam(model, lr=1e-2), epochs=2, batch_size=16,
                     seed=seed, progress=False)
    return {"loss": hist.loss, "norms": {k: np.linalg.norm(p) for k, p in model.params.items()},
            "last_output": rnnbp.predict(model, data.xs[:, :2])[-1]}


def sleepy(i: int, delay: float) -> int:
    time.sleep(delay)
    return i


def counted(x: int, marker_dir: str, crash: str = "") -> dict:
    """Leaves one marker file per execution; with ``crash`` set, the trial ``x == 3`` fails the first time.

    ``crash="raise"`` raises; ``crash="exit"`` kills the worker process.
    """
    Path(marker_dir, f"ran-{x}-{uuid.uuid4().hex}").touch()
    first = Path(marker_dir, "crashed-once")
    if crash and x == 3 and not first.exists():
        first.touch()
        if crash == "exit":
            os._exit(3)
        raise RuntimeError("simulated crash")
    if crash == "exit" and x > 3:
        time.sleep(0.3)           # still running or queued when the worker dies
    rng = np.random.default_rng(x)
    return {"x": x, "value": rng.normal(), "float32": np.float32(rng.normal()), "tiny": 5e-324 * (x + 1),
            "third": 1 / 3 + x, "vector": rng.normal(size=3)}


def returns_a_set(x: int) -> set:
    return {x}


def executions(marker_dir: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for f in marker_dir.glob("ran-*"):
        x = int(f.name.split("-")[1])
        counts[x] = counts.get(x, 0) + 1
    return counts


FIT_TRIALS = [Trial(f"H={h}/seed={s}", fit_trial, {"hidden": h, "seed": s}) for h in (3, 5) for s in (0, 1, 2)]


# -- identical results however it runs ------------------------------------------

@pytest.mark.slow
def test_process_pool_gives_the_serial_results_in_trial_order():
    serial = run_trials(FIT_TRIALS, progress=False)
    with PinnedProcessPool(2) as pool:
        parallel = run_trials(FIT_TRIALS, pool, progress=False)
        # later trials finish first; results still come back in trial order
        order = run_trials([Trial(f"i={i}", sleepy, {"i": i, "delay": 0.4 - 0.1 * i}) for i in range(4)],
                           pool, progress=False)
    assert parallel == serial
    assert order == [0, 1, 2, 3]
    assert serial[0]["loss"][1] < serial[0]["loss"][0]
    assert set(serial[0]["norms"]) == set(rnnbp.Sequential(rnnbp.LSTM(2, 3), rnnbp.Linear(3, 1)).params)


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_results():
    pytest.importorskip("dask.distributed")
    serial = run_trials(FIT_TRIALS, progress=False)
    with sweep.executor(jobs=2, scheduler="local") as (executor, line):
        assert line.startswith("Dask LocalCluster: 2 workers, 2 task slots")
        on_dask = run_trials(FIT_TRIALS, executor, progress=False)
    assert on_dask == serial


def test_pool_workers_run_one_blas_thread_even_when_the_parent_has_more(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with PinnedProcessPool(1, threads=1) as pool:
        info = pool.submit(sweep.blas_info).result()
    assert info["OPENBLAS_NUM_THREADS"] == info["OMP_NUM_THREADS"] == "1"
    if "threadpoolctl" in info:
        assert info["threadpoolctl"] == [1]
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2"        # the parent's setting is restored


# -- the journal: nothing lost, nothing recomputed --------------------------------

def _trials(marker_dir: Path, crash: str = "") -> list[Trial]:
    return [Trial(f"x={x}", counted, {"x": x, "marker_dir": str(marker_dir), "crash": crash}) for x in range(6)]


def test_a_failing_trial_is_reported_and_resume_reruns_only_it(tmp_path):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    (reference_dir / "crashed-once").touch()
    uninterrupted = run_trials(_trials(reference_dir, "raise"), progress=False)

    markers, journal = tmp_path / "markers", tmp_path / "trials.jsonl"
    markers.mkdir()
    with PinnedProcessPool(2) as pool, pytest.raises(SweepError) as failed:
        run_trials(_trials(markers, "raise"), pool, journal=journal, progress=False)
    err = failed.value
    assert [f.key for f in err.failures] == ["x=3"]
    message = str(err)
    assert "1 of 6 trials failed, 5 finished" in message and "resume" in message
    assert '"x": 3' in message and "counted" in message                       # its configuration
    assert "Traceback" in message and "RuntimeError: simulated crash" in message
    assert err.results[3] is None and err.results[5] == uninterrupted[5]     # the others finished
    assert executions(markers) == {x: 1 for x in range(6)}

    resumed = run_trials(_trials(markers, "raise"), journal=journal, resume=True, progress=False)
    assert resumed == uninterrupted
    assert executions(markers) == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}      # only x=3 ran again
    assert len(journal.read_text().splitlines()) == 6


@pytest.mark.slow
def test_resume_after_a_worker_is_killed(tmp_path):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    uninterrupted = run_trials(_trials(reference_dir), progress=False)
    markers, journal = tmp_path / "markers", tmp_path / "trials.jsonl"
    markers.mkdir()
    with PinnedProcessPool(2) as pool, pytest.raises(SweepError) as failed:
        run_trials(_trials(markers, "exit"), pool, journal=journal, progress=False)
    lost = {f.key for f in failed.value.failures}
    assert "x=3" in lost and any("BrokenProcessPool" in f.traceback for f in failed.value.failures)
    kept = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert set(kept) == {f"x={x}" for x in range(6)} - lost and kept

    before = executions(markers)
    resumed = run_trials(_trials(markers, "exit"), journal=journal, resume=True, progress=False)
    assert resumed == uninterrupted
    after = executions(markers)
    assert {x for x in after if after[x] > before.get(x, 0)} == {int(k[2:]) for k in lost}


def test_the_journal_round_trips_every_float_exactly_and_survives_a_torn_line(tmp_path):
    markers, journal = tmp_path / "m", tmp_path / "j.jsonl"
    markers.mkdir()
    fresh = run_trials(_trials(markers), journal=journal, progress=False)
    assert fresh[0]["tiny"] == 5e-324 and fresh[2]["third"] == 1 / 3 + 2
    assert fresh[1]["float32"] == float(np.float32(np.random.default_rng(1).normal(size=2)[1]))
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])  # a crash mid-write
    resumed = run_trials(_trials(markers), journal=journal, resume=True, progress=False)
    assert resumed == fresh
    assert executions(markers) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2}
    assert [json.loads(line)["key"] for line in journal.read_text().splitlines()] == [f"x={x}" for x in range(6)]


def test_a_journal_entry_of_another_configuration_is_not_reused(tmp_path):
    markers, journal = tmp_path / "m", tmp_path / "j.jsonl"
    markers.mkdir()
    run_trials(_trials(markers)[:2], journal=journal, progress=False)
    other = [Trial("x=0", counted, {"x": 5, "marker_dir": str(markers)})]
    assert run_trials(other, journal=journal, resume=True, progress=False)[0]["x"] == 5


# -- clear errors -------------------------------------------------------------------

def test_a_result_that_json_cannot_hold_fails_its_own_trial():
    with pytest.raises(SweepError, match="set is not JSON-serialisable"):
        run_trials([Trial("bad", returns_a_set, {"x": 1})], progress=False)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="Trial.key"):
        Trial("", fit_trial, {})
    with pytest.raises(TypeError, match="Trial.fn"):
        Trial("a", 3, {})
    with pytest.raises(ValueError, match="duplicates"):
        run_trials([Trial("a", sleepy, {"i": 0, "delay": 0}), Trial("a", sleepy, {"i": 1, "delay": 0})])
    with pytest.raises(TypeError, match="executor"):
        run_trials([], executor="processes")
    with pytest.raises(ValueError, match="journal"):
        run_trials([], resume=True)
    with pytest.raises(ValueError, match="scheduler"):
        with sweep.executor(2, "http://nowhere"):
            pass


def test_without_dask_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[distributed\]"'):
        with sweep.executor(2, "local"):
            pass


# -- the command line: reber's numbers do not depend on how it runs -------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "tasks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _numbers(out: Path) -> dict:
    record = json.loads((out / "results.json").read_text())
    run = record.pop("run")
    assert run["trials"]["trials"] == 8 and "commit" in run
    return record


@pytest.mark.slow
@pytest.mark.slow
def test_reber_quick_gives_the_same_numbers_serial_on_two_processes_and_on_dask(tmp_path):
    runs = {"serial": ["--jobs", "1"], "jobs2": ["--jobs", "2"]}
    try:
        import dask.distributed  # noqa: F401
        runs["dask"] = ["--jobs", "2", "--scheduler", "local"]
    except ImportError:
        pass
    first_lines = {}
    for name, extra in runs.items():
        done = _cli("run", "reber", "--quick", "--out", str(tmp_path / name), *extra)
        first_lines[name] = done.stdout.splitlines()[0]
    assert first_lines["serial"] == "rnnbp tasks: 1 worker (this process) x 1 BLAS thread (--threads N to change)"
    assert first_lines["jobs2"].startswith("rnnbp tasks: 2 worker processes x 1 BLAS thread each")
    serial = _numbers(tmp_path / "serial")
    for name in runs:
        assert _numbers(tmp_path / name) == serial, name


@pytest.mark.slow
def test_reber_resume_from_the_command_line_recomputes_only_the_missing_trials(tmp_path):
    out = tmp_path / "reber"
    _cli("run", "reber", "--quick", "--out", str(out))
    complete = _numbers(out)
    journal = out / "trials.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:5]) + "\n")      # as if stopped after five trials
    done = _cli("run", "reber", "--quick", "--out", str(out), "--resume")
    assert "5 of 8 trials from the journal" in done.stdout
    record = json.loads((out / "results.json").read_text())
    assert record["run"]["trials"]["from_journal"] == 5 and record["run"]["trials"]["computed"] == 3
    assert _numbers(out) == complete


@pytest.mark.slow
def test_the_sweeps_guide_example_prints_what_the_guide_says(tmp_path):
    """docs/sweeps.md: the grid of fit calls on two worker processes, and its printed output."""
    import re

    text = (ROOT / "docs" / "sweeps.md").read_text()
    code = re.findall(r"```python\n(.*?)\n```", text, re.S)[0]
    expected = re.findall(r"```text\n(.*?)\n```", text, re.S)[0]
    (tmp_path / "my_sweep.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "my_sweep.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == expected.strip()
    assert len((tmp_path / "runs" / "my-sweep" / "trials.jsonl").read_text().splitlines()) == 4
