"""The cells' workspace pool (``rnnbp._workspace``): reuse only what nobody can see, bit-identical results."""

import copy
import threading

import numpy as np
import pytest

import rnnbp
from rnnbp import _workspace

T, B, D, H = 23, 64, 5, 7           # time_block(64) = 16, T not a multiple of it; _MIN_BYTES lowered below


@pytest.fixture(autouse=True)
def pool_everything(monkeypatch):
    """Pool every array, however small, so that these small cases exercise the pool."""
    monkeypatch.setattr(_workspace, "_MIN_BYTES", 0)
    monkeypatch.setattr(_workspace, "ENABLED", True)


CELLS = {
    "elman_tanh": lambda dt: rnnbp.Elman(D, H, dtype=dt, seed=1),
    "elman_relu": lambda dt: rnnbp.Elman(D, H, activation="relu", dtype=dt, seed=1),
    "lstm": lambda dt: rnnbp.LSTM(D, H, dtype=dt, seed=1),
    "gru": lambda dt: rnnbp.GRU(D, H, dtype=dt, seed=1),
}


def _randomise(model, seed=2):
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.normal(scale=0.5, size=p.shape)
    return model


def _model(name, dt=np.float64):
    return _randomise(CELLS[name](dt))


def _data(seed, dt=np.float64, masked=False, T=T):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, B, D)).astype(dt)
    dys = rng.normal(size=(T, B, H)).astype(dt)
    mask = rng.random((T, B)) > 0.3 if masked else None
    return xs, dys, mask


def _step(model, xs, dys, mask=None, recompute=None):
    model.zero_grad()
    graph = rnnbp.unroll(model, xs, mask=mask, recompute=recompute)
    dxs, dstate = graph.backward(dys)
    return (graph.outputs.copy(), dxs, [s.copy() for s in dstate],
            {k: g.copy() for k, g in model.grads.items()})


def _assert_same(a, b):
    ys_a, dxs_a, ds_a, g_a = a
    ys_b, dxs_b, ds_b, g_b = b
    np.testing.assert_array_equal(ys_a, ys_b)
    np.testing.assert_array_equal(dxs_a, dxs_b)
    for x, y in zip(ds_a, ds_b):
        np.testing.assert_array_equal(x, y)
    for k in g_a:
        np.testing.assert_array_equal(g_a[k], g_b[k])


def _pool(model):
    return model.__dict__["_ws"]


def _ptr(a):
    return a.__array_interface__["data"][0]


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_bit_identical_with_and_without_reuse(name, masked, dt, monkeypatch):
    pooled, fresh = _model(name, dt), _model(name, dt)
    runs = [_data(s, dt, masked) for s in range(4)] + [_data(9, dt, masked, T=11)] + [_data(4, dt, masked)]
    got = [_step(pooled, *r) for r in runs]
    assert len(_pool(pooled)) > 0                        # the pool was used
    monkeypatch.setattr(_workspace, "ENABLED", False)
    want = [_step(fresh, *r) for r in runs]
    for a, b in zip(got, want):
        _assert_same(a, b)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_recompute_with_a_warm_pool_equals_full_bptt(name):
    model = _model(name)
    xs, dys, mask = _data(0, masked=True)
    full = _step(model, xs, dys, mask)
    for _ in range(3):                                   # warm pool, shapes switching back and forth
        _assert_same(_step(model, xs, dys, mask, recompute=4), full)
        _assert_same(_step(model, xs, dys, mask), full)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_a_live_graph_is_never_overwritten(name, monkeypatch):
    """Hold graph A, run (and walk back) graph B on the same layer: A's states and gradient stay right."""
    model = _model(name)
    xs_a, dys_a, _ = _data(0)
    xs_b, dys_b, _ = _data(1)
    _step(model, xs_b, dys_b)                            # warm the pool
    graph_a = rnnbp.unroll(model, xs_a)
    view_a = graph_a.layer_states(graph_a.layer_names[0])  # read-only views of the cache
    states_a = [s.copy() for s in view_a]
    for seed in range(2, 5):                             # several graphs come and go meanwhile
        _step(model, *_data(seed)[:2])
    graph_b = rnnbp.unroll(model, xs_b)
    graph_b.backward(dys_b)
    for s, s0 in zip(view_a, states_a):
        np.testing.assert_array_equal(s, s0)
    model.zero_grad()
    dxs_a, _ = graph_a.backward(dys_a)
    got = (dxs_a, {k: g.copy() for k, g in model.grads.items()})

    monkeypatch.setattr(_workspace, "ENABLED", False)
    ref = _model(name)
    ys_ref, dxs_ref, _, g_ref = _step(ref, xs_a, dys_a)
    np.testing.assert_array_equal(graph_a.outputs, ys_ref)
    np.testing.assert_array_equal(got[0], dxs_ref)
    for k in g_ref:
        np.testing.assert_array_equal(got[1][k], g_ref[k])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_user_views_and_outputs_are_never_overwritten(name):
    cell = _model(name)
    xs, dys, _ = _data(0)
    state = cell.initial_state(B)
    zeros = tuple(np.zeros_like(s) for s in state)
    ys, s_T, cache = cell.forward_seq(xs, state)
    cell.backward_seq(dys, zeros, cache)                 # the cache's arrays are now pooled
    views = cell.seq_states(cache)                       # read-only views of the pooled buffers
    row = views[0][5]                                    # a view of a view
    keep = [v.copy() for v in views], row.copy(), ys.copy(), [s.copy() for s in s_T]
    del cache, views                                     # only `row` (and ys, s_T) remain
    for seed in range(1, 4):
        _ys, _, c = cell.forward_seq(_data(seed)[0], state)
        cell.backward_seq(dys, zeros, c)
        del c
    np.testing.assert_array_equal(row, keep[1])
    np.testing.assert_array_equal(ys, keep[2])
    for s, s0 in zip(s_T, keep[3]):
        np.testing.assert_array_equal(s, s0)
    # Returned arrays never alias a pooled buffer.
    pooled = {_ptr(b) for b in _pool(cell)._bufs[1:]}
    assert _ptr(ys) not in pooled and not any(_ptr(s) in pooled for s in s_T)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_buffers_are_reused_once_the_graph_is_dropped(name):
    cell = _model(name)
    xs, dys, _ = _data(0)
    state = cell.initial_state(B)
    zeros = tuple(np.zeros_like(s) for s in state)

    def step():
        _, _, cache = cell.forward_seq(xs, state)
        ptr = _ptr(cache.hs)
        dxs, _ = cell.backward_seq(dys, zeros, cache)
        return ptr, _ptr(dxs)

    first, dxs1 = step()
    second, dxs2 = step()
    third, _ = step()
    assert first == second == third                     # the cache's buffers come back
    n = len(_pool(cell))
    for _ in range(5):
        step()
    assert len(_pool(cell)) == n                         # steady state: nothing new


def test_loop_that_holds_the_previous_graph_alternates_two_sets():
    """``graph = unroll(...)`` in a loop keeps the old graph alive during the new forward pass."""
    model = _model("gru")
    xs, dys, _ = _data(0)
    graph, ptrs = None, []
    for _ in range(6):
        graph = rnnbp.unroll(model, xs)
        graph.backward(dys)
        ptrs.append(_ptr(graph._caches[0].hs))
    assert ptrs[0] != ptrs[1]                            # the first graph was alive during the second step
    assert ptrs[2::2] == [ptrs[0]] * 2 and ptrs[3::2] == [ptrs[1]] * 2
    per_set = sum(b.nbytes for b in _pool(model)._bufs if b.shape[0] in (T, T + 1))
    cache = graph._caches[0]
    one_set = cache.hs.nbytes + cache.gates.nbytes + cache.hn.nbytes
    assert per_set == 2 * one_set                        # exactly the two sets that were live at once


def test_retention_is_bounded_and_follows_the_shapes():
    model = _model("lstm")
    c = rnnbp.LSTM(D, H).time_block(B)
    for T_ in (40, 24, 8, 40):
        xs, dys, _ = _data(T_, T=T_)
        for _ in range(3):                               # a buffer survives the two calls after its last use
            _step(model, xs, dys)
        ws = _pool(model)
        # Only the latest shapes stay: the cache and scratch of one step.
        cb = min(c, T_)
        assert {b.shape[0] for b in ws._bufs[1:] if b.ndim == 3} <= {T_, T_ + 1, cb}
        cache = 2 * (T_ + 1) * B * H + T_ * B * 4 * H
        scratch = 2 * cb * B * 4 * H + 5 * cb * B * H + 3 * B * 4 * H + 2 * (D + H) * 4 * H
        assert ws.nbytes() <= 8 * (cache + scratch)
        assert len(ws) <= _workspace._MAX_BUFFERS


def test_forward_only_calls_leave_no_cache_behind():
    cell = _model("lstm")
    xs, _, _ = _data(0)
    for _ in range(3):
        cell.forward_seq(xs, cell.initial_state(B))
    ws = _pool(cell)
    assert not any(b.shape[0] == T + 1 for b in ws._bufs[1:])
    assert ws.nbytes() < (T + 1) * B * H * 8             # only per-step scratch


def test_recompute_after_full_bptt_lets_go_of_the_full_caches():
    model = _model("lstm")
    xs, dys, _ = _data(0, T=256)
    _step(model, xs, dys)                                # pool holds full-T caches
    full_bytes = _pool(model).nbytes()
    _step(model, xs, dys, recompute=16)
    ws = _pool(model)
    assert not any(b.shape[0] in (256, 257) for b in ws._bufs[1:])
    assert ws.nbytes() < full_bytes / 4


def test_workspace_rule_directly():
    ws = _workspace.Workspace()
    ws.begin()
    a = ws.empty((4, 5), np.float64)
    b = ws.empty((4, 5), np.float64)
    assert _ptr(a) != _ptr(b)                            # a is held: not handed out twice
    pa = _ptr(a)
    view = a[1:]
    del a
    c = ws.empty((4, 5), np.float64)                     # a's base is held by `view`
    assert _ptr(c) != pa
    del view
    d = ws.empty((4, 5), np.float64)                     # now nobody holds it
    assert _ptr(d) == pa
    e = ws.empty((4, 5), np.float32)                     # another dtype is another key
    assert e.dtype == np.float32 and e.shape == (4, 5)
    # Views are never adopted; arrays that own their memory are.
    n = len(ws)
    owner = np.empty((3, 3))
    ws.adopt(owner[1:], np.empty(0)[None])
    assert len(ws) == n
    ws.adopt(owner)
    assert len(ws) == n + 1
    ws.adopt(owner)
    assert len(ws) == n + 1                              # once only


def test_switch_off_gives_fresh_arrays(monkeypatch):
    monkeypatch.setattr(_workspace, "ENABLED", False)
    ws = _workspace.Workspace()
    a = ws.empty((4, 5), np.float64)
    del a
    ws.empty((4, 5), np.float64)
    ws.adopt(np.empty((4, 5)))
    assert len(ws) == 0


def test_copies_of_a_layer_get_their_own_pool():
    model = _model("gru")
    xs, dys, _ = _data(0)
    _step(model, xs, dys)
    twin = copy.deepcopy(model)
    assert len(_pool(twin)) == 0 and len(_pool(model)) > 0
    _assert_same(_step(twin, xs, dys), _step(model, xs, dys))


def test_concurrent_forward_passes_on_one_layer():
    cell = _model("lstm")
    xs = [_data(s)[0] for s in range(4)]
    want = [cell.forward_seq(x, cell.initial_state(B))[0] for x in xs]
    errors = []

    def run(i):
        for _ in range(30):
            ys, _, cache = cell.forward_seq(xs[i], cell.initial_state(B))
            if not np.array_equal(ys, want[i]):
                errors.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
