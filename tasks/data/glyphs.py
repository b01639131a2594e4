"""OCR-style character images rendered from the fonts that ship with matplotlib.

No download and no figure: each (font, character) outline comes from
:class:`matplotlib.textpath.TextPath` once, is flattened to polygons, laid out
in a unit "glyph box" (common cap height and baseline per font, so case stays
visible), rasterised once at high resolution and stored as a signed distance
field. A sample is then a seeded random affine map (rotation, shear, scale,
aspect, shift) sampled bilinearly from that field, with a random stroke
offset (thinner / bolder), anti-aliased edges and Gaussian pixel noise —
fully vectorised over the batch.

Coordinates: the image is the unit square with x to the right and y up,
origin at the bottom-left; pixel ``(row i, column j)`` of an ``S x S`` image
has its centre at ``((j + 0.5) / S, 1 - (i + 0.5) / S)``. Every distorted
glyph is kept at least one pixel inside the square (the map is shrunk or
moved if needed), so nothing is ever clipped.

Three views of an :class:`OCRSet`: the flat image ``(N, S*S)``
(:meth:`OCRSet.flat`), the rows as a sequence ``(T=S, N, S)``
(:meth:`OCRSet.rows`) and the pen trajectory ``(T, N, 3)`` of
``(dx, dy, pen_lift)`` steps along the glyph outline (``OCRSet.pen``).

Fonts are split between train and test by :func:`ocr_dataset`, so a test
accuracy measures generalisation to unseen typefaces.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import SequenceData, as_rng, float_dtype, positive_int

__all__ = ["DIGITS", "UPPERCASE", "LOWERCASE", "ALPHANUMERIC", "FONT_FILES", "Distortion",
           "OCRSet", "OCRDataset", "available_fonts", "render_glyphs", "ocr_dataset"]

DIGITS = "0123456789"
UPPERCASE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWERCASE = "abcdefghijklmnopqrstuvwxyz"
ALPHANUMERIC = DIGITS + UPPERCASE + LOWERCASE

#: Text faces in matplotlib's mpl-data/fonts/ttf, in a fixed order. Symbol,
#: display-only and fallback faces (cmex10, cmsy10, cmmi10, STIXNonUni*,
#: STIXSiz*, *Display, LastResortHE) are left out: they map letters to other shapes.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmss10.ttf", "cmtt10.ttf",
)

_RES = 64        # side of the cached distance fields, in pixels
TEXT_SIZE = 200.0  # TextPath size: large, so curves are flattened finely
_BOX = 0.75      # the layout span (descender .. ascender) fills this much of the box
_DESC, _ASC = -0.3, 1.05  # layout span in cap heights


def _font_dir() -> Path:
    import matplotlib
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def font_path(font: str) -> Path:
    return _font_dir() / f"{font}.ttf"


@functools.lru_cache(maxsize=None)
def available_fonts(charset: str = DIGITS) -> tuple[str, ...]:
    """Names of the :data:`FONT_FILES` faces present that have a glyph for every
    character of ``charset``, in :data:`FONT_FILES` order (file stems, e.g.
    ``"DejaVuSans-Bold"``).

    Returns
    -------
    tuple of str
    """
    from matplotlib.ft2font import FT2Font
    out = []
    for file in FONT_FILES:
        path = _font_dir() / file
        if not path.exists():
            continue
        face = FT2Font(str(path))
        if all(face.get_char_index(ord(c)) != 0 for c in charset):
            out.append(path.stem)
    return tuple(out)


def outline(font: str, char: str) -> list[np.ndarray]:
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath
    path = TextPath((0, 0), char, size=TEXT_SIZE, prop=FontProperties(fname=str(font_path(font))))
    polys = [np.asarray(p, dtype=np.float64) for p in path.to_polygons(closed_only=True)]
    return [p for p in polys if len(p) >= 3]


@functools.lru_cache(maxsize=None)
def cap_height(font: str) -> float:
    pts = np.concatenate(outline(font, "H"))
    return float(pts[:, 1].max() - pts[:, 1].min())


def raster(polys: list[np.ndarray], res: int) -> np.ndarray:
    """Even-odd fill of closed polygons (box units) on a res x res grid of pixel
    centres, row 0 at the top: one scanline per row, crossings counted by search."""
    a = np.concatenate([p[:-1] for p in polys])
    b = np.concatenate([p[1:] for p in polys])
    centres = (np.arange(res) + 0.5) / res
    y = (1.0 - centres)[:, None]                                # (res, 1)
    crosses = (a[:, 1] > y) != (b[:, 1] > y)                    # (res, E)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    x_at = np.sort(np.where(crosses, np.clip(x_at, -1.0, 2.0), 3.0), axis=1)
    # Search all rows at once: row r's values are shifted by 10 r.
    shift = 10.0 * np.arange(res)[:, None]
    E = x_at.shape[1]
    below = np.searchsorted((x_at + shift).ravel(), (centres[None, :] + shift).ravel())
    below = below.reshape(res, res) - E * np.arange(res)[:, None]
    return below % 2 == 1


@dataclass(frozen=True, eq=False)
class _Glyph:
    polys: tuple       # closed polygons in glyph-box units, each (k, 2)
    lo: np.ndarray     # (2,) bounding box corner
    hi: np.ndarray     # (2,)
    sdf: np.ndarray    # (_RES, _RES) float32 signed distance (box units), < 0 inside


@functools.lru_cache(maxsize=None)
def _glyph(font: str, char: str) -> _Glyph:
    from scipy.ndimage import distance_transform_edt
    polys = outline(font, char)
    if not polys:
        raise ValueError(f"font {font!r} has no outline for {char!r}")
    cap = cap_height(font)
    pts = np.concatenate(polys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    k = _BOX / ((_ASC - _DESC) * cap)
    k = min(k, _BOX / max(hi[0] - lo[0], 1e-9))
    base = 0.5 - _BOX / 2 - _DESC * cap * _BOX / ((_ASC - _DESC) * cap)  # baseline height
    shift = np.array([0.5 - k * (lo[0] + hi[0]) / 2, base])
    polys = [p * k + shift for p in polys]
    pts = np.concatenate(polys)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    # Unusual glyphs (long tails) may leave the layout span: fit them back in.
    over = max(0.0, -lo.min() + 0.05, hi.max() - 0.95)
    if over > 0:
        f = 0.45 / (0.45 + over)
        polys = [(p - 0.5) * f + 0.5 for p in polys]
        pts = np.concatenate(polys)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
    inside = raster(polys, _RES)
    sdf = np.where(inside, -(distance_transform_edt(inside) - 0.5),
                   distance_transform_edt(~inside) - 0.5) / _RES
    return _Glyph(tuple(polys), lo, hi, sdf.astype(np.float32))


@functools.lru_cache(maxsize=None)
def _pen_points(font: str, char: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Outline resampled to ``steps`` points at equal arc length per contour.

    Returns points (steps, 2) in glyph-box units and lift (steps,) bool: True
    where the pen moves to the point without drawing (the start of a contour).
    """
    return resample_contours(list(_glyph(font, char).polys), steps)


def resample_contours(polys: list[np.ndarray], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed polygons resampled to ``steps`` points in all (shared with tasks.data.lines).

    Each kept contour gets three points at least, the rest in proportion to
    its perimeter; if ``steps`` is too small for every contour, the shortest
    are dropped. Returns points (steps, 2) in the polygons' units and lift
    (steps,) bool, True at the first point of each contour.
    """
    lengths = [np.hypot(*np.diff(p, axis=0).T) for p in polys]
    perim = np.array([seg.sum() for seg in lengths])
    keep = perim > 1e-9
    max_contours = steps // 3
    order = np.argsort(-perim, kind="stable")[:max_contours]
    keep &= np.isin(np.arange(len(polys)), order)
    polys = [p for p, k in zip(polys, keep) if k]
    lengths = [s for s, k in zip(lengths, keep) if k]
    perim = perim[keep]
    # Three points per contour at least, the rest in proportion to perimeter
    # (largest remainder, ties to the earlier contour).
    extra = steps - 3 * len(polys)
    share = extra * perim / perim.sum()
    count = 3 + np.floor(share).astype(int)
    rest = steps - count.sum()
    count[np.argsort(-(share - np.floor(share)), kind="stable")[:rest]] += 1
    points, lift = [], []
    for p, seg, n in zip(polys, lengths, count):
        s = np.concatenate([[0.0], np.cumsum(seg)])
        at = np.linspace(0.0, s[-1], n)  # closed: the last point returns to the first
        points.append(np.column_stack([np.interp(at, s, p[:, 0]), np.interp(at, s, p[:, 1])]))
        lift.append(np.arange(n) == 0)
    return np.concatenate(points), np.concatenate(lift)


@dataclass(frozen=True)
class Distortion:
    """Ranges of the random distortions (all lengths are fractions of the image side).

    Attributes
    ----------
    rotation : float -- maximum |angle| in degrees.
    shear : float -- maximum |horizontal shear|.
    scale : (float, float) -- range of the overall scale.
    aspect : float -- maximum relative difference of the x and y scales.
    shift : float -- maximum |translation| per axis.
    thickness : (float, float) -- range of the stroke offset (< 0 thins, > 0 bolds).
    noise : float -- standard deviation of the additive Gaussian pixel noise.
    """

    rotation: float = 12.0
    shear: float = 0.2
    scale: tuple = (0.8, 1.1)
    aspect: float = 0.12
    shift: float = 0.08
    thickness: tuple = (0.0, 0.03)
    noise: float = 0.05

    @classmethod
    def none(cls) -> "Distortion":
        """No distortion at all: the clean, centred glyph."""
        return cls(0.0, 0.0, (1.0, 1.0), 0.0, 0.0, (0.0, 0.0), 0.0)


@dataclass(frozen=True, eq=False)
class OCRSet:
    """Rendered characters.

    Attributes
    ----------
    images : ndarray, shape (N, S, S), float in [0, 1] (ink = 1).
    labels : ndarray, shape (N,), int64 -- index into ``charset``.
    fonts : ndarray, shape (N,), str -- the face each sample was drawn from.
    pen : ndarray, shape (T, N, 3) -- steps ``(dx, dy, pen_lift)`` along the
        distorted outline; ``cumsum(pen[..., :2], axis=0)`` are the pen
        positions in image coordinates (inside the unit square);
        ``pen_lift`` is 1 where the move to the point is not drawn (the first
        step, from the origin, and the start of each further contour).
    charset : str
    """

    images: np.ndarray
    labels: np.ndarray
    fonts: np.ndarray
    pen: np.ndarray
    charset: str

    def flat(self) -> np.ndarray:
        """The images as vectors, shape (N, S*S) (a view)."""
        return self.images.reshape(self.images.shape[0], -1)

    def rows(self) -> np.ndarray:
        """The images as row sequences, time-major, shape (T=S, N, S): step t is row t (top first)."""
        return self.images.transpose(1, 0, 2)

    def row_sequences(self) -> SequenceData:
        """:meth:`rows` as classification sequences (``target_at="last"``, ys = labels)."""
        return _classify(self.rows(), self.labels)

    def pen_sequences(self) -> SequenceData:
        """``pen`` as classification sequences (``target_at="last"``, ys = labels)."""
        return _classify(self.pen, self.labels)


def _classify(xs: np.ndarray, labels: np.ndarray) -> SequenceData:
    T, N = xs.shape[:2]
    mask = np.zeros((T, N), dtype=bool)
    mask[-1] = True
    return SequenceData(xs, labels, mask, "last", np.full(N, T, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class OCRDataset:
    """A train/test split with disjoint fonts (see :func:`ocr_dataset`)."""

    train: OCRSet
    test: OCRSet
    train_fonts: tuple
    test_fonts: tuple
    charset: str


def _affines(N, glyphs, dist: Distortion, size, rng):
    """Random maps v = M u + t from glyph box to image square, fitted inside it."""
    d = dist
    theta = np.deg2rad(rng.uniform(-d.rotation, d.rotation, N))
    shear = rng.uniform(-d.shear, d.shear, N)
    scale = rng.uniform(d.scale[0], d.scale[1], N)
    aspect = rng.uniform(-d.aspect, d.aspect, N)
    shift = rng.uniform(-d.shift, d.shift, (N, 2))
    thick = rng.uniform(d.thickness[0], d.thickness[1], N)
    c, s = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    sh = np.zeros((N, 2, 2))
    sh[:, 0, 0] = sh[:, 1, 1] = 1.0
    sh[:, 0, 1] = shear
    diag = np.zeros((N, 2, 2))
    diag[:, 0, 0] = scale * (1 + aspect)
    diag[:, 1, 1] = scale * (1 - aspect)
    M = rot @ sh @ diag
    lo = np.stack([g.lo for g in glyphs])
    hi = np.stack([g.hi for g in glyphs])
    corners = np.stack([lo, np.column_stack([lo[:, 0], hi[:, 1]]),
                        np.column_stack([hi[:, 0], lo[:, 1]]), hi], axis=1) - 0.5  # (N, 4, 2)
    moved = np.einsum("nij,nkj->nki", M, corners)
    margin = 1.0 / size + np.maximum(thick, 0.0)
    room = 1.0 - 2 * margin
    extent = moved.max(axis=1) - moved.min(axis=1)
    f = np.minimum(1.0, room / extent.max(axis=1))
    M = M * f[:, None, None]
    moved = moved * f[:, None, None]
    t = 0.5 + shift
    low = moved.min(axis=1) + t
    high = moved.max(axis=1) + t
    t = t + np.maximum(0.0, margin[:, None] - low) - np.maximum(0.0, high - (1 - margin[:, None]))
    t = t - M @ np.array([0.5, 0.5])  # v = M (u - 0.5) + shift + 0.5
    return M, t, thick


def render_glyphs(n: int, *, fonts, charset: str = DIGITS, size: int = 16,
                  distortion: Distortion | None = None, pen_steps: int = 64, seed,
                  dtype=np.float64) -> OCRSet:
    """Render ``n`` distorted characters.

    Labels are balanced over ``charset`` (each appears ``n / len(charset)``
    times, rounded) and fonts over ``fonts``, both in random order.

    Parameters
    ----------
    n : int -- N (>= 0).
    fonts : sequence of str -- face names from :func:`available_fonts`.
    charset : str -- the classes, label ``i`` is ``charset[i]``.
    size : int -- S, the image side in pixels (>= 8).
    distortion : Distortion, optional -- default ``Distortion()``;
        ``Distortion.none()`` for clean glyphs.
    pen_steps : int -- T of the pen trajectory (>= 3 per contour).
    seed : int or numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    OCRSet
        images (N, S, S), labels (N,), fonts (N,), pen (T, N, 3).
    """
    N, S, steps = positive_int("n", n, 0), positive_int("size", size, 8), positive_int("pen_steps", pen_steps, 6)
    fonts = tuple(fonts)
    if not charset or len(set(charset)) != len(charset):
        raise ValueError(f"charset must be a non-empty string of distinct characters; got {charset!r}")
    known = available_fonts(charset)
    bad = [f for f in fonts if f not in known]
    if not fonts or bad:
        raise ValueError(f"fonts must be a non-empty subset of available_fonts({charset!r}) = "
                         f"{known}; got unknown {bad}")
    dist = Distortion() if distortion is None else distortion
    rng, dt = as_rng(seed), float_dtype(dtype)
    labels = rng.permutation(np.arange(N) % len(charset)).astype(np.int64)
    font_ix = rng.permutation(np.arange(N) % len(fonts))
    keys = sorted({(font_ix[i], labels[i]) for i in range(N)})
    slot = {k: i for i, k in enumerate(keys)}
    table = [_glyph(fonts[f], charset[c]) for f, c in keys]
    which = np.array([slot[(f, c)] for f, c in zip(font_ix, labels)], dtype=np.int64)
    glyphs = [table[w] for w in which]

    M, t, thick = _affines(N, glyphs, dist, S, rng)
    images = np.empty((N, S, S), dtype=dt)
    if N:
        sdf = np.stack([g.sdf for g in table])
        centres = (np.arange(S) + 0.5) / S
        X, Y = np.meshgrid(centres, 1.0 - centres)
        v = np.column_stack([X.ravel(), Y.ravel()])  # (S*S, 2)
        Minv = np.linalg.inv(M)
        px_scale = S * np.sqrt(np.abs(np.linalg.det(M)))  # box distance -> image pixels
        for lo in range(0, N, 2048):
            sl = slice(lo, lo + 2048)
            u = np.einsum("nij,npj->npi", Minv[sl], v[None] - t[sl, None, :])
            col = np.clip(u[..., 0] * _RES - 0.5, 0, _RES - 1)
            row = np.clip((1.0 - u[..., 1]) * _RES - 0.5, 0, _RES - 1)
            c0 = np.minimum(col.astype(np.int64), _RES - 2)
            r0 = np.minimum(row.astype(np.int64), _RES - 2)
            fc, fr = col - c0, row - r0
            g = which[sl, None]
            d = ((sdf[g, r0, c0] * (1 - fc) + sdf[g, r0, c0 + 1] * fc) * (1 - fr)
                 + (sdf[g, r0 + 1, c0] * (1 - fc) + sdf[g, r0 + 1, c0 + 1] * fc) * fr)
            cover = 0.5 - (d - thick[sl, None]) * px_scale[sl, None]
            images[sl] = np.clip(cover, 0.0, 1.0).reshape(-1, S, S)
        if dist.noise > 0:
            images += rng.normal(0.0, dist.noise, images.shape).astype(dt)
            np.clip(images, 0.0, 1.0, out=images)

    pen = np.zeros((steps, N, 3), dtype=dt)
    for i in range(N):
        pts, lift = _pen_points(fonts[font_ix[i]], charset[labels[i]], steps)
        pos = pts @ M[i].T + t[i]
        pen[:, i, :2] = np.diff(pos, axis=0, prepend=np.zeros((1, 2)))
        pen[:, i, 2] = lift
    return OCRSet(images, labels, np.array([fonts[f] for f in font_ix], dtype=str).reshape(N),
                  pen, charset)


def ocr_dataset(n_train: int, n_test: int, *, size: int = 16, charset: str = DIGITS,
                test_fonts: int = 4, distortion: Distortion | None = None,
                pen_steps: int = 64, seed, dtype=np.float64) -> OCRDataset:
    """Train and test character sets drawn from disjoint fonts.

    The ``test_fonts`` test faces are a seeded random choice among
    :func:`available_fonts(charset) <available_fonts>`; the rest are for
    training. Both sets are rendered with independent random distortions.
    With ``test_fonts=0`` the two sets share all fonts (split by sample only).

    Parameters
    ----------
    n_train, n_test : int -- set sizes.
    size : int -- image side S.
    charset : str -- e.g. :data:`DIGITS` (default), :data:`UPPERCASE`, :data:`ALPHANUMERIC`.
    test_fonts : int -- number of held-out faces (less than the number available).
    distortion, pen_steps, dtype : see :func:`render_glyphs`.
    seed : int or numpy.random.Generator

    Returns
    -------
    OCRDataset
        ``train`` and ``test`` :class:`OCRSet`, ``train_fonts``, ``test_fonts``.
    """
    fonts = available_fonts(charset)
    k = positive_int("test_fonts", test_fonts, 0)
    if k >= len(fonts):
        raise ValueError(f"test_fonts must be < {len(fonts)} (the faces with all of "
                         f"{charset!r}); got {test_fonts}")
    rng = as_rng(seed)
    held = set(rng.choice(len(fonts), size=k, replace=False).tolist())
    test_set = tuple(f for i, f in enumerate(fonts) if i in held) or fonts
    train_set = tuple(f for i, f in enumerate(fonts) if i not in held)
    kw = dict(charset=charset, size=size, distortion=distortion, pen_steps=pen_steps, dtype=dtype)
    train = render_glyphs(n_train, fonts=train_set, seed=rng, **kw)
    test = render_glyphs(n_test, fonts=test_set, seed=rng, **kw)
    return OCRDataset(train, test, train_set, test_set if k else fonts, charset)
