"""Tests of rnnbp.io: exact round trips, refusals of bad files, atomic saves."""

from __future__ import annotations

import doctest
import json
import os
import pickle
import stat
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rnnbp.io
from rnnbp.io import HEADER_KEY, LoadError, load, save
from rnnbp.layers import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh

T, B = 4, 3
DTYPES = [np.float64, np.float32]


# -- models -------------------------------------------------------------------
def _linear(dtype):
    return Linear(3, 2, dtype=dtype, seed=0), (T, B, 3)


def _mlp(dtype):
    model = Sequential(Linear(3, 5, dtype=dtype, seed=0), Tanh(),
                       Linear(5, 4, dtype=dtype, seed=1), Sigmoid(), Dropout(0.5, seed=2),
                       Linear(4, 4, bias=False, dtype=dtype, seed=3), ReLU(),
                       Linear(4, 2, dtype=dtype, seed=4))
    return model, (T, B, 3)


def _nested(dtype):
    inner = Sequential(Linear(3, 4, dtype=dtype, seed=0), Tanh(),
                       Sequential(Linear(4, 4, dtype=dtype, seed=1), Dropout(0.25)))
    return Sequential(inner, ReLU(), Linear(4, 2, dtype=dtype, seed=2)), (T, B, 3)


def _cell_stack(kind):
    def build(dtype):
        cells = pytest.importorskip("rnnbp.cells")
        cell = getattr(cells, kind)
        model = Sequential(cell(3, 5, dtype=dtype, seed=0), Dropout(0.2),
                           cell(5, 4, dtype=dtype, seed=1), Linear(4, 2, dtype=dtype, seed=2))
        return model, (T, B, 3)
    return build


def _mixed_cells(dtype):
    cells = pytest.importorskip("rnnbp.cells")
    model = Sequential(cells.Elman(3, 4, dtype=dtype, seed=0), cells.LSTM(4, 5, dtype=dtype, seed=1),
                       cells.GRU(5, 3, dtype=dtype, seed=2), Linear(3, 2, dtype=dtype, seed=3))
    return model, (T, B, 3)


def _conv(dtype):
    conv = pytest.importorskip("rnnbp.conv")
    model = Sequential(conv.Conv2D(2, 3, 3, padding=1, dtype=dtype, seed=0), ReLU(),
                       conv.MaxPool2D(2), rnnbp.Flatten(), Linear(3 * 3 * 3, 2, dtype=dtype, seed=1))
    return model, (T, B, 2, 6, 6)


MODELS = {"linear": _linear, "mlp": _mlp, "nested": _nested,
          "elman": _cell_stack("Elman"), "lstm": _cell_stack("LSTM"), "gru": _cell_stack("GRU"),
          "mixed_cells": _mixed_cells, "conv": _conv}


def _randomise(model, seed=0):
    """Random values in every parameter (non-zero biases), in place."""
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape)
    return model


def _reseed_dropout(model, seed=7):
    for _, leaf in model.leaves():
        if isinstance(leaf, Dropout):
            leaf.rng = np.random.default_rng(seed)


def _assert_same_tree(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_tree(x, y)


def _assert_same_params(a, b):
    assert list(a.params) == list(b.params)
    for name in a.params:
        p, q = a.params[name], b.params[name]
        assert p.dtype == q.dtype and p.shape == q.shape, name
        assert np.array_equal(p, q, equal_nan=True) and p.tobytes() == q.tobytes(), name


def _small_model():
    return _randomise(Sequential(Linear(3, 4, seed=0), Tanh(), Linear(4, 2, seed=1)))


# -- round trips --------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_round_trip_params_outputs_and_gradients(tmp_path, kind, dtype):
    model, in_shape = MODELS[kind](dtype)
    _randomise(model)
    loaded = load(save(model, tmp_path / "model.npz"))

    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert loaded.training
    _assert_same_params(model, loaded)
    assert all(not g.any() for g in loaded.grads.values())

    rng = np.random.default_rng(1)
    xs = rng.standard_normal(in_shape).astype(dtype)
    outs = []
    for m in (model, loaded):
        _reseed_dropout(m)
        m.zero_grad()
        outs.append(m.forward_seq(xs, m.initial_state(B)))
    (ys, state, cache), (ys2, state2, cache2) = outs
    assert ys.dtype == dtype
    _assert_same_tree(ys, ys2)
    _assert_same_tree(state, state2)

    dys = rng.standard_normal(ys.shape).astype(dtype)
    dxs, dstate = model.backward_seq(dys, model.initial_state(B), cache)
    dxs2, dstate2 = loaded.backward_seq(dys, loaded.initial_state(B), cache2)
    _assert_same_tree(dxs, dxs2)
    _assert_same_tree(dstate, dstate2)
    assert list(model.grads) == list(loaded.grads)
    for name in model.grads:
        assert model.grads[name].tobytes() == loaded.grads[name].tobytes(), name


def test_loaded_sequential_shares_its_childrens_arrays(tmp_path):
    loaded = load(save(_small_model(), tmp_path / "m.npz"))
    assert loaded.params["0.W"] is loaded.layers[0].params["W"]
    assert loaded.params["2.b"] is loaded.layers[2].params["b"]
    assert loaded.grads["0.W"] is loaded.layers[0].grads["W"]


def test_loaded_model_is_in_training_mode(tmp_path):
    model = _small_model().eval()
    loaded = load(save(model, tmp_path / "m.npz"))
    assert loaded.training and all(layer.training for layer in loaded.layers)


def test_suffix_is_appended_by_save_and_load_alike(tmp_path):
    model = _small_model()
    written = save(model, str(tmp_path / "model"))
    assert written == tmp_path / "model.npz"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    for path in (tmp_path / "model", str(tmp_path / "model"), written, str(written)):
        _assert_same_params(model, load(path))


def test_file_is_a_plain_npz_with_a_json_header(tmp_path):
    model = _small_model()
    path = save(model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted([HEADER_KEY, *model.params])
        header = json.loads(npz[HEADER_KEY].tobytes().decode("utf-8"))
        for name, p in model.params.items():
            assert npz[name].tobytes() == p.tobytes()
    assert header["format"] == "rnnbp" and header["version"] == 1
    assert header["rnnbp_version"] == __import__("rnnbp").__version__
    assert header["dtype"] == "float64"
    assert header["model"] == {"type": "Sequential", "config": model.get_config()}
    assert header["params"]["0.W"] == {"shape": [3, 4], "dtype": "float64"}


def test_parameter_free_model_round_trips(tmp_path):
    model = Sequential(Tanh(), ReLU())
    loaded = load(save(model, tmp_path / "m.npz"))
    assert loaded.params == {} and loaded.dtype is None
    assert [type(layer) for layer in loaded.layers] == [Tanh, ReLU]


def test_overwrite_replaces_the_old_model(tmp_path):
    path = save(_small_model(), tmp_path / "m.npz")
    other = _randomise(Linear(5, 1, dtype=np.float32), seed=3)
    save(other, path)
    _assert_same_params(other, load(path))
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


@settings(max_examples=40, deadline=None,
          # one file, overwritten each example: the fixture's reuse is intended
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), d=st.integers(1, 6), o=st.integers(1, 6), bias=st.booleans(),
       dtype=st.sampled_from(DTYPES))
def test_property_random_linear_round_trips_bit_for_bit(tmp_path, data, d, o, bias, dtype):
    """Any sizes, dtype and values — NaN, inf, -0.0, subnormals — come back bit for bit."""
    model = Linear(d, o, bias=bias, dtype=dtype)
    for name, p in model.params.items():
        p[...] = data.draw(hnp.arrays(dtype, p.shape), label=name)
    with warnings.catch_warnings():                   # NaN and inf load only when allowed (with a warning)
        warnings.simplefilter("ignore", RuntimeWarning)
        loaded = load(save(model, tmp_path / "linear"), allow_nonfinite=True)
    assert loaded.get_config() == model.get_config()
    _assert_same_params(model, loaded)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_any_corrupted_byte_is_refused_or_harmless(tmp_path, data):
    """Flip one byte anywhere: load raises LoadError or returns the saved model exactly."""
    model = _small_model()
    path = save(model, tmp_path / "m.npz")
    raw = bytearray(path.read_bytes())
    i = data.draw(st.integers(0, len(raw) - 1), label="index")
    raw[i] ^= data.draw(st.integers(1, 255), label="mask")
    path.write_bytes(bytes(raw))
    try:
        loaded = load(path)
    except LoadError as exc:
        assert str(path) in str(exc)
    else:
        _assert_same_params(model, loaded)


# -- refusals: crafted archives -----------------------------------------------
class _Boom:
    """Unpickling this would call ``_record``; loading must never do so."""

    calls: list = []

    def __reduce__(self):
        return (_record, ("unpickled!",))


def _record(value):
    _Boom.calls.append(value)
    return value


def _parts(tmp_path):
    """Arrays and header of a valid file, to be tampered with."""
    path = save(_small_model(), tmp_path / "good.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop(HEADER_KEY).tobytes().decode("utf-8"))
    return arrays, header


def _write(path, arrays, header):
    members = dict(arrays)
    if isinstance(header, dict):
        header = json.dumps(header).encode("utf-8")
    if isinstance(header, bytes):
        header = np.frombuffer(header, dtype=np.uint8)
    if header is not None:
        members[HEADER_KEY] = header
    np.savez(path, allow_pickle=True, **members)
    return path


def _set(path, value):
    def mutate(arrays, header):
        node = header
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return arrays, header
    return mutate


def _arrays(fn):
    def mutate(arrays, header):
        fn(arrays)
        return arrays, header
    return mutate


def _header(value):
    return lambda arrays, header: (arrays, value)


def _delete_header_key(*keys):
    def mutate(arrays, header):
        node = header
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
        return arrays, header
    return mutate


REFUSALS = {
    "missing_param": (_arrays(lambda a: a.pop("0.b")), "arrays: missing parameter(s) ['0.b']"),
    "extra_array": (_arrays(lambda a: a.update({"9.W": np.zeros(2)})),
                    "arrays: unexpected parameter(s) ['9.W']"),
    "wrong_shape": (_arrays(lambda a: a.update({"0.W": a["0.W"].T.copy()})),
                    "parameter '0.W': expected shape (3, 4), got (4, 3)"),
    "wrong_dtype": (_arrays(lambda a: a.update({"0.W": a["0.W"].astype(np.float32)})),
                    "parameter '0.W': expected dtype float64, got float32"),
    "wrong_byte_order": (_arrays(lambda a: a.update({"0.W": a["0.W"].astype(">f8")})),
                         "parameter '0.W': expected dtype float64, got >f8"),
    "object_array": (_arrays(lambda a: a.update({"0.W": np.array([_Boom()] * 12, dtype=object)})),
                     "array '0.W': object arrays are refused"),
    "non_array_member": (None, "unexpected non-array member(s) ['notes.txt']"),
    "missing_header": (_header(None), "no rnnbp header"),
    "header_not_json": (_header(b"{not json"), "expected UTF-8 JSON, got malformed text"),
    "header_not_utf8": (_header(b"\xff\xfe\x00"), "expected UTF-8 JSON, got malformed text"),
    "header_float_array": (_header(np.zeros(3)), "expected a 1-d uint8 array"),
    "header_object_array": (_header(np.array([_Boom()], dtype=object)),
                            "array '__rnnbp__': object arrays are refused"),
    "header_not_object": (_header(b"[1, 2]"), "header: expected a JSON object, got list"),
    "wrong_format": (_set(["format"], "numpy"), "header 'format': expected 'rnnbp', got 'numpy'"),
    "newer_version": (_set(["version"], 2), "header 'version': expected 1, got 2 (written by a newer"),
    "bool_version": (_set(["version"], True), "header 'version': expected 1, got True"),
    "missing_params_key": (_delete_header_key("params"), "header: missing key(s) ['params']"),
    "unknown_type": (_set(["model"], {"type": "os.system", "config": {"command": "echo pwned"}}),
                     "model: unknown layer type 'os.system'"),
    "nested_unknown_type": (_set(["model", "config", "layers", 1, "type"], "builtins.eval"),
                            "model.layers[1]: unknown layer type 'builtins.eval'"),
    "bad_config_value": (_set(["model", "config", "layers", 0, "config", "input_size"], -1),
                         "model.layers[0]: Linear(**"),
    "unexpected_config_key": (_set(["model", "config", "layers", 0, "config", "command"], "rm"),
                              "unexpected keyword argument 'command'"),
    "spec_not_a_dict": (_set(["model"], "Linear"), "model: expected {'type': ..., 'config'"),
    "header_param_shape": (_set(["params", "0.W", "shape"], [4, 3]),
                           "header 'params' entry '0.W': expected {'shape': [3, 4]"),
    "header_param_missing": (_delete_header_key("params", "2.W"),
                             "header 'params': missing parameter(s) ['2.W']"),
    "header_dtype": (_set(["dtype"], "float32"), "header 'dtype': expected 'float64'"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refuses_tampered_archive(tmp_path, case):
    mutate, fragment = REFUSALS[case]
    arrays, header = _parts(tmp_path)
    path = tmp_path / "bad.npz"
    if case == "non_array_member":
        import zipfile
        _write(path, arrays, header)
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("notes.txt", "hello")
    else:
        _write(path, *mutate(arrays, header))
    _Boom.calls.clear()
    with pytest.raises(LoadError) as info:
        load(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message
    assert _Boom.calls == []  # nothing was unpickled


# -- refusals: broken bytes ---------------------------------------------------
def _good_bytes(tmp_path):
    return save(_small_model(), tmp_path / "good.npz").read_bytes()


BROKEN = {
    "empty": (lambda raw: b"", "got an empty file"),
    "random_bytes": (lambda raw: np.random.default_rng(0).bytes(len(raw)),
                     "not an rnnbp model file: expected a .npz (zip) archive"),
    "zip_magic_then_noise": (lambda raw: raw[:4] + np.random.default_rng(0).bytes(len(raw)),
                             "corrupted, truncated or unreadable .npz archive"),
    "truncated": (lambda raw: raw[:len(raw) // 2], "corrupted, truncated or unreadable"),
    "tail_cut": (lambda raw: raw[:-10], "corrupted, truncated or unreadable"),
    "npy_file": (lambda raw: b"\x93NUMPY" + raw[6:], "not an rnnbp model file"),
    "pickle_file": (lambda raw: pickle.dumps(_Boom()), "not an rnnbp model file"),
    "encrypted_flag": (lambda raw: _set_encrypted_flag(raw), "is encrypted"),
}


def _set_encrypted_flag(raw):
    """Set bit 0 of the general-purpose flags (offset 8) of every central-directory entry."""
    raw = bytearray(raw)
    at = raw.find(b"PK\x01\x02")
    while at >= 0:
        raw[at + 8] |= 1
        at = raw.find(b"PK\x01\x02", at + 4)
    return bytes(raw)


@pytest.mark.parametrize("case", list(BROKEN))
def test_refuses_broken_bytes(tmp_path, case):
    corrupt, fragment = BROKEN[case]
    path = tmp_path / "bad.npz"
    path.write_bytes(corrupt(_good_bytes(tmp_path)))
    _Boom.calls.clear()
    with pytest.raises(LoadError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value), str(info.value)
    assert _Boom.calls == []


def test_refuses_a_flipped_data_byte(tmp_path):
    model = _small_model()
    raw = bytearray(save(model, tmp_path / "good.npz").read_bytes())
    at = bytes(raw).find(model.params["0.W"].tobytes())
    assert at > 0
    raw[at + 5] ^= 0x10
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(LoadError, match="CRC"):
        load(path)


def test_refuses_every_truncation(tmp_path):
    raw = _good_bytes(tmp_path)
    path = tmp_path / "cut.npz"
    for cut in range(0, len(raw), 37):
        path.write_bytes(raw[:cut])
        with pytest.raises(LoadError):
            load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nothing.npz")


# -- refusals at save time ----------------------------------------------------
class _Unregistered(Linear):
    """Private name: not registered in LAYER_TYPES, so it could not be loaded."""


def test_save_refuses_what_could_not_be_loaded(tmp_path):
    with pytest.raises(TypeError, match="model: expected a rnnbp.Layer, got str"):
        save("model", tmp_path / "m.npz")
    with pytest.raises(TypeError, match="not registered"):
        save(Sequential(Linear(3, 3), _Unregistered(3, 2)), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike"):
        save(Linear(3, 2), 3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save(Linear(3, 2), tmp_path / "no" / "such" / "dir.npz")

    not_json = Linear(3, 2)
    not_json.get_config = lambda: {"input_size": 3, "output_size": 2, "extra": object()}
    with pytest.raises(TypeError, match="get_config\\(\\) must return JSON"):
        save(not_json, tmp_path / "m.npz")

    lossy = Linear(3, 2)
    lossy.get_config = lambda: {"input_size": 3, "output_size": 5}
    with pytest.raises(ValueError, match="rebuilds different parameters"):
        save(lossy, tmp_path / "m.npz")

    broken = Linear(3, 2)
    broken.get_config = lambda: {"size": 3}
    with pytest.raises(ValueError, match="does not rebuild the model"):
        save(broken, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- atomicity ----------------------------------------------------------------
@pytest.mark.parametrize("failure", ["write_array", "interrupt", "fsync", "replace"])
@pytest.mark.parametrize("existing", [True, False], ids=["overwrite", "new"])
def test_failed_save_leaves_old_file_intact_and_no_temp_file(tmp_path, monkeypatch, failure, existing):
    path = tmp_path / "m.npz"
    old = _randomise(Linear(3, 2), seed=5)
    if existing:
        save(old, path)
        before = path.read_bytes()
    seen_mid_write = []

    def fail():
        seen_mid_write.append(sorted(os.listdir(tmp_path)))
        if failure == "interrupt":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device")

    if failure in ("write_array", "interrupt"):
        original, calls = np.lib.format.write_array, []

        def write_array(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:  # header and one array written, then the crash
                fail()
            return original(*args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", write_array)
    else:
        monkeypatch.setattr(os, failure, lambda *args, **kwargs: fail())

    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        save(_small_model(), path)
    monkeypatch.undo()

    # the failure happened while a temporary file existed next to the target
    assert len(seen_mid_write) == 1
    temps = [n for n in seen_mid_write[0] if n != "m.npz"]
    assert len(temps) == 1 and temps[0].startswith(".m.npz.") and temps[0].endswith(".tmp")
    if existing:
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["m.npz"]
        _assert_same_params(old, load(path))
    else:
        assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_like_an_ordinary_file(tmp_path):
    path = save(Linear(3, 2), tmp_path / "m.npz")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    save(Linear(3, 2), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_docstring_examples_run():
    result = doctest.testmod(rnnbp.io, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_a_user_layer_named_like_a_builtin_does_not_replace_it(tmp_path):
    from rnnbp.protocol import LAYER_TYPES

    class GRU(rnnbp.GRU):  # a user's subclass that happens to share the name
        pass

    assert LAYER_TYPES["GRU"] is rnnbp.GRU
    assert LAYER_TYPES[f"{__name__}.test_a_user_layer_named_like_a_builtin_does_not_replace_it.<locals>.GRU"] is GRU
    path = rnnbp.save(rnnbp.GRU(2, 3, seed=0), tmp_path / "gru.npz")
    assert type(rnnbp.load(path)) is rnnbp.GRU


def test_load_refuses_nonfinite_weights_naming_the_parameter_unless_allowed(tmp_path):
    import warnings as _warnings
    model = rnnbp.Sequential(rnnbp.Linear(3, 4, seed=0), rnnbp.Linear(4, 2, seed=1))
    model.params["1.W"][2, 1] = np.nan
    path = rnnbp.save(model, tmp_path / "m")
    message = r"parameter '1.W' holds 1 non-finite value\(s\) \(first nan at index \(2, 1\)\).*allow_nonfinite=True"
    with pytest.raises(rnnbp.LoadError, match=message):
        rnnbp.load(path)
    with pytest.warns(RuntimeWarning, match="parameter '1.W' holds 1 non-finite"):
        loaded = rnnbp.load(path, allow_nonfinite=True)
    assert np.isnan(loaded.params["1.W"][2, 1])
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")
        model.params["1.W"][2, 1] = 0.0
        rnnbp.load(rnnbp.save(model, tmp_path / "ok"))
