"""Text-line data of tasks/data/lines.py: shapes, determinism, CTC-feasible masks, fonts, layout."""

import numpy as np
import pytest

from tasks.data import lines as L
from tasks.data import glyphs as ocr

# Two faces keep the glyph caches (and the test time) small: one upright
# training face and the held-out true italic.
FONTS = ("DejaVuSans", "cmti10")
CLEAN = L.LineDistortion.none()


@pytest.fixture(scope="module")
def data():
    return L.make_lines(12, fonts=FONTS, seed=0, chars=(4, 24))


def test_shapes_and_dtypes(data):
    B = 12
    T, P, Lmax = data.images.shape[0], data.pen.shape[0], data.labels.shape[1]
    assert len(data) == B and len(data.texts) == B and data.fonts.shape == (B,)
    assert data.images.shape == (T, B, 24) and data.images.dtype == np.float32
    assert data.image_mask.shape == (T, B) and data.image_mask.dtype == bool
    assert data.pen.shape == (P, B, 3) and data.pen.dtype == np.float32
    assert data.pen_mask.shape == (P, B) and data.pen_mask.dtype == bool
    assert data.labels.shape == (B, Lmax) and data.labels.dtype == np.int64
    for lengths in (data.label_lengths, data.image_lengths, data.pen_lengths):
        assert lengths.shape == (B,) and lengths.dtype == np.int64
    assert T == data.image_lengths.max() and P == data.pen_lengths.max()
    assert Lmax == data.label_lengths.max()
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert set(data.fonts) == set(FONTS)
    f64 = L.make_lines(2, fonts=FONTS, seed=0, dtype=np.float64, render_pen=False)
    assert f64.images.dtype == np.float64 and f64.pen is None and f64.pen_mask is None


def test_masks_labels_and_ctc_feasibility(data):
    assert np.array_equal(data.label_lengths, [len(t) for t in data.texts])
    assert np.all((data.label_lengths >= 3) & (data.label_lengths <= 24))
    need = L.ctc_min_lengths(data.labels, data.label_lengths)
    for steps, mask, lengths in ((data.images, data.image_mask, data.image_lengths),
                                 (data.pen, data.pen_mask, data.pen_lengths)):
        assert np.array_equal(mask.sum(axis=0), lengths)
        assert np.array_equal(mask, np.arange(mask.shape[0])[:, None] < lengths)  # a prefix
        assert np.all(steps[~mask] == 0)
        assert np.all(lengths >= need)  # CTC can align every label
    for b, text in enumerate(data.texts):
        assert L.decode(data.labels[b]) == text
        assert np.all(data.labels[b, data.label_lengths[b]:] == L.BLANK)
        assert np.all(data.labels[b, :data.label_lengths[b]] > 0)


def test_ctc_min_lengths_counts_repeats():
    labels = np.stack([np.pad(L.encode(s), (0, 6 - len(s))) for s in ("hello", "aaa", "ab")])
    assert L.ctc_min_lengths(labels, [5, 3, 2]).tolist() == [6, 5, 2]
    # A padded row (zeros) must not count its padding as repeats.
    assert L.ctc_min_lengths(np.zeros((1, 4), dtype=int), [0]).tolist() == [0]


def test_deterministic_prefix_stable_and_seed_dependent():
    a = L.make_lines(5, fonts=FONTS, seed=3, chars=(4, 16))
    b = L.make_lines(5, fonts=FONTS, seed=3, chars=(4, 16))
    for name in ("images", "pen", "labels", "image_mask", "pen_mask"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.texts == b.texts
    # Line i depends on (seed, i) only: the first lines of a larger call are the same.
    big = L.make_lines(8, fonts=FONTS, seed=3, chars=(4, 16)).subset(np.arange(5))
    assert big.texts == a.texts
    for name in ("images", "pen", "labels", "image_mask"):
        assert np.array_equal(getattr(big, name), getattr(a, name)), name
    # ... and a shard starting at line 5 is lines 5-7 of the larger call.
    shard = L.make_lines(3, fonts=FONTS, seed=3, chars=(4, 16), start=5)
    rest = L.make_lines(8, fonts=FONTS, seed=3, chars=(4, 16)).subset(np.arange(5, 8))
    assert shard.texts == rest.texts and shard.fonts.tolist() == rest.fonts.tolist()
    for name in ("images", "pen", "labels", "pen_mask"):
        assert np.array_equal(getattr(shard, name), getattr(rest, name)), name
    # A Generator seed works and advances.
    rng = np.random.default_rng(0)
    g1, g2 = (L.make_lines(3, fonts=FONTS, seed=rng, chars=(4, 16)) for _ in range(2))
    assert g1.texts != g2.texts
    c = L.make_lines(5, fonts=FONTS, seed=4, chars=(4, 16))
    assert c.texts != a.texts
    same = L.render_lines(a.texts, fonts=list(a.fonts), seed=5)
    other = L.render_lines(a.texts, fonts=list(a.fonts), seed=6)
    assert not np.array_equal(same.image_lengths, other.image_lengths) or \
        not np.array_equal(same.images, other.images)


def test_fonts_split_fixed_disjoint_and_hard():
    assert set(L.TRAIN_FONTS).isdisjoint(L.HELD_OUT_FONTS)
    assert set(L.TRAIN_FONTS) | set(L.HELD_OUT_FONTS) == set(L.ALL_FONTS)
    assert len(L.TRAIN_FONTS) == 17 and len(L.HELD_OUT_FONTS) == 4
    assert set(L.ALL_FONTS) <= set(ocr.available_fonts(L.ALPHABET.replace(" ", "")))
    # A true italic is held out ...
    assert any(f.endswith(("Italic", "ti10")) for f in L.HELD_OUT_FONTS)
    # ... and a family that no training face shares (Computer Modern Sans, Typewriter).
    assert "cmss10" in L.HELD_OUT_FONTS and not any(f.startswith("cmss") for f in L.TRAIN_FONTS)
    assert "cmtt10" in L.HELD_OUT_FONTS and not any(f.startswith("cmtt") for f in L.TRAIN_FONTS)


def test_alphabet_encode_decode_round_trip():
    assert len(L.ALPHABET) == 41 and len(set(L.ALPHABET)) == 41
    assert L.NUM_CLASSES == 42 and L.BLANK == 0
    text = "it's 3.5 x-ray, ok. zebra 0987"
    ids = L.encode(text)
    assert ids.dtype == np.int64 and ids.min() >= 1 and ids.max() < L.NUM_CLASSES
    assert L.decode(ids) == text
    assert L.decode(np.concatenate([[0], ids, [0, 0]])) == text  # blanks / padding skipped
    assert L.decode(L.encode("")) == ""
    with pytest.raises(ValueError, match="'A'"):
        L.encode("A b")
    with pytest.raises(ValueError, match="labels must lie in"):
        L.decode([1, 42])


def test_word_list_and_texts():
    wl = L.word_list()
    assert len(wl.words) > 1000 and wl.counts.shape == (len(wl.words),)
    assert np.all(np.diff(wl.counts) <= 0) and wl.counts.min() >= 2
    assert all(w and " " not in w and set(w) <= set(L.ALPHABET) for w in wl.words)
    assert "the" in wl.words[:5]
    texts = L.sample_texts(300, seed=1, chars=(5, 30))
    assert texts == L.sample_texts(300, seed=1, chars=(5, 30))
    assert all(5 <= len(t) <= 30 and t == t.strip() and "  " not in t for t in texts)
    assert {len(t) for t in texts} == set(range(5, 31))  # the target length is met exactly
    assert any(c.isdigit() for t in texts for c in t)
    with pytest.raises(ValueError, match="chars"):
        L.sample_texts(3, seed=0, chars=(9, 4))


def test_images_have_ink_inside_the_frame_and_not_blank():
    d = L.make_lines(10, fonts=FONTS, seed=2, chars=(6, 20),
                     distortion=L.LineDistortion(noise=0.0))
    for b in range(len(d)):
        img = d.images[:d.image_lengths[b], b]            # (T_b, D)
        assert img.mean() > 0.05 and img.max() > 0.95       # real strokes
        # Nothing is clipped: the first/last rows and columns stay blank.
        assert img[:, [0, -1]].max() < 1e-6 and img[[0, -1]].max() < 1e-6
        # Columns with ink span most of the line (not a blob at one end).
        inked = np.flatnonzero(img.max(axis=1) > 0.5)
        assert inked[-1] - inked[0] > 0.8 * len(img) - 10
    noisy = L.make_lines(2, fonts=FONTS, seed=2, chars=(6, 20))
    assert noisy.images[:noisy.image_lengths[0], 0].std() > 0


def test_x_scale_area_averages_columns():
    kw = dict(fonts=FONTS, seed=7, chars=(6, 20), distortion=L.LineDistortion(noise=0.0),
              render_pen=False)
    full = L.make_lines(4, **kw)
    half = L.make_lines(4, x_scale=0.5, **kw)
    assert np.array_equal(half.image_lengths, np.ceil(full.image_lengths * 0.5).astype(int))
    assert np.array_equal(half.texts, full.texts)
    # Area averaging keeps the ink: every half column is the mean of two full ones.
    assert np.allclose(half.images.sum(axis=(0, 2)), 0.5 * full.images.sum(axis=(0, 2)), rtol=1e-5)
    b = 0
    pairs = full.images[:2 * (full.image_lengths[b] // 2), b].reshape(-1, 2, 24).mean(axis=1)
    assert np.allclose(half.images[:len(pairs), b], pairs, atol=1e-5)
    with pytest.raises(ValueError, match="raise x_scale"):
        L.render_lines(["all allowed"], fonts="DejaVuSans", seed=0, x_scale=0.05)


def test_pen_trajectories_have_pen_up_and_follow_the_line(data):
    for b in range(len(data)):
        steps = data.pen[:data.pen_lengths[b], b].astype(np.float64)
        up = steps[:, 2]
        assert set(np.unique(up)) <= {0.0, 1.0} and up[0] == 1.0
        ink = sum(c != " " for c in data.texts[b])
        assert ink <= up.sum() < 0.5 * len(up)       # a pen-up per contour, mostly drawing
        pos = np.cumsum(steps[:, :2], axis=0)
        width = data.image_lengths[b] / data.height
        assert pos[:, 0].min() > -0.05 and pos[:, 0].max() < width + 0.05
        assert pos[:, 1].min() > -0.05 and pos[:, 1].max() < 1.05
        # Left to right: the glyphs' pen-downs advance along the line.
        starts = pos[up == 1, 0]
        assert np.corrcoef(np.arange(len(starts)), starts)[0, 1] > 0.9
    per_char = data.pen_lengths.sum() / data.label_lengths.sum()
    assert 8 < per_char < 25


def test_line_layout_is_the_fonts_own_kerned_layout():
    """Glyphs sit exactly where matplotlib's TextPath puts them for the whole string."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    s = "we can't avoid 42.5, x-ray to"  # no ligature pairs: TextPath would join them
    for font in FONTS:
        prop = FontProperties(fname=str(L.glyphs.font_path(font)))
        path = TextPath((0, 0), s, size=L.glyphs.TEXT_SIZE, prop=prop)
        ref = np.concatenate([p for p in path.to_polygons(closed_only=True) if len(p) >= 3])
        ids = L.encode(s)
        x = np.concatenate([[0.0], np.cumsum(L._font_layout(font).advance[ids[:-1], ids[1:]])])
        mine = np.concatenate([np.concatenate(L._line_glyph(font, c).polys) + [xi, 0.0]
                               for c, xi in zip(s, x) if c != " "])
        assert ref.shape == mine.shape
        assert np.abs(ref / L.glyphs.cap_height(font) - mine).max() < 1e-9


def test_clean_render_and_subset():
    d = L.render_lines(["mm ii", "mm ii"], fonts=["DejaVuSans", "DejaVuSans-Bold"], seed=0,
                       distortion=CLEAN)
    # Same text, no randomness: the bold face has more ink, same height budget.
    assert d.images[:, 1].sum() > 1.2 * d.images[:, 0].sum()
    again = L.render_lines(["mm ii"], fonts="DejaVuSans", seed=9, distortion=CLEAN)
    assert np.array_equal(again.images[:, 0], d.images[:again.image_lengths[0], 0])
    sub = d.subset([1])
    assert sub.texts == ("mm ii",) and sub.images.shape == (d.image_lengths[1], 1, 24)
    assert sub.fonts.tolist() == ["DejaVuSans-Bold"]


def test_bad_arguments_fail_early():
    with pytest.raises(ValueError, match="fonts"):
        L.make_lines(2, fonts=("NoSuchFont",), seed=0)
    with pytest.raises(ValueError, match="not in ALPHABET"):
        L.render_lines(["Hello"], fonts="DejaVuSans", seed=0)
    with pytest.raises(ValueError, match="spaces"):
        L.render_lines([" hi"], fonts="DejaVuSans", seed=0)
    with pytest.raises(ValueError, match="fonts must be one name or one per text"):
        L.render_lines(["a", "b"], fonts=["DejaVuSans"], seed=0)
    with pytest.raises(TypeError, match="seed"):
        L.make_lines(2, fonts=FONTS, seed=1.5)
    with pytest.raises(ValueError, match="height"):
        L.make_lines(2, fonts=FONTS, seed=0, height=8)
    with pytest.raises(ValueError, match="x_scale"):
        L.make_lines(2, fonts=FONTS, seed=0, x_scale=2.0)
