"""Every experiment runs at its ``--quick`` size through the command line and writes sane outputs.

Each test runs ``python -m tasks run NAME --quick --out DIR`` in a fresh
process (the command a user types) and checks what it wrote: the keys, the
shapes (one entry per configured model, length, lag, epoch, seed), the
invariants that hold at any size (accuracies in [0, 1], a summary that
agrees with its trials, parameter counts that match the configured sizes,
exact identities such as truncated BPTT with k2 = T being full BPTT), and
the figures. Unlike ``tests/records/``, these fail when the code is wrong.
Quick runs are too short for the experiments' conclusions; those are audited
on the committed full-size records.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow      # every experiment end to end at its --quick size, in a subprocess

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"


def _run_quick(name: str, out: Path) -> dict:
    """Run ``name --quick --out out`` in a subprocess; return its results.json."""
    record_file = ROOT / "experiments" / name / "results.json"
    committed = record_file.read_bytes() if record_file.exists() else None
    env = dict(os.environ, MPLBACKEND="Agg")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tasks", "run", name, "--quick", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"{name} --quick failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    print(f"{name} --quick: {seconds:.1f} s")
    record = json.loads((out / "results.json").read_text())
    assert record["experiment"] == name and record["quick"] is True and record["seed"] == 0
    assert isinstance(record["config"], dict) and record["versions"]["numpy"] == np.__version__
    # every figure it lists is a real PNG in --out, and --out leaves the committed record alone
    assert record["figures"], "no figures listed"
    for fig in record["figures"]:
        data = (out / fig).read_bytes()
        assert data[:8] == PNG and len(data) > 1000, fig
    if committed is not None:
        assert record_file.read_bytes() == committed, "--out DIR rewrote the committed record"
    return record


@pytest.fixture
def quick(tmp_path):
    return lambda name: _run_quick(name, tmp_path)


def _in_unit_interval(values, what=""):
    values = np.asarray(values, dtype=float)
    assert np.all((values >= 0) & (values <= 1)), (what, values)


def _finite_nonneg(values, what=""):
    values = np.asarray(values, dtype=float)
    assert np.all(np.isfinite(values) & (values >= 0)), (what, values)


def _rnn_parameters(cell: str, D: int, H: int, O: int) -> int:
    """Parameters of cell(D, H) followed by Linear(H, O)."""
    gates = {"elman": 1, "irnn": 1, "lstm": 4}[cell.lower()]
    return gates * H * (D + H) + gates * H + H * O + O


def _check_fairness(record, families):
    """The fairness rule (tasks.fairness) was applied: one grid size, one budget, choices from the grids."""
    from tasks.fairness import Budget

    f = record["fairness"]
    assert set(f["grids"]) == set(families) == set(f["chosen"]) == set(f["used"])
    assert {len(points) for points in f["grids"].values()} == {f["grid_size"]} and f["grid_size"] >= 2
    Budget(**f["budget"])                          # one budget, a valid one, for every family
    for name, point in f["chosen"].items():
        assert point in f["grids"][name], name
    return f


def test_quickstart(quick):
    r = quick("quickstart")
    cfg = r["config"]
    assert set(r["models"]) == {"LSTM", "Elman"}
    assert r["baseline_mse"] == pytest.approx(1 / 6)
    for name, m in r["models"].items():
        _finite_nonneg([m["test_mse"], m["train_mse"]], name)
        assert m["parameters"] == _rnn_parameters(name, 2, cfg["hidden"], 1), name
    assert set(r["figures"]) == {"training.png", "gradient_norms.png"}


def test_adding(quick):
    r = quick("adding")
    cfg = r["config"]
    assert r["baseline_mse"] == pytest.approx(1 / 6)
    assert set(r["results"]) == {str(T) for T in cfg["lengths"]}
    for T, runs in r["results"].items():
        assert set(runs) == set(cfg["models"])
        n_seq = cfg["sequences"][T]
        for name, m in runs.items():
            seen, mse = m["seen"], m["test_mse"]
            assert len(seen) == len(mse) and seen[0] == 0 and seen[-1] == n_seq
            assert all(b > a for a, b in zip(seen, seen[1:]))
            _finite_nonneg(mse, name)
            assert m["final_test_mse"] == mse[-1] and m["best_test_mse"] == min(mse)
            assert m["solved"] == (mse[-1] < cfg["solved_mse"])
            assert m["updates"] + m["skipped_updates"] == n_seq // cfg["batch_size"]
            _in_unit_interval(m["clipped_share"])
            spec = cfg["models"][name]
            assert m["parameters"] == _rnn_parameters(spec["cell"], 2, spec["hidden"], 1), name
            assert r["summary"][T][name]["final_test_mse"] == m["final_test_mse"]


def test_reber(quick):
    r = quick("reber")
    cfg = r["config"]
    assert set(r["summary"]) == set(cfg["models"]) == set(r["trials"])
    for name, s in r["summary"].items():
        trials = r["trials"][name]
        assert s["trials"] == cfg["trials"] == len(trials)
        assert s["solved"] == sum(t["solved"] for t in trials)
        assert s["solved_share"] == pytest.approx(s["solved"] / s["trials"])
        spec = cfg["models"][name]
        assert s["parameters"] == _rnn_parameters(spec["cell"], 7, spec["hidden"], 7), name  # 7 Reber symbols
        for t in trials:
            _in_unit_interval([t["test_strings_correct"], t["test_steps_correct"],
                               t["fresh_strings_correct"], t["fresh_steps_correct"]], name)
            assert 0 < t["sequences"] <= cfg["cap"]
            assert t["test_steps_correct"] >= t["test_strings_correct"]  # a correct string has every step correct
            if t["solved"]:
                assert t["test_strings_correct"] == 1.0


def test_static_vs_recurrent_sequences(quick):
    r = quick("static-vs-recurrent-sequences")
    cfg = r["config"]
    lags, models = r["lags"], set(cfg["grids"])
    assert lags == cfg["lags"] and r["window"] == cfg["window"]
    assert r["chance"] == pytest.approx(1 / cfg["n_classes"])
    f = _check_fairness(r, models)
    assert f["budget"] == {**cfg["budget"], "seconds": None}
    for name in models:
        # each family's point is its best mean validation accuracy (first on ties); never chosen on test
        best = max(s["validation"] for s in f["search"][name])
        first = next(s for s in f["search"][name] if s["validation"] == best)
        assert f["chosen"][name] == first["point"] and len(f["search"][name]) == f["grid_size"]
        used = f["used"][name]
        assert used["runs"] == len(lags) * cfg["seeds"] and sum(used["stopped_by"].values()) == used["runs"]
        assert used["epochs_max"] <= cfg["budget"]["max_epochs"]
        for run in r["runs"][name]:
            assert {"hidden": run["hidden"], "lr": run["lr"]} == f["chosen"][name]
            assert run["epochs"] >= run["best_epoch"] >= 1 and run["epochs"] <= cfg["budget"]["max_epochs"]
    assert set(r["mean_test_accuracy"]) == models == set(r["test_accuracy_per_seed"])
    for name in models:
        per_seed = np.array(r["test_accuracy_per_seed"][name])
        assert per_seed.shape == (len(lags), cfg["seeds"])
        _in_unit_interval(per_seed, name)
        np.testing.assert_allclose(r["mean_test_accuracy"][name], per_seed.mean(axis=1))
        assert r["seeds_at_95_percent"][name] == (per_seed >= 0.95).sum(axis=1).tolist()
        assert len(r["runs"][name]) == len(lags) * cfg["seeds"]
    beyond = r["beyond_window"]
    assert beyond["lags"] == [lag for lag in lags if lag >= cfg["window"]]
    k = [lags.index(lag) for lag in beyond["lags"]]
    mlp = np.array(r["mean_test_accuracy"]["MLP"])[k]
    np.testing.assert_allclose(beyond["mlp_mean_accuracy"], mlp)
    for name, margin in beyond["margin_over_mlp"].items():
        np.testing.assert_allclose(margin, np.array(r["mean_test_accuracy"][name])[k] - mlp)
        assert beyond["min_margin_over_mlp"][name] == pytest.approx(min(margin))


def test_static_vs_recurrent_ocr(quick):
    from tasks.data.glyphs import available_fonts

    r = quick("static-vs-recurrent-ocr")
    cfg = r["config"]
    assert r["chance"] == pytest.approx(1 / len(cfg["charset"]))
    train, test = set(r["train_fonts"]), set(r["test_fonts"])
    assert len(test) == cfg["test_fonts"] and not train & test
    assert train | test == set(available_fonts(cfg["charset"]))
    assert list(r["models"]) == cfg["models"]
    f = _check_fairness(r, cfg["models"])
    assert f["budget"] == {**cfg["budget"], "seconds": None}
    for name, m in r["models"].items():
        # the reported point is the best on validation (first on ties), and it is what the model used
        search = f["search"][name]
        best = max(s["validation"] for s in search)
        assert f["chosen"][name] == next(s for s in search if s["validation"] == best)["point"]
        assert m["validation_accuracy"] == best and all(m[k] == v for k, v in f["chosen"][name].items())
        assert f["used"][name]["epochs"] == m["epochs"] <= cfg["budget"]["max_epochs"]
        assert (f["used"][name]["stopped_by"] == "patience") == (m["epochs"] < cfg["budget"]["max_epochs"])
        assert name == f"{m['model']} / {m['view']}"
        _in_unit_interval([m["train_accuracy"], m["test_accuracy"], m["seen_font_accuracy"]], name)
        assert set(m["test_accuracy_by_font"]) == test and set(m["seen_font_accuracy_by_font"]) == train
        _in_unit_interval(list(m["test_accuracy_by_font"].values()), name)
        # the held-out test set has as many glyphs of every font: the accuracy is the mean over fonts
        assert m["test_accuracy"] == pytest.approx(np.mean(list(m["test_accuracy_by_font"].values())), abs=1e-9)
        assert m["gap"] == pytest.approx(m["train_accuracy"] - m["test_accuracy"])
        assert m["font_gap"] == pytest.approx(m["seen_font_accuracy"] - m["test_accuracy"])
        for key in ("train_accuracy_per_epoch", "val_accuracy_per_epoch", "test_accuracy_per_epoch",
                    "train_loss_per_epoch", "val_loss_per_epoch", "test_loss_per_epoch"):
            assert len(m[key]) == m["epochs"], (name, key)
        _in_unit_interval(m["test_accuracy_per_epoch"] + m["train_accuracy_per_epoch"], name)
        # early stopping restores the best validation epoch: the test score is that epoch's
        assert m["val_loss_per_epoch"][m["best_epoch"] - 1] == min(m["val_loss_per_epoch"])
        assert m["test_accuracy_per_epoch"][m["best_epoch"] - 1] == pytest.approx(m["test_accuracy"], abs=1e-6)
        _finite_nonneg(m["test_loss_per_epoch"] + m["train_loss_per_epoch"], name)
    for view, best in r["best_per_view"].items():
        assert r["models"][best]["test_accuracy"] == max(m["test_accuracy"] for m in r["models"].values()
                                                         if m["view"] == view)
    assert set(r["regularisation"]) == set(cfg["reg"]["variants"])
    for name, v in r["regularisation"].items():
        assert (v["weight_decay"], v["dropout"]) == tuple(cfg["reg"]["variants"][name].values())
        _in_unit_interval([v["train_accuracy"], v["test_accuracy"]], name)
    for view in ("image", "rows", "pen"):
        assert f"confusion_{view}.png" in r["figures"]


def test_gradient_norms(quick):
    r = quick("gradient-norms")
    cfg = r["config"]
    models = r["models"]
    assert set(models) == {"Elman-tanh rho=0.8", "Elman-tanh rho=1.5", "IRNN", "LSTM", "GRU"}
    updates = cfg["epochs"] * math.ceil(cfg["n_train"] / cfg["batch_size"])
    for name, m in models.items():
        assert len(m["test_mse_per_epoch"]) == cfg["epochs"] and m["test_mse"] == m["test_mse_per_epoch"][-1]
        _finite_nonneg(m["test_mse_per_epoch"], name)
        assert m["updates"] == updates and 0 <= m["updates_clipped"] <= updates
        for key in ("probe_grad_ratio_first_over_last", "jacobian_norm_first"):
            assert all(len(m[key][when]) == cfg["n_probe"] for when in ("init", "trained")), (name, key)
        assert len(m["jacobian_norm_first_median_per_epoch"]) == cfg["epochs"] + 1
    # the initial recurrent matrices have the spectral radius they are named after
    # (gamma = 1 for tanh and ReLU), and Pascanu et al.'s bound holds at every step
    for name, rho in (("Elman-tanh rho=0.8", 0.8), ("Elman-tanh rho=1.5", 1.5), ("IRNN", 1.0)):
        bound = models[name]["bound"]
        assert bound["lambda1_gamma"]["init"] == pytest.approx(rho, rel=1e-9), name
        assert bound["holds_at_every_t"] and bound["max_jacobian_over_bound"] <= 1 + 1e-9, name
        assert bound["max_loss_grad_ratio_over_bound"] <= 1 + 1e-9, name
        assert bound["checked_measurements"] == cfg["epochs"] + 1
    assert models["Elman-tanh rho=0.8"]["bound"]["vanishing_guaranteed_at_init"]
    clip = r["clipping"]["runs"]
    assert set(clip) == {"no clipping", "clipped to norm 1"}
    assert clip["no clipping"]["updates_clipped"] == 0
    cliff = r["cliff"]
    # the library's gradient on the cliff equals a plain numpy one; clipped steps are at most lr * clip
    assert cliff["library_vs_numpy_max_rel_grad_diff"] < 1e-10
    assert cliff["random_start_stats"]["clipped"]["longest_step"] <= cliff["lr"] * cliff["clip"] + 1e-12
    for p in cliff["drawn_paths"]:
        if p["clipped"]:
            assert p["longest_step"] <= cliff["lr"] * cliff["clip"] + 1e-12
    for stats in cliff["random_start_stats"].values():
        _in_unit_interval([stats["share_with_a_step_longer_than_1"], stats["share_reaching_loss_below_1e-3"]])


def test_truncation(quick):
    r = quick("truncation")
    cfg = r["config"]
    acc = r["accuracy"]
    assert acc["k2"] == cfg["k2"] and r["chance"] == pytest.approx(1 / cfg["n_classes"])
    final = np.array(acc["final_per_seed"])
    assert final.shape == (len(cfg["k2"]), cfg["seeds"])
    _in_unit_interval(final)
    np.testing.assert_allclose(acc["mean"], final.mean(axis=1))
    assert set(acc["per_epoch"]) == {str(k) for k in cfg["k2"]}
    for k, runs in acc["per_epoch"].items():
        assert np.array(runs).shape == (cfg["seeds"], cfg["epochs"])
    reaching = final[np.array(cfg["k2"]) >= cfg["lag"] + 1]
    assert acc["mean_k2_reaching_lag"] == pytest.approx(reaching.mean())
    bias = r["bias"]
    assert bias["k2"] == list(range(cfg["k1"], cfg["T"] + 1))
    for label, cos in bias["cosine"].items():
        assert len(cos) == len(bias["k2"]) and len(bias["norm_ratio"][label]) == len(bias["k2"])
        assert all(-1 - 1e-12 <= c <= 1 + 1e-12 for c in cos), label
        # truncated BPTT with k2 = T is full BPTT: the same gradient, exactly
        assert cos[-1] == pytest.approx(1.0, abs=1e-12), label
        assert bias["norm_ratio"][label][-1] == pytest.approx(1.0, abs=1e-12), label
    assert bias["full_equals_truncated_at_T"] is True


def test_text(quick):
    r = quick("text")
    cfg = r["config"]
    assert len(r["val_bits_per_char"]) == cfg["epochs"]
    # a unigram model's entropy lies between 0 and log2 of the alphabet
    assert 0 < r["unigram_bits_per_char"] <= math.log2(cfg["vocab_size"])
    _finite_nonneg(r["val_bits_per_char"] + [r["train_bits_per_char"]])
    assert r["samples"]
    for temperature, sample in r["samples"].items():
        assert float(temperature) > 0
        assert sample.startswith("The ") and len(sample) == 4 + cfg["sample_chars"], temperature


def test_recurrent_backprop(quick):
    r = quick("recurrent-backprop")
    cfg = r["config"]
    methods = r["settling"]["methods"]
    assert {"mlp", "rbp", "neumann", "bptt", "tbptt"} <= set(methods)
    for name, m in methods.items():
        assert len(m["curve"]) == cfg["epochs"]
        assert [c["epoch"] for c in m["curve"]] == list(range(1, cfg["epochs"] + 1))
        _in_unit_interval([m["accuracy"]] + [c["accuracy"] for c in m["curve"]], name)
        _finite_nonneg([m["recon_mse"]], name)
        assert m["curve"][-1]["accuracy"] == m["accuracy"]
        if name != "mlp":  # a contraction: the recurrent matrix is kept inside the norm ball
            assert m["W_hh_norm"] <= cfg["max_norm"] + 1e-9, name
            assert m["forward_iterations_max"] <= cfg["max_iter"]
    # solved to tolerance, the recurrent-backprop gradients equal BPTT's run to the fixed point
    for when, methods_at in r["settling"]["gradient_agreement"].items():
        for name in ("rbp", "bptt"):
            assert methods_at[name]["cosine"] > 1 - 1e-6 and methods_at[name]["rel_error"] < 1e-4, (when, name)
        for name, agreement in methods_at.items():
            assert -1 - 1e-12 <= agreement["cosine"] <= 1 + 1e-12, (when, name)
    sweep = r["settling"]["K_sweep"]
    for key in ("neumann", "tbptt", "bptt_K_steps"):
        assert len(sweep[key]) == len(sweep["K"])
    assert sweep["bptt_K_steps"][-1] < sweep["bptt_K_steps"][0]
    rtrl = r["rtrl"]
    assert rtrl["max_abs_error_vs_bptt"] < 1e-10  # RTRL's gradient is BPTT's
    tps = rtrl["time_per_step"]
    assert len(tps["RTRL"]) == len(tps["BPTT"]) == len(tps["n"]) == len(tps["RTRL_bytes"])
    # RTRL carries an (n, n^2)-sized sensitivity per sequence: memory grows with n^3
    assert all(b > a for a, b in zip(tps["RTRL_bytes"], tps["RTRL_bytes"][1:]))


def test_benchmark(quick, tmp_path):
    r = quick("benchmark")
    cfg = r["config"]
    assert r["rows"]
    for row in r["rows"]:
        assert row["rnnbp_ms"] > 0 and row["naive_ms"] > 0
        tol = cfg["gradient_tolerance"][row["dtype"]]
        # every timed implementation computed the same gradient as rnnbp
        for impl in ("torch", "naive"):
            if row.get(f"{impl}_ms") is not None:
                assert row[f"grad_rel_err_{impl}"] < tol, (row["cell"], row["dtype"], impl)
        assert row["ratio_naive_over_rnnbp"] == pytest.approx(row["naive_ms"] / row["rnnbp_ms"])
    cells = {(row["cell"], row["dtype"]) for row in r["rows"]}
    assert {f"{c} {d}" for c, d in cells} == set(r["summary"])
    mem = r["memory"]
    for kind in ("full", "recompute"):
        assert mem[kind]["seconds_median"] > 0
    table = (tmp_path / r["table"]).read_text()
    assert all(cell in table for cell, _ in cells)


def test_ocr_lines(quick):
    from tasks.experiments.ocr_lines import AMBIGUOUS, align
    from tasks.data.lines import HELD_OUT_FONTS, TRAIN_FONTS

    r = quick("ocr-lines")
    cfg = r["config"]
    assert r["held_out_fonts"] == list(HELD_OUT_FONTS) and r["train_fonts"] == list(TRAIN_FONTS)
    assert set(r["models"]) == set(cfg["models"])
    # the static window is the one with the lowest validation CER among those tried, over every start
    for view, ks in cfg["windows"].items():
        search = r["window_search"][view]
        assert set(search) == {str(k) for k in ks}
        for s in search.values():
            assert len(s["starts"]) == cfg["search_starts"]
            assert s["val_cer"] == min(start["val_cer"] for start in s["starts"])
        k, start = r["chosen_window"][view]["k"], r["chosen_window"][view]["start"]
        assert search[str(k)]["starts"][start]["val_cer"] == min(s["val_cer"] for s in search.values())
        assert r["models"][f"MLP / {view}"]["window"] == k
    n_test = cfg["data"]["n_test"]
    for name, m in r["models"].items():
        spec = cfg["models"][name]
        assert (m["kind"], m["view"], m["hidden"]) == (spec["kind"], spec["view"], spec["hidden"]), name
        assert m["lines_seen"] >= spec["rounds"] * cfg["round_lines"]
        curve = m["curve"]
        assert len(curve["val_cer"]) == spec["rounds"] == len(curve["train_loss"]) == len(curve["lines"])
        # early stopping keeps the best validation round
        assert m["val_cer"] == min(curve["val_cer"]) == curve["val_cer"][m["best_round"] - 1]
        _finite_nonneg(curve["train_loss"] + curve["val_cer"], name)
        for split in ("seen", "held_out"):
            s = m[split]
            # CER and WER are edits / reference length: >= 0 (above 1 when a model inserts a lot)
            _finite_nonneg([s["cer"], s["wer"]], (name, split))
            _in_unit_interval([s["lines_correct"]], (name, split))
            assert s["lines"] == n_test
            # the corpus rate is the character-weighted mean of the per-font and per-length rates
            for part in (list(s["by_font"].values()), s["by_length"]):
                assert sum(p["lines"] for p in part) == n_test
                weighted = sum(p["cer"] * p["chars"] for p in part) / sum(p["chars"] for p in part)
                assert weighted == pytest.approx(s["cer"]), (name, split)
            assert set(s["by_font"]) <= set(HELD_OUT_FONTS if split == "held_out" else TRAIN_FONTS)
            conf = s["confusions"]
            assert set(conf["group_error_rate"]) == set(AMBIGUOUS)
            _finite_nonneg(list(conf["group_error_rate"].values()) + list(conf["named"].values()), name)
        assert set(m["held_out"]["by_font"]) == set(HELD_OUT_FONTS)
    bi = r["models"]["BiLSTM / image"]
    assert bi["beam"]["beam_width"] == cfg["beam_width"]
    _finite_nonneg([bi["beam"]["held_out"]["cer"], bi["beam"]["held_out"]["wer"]])
    # both directions of every layer of the bidirectional LSTM record ||dL/dh_t|| over the probe line's columns
    norms = bi["probe"]["state_grad_norms"]
    layers = cfg["models"]["BiLSTM / image"].get("layers", 1)
    assert set(norms) == {f"{i}.{d}" for i in range(layers) for d in ("forward", "backward")}
    assert len({len(v) for v in norms.values()}) == 1 and len(norms["0.forward"]) > 0
    _finite_nonneg([x for v in norms.values() for x in v])
    t = r["targets"]
    assert t["meets_held_out_target"] == (bi["held_out"]["cer"] <= 0.02)
    assert t["better_than_one_direction"] == all(bi["held_out"]["cer"] < v
                                                 for v in t["one_direction_held_out_cer"].values())
    ratio = r["comparisons"]["image"]["cer_ratio_static_over_recurrent"]["held_out"]
    assert ratio == pytest.approx(r["models"]["MLP / image"]["held_out"]["cer"] / bi["held_out"]["cer"])
    assert {"cer.png", "curves.png", "lines.png", "ctc_outputs.png", "grad_norms.png",
            "by_length.png", "views.png"} == set(r["figures"])
    # the alignment behind the confusion counts is a minimum edit script
    pairs = align("corn mill", "com rnill")
    assert "".join(a for a, _ in pairs) == "corn mill" and "".join(b for _, b in pairs) == "com rnill"
    assert sum(a != b for a, b in pairs) == 4
