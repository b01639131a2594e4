"""Convert the UEA copy of UCI "Japanese Vowels" into ``japanese_vowels.npz`` (run once, by hand).

Where the two input files came from
-----------------------------------
``JapaneseVowels_TRAIN.ts`` and ``JapaneseVowels_TEST.ts`` (the standard
270/370 split, in the UEA/UCR ``.ts`` text format) from the ``aeon`` wheel::

    pip download aeon==1.6.0 --no-deps -d /tmp/aeon
    # aeon-1.6.0-py3-none-any.whl, SHA-256
    # d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409
    cd /tmp/aeon && unzip aeon-1.6.0-py3-none-any.whl 'aeon/datasets/data/JapaneseVowels/*'
    python tasks/data/japanese_vowels/convert.py /tmp/aeon/aeon/datasets/data/JapaneseVowels

The SHA-256 of both ``.ts`` files is checked below, so a different copy is
refused rather than silently converted. Neither aeon nor any other package is
needed afterwards: :mod:`tasks.data.vowels` reads the ``.npz`` with numpy
alone.

What is written
---------------
``japanese_vowels.npz`` (``numpy.savez_compressed``, no pickled objects):

- ``frames`` float32 ``(F, 12)``: every utterance's frames, one after the
  other (training utterances first, in file order, then test ones);
- ``lengths`` int16 ``(640,)``: frames per utterance (7 to 29);
- ``speakers`` int8 ``(640,)``: the speaker, 0 to 8 (the files' labels 1 to 9,
  minus one);
- ``n_train`` int16 scalar: 270, the number of leading utterances that form
  the training set.

The ``.ts`` values have six decimals and magnitudes below 3, so float32 keeps
every one to within 1e-7 of the text (checked below).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "japanese_vowels.npz"
SOURCES = {
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
COEFFICIENTS = 12


def read_ts(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Utterances ``(T_i, 12)`` float64 and their labels (1 to 9) from one ``.ts`` file."""
    utterances, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        if len(dims) != COEFFICIENTS:
            raise ValueError(f"{path.name}: expected {COEFFICIENTS} dimensions per line, got {len(dims)}")
        series = [np.array([float(v) for v in d.split(",")]) for d in dims]
        if len({len(s) for s in series}) != 1:
            raise ValueError(f"{path.name}: dimensions of one utterance differ in length")
        utterances.append(np.stack(series, axis=1))
        labels.append(int(label))
    return utterances, labels


def main(folder: str) -> None:
    folder_path = Path(folder)
    parts = []
    for name, digest in SOURCES.items():
        path = folder_path / name
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != digest:
            raise SystemExit(f"{path}: SHA-256 {got}, expected {digest} (not the aeon 1.6.0 copy)")
        parts.append(read_ts(path))
    (train_u, train_l), (test_u, test_l) = parts
    utterances, labels = train_u + test_u, train_l + test_l
    frames64 = np.concatenate(utterances)
    frames = frames64.astype(np.float32)
    assert np.max(np.abs(frames - frames64)) < 1e-6
    np.savez_compressed(OUT, frames=frames,
                        lengths=np.array([len(u) for u in utterances], dtype=np.int16),
                        speakers=(np.array(labels) - 1).astype(np.int8),
                        n_train=np.int16(len(train_u)))
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"{OUT.name}: {OUT.stat().st_size} bytes, SHA-256 {digest}")
    print(f"{len(train_u)} training and {len(test_u)} test utterances, {len(frames)} frames, "
          f"lengths {min(map(len, utterances))}-{max(map(len, utterances))}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python tasks/data/japanese_vowels/convert.py FOLDER_WITH_THE_TWO_TS_FILES")
    main(sys.argv[1])
