"""fit(checkpoint=, resume=): resumed equals uninterrupted bit for bit, in one process and across
processes, and a checkpoint file is refused when truncated, tampered or foreign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import mse
from rnnbp.schedules import StepLR

ROOT = Path(__file__).resolve().parents[1]

# The ten combinations of the issue: full BPTT and BPTT(k1, k2), each with plain SGD in float64,
# float32, Dropout, Adam with a schedule, and patience (early stopping on validation).
BPTTS = {"full": "full", "k1k2": (3, 5)}
VARIANTS = ("float64", "float32", "dropout", "adam+schedule", "patience")
CASES = [f"{b}/{v}" for b in BPTTS for v in VARIANTS]


def build(case: str):
    """Model, optimizer, schedule and fit keywords of one combination (deterministic)."""
    bptt, variant = case.split("/")
    dtype = np.float32 if variant == "float32" else np.float64
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(10, 24, 2)).astype(dtype)
    ys = (np.cumsum(xs, axis=0)[..., :1] / 3).astype(dtype)
    layers = [rnnbp.Elman(2, 8, seed=0, dtype=dtype)]
    if variant == "dropout":
        layers.append(rnnbp.Dropout(0.3))
    layers.append(rnnbp.Linear(8, 1, seed=1, dtype=dtype))
    model = rnnbp.Sequential(*layers)
    schedule = None
    if variant == "adam+schedule":
        optimizer = rnnbp.optim.Adam(model, lr=1e-2)
        schedule = StepLR(optimizer, step_size=1, gamma=0.7)
    else:   # patience: a rate at which the validation loss turns up (full: best epoch 2 of 4;
        # k1k2: stops early at epoch 3, after the resume point)
        optimizer = rnnbp.optim.SGD(model, lr=0.2 if variant == "patience" else 0.05, momentum=0.9)
    kw = dict(loss=mse, optimizer=optimizer, schedule=schedule, batch_size=8, bptt=BPTTS[bptt],
              seed=5, progress=False)
    if variant == "patience":
        vx = rng.normal(size=(10, 8, 2))
        kw.update(validation=(vx, np.cumsum(vx, axis=0)[..., :1] / 3), patience=2)
    return model, (xs, ys), kw


def _history(h: rnnbp.History) -> dict:
    """Every field but the wall-clock epoch_time."""
    return {"loss": h.loss, "metric": h.metric, "val_loss": h.val_loss, "val_metric": h.val_metric,
            "grad_norm": h.grad_norm, "clipped": h.clipped, "skipped": h.skipped,
            "best_epoch": h.best_epoch, "stopped_early": h.stopped_early,
            "state_grad_norms": {k: v.tolist() for k, v in h.state_grad_norms.items()}}


def _max_diff(a: rnnbp.Layer, b: rnnbp.Layer) -> float:
    return max(float(np.max(np.abs(a.params[k].astype(np.float64) - b.params[k]))) for k in a.params)


def uninterrupted(case: str):
    model, data, kw = build(case)
    return model, rnnbp.fit(model, data, epochs=4, **kw)


def interrupted(case: str, ckpt: Path):
    model, data, kw = build(case)
    rnnbp.fit(model, data, epochs=2, checkpoint=ckpt, **kw)
    model, data, kw = build(case)                 # a fresh process would build everything anew
    return model, rnnbp.fit(model, data, epochs=4, resume=ckpt, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_resumed_equals_uninterrupted_bit_for_bit(case, tmp_path):
    model_a, hist_a = uninterrupted(case)
    model_b, hist_b = interrupted(case, tmp_path / "run.npz")
    assert _max_diff(model_a, model_b) == 0.0
    assert _history(hist_a) == _history(hist_b)
    assert len(hist_b.epoch_time) == hist_b.epochs


def _resume_in_subprocess(case: str, ckpt: Path, out: Path) -> None:
    code = ("import sys, json, rnnbp; from tests.test_checkpoint import build, _history\n"
            f"model, data, kw = build({case!r})\n"
            f"h = rnnbp.fit(model, data, epochs=4, resume={str(ckpt)!r}, **kw)\n"
            f"rnnbp.save(model, {str(out)!r})\n"
            f"open({str(out) + '.json'!r}, 'w').write(json.dumps(_history(h)))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["full/dropout", "k1k2/adam+schedule", "full/patience"])
def test_resumed_in_another_process_equals_uninterrupted(case, tmp_path):
    model_a, hist_a = uninterrupted(case)
    model_b, _, kw = build(case)
    rnnbp.fit(model_b, build(case)[1], epochs=2, checkpoint=tmp_path / "run", **{**kw})
    _resume_in_subprocess(case, tmp_path / "run.npz", tmp_path / "final.npz")
    loaded = rnnbp.load(tmp_path / "final.npz")
    assert _max_diff(model_a, loaded) == 0.0
    assert json.loads((tmp_path / "final.npz.json").read_text()) == json.loads(json.dumps(_history(hist_a)))


def test_resume_table_quick(tmp_path):
    """One fast combination always runs (the ten are marked slow)."""
    model_a, hist_a = uninterrupted("k1k2/dropout")
    model_b, hist_b = interrupted("k1k2/dropout", tmp_path / "c")
    assert _max_diff(model_a, model_b) == 0.0 and _history(hist_a) == _history(hist_b)


def test_checkpoint_is_written_every_epoch_atomically(tmp_path):
    model, data, kw = build("full/float64")
    seen = []
    rnnbp.fit(model, data, epochs=3, checkpoint=tmp_path / "c.npz",
              callbacks=[lambda e, h: seen.append(sorted(os.listdir(tmp_path)))], **kw)
    # the callback runs before the epoch's checkpoint: epoch 1 sees none, then one file, never a temporary
    assert seen == [[], ["c.npz"], ["c.npz"]]
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_resume_of_a_finished_or_stopped_run_trains_no_more(tmp_path):
    model, data, kw = build("full/float64")
    h1 = rnnbp.fit(model, data, epochs=2, checkpoint=tmp_path / "c", **kw)
    before = {k: p.copy() for k, p in model.params.items()}
    model, data, kw = build("full/float64")
    h2 = rnnbp.fit(model, data, epochs=2, resume=tmp_path / "c", **kw)
    assert h2.loss == h1.loss and all(np.array_equal(model.params[k], before[k]) for k in before)


def test_resume_with_other_settings_warns(tmp_path):
    model, data, kw = build("full/float64")
    rnnbp.fit(model, data, epochs=1, checkpoint=tmp_path / "c", **kw)
    model, data, kw = build("full/float64")
    with pytest.warns(UserWarning, match="batch_size.*not equal the uninterrupted run"):
        rnnbp.fit(model, data, epochs=2, resume=tmp_path / "c", **{**kw, "batch_size": 4})


# -- refused files ---------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    model, data, kw = build("full/adam+schedule")
    rnnbp.fit(model, data, epochs=1, checkpoint=tmp_path / "c", **kw)
    return tmp_path / "c.npz"


def _resume(path, case="full/adam+schedule", other_optimizer=False, **over):
    model, data, kw = build(case)
    kw.update(over)
    if other_optimizer:
        kw.update(optimizer=rnnbp.optim.SGD(model, lr=0.1), schedule=None)
    before = {k: p.copy() for k, p in model.params.items()}
    try:
        rnnbp.fit(model, data, epochs=2, resume=path, **kw)
    finally:
        _resume.unchanged = all(np.array_equal(model.params[k], before[k]) for k in before)


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy the archive, passing every member's bytes through ``edit(name, data)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, edit(info.filename, zin.read(info.filename)))


def test_truncated_file_is_refused(saved, tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(rnnbp.LoadError, match="corrupted, truncated"):
        _resume(cut)
    assert _resume.unchanged


def test_wrong_shape_is_refused(saved, tmp_path):
    bad = tmp_path / "bad.npz"
    import io as _io
    from numpy.lib import format as npy

    def edit(name, data):
        if name == "optimizer/0.W_hh/exp_avg.npy":
            buf = _io.BytesIO()
            npy.write_array(buf, np.zeros((8, 7)))
            return buf.getvalue()
        return data
    _rewrite(saved, bad, edit)
    with pytest.raises(rnnbp.LoadError, match=r"optimizer/0.W_hh/exp_avg.*expected shape \(8, 8\), got \(8, 7\)"):
        _resume(bad)
    assert _resume.unchanged


def test_foreign_optimizer_kind_is_refused(saved):
    with pytest.raises(rnnbp.LoadError, match="state of optimizer 'Adam', fit was given a SGD"):
        _resume(saved, other_optimizer=True)
    assert _resume.unchanged


def test_other_architecture_and_missing_schedule_are_refused(saved):
    with pytest.raises(rnnbp.LoadError, match="another model"):
        _resume(saved, case="full/dropout")
    with pytest.raises(rnnbp.LoadError, match="schedule: the checkpoint holds 'StepLR', fit was given None"):
        _resume(saved, schedule=None)


def test_nonfinite_parameters_and_a_model_file_are_refused(saved, tmp_path):
    bad = tmp_path / "nan.npz"
    import io as _io
    from numpy.lib import format as npy

    def edit(name, data):
        if name == "model/1.W.npy":
            w = np.load(_io.BytesIO(data))
            w[2, 0] = np.nan
            buf = _io.BytesIO()
            npy.write_array(buf, w)
            return buf.getvalue()
        return data
    _rewrite(saved, bad, edit)
    message = r"parameter '1.W' holds 1 non-finite value\(s\) \(first at index \(2, 0\)\)"
    with pytest.raises(rnnbp.LoadError, match=message):
        _resume(bad)
    model, _, _ = build("full/float64")
    with pytest.raises(rnnbp.LoadError, match="a model file: load it with rnnbp.load"):
        _resume(rnnbp.save(model, tmp_path / "model"))


def test_never_unpickles(saved, tmp_path):
    bad = tmp_path / "pickled.npz"

    def edit(name, data):
        if name == "history/loss.npy":
            import io as _io
            buf = _io.BytesIO()
            np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
            return buf.getvalue()
        return data
    _rewrite(saved, bad, edit)
    with pytest.raises(rnnbp.LoadError, match="object arrays are refused"):
        _resume(bad)
