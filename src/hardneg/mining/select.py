"""Selection after filtering: which survivors of one (query, positive) become its negatives.

Each strategy returns a *preference order* over a row's survivors (indices into the survivor
arrays); the first ``n`` are the negatives. Ensembles walk these orders further when a duplicate
has to be replaced, which is why the order is longer than ``n`` where it can be.

* ``top``: survivors by score descending (ties keep the teacher's ranking, i.e. ``search.rank``).
* ``sampled``: a random order of the top-``sample_from`` survivors, drawn without replacement with
  probability softmax(score / T) at each draw; its first n are "n sampled from the top K".
* ``top1-sampled``: the best survivor, then the rest of the top-K sampled as above.

Sampling uses the Gumbel-top-k trick: sorting ``score / T + Gumbel noise`` descending is exactly
successive softmax sampling without replacement (Plackett-Luce), with no overflow for any score
scale. Randomness comes from ``row_rng(seed, qid, pos_id)``, so a row's picks do not depend on row
order, batching or which other rows exist.
"""

from __future__ import annotations

import hashlib

import numpy as np

SELECTIONS = ("top", "sampled", "top1-sampled", "simans")


def row_rng(seed: int, *parts: str) -> np.random.Generator:
    """A Generator seeded from (seed, qid, pos_id, ...) — stable across runs and platforms.

    >>> float(row_rng(42, "q1", "d1").random()) == float(row_rng(42, "q1", "d1").random())
    True
    """
    h = hashlib.sha256(repr((int(seed),) + tuple(str(p) for p in parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:16], "little"))


def top_order(scores: np.ndarray) -> np.ndarray:
    """Indices by score descending; ties keep input order (the teacher's tie-broken ranking).

    >>> top_order(np.array([0.2, 0.9, 0.2, 0.5])).tolist()
    [1, 3, 0, 2]
    """
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def sampled_order(scores: np.ndarray, rng: np.random.Generator, sample_from: int = 10,
                  temperature: float = 0.1) -> np.ndarray:
    """A softmax(score / T) order (without replacement) over the top ``sample_from`` of ``scores``."""
    top = top_order(scores)[:sample_from]
    if len(top) == 0:
        return top
    logits = np.asarray(scores, dtype=np.float64)[top] / temperature
    keys = logits + rng.gumbel(size=len(top))
    return top[np.argsort(-keys, kind="stable")]


def top1_sampled_order(scores: np.ndarray, rng: np.random.Generator, sample_from: int = 10,
                       temperature: float = 0.1) -> np.ndarray:
    """The best survivor, then a softmax order over the rest of the top ``sample_from``."""
    top = top_order(scores)[:sample_from]
    if len(top) <= 1:
        return top
    rest = top[1:]
    keys = np.asarray(scores, dtype=np.float64)[rest] / temperature + rng.gumbel(size=len(rest))
    return np.concatenate([top[:1], rest[np.argsort(-keys, kind="stable")]])


def simans_order(scores: np.ndarray, positive: float, rng: np.random.Generator, a: float = 20.0,
                 b: float = 0.0) -> np.ndarray:
    """SimANS (Zhou et al., EMNLP 2022): an order drawn without replacement with probability
    proportional to ``exp(-a * (s - p - b)**2)``, i.e. negatives scored near the positive ``p`` (shifted
    by ``b``) are likeliest, the very top (likely false negatives) and the easy tail less so.

    ``a`` is on the teacher's score scale: 20 suits cosines (a negative 0.1 below the positive is
    e^-0.2 as likely as one level with it, 0.3 below e^-1.8); use ~0.05-0.5 for BM25 or dot products.
    Gumbel-top-k over the logits, as ``sampled_order``; a NaN positive falls back to ``top_order``.

    >>> rng = np.random.default_rng(0)
    >>> first = [int(simans_order(np.array([0.95, 0.80, 0.30]), 0.8, rng, a=200.0)[0]) for _ in range(200)]
    >>> first.count(1) > 150   # the candidate level with the positive is drawn first most often
    True
    """
    s = np.asarray(scores, dtype=np.float64)
    if len(s) == 0 or not np.isfinite(positive):
        return top_order(s)
    keys = -a * (s - positive - b) ** 2 + rng.gumbel(size=len(s))
    return np.argsort(-keys, kind="stable")


def selection_order(select: str, scores: np.ndarray, rng: np.random.Generator | None = None, *,
                    sample_from: int = 10, temperature: float = 0.1, positive: float | None = None,
                    simans_a: float = 20.0, simans_b: float = 0.0) -> np.ndarray:
    """Dispatch to one of ``SELECTIONS``; ``rng`` is required for the sampled ones, ``positive`` (the
    row's positive score under the same teacher) for ``simans``.

    >>> selection_order("top", np.array([-3.0, -1.0, -2.0])).tolist()
    [1, 2, 0]
    """
    if select == "top":
        return top_order(scores)
    if rng is None:
        raise ValueError(f"selection {select!r} needs an rng")
    if select == "sampled":
        return sampled_order(scores, rng, sample_from, temperature)
    if select == "top1-sampled":
        return top1_sampled_order(scores, rng, sample_from, temperature)
    if select == "simans":
        if positive is None:
            raise ValueError("selection 'simans' needs the row's positive score")
        return simans_order(scores, positive, rng, simans_a, simans_b)
    raise ValueError(f"unknown selection {select!r}; choose one of {SELECTIONS}")
