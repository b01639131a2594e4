"""Memory-saving BPTT, ``rnnbp.unroll(..., recompute=k)``: bit-identical to full BPTT.

The cells work in time blocks aligned at multiples of ``time_block(B)`` from
the first step, and ``unroll`` rounds k up to a multiple of it, so every
recomputed segment performs exactly the floating-point operations of the
full walk. A batch of 256 makes the block 4 steps, so short sequences have
many segments.
"""

import tracemalloc

import numpy as np
import pytest

import rnnbp
from tests.helpers import random_biases
from rnnbp.cells import time_block

B, D = 256, 3
assert time_block(B) == 4


MODELS = {
    "elman": lambda dt: rnnbp.Elman(D, 4, dtype=dt, seed=0),
    "elman-relu": lambda dt: rnnbp.Elman(D, 4, "relu", dtype=dt, seed=0),
    "lstm": lambda dt: rnnbp.LSTM(D, 4, dtype=dt, seed=0),
    "gru": lambda dt: rnnbp.GRU(D, 4, dtype=dt, seed=0),
    "stack": lambda dt: rnnbp.Sequential(
        rnnbp.LSTM(D, 5, dtype=dt, seed=0), rnnbp.Dropout(0.3, seed=7), rnnbp.GRU(5, 4, dtype=dt, seed=1),
        rnnbp.Elman(4, 3, dtype=dt, seed=2), rnnbp.Linear(3, 2, dtype=dt, seed=3)),
}


def _model(name, dtype=np.float64):
    return random_biases(MODELS[name](dtype), np.random.default_rng(11))


def _mask(T):
    lengths = np.random.default_rng(5).integers(0, T + 1, size=B)
    lengths[:3] = [0, 1, T]
    return np.arange(T)[:, None] < lengths[None, :]


def _reseed(model):
    for _, leaf in model.leaves():
        if isinstance(leaf, rnnbp.Dropout):
            leaf.rng = np.random.default_rng(7)
    return model


def _run(model, xs, dys, state, dstate, mask, recompute):
    """Gradients, dxs, dstate0 and records of one unroll + backward (Dropout reseeded)."""
    _reseed(model)
    model.zero_grad()
    graph = rnnbp.unroll(model, xs, state, mask, recompute=recompute)
    dxs, d0 = graph.backward(dys, dstate)
    return dict(graph=graph, outputs=graph.outputs, final=graph.final_state, dxs=dxs, d0=d0,
                grads={k: g.copy() for k, g in model.grads.items()},
                norms=dict(graph.state_grad_norms_per_sequence))


def _data(model, T, dtype, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, B, D)).astype(dtype)
    state = model.unflatten_state([
        type(s)(*[rng.normal(size=a.shape).astype(dtype) for a in s]) if hasattr(s, "_fields")
        else tuple(rng.normal(size=a.shape).astype(dtype) for a in s)
        for s in model.flatten_state(model.initial_state(B))])
    out_size = model.output_size
    dys = rng.normal(size=(T, B, out_size)).astype(dtype)
    dstate = model.unflatten_state([
        type(s)(*[rng.normal(size=a.shape).astype(dtype) for a in s]) if hasattr(s, "_fields")
        else tuple(rng.normal(size=a.shape).astype(dtype) for a in s)
        for s in model.flatten_state(model.initial_state(B))])
    return xs, state, dys, dstate


def _leaves(tree):
    if isinstance(tree, np.ndarray):
        return [tree]
    return [a for t in tree for a in _leaves(t)]


def assert_identical(a, b):
    np.testing.assert_array_equal(a["outputs"], b["outputs"])
    np.testing.assert_array_equal(a["dxs"], b["dxs"])
    for x, y in zip(_leaves(a["final"]), _leaves(b["final"]), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(_leaves(a["d0"]), _leaves(b["d0"]), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a["grads"].keys() == b["grads"].keys()
    for k in a["grads"]:
        np.testing.assert_array_equal(a["grads"][k], b["grads"][k], err_msg=k)
    assert a["norms"].keys() == b["norms"].keys() and a["norms"]
    for k in a["norms"]:
        np.testing.assert_array_equal(a["norms"][k], b["norms"][k], err_msg=k)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("masked", [False, True])
# (k asked, k used): rounded up to the 4-step block; True is ceil(sqrt(23)) = 5 -> 8; k >= T is one segment.
@pytest.mark.parametrize("k,used", [(1, 4), (5, 8), (8, 8), (23, 24), (1000, 1000), (True, 8)])
def test_bit_identical_to_full_bptt_float64(name, masked, k, used):
    T = 23                                   # not a multiple of any segment length used
    model = _model(name)
    xs, state, dys, dstate = _data(model, T, np.float64)
    mask = _mask(T) if masked else None
    full = _run(model, xs, dys, state, dstate, mask, None)
    seg = _run(model, xs, dys, state, dstate, mask, k)
    assert full["graph"].recompute is None
    assert seg["graph"].recompute == used
    assert_identical(full, seg)


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
def test_bit_identical_with_a_large_time_block(name):
    # B = 3: blocks of 128 steps (the longest), so k = 1 becomes 128 and T = 200 has two segments.
    model = _model(name)
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(200, 3, D))
    dys = rng.normal(size=(200, 3, model.output_size))
    full = _run(model, xs, dys, None, None, None, None)
    seg = _run(model, xs, dys, None, None, None, 1)
    assert seg["graph"].recompute == 128
    assert_identical(full, seg)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float32_runs_and_matches(name):
    model = _model(name, np.float32)
    xs, state, dys, dstate = _data(model, 19, np.float32)
    mask = _mask(19)
    full = _run(model, xs, dys, state, dstate, mask, None)
    seg = _run(model, xs, dys, state, dstate, mask, 4)
    assert seg["dxs"].dtype == np.float32
    assert all(g.dtype == np.float32 for g in seg["grads"].values())
    assert_identical(full, seg)


def test_inspection_recomputes_states():
    model = _model("stack")
    xs, state, dys, dstate = _data(model, 13, np.float64)
    full = rnnbp.unroll(_reseed(model), xs, state)
    seg = rnnbp.unroll(_reseed(model), xs, state, recompute=4)
    for name in full.layer_names:
        for a, b in zip(full.layer_states(name), seg.layer_states(name), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(full.layer_outputs(name), seg.layer_outputs(name))
    for x, y in zip(_leaves(full.state_at(7)), _leaves(seg.state_at(7)), strict=True):
        np.testing.assert_array_equal(x, y)


def test_recompute_can_walk_back_twice():
    model = _model("lstm")
    xs, state, dys, dstate = _data(model, 17, np.float64)
    graph = rnnbp.unroll(model, xs, state, recompute=4)
    model.zero_grad()
    graph.backward(dys)
    once = {k: g.copy() for k, g in model.grads.items()}
    graph.backward(dys)
    # The cells add block by block into grads, so the second walk's sum is
    # rounded against the first's: equal to 2x up to rounding, not bit for bit.
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-13, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("bad,error,match", [
    (0, ValueError, "recompute: expected a positive number of steps per segment, got 0"),
    (-3, ValueError, "recompute: expected a positive number of steps per segment, got -3"),
    (2.5, TypeError, "recompute: expected True, False, None or a positive int, got float 2.5"),
    ("4", TypeError, "recompute: expected True, False, None or a positive int, got str '4'"),
])
def test_bad_k_raises_a_clear_error(bad, error, match):
    model = _model("lstm")
    with pytest.raises(error, match=match):
        rnnbp.unroll(model, np.zeros((5, B, D)), recompute=bad)


def test_default_k_is_about_sqrt_T():
    model = _model("gru")
    graph = rnnbp.unroll(model, np.zeros((100, B, D)), recompute=True)
    assert graph.recompute == 12              # ceil(sqrt(100)) = 10, rounded up to the 4-step block
    assert rnnbp.unroll(model, np.zeros((100, B, D)), recompute=False).recompute is None


@pytest.mark.slow
def test_recompute_keeps_a_fraction_of_the_memory():
    """numpy reports its allocations to tracemalloc: the graph keeps checkpoints, not caches."""
    model = rnnbp.LSTM(8, 32, seed=0)
    xs = np.random.default_rng(0).normal(size=(400, B, 8))
    peaks = {}
    for k in (None, 20):
        tracemalloc.start()
        graph = rnnbp.unroll(model, xs, recompute=k)
        held = tracemalloc.get_traced_memory()[0]
        graph.backward(np.ones_like(graph.outputs))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del graph
        peaks[k] = (held, peak)
    step = B * 32 * 8                          # bytes of one (B, H) float64 array
    # Full BPTT holds its cache: hs, cs (T + 1 each) and four gates, plus the outputs.
    assert peaks[None][0] > 7 * 400 * step
    # Recompute holds the outputs and 20 checkpoints of (h, c); its peak adds one segment.
    assert peaks[20][0] < 1.2 * 400 * step
    assert peaks[20][1] < 0.5 * peaks[None][1]
