"""Worker processes of the benchmark (``python -m tasks run benchmark``).

Each implementation runs in its own process, started as
``python -m tasks._bench_workers IMPL`` with the thread counts already in its
environment, so numpy's OpenBLAS threads and torch's OpenMP threads never
share a process. The coordinator (``tasks/experiments/benchmark.py``) speaks
to a worker in JSON lines over stdin/stdout:

- ``{"cmd": "setup", "cell", "dtype", "B", "T", "H", "seed"}``: build the
  weights and inputs (the same in every worker: drawn from ``seed``);
- ``{"cmd": "setup", "kind": "ctc" | "conv", "dtype", "seed", ...sizes}``: a
  point of another kind (below), same protocol afterwards;
- ``{"cmd": "grads", "path"}``: one training step, gradients saved to ``path``
  (``.npz``: ``W_ih``, ``W_hh``, ``b``, ``b_hn`` for the GRU, ``dxs``);
- ``{"cmd": "time", "reps"}``: ``reps`` training steps, their wall times;

Implementations (``IMPLS``): ``rnnbp`` (fresh arrays every step, the
default), ``rnnbp_pool`` (the same with the opt-in ``rnnbp.BufferPool``),
``torch`` and ``naive``.
- ``{"cmd": "gemm", "dtype", "n", "reps"}``: GEMM peak, GFLOP/s (numpy only);
- ``{"cmd": "quit"}``.

A training step is forward + full BPTT with gradients for ``W_ih``, ``W_hh``,
``b`` and the inputs, for the loss ``sum(outputs)``. The weights follow
rnnbp's public layout (``W_ih`` (D, G*H), ``W_hh`` (H, G*H), ``b`` (G*H,)
and the GRU's ``b_hn`` (H,)), converted one to one for torch.

``python -m tasks._bench_workers memory MODE T B H`` (MODE ``full`` or
``recompute``) runs one LSTM float32 step in a fresh process and prints its
peak memory: the rise of the resident set (``ru_maxrss`` minus the RSS after
the inputs ``xs`` and the output gradient ``dys`` exist) and, in a second
step, the peak of numpy's allocations as seen by ``tracemalloc``.

Two more kinds of point, with ``rnnbp`` and ``torch`` implementations (and
``rnnbp_pool`` for CTC):

- ``ctc`` (sizes ``T``, ``B``, ``C``, ``L``): ``rnnbp.losses.ctc`` against
  ``torch.nn.functional.ctc_loss`` on ``log_softmax(logits)``, forward and
  backward to the logits, ``reduction="mean"``, every input ``T`` steps and
  every label ``L`` labels; gradient saved as ``dlogits``;
- ``conv`` (sizes ``N``, ``C_in``, ``C_out``, ``H``, ``W``, ``k``): one
  ``rnnbp.Conv2D`` forward and backward against ``torch.nn.functional.conv2d``
  with the same weights and a random upstream gradient; gradients ``W``,
  ``b``, ``dx``.

Only this module imports torch, and only in the torch worker.
"""

from __future__ import annotations

import json
import sys
import time

GATES = {"Elman": 1, "LSTM": 4, "GRU": 3}


def make_weights(cell: str, D: int, H: int, dtype, seed: int):
    """Weights in rnnbp's layout, uniform(-1/sqrt(H), 1/sqrt(H)) like torch's default."""
    import numpy as np

    rng = np.random.default_rng(seed)
    G, s = GATES[cell], 1.0 / np.sqrt(H)
    w = {"W_ih": rng.uniform(-s, s, (D, G * H)), "W_hh": rng.uniform(-s, s, (H, G * H)),
         "b": rng.uniform(-s, s, G * H)}
    if cell == "GRU":
        w["b_hn"] = rng.uniform(-s, s, H)
    return {k: v.astype(dtype) for k, v in w.items()}


# -- implementations ----------------------------------------------------------

class Rnnbp:
    """The library: ``rnnbp.unroll`` + ``graph.backward`` (its fast path)."""

    def __init__(self, cell, dtype, B, T, H, seed):
        import numpy as np

        import rnnbp

        D = H
        self.model = {"Elman": lambda: rnnbp.Elman(D, H, dtype=dtype),
                      "LSTM": lambda: rnnbp.LSTM(D, H, dtype=dtype),
                      "GRU": lambda: rnnbp.GRU(D, H, dtype=dtype)}[cell]()
        for k, v in make_weights(cell, D, H, dtype, seed).items():
            self.model.params[k][...] = v
        self.xs = np.random.default_rng(seed + 1).standard_normal((T, B, D)).astype(dtype)
        self.dys = np.ones((T, B, H), dtype=dtype)                    # d sum(outputs)

    pool = None

    def step(self):
        self.model.zero_grad()
        graph = __import__("rnnbp").unroll(self.model, self.xs, pool=self.pool)
        dxs, _ = graph.backward(self.dys)
        return dxs

    def grads(self):
        dxs = self.step()
        return {**{k: v.copy() for k, v in self.model.grads.items()}, "dxs": dxs}


class Torch:
    """``torch.nn.RNN``/``LSTM``/``GRU`` (one layer, CPU) with the same weights."""

    def __init__(self, cell, dtype, B, T, H, seed):
        import numpy as np
        import torch

        D = H
        tdt = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        self.cell, self.H = cell, H
        cls = {"Elman": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[cell]
        self.module = cls(D, H).to(tdt)
        w = make_weights(cell, D, H, dtype, seed)
        b_hh = np.zeros_like(w["b"])
        if cell == "GRU":
            b_hh[2 * H:] = w["b_hn"]
        with torch.no_grad():
            self.module.weight_ih_l0.copy_(torch.from_numpy(w["W_ih"].T.copy()))
            self.module.weight_hh_l0.copy_(torch.from_numpy(w["W_hh"].T.copy()))
            self.module.bias_ih_l0.copy_(torch.from_numpy(w["b"]))
            self.module.bias_hh_l0.copy_(torch.from_numpy(b_hh))
        xs = np.random.default_rng(seed + 1).standard_normal((T, B, D)).astype(dtype)
        self.x = torch.from_numpy(xs).requires_grad_()

    def step(self):
        for p in self.module.parameters():
            p.grad = None
        self.x.grad = None
        out, _ = self.module(self.x)
        out.sum().backward()
        return self.x.grad

    def grads(self):
        dxs = self.step().numpy().copy()
        m, H = self.module, self.H
        g = {"W_ih": m.weight_ih_l0.grad.numpy().T.copy(), "W_hh": m.weight_hh_l0.grad.numpy().T.copy(),
             "b": m.bias_ih_l0.grad.numpy().copy(), "dxs": dxs}
        if self.cell == "GRU":
            g["b_hn"] = m.bias_hh_l0.grad.numpy()[2 * H:].copy()
        return g


class Naive:
    """The floor: textbook numpy BPTT -- per-step concatenation ``[x, h] @ W``, a
    list of caches, per-step weight-gradient GEMMs, expressions with temporaries."""

    def __init__(self, cell, dtype, B, T, H, seed):
        import numpy as np

        self.cell, self.H = cell, H
        w = make_weights(cell, H, H, dtype, seed)
        self.W = np.concatenate([w["W_ih"], w["W_hh"]], axis=0)      # (D + H, G*H)
        self.b, self.b_hn = w["b"], w.get("b_hn")
        self.xs = np.random.default_rng(seed + 1).standard_normal((T, B, H)).astype(dtype)

    def step(self):
        import numpy as np

        sig = lambda a: 0.5 * (1 + np.tanh(0.5 * a))  # noqa: E731
        xs, W, b, H, D = self.xs, self.W, self.b, self.H, self.xs.shape[2]
        T, B = xs.shape[:2]
        h = np.zeros((B, H), xs.dtype)
        c = np.zeros((B, H), xs.dtype)
        caches = []
        for t in range(T):
            xh = np.concatenate([xs[t], h], axis=1)
            if self.cell == "Elman":
                h = np.tanh(xh @ W + b)
                caches.append((xh, h))
            elif self.cell == "LSTM":
                z = xh @ W + b
                i, f, g, o = sig(z[:, :H]), sig(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sig(z[:, 3 * H:])
                c_prev = c
                c = f * c + i * g
                tc = np.tanh(c)
                h = o * tc
                caches.append((xh, i, f, g, o, c_prev, tc))
            else:
                ax = xh[:, :D] @ W[:D] + b
                ah = xh[:, D:] @ W[D:]
                r = sig(ax[:, :H] + ah[:, :H])
                z = sig(ax[:, H:2 * H] + ah[:, H:2 * H])
                hn = ah[:, 2 * H:] + self.b_hn
                n = np.tanh(ax[:, 2 * H:] + r * hn)
                h_prev = h
                h = (1 - z) * n + z * h
                caches.append((xh, h_prev, r, z, n, hn))
        gW, gb = np.zeros_like(W), np.zeros_like(b)
        gbhn = None if self.b_hn is None else np.zeros_like(self.b_hn)
        dxs = np.empty_like(xs)
        dh = np.zeros((B, H), xs.dtype)
        dc = np.zeros((B, H), xs.dtype)
        for t in range(T - 1, -1, -1):
            dh = dh + 1.0                                             # d sum(outputs) / d h_t
            if self.cell == "Elman":
                xh, h = caches[t]
                da = dh * (1 - h * h)
                gW += xh.T @ da
                gb += da.sum(axis=0)
                dxh = da @ W.T
            elif self.cell == "LSTM":
                xh, i, f, g, o, c_prev, tc = caches[t]
                dc = dc + dh * o * (1 - tc * tc)
                dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                                     dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
                dc = dc * f
                gW += xh.T @ dz
                gb += dz.sum(axis=0)
                dxh = dz @ W.T
            else:
                xh, h_prev, r, z, n, hn = caches[t]
                da_n = dh * (1 - z) * (1 - n * n)
                da_z = dh * (h_prev - n) * z * (1 - z)
                da_r = da_n * hn * r * (1 - r)
                dhn = da_n * r
                dax = np.concatenate([da_r, da_z, da_n], axis=1)
                dah = np.concatenate([da_r, da_z, dhn], axis=1)
                gW[:D] += xh[:, :D].T @ dax
                gW[D:] += xh[:, D:].T @ dah
                gb += dax.sum(axis=0)
                gbhn += dhn.sum(axis=0)
                dxh = np.concatenate([dax @ W[:D].T, dh * z + dah @ W[D:].T], axis=1)
            dxs[t] = dxh[:, :D]
            dh = dxh[:, D:]
        self._g = {"W_ih": gW[:D], "W_hh": gW[D:], "b": gb, "dxs": dxs}
        if gbhn is not None:
            self._g["b_hn"] = gbhn
        return dxs

    def grads(self):
        self.step()
        return {k: v.copy() for k, v in self._g.items()}


class RnnbpPool(Rnnbp):
    """The library with the opt-in ``rnnbp.BufferPool`` (``unroll(..., pool=...)``): same numbers, bit for bit."""

    def __init__(self, cell, dtype, B, T, H, seed):
        import rnnbp

        super().__init__(cell, dtype, B, T, H, seed)
        self.pool = rnnbp.BufferPool()


IMPLS = {"rnnbp": Rnnbp, "rnnbp_pool": RnnbpPool, "torch": Torch, "naive": Naive}


# -- CTC loss ---------------------------------------------------------------------

def make_ctc(T, B, C, L, dtype, seed):
    """Logits ``(T, B, C)`` ~ N(0, 1) and labels ``(B, L)`` in ``[1, C)`` (blank = 0)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, B, C)).astype(dtype), rng.integers(1, C, size=(B, L))


class CtcRnnbp:
    """``rnnbp.losses.ctc``: value and gradient with respect to the logits in one call."""

    def __init__(self, dtype, seed, T, B, C, L):
        from rnnbp.losses import ctc

        self.ctc = ctc
        self.z, self.labels = make_ctc(T, B, C, L, dtype, seed)

    def step(self):
        return self.ctc(self.z, self.labels)[1]

    def grads(self):
        return {"dlogits": self.step()}


class CtcRnnbpPool(CtcRnnbp):
    """The same with its scratch from an ``rnnbp.BufferPool`` (as ``train_step(..., pool=...)`` runs it)."""

    def __init__(self, dtype, seed, T, B, C, L):
        import rnnbp

        super().__init__(dtype, seed, T, B, C, L)
        self.pool = rnnbp.BufferPool()

    def step(self):
        from rnnbp import buffers

        with buffers.using(self.pool):
            return self.ctc(self.z, self.labels)[1]


class CtcTorch:
    """``torch.nn.functional.ctc_loss`` on ``log_softmax(logits)``, backward to the logits."""

    def __init__(self, dtype, seed, T, B, C, L):
        import torch

        z, labels = make_ctc(T, B, C, L, dtype, seed)
        self.F = torch.nn.functional
        self.z = torch.from_numpy(z).requires_grad_()
        self.labels = torch.from_numpy(labels)
        self.input_lengths = torch.full((B,), T, dtype=torch.long)
        self.label_lengths = torch.full((B,), L, dtype=torch.long)

    def step(self):
        self.z.grad = None
        loss = self.F.ctc_loss(self.z.log_softmax(2), self.labels, self.input_lengths,
                               self.label_lengths, blank=0, reduction="mean")
        loss.backward()
        return self.z.grad

    def grads(self):
        return {"dlogits": self.step().numpy().copy()}


# -- Conv2D -------------------------------------------------------------------------

def make_conv(N, C_in, C_out, H, W, k, dtype, seed):
    """Weights ``(C_out, C_in, k, k)``, bias, input ``(N, C_in, H, W)``, upstream gradient."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(C_in * k * k)
    w = {"W": rng.uniform(-s, s, (C_out, C_in, k, k)), "b": rng.uniform(-s, s, C_out),
         "x": rng.standard_normal((N, C_in, H, W)),
         "dy": rng.standard_normal((N, C_out, H - k + 1, W - k + 1))}
    return {name: v.astype(dtype) for name, v in w.items()}


class ConvRnnbp:
    """``rnnbp.Conv2D``: one-step ``forward`` and ``backward`` (what ``unroll`` calls)."""

    def __init__(self, dtype, seed, N, C_in, C_out, H, W, k):
        import rnnbp

        w = make_conv(N, C_in, C_out, H, W, k, dtype, seed)
        self.conv = rnnbp.Conv2D(C_in, C_out, k, dtype=dtype, seed=0)
        self.conv.params["W"][...] = w["W"]
        self.conv.params["b"][...] = w["b"]
        self.x, self.dy = w["x"], w["dy"]

    def step(self):
        self.conv.zero_grad()
        _, _, cache = self.conv.forward(self.x, ())
        dx, _ = self.conv.backward(self.dy, (), cache)
        return dx

    def grads(self):
        dx = self.step()
        return {"W": self.conv.grads["W"].copy(), "b": self.conv.grads["b"].copy(), "dx": dx}


class ConvTorch:
    """``torch.nn.functional.conv2d`` forward and backward with the same weights."""

    def __init__(self, dtype, seed, N, C_in, C_out, H, W, k):
        import torch

        w = make_conv(N, C_in, C_out, H, W, k, dtype, seed)
        self.F = torch.nn.functional
        self.W = torch.from_numpy(w["W"]).requires_grad_()
        self.b = torch.from_numpy(w["b"]).requires_grad_()
        self.x = torch.from_numpy(w["x"]).requires_grad_()
        self.dy = torch.from_numpy(w["dy"])

    def step(self):
        for t in (self.W, self.b, self.x):
            t.grad = None
        self.F.conv2d(self.x, self.W, self.b).backward(self.dy)
        return self.x.grad

    def grads(self):
        dx = self.step()
        return {"W": self.W.grad.numpy().copy(), "b": self.b.grad.numpy().copy(), "dx": dx.numpy().copy()}


#: Implementations of the other kinds of point, by kind and worker.
KINDS = {"ctc": {"rnnbp": CtcRnnbp, "rnnbp_pool": CtcRnnbpPool, "torch": CtcTorch},
         "conv": {"rnnbp": ConvRnnbp, "torch": ConvTorch}}


# -- the command loop -----------------------------------------------------------

def _gemm_peak(dtype: str, n: int, reps: int) -> float:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b, c = a.copy(), np.empty_like(a)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) / 1e9                   # best of the repeats: a peak


def serve(impl: str) -> None:
    import numpy as np

    if impl == "torch":
        import os

        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    current = None
    out = sys.stdout
    sys.stdout = sys.stderr                         # stray prints must not break the protocol
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "quit":
            break
        if cmd == "setup":
            current = None
            kind = msg.pop("kind", "rnn")
            if kind == "rnn":
                current = IMPLS[impl](msg["cell"], np.dtype(msg["dtype"]), msg["B"], msg["T"], msg["H"], msg["seed"])
            else:
                sizes = {k: v for k, v in msg.items() if k not in ("cmd", "dtype", "seed")}
                current = KINDS[kind][impl](np.dtype(msg["dtype"]), msg["seed"], **sizes)
            reply = {"ok": True}
        elif cmd == "grads":
            np.savez(msg["path"], **current.grads())
            reply = {"ok": True}
        elif cmd == "time":
            times = []
            for _ in range(msg["reps"]):
                t0 = time.perf_counter()
                current.step()
                times.append(time.perf_counter() - t0)
            reply = {"times": times}
        elif cmd == "gemm":
            reply = {"gflops": _gemm_peak(msg["dtype"], msg["n"], msg["reps"])}
        else:
            reply = {"error": f"unknown command {cmd!r}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def _rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(mode: str, T: int, B: int, H: int) -> dict:
    """Peak memory of one LSTM float32 training step (full or recompute BPTT)."""
    import resource
    import tracemalloc

    import numpy as np

    import rnnbp

    model = rnnbp.LSTM(H, H, dtype=np.float32, seed=0)
    xs = np.random.default_rng(1).standard_normal((T, B, H), dtype=np.float32)
    dys = np.ones((T, B, H), dtype=np.float32)
    recompute = True if mode == "recompute" else None

    def step():
        model.zero_grad()
        graph = rnnbp.unroll(model, xs, recompute=recompute)
        dxs, _ = graph.backward(dys)
        return graph.recompute, dxs

    before = _rss_bytes()
    t0 = time.perf_counter()
    k, dxs = step()
    seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    del dxs
    tracemalloc.start()
    step()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"mode": mode, "T": T, "B": B, "H": H, "k": k, "seconds": seconds,
            "peak_rss_delta_bytes": peak_rss, "tracemalloc_peak_bytes": traced,
            "io_bytes": 2 * T * B * H * 4}


if __name__ == "__main__":
    if sys.argv[1] == "memory":
        mode, T, B, H = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(memory(mode, T, B, H)))
    else:
        serve(sys.argv[1])
