"""Data generators of tasks/: determinism, shapes, ranges and each task's defining property."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tasks.data import glyphs as ocr, sequences as sq, text

ROOT = Path(__file__).resolve().parents[1]

# Every SequenceData generator, as seed -> data (small sizes).
GENERATORS = {
    "adding_le": lambda seed, **kw: sq.adding_problem(16, 20, seed=seed, **kw),
    "adding_hochreiter": lambda seed, **kw: sq.adding_problem(16, 30, variant="hochreiter",
                                                              seed=seed, **kw),
    "temporal_order_2": lambda seed, **kw: sq.temporal_order(16, seed=seed, **kw),
    "temporal_order_3": lambda seed, **kw: sq.temporal_order(16, n_relevant=3, length=(40, 45),
                                                             seed=seed, **kw),
    "copy": lambda seed, **kw: sq.copy_task(16, n_symbols=5, n_recall=4, delay=6, seed=seed, **kw),
    "reber": lambda seed, **kw: sq.reber_sequences(16, seed=seed, **kw),
    "reber_plain": lambda seed, **kw: sq.reber_sequences(16, embedded=False, seed=seed, **kw),
    "xor": lambda seed, **kw: sq.temporal_xor(16, 30, seed=seed, **kw),
    "sine": lambda seed, **kw: sq.sine_mixture(16, 25, seed=seed, **kw),
    "mackey_glass": lambda seed, **kw: sq.mackey_glass_sequences(16, 25, n_samples=600,
                                                                 seed=seed, **kw),
    "delayed_class": lambda seed, **kw: sq.delayed_class(16, 5, seed=seed, **kw),
    "text": lambda seed, **kw: text.next_char_data(
        text.text_windows(np.arange(200) % 7, 16, 12, seed=seed), 7, **kw),
}


def _arrays(data):
    return [data.xs, data.ys, data.mask, data.lengths]


# --------------------------------------------------------------------------
# the common convention

@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_deterministic_under_seed(name):
    make = GENERATORS[name]
    state = np.random.get_state()[1].copy()
    a, b, c = make(3), make(3), make(4)
    assert np.array_equal(np.random.get_state()[1], state), "global numpy state was used"
    for u, v in zip(_arrays(a), _arrays(b)):
        assert u.dtype == v.dtype and np.array_equal(u, v)
    assert any(u.shape != v.shape or not np.array_equal(u, v)
               for u, v in zip(_arrays(a), _arrays(c)))
    d = make(np.random.default_rng(3))
    for u, v in zip(_arrays(a), _arrays(d)):
        assert np.array_equal(u, v)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_sequence_data_convention(name):
    data = GENERATORS[name](0)
    T, N, D = data.xs.shape
    assert data.xs.dtype == np.float64
    assert data.mask.shape == (T, N) and data.mask.dtype == bool
    assert data.lengths.shape == (N,) and data.lengths.dtype == np.int64
    assert data.lengths.max() == T and data.lengths.min() >= 1
    assert np.isfinite(data.xs).all()
    assert not data.xs[~data.valid].any(), "padding must be zero"
    assert not (data.mask & ~data.valid).any(), "scored steps must be real steps"
    if data.target_at == "last":
        assert data.ys.shape[0] == N
        assert np.array_equal(data.mask, np.arange(T)[:, None] == data.lengths - 1)
        assert np.array_equal(data.last_outputs(data.xs), data.xs[data.lengths - 1, np.arange(N)])
    else:
        assert data.ys.shape[:2] == (T, N)
    if np.issubdtype(data.ys.dtype, np.integer):
        assert data.ys.dtype == np.int64 and data.ys.min() >= 0
    sub = data.take(np.array([2, 0]))
    assert sub.xs.shape[1] == 2 and np.array_equal(sub.xs[:, 1], data.xs[:, 0])
    assert type(sub) is type(data)
    f32 = GENERATORS[name](0, dtype=np.float32)
    assert f32.xs.dtype == np.float32
    assert np.allclose(f32.xs, data.xs, atol=1e-6)


def test_bad_arguments_fail_early():
    with pytest.raises(TypeError, match="seed"):
        sq.adding_problem(4, 10, seed=1.5)
    with pytest.raises(TypeError, match="dtype"):
        sq.adding_problem(4, 10, seed=0, dtype=np.int32)
    with pytest.raises(ValueError, match="variant"):
        sq.adding_problem(4, 10, variant="nope", seed=0)
    with pytest.raises(ValueError, match="length"):
        sq.adding_problem(4, 1, seed=0)
    with pytest.raises(ValueError, match="n_relevant"):
        sq.temporal_order(4, n_relevant=4, seed=0)


def test_one_hot():
    assert np.array_equal(sq.one_hot([[2, 0]], 3), [[[0, 0, 1], [1, 0, 0]]])
    with pytest.raises(ValueError):
        sq.one_hot([3], 3)


# --------------------------------------------------------------------------
# adding problem

def test_adding_le_defining_property():
    d = sq.adding_problem(500, 40, seed=1)
    values, marks = d.xs[..., 0], d.xs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(np.unique(marks)) <= {0.0, 1.0}
    assert (marks[:20].sum(0) == 1).all() and (marks[20:].sum(0) == 1).all()
    assert np.allclose(d.ys[:, 0], (values * marks).sum(0))


def test_adding_hochreiter_defining_property():
    d = sq.adding_problem(500, 40, variant="hochreiter", seed=2)
    values, marks = d.xs[..., 0], d.xs[..., 1]
    cols = np.arange(500)
    assert ((d.lengths >= 40) & (d.lengths <= 44)).all()
    assert ((values >= -1) & (values <= 1)).all()
    assert ((marks == 1).sum(0) == 2).all()
    first = np.argmax(marks == 1, axis=0)
    assert (first < 10).all()
    assert (np.where(marks == 1, np.arange(marks.shape[0])[:, None], -1).max(0) < 20).all()
    assert np.allclose(d.ys[:, 0], 0.5 + (values * (marks == 1)).sum(0) / 4)
    assert (marks[d.lengths - 1, cols] == -1).all()
    assert ((marks[0] == -1) | ((marks[0] == 1) & (values[0] == 0))).all()
    assert ((d.ys >= 0) & (d.ys <= 1)).all()


@pytest.mark.parametrize("variant", ["le", "hochreiter"])
def test_adding_baseline_mse_is_target_variance(variant):
    d = sq.adding_problem(40000, 24, variant=variant, seed=0)
    assert np.isclose(d.ys.var(), sq.adding_baseline_mse(variant), rtol=0.03)
    if variant == "le":
        assert abs(sq.adding_baseline_mse() - 0.1667) < 1e-3


# --------------------------------------------------------------------------
# temporal order

@pytest.mark.parametrize("n_relevant", [2, 3])
def test_temporal_order_labels_match_xy_order(n_relevant):
    d = sq.temporal_order(300, n_relevant=n_relevant, seed=5)
    syms = np.where(d.valid, d.xs.argmax(-1), -1)
    S = sq.TEMPORAL_ORDER_SYMBOLS
    cols = np.arange(300)
    assert (syms[0] == S.index("E")).all()
    assert (syms[d.lengths - 1, cols] == S.index("B")).all()
    assert ((d.lengths >= 100) & (d.lengths <= 110)).all()
    for n in range(300):
        seq = "".join(S[s] for s in syms[: d.lengths[n], n])
        relevant = [c for c in seq if c in "XY"]
        assert len(relevant) == n_relevant
        assert set(seq[1:-1]) <= set("abcdXY")
        assert d.ys[n] == int("".join("0" if c == "X" else "1" for c in relevant), 2)
    assert set(np.unique(d.ys)) == set(range(2 ** n_relevant))
    # the paper's position windows (6a: t1 in [10, 20], t2 in [50, 60])
    if n_relevant == 2:
        where = [np.flatnonzero(syms[:, n] >= S.index("X")) for n in range(300)]
        assert all(10 <= w[0] <= 20 and 50 <= w[1] <= 60 for w in where)


# --------------------------------------------------------------------------
# copy

def test_copy_targets_equal_inputs_shown():
    A, K, delay = 6, 5, 7
    d = sq.copy_task(50, n_symbols=A, n_recall=K, delay=delay, seed=3)
    T = 2 * K + delay + 1
    assert d.xs.shape == (T, 50, A + 2)
    shown = d.xs.argmax(-1)
    assert (shown[:K] < A).all()
    assert (shown[K:K + delay] == A).all() and (shown[K + delay] == A + 1).all()
    assert (shown[K + delay + 1:] == A).all()
    assert np.array_equal(d.ys[d.mask].reshape(K, 50), shown[:K])
    assert (d.ys[~d.mask] == A).all()
    assert d.mask.sum() == K * 50 and d.mask[-K:].all()


# --------------------------------------------------------------------------
# Reber grammar

@pytest.mark.parametrize("embedded", [True, False])
def test_reber_strings_accepted_and_corruptions_rejected(embedded):
    strings = sq.reber_strings(300, embedded=embedded, seed=7)
    assert all(sq.reber_accepts(s, embedded=embedded) for s in strings)
    rng = np.random.default_rng(0)
    for s in strings[:100]:
        i = int(rng.integers(1, len(s) - 1))
        wrong = [c for c in sq.REBER_SYMBOLS if c not in sq.reber_next_symbols(s[:i],
                                                                               embedded=embedded)]
        corrupted = s[:i] + wrong[int(rng.integers(len(wrong)))] + s[i + 1:]
        assert not sq.reber_accepts(corrupted, embedded=embedded)
        assert not sq.reber_accepts(s[:-1], embedded=embedded)
        assert not sq.reber_accepts(s + "E", embedded=embedded)
    assert not sq.reber_accepts("")


def test_reber_known_strings_and_long_range_dependency():
    assert sq.reber_accepts("BTSSXXTVVE", embedded=False)
    assert sq.reber_accepts("BPVVE", embedded=False)
    assert not sq.reber_accepts("BTSSXXTVPE", embedded=False)
    assert sq.reber_accepts("BTBTSSXXTVVETE")
    assert not sq.reber_accepts("BTBTSSXXTVVEPE")  # the closing symbol must repeat the opening one
    assert sq.reber_next_symbols("BPBTXSE") == frozenset("P")
    assert sq.reber_next_symbols("") == frozenset("B")
    assert sq.reber_next_symbols("BT") == frozenset("B")
    with pytest.raises(ValueError):
        sq.reber_next_symbols("BX")


def test_reber_sequences_targets_and_legal_sets():
    d = sq.reber_sequences(200, seed=1)
    T, N, _ = d.xs.shape
    assert d.legal.shape == (T, N, 7)
    assert np.array_equal(d.mask, d.valid)
    for n, s in enumerate(d.strings):
        L = len(s) - 1
        assert d.lengths[n] == L
        assert "".join(sq.REBER_SYMBOLS[i] for i in d.xs[:L, n].argmax(-1)) == s[:-1]
        assert "".join(sq.REBER_SYMBOLS[i] for i in d.ys[:L, n]) == s[1:]
        for t in range(L):
            assert frozenset(sq.REBER_SYMBOLS[i] for i in np.flatnonzero(d.legal[t, n])) \
                == sq.reber_next_symbols(s[:t + 1])
    # the real next symbol is always legal
    assert d.legal[d.mask][np.arange(d.mask.sum()), d.ys[d.mask]].all()
    step, whole = sq.reber_correct(d.legal * 0.9 + 0.05, d)
    assert whole.all() and np.array_equal(step, d.mask)
    step, whole = sq.reber_correct(d.legal.astype(float), d, threshold=0.5)
    assert whole.all()
    # predicting only the observed next symbol fails wherever two were legal
    observed = sq.one_hot(d.ys, 7) * d.valid[..., None]
    step, whole = sq.reber_correct(observed, d)
    branching = d.legal.sum(-1) > 1
    assert not step[branching & d.mask].any() and not whole.any()


# --------------------------------------------------------------------------
# temporal XOR

@pytest.mark.parametrize("random_phase", [False, True])
def test_temporal_xor_predictable_bits(random_phase):
    d = sq.temporal_xor(40, 60, random_phase=random_phase, seed=11)
    x, y = d.xs[..., 0], d.ys[..., 0]
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(y[:-1], x[1:])  # next-bit targets
    t, n = np.nonzero(d.mask)
    assert (t >= 1).all()
    assert np.array_equal(y[t, n], np.logical_xor(x[t, n], x[t - 1, n]).astype(float))
    assert abs(d.mask.mean() - 1 / 3) < 0.02
    if not random_phase:
        assert np.array_equal(d.mask[:, 0], np.arange(60) % 3 == 1)


# --------------------------------------------------------------------------
# continuous series

def test_sine_mixture_is_next_value_and_bounded():
    d = sq.sine_mixture(20, 50, seed=0)
    assert np.array_equal(d.ys[:-1], d.xs[1:])
    assert np.abs(d.xs).max() <= 1.0 and d.xs.std() > 0.1


def test_mackey_glass_bounded_deterministic_and_accurate():
    s = sq.mackey_glass(3000)
    assert s.shape == (3000,) and not s.flags.writeable
    assert np.array_equal(s, sq.mackey_glass(3000))
    assert 0.2 < s.min() and s.max() < 1.5 and s.std() > 0.15  # the chaotic attractor
    # independent check: forward Euler with a 10x finer step over a short span
    h, tau, n = 0.001, 17.0, 30
    K = int(tau / h)
    x = np.full(K + int(n / h) + 1, 1.2)
    for i in range(K, x.size - 1):
        xd = x[i - K]
        x[i + 1] = x[i] + h * (0.2 * xd / (1 + xd ** 10) - 0.1 * x[i])
    ref = x[K::int(1 / h)][:n]
    assert np.allclose(sq.mackey_glass(n, discard=0.0), ref, atol=2e-3)


def test_series_windows_horizon():
    s = np.arange(100.0)
    d = sq.series_windows(s, 8, 10, horizon=3, seed=0)
    assert d.xs.shape == (10, 8, 1) and np.array_equal(d.ys - d.xs, np.full((10, 8, 1), 3.0))
    assert np.array_equal(np.diff(d.xs[..., 0], axis=0), np.ones((9, 8)))
    with pytest.raises(ValueError):
        sq.series_windows(s, 2, 98, horizon=3, seed=0)


# --------------------------------------------------------------------------
# delayed classification

@pytest.mark.parametrize("lag", [0, 3, 12])
def test_delayed_class_cue_is_lag_steps_before_end(lag):
    d = sq.delayed_class(200, lag, n_classes=3, n_distractors=5, seed=lag)
    T = d.xs.shape[0]
    sym = d.xs.argmax(-1)
    assert T == lag + 10
    assert np.array_equal(sym[T - 1 - lag], d.ys)
    assert ((sym < 3).sum(0) == 1).all()  # the cue is the only class symbol
    # a window over the last `lag` steps holds no class information
    assert (sym[T - lag:] >= 3).all()
    assert set(np.unique(d.ys)) == {0, 1, 2}


# --------------------------------------------------------------------------
# text

def test_stdlib_corpus_deterministic_and_bounded():
    a = text.stdlib_corpus(max_chars=30_000)
    assert len(a) == 30_000 and a == text.stdlib_corpus(max_chars=30_000)
    assert "Return" in a
    code = ("import hashlib, tasks.data.text as t;"
            "print(hashlib.sha256(t.stdlib_corpus(max_chars=30000).encode()).hexdigest())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(a.encode()).hexdigest()
    assert text.stdlib_corpus(max_chars=100).startswith(a[:100])


def test_vocab_round_trip(tmp_path):
    s = "Grüße, λ-calculus!\nnext line"
    path = tmp_path / "t.txt"
    path.write_text(s, encoding="utf-8")
    loaded = text.load_text(path)
    assert loaded == s and text.load_text(path, max_chars=5) == s[:5]
    v = text.Vocab.from_text(loaded)
    ids = v.encode(s)
    assert ids.dtype == np.int64 and ids.max() < v.size
    assert v.decode(ids) == s
    assert list(v.chars) == sorted(set(s))
    with pytest.raises(ValueError, match="'#'"):
        v.encode("#")
    corpus = text.stdlib_corpus(max_chars=20_000)
    cv = text.Vocab.from_text(corpus)
    assert cv.decode(cv.encode(corpus)) == corpus


def test_text_windows_streams_and_one_hot():
    ids = np.arange(1000) % 13
    w = text.text_windows(ids, 7, 20, seed=0)
    assert w.shape == (21, 7) and w.dtype == np.int64
    assert ((np.diff(w, axis=0) % 13) == 1).all()  # consecutive characters
    d = text.next_char_data(w, 13)
    assert d.xs.shape == (20, 7, 13) and d.target_at == "every"
    assert np.array_equal(d.xs.argmax(-1), w[:-1]) and np.array_equal(d.ys, w[1:])
    assert d.mask.all()
    st = text.text_streams(np.arange(103), 4)
    assert st.shape == (25, 4) and np.array_equal(st[:, 1], np.arange(25, 50))


# --------------------------------------------------------------------------
# OCR

@pytest.fixture(scope="module")
def ocr_data():
    return ocr.ocr_dataset(400, 200, size=16, charset=ocr.DIGITS, test_fonts=4, seed=0)


def test_fonts_listed_deterministically():
    fonts = ocr.available_fonts(ocr.ALPHANUMERIC)
    assert len(fonts) >= 15
    assert fonts == ocr.available_fonts(ocr.ALPHANUMERIC)
    assert all(f + ".ttf" in ocr.FONT_FILES for f in fonts)
    assert "DejaVuSans" in fonts


def test_ocr_test_fonts_never_in_training(ocr_data):
    d = ocr_data
    assert len(d.test_fonts) == 4
    assert not set(d.train_fonts) & set(d.test_fonts)
    assert set(d.train.fonts) <= set(d.train_fonts)
    assert set(d.test.fonts) == set(d.test_fonts)
    assert not set(d.train.fonts) & set(d.test.fonts)
    assert set(d.train_fonts) | set(d.test_fonts) == set(ocr.available_fonts(ocr.DIGITS))


def test_ocr_shapes_ranges_and_views(ocr_data):
    for part, n in ((ocr_data.train, 400), (ocr_data.test, 200)):
        assert part.images.shape == (n, 16, 16) and part.images.dtype == np.float64
        assert part.images.min() >= 0.0 and part.images.max() <= 1.0
        assert part.labels.shape == (n,) and part.labels.dtype == np.int64
        assert part.labels.min() >= 0 and part.labels.max() < 10
        assert np.bincount(part.labels, minlength=10).min() == n // 10  # balanced
        assert part.fonts.shape == (n,)
        assert part.flat().shape == (n, 256)
        assert np.array_equal(part.flat()[:, 16:32], part.rows()[1])
        assert part.rows().shape == (16, n, 16)
        rs = part.row_sequences()
        assert rs.target_at == "last" and rs.xs.shape == (16, n, 16)
        assert part.pen.shape == (64, n, 3)
        assert part.pen_sequences().xs.shape == (64, n, 3)
        ink = part.images.reshape(n, -1).max(1)
        assert (ink > 0.6).all(), "every sample shows its glyph"


def test_ocr_pen_trajectories_stay_in_box(ocr_data):
    pen = ocr_data.train.pen
    pos = np.cumsum(pen[..., :2], axis=0)
    assert pos.min() >= 0.0 and pos.max() <= 1.0
    assert set(np.unique(pen[..., 2])) == {0.0, 1.0}
    assert (pen[0, :, 2] == 1).all()
    # the pen goes round closed contours: each contour ends where it starts
    for n in range(10):
        starts = list(np.flatnonzero(pen[:, n, 2])) + [pen.shape[0]]
        for a, b in zip(starts[:-1], starts[1:]):
            assert np.allclose(pos[a, n], pos[b - 1, n], atol=1e-9)
    # and the outline lies on the inked part of the image
    d = ocr.render_glyphs(20, fonts=("DejaVuSans-Bold",), size=32, seed=0,
                          distortion=ocr.Distortion.none())
    pos = np.cumsum(d.pen[..., :2], axis=0)
    col = (pos[..., 0] * 32).astype(int)
    row = ((1 - pos[..., 1]) * 32).astype(int)
    padded = np.pad(d.images, ((0, 0), (1, 1), (1, 1)))
    near = np.max([padded[np.arange(20)[None, :], row + 1 + dr, col + 1 + dc]
                   for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=0)
    assert (near > 0.5).all()  # an outline point is within a pixel of ink


def test_ocr_determinism_and_clean_render():
    a = ocr.ocr_dataset(60, 30, charset="0123A", test_fonts=3, seed=5)
    b = ocr.ocr_dataset(60, 30, charset="0123A", test_fonts=3, seed=5)
    c = ocr.ocr_dataset(60, 30, charset="0123A", test_fonts=3, seed=6)
    for x, y in ((a.train, b.train), (a.test, b.test)):
        assert np.array_equal(x.images, y.images) and np.array_equal(x.pen, y.pen)
        assert np.array_equal(x.labels, y.labels) and np.array_equal(x.fonts, y.fonts)
    assert a.test_fonts == b.test_fonts
    assert not np.array_equal(a.train.images, c.train.images)
    clean = ocr.render_glyphs(30, fonts=("DejaVuSans", "cmr10"), charset=ocr.DIGITS, size=20,
                              distortion=ocr.Distortion.none(), seed=0, dtype=np.float32)
    assert clean.images.dtype == np.float32
    assert (clean.images[:, 0, :] == 0).all() and (clean.images[:, :, -1] == 0).all()
    # the same glyph renders identically; "1" has less ink than "8"
    key = [(f, l) for f, l in zip(clean.fonts, clean.labels)]
    i, j = key.index(("DejaVuSans", 1)), key.index(("DejaVuSans", 8))
    assert clean.images[i].sum() < 0.8 * clean.images[j].sum()
    with pytest.raises(ValueError, match="fonts"):
        ocr.render_glyphs(3, fonts=("NoSuchFont",), seed=0)
    with pytest.raises(ValueError, match="test_fonts"):
        ocr.ocr_dataset(3, 3, test_fonts=100, seed=0)


def test_ocr_rendering_is_fast():
    fonts = ocr.available_fonts(ocr.DIGITS)
    ocr.render_glyphs(200, fonts=fonts, seed=0)  # fill the glyph cache
    start = time.perf_counter()
    d = ocr.render_glyphs(2000, fonts=fonts, size=16, seed=1)
    assert time.perf_counter() - start < 3.0
    assert d.images.shape == (2000, 16, 16)


def test_sample_text_is_seeded_and_stays_in_the_vocabulary():
    import rnnbp
    from tasks.data.text import Vocab, sample_text

    vocab = Vocab.from_text("abcdefg hij.")
    model = rnnbp.Sequential(rnnbp.LSTM(vocab.size, 8, seed=0), rnnbp.Linear(8, vocab.size, seed=1))
    a = sample_text(model, vocab, "ab", 30, temperature=0.7, rng=3)
    b = sample_text(model, vocab, "ab", 30, temperature=0.7, rng=3)
    assert a == b and a.startswith("ab") and len(a) == 32
    assert set(a) <= set("abcdefg hij.")
    assert model.training
    with pytest.raises(ValueError, match="temperature: expected a positive number"):
        sample_text(model, vocab, "ab", 5, temperature=0, rng=0)
    with pytest.raises(ValueError, match="prime: expected a non-empty string"):
        sample_text(model, vocab, "", 5, rng=0)
