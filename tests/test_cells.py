"""Tests of the recurrent cells, parametrised over every cell.

Gradients are checked against central differences in float64 with random
non-zero biases and a random upstream gradient (an all-ones one would hide
transposition bugs); the fast sequence path is pinned to the base-class
step loop.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnbp.cells import GRU, LSTM, Elman, LSTMState, time_block
from rnnbp.protocol import Layer
from tests.helpers import random_biases

T, B, D, H = 5, 3, 4, 5
TOL = 1e-6

CELLS = {
    "elman_tanh": lambda **kw: Elman(D, H, "tanh", **kw),
    "elman_relu": lambda **kw: Elman(D, H, "relu", **kw),
    "lstm": lambda **kw: LSTM(D, H, **kw),
    "gru": lambda **kw: GRU(D, H, **kw),
}


@pytest.fixture(params=list(CELLS))
def kind(request):
    return request.param


def make(kind, dtype=np.float64, seed=0):
    """A cell with random non-zero biases (so bias bugs cannot hide behind zeros)."""
    return random_biases(CELLS[kind](dtype=dtype, seed=seed), np.random.default_rng(seed + 100))


def data(cell, rng, T=T, B=B):
    dt = cell.dtype
    xs = rng.standard_normal((T, B, D)).astype(dt)
    state = tuple(rng.standard_normal((B, n)).astype(dt) for n in cell.state_sizes)
    R = rng.standard_normal((T, B, H)).astype(dt)
    Rs = tuple(rng.standard_normal((B, n)).astype(dt) for n in cell.state_sizes)
    return xs, state, R, Rs


def lengths_mask(lengths, T=T):
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


# -- central differences --------------------------------------------------------

def numeric_grad(f, arr, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to ``arr`` (perturbed in place)."""
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        fp = f()
        flat[k] = old - eps
        fm = f()
        flat[k] = old
        gflat[k] = (fp - fm) / (2 * eps)
    return g


def rel_err(a, n):
    return float(np.abs(a - n).max() / max(np.abs(a).max(), np.abs(n).max(), 1e-8))


def check_grads(cell, run, back, x, state, R, Rs, x_name):
    """Worst relative error per array (params, ``x``, initial state) of ``back`` after ``run``.

    ``run(x, state) -> (y, state_out, cache)`` and ``back(R, Rs, cache) ->
    (dx, dstate)`` are a cell's step or sequence pair; the loss is
    ``sum(y * R) + sum(state_out * Rs)``.
    """
    state = tuple(s.copy() for s in state)

    def loss():
        y, s_out, _ = run(x, state)
        return float(np.sum(y * R) + sum(np.sum(s * r) for s, r in zip(s_out, Rs)))

    cell.zero_grad()
    _, _, cache = run(x, state)
    dx, dstate = back(R, Rs, cache)
    errors = {name: rel_err(cell.grads[name], numeric_grad(loss, p)) for name, p in cell.params.items()}
    errors[x_name] = rel_err(dx, numeric_grad(loss, x))
    for k, s in enumerate(state):
        errors[f"state[{k}]"] = rel_err(dstate[k], numeric_grad(loss, s))
    return errors


def check_seq_grads(cell, xs, state, R, Rs, mask=None):
    """``check_grads`` through ``forward_seq``/``backward_seq``."""
    return check_grads(cell, lambda x, s: cell.forward_seq(x, s, mask), cell.backward_seq, xs, state, R, Rs, "xs")


def check_step_grads(cell, x, state, R, Rs):
    """``check_grads`` through one ``forward``/``backward`` step."""
    return check_grads(cell, cell.forward, cell.backward, x, state, R, Rs, "x")


def assert_small(errors):
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"relative errors above {TOL}: {bad}"


def test_gradcheck_step(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(1))
    assert_small(check_step_grads(cell, xs[0], state, R[0], Rs))


def test_gradcheck_sequence(kind):
    cell = make(kind)
    assert_small(check_seq_grads(cell, *data(cell, np.random.default_rng(2))))


def test_gradcheck_masked(kind):
    cell = make(kind)
    mask = lengths_mask([0, 2, T])          # an empty sequence, a short one, a full one
    assert_small(check_seq_grads(cell, *data(cell, np.random.default_rng(3)), mask=mask))


def test_gradcheck_step_loop_masked(kind):
    # The base-class loop over this cell's step methods is the reference the
    # fast path is pinned to: check it against finite differences too.
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(4))
    mask = lengths_mask([3, 0, T])
    state = tuple(s.copy() for s in state)

    def loss():
        ys, sT, _ = Layer.forward_seq(cell, xs, state, mask)
        return float(np.sum(ys * R) + sum(np.sum(s * r) for s, r in zip(sT, Rs)))

    _, _, cache = Layer.forward_seq(cell, xs, state, mask)
    dxs, dstate0 = Layer.backward_seq(cell, R, Rs, cache)
    errors = {name: rel_err(cell.grads[name], numeric_grad(loss, p)) for name, p in cell.params.items()}
    errors["xs"] = rel_err(dxs, numeric_grad(loss, xs))
    errors.update({f"state[{k}]": rel_err(dstate0[k], numeric_grad(loss, s)) for k, s in enumerate(state)})
    assert_small(errors)


# -- fast path == step loop -------------------------------------------------------

def run_both(cell, xs, state, R, Rs, mask):
    out = {}
    for label, fwd, bwd in (("fast", cell.forward_seq, cell.backward_seq),
                            ("loop", lambda *a: Layer.forward_seq(cell, *a),
                             lambda *a: Layer.backward_seq(cell, *a))):
        cell.zero_grad()
        ys, sT, cache = fwd(xs, state, mask)
        record = np.full((xs.shape[0], xs.shape[1]), np.nan)
        dxs, d0 = bwd(R, Rs, cache, record)
        out[label] = dict(ys=ys, sT=sT, dxs=dxs, d0=d0, record=record,
                          states=cell.seq_states(cache),
                          grads={k: v.copy() for k, v in cell.grads.items()})
    return out["fast"], out["loop"]


@pytest.mark.parametrize("masked", [False, True])
def test_fast_path_equals_step_loop(kind, masked):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(5), T=7, B=4)
    mask = lengths_mask([0, 3, 7, 5], T=7) if masked else None
    fast, loop = run_both(cell, xs, state, R, Rs, mask)
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast["ys"], loop["ys"], **close)
    np.testing.assert_allclose(fast["dxs"], loop["dxs"], **close)
    np.testing.assert_allclose(fast["record"], loop["record"], **close)
    for a, b in zip(fast["sT"], loop["sT"], strict=True):
        np.testing.assert_allclose(a, b, **close)
    for a, b in zip(fast["d0"], loop["d0"], strict=True):
        np.testing.assert_allclose(a, b, **close)
    for a, b in zip(fast["states"], loop["states"], strict=True):
        assert a.shape == (8, 4, H)
        np.testing.assert_allclose(a, b, **close)
    for name in cell.grads:
        np.testing.assert_allclose(fast["grads"][name], loop["grads"][name], **close, err_msg=name)
    if masked:
        assert np.all(fast["ys"][:, 0] == 0)                  # the empty sequence outputs zeros
        np.testing.assert_array_equal(fast["sT"][0][0], state[0][0])   # and keeps its state
        np.testing.assert_array_equal(fast["d0"][0][0], Rs[0][0])      # gradient passes through


@pytest.mark.parametrize("masked", [False, True])
def test_fast_path_equals_step_loop_over_many_time_blocks(kind, masked):
    # B = 256 makes the fast path's time block 4 steps: T = 11 is two full
    # blocks and a partial one, with masks ending inside and across blocks.
    Bm, Tm = 256, 11
    assert time_block(Bm) == 4
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(15), T=Tm, B=Bm)
    mask = None
    if masked:
        lengths = np.random.default_rng(16).integers(0, Tm + 1, size=Bm)
        lengths[:3] = [0, 5, Tm]
        mask = lengths_mask(lengths, T=Tm)
    fast, loop = run_both(cell, xs, state, R, Rs, mask)
    close = dict(rtol=1e-12, atol=1e-12)
    for key in ("ys", "dxs", "record"):
        np.testing.assert_allclose(fast[key], loop[key], **close, err_msg=key)
    for key in ("sT", "d0", "states"):
        for a, b in zip(fast[key], loop[key], strict=True):
            np.testing.assert_allclose(a, b, **close, err_msg=key)
    for name in cell.grads:
        np.testing.assert_allclose(fast["grads"][name], loop["grads"][name], **close, err_msg=name)


def test_record_is_total_gradient_at_h(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(6))
    _, _, cache = cell.forward_seq(xs, state)
    record = np.empty((T, B))
    cell.backward_seq(R, Rs, cache, record)
    # At the last step the total gradient reaching h_T is dy_T + dh_T.
    np.testing.assert_allclose(record[-1], np.linalg.norm(R[-1] + Rs[0], axis=1), rtol=1e-12)


# -- accumulation, caches, zero_grad --------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
def test_two_backward_calls_double_grads(kind, masked):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(7))
    mask = lengths_mask([1, 0, T]) if masked else None
    _, _, cache = cell.forward_seq(xs, state, mask)
    before = {k: v.copy() for k, v in vars_of(cache).items()}
    R_copy = R.copy()
    dxs1, d1 = cell.backward_seq(R, Rs, cache)
    once = {k: v.copy() for k, v in cell.grads.items()}
    dxs2, d2 = cell.backward_seq(R, Rs, cache)
    for name, g in cell.grads.items():
        np.testing.assert_array_equal(g, 2 * once[name], err_msg=name)
    np.testing.assert_array_equal(dxs1, dxs2)
    for a, b in zip(d1, d2):
        np.testing.assert_array_equal(a, b)
    for k, v in vars_of(cache).items():                       # the cache is not mutated
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    np.testing.assert_array_equal(R, R_copy)                  # nor the upstream gradient


def vars_of(cache):
    return {k: v for k, v in cache._asdict().items() if isinstance(v, np.ndarray)}


def test_step_backward_accumulates(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(8))
    _, _, cache = cell.forward(xs[0], state)
    cell.backward(R[0], Rs, cache)
    once = {k: v.copy() for k, v in cell.grads.items()}
    cell.backward(R[0], Rs, cache)
    for name, g in cell.grads.items():
        np.testing.assert_array_equal(g, 2 * once[name], err_msg=name)


def test_zero_grad_in_place(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(9))
    held = dict(cell.grads)
    _, _, cache = cell.forward_seq(xs, state)
    cell.backward_seq(R, Rs, cache)
    assert all(np.any(g != 0) for g in cell.grads.values())
    cell.zero_grad()
    for name, g in cell.grads.items():
        assert g is held[name]
        assert not g.any()


def test_forward_does_not_mutate(kind):
    cell = make(kind)
    xs, state, _, _ = data(cell, np.random.default_rng(10))
    params = {k: v.copy() for k, v in cell.params.items()}
    xs_copy, state_copy = xs.copy(), tuple(s.copy() for s in state)
    cell.forward_seq(xs, state, lengths_mask([1, 2, 3]))
    cell.forward(xs[0], state)
    for k, v in cell.params.items():
        np.testing.assert_array_equal(v, params[k])
    np.testing.assert_array_equal(xs, xs_copy)
    for a, b in zip(state, state_copy):
        np.testing.assert_array_equal(a, b)


def test_outputs_do_not_alias_cache(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(11))
    ys, sT, cache = cell.forward_seq(xs, state)
    _, _, cache2 = cell.forward_seq(xs, state)
    ys[...] = 7.0
    for s in sT:
        s[...] = 7.0
    for s in state:
        s[...] = 7.0
    cell.zero_grad()
    cell.backward_seq(R, Rs, cache)
    g1 = {k: v.copy() for k, v in cell.grads.items()}
    cell.zero_grad()
    cell.backward_seq(R, Rs, cache2)
    for name, g in cell.grads.items():
        np.testing.assert_array_equal(g, g1[name])
    for a in cell.seq_states(cache):
        assert not a.flags.writeable


# -- float32 --------------------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
def test_float32_end_to_end(kind, masked):
    cell32, cell64 = make(kind, np.float32), make(kind, np.float64)
    xs, state, R, Rs = data(cell32, np.random.default_rng(12))
    mask = lengths_mask([2, 0, T]) if masked else None
    with np.errstate(all="raise"):
        ys, sT, cache = cell32.forward_seq(xs, state, mask)
        dxs, d0 = cell32.backward_seq(R, Rs, cache, np.empty((T, B), np.float32))
        y, s1, step_cache = cell32.forward(xs[0], state)
        dx, ds = cell32.backward(R[0], Rs, step_cache)
    arrays = [ys, dxs, y, dx, *sT, *d0, *s1, *ds, *cell32.seq_states(cache), *cell32.grads.values()]
    assert all(a.dtype == np.float32 for a in arrays), [a.dtype for a in arrays]
    assert all(p.dtype == np.float32 for p in cell32.params.values())
    # Same numbers as float64 up to single precision.
    cell32.zero_grad()
    cell32.backward_seq(R, Rs, cache)
    up = lambda a: a.astype(np.float64)  # noqa: E731
    ys64, _, cache64 = cell64.forward_seq(up(xs), tuple(map(up, state)), mask)
    dxs64, _ = cell64.backward_seq(up(R), tuple(map(up, Rs)), cache64)
    np.testing.assert_allclose(ys, ys64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dxs, dxs64, rtol=1e-4, atol=1e-4)
    for name in cell32.grads:
        np.testing.assert_allclose(cell32.grads[name], cell64.grads[name], rtol=1e-4, atol=1e-4)


def test_saturated_gates_are_stable(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(13))
    with np.errstate(all="raise"):            # no overflow in the sigmoid
        ys, sT, cache = cell.forward_seq(xs * 1e4, state)
        cell.backward_seq(R, Rs, cache)
        cell.forward(xs[0] * -1e4, state)
    assert np.all(np.isfinite(ys))


# -- argument checks ------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(kind):
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(14))
    with pytest.raises(ValueError, match=r"xs: expected shape \(T, B, 4\), got \(5, 3, 6\)"):
        cell.forward_seq(np.zeros((T, B, 6)), state)
    with pytest.raises(ValueError, match="xs: expected a 3-d array"):
        cell.forward_seq(xs[0], state)
    with pytest.raises(TypeError, match="xs: expected dtype float64, got float32"):
        cell.forward_seq(xs.astype(np.float32), state)
    with pytest.raises(TypeError, match="xs: expected a numpy array"):
        cell.forward_seq(xs.tolist(), state)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 4\)"):
        cell.forward(np.zeros((B, 3)), state)
    with pytest.raises(TypeError, match="state: expected a tuple"):
        cell.forward_seq(xs, state + state)
    with pytest.raises(TypeError, match="state: expected a tuple"):
        cell.forward(xs[0], state[0])
    with pytest.raises(ValueError, match=r"state\[0\]: expected shape \(3, 5\), got \(2, 5\)"):
        cell.forward_seq(xs, (state[0][:2],) + state[1:])
    with pytest.raises(TypeError, match=r"state\[0\]: expected dtype float64"):
        cell.forward(xs[0], (state[0].astype(np.float32),) + state[1:])
    with pytest.raises(ValueError, match=r"mask: expected shape \(5, 3\)"):
        cell.forward_seq(xs, state, np.ones((T, B + 1), bool))
    with pytest.raises(TypeError, match="mask: expected dtype bool"):
        cell.forward_seq(xs, state, np.ones((T, B)))
    _, _, cache = cell.forward_seq(xs, state)
    with pytest.raises(ValueError, match=r"dys: expected shape \(5, 3, 5\)"):
        cell.backward_seq(R[:, :2], Rs, cache)
    with pytest.raises(TypeError, match="dys: expected dtype float64"):
        cell.backward_seq(R.astype(np.float32), Rs, cache)
    with pytest.raises(TypeError, match="dstate_T: expected a tuple"):
        cell.backward_seq(R, Rs[:0], cache)
    _, _, step_cache = cell.forward(xs[0], state)
    with pytest.raises(ValueError, match=r"dy: expected shape \(3, 5\)"):
        cell.backward(R[0, :2], Rs, step_cache)


def test_backward_seq_rejects_a_foreign_cache(kind):
    # backward_seq reads only its own forward_seq's cache: the step loop's
    # cache, a one-step cache or another cell's cache is a TypeError naming both.
    cell = make(kind)
    xs, state, R, Rs = data(cell, np.random.default_rng(17))
    expected = type(cell.forward_seq(xs, state)[2]).__name__
    assert expected == type(cell).__name__ + "Cache"
    other = make("gru" if kind == "lstm" else "lstm")
    foreign = {"step loop": Layer.forward_seq(cell, xs, state)[2],
               "one step": cell.forward(xs[0], state)[2],
               "another cell": other.forward_seq(xs, other.initial_state(B))[2]}
    for label, cache in foreign.items():
        with pytest.raises(TypeError, match=rf"cache: expected the {expected} .*got {type(cache).__name__}"):
            cell.backward_seq(R, Rs, cache)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_bad_constructor_arguments(cls):
    with pytest.raises(ValueError, match="init_hh: unknown initialiser 'orthogonall'.*orthogonal"):
        cls(3, 4, init_hh="orthogonall")
    with pytest.raises(ValueError, match="hidden_size"):
        cls(3, 0)
    with pytest.raises(TypeError, match="dtype"):
        cls(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="init_ih.*input_size == hidden_size"):
        cls(3, 4, init_ih="identity")


def test_bad_activation():
    with pytest.raises(ValueError, match="activation: expected 'tanh' or 'relu', got 'sigmoid'"):
        Elman(3, 4, "sigmoid")


# -- construction and configuration ------------------------------------------------------

def test_get_config_round_trip(kind):
    cell = CELLS[kind](dtype=np.float32, seed=3, init_ih="he_normal")
    config = cell.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["dtype"] == "float32"
    clone = type(cell)(**config, seed=3)
    assert clone.get_config() == config
    for name, p in cell.params.items():
        assert clone.params[name].dtype == p.dtype
        np.testing.assert_array_equal(clone.params[name], p)


def test_config_contents():
    assert Elman(2, 3, "relu", init_hh="identity").get_config() == {
        "input_size": 2, "hidden_size": 3, "activation": "relu", "dtype": "float64",
        "init_ih": "glorot_uniform", "init_hh": "identity"}
    assert LSTM(2, 3, forget_bias=0.5).get_config()["forget_bias"] == 0.5


def test_parameter_layout_and_initial_values():
    e = Elman(2, 3, seed=0)
    assert {k: v.shape for k, v in e.params.items()} == {"W_ih": (2, 3), "W_hh": (3, 3), "b": (3,)}
    assert e.state_sizes == (3,) and e.output_is_hidden and e.output_size == 3 and e.input_size == 2
    irnn = Elman(3, 3, "relu", init_hh="identity")
    np.testing.assert_array_equal(irnn.params["W_hh"], np.eye(3))
    lstm = LSTM(2, 3, seed=0, forget_bias=2.0)
    assert {k: v.shape for k, v in lstm.params.items()} == {"W_ih": (2, 12), "W_hh": (3, 12), "b": (12,)}
    np.testing.assert_array_equal(lstm.params["b"], [0, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0])
    assert lstm.state_sizes == (3, 3)
    assert not LSTM(2, 3, forget_bias=0.0).params["b"].any()
    gru = GRU(2, 3, seed=0)
    assert {k: v.shape for k, v in gru.params.items()} == {
        "W_ih": (2, 9), "W_hh": (3, 9), "b": (9,), "b_hn": (3,)}
    assert not gru.params["b"].any() and not gru.params["b_hn"].any()
    # each recurrent gate block is orthogonal by default
    Wg = lstm.params["W_hh"][:, 3:6]
    np.testing.assert_allclose(Wg.T @ Wg, np.eye(3), atol=1e-12)


def test_seed_and_rng_determinism(kind):
    a, b = CELLS[kind](seed=5), CELLS[kind](seed=5)
    c = CELLS[kind](rng=np.random.default_rng(5))
    d = CELLS[kind](seed=6)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        np.testing.assert_array_equal(a.params[name], c.params[name])
    assert not np.array_equal(a.params["W_ih"], d.params["W_ih"])


def test_lstm_state_is_named_tuple():
    cell = LSTM(2, 3, seed=0)
    s0 = cell.initial_state(4)
    assert isinstance(s0, LSTMState) and s0.h.shape == (4, 3) and s0.c.shape == (4, 3)
    xs = np.ones((2, 4, 2))
    ys, sT, cache = cell.forward_seq(xs, s0)
    assert isinstance(sT, LSTMState)
    _, s1, step_cache = cell.forward(xs[0], s0)
    assert isinstance(s1, LSTMState)
    _, d0 = cell.backward_seq(np.ones_like(ys), sT, cache)
    assert isinstance(d0, LSTMState)
    assert isinstance(cell.seq_states(cache), LSTMState)
    np.testing.assert_array_equal(ys[-1], sT.h)


@pytest.mark.parametrize("cls", [Elman, LSTM, GRU])
def test_the_sequence_path_keeps_nothing_in_the_layer(cls):
    """No buffer pool: after a graph is dropped, the layer holds its parameters and gradients only."""
    import gc
    import weakref

    import rnnbp

    cell = cls(3, 4, dtype=np.float32, seed=0)
    before = {k: id(v) for k, v in vars(cell).items()}
    graph = rnnbp.unroll(cell, np.ones((40, 2, 3), np.float32))
    graph.backward(np.ones_like(graph.outputs))
    hs = weakref.ref(graph.layer_states("")[0].base if graph.layer_states("")[0].base is not None
                     else graph.layer_states("")[0])
    del graph
    gc.collect()
    assert hs() is None                                  # the cache is freed with the graph
    assert {k: id(v) for k, v in vars(cell).items()} == before
