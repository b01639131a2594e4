"""python -m tasks: one BLAS thread by default, outputs outside the committed tree, a record of the source."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks import cli

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "MPLBACKEND": "Agg", **env}
    done = subprocess.run([sys.executable, "-m", "tasks", *args], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _numbers(out: Path) -> dict:
    """``results.json`` without the run facts and the timings (keys naming seconds)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if "seconds" not in k}
        return [strip(v) for v in value] if isinstance(value, list) else value

    record = json.loads((out / "results.json").read_text())
    record.pop("run")
    return strip(record)


@pytest.mark.slow
def test_numbers_do_not_depend_on_the_blas_threads_of_the_environment(tmp_path):
    """The headline experiment, quick: unpinned, its losses differ in the 8th digit between 1 and 2
    OpenBLAS threads (the MLP's, the CNN's, ...); python -m tasks pins one thread whatever the
    environment says, so both give the same numbers."""
    runs = {}
    for threads in ("1", "2"):
        out = tmp_path / threads
        done = _run(["run", "static-vs-recurrent-ocr", "--quick", "--out", str(out)],
                    OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        first = done.stdout.splitlines()[0]
        assert first.startswith("rnnbp tasks: 1 worker (this process) x 1 BLAS thread (--threads N to change)")
        assert ("overrides OPENBLAS_NUM_THREADS=2" in first) == (threads == "2")
        run = json.loads((out / "results.json").read_text())["run"]
        assert run["blas_threads_per_process"] == 1
        assert run["blas_in_this_process"]["OPENBLAS_NUM_THREADS"] == "1"
        if "threadpoolctl" in run["blas_in_this_process"]:      # the live count, where installed
            assert run["blas_in_this_process"]["threadpoolctl"] == [1]
        runs[threads] = _numbers(out)
    assert runs["1"] == runs["2"]


@pytest.mark.slow
def test_threads_option_sets_the_count(tmp_path):
    done = _run(["run", "quickstart", "--quick", "--threads", "2", "--out", str(tmp_path)])
    assert done.stdout.splitlines()[0].startswith("rnnbp tasks: 1 worker (this process) x 2 BLAS threads")
    run = json.loads((tmp_path / "results.json").read_text())["run"]
    assert run["blas_threads_per_process"] == 2
    assert run["blas_in_this_process"]["OPENBLAS_NUM_THREADS"] == "2"
    if "threadpoolctl" in run["blas_in_this_process"]:
        assert run["blas_in_this_process"]["threadpoolctl"] == [2]


@pytest.mark.slow
@pytest.mark.slow
def test_the_full_quickstart_run_leaves_a_fresh_clone_clean(tmp_path):
    """From a clean clone, the full (not --quick) quickstart writes only to the git-ignored runs/,
    prints where, and records the commit and the clean tree."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a checkout to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    done = _run(["run", "quickstart"], cwd=clone)
    status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"], capture_output=True,
                            text=True, check=True).stdout
    assert status == ""
    out = clone / "runs" / "quickstart"
    record = json.loads((out / "results.json").read_text())
    assert record["quick"] is False
    assert record["run"]["commit"] == head and record["run"]["clean"] is True
    assert record["run"]["seconds"] > 0
    assert "quickstart: writing to runs/quickstart" in done.stdout
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("done in ") and "runs/quickstart/results.json" in last
    for fig in record["figures"]:
        assert f"runs/quickstart/{fig}" in last and (out / fig).stat().st_size > 1000


def test_outputs_go_to_runs_unless_recorded():
    assert cli.default_out("reber") == ROOT / "runs" / "reber"
    assert cli.default_out("reber", quick=True) == ROOT / "runs" / "reber" / "quick"
    assert cli.default_out("reber", record=True) == ROOT / "experiments" / "reber"
    with pytest.raises(ValueError, match="--quick"):
        cli.default_out("reber", quick=True, record=True)
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "runs/reber/results.json"])
    assert ignored.returncode == 0


def test_record_and_quick_together_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "quickstart", "--quick", "--record"])
    assert "--record" in capsys.readouterr().err


def test_source_state_outside_a_checkout_is_unknown(tmp_path):
    assert cli.source_state(tmp_path) == {"commit": "unknown", "clean": "unknown"}


def test_threads_are_read_before_argparse():
    assert cli.threads_from_argv(["run", "x"]) == 1
    assert cli.threads_from_argv(["run", "x", "--threads", "3"]) == 3
    assert cli.threads_from_argv(["run", "x", "--threads=4"]) == 4
    assert cli.threads_from_argv(["run", "x", "--threads", "zero"]) == 1   # argparse reports it


def test_pinning_after_numpy_is_refused():
    import numpy  # noqa: F401  (loaded, as in any test process)

    with pytest.raises(RuntimeError, match="numpy is already imported"):
        cli.pin_blas_threads(1)


def test_importing_tasks_and_its_command_line_loads_no_numpy():
    code = "import sys, tasks, tasks.cli, tasks.sweep; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_changed_record_does_not_make_the_code_unclean(tmp_path):
    """Rerunning records one after another: the first record's new files are outputs, not code."""
    import subprocess

    from tasks.cli import source_state

    repo = tmp_path / "repo"
    (repo / "experiments" / "x").mkdir(parents=True)
    (repo / "code.py").write_text("a = 1\n")
    (repo / "experiments" / "x" / "results.json").write_text("{}\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "c"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    assert source_state(repo)["clean"] is True
    (repo / "experiments" / "x" / "results.json").write_text('{"new": 1}\n')
    assert source_state(repo)["clean"] is True
    (repo / "code.py").write_text("a = 2\n")
    assert source_state(repo)["clean"] is False
