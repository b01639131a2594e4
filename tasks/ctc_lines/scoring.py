"""Scores of decoded lines: CER and WER per font and per length, misreadings of look-alike letters."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnbp.metrics import character_error_rate, word_error_rate

__all__ = ["align", "AMBIGUOUS", "confusions", "score", "ratio", "cer_without"]


def align(ref: str, hyp: str) -> list[tuple[str, str]]:
    """A minimum-edit alignment of two strings: pairs ``(r, h)``, ``""`` on the side of a gap.

    Among equally short alignments, substitutions are preferred to a
    deletion plus an insertion, so a misread letter shows as a pair.

    Examples
    --------
    >>> align("corn", "com")
    [('c', 'c'), ('o', 'o'), ('r', ''), ('n', 'm')]
    """
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1)
    pairs, i, j = [], n, m
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            pairs.append((ref[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", hyp[j - 1]))
            j -= 1
    return pairs[::-1]


#: Groups of look-alike symbols: how often a reference symbol of the group is
#: misread (substituted or dropped), per group.
AMBIGUOUS = {"m/n/r/u": "mnru", "l/1/i/j/t": "l1ijt", "o/0/c/e": "o0ce", "./,/'": ".,'"}


def confusions(refs: list[str], hyps: list[str]) -> dict[str, Any]:
    """Misreadings of look-alike letters, from minimum-edit alignments of every line with an error.

    Returns the error rate of each :data:`AMBIGUOUS` group (misread
    occurrences / occurrences in the references) beside the rate over all
    other symbols; counts of ``m -> n``, ``n -> m``, ``rn -> m``, ``m -> rn``
    and of substitutions within ``{l, 1, i}``; and the most frequent
    substitutions.
    """
    occurrences = {g: sum(sum(r.count(c) for c in chars) for r in refs) for g, chars in AMBIGUOUS.items()}
    grouped = set("".join(AMBIGUOUS.values()))
    other_total = sum(sum(c not in grouped for c in r) for r in refs)
    misread = dict.fromkeys(AMBIGUOUS, 0)
    other_misread = 0
    named = {"m->n": 0, "n->m": 0, "rn->m": 0, "m->rn": 0, "l/1/i": 0}
    subs: dict[str, int] = {}
    for ref, hyp in zip(refs, hyps):
        if ref == hyp:
            continue
        pairs = align(ref, hyp)
        merged = set()                      # pairs that are half of an rn <-> m misreading
        for k, (a, b) in enumerate(zip(pairs, pairs[1:])):
            if (a[0], b[0]) == ("r", "n") and {a[1], b[1]} == {"m", ""}:
                named["rn->m"] += 1
                merged |= {k, k + 1}
            if (a[1], b[1]) == ("r", "n") and {a[0], b[0]} == {"m", ""}:
                named["m->rn"] += 1
                merged |= {k, k + 1}
        for k, (r, h) in enumerate(pairs):
            if r and r != h:
                group = next((g for g, chars in AMBIGUOUS.items() if r in chars), None)
                if group is None:
                    other_misread += 1
                else:
                    misread[group] += 1
            if r and h and r != h:
                subs[f"{r}->{h}"] = subs.get(f"{r}->{h}", 0) + 1
                if k not in merged:
                    named["m->n"] += (r, h) == ("m", "n")
                    named["n->m"] += (r, h) == ("n", "m")
                named["l/1/i"] += r in "l1i" and h in "l1i"
    return {"group_error_rate": {g: misread[g] / max(occurrences[g], 1) for g in AMBIGUOUS},
            "group_occurrences": occurrences,
            "other_error_rate": other_misread / max(other_total, 1),
            "named": named,
            "top_substitutions": dict(sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))[:12])}


def score(refs: list[str], hyps: list[str], fonts: np.ndarray, buckets: list[list[int]]) -> dict[str, Any]:
    """CER and WER of a test split: overall, per font and per line-length bucket (characters)."""
    def rates(ix):
        r, h = [refs[i] for i in ix], [hyps[i] for i in ix]
        return {"cer": character_error_rate(r, h), "wer": word_error_rate(r, h), "lines": len(ix),
                "chars": sum(map(len, r))}

    n = np.array([len(r) for r in refs])
    return {**rates(range(len(refs))),
            "by_font": {str(f): rates(np.flatnonzero(fonts == f)) for f in sorted(set(fonts.tolist()))},
            "by_length": [{"chars_range": list(b), **rates(np.flatnonzero((n >= b[0]) & (n <= b[1])))}
                          for b in buckets if ((n >= b[0]) & (n <= b[1])).any()],
            "lines_correct": float(np.mean([r == h for r, h in zip(refs, hyps)]))}


def ratio(a: float, b: float) -> float | None:
    """``a / b``, or ``None`` when ``b`` is 0 (a ratio of error rates)."""
    return a / b if b > 0 else None


def cer_without(refs: list[str], hyps: list[str], fonts: np.ndarray) -> dict[str, float]:
    """For every font of ``fonts``: the CER of the lines in all the other fonts."""
    return {str(f): character_error_rate([refs[i] for i in np.flatnonzero(fonts != f)],
                                         [hyps[i] for i in np.flatnonzero(fonts != f)])
            for f in sorted(set(fonts.tolist()))}
