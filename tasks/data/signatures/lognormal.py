"""Synthetic online signatures from the sigma-lognormal model, genuine and skilled forgeries.

The kinematic theory of rapid movements (Plamondon 1995; Plamondon & Djioua
2006) writes pen motion as a sum of overlapping *strokes*. Stroke ``j``
starts at ``t0_j``, covers a distance ``D_j`` with a lognormal speed profile

    |v_j(t)| = D_j / (sigma_j sqrt(2 pi) (t - t0_j)) exp(-(ln(t - t0_j) - mu_j)^2 / (2 sigma_j^2)),

and its direction turns from ``theta_s_j`` to ``theta_e_j`` in proportion to
the distance covered, ``phi_j(t) = theta_s_j + (theta_e_j - theta_s_j) F_j(t)``
with ``F_j(t) = (1 + erf((ln(t - t0_j) - mu_j) / (sigma_j sqrt 2))) / 2``.
Because ``|v_j| dt = D_j dF_j``, the displacement of a stroke up to ``t``
has a closed form (:func:`stroke_displacement`), so positions are exact, not
integrated numerically. The pen velocity is the sum of a component's strokes;
the pen is lifted between components. Galbally et al. (2012) and Ferrer et
al. (2015) synthesise whole online-signature databases this way.

Writers (:func:`writer_template`): 8-20 strokes in 1-3 pen-down components,
parameters drawn from :data:`RANGES` (documented there), plus a slow
left-to-right "carrier" stroke per component, which gives the signature its
progression along a line. Genuine samples (:func:`genuine`) jitter every
stroke parameter within the writer's own variability, plus a per-sample tempo
and a per-session drift (tempo, size, slant) for samples of the second
session. Skilled forgeries (:func:`skilled_forgery`) are the model of
:data:`FORGER` (the why is written there): the forger copies the *path* of
the writer's template from its image, with a small smooth shape error, and
traces it with his own timing -- more, equal-sized, less-overlapped strokes,
hesitations and tremor -- in an overall time drawn to overlap the writer's
own, so that duration, number of points and mean speed do not give a
forgery away (the experiment checks this with a trivial-feature verifier).

Everything is deterministic per ``(seed, writer, kind, sample)``: each
signature draws from its own ``numpy.random.default_rng([seed, writer, kind,
sample])``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..common import positive_int

__all__ = ["RANGES", "FORGER", "Stroke", "Template", "Signature", "erf", "stroke_speed", "stroke_fraction",
           "stroke_displacement", "writer_template", "genuine", "skilled_forgery", "draw"]

#: Parameter ranges of a writer's template (time in seconds, distance in cm).
#: mu and sigma give strokes of 0.1-0.35 s (``exp(mu)``) with the log-time
#: spread of fluent handwriting (Plamondon & Djioua 2006 report sigma of
#: 0.1-0.5 and mu of -2.2 to -1.0 for handwriting strokes; Galbally et al.
#: 2012 draw synthetic signatures from such ranges); successive strokes start
#: 35-70 % of a stroke's typical time after each other, so they overlap, as
#: in fluent, ballistic writing.
RANGES = {
    "strokes": (8, 20),            # strokes per signature, carrier strokes excluded
    "components": (1, 3),          # pen-down components
    "D": (0.4, 2.2),               # cm per stroke
    "mu": (-2.1, -1.3),            # ln s
    "sigma": (0.18, 0.38),
    "spacing": (0.35, 0.7),        # onset to onset, as a fraction of exp(mu)
    "turn": (-1.3, 1.3),           # theta_e - theta_s, rad
    "reversal": (0.55, 1.35),      # theta_s of the next stroke = theta_e + pi * this (handwriting oscillates)
    "carrier_D": (1.5, 4.0),       # cm, the slow left-to-right progression of a component
    "pen_up": (0.12, 0.35),        # s between components
    "jump": (0.3, 1.2),            # cm to the right between components
    "variability": (0.6, 1.4),     # a writer's own scale of the per-sample jitter below
}

#: Per-sample jitter of a genuine signature (standard deviations at variability 1).
JITTER = {"D": 0.06, "mu": 0.05, "sigma": 0.05, "spacing": 0.08, "theta": 0.05, "tempo": 0.04, "pen_up": 0.15}

#: Drift between the two sessions of a writer (standard deviations): tempo (added to every mu), size (log), slant (rad).
SESSION = {"tempo": 0.06, "size": 0.05, "slant": 0.04}

#: The skilled forger. A forger who has studied the *image* of a signature
#: knows its shape, not its dynamics (Plamondon & Lorette 1989; the premise of
#: online verification). He therefore plans the movement as a chain of
#: smaller, deliberate strokes along the seen path: ``strokes_factor`` times as
#: many as the writer's, cutting the path into nearly equal lengths (so the
#: speed peaks are uniform, not the fast ballistic strokes of the writer),
#: started ``spacing`` of a stroke's typical time apart (less overlap than the
#: writer's 0.35-0.7, so the speed dips between strokes), with pauses
#: (hesitations) at a fraction of the stroke boundaries and physiological
#: tremor of 5-10 Hz across the path. His shape error is a smooth warp of the
#: path of ``shape_error`` cm, comparable to a writer's own variation. His
#: overall time is drawn around the writer's own (``tempo``: log-ratio mean
#: and spread): a practised forger who matches the tempo, because a slower
#: forger would be caught by total duration alone, which is not what the
#: experiment is about.
FORGER = {"strokes_factor": (1.4, 2.2), "sigma": (0.25, 0.4), "spacing": (0.75, 1.1),
          "hesitation_rate": 0.15, "hesitation": (0.04, 0.15), "tremor_hz": (5.0, 10.0),
          "tremor_cm": (0.005, 0.015), "shape_error": 0.04, "tempo": (0.03, 0.08)}

KINDS = {"genuine": 1, "skilled": 2}


def erf(z: np.ndarray) -> np.ndarray:
    """The error function, vectorised (Abramowitz & Stegun 7.1.26; absolute error below 1.5e-7)."""
    z = np.asarray(z, dtype=np.float64)
    s = np.sign(z)
    a = np.abs(z)
    k = 1.0 / (1.0 + 0.3275911 * a)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


@dataclass(frozen=True)
class Stroke:
    """One lognormal stroke: onset ``t0`` (s), distance ``D`` (cm), ``mu``, ``sigma``, directions (rad)."""

    t0: float
    D: float
    mu: float
    sigma: float
    theta_s: float
    theta_e: float


def stroke_speed(t: np.ndarray, D: float, t0: float, mu: float, sigma: float) -> np.ndarray:
    """The lognormal speed profile ``|v(t)|`` of one stroke (cm/s); 0 before ``t0``.

    Parameters
    ----------
    t : ndarray, any shape
        Times in seconds.
    """
    t = np.asarray(t, dtype=np.float64)
    dt = np.maximum(t - t0, 1e-300)
    v = D / (sigma * np.sqrt(2 * np.pi) * dt) * np.exp(-(np.log(dt) - mu) ** 2 / (2 * sigma ** 2))
    return np.where(t > t0, v, 0.0)


def stroke_fraction(t: np.ndarray, t0: float, mu: float, sigma: float) -> np.ndarray:
    """``F(t)``: the fraction of the stroke's distance covered by ``t`` (the lognormal CDF)."""
    t = np.asarray(t, dtype=np.float64)
    dt = np.maximum(t - t0, 1e-300)
    return np.where(t > t0, 0.5 * (1.0 + erf((np.log(dt) - mu) / (sigma * np.sqrt(2.0)))), 0.0)


def stroke_displacement(t: np.ndarray, s: Stroke) -> np.ndarray:
    """Displacement ``(..., 2)`` (cm) of stroke ``s`` from its onset to each time in ``t``.

    With ``phi = theta_s + dtheta F`` and ``|v| dt = D dF``, the integral of
    ``|v| (cos phi, sin phi)`` is ``D / dtheta (sin phi - sin theta_s,
    cos theta_s - cos phi)``; for a straight stroke it is ``D F (cos, sin)``.
    """
    F = stroke_fraction(t, s.t0, s.mu, s.sigma)
    dth = s.theta_e - s.theta_s
    if abs(dth) < 1e-9:
        return s.D * F[..., None] * np.array([np.cos(s.theta_s), np.sin(s.theta_s)])
    phi = s.theta_s + dth * F
    return (s.D / dth) * np.stack([np.sin(phi) - np.sin(s.theta_s), np.cos(s.theta_s) - np.cos(phi)], axis=-1)


#: A stroke is sampled from ``t0 + exp(mu - TAIL sigma)`` to ``t0 + exp(mu + TAIL sigma)`` (98.6 % of its distance).
TAIL = 2.2


def _end_time(s: Stroke) -> float:
    """When the stroke has covered all but ~1.4 % of its distance (its speed is a few % of its peak)."""
    return s.t0 + float(np.exp(s.mu + TAIL * s.sigma))


@dataclass(frozen=True)
class Template:
    """A writer's signature plan: a list of components, each a list of strokes (times from the component's start).

    ``gaps[c]`` is the pen-up time before component ``c + 1`` and
    ``jumps[c]`` the pen-up displacement (cm) from the end of component ``c``
    to the start of the next. ``variability`` scales the writer's jitter.
    """

    writer: int
    components: tuple[tuple[Stroke, ...], ...]
    gaps: tuple[float, ...]
    jumps: tuple[tuple[float, float], ...]
    variability: float


@dataclass(frozen=True, eq=False)
class Signature:
    """One online signature as a tablet reports it.

    Attributes
    ----------
    t : ndarray, shape (N,)
        Sample times (s) from the first sample.
    xy : ndarray, shape (N, 2)
        Pen positions (cm).
    pen_down : ndarray of bool, shape (N,)
        Whether the pen touched the paper between the previous sample and
        this one: ``False`` for the first sample of every component (the pen
        arrived through the air; pen-up movement is not sampled).
    writer, sample : int
    kind : {"genuine", "skilled"}
    """

    t: np.ndarray
    xy: np.ndarray
    pen_down: np.ndarray
    writer: int
    kind: str
    sample: int

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample."""
        return float(self.t[-1] - self.t[0])

    @property
    def num_points(self) -> int:
        return int(self.t.shape[0])

    @property
    def num_pen_ups(self) -> int:
        """Pen lifts inside the signature (components - 1)."""
        return int(np.count_nonzero(~self.pen_down[1:]))

    @property
    def mean_speed(self) -> float:
        """Pen-down path length over pen-down time (cm/s)."""
        d = np.linalg.norm(np.diff(self.xy, axis=0), axis=1)
        dt = np.diff(self.t)
        down = self.pen_down[1:]
        return float(d[down].sum() / dt[down].sum())


def _rng(seed: int, writer: int, kind: int, sample: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(writer), int(kind), int(sample)])


def _check(writer: int, sample: int, seed: int) -> None:
    positive_int("writer", writer, 0)
    positive_int("sample", sample, 0)
    positive_int("seed", seed, 0)


def writer_template(writer: int, seed: int = 0) -> Template:
    """The signature plan of ``writer`` (deterministic per ``(seed, writer)``; immutable, so cached)."""
    _check(writer, 0, seed)
    return _template(int(writer), int(seed))


@functools.lru_cache(maxsize=4096)
def _template(writer: int, seed: int) -> Template:
    rng = _rng(seed, writer, 0, 0)
    R = RANGES
    n = int(rng.integers(R["strokes"][0], R["strokes"][1] + 1))
    n_comp = int(rng.integers(R["components"][0], R["components"][1] + 1))
    n_comp = min(n_comp, n // 3)
    cuts = np.sort(rng.choice(np.arange(3, n - 2), size=n_comp - 1, replace=False)) if n_comp > 1 else []
    sizes = np.diff(np.concatenate([[0], cuts, [n]])).astype(int)
    comps = []
    for size in sizes:
        strokes, t0, theta_e = [], 0.0, rng.uniform(0, 2 * np.pi)
        for _ in range(size):
            mu = rng.uniform(*R["mu"])
            sigma = rng.uniform(*R["sigma"])
            theta_s = theta_e + np.pi * rng.uniform(*R["reversal"]) * rng.choice([-1.0, 1.0])
            theta_e = theta_s + rng.uniform(*R["turn"])
            strokes.append(Stroke(t0, rng.uniform(*R["D"]), mu, sigma, theta_s, theta_e))
            t0 += rng.uniform(*R["spacing"]) * float(np.exp(mu))
        # the carrier: one slow stroke to the right under the whole component
        span = max(_end_time(s) for s in strokes)
        strokes.append(Stroke(0.0, rng.uniform(*R["carrier_D"]) * len(strokes) / 10, float(np.log(span / 1.6)), 0.3,
                              rng.normal(0, 0.1), rng.normal(0, 0.1)))
        comps.append(tuple(strokes))
    gaps = tuple(float(rng.uniform(*R["pen_up"])) for _ in range(len(comps) - 1))
    jumps = tuple((float(rng.uniform(*R["jump"])), float(rng.normal(0, 0.3))) for _ in range(len(comps) - 1))
    return Template(writer, tuple(comps), gaps, jumps, float(rng.uniform(*R["variability"])))


def _component_path(strokes: tuple[Stroke, ...], t: np.ndarray) -> np.ndarray:
    """Positions ``(len(t), 2)`` of a component's pen tip at times ``t`` (from its start at (0, 0)).

    The sum of :func:`stroke_displacement` over the strokes, computed for all
    strokes at once (``(len(t), J)`` arrays).
    """
    t0, D, mu, sigma, ts, te = (np.array([getattr(s, k) for s in strokes])
                                for k in ("t0", "D", "mu", "sigma", "theta_s", "theta_e"))
    dt = np.maximum(t[:, None] - t0, 1e-300)
    F = np.where(t[:, None] > t0, 0.5 * (1.0 + erf((np.log(dt) - mu) / (sigma * np.sqrt(2.0)))), 0.0)
    dth = te - ts
    straight = np.abs(dth) < 1e-9
    safe = np.where(straight, 1.0, dth)
    phi = ts + dth * F
    x = np.where(straight, D * F * np.cos(ts), D / safe * (np.sin(phi) - np.sin(ts)))
    y = np.where(straight, D * F * np.sin(ts), D / safe * (np.cos(ts) - np.cos(phi)))
    return np.stack([x.sum(axis=1), y.sum(axis=1)], axis=-1)


def _component_span(strokes: tuple[Stroke, ...]) -> tuple[float, float]:
    """Sampled interval of a component: its strokes' (the carrier's excluded) start to end, see :data:`TAIL`."""
    own = strokes[:-1]
    return (min(s.t0 + float(np.exp(s.mu - TAIL * s.sigma)) for s in own), max(_end_time(s) for s in own))


def _sample(paths: list, spans: list[tuple[float, float]], gaps: list[float], jumps: list,
            rate: float, writer: int, kind: str, sample: int,
            displace=None) -> Signature:
    """Sample each component's position function at ``rate`` Hz and join them with pen-up gaps."""
    ts, xys, downs = [], [], []
    start, origin = 0.0, np.zeros(2)
    for c, (path, (a, b)) in enumerate(zip(paths, spans)):
        local = a + np.arange(int(np.floor((b - a) * rate)) + 1) / rate
        p = path(local)
        p = p - p[0] + origin
        ts.append(start + (local - a))
        xys.append(p)
        down = np.ones(local.shape[0], dtype=bool)
        down[0] = False
        downs.append(down)
        if c < len(gaps):
            start = ts[-1][-1] + gaps[c]
            origin = p[-1] + np.asarray(jumps[c])
    t = np.concatenate(ts)
    xy = np.concatenate(xys)
    if displace is not None:
        xy = xy + displace(t)
    return Signature(t - t[0], xy, np.concatenate(downs), writer, kind, sample)


def _jittered(tpl: Template, rng: np.random.Generator, session: int, seed: int) -> Template:
    """One genuine realisation of the template: per-stroke jitter, tempo, session drift."""
    v = tpl.variability
    J = JITTER
    drift = np.random.default_rng([int(seed), tpl.writer, 3, session])   # the same for a whole session
    tempo = rng.normal(0, J["tempo"] * v)
    size, slant = 0.0, 0.0
    if session > 0:
        tempo += drift.normal(0, SESSION["tempo"])
        size = drift.normal(0, SESSION["size"])
        slant = drift.normal(0, SESSION["slant"])
    comps = []
    for strokes in tpl.components:
        new, t0, prev = [], 0.0, None
        for j, s in enumerate(strokes):
            is_carrier = j == len(strokes) - 1
            if is_carrier:
                t0 = 0.0
            elif prev is not None:
                t0 += (s.t0 - prev.t0) * np.exp(tempo + rng.normal(0, J["spacing"] * v))
            dth = rng.normal(0, J["theta"] * v)
            new.append(Stroke(t0, s.D * np.exp(size + rng.normal(0, J["D"] * v)),
                              s.mu + tempo + rng.normal(0, J["mu"] * v),
                              s.sigma * np.exp(rng.normal(0, J["sigma"] * v)),
                              s.theta_s + slant + dth, s.theta_e + slant + dth + rng.normal(0, J["theta"] * v)))
            if not is_carrier:
                prev = s
        comps.append(tuple(new))
    gaps = tuple(g * np.exp(tempo + rng.normal(0, J["pen_up"] * v)) for g in tpl.gaps)
    return Template(tpl.writer, tuple(comps), gaps, tpl.jumps, v)


def genuine(writer: int, sample: int, seed: int = 0, *, rate: float = 100.0,
            samples_per_session: int = 10) -> Signature:
    """Genuine signature ``sample`` of ``writer``.

    Samples ``0..samples_per_session-1`` are session 0, the rest session 1.
    """
    _check(writer, sample, seed)
    tpl = writer_template(writer, seed)
    rng = _rng(seed, writer, KINDS["genuine"], sample)
    session = 0 if sample < samples_per_session else 1
    real = _jittered(tpl, rng, session, seed)
    paths = [lambda t, s=strokes: _component_path(s, t) for strokes in real.components]
    spans = [_component_span(s) for s in real.components]
    return _sample(paths, spans, list(real.gaps), list(real.jumps), rate, writer, "genuine", sample)


def _arc_length(p: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])


def _smooth_warp(s: np.ndarray, length: float, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth 2-D displacement ``(len(s), 2)`` along arc length ``s``: three random sinusoids per axis."""
    out = np.zeros((s.shape[0], 2))
    for axis in range(2):
        for k in range(3):
            wavelength = rng.uniform(0.5, 2.0) * max(length, 1e-6) / (k + 1)
            out[:, axis] += rng.normal(0, amplitude / np.sqrt(3)) * np.sin(2 * np.pi * s / wavelength
                                                                            + rng.uniform(0, 2 * np.pi))
    return out


def skilled_forgery(writer: int, sample: int, seed: int = 0, *, rate: float = 100.0) -> Signature:
    """Skilled forgery ``sample`` of ``writer``'s signature (the :data:`FORGER` model)."""
    _check(writer, sample, seed)
    tpl = writer_template(writer, seed)
    rng = _rng(seed, writer, KINDS["skilled"], sample)
    F = FORGER
    tempo = rng.normal(*F["tempo"])
    paths, spans = [], []
    for strokes in tpl.components:
        a, b = _component_span(strokes)
        dense_t = np.linspace(a, b, 800)
        seen = _component_path(strokes, dense_t)             # the path as the image shows it
        s = _arc_length(seen)
        L = s[-1]
        copy = seen + _smooth_warp(s, L, rng, F["shape_error"])
        s_copy = _arc_length(copy)
        L = s_copy[-1]
        # the forger's plan: k nearly equal pieces of the path, each one lognormal stroke
        k = max(2, int(round((len(strokes) - 1) * rng.uniform(*F["strokes_factor"]))))
        pieces = rng.dirichlet(np.full(k, 20.0)) * L
        target = b - a                                       # the writer's own time for this component
        step = target / (k + 1.5)                            # onset-to-onset, before the time scaling below
        t0s, sigmas, mus, t0 = [], [], [], 0.0
        for _ in range(k):
            sigma = rng.uniform(*F["sigma"])
            mu = float(np.log(step / rng.uniform(*F["spacing"])))
            t0s.append(t0)
            sigmas.append(sigma)
            mus.append(mu)
            t0 += step * np.exp(rng.normal(0, 0.1))
            if rng.random() < F["hesitation_rate"]:
                t0 += rng.uniform(*F["hesitation"])
        t0s, sigmas, mus = np.array(t0s), np.array(sigmas), np.array(mus)
        begin = float(np.min(t0s + np.exp(mus - TAIL * sigmas)))
        end = float(np.max(t0s + np.exp(mus + TAIL * sigmas))) - begin
        scale = target * np.exp(tempo) / end                 # the forger's overall time, near the writer's
        t0s, mus = (t0s - begin) * scale, mus + np.log(scale)

        def path(t, pieces=pieces, t0s=t0s, mus=mus, sigmas=sigmas, s_copy=s_copy, copy=copy):
            dt = np.maximum(t[:, None] - t0s, 1e-300)
            F = np.where(t[:, None] > t0s, 0.5 * (1.0 + erf((np.log(dt) - mus) / (sigmas * np.sqrt(2.0)))), 0.0)
            covered = F @ pieces
            covered = np.minimum(covered, s_copy[-1])
            return np.stack([np.interp(covered, s_copy, copy[:, 0]), np.interp(covered, s_copy, copy[:, 1])], -1)

        paths.append(path)
        spans.append((0.0, float(np.max(t0s + np.exp(mus + TAIL * sigmas)))))
    gaps = [g * np.exp(tempo + rng.normal(0, 0.2)) for g in tpl.gaps]
    hz, amp = rng.uniform(*F["tremor_hz"]), rng.uniform(*F["tremor_cm"])
    phase = rng.uniform(0, 2 * np.pi, size=2)
    wobble = rng.uniform(0.1, 0.3)

    def tremor(t):
        f = hz * (1 + wobble * np.sin(2 * np.pi * 0.7 * t))      # the tremor's frequency wanders
        return amp * np.stack([np.sin(2 * np.pi * f * t + phase[0]), np.sin(2 * np.pi * f * t + phase[1])], -1)

    return _sample(paths, spans, gaps, list(tpl.jumps), rate, writer, "skilled", sample, displace=tremor)


def draw(writer: int, kind: str, sample: int, seed: int = 0, *, rate: float = 100.0) -> Signature:
    """``genuine`` or ``skilled_forgery`` by name (random forgeries are other writers' genuine samples)."""
    if kind == "genuine":
        return genuine(writer, sample, seed, rate=rate)
    if kind == "skilled":
        return skilled_forgery(writer, sample, seed, rate=rate)
    raise ValueError(f"kind: expected 'genuine' or 'skilled', got {kind!r}")
