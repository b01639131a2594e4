"""The rendered line splits, their cache for sweep workers, and minibatches in either view.

Every split has its own stream of lines (``tasks.data.lines.make_lines``):
``train`` and ``val`` (validation) and ``seen`` in the training fonts, and
``held_out`` in ``tasks.data.lines.HELD_OUT_FONTS``. Validation lines choose
and stop; held-out lines never choose anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..data.lines import HELD_OUT_FONTS, TRAIN_FONTS, LineDistortion, make_lines

__all__ = ["SPLITS", "split_spec", "make_data", "cache_path", "cached", "load_data", "pen_scale",
           "window_features", "LineView"]

SPLITS = ("train", "val", "seen", "held_out")


def split_spec(split: str, data: dict[str, Any], seed: int) -> tuple[int, tuple, int]:
    """(lines, fonts, seed) of a split: every split has its own stream of lines."""
    n = {"train": data["n_train"], "val": data["n_val"], "seen": data["n_test"],
         "held_out": data["n_test"]}[split]
    fonts = HELD_OUT_FONTS if split == "held_out" else TRAIN_FONTS
    return n, fonts, 1000 * seed + SPLITS.index(split)


def make_data(data: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Render every split, in shards (``start=``), as flat arrays keyed ``"split/field"``.

    Images and pen steps are stored padded ``(T, N, D)`` with their lengths;
    labels ``(N, L_max)`` padded with 0; texts and fonts as string arrays.
    """
    arrays: dict[str, np.ndarray] = {}
    for split in SPLITS:
        n, fonts, s = split_spec(split, data, seed)
        distortion = None
        if split == "train" and data.get("train_distortion"):
            distortion = LineDistortion(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in data["train_distortion"].items()})
        parts = [make_lines(min(data["shard"], n - lo), fonts=fonts, seed=s, start=lo,
                            height=data["height"], chars=tuple(data["chars"]), x_scale=data["x_scale"],
                            pen_spacing=data["pen_spacing"], distortion=distortion)
                 for lo in range(0, n, data["shard"])]
        for field, lengths in (("images", "image_lengths"), ("pen", "pen_lengths")):
            T = max(getattr(p, field).shape[0] for p in parts)
            steps = np.concatenate(
                [np.pad(getattr(p, field), ((0, T - getattr(p, field).shape[0]), (0, 0), (0, 0)))
                 for p in parts], axis=1)
            if field == "images":   # ink in [0, 1] as bytes: a quarter of the memory, error <= 1/510
                steps = np.round(steps * 255).astype(np.uint8)
            arrays[f"{split}/{field}"] = steps
            arrays[f"{split}/{lengths}"] = np.concatenate([getattr(p, lengths) for p in parts])
        L = max(p.labels.shape[1] for p in parts)
        arrays[f"{split}/labels"] = np.concatenate(
            [np.pad(p.labels, ((0, 0), (0, L - p.labels.shape[1]))) for p in parts])
        arrays[f"{split}/label_lengths"] = np.concatenate([p.label_lengths for p in parts])
        arrays[f"{split}/texts"] = np.array([t for p in parts for t in p.texts], dtype=str)
        arrays[f"{split}/fonts"] = np.concatenate([p.fonts for p in parts]).astype(str)
    return arrays


def cache_path(data: dict[str, Any], seed: int) -> Path:
    """Where :func:`cached` leaves the rendered splits for its workers: the temporary directory,
    named by a digest of ``(data, seed)``."""
    digest = hashlib.sha1(json.dumps([data, seed], sort_keys=True).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"rnnbp-ocr-lines-{digest}.npz"


@contextlib.contextmanager
def cached(data: dict[str, Any], seed: int) -> Iterator[dict[str, np.ndarray]]:
    """Render the splits, leave them at :func:`cache_path` for the workers while the block runs.

    Yields the arrays; the file is written atomically (a partial file renamed)
    and removed when the block ends, however it ends.
    """
    arrays = make_data(data, seed)
    cache = cache_path(data, seed)
    partial = cache.with_name(cache.stem + f".{os.getpid()}.partial.npz")
    np.savez(partial, **arrays)
    partial.replace(cache)
    try:
        yield arrays
    finally:
        cache.unlink(missing_ok=True)


def load_data(data: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """The rendered splits: from :func:`cache_path` if :func:`cached` wrote it, else rendered anew.

    The cache only saves time: the lines depend on ``(data, seed)`` alone, so
    a worker without the file (on another machine, or after the run removed
    it) renders the same arrays.
    """
    try:
        with np.load(cache_path(data, seed)) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile):
        return make_data(data, seed)


def pen_scale(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Scale of the pen features: ``(dx, dy)`` to unit standard deviation over the training steps."""
    pen, n = arrays["train/pen"], arrays["train/pen_lengths"]
    valid = np.arange(pen.shape[0])[:, None] < n[None, :]
    std = pen[valid][:, :2].astype(np.float64).std(axis=0)
    return np.array([1 / std[0], 1 / std[1], 1.0], dtype=np.float32)


def window_features(xs: np.ndarray, k: int) -> np.ndarray:
    """Stack each step with its ``k`` neighbours on either side: ``(T, B, D) -> (T, B, (2k+1) D)``.

    Steps before the start are zeros, as are those after the end (the
    padding of a shorter sequence is zeros too): feature block ``j`` of step
    ``t`` is ``xs[t + j - k]``.

    Examples
    --------
    >>> import numpy as np
    >>> window_features(np.arange(3.0).reshape(3, 1, 1), 1)[:, 0]
    array([[0., 0., 1.],
           [0., 1., 2.],
           [1., 2., 0.]])
    """
    T = xs.shape[0]
    padded = np.concatenate([np.zeros((k,) + xs.shape[1:], xs.dtype), xs,
                             np.zeros((k,) + xs.shape[1:], xs.dtype)])
    return np.concatenate([padded[j:j + T] for j in range(2 * k + 1)], axis=2)


class LineView:
    """Minibatches of one split in one view: inputs (windowed for a static model), mask, labels."""

    def __init__(self, arrays: dict[str, np.ndarray], split: str, view: str, window: int | None,
                 scale: np.ndarray, dtype: np.dtype) -> None:
        field, lengths = ("images", "image_lengths") if view == "image" else ("pen", "pen_lengths")
        self.xs, self.lengths = arrays[f"{split}/{field}"], arrays[f"{split}/{lengths}"]
        self.labels, self.label_lengths = arrays[f"{split}/labels"], arrays[f"{split}/label_lengths"]
        self.texts, self.fonts = arrays[f"{split}/texts"], arrays[f"{split}/fonts"]
        self.window, self.dtype = window, dtype
        self.scale = scale if view == "pen" else np.asarray(1 / 255, dtype=dtype)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, ix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xs (T, B, D'), labels (B, L) padded with -1, mask (T, B))`` for lines ``ix``."""
        T = int(self.lengths[ix].max())
        xs = self.xs[:T, ix].astype(self.dtype)
        xs *= self.scale
        if self.window is not None:
            xs = window_features(xs, self.window)
        L = int(self.label_lengths[ix].max())
        labels = np.where(np.arange(L)[None, :] < self.label_lengths[ix, None], self.labels[ix, :L], -1)
        mask = np.arange(T)[:, None] < self.lengths[ix][None, :]
        return np.ascontiguousarray(xs), labels, mask

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """Index arrays of lines of similar length (less padding); shuffled with ``rng``.

        With ``rng``, lines are sorted by length plus a random jitter of up to
        a tenth of the longest, so batches change from epoch to epoch, and the
        batch order is shuffled.
        """
        key = self.lengths.astype(np.float64)
        if rng is not None:
            key = key + rng.uniform(0, 0.1 * key.max(), key.size)
        order = np.argsort(key, kind="stable")
        out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        if rng is not None:
            out = [out[i] for i in rng.permutation(len(out))]
        return out


