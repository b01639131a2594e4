"""Synthetic online signatures (tasks.data.signatures), their views, and tasks.verification's metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tasks.data.signatures.lognormal import (Stroke, erf, genuine, skilled_forgery, stroke_displacement,
                                             stroke_fraction, stroke_speed, writer_template, RANGES)
from tasks.data.signatures.views import encoder_features, image, pad_batch, resampled, trajectory
from tasks.verification import dtw, equal_error_rate, error_curves, probit, reference_scores


# -- the generator ------------------------------------------------------------------
def _same(a, b) -> bool:
    return (a.t.shape == b.t.shape and np.array_equal(a.t, b.t) and np.array_equal(a.xy, b.xy)
            and np.array_equal(a.pen_down, b.pen_down))


@pytest.mark.parametrize("draw", [genuine, skilled_forgery])
def test_deterministic_per_writer_and_sample_index(draw):
    first = draw(7, 3, seed=5)
    for w, k in [(8, 3), (7, 4), (2, 0)]:       # drawing others in between changes nothing
        draw(w, k, seed=5)
    assert _same(first, draw(7, 3, seed=5))
    assert not _same(first, draw(7, 4, seed=5))
    assert not _same(first, draw(8, 3, seed=5))
    assert not _same(first, draw(7, 3, seed=6))


def test_template_within_documented_ranges():
    for w in range(30):
        tpl = writer_template(w, seed=1)
        own = [s for comp in tpl.components for s in comp[:-1]]      # the last of each is the carrier
        assert RANGES["strokes"][0] <= len(own) <= RANGES["strokes"][1]
        assert RANGES["components"][0] <= len(tpl.components) <= RANGES["components"][1]
        for s in own:
            assert RANGES["D"][0] <= s.D <= RANGES["D"][1]
            assert RANGES["mu"][0] <= s.mu <= RANGES["mu"][1]
            assert RANGES["sigma"][0] <= s.sigma <= RANGES["sigma"][1]


def test_erf_matches_math_erf():
    import math
    z = np.linspace(-4, 4, 401)
    assert np.max(np.abs(erf(z) - np.array([math.erf(v) for v in z]))) < 2e-7


@pytest.mark.parametrize("dtheta", [0.0, 1.1, -0.7])
def test_stroke_speed_profile_matches_the_lognormal_formula(dtheta):
    s = Stroke(t0=0.05, D=1.7, mu=-1.6, sigma=0.3, theta_s=0.4, theta_e=0.4 + dtheta)
    t = np.arange(0.0, 1.2, 1e-4)
    p = stroke_displacement(t, s)
    measured = np.linalg.norm(np.diff(p, axis=0), axis=1) / 1e-4
    mid = (t[1:] + t[:-1]) / 2
    formula = stroke_speed(mid, s.D, s.t0, s.mu, s.sigma)
    assert np.max(np.abs(measured - formula)) < 1e-3 * formula.max()
    # the peak sits at t0 + exp(mu - sigma^2), the mode of the lognormal
    assert abs(mid[np.argmax(measured)] - (s.t0 + np.exp(s.mu - s.sigma ** 2))) < 2e-4
    # the direction turns from theta_s to theta_e
    v = np.diff(p, axis=0)
    heading = np.arctan2(v[:, 1], v[:, 0])
    moving = formula > 0.05 * formula.max()
    F = stroke_fraction(mid, s.t0, s.mu, s.sigma)
    expect = s.theta_s + dtheta * F
    assert np.max(np.abs(np.angle(np.exp(1j * (heading[moving] - expect[moving]))))) < 1e-3
    assert np.linalg.norm(p[-1]) == pytest.approx(s.D if dtheta == 0 else abs(2 * s.D / dtheta * np.sin(dtheta / 2)),
                                                  rel=1e-4)


def test_a_one_stroke_component_is_sampled_at_the_formula_speed():
    """Through the sampler: a writer whose component is one stroke (carrier of zero length)."""
    import tasks.data.signatures.lognormal as lg
    s = Stroke(t0=0.0, D=2.0, mu=-1.5, sigma=0.25, theta_s=0.3, theta_e=1.0)
    carrier = Stroke(0.0, 0.0, -1.0, 0.3, 0.0, 0.0)
    comp = (s, carrier)
    sig = lg._sample([lambda t: lg._component_path(comp, t)], [lg._component_span(comp)], [], [], 200.0,
                     0, "genuine", 0)
    assert np.allclose(np.diff(sig.t), 1 / 200.0)
    measured = np.linalg.norm(np.diff(sig.xy, axis=0), axis=1) * 200.0
    a = lg._component_span(comp)[0]
    mid = a + (sig.t[1:] + sig.t[:-1]) / 2
    formula = stroke_speed(mid, s.D, s.t0, s.mu, s.sigma)
    assert np.max(np.abs(measured - formula)) < 0.01 * formula.max()


def test_signature_sizes_and_pen_ups():
    for w in range(10):
        tpl = writer_template(w)
        for sig in (genuine(w, 0), genuine(w, 12), skilled_forgery(w, 0)):
            assert sig.num_pen_ups == len(tpl.components) - 1
            assert sig.t[0] == 0 and np.all(np.diff(sig.t) > 0)
            assert 0.5 < sig.duration < 8
            assert not sig.pen_down[0]
            assert sig.xy.shape == (sig.num_points, 2)


def _shape_distance(a, b) -> float:
    return float(np.mean(np.linalg.norm(resampled(a, 64)[:, :2] - resampled(b, 64)[:, :2], axis=1)))


def test_skilled_forgeries_copy_the_shape():
    """Genuine vs the same writer's skilled forgery: closer in path shape than to other writers' genuine."""
    writers = range(100, 112)
    same, other = [], []
    for w in writers:
        g = genuine(w, 0)
        same += [_shape_distance(g, skilled_forgery(w, k)) for k in range(3)]
        other += [_shape_distance(g, genuine(v, 1)) for v in writers if v != w]
    assert max(same) < np.percentile(other, 5)
    assert np.median(same) < 0.3 * np.median(other)


def test_skilled_forgeries_have_other_timing():
    """The forger's speed profile: lower peaks relative to his mean speed than the writer's ballistic strokes."""
    def peakiness(sig):
        v = np.linalg.norm(np.diff(sig.xy, axis=0), axis=1) / np.diff(sig.t)
        return np.percentile(v[sig.pen_down[1:]], 95) / sig.mean_speed
    g = [peakiness(genuine(w, 0)) for w in range(20)]
    f = [peakiness(skilled_forgery(w, 0)) for w in range(20)]
    assert np.mean(f) < np.mean(g)


# -- views ---------------------------------------------------------------------------
def test_trajectory_is_normalised_and_carries_the_timing():
    sig = genuine(3, 1)
    tr = trajectory(sig)
    assert tr.shape == (sig.num_points, 4)
    assert np.allclose(tr[:, :2].mean(axis=0), 0, atol=1e-12)
    assert np.sqrt(np.mean(np.sum(tr[:, :2] ** 2, axis=1))) == pytest.approx(1.0)
    assert np.array_equal(tr[:, 2], sig.pen_down.astype(float))
    assert np.allclose(tr[1:, 3], np.diff(sig.t) * 10)
    moved = dataclasses.replace(sig, xy=sig.xy * 3 + 5)
    assert np.allclose(trajectory(moved), tr)


def test_image_and_resampled_views_lose_the_timing():
    sig = genuine(4, 2)
    slow = dataclasses.replace(sig, t=sig.t * 1.7)
    assert np.array_equal(image(sig), image(slow))
    assert np.array_equal(resampled(sig), resampled(slow))
    assert not np.allclose(trajectory(sig), trajectory(slow))
    img = image(sig, 32)
    assert img.shape == (32, 32) and img.min() >= 0 and img.max() == 1.0
    assert 0.03 < np.mean(img > 0.2) < 0.6
    r = resampled(sig, 50)
    assert r.shape == (50, 3) and set(np.unique(r[:, 2])) <= {0.0, 1.0}
    if sig.num_pen_ups:
        assert r[:, 2].min() == 0.0


def test_encoder_features_subsample_keeps_pen_lifts():
    sig = genuine(5, 0)                     # writer 5 lifts the pen at least once
    assert sig.num_pen_ups >= 1
    full = encoder_features(sig, 1)
    assert np.allclose(full[:, :4], trajectory(sig))
    assert np.allclose(full[1:, 4:], np.diff(full[:, :2], axis=0))
    half = encoder_features(sig, 3)
    assert half.shape[0] == (sig.num_points + 2) // 3
    assert np.count_nonzero(half[1:, 2] == 0) == sig.num_pen_ups
    assert np.allclose(half[1:, 3], np.diff(sig.t[::3]) * 10)


def test_pad_batch():
    xs, mask = pad_batch([np.ones((3, 2)), 2 * np.ones((5, 2))])
    assert xs.shape == (5, 2, 2) and mask.sum(axis=0).tolist() == [3, 5]
    assert np.all(xs[3:, 0] == 0) and np.all(xs[:, 1] == 2)


# -- verification --------------------------------------------------------------------
def _dtw_reference(a, b, band):
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    width = band + 1.0 / min(n, m)
    for i in range(n):
        for j in range(m):
            if abs(i / n - j / m) <= width:
                D[i + 1, j + 1] = np.linalg.norm(a[i] - b[j]) + min(D[i, j + 1], D[i + 1, j], D[i, j])
    return D[n, m] / (n + m)


@pytest.mark.parametrize("n,m,band", [(5, 7, 0.2), (30, 21, 0.1), (1, 4, 0.2), (13, 13, 1.0), (40, 12, 0.05)])
def test_dtw_equals_the_textbook_recursion(n, m, band):
    rng = np.random.default_rng(n * m)
    a, b = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
    assert dtw(a, b, band) == pytest.approx(_dtw_reference(a, b, band), rel=1e-12)
    assert dtw(a, a, band) < 1e-7


def test_dtw_ignores_a_change_of_pace():
    a = np.sin(np.linspace(0, 6, 60))[:, None]
    b = np.sin(np.linspace(0, 6, 60) ** 1.3 / 6 ** 0.3)[:, None]     # same values, other timing
    c = np.cos(np.linspace(0, 6, 60))[:, None]
    assert dtw(a, b, 0.3) < 0.2 * dtw(a, c, 0.3)


def test_equal_error_rate():
    assert equal_error_rate([0.1, 0.2, 0.3], [0.4, 0.5]) == 0.0
    assert equal_error_rate([0.4, 0.5], [0.1, 0.2, 0.3]) == 1.0
    assert equal_error_rate([1.0, 2.0], [1.5, 0.5]) == 0.5
    rng = np.random.default_rng(0)
    g, f = rng.normal(0, 1, 20000), rng.normal(2, 1, 20000)       # Gaussians 2 apart: EER = Phi(-1)
    assert equal_error_rate(g, f) == pytest.approx(0.1587, abs=0.006)
    # one of 10 genuine beyond every forgery, the rest below: EER 10 % whatever the gap
    g = np.r_[np.zeros(9), 10.0]
    assert equal_error_rate(g, np.arange(1.0, 9.0)) == pytest.approx(0.1, abs=1e-12)


def test_error_curves_are_monotone_and_span_zero_to_one():
    rng = np.random.default_rng(1)
    th, far, frr = error_curves(rng.normal(size=50), rng.normal(1, 1, size=70))
    assert far[0] == 0 and frr[0] == 1 and far[-1] == 1 and frr[-1] == 0
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(frr) <= 0) and np.all(np.diff(th) > 0)
    with pytest.raises(ValueError, match="genuine, forgery"):
        error_curves([], [1.0])


def test_reference_scores_and_probit():
    d = np.array([[1.0, 3.0], [2.0, 2.0]])
    among = np.array([[0.0, 4.0], [4.0, 0.0]])
    assert np.allclose(reference_scores(d, among), [0.5, 0.5])
    with pytest.raises(ValueError, match="distance_to_refs"):
        reference_scores(d, np.zeros((3, 3)))
    assert np.allclose(probit([0.5, 0.8413447, 0.0227501]), [0.0, 1.0, -2.0], atol=1e-5)


def test_triplet_loss_gradient_matches_finite_differences():
    from tasks.verification import triplet_loss
    rng = np.random.default_rng(3)
    emb = [rng.normal(size=(5, 4)) for _ in range(3)]
    emb[2][0] = emb[0][0] + 3.0          # one easy triplet (z << 0), the others mixed
    value, grads = triplet_loss(*emb)
    eps = 1e-6
    for which in range(3):
        num = np.zeros_like(emb[which])
        for idx in np.ndindex(*emb[which].shape):
            up = [e.copy() for e in emb]
            down = [e.copy() for e in emb]
            up[which][idx] += eps
            down[which][idx] -= eps
            num[idx] = (triplet_loss(*up)[0] - triplet_loss(*down)[0]) / (2 * eps)
        assert np.allclose(grads[which], num, rtol=1e-6, atol=1e-9), which
    z = np.sum((emb[0] - emb[1]) ** 2, 1) - np.sum((emb[0] - emb[2]) ** 2, 1)
    assert value == pytest.approx(np.mean(np.log1p(np.exp(z))))
    with pytest.raises(ValueError, match="anchor, positive, negative"):
        triplet_loss(emb[0], emb[1], emb[2][:3])


# -- the experiment's encoders -------------------------------------------------------
@pytest.mark.parametrize("family", ["LSTM / trajectory", "BiLSTM / trajectory", "MLP / resampled"])
def test_embedding_gradient_through_pooling_matches_finite_differences(family):
    """Triplet loss on mean-pooled, masked encoder outputs: the model's grads equal central differences."""
    from tasks.experiments.signatures import build, embed_backward, embed_forward
    from tasks.verification import triplet_loss

    cfg = {"embed": 3, "dtype": "float64", "image_size": 16, "resample": 4}
    model = build(family, {"hidden": 4}, cfg, seed=2)
    rng = np.random.default_rng(0)
    for p in model.params.values():
        p += rng.normal(0, 0.1, size=p.shape)             # non-zero biases
    if "trajectory" in family:
        items = [rng.normal(size=(T, 6)) for T in (5, 3, 7, 4, 6, 2)]
    else:
        items = [rng.normal(size=12) for _ in range(6)]

    def loss():
        _, e, _ = embed_forward(model, items)
        return triplet_loss(e[:2], e[2:4], e[4:])[0]

    graph, e, mask = embed_forward(model, items)
    value, (da, dp, dn) = triplet_loss(e[:2], e[2:4], e[4:])
    model.zero_grad()
    embed_backward(graph, mask, np.concatenate([da, dp, dn]))
    eps = 1e-6
    for name, p in model.params.items():
        for idx in [tuple(rng.integers(s) for s in p.shape) for _ in range(3)]:
            old = p[idx]
            p[idx] = old + eps
            up = loss()
            p[idx] = old - eps
            down = loss()
            p[idx] = old
            assert model.grads[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), name


def test_padding_does_not_change_an_embedding():
    from tasks.experiments.signatures import build, embed_forward

    model = build("GRU / trajectory", {"hidden": 5}, {"embed": 4, "dtype": "float64"}, seed=0)
    rng = np.random.default_rng(1)
    short, long = rng.normal(size=(3, 6)), rng.normal(size=(9, 6))
    _, alone, _ = embed_forward(model, [short])
    _, both, _ = embed_forward(model, [short, long])
    assert np.allclose(alone[0], both[0], atol=1e-12)


@pytest.mark.slow
def test_quick_run_writes_a_fair_record(tmp_path):
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import resource

    root = Path(__file__).resolve().parent.parent
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tasks", "run", "signatures", "--quick", "--out", str(tmp_path)],
                          cwd=root, env=dict(os.environ, MPLBACKEND="Agg"), capture_output=True, text=True,
                          timeout=300)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "results.json").read_text())
    res = r.get("results", r)
    names = {"MLP / image", "CNN / image", "MLP / resampled", "LSTM / trajectory", "GRU / trajectory",
             "BiLSTM / trajectory"}
    assert set(res["eer"]) == names | {"DTW", "trivial features"}
    for v in res["eer"].values():
        assert 0.0 <= v["skilled"] <= 1.0 and 0.0 <= v["random"] <= 1.0
    fair = res["fairness"]
    assert set(fair["chosen"]) == names and len({len(g) for g in fair["grids"].values()}) == 1
    assert fair["budget"] == res["config"]["budget"] | {"seconds": None}
    for name in names:
        m = res["models"][name]
        assert m["validation"] == min(g["validation"] for g in m["grid"])       # chosen on validation
        assert m["used"]["epochs"] <= fair["budget"]["max_epochs"]
    for f in res["figures"]:
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"
    # the work, not the wall clock: on a machine shared by several runs the wall time says little
    assert cpu < 30, f"--quick used {cpu:.1f} s of CPU ({seconds:.1f} s wall)"


def test_component_path_is_the_sum_of_its_strokes_displacements():
    """The vectorised path (all strokes at once) against stroke_displacement one stroke at a time."""
    import tasks.data.signatures.lognormal as lg
    t = np.linspace(0.0, 1.5, 301)
    for w in range(5):
        for comp in writer_template(w).components:
            comp = comp + (Stroke(0.1, 0.8, -1.5, 0.3, 0.7, 0.7),)       # and a straight stroke
            expect = sum(stroke_displacement(t, s) for s in comp)
            assert np.allclose(lg._component_path(comp, t), expect, atol=1e-12)


@pytest.mark.slow
def test_quick_run_gives_the_same_numbers_serial_and_parallel(tmp_path):
    """Trials carry their own seeds and data are per-index: --jobs 2 equals --jobs 1 (timings aside)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def run(jobs):
        out = tmp_path / f"jobs{jobs}"
        proc = subprocess.run([sys.executable, "-m", "tasks", "run", "signatures", "--quick", "--jobs", str(jobs),
                               "--out", str(out)], cwd=root, env=dict(os.environ, MPLBACKEND="Agg"),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "results.json").read_text())

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "seconds"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    one, two = run(1), run(2)
    for key in ("eer", "models", "dtw", "trivial", "targets", "fairness"):
        assert strip(one[key]) == strip(two[key]), key
