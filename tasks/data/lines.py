"""Synthetic text lines for line-level OCR and online handwriting, with no download.

Text (:mod:`tasks.data.line_text`, re-exported here)
    Words come from a fixed word list (:func:`word_list`) cut from the
    standard-library docstring corpus of the ``text`` experiment
    (:func:`tasks.data.text.stdlib_corpus`), lower-cased and restricted to
    :data:`ALPHABET` (space, a-z, 0-9 and ``. , ' -``: 41 symbols); a share of
    the words are random numbers, so digits are not rare. A line is a run of
    words of a random target length (``chars=(lo, hi)``).

Images
    Each line is laid out as a whole string with the font's own advances and
    kerning (HarfBuzz via matplotlib, ligatures off so that every label has its
    own glyph): the layout of every character pair is read once per font and
    the glyphs are placed exactly where :class:`matplotlib.textpath.TextPath`
    puts them for the whole line, so glyphs touch and kern naturally. Each glyph
    is stored once as a signed distance field (the way :mod:`tasks.data.glyphs` does)
    and the line is sampled from those fields through a per-line map (height
    scale, width stretch, slant) plus per-glyph baseline jitter, a smooth
    baseline wave and slope, letter-spacing jitter, an ink-thickness offset,
    anti-aliased edges and Gaussian pixel noise. Columns are time steps:
    ``images`` is ``(T = width, B, D = height)``, row 0 at the top.

Pen trajectories
    The same rendered line (same font, same geometry) as online handwriting:
    each glyph's outline contours resampled at roughly equal arc length
    (``pen_spacing`` cap heights per point), joined from left to right;
    ``pen`` is ``(T, B, 3)`` steps ``(dx, dy, pen_up)`` in units of the line
    height (x to the right, y up, the first step starts at the bottom-left
    corner). ``pen_up`` is 1 where the pen moves to the point without drawing:
    the first point of every contour, so also across every space.

Fonts
    :data:`TRAIN_FONTS` and :data:`HELD_OUT_FONTS` are a fixed split of the 21
    text faces of :data:`tasks.data.glyphs.FONT_FILES`, chosen before any training;
    see :data:`HELD_OUT_FONTS` for why each face is held out.

Labels
    ``ALPHABET[i]`` has class ``i + 1``; class 0 is the CTC blank
    (:data:`BLANK`), so :data:`NUM_CLASSES` = 42 outputs.

Determinism
    Line ``i`` of ``make_lines(n, seed=s)`` depends only on ``(s, i)`` and the
    arguments, through independent random streams per line (text, geometry,
    image noise, pen noise): the first lines of a larger call are the same
    lines, and glyph caches never change a number. The word list depends on
    the Python version (docstrings change between versions).

Example::

    data = make_lines(256, fonts=TRAIN_FONTS, seed=0)
    data.images.shape      # (T, 256, 24), float32 in [0, 1]
    data.image_mask        # (T, 256) bool, valid prefix per line
    data.labels[:, :5]     # (256, L_max) int64 class ids, 0-padded
    decode(data.labels[0]) == data.texts[0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import glyphs
# The alphabet, labels and texts live in line_text; they are re-exported here
# so that one import serves a line experiment.
from .line_text import (FONT_STREAM, GEOMETRY_STREAM, INDEX, NOISE_STREAM, PEN_STREAM, ALPHABET, BLANK, NUM_CLASSES,
                        WordList, base_seed, line_rng, ctc_min_lengths, decode, encode,
                        sample_texts, word_list)
from .common import float_dtype, positive_int

__all__ = ["ALPHABET", "BLANK", "NUM_CLASSES", "ALL_FONTS", "TRAIN_FONTS", "HELD_OUT_FONTS",
           "encode", "decode", "ctc_min_lengths", "WordList", "word_list", "sample_texts",
           "LineDistortion", "LineSet", "render_lines", "make_lines"]

#: Every face the lines can use (all have a glyph for every symbol of ALPHABET).
ALL_FONTS = tuple(f[:-4] for f in glyphs.FONT_FILES)

#: Faces never shown in training, fixed before any training. Not the easy ones:
#:
#: - ``cmti10`` -- Computer Modern Text Italic: a true italic with cursive
#:   letter shapes (single-storey a, hooked i, l, m, n, u, a rounded v) that
#:   no training face draws the same way (the training italics are DejaVu's
#:   obliques and DejaVu Serif / STIX bold italics); its roman siblings
#:   cmr10 and cmb10 train. The hardest face in the reference run of the issue.
#: - ``STIXGeneralItalic`` -- a second true italic of another design
#:   (Times-like), so italic generalisation is not measured on one face; its
#:   bold-italic sibling trains.
#: - ``cmss10`` -- Computer Modern Sans Serif: a family no training face shares
#:   (the only sans faces in training are DejaVu Sans and Sans Mono).
#: - ``cmtt10`` -- Computer Modern Typewriter: a second unshared family,
#:   monospaced with slab serifs (training's monospace is DejaVu Sans Mono).
HELD_OUT_FONTS = ("cmti10", "STIXGeneralItalic", "cmss10", "cmtt10")

#: The 17 training faces: DejaVu Sans, Sans Mono and Serif (regular, bold,
#: oblique/italic, bold oblique/italic each), STIX General regular, bold and
#: bold italic, Computer Modern roman and bold.
TRAIN_FONTS = tuple(f for f in ALL_FONTS if f not in HELD_OUT_FONTS)

_SPACE = INDEX[" "]
_RES = 64            # side of a glyph's cached distance field, in pixels
_FRAME = 2.0         # minimum side of a glyph's field, in cap heights
_FRAME_MARGIN = 0.3  # empty border around the ink in the field, in cap heights


# --------------------------------------------------------------------------
# fonts and glyphs

@dataclass(frozen=True, eq=False)
class _LineGlyph:
    polys: tuple        # closed outlines, cap heights, origin: pen position on the baseline
    lo: np.ndarray      # (2,) ink box corner
    hi: np.ndarray      # (2,)
    corner: np.ndarray  # (2,) bottom-left of the distance field's square
    side: float         # side of that square, cap heights
    sdf: np.ndarray     # (_RES, _RES) float32 signed distance, cap heights, < 0 inside, row 0 on top
    perimeter: float    # total outline length, cap heights


@functools.lru_cache(maxsize=None)
def _line_glyph(font: str, char: str) -> _LineGlyph:
    from scipy.ndimage import distance_transform_edt
    polys = glyphs.outline(font, char)
    if not polys:
        raise ValueError(f"font {font!r} has no outline for {char!r}")
    cap = glyphs.cap_height(font)
    polys = [p / cap for p in polys]
    pts = np.concatenate(polys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    # Unlike tasks.data.glyphs's box, the field is not fitted to the glyph: every glyph
    # keeps its true size relative to the cap height, as in a line of text.
    side = max(_FRAME, float((hi - lo).max()) + 2 * _FRAME_MARGIN)
    corner = (lo + hi) / 2 - side / 2
    inside = glyphs.raster([(p - corner) / side for p in polys], _RES)
    sdf = np.where(inside, -(distance_transform_edt(inside) - 0.5),
                   distance_transform_edt(~inside) - 0.5) * (side / _RES)
    perimeter = float(sum(np.hypot(*np.diff(p, axis=0).T).sum() for p in polys))
    return _LineGlyph(tuple(polys), lo, hi, corner, side, sdf.astype(np.float32), perimeter)


def _de_bruijn(k: int) -> list[int]:
    """A sequence over range(k) holding every ordered pair once: k*k + 1 symbols."""
    a, seq = [0] * 3, []

    def db(t, p):  # the classic Lyndon-word construction, order 2
        if t > 2:
            if 2 % p == 0:
                seq.extend(a[1:p + 1])
        else:
            a[t] = a[t - p]
            db(t + 1, p)
            for j in range(a[t - p] + 1, k):
                a[t] = j
                db(t + 1, t)

    db(1, 1)
    return seq + seq[:1]


@dataclass(frozen=True, eq=False)
class _FontLayout:
    advance: np.ndarray  # (C, C) pen advance from class a to a next class b, cap heights (0 unused)
    ymin: float          # lowest ink of any ALPHABET glyph, cap heights
    ymax: float          # highest


@functools.lru_cache(maxsize=None)
def _font_layout(font: str) -> _FontLayout:
    """Pair advances (advance + kerning) as matplotlib lays out a whole string.

    One layout of a de Bruijn string holding every symbol pair once gives all
    pair offsets; a line laid out from them matches ``TextPath`` of the line
    (pair kerning is all these fonts use). Ligatures are turned off so that
    every character keeps its own glyph (and its own label).
    """
    from matplotlib.font_manager import get_font
    from matplotlib.textpath import TextToPath
    seq = _de_bruijn(len(ALPHABET))
    s = "".join(ALPHABET[i] for i in seq)
    face = get_font(str(glyphs.font_path(font)))
    face.set_size(TextToPath.FONT_SCALE, TextToPath.DPI)
    laid_out, _, _ = TextToPath().get_glyphs_with_font(face, s, features=("-liga",))
    if len(laid_out) != len(s):
        raise RuntimeError(f"layout of font {font!r} merged or split glyphs "
                           f"({len(laid_out)} for {len(s)} characters)")
    x = np.array([g[1] for g in laid_out])
    # TextToPath lays out at FONT_SCALE; glyphs.outline's TextPath is at size glyphs.TEXT_SIZE.
    x = x * (glyphs.TEXT_SIZE / TextToPath.FONT_SCALE) / glyphs.cap_height(font)
    advance = np.zeros((NUM_CLASSES, NUM_CLASSES))
    ids = np.array(seq) + 1
    advance[ids[:-1], ids[1:]] = np.diff(x)
    ink = [_line_glyph(font, c) for c in ALPHABET if c != " "]
    return _FontLayout(advance, min(g.lo[1] for g in ink), max(g.hi[1] for g in ink))


@functools.lru_cache(maxsize=None)
def _glyph_table(fonts: tuple) -> tuple:
    """Stacked fields of every (font, symbol): index ``f * NUM_CLASSES + class``."""
    sdf = np.zeros((len(fonts) * NUM_CLASSES, _RES, _RES), dtype=np.float32)
    corner = np.zeros((len(fonts) * NUM_CLASSES, 2))
    side = np.ones(len(fonts) * NUM_CLASSES)
    for f, font in enumerate(fonts):
        for c, char in enumerate(ALPHABET, start=1):
            if char != " ":
                g = _line_glyph(font, char)
                k = f * NUM_CLASSES + c
                sdf[k], corner[k], side[k] = g.sdf, g.corner, g.side
    return sdf, corner, side


@functools.lru_cache(maxsize=None)
def _pen_glyph(font: str, char: str, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    g = _line_glyph(font, char)
    steps = max(4, int(round(g.perimeter / spacing)))
    return glyphs.resample_contours(list(g.polys), steps)


# --------------------------------------------------------------------------
# distortions and result

@dataclass(frozen=True)
class LineDistortion:
    """Ranges of the random per-line distortions.

    Each line draws its own values uniformly from these ranges (Gaussian for
    ``baseline``, ``noise`` and ``pen_noise``); ``LineDistortion.none()`` is a
    clean line.

    Attributes
    ----------
    scale : (float, float) -- share of the usable height the font's full
        extent (lowest descender to highest ascender) fills; <= 1.
    aspect : float -- maximum relative stretch of the width (narrow/wide).
    shear : float -- maximum |slant| (x shift per unit height).
    shift : float -- maximum |vertical shift|, fraction of the height (the
        line is then moved back inside if needed).
    spacing : (float, float) -- extra letter spacing of the line, cap heights.
    spacing_jitter : float -- maximum |extra spacing| per gap, cap heights.
    baseline : float -- standard deviation of each glyph's vertical offset,
        cap heights (clipped at 2.5).
    wave : float -- maximum amplitude of a smooth baseline wave, cap heights
        (wavelength 8-30 cap heights, random phase).
    slope : float -- maximum |baseline slope| (a slightly rotated line).
    thickness : (float, float) -- stroke offset in pixels (< 0 thins, > 0 bolds).
    noise : float -- standard deviation of additive Gaussian pixel noise.
    margin : (float, float) -- blank pixels left and right of the ink.
    pen_noise : float -- standard deviation of pen position noise, line heights.
    """

    scale: tuple = (0.8, 1.0)
    aspect: float = 0.15
    shear: float = 0.15
    shift: float = 0.05
    spacing: tuple = (-0.03, 0.08)
    spacing_jitter: float = 0.02
    baseline: float = 0.025
    wave: float = 0.06
    slope: float = 0.006
    thickness: tuple = (-0.3, 0.6)
    noise: float = 0.05
    margin: tuple = (1.0, 4.0)
    pen_noise: float = 0.004

    @classmethod
    def none(cls) -> "LineDistortion":
        """No distortion: the font's own layout, full height, 2-pixel margins."""
        return cls((1.0, 1.0), 0.0, 0.0, 0.0, (0.0, 0.0), 0.0, 0.0, 0.0, 0.0, (0.0, 0.0), 0.0,
                   (2.0, 2.0), 0.0)


@dataclass(frozen=True, eq=False)
class LineSet:
    """Rendered text lines (B of them), time-major.

    Attributes
    ----------
    texts : tuple of str, length B.
    labels : ndarray, shape (B, L_max), int64 -- class ids (:func:`encode`),
        padded with 0 (the blank) after ``label_lengths``.
    label_lengths : ndarray, shape (B,), int64 -- ``len(texts[b])``.
    fonts : ndarray, shape (B,), str -- the face of each line.
    images : ndarray, shape (T, B, D), or None -- column ``t`` of line ``b``,
        ``D = height`` pixels top to bottom, ink 1, background 0; zero after
        the line's width.
    image_mask : ndarray, shape (T, B), bool, or None -- True on each line's
        columns (a prefix of length ``image_lengths[b]``).
    image_lengths : ndarray, shape (B,), int64, or None
    pen : ndarray, shape (P, B, 3), or None -- steps ``(dx, dy, pen_up)`` in
        line heights; ``cumsum(pen[..., :2], axis=0)`` are the pen positions
        (x right from the line's left edge, y up from its bottom); zero after
        the trajectory.
    pen_mask : ndarray, shape (P, B), bool, or None
    pen_lengths : ndarray, shape (B,), int64, or None
    height : int -- D.
    x_scale : float -- image columns per pixel of the rendered line.
    """

    texts: tuple
    labels: np.ndarray
    label_lengths: np.ndarray
    fonts: np.ndarray
    images: np.ndarray | None
    image_mask: np.ndarray | None
    image_lengths: np.ndarray | None
    pen: np.ndarray | None
    pen_mask: np.ndarray | None
    pen_lengths: np.ndarray | None
    height: int
    x_scale: float

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index) -> "LineSet":
        """Lines ``index`` (int array, slice or bool mask over B), trimmed to their
        own longest label, image and trajectory (e.g. a length-sorted minibatch)."""
        ix = np.arange(len(self))[index]
        if ix.ndim != 1:
            raise ValueError(f"index must select a 1-D set of lines; got shape {ix.shape}")

        def cut(steps, lengths):
            if steps is None:
                return None, None, None
            n = int(lengths[ix].max()) if ix.size else 0
            return steps[:n, ix], (np.arange(n)[:, None] < lengths[ix][None, :]), lengths[ix]

        images, image_mask, image_lengths = cut(self.images, self.image_lengths)
        pen, pen_mask, pen_lengths = cut(self.pen, self.pen_lengths)
        L = int(self.label_lengths[ix].max()) if ix.size else 0
        return LineSet(tuple(self.texts[i] for i in ix), self.labels[ix, :L],
                       self.label_lengths[ix], self.fonts[ix], images, image_mask,
                       image_lengths, pen, pen_mask, pen_lengths, self.height, self.x_scale)


# --------------------------------------------------------------------------
# rendering

@dataclass(frozen=True, eq=False)
class _Plan:
    """Geometry of one line: its ink glyphs and the map from cap heights to pixels."""

    glyph: np.ndarray   # (G,) index into the glyph table
    chars: str          # the G ink characters
    x0: np.ndarray      # (G,) pixel column of each glyph's origin
    y0: np.ndarray      # (G,) pixel row of each glyph's baseline (rows down)
    sx: float           # pixels per cap height, horizontally
    sy: float           # pixels per cap height, vertically
    shear: float        # x += shear * y (cap heights)
    thick: float        # stroke offset, pixels
    width: int          # pixels
    c0: np.ndarray      # (G,) first pixel column of each glyph's window
    w: np.ndarray       # (G,) window widths


def _plan(text: str, font: str, f: int, H: int, d: LineDistortion,
          rng: np.random.Generator) -> _Plan:
    lay = _font_layout(font)
    ids = encode(text)
    n = len(ids)
    gap = lay.advance[ids[:-1], ids[1:]] + rng.uniform(*d.spacing)
    gap = gap + rng.uniform(-d.spacing_jitter, d.spacing_jitter, n - 1)
    x = np.concatenate([[0.0], np.cumsum(gap)])
    ink = ids != _SPACE
    x, ids = x[ink], ids[ink]
    # Vertical offsets (cap heights, up): jitter, a smooth wave and a slope,
    # centred so the line's extent stays symmetric about its middle.
    off = np.clip(rng.normal(0.0, 1.0, len(ids)), -2.5, 2.5) * d.baseline
    wavelength = rng.uniform(8.0, 30.0)
    off += rng.uniform(0.0, d.wave) * np.sin(2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi))
    off += rng.uniform(-d.slope, d.slope) * x
    off -= (off.max() + off.min()) / 2
    thick = rng.uniform(*d.thickness)
    # Pixels kept free at the top and bottom: a pixel of background, the
    # bolding, and a third of a pixel for the distance field's interpolation error.
    edge = 1.3 + max(thick, 0.0)
    span = (lay.ymax + off.max()) - (lay.ymin + off.min())
    sy = rng.uniform(*d.scale) * (H - 2 * edge) / span
    sx = sy * (1.0 + rng.uniform(-d.aspect, d.aspect))
    shear = rng.uniform(-d.shear, d.shear)
    # Baseline row that centres the extent, then a shift kept inside the room left.
    room = max(0.0, (H - 2 * edge) - sy * span)
    base = H / 2 + sy * (lay.ymax + off.max() + lay.ymin + off.min()) / 2
    base += np.clip(rng.uniform(-d.shift, d.shift) * H, -room / 2, room / 2)
    y0 = base - sy * off
    x0 = sx * x
    table = f * NUM_CLASSES + ids
    glyphs = [_line_glyph(font, ALPHABET[i - 1]) for i in ids]
    lo = np.array([g.lo for g in glyphs]).reshape(-1, 2)
    hi = np.array([g.hi for g in glyphs]).reshape(-1, 2)
    left = x0 + sx * np.minimum(lo[:, 0] + shear * lo[:, 1], lo[:, 0] + shear * hi[:, 1])
    right = x0 + sx * np.maximum(hi[:, 0] + shear * lo[:, 1], hi[:, 0] + shear * hi[:, 1])
    margin_l, margin_r = rng.uniform(*d.margin, 2) + 0.5 + max(thick, 0.0)
    move = margin_l - left.min()
    x0, left, right = x0 + move, left + move, right + move
    width = int(np.ceil(right.max() + margin_r))
    # Window of pixel columns each glyph can touch: its ink plus the
    # anti-aliasing and bolding reach.
    c0 = np.maximum(np.floor(left - 1.0 - max(thick, 0.0)).astype(np.int64), 0)
    c1 = np.ceil(right + 1.0 + max(thick, 0.0)).astype(np.int64)
    return _Plan(table, "".join(ALPHABET[i - 1] for i in ids), x0, y0, sx, sy, shear, thick,
                 width, c0, c1 - c0)


def _render_chunk(plans: list[_Plan], H: int, table) -> np.ndarray:
    """Coverage of a few lines, shape (b, max width + max window, H) float32."""
    sdf, corner, side = table
    G = max(len(p.glyph) for p in plans)
    pad = max(int(p.w.max()) for p in plans)
    canvas = np.zeros((len(plans), max(p.width for p in plans) + pad, H), dtype=np.float32)
    sx = np.array([p.sx for p in plans])
    sy = np.array([p.sy for p in plans])
    shear = np.array([p.shear for p in plans])
    thick = np.array([p.thick for p in plans])
    rows = np.arange(H) + 0.5
    flat = sdf.reshape(-1)
    # Glyph slot j of every line at once: one glyph per line, so the
    # (line, column) pairs of a slot never collide and a plain max works.
    for j in range(G):
        lines = np.array([i for i, p in enumerate(plans) if len(p.glyph) > j])
        ps = [plans[i] for i in lines]
        gid = np.array([p.glyph[j] for p in ps])
        x0 = np.array([p.x0[j] for p in ps])
        y0 = np.array([p.y0[j] for p in ps])
        c0 = np.array([p.c0[j] for p in ps])
        W = max(int(p.w[j]) for p in ps)
        cols = c0[:, None] + np.arange(W)                                  # (n, W)
        # Field coordinates (u right, v down, in field pixels) of every pixel
        # centre: ys/xs are cap heights from the glyph origin, y up, unslanted.
        k = _RES / side[gid]
        ys = (y0[:, None] - rows[None, :]) / sy[lines, None]               # (n, H)
        xs = (cols + 0.5 - x0[:, None]) / sx[lines, None]                  # (n, W)
        v = (_RES - 0.5) - (ys - corner[gid, 1, None]) * k[:, None]        # (n, H)
        u = ((xs - corner[gid, 0, None]) * k[:, None] - 0.5)[:, :, None] \
            - (shear[lines] * k)[:, None, None] * ys[:, None, :]          # (n, W, H)
        u = np.clip(u.astype(np.float32), 0, _RES - 1)
        v = np.clip(v.astype(np.float32), 0, _RES - 1)[:, None, :]
        u0 = np.minimum(u.astype(np.int32), _RES - 2)
        v0 = np.minimum(v.astype(np.int32), _RES - 2)
        fu, fv = u - u0, v - v0
        at = (gid[:, None, None] * _RES + v0) * _RES + u0                 # flat index
        left, right = flat[at], flat[at + 1]
        top = left + (right - left) * fu
        left, right = flat[at + _RES], flat[at + _RES + 1]
        dist = top + (left + (right - left) * fu - top) * fv
        px = np.sqrt(sx[lines] * sy[lines]).astype(np.float32)[:, None, None]  # cap h. -> pixels
        cover = np.clip(0.5 - dist * px + thick[lines, None, None].astype(np.float32), 0.0, 1.0)
        at = (lines[:, None], cols)
        canvas[at] = np.maximum(canvas[at], cover)
    return canvas


def _downsample(canvas: np.ndarray, x_scale: float, T: int) -> np.ndarray:
    """Area-average columns: output column j covers [j, j + 1) / x_scale pixels."""
    if x_scale == 1.0:
        return canvas[:, :T]
    W = canvas.shape[1]
    F = np.concatenate([np.zeros_like(canvas[:, :1]), np.cumsum(canvas, axis=1)], axis=1)
    p = np.minimum(np.arange(T + 1) / x_scale, W)
    i = np.minimum(np.floor(p).astype(np.int64), W - 1)
    at = F[:, i] + (p - i)[None, :, None] * canvas[:, i]
    return (np.diff(at, axis=1) * x_scale).astype(np.float32)


def _pen_line(plan: _Plan, font: str, H: int, spacing: float, noise: float,
              rng: np.random.Generator) -> np.ndarray:
    parts = [_pen_glyph(font, c, spacing) for c in plan.chars]
    counts = [len(p[1]) for p in parts]
    pts = np.concatenate([p[0] for p in parts])
    lift = np.concatenate([p[1] for p in parts])
    x0 = np.repeat(plan.x0, counts)
    y0 = np.repeat(plan.y0, counts)
    X = x0 + plan.sx * (pts[:, 0] + plan.shear * pts[:, 1])
    Y = y0 - plan.sy * pts[:, 1]
    pos = np.column_stack([X / H, (H - Y) / H])
    if noise > 0:
        pos = pos + rng.normal(0.0, noise, pos.shape)
    out = np.empty((len(pos), 3))
    out[:, :2] = np.diff(pos, axis=0, prepend=np.zeros((1, 2)))
    out[:, 2] = lift
    return out


def render_lines(texts: Sequence[str], *, fonts, seed, height: int = 24, x_scale: float = 1.0,
                 distortion: LineDistortion | None = None, render_images: bool = True,
                 render_pen: bool = True, pen_spacing: float = 0.25,
                 dtype=np.float32, start: int = 0) -> LineSet:
    """Render given texts as image lines and pen trajectories.

    Parameters
    ----------
    texts : sequence of str -- B non-empty strings over :data:`ALPHABET`, not
        starting or ending with a space.
    fonts : str or sequence of str -- one face for all lines, or one per line
        (names from :data:`ALL_FONTS`).
    seed : int >= 0 or numpy.random.Generator -- the distortions of
        ``texts[i]`` depend on (seed, start + i) only.
    height : int -- D, the image height in pixels (>= 12).
    x_scale : float in (0, 1] -- image columns per rendered pixel; columns are
        area averages, so 0.5 halves T without dropping thin strokes.
    distortion : LineDistortion, optional -- default ``LineDistortion()``.
    render_images, render_pen : bool -- skip a view (its fields are None).
    pen_spacing : float -- pen points about this many cap heights apart along
        each outline (at least 4 points per glyph); the default gives about 16
        points per character.
    dtype : float32 (default: 20,000 padded lines of 24 px take ~1 GB) or float64.
    start : int -- index of the first line in the seed's streams (>= 0).

    Returns
    -------
    LineSet
        images (T, B, D), image_mask (T, B), pen (P, B, 3), pen_mask (P, B),
        labels (B, L_max), label_lengths (B,), texts, fonts.
    """
    texts = list(texts)
    B = len(texts)
    H = positive_int("height", height, 12)
    if not isinstance(x_scale, (int, float)) or not 0.0 < x_scale <= 1.0:
        raise ValueError(f"x_scale must be a number in (0, 1]; got {x_scale!r}")
    if not isinstance(pen_spacing, (int, float)) or not 0.01 <= pen_spacing <= 2.0:
        raise ValueError(f"pen_spacing must be a number in [0.01, 2] (cap heights); "
                         f"got {pen_spacing!r}")
    dt = float_dtype(dtype)
    d = LineDistortion() if distortion is None else distortion
    if not isinstance(d, LineDistortion):
        raise TypeError(f"distortion must be a LineDistortion; got {type(d).__name__}")
    if not 0.0 < d.scale[0] <= d.scale[1] <= 1.0:
        raise ValueError(f"distortion.scale must satisfy 0 < lo <= hi <= 1; got {d.scale!r}")
    per_line = [fonts] * B if isinstance(fonts, str) else list(fonts)
    if len(per_line) != B:
        raise ValueError(f"fonts must be one name or one per text ({B}); got {len(per_line)}")
    bad = sorted({f for f in per_line if f not in ALL_FONTS})
    if bad:
        raise ValueError(f"fonts must be names from ALL_FONTS {ALL_FONTS}; got unknown {bad}")
    for i, t in enumerate(texts):
        encode(t)
        if not t or t != t.strip(" "):
            raise ValueError(f"texts[{i}] must be non-empty without leading or trailing "
                             f"spaces; got {t!r}")
    base = base_seed(seed)
    start = positive_int("start", start, 0)
    used = tuple(sorted(set(per_line), key=ALL_FONTS.index))
    slot = {f: k for k, f in enumerate(used)}
    plans = [_plan(t, f, slot[f], H, d, line_rng(base, GEOMETRY_STREAM, start + i))
             for i, (t, f) in enumerate(zip(texts, per_line))]

    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    labels = np.zeros((B, int(lengths.max()) if B else 0), dtype=np.int64)
    for i, t in enumerate(texts):
        labels[i, :len(t)] = encode(t)
    need = ctc_min_lengths(labels, lengths)

    images = image_mask = image_lengths = None
    if render_images:
        image_lengths = np.array([int(np.ceil(p.width * x_scale)) for p in plans], dtype=np.int64)
        short = np.flatnonzero(image_lengths < need)
        if short.size:
            i = int(short[0])
            raise ValueError(f"line {i} ({texts[i]!r}) has {image_lengths[i]} columns but CTC "
                             f"needs {need[i]}: raise x_scale (got {x_scale})")
        T = int(image_lengths.max()) if B else 0
        images = np.zeros((T, B, H), dtype=dt)
        table = _glyph_table(used)
        order = np.argsort(image_lengths, kind="stable")  # similar widths share a canvas
        for lo in range(0, B, 128):
            chunk = order[lo:lo + 128]
            canvas = _render_chunk([plans[i] for i in chunk], H, table)
            cols = _downsample(canvas, float(x_scale), int(image_lengths[chunk].max()))
            for k, i in enumerate(chunk):
                n = image_lengths[i]
                line = cols[k, :n].astype(np.float64)
                if d.noise > 0:
                    rng = line_rng(base, NOISE_STREAM, start + int(i))
                    line += rng.normal(0.0, d.noise, line.shape)
                images[:n, i] = np.clip(line, 0.0, 1.0)
        image_mask = np.arange(T)[:, None] < image_lengths[None, :]

    pen = pen_mask = pen_lengths = None
    if render_pen:
        strokes = [_pen_line(p, f, H, float(pen_spacing), d.pen_noise,
                             line_rng(base, PEN_STREAM, start + i))
                   for i, (p, f) in enumerate(zip(plans, per_line))]
        pen_lengths = np.array([len(s) for s in strokes], dtype=np.int64)
        P = int(pen_lengths.max()) if B else 0
        pen = np.zeros((P, B, 3), dtype=dt)
        for i, s in enumerate(strokes):
            pen[:len(s), i] = s
        pen_mask = np.arange(P)[:, None] < pen_lengths[None, :]
        short = np.flatnonzero(pen_lengths < need)
        if short.size:  # cannot happen with >= 4 points per glyph; kept as a guard
            i = int(short[0])
            raise ValueError(f"line {i} has {pen_lengths[i]} pen points but CTC needs {need[i]}: "
                             f"lower pen_spacing (got {pen_spacing})")

    return LineSet(tuple(texts), labels, lengths, np.array(per_line, dtype=str).reshape(B),
                   images, image_mask, image_lengths, pen, pen_mask, pen_lengths, H,
                   float(x_scale))


def make_lines(n: int, *, fonts: Sequence[str] = TRAIN_FONTS, seed, height: int = 24,
               chars: tuple = (8, 40), x_scale: float = 1.0,
               distortion: LineDistortion | None = None, number_rate: float = 0.1,
               render_images: bool = True, render_pen: bool = True, pen_spacing: float = 0.25,
               dtype=np.float32, start: int = 0) -> LineSet:
    """``n`` random text lines in the given fonts, as images and pen trajectories.

    Texts come from :func:`sample_texts`; the fonts are balanced (line ``i``
    uses ``fonts[perm[i % len(fonts)]]`` for a seeded permutation ``perm``).
    Line ``i`` depends on (seed, i) and the arguments only, so the first lines
    of a larger call are the same lines (up to padding), and a large set can be
    made in shards: ``make_lines(1000, seed=s, start=5000)`` is lines 5000-5999
    of ``make_lines(20000, seed=s)``, trimmed to its own padding.

    Parameters
    ----------
    n : int -- B (>= 0).
    fonts : sequence of str -- default :data:`TRAIN_FONTS`; pass
        :data:`HELD_OUT_FONTS` for the unseen-font test set.
    seed : int >= 0 or numpy.random.Generator
    chars : (int, int) -- range of line lengths in characters, inclusive.
    number_rate : float -- share of words that are numbers (see :func:`sample_texts`).
    start : int -- index of the first line (>= 0), for shards of a larger set.
    height, x_scale, distortion, render_images, render_pen, pen_spacing, dtype
        See :func:`render_lines`.

    Returns
    -------
    LineSet
        images (T, B, D=height), image_mask (T, B), pen (P, B, 3), pen_mask (P, B),
        labels (B, L_max) 0-padded, label_lengths (B,), texts, fonts.
    """
    n = positive_int("n", n, 0)
    fonts = (fonts,) if isinstance(fonts, str) else tuple(fonts)
    if not fonts:
        raise ValueError("fonts must name at least one face")
    start = positive_int("start", start, 0)
    base = base_seed(seed)
    texts = sample_texts(n, seed=base, chars=chars, number_rate=number_rate, start=start)
    perm = line_rng(base, FONT_STREAM, 0).permutation(len(fonts))
    per_line = [fonts[perm[(start + i) % len(fonts)]] for i in range(n)]
    return render_lines(texts, fonts=per_line, seed=base, height=height, x_scale=x_scale,
                        distortion=distortion, render_images=render_images,
                        render_pen=render_pen, pen_spacing=pen_spacing, dtype=dtype,
                        start=start)
