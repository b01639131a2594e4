"""Character-level language model on Python's own docstrings, trained by truncated BPTT.

The corpus is built at run time from the docstrings of standard-library
modules (``tasks.data.text.stdlib_corpus``: no download). The text is cut into
``B`` contiguous streams; an LSTM reads them with truncated BPTT(k1, k2),
its state carried from window to window, and after training it writes new
text one character at a time (``rnnbp.sample``, its state carried).

Reported: bits per character on the training streams and on held-out text
(the last tenth of the corpus), beside the unigram entropy (what a model
without memory of the previous characters can do at best), and samples at
two temperatures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.losses import softmax_cross_entropy
from rnnbp.history import Progress

from ..data.sequences import one_hot
from ..data.text import Vocab, stdlib_corpus, text_streams

SUMMARY = "char-level LSTM on stdlib docstrings with truncated BPTT: bits/char and sampled text"

FULL = {"max_chars": 400_000, "batch_size": 32, "hidden": 256, "k1": 32, "k2": 64,
        "epochs": 4, "lr": 3e-3, "clip": 1.0, "sample_chars": 400, "embedding": 32}
QUICK = {**FULL, "max_chars": 20_000, "hidden": 48, "epochs": 1, "sample_chars": 80}

LOG2E = 1.0 / np.log(2.0)


def _bits_per_char(model: rnnbp.Layer, ids: np.ndarray, V: int, dtype: np.dtype,
                   chunk: int = 256) -> float:
    """Mean -log2 p(next char) over a stream ``ids`` (L, B), state carried across chunks."""
    model.eval()
    state, total, count = None, 0.0, 0
    for t0 in range(0, ids.shape[0] - 1, chunk):
        t1 = min(t0 + chunk, ids.shape[0] - 1)
        x = ids[t0:t1] if model.takes_ids else one_hot(ids[t0:t1], V, dtype=dtype)
        graph = rnnbp.unroll(model, x, state)
        value, _ = softmax_cross_entropy(graph.outputs, ids[t0 + 1:t1 + 1])
        total += value * (t1 - t0)
        count += t1 - t0
        state = graph.final_state
    model.train()
    return total / count * LOG2E


def _figure(window_bpc: list[float], windows_per_epoch: int, val_bpc: list[float],
            unigram: float, out: Path) -> None:
    from ..figures import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    w = np.asarray(window_bpc)
    smooth = np.convolve(w, np.ones(20) / 20, mode="valid") if w.size >= 20 else w
    ax.plot(np.arange(w.size) + 1, w, color="C0", alpha=0.25, lw=0.8)
    ax.plot(np.arange(smooth.size) + (w.size - smooth.size) + 1, smooth, color="C0",
            label="training windows (20-window mean)")
    ax.plot(np.arange(1, len(val_bpc) + 1) * windows_per_epoch, val_bpc, "o-", color="C1",
            label="held-out text, after each epoch")
    ax.axhline(unigram, color="0.4", ls="--", lw=1, label=f"unigram entropy {unigram:.2f}")
    ax.set_xlabel("truncated-BPTT window (parameter update)")
    ax.set_ylabel("bits per character")
    ax.set_title("Char-level LSTM on stdlib docstrings")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(out / "bits_per_char.png", dpi=110)


def run(quick: bool, seed: int, out: Path) -> dict[str, Any]:
    """Train, evaluate, sample; write ``bits_per_char.png``; return the metrics."""
    cfg = QUICK if quick else FULL
    dtype = np.dtype(np.float32)
    text = stdlib_corpus(cfg["max_chars"])
    vocab = Vocab.from_text(text)
    V = vocab.size
    ids = vocab.encode(text)
    split = int(0.9 * ids.size)
    train_ids = text_streams(ids[:split], cfg["batch_size"])
    val_ids = text_streams(ids[split:], 8)
    freq = np.bincount(ids[:split], minlength=V) / split
    unigram = float(-(freq[freq > 0] * np.log2(freq[freq > 0])).sum())
    print(f"corpus: {ids.size} characters, {V} symbols; {train_ids.shape[0]} steps x "
          f"{cfg['batch_size']} streams for training")

    H, E = cfg["hidden"], cfg["embedding"]
    # Inputs: one-hot characters, or ids through a learned Embedding of size E (E > 0).
    first = [rnnbp.Embedding(V, E, dtype=dtype, seed=seed + 2)] if E else []
    model = rnnbp.Sequential(*first, rnnbp.LSTM(E or V, H, dtype=dtype, seed=seed),
                             rnnbp.Linear(H, V, dtype=dtype, seed=seed + 1))
    opt = rnnbp.optim.Adam(model, lr=cfg["lr"])
    tbptt = rnnbp.TruncatedBPTT(model, cfg["k1"], cfg["k2"])
    xs = train_ids[:-1] if E else one_hot(train_ids[:-1], V, dtype=dtype)
    targets = train_ids[1:]
    windows_per_epoch = -(-xs.shape[0] // cfg["k1"])
    bar = Progress(cfg["epochs"] * windows_per_epoch, "text")
    window_bpc: list[float] = []
    val_bpc: list[float] = []

    def on_window(w: int, value: float) -> None:
        window_bpc.append(value * LOG2E)
        bar.update(info=f"{value * LOG2E:.3f} bits/char")

    for _ in range(cfg["epochs"]):
        tbptt.reset()
        tbptt.run(xs, targets, softmax_cross_entropy, optimizer=opt, clip=cfg["clip"],
                  callback=on_window)
        val_bpc.append(_bits_per_char(model, val_ids, V, dtype))
    bar.close()
    train_bpc = _bits_per_char(model, train_ids[: min(train_ids.shape[0], 2000)], V, dtype)
    rng = np.random.default_rng(seed)
    samples = {str(temp): "The " + vocab.decode(rnnbp.sample(model, vocab.encode("The "), cfg["sample_chars"],
                                                             temperature=temp, rng=rng))
               for temp in (0.5, 1.0)}
    for temp, s in samples.items():
        print(f"--- sample, temperature {temp} ---\n{s}\n")
    print(f"held-out: {val_bpc[-1]:.3f} bits/char (unigram {unigram:.3f})")
    _figure(window_bpc, windows_per_epoch, val_bpc, unigram, out)
    return {"config": {**cfg, "dtype": dtype.name, "vocab_size": V, "characters": int(ids.size)},
            "unigram_bits_per_char": unigram, "train_bits_per_char": train_bpc,
            "val_bits_per_char": val_bpc, "samples": samples, "figures": ["bits_per_char.png"]}
