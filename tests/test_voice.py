"""The shipped Japanese Vowels data, its loader, and the ``voice`` experiment."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tasks.data import vowels
from tasks.data.vowels import (Utterances, frame_windows, load_japanese_vowels, stratified_split,
                               utterance_statistics)
from tasks.experiments import voice

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tasks" / "data" / "japanese_vowels"


@pytest.fixture(scope="module")
def data():
    return load_japanese_vowels()


# -- the shipped file ----------------------------------------------------------------
def test_checksum_matches_the_constant_and_the_readme():
    digest = hashlib.sha256(vowels.PATH.read_bytes()).hexdigest()
    assert digest == vowels.SHA256
    assert vowels.SHA256 in (FOLDER / "README.md").read_text()
    assert (FOLDER / "convert.py").exists()


def test_file_is_not_git_ignored():
    proc = subprocess.run(["git", "check-ignore", "-q", str(vowels.PATH)], cwd=ROOT)
    assert proc.returncode == 1, "the shipped data file is hidden by .gitignore"


def test_counts_of_the_standard_split(data):
    assert len(data.train) == 270 and len(data.test) == 370 and data.n_classes == 9
    lengths = np.concatenate([data.train.lengths, data.test.lengths])
    assert lengths.min() == 7 and lengths.max() == 29
    assert np.bincount(data.train.speakers).tolist() == [30] * 9
    assert np.bincount(data.test.speakers).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    assert int(data.train.mask.sum()) == 4274 and int(data.test.mask.sum()) == 5687


def test_a_changed_file_is_refused(tmp_path):
    copy = tmp_path / "jv.npz"
    raw = bytearray(vowels.PATH.read_bytes())
    raw[-100] ^= 1
    copy.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        load_japanese_vowels(path=copy)


def test_the_file_loads_without_pickle():
    with np.load(vowels.PATH, allow_pickle=False) as d:
        assert sorted(d.files) == ["frames", "lengths", "n_train", "speakers"]
        assert d["frames"].dtype == np.float32 and d["frames"].shape == (9961, 12)


# -- the loader -----------------------------------------------------------------------
def test_layout_matches_the_source_text(data):
    # the first training utterance of JapaneseVowels_TRAIN.ts: coefficient 1 is
    # 1.860936, 1.891651, ...; coefficient 2 starts -0.207383, coefficient 3 0.261557
    x = data.train.xs
    np.testing.assert_allclose(x[0, 0, :3], [1.860936, -0.207383, 0.261557], atol=1e-6)
    np.testing.assert_allclose(x[1, 0, 0], 1.891651, atol=1e-6)
    assert data.train.lengths[0] == 20 and data.train.speakers[0] == 0


@pytest.mark.parametrize("part", ["train", "test"])
def test_masks_are_prefixes_and_padding_is_zero(data, part):
    u = getattr(data, part)
    T, N, D = u.xs.shape
    assert D == 12 and u.mask.shape == (T, N) and u.mask.dtype == bool
    np.testing.assert_array_equal(u.mask, np.arange(T)[:, None] < u.lengths[None])
    assert np.all(u.xs[~u.mask] == 0)
    assert np.all(np.abs(u.xs[u.mask]).sum(axis=1) > 0)
    assert T == u.lengths.max()


def test_float32_and_float64(data):
    x32 = load_japanese_vowels(np.float32).train.xs
    assert x32.dtype == np.float32 and data.train.xs.dtype == np.float64
    np.testing.assert_array_equal(x32.astype(np.float64), data.train.xs)


def test_stratified_split(data):
    tr, va = stratified_split(data.train.speakers, 6, seed=3)
    assert len(va) == 54 and len(tr) == 216 and not set(tr) & set(va)
    assert np.bincount(data.train.speakers[va]).tolist() == [6] * 9
    tr2, va2 = stratified_split(data.train.speakers, 6, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(data.train.speakers, 6, seed=4)[1])
    with pytest.raises(ValueError, match="per_class"):
        stratified_split(data.train.speakers, 30, seed=0)


def test_take_trims_to_the_longest(data):
    sub = data.test.take(np.array([0, 1, 2]))
    assert sub.xs.shape == (sub.lengths.max(), 3, 12)


def test_statistics_ignore_padding(data):
    u = data.test.take(np.arange(20))
    stats = utterance_statistics(u.xs, u.mask)
    n = 5
    frames = u.xs[:u.lengths[n], n]
    np.testing.assert_allclose(stats[n], np.concatenate([frames.mean(0), frames.std(0)]), rtol=1e-12)
    garbage = np.where(u.mask[..., None], u.xs, 1e3)
    np.testing.assert_allclose(utterance_statistics(garbage, u.mask), stats, rtol=1e-12)


def test_frame_windows(data):
    u = data.train.take(np.arange(10))
    w, valid = frame_windows(u.xs, u.mask, 3)
    assert w.shape == (u.xs.shape[0] - 2, 10, 36)
    np.testing.assert_array_equal(w[4, 2], np.concatenate([u.xs[4, 2], u.xs[5, 2], u.xs[6, 2]]))
    np.testing.assert_array_equal(valid.sum(axis=0), u.lengths - 2)
    with pytest.raises(ValueError, match="width"):
        frame_windows(u.xs, u.mask, int(u.lengths.min()) + 1)


# -- the experiment's pieces ----------------------------------------------------------------
def test_pooled_cross_entropy_gradient_and_masking():
    rng = np.random.default_rng(0)
    T, B, C = 6, 4, 3
    y = rng.normal(size=(T, B, C))
    labels = np.array([0, 2, 1, 2])
    mask = np.arange(T)[:, None] < np.array([6, 2, 4, 1])[None]
    value, dy = voice.pooled_cross_entropy(y, labels, mask)
    assert np.all(dy[~mask] == 0)
    # padding outputs do not count
    y2 = np.where(mask[..., None], y, 50.0)
    assert voice.pooled_cross_entropy(y2, labels, mask)[0] == pytest.approx(value, abs=1e-12)
    # central differences on every output
    num = np.zeros_like(y)
    for i in np.ndindex(y.shape):
        e = np.zeros_like(y)
        e[i] = 1e-6
        num[i] = (voice.pooled_cross_entropy(y + e, labels, mask)[0]
                  - voice.pooled_cross_entropy(y - e, labels, mask)[0]) / 2e-6
    np.testing.assert_allclose(dy, num, atol=1e-8)
    # the pooled scores of sequence 1 are the mean of its two valid steps
    np.testing.assert_allclose(voice.pool(y, mask)[1], y[:2, 1].mean(0))


@pytest.mark.parametrize("family", voice.FAMILIES)
def test_padding_never_changes_a_prediction(family, data):
    """Garbage in the padded frames leaves every model's scores unchanged (masks are honoured)."""
    cfg = dict(voice.FULL, dtype="float64")
    u = data.test.take(np.arange(12))
    view = voice._Views(family, u, cfg)
    model = voice.build_model(family, 8, cfg, seed=1)
    readout = cfg["readout"].get(family, "mean")
    clean = voice._scores(model, view(u), readout)[0]
    garbage = Utterances(np.where(u.mask[..., None], u.xs, 7.0), u.mask, u.lengths, u.speakers)
    np.testing.assert_allclose(voice._scores(model, view(garbage), readout)[0], clean, atol=1e-12)
    if family != "MLP-stats":         # and the models do read the frames: a valid frame changes them
        poked = u.xs.copy()
        poked[u.lengths[0] - 1, 0] += 1.0
        moved = voice._scores(model, view(Utterances(poked, u.mask, u.lengths, u.speakers)), readout)[0]
        assert np.abs(moved[0] - clean[0]).max() > 1e-6


def test_frame_noise_touches_only_valid_frames(data):
    u = data.train.take(np.arange(10))
    noisy = voice.with_frame_noise(u, 0.5, np.random.default_rng(0))
    assert np.all(noisy.xs[~u.mask] == 0)
    assert np.all(noisy.xs[u.mask] != u.xs[u.mask])
    assert voice.with_frame_noise(u, 0.0, np.random.default_rng(0)) is u


def test_grids_have_equal_sizes():
    from tasks.fairness import check_grids, grid
    for cfg in (voice.FULL, voice.QUICK):
        assert check_grids({f: grid(**cfg["grids"][f]) for f in voice.FAMILIES}) >= 1


def test_one_trial_is_deterministic():
    cfg = dict(voice.QUICK, budget={"max_epochs": 2, "patience": 1})
    a = voice.train_trial("GRU", {"hidden": 8, "lr": 1e-2}, cfg, seed=5, record_norms=True)
    b = voice.train_trial("GRU", {"hidden": 8, "lr": 1e-2}, cfg, seed=5, record_norms=True)
    for r in (a, b):
        assert r["used"].pop("seconds") >= 0       # wall time is the one thing allowed to differ
    assert json.dumps(a) == json.dumps(b)
    assert len(a["test_predictions"]) == 370 and 0 <= a["test_accuracy"] <= 1
    assert np.asarray(a["state_grad_norms"]["0"]).shape == (a["used"]["epochs"], 26)


def test_trivial_baselines():
    b = voice.trivial_baselines(voice.FULL)
    assert b["majority_class"]["test_accuracy"] == pytest.approx(31 / 370)
    length_only = b["length_only"]["test_accuracy"]
    assert length_only > 1 / 9 and length_only < 0.5                # above chance, far below the models


# -- the experiment through the command line ---------------------------------------------------
def _quick(out: Path, jobs: int) -> dict:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tasks", "run", "voice", "--quick", "--jobs", str(jobs),
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_quick_run_and_jobs_give_identical_numbers(tmp_path):
    one = _quick(tmp_path / "one", 1)
    assert set(one["models"]) == set(voice.FAMILIES)
    fair = one["fairness"]
    assert fair["grid_size"] == 1 and set(fair["chosen"]) == set(voice.FAMILIES)
    for name, m in one["models"].items():
        assert len(m["test_accuracy_per_seed"]) == voice.QUICK["seeds"]
        assert all(0 <= a <= 1 for a in m["test_accuracy_per_seed"])
        assert m["budget"]["max_epochs"] == voice.QUICK["budget"]["max_epochs"]
        assert all(e <= voice.QUICK["budget"]["max_epochs"] for e in m["budget"]["used"]["epochs"])
    c = one["comparison"]
    assert c["best_static"] in voice.STATIC and c["best_recurrent"] in voice.RECURRENT
    for fig in one["figures"]:
        assert (tmp_path / "one" / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    two = _quick(tmp_path / "two", 2)
    assert json.dumps(two["models"], sort_keys=True) == json.dumps(one["models"], sort_keys=True)
