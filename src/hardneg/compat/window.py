"""sentence-transformers' candidate rules as pure masks over one teacher's ``Candidates`` pool.

``PeerRules`` holds ``mine_hard_negatives``' knobs; ``apply_rules`` runs them as a hardneg filter
chain (``mining.filters.run_chain``: every removal counted once, by the rule that made it) and then
cuts the peer's rank window, returning a compacted pool that ``mining.mine`` selects from:

1. padding; the query's known positives, by corpus row (all positives of the anchor text), unless
   ``include_positives``; the anchor's own text when the corpus holds it (``exclude_anchor_text``: the
   drop-in's ids are text hashes, so the corpus row whose id is the query id), unless it is one of the
   anchor's positives (sentence-transformers >= 6.3);
2. ``absolute_margin``: drop ``s + m > p``; ``relative_margin``: drop ``s > p - |p| * r`` (sign-safe);
   ``max_score``: drop ``s > max_score``; ``min_score``: drop ``s < min_score`` — inclusive
   thresholds, as the peer's; ``p`` is the query's *lowest* positive score; a hardneg ``method``
   (``mining.filters.method_mask``) may follow. With ``include_positives`` the positives are exempt
   from these score rules (the peer lets them remove the positives, #4053);
3. the window: survivors ranked ``range_min`` .. ``range_max - 1`` (0-based, in the pool's score order);
4. ``sampling="random"``: ``num_negatives`` of the window drawn uniformly without replacement, seeded
   per anchor (``row_rng(seed, qid, "random", teacher)``), kept in score order.

>>> import numpy as np
>>> from hardneg.data.types import Corpus, RetrievalData
>>> data = RetrievalData(Corpus(["p", "a", "b", "c"], [""] * 4, ["P", "A", "B", "C"]), {"q": "Q"}, {"q": {"p": 1}}, "x")
>>> cand = Candidates("t", "fp", ["q"], np.array([[1, 0, 2, 3]]), np.array([[0.9, 0.8, 0.5, 0.4]], np.float32),
...                   {"q": {"p": 0.8}})
>>> out, removed = apply_rules(cand, data, {"q": ["p"]}, PeerRules(range_max=4, num_negatives=1, absolute_margin=0.0))
>>> out.doc_idx.tolist(), {k: v for k, v in removed.items() if v}
([[2, 3]], {'positive': 1, 'absolute_margin': 1})
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.mining.candidates import Candidates
from hardneg.mining.filters import aggregate_positive, method_mask, not_padding, not_positive, run_chain
from hardneg.mining.select import row_rng

SAMPLING = ("top", "random")


@dataclass(frozen=True)
class PeerRules:
    """``mine_hard_negatives``' candidate rules, ``range_max`` already resolved."""

    range_max: int
    num_negatives: int
    range_min: int = 0
    max_score: float | None = None
    min_score: float | None = None
    absolute_margin: float | None = None
    relative_margin: float | None = None
    include_positives: bool = False
    sampling: str = "top"
    method: str | None = None          # a hardneg filter (mining.filters.METHODS) after the peer's rules
    method_params: dict = field(default_factory=dict)
    seed: int = 42
    exclude_anchor_text: bool = False  # drop the corpus row whose id is the query id (ids are text hashes)

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLING:
            raise HardnegError(f"sampling_strategy must be 'top' or 'random', got {self.sampling!r}")
        if self.range_min < 0:
            raise HardnegError(f"range_min must be non-negative, got range_min={self.range_min}")
        if self.range_min >= self.range_max:
            raise HardnegError(f"range_min must be smaller than range_max, got range_min={self.range_min} and "
                               f"range_max={self.range_max}")
        if self.num_negatives > self.range_max - self.range_min:
            raise HardnegError(f"cannot mine {self.num_negatives} negatives per anchor: only "
                               f"{self.range_max - self.range_min} candidates remain after skipping the first "
                               f"range_min={self.range_min} of range_max={self.range_max}; decrease num_negatives or "
                               f"range_min, or increase range_max")

    @property
    def uses_positive(self) -> bool:
        return (self.absolute_margin is not None or self.relative_margin is not None
                or self.method in ("marginpos", "percpos"))


def resolve_range_max(range_max: int | None, *, range_min: int, num_negatives: int, max_positives: int,
                      filtered: bool) -> int:
    """The peer's default ``range_max``: ``range_min + 10 * num_negatives + max_positives`` when a score
    rule may remove candidates (``filtered``), else ``range_min + num_negatives + max_positives``.

    >>> resolve_range_max(None, range_min=0, num_negatives=3, max_positives=2, filtered=True)
    32
    >>> resolve_range_max(7, range_min=0, num_negatives=3, max_positives=2, filtered=True)
    7
    """
    if range_max is not None:
        return int(range_max)
    return range_min + (10 * num_negatives if filtered else num_negatives) + max_positives


def _score_steps(s: np.ndarray, p: np.ndarray, exempt: np.ndarray | None, rules: PeerRules) -> list:
    """(name, keep-mask function) of every score rule that is set; ``exempt`` cells always pass."""
    pp = p[:, None]
    rules_ = [("absolute_margin", rules.absolute_margin, lambda m, v: ~(s + v > pp)),
              ("relative_margin", rules.relative_margin, lambda m, v: ~(s > pp - np.abs(pp) * v)),
              ("max_score", rules.max_score, lambda m, v: ~(s > v)),
              ("min_score", rules.min_score, lambda m, v: ~(s < v))]
    steps = []
    for name, value, fn in rules_:
        if value is not None:
            steps.append((name, lambda m, fn=fn, v=float(value): fn(m, v) | _pass(exempt, s)))
    if rules.method is not None:
        name = rules.method
        steps.append((name, lambda m: method_mask(name, s, p, m, **rules.method_params) | _pass(exempt, s)))
    return steps


def _pass(exempt: np.ndarray | None, s: np.ndarray) -> np.ndarray:
    return exempt if exempt is not None else np.zeros(s.shape, dtype=bool)


def positive_scores(cand: Candidates, known: dict[str, list[str]]) -> np.ndarray:
    """(Q,) the lowest teacher score among each query's known positives (NaN: none scored)."""
    out = []
    for q in cand.qids:
        given = cand.pos_scores.get(q, {})
        out.append(aggregate_positive([float(given[d]) for d in known[q] if d in given], "min"))
    return np.array(out, dtype=np.float64)


def apply_rules(cand: Candidates, data, known: dict[str, list[str]], rules: PeerRules) -> tuple[Candidates, dict]:
    """The compacted pool (per query: the window's candidates, in score order; -1 / -inf padding) and
    ``{rule: candidates removed}`` summed over queries (``range_min`` / ``range_max`` / ``random``: cut
    by the window and the sampling)."""
    index = data.corpus.index
    pos_rows = [{index[d] for d in known[q]} for q in cand.qids]
    p = positive_scores(cand, known)
    if rules.uses_positive and np.isnan(p).any():
        q = cand.qids[int(np.flatnonzero(np.isnan(p))[0])]
        raise HardnegError(f"teacher {cand.teacher!r} gave no score for any positive of anchor {data.queries[q]!r}; "
                           "the margins need it")
    s = cand.scores.astype(np.float64)
    exempt = None
    steps = [("padding", lambda m: not_padding(cand.doc_idx, s))]
    if rules.include_positives:
        exempt = ~not_positive(cand.doc_idx, pos_rows)
    else:
        steps.append(("positive", lambda m: not_positive(cand.doc_idx, pos_rows)))
    if rules.exclude_anchor_text:
        own = [{index[q]} if q in index and index[q] not in rows else set() for q, rows in zip(cand.qids, pos_rows)]
        steps.append(("anchor_text", lambda m: not_positive(cand.doc_idx, own)))
    alive, removed = run_chain(s.shape, steps + _score_steps(s, p, exempt, rules))
    totals = {k: int(v.sum()) for k, v in removed.items()}
    for k in ("range_min", "range_max", "random"):
        totals[k] = 0
    kept: list[np.ndarray] = []
    for r, qid in enumerate(cand.qids):
        surv = np.flatnonzero(alive[r])  # pool columns, already in the teacher's score order
        win = surv[rules.range_min:rules.range_max]
        totals["range_min"] += min(len(surv), rules.range_min)
        totals["range_max"] += max(0, len(surv) - rules.range_max)
        if rules.sampling == "random" and len(win) > rules.num_negatives:
            pick = row_rng(rules.seed, qid, "random", cand.teacher).choice(len(win), rules.num_negatives,
                                                                           replace=False)
            totals["random"] += len(win) - rules.num_negatives
            win = win[np.sort(pick)]
        kept.append(win)
    width = max([len(w) for w in kept] + [1])
    idx = np.full((len(kept), width), -1, dtype=np.int64)
    sc = np.full((len(kept), width), -np.inf, dtype=np.float32)
    for r, win in enumerate(kept):
        idx[r, :len(win)] = cand.doc_idx[r, win]
        sc[r, :len(win)] = cand.scores[r, win]
    out = Candidates(cand.teacher, cand.fingerprint, list(cand.qids), idx, sc, cand.pos_scores, dict(cand.search))
    return out, totals
