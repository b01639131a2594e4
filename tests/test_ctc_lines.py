"""tasks.ctc_lines: window features, minibatches, scoring, and the one CTC training function.

The training tests use small synthetic splits (no font rendering): each
"line" is a few symbols, each drawn as a block of columns lit in the
symbol's own row, so a model can learn it in a few rounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from tasks.ctc_lines import training
from tasks.ctc_lines.data import SPLITS, LineView, window_features
from tasks.ctc_lines.scoring import align, cer_without, ratio, score
from tasks.data.lines import ALPHABET


def _synthetic(n: int = 24, seed: int = 0) -> dict[str, np.ndarray]:
    """Splits in the layout of ``make_data``: each symbol 3 lit columns then a blank column."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in SPLITS:
        L = rng.integers(2, 5, n)
        labels = np.zeros((n, 4), dtype=np.int64)
        T = 4 * 4
        images = np.zeros((T, n, 24), dtype=np.uint8)
        texts, pen = [], np.zeros((T, n, 3), dtype=np.float32)
        for i in range(n):
            sym = rng.integers(1, 6, L[i])          # 5 symbols: rows 1..5 of the 24
            labels[i, :L[i]] = sym
            texts.append("".join(ALPHABET[s - 1] for s in sym))
            for j, s in enumerate(sym):
                images[4 * j:4 * j + 3, i, s] = 255
                pen[4 * j:4 * j + 3, i, 0] = s
                pen[4 * j:4 * j + 3, i, 1] = j % 2
        arrays.update({f"{split}/images": images, f"{split}/image_lengths": 4 * L,
                       f"{split}/pen": pen, f"{split}/pen_lengths": 4 * L,
                       f"{split}/labels": labels, f"{split}/label_lengths": L,
                       f"{split}/texts": np.array(texts, dtype=str),
                       f"{split}/fonts": np.array(["a", "b"] * (n // 2), dtype=str)})
    return arrays


CFG = {"data": {}, "dtype": "float64", "batch_size": 4, "round_lines": 48, "clip": 5.0,
       "lr_final_share": 0.1, "beam_width": 2, "probe_font": "a"}


@pytest.fixture
def arrays(monkeypatch):
    a = _synthetic()
    monkeypatch.setattr(training, "load_data", lambda data, seed: a)
    return a


def test_window_features_stack_neighbours_with_zeros_outside():
    xs = np.arange(12.0).reshape(4, 1, 3)
    w = window_features(xs, 1)
    assert w.shape == (4, 1, 9)
    np.testing.assert_array_equal(w[0, 0], np.r_[np.zeros(3), xs[0, 0], xs[1, 0]])
    np.testing.assert_array_equal(w[3, 0], np.r_[xs[2, 0], xs[3, 0], np.zeros(3)])
    np.testing.assert_array_equal(window_features(xs, 0), xs)


def test_line_view_batches_pad_labels_with_minus_one_and_mask_each_length():
    a = _synthetic()
    view = LineView(a, "train", "image", None, np.ones(3, np.float32), np.dtype(np.float32))
    ix = np.array([0, 1, 2])
    xs, labels, mask = view.batch(ix)
    T = int(a["train/image_lengths"][ix].max())
    assert xs.shape == (T, 3, 24) and xs.dtype == np.float32 and xs.max() == 1.0
    np.testing.assert_array_equal(mask.sum(axis=0), a["train/image_lengths"][ix])
    np.testing.assert_array_equal((labels >= 0).sum(axis=1), a["train/label_lengths"][ix])
    assert sorted(np.concatenate(view.batches(5, np.random.default_rng(0))).tolist()) == list(range(len(view)))
    windowed = LineView(a, "train", "image", 2, np.ones(3, np.float32), np.dtype(np.float32))
    assert windowed.batch(ix)[0].shape == (T, 3, 5 * 24)


def test_scores_per_font_and_without_each_font():
    refs, hyps = ["abc", "abcd", "xy"], ["abc", "abed", "x"]
    fonts = np.array(["f", "g", "g"])
    s = score(refs, hyps, fonts, [[1, 3], [4, 9]])
    assert s["cer"] == pytest.approx(2 / 9) and s["lines_correct"] == pytest.approx(1 / 3)
    assert s["by_font"]["f"]["cer"] == 0 and s["by_font"]["g"]["cer"] == pytest.approx(2 / 6)
    assert [b["lines"] for b in s["by_length"]] == [2, 1]
    assert cer_without(refs, hyps, fonts) == pytest.approx({"f": 2 / 6, "g": 0.0})
    assert ratio(1.0, 4.0) == 0.25 and ratio(1.0, 0.0) is None
    assert align("ab", "b") == [("a", ""), ("b", "b")]


def test_train_model_learns_keeps_the_best_round_and_reports_its_budget(arrays):
    spec = {"kind": "mlp", "view": "image", "hidden": 16, "window": 1, "lr": 3e-2, "beam": True}
    r = training.train_model(spec, {"max_epochs": 8, "patience": None}, CFG, seed=1, data_seed=0)
    curve = r["curve"]
    assert len(curve["val_cer"]) == 8 == r["used"]["epochs"] and r["used"]["stopped_by"] == "max_epochs"
    # early stopping keeps the best round: its CER is the curve's minimum, reached at best_round
    assert r["val_cer"] == min(curve["val_cer"]) == curve["val_cer"][r["best_round"] - 1]
    assert r["used"]["best_epoch"] == r["best_round"] and r["used"]["best_score"] == r["val_cer"]
    assert curve["val_cer"][-1] < curve["val_cer"][0] and r["val_cer"] < 0.2
    # the cosine schedule runs over the budget: the rate falls every round
    assert all(a > b for a, b in zip(curve["lr"], curve["lr"][1:]))
    assert set(r["hyps"]) == {"seen", "held_out"} and len(r["hyps"]["held_out"]) == 24
    assert len(r["beam_hyps"]["held_out"]) == 24 and r["probe"]["line"] in np.flatnonzero(
        arrays["held_out/fonts"] == "a")
    # the decoded held-out lines score as the best round's validation CER says they should
    assert score([str(t) for t in arrays["held_out/texts"]], r["hyps"]["held_out"], arrays["held_out/fonts"],
                 [[1, 9]])["cer"] < 0.3


def test_train_model_stops_on_patience_and_search_runs_return_early(arrays):
    spec = {"kind": "mlp", "view": "image", "hidden": 4, "window": 1, "lr": 1e-9}   # cannot improve
    r = training.train_model(spec, {"max_epochs": 20, "patience": 2}, CFG, seed=1, data_seed=0, search=True)
    assert r["used"]["stopped_by"] == "patience" and r["used"]["epochs"] == r["best_round"] + 2 < 20
    assert "hyps" not in r and r["window"] == 1
    with pytest.raises(ValueError, match="max_epochs"):
        training.train_model(spec, {"max_epochs": 0}, CFG, seed=1, data_seed=0)


def test_probe_line_names_a_missing_font():
    with pytest.raises(ValueError, match="font: no held-out line is in 'zz'"):
        training.probe_line(_synthetic(), "zz")
