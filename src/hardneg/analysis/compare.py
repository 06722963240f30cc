"""Compare evaluation runs query by query: for each metric, the two means, their difference and a
paired-bootstrap interval over the queries both runs score (``significance.paired_bootstrap``).

A run here is its per-query values ``{metric: {qid: value}}`` (``EvalResult.per_query``); the first
run of ``compare`` is the baseline, every other one is compared with it, as ranx's ``compare`` does.
Pure Python over plain dicts; reading files is the CLI's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from hardneg.analysis.significance import Delta, metric_key, paired_bootstrap
from hardneg.core.errors import HardnegError

PerQuery = Mapping[str, Mapping[str, float]]  # metric -> {qid: value}

PRIMARY = "ndcg@10"


@dataclass(frozen=True)
class CompareRow:
    """One metric of one run against the baseline; means over the ``delta.n`` compared queries."""

    metric: str
    baseline: str        # run names
    other: str
    baseline_mean: float
    other_mean: float
    delta: Delta         # other - baseline, with its interval

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.delta.significant

    def to_dict(self) -> dict:
        d = self.delta
        return {"metric": self.metric, "baseline": self.baseline, "other": self.other,
                "baseline_mean": self.baseline_mean, "other_mean": self.other_mean, "difference": d.mean,
                "lo": d.lo, "hi": d.hi, "n_queries": d.n, "significant": self.significant}


def pick_metrics(runs: Mapping[str, PerQuery], wanted: Sequence[str] | None = None) -> list[str]:
    """The metrics to compare (``runs``: name -> per-query values), spelt as the first run spells them.

    Default: those every run has, ``ndcg@10`` first, then the first run's order. Asked-for names
    are matched loosely (``NDCG@10`` = ``ndcg_cut_10``) and must be in every run.

    >>> pick_metrics({"A": {"mrr@10": {}, "ndcg@10": {}, "p@10": {}}, "B": {"ndcg@10": {}, "mrr@10": {}}})
    ['ndcg@10', 'mrr@10']
    >>> pick_metrics({"A": {"mrr@10": {}, "ndcg@10": {}}}, ["MRR@10"])
    ['mrr@10']
    """
    if not runs:
        return []
    first, *rest = runs.values()
    if wanted:
        for name in wanted:
            lacking = [n for n, run in runs.items() if not _has(run, name)]
            if lacking:
                have = ", ".join(runs[lacking[0]]) or "none"
                raise HardnegError(f"{lacking[0]} has no metric {name!r}; it has {have}")
        return list(dict.fromkeys(metric_key(first, name) for name in wanted))
    shared = [m for m in first if all(_has(r, m) for r in rest)]
    if not shared:
        raise HardnegError(f"the runs share no metric ({', '.join(runs)})")
    return sorted(shared, key=lambda m: m.lower() != PRIMARY)  # stable: the rest keep their order


def shared_queries(base: Mapping[str, float], other: Mapping[str, float], *, intersect: bool = False,
                   names: tuple[str, str] = ("baseline", "other"), metric: str = "") -> list[str]:
    """The query ids both score, in the baseline's order.

    Queries scored by only one run are an error (it names the counts) unless ``intersect``.

    >>> shared_queries({"a": 1, "b": 0, "c": 1}, {"c": 0, "a": 1}, intersect=True)
    ['a', 'c']
    """
    shared = [q for q in base if q in other]
    only_base, only_other = len(base) - len(shared), len(other) - len(shared)
    what = f" for {metric}" if metric else ""
    if not shared:
        raise HardnegError(f"{names[0]} and {names[1]} share no query{what} "
                           f"({len(base)} and {len(other)} queries): were they evaluated on the same split?")
    if (only_base or only_other) and not intersect:
        raise HardnegError(f"{names[0]} and {names[1]} score different queries{what}: {only_base} only in "
                           f"{names[0]}, {only_other} only in {names[1]}, {len(shared)} in both; "
                           f"pass --intersect (intersect=True) to compare on the {len(shared)} shared ones")
    return shared


def compare_pair(base: PerQuery, other: PerQuery, metrics: Sequence[str], *, names: tuple[str, str],
                 n_resamples: int = 2000, seed: int = 0, level: float = 0.95,
                 intersect: bool = False) -> list[CompareRow]:
    """One ``CompareRow`` per metric of ``other`` against ``base``, on their shared queries."""
    rows = []
    for m in metrics:
        b, o = base[metric_key(base, m)], other[metric_key(other, m)]
        qids = shared_queries(b, o, intersect=intersect, names=names, metric=m)
        b, o = {q: float(b[q]) for q in qids}, {q: float(o[q]) for q in qids}
        delta = paired_bootstrap(b, o, n_resamples=n_resamples, seed=seed, level=level)
        rows.append(CompareRow(m, names[0], names[1], sum(b.values()) / len(qids), sum(o.values()) / len(qids),
                               delta))
    return rows


def compare(runs: Mapping[str, PerQuery], *, metrics: Sequence[str] | None = None, n_resamples: int = 2000,
            seed: int = 0, level: float = 0.95, intersect: bool = False) -> list[CompareRow]:
    """Compare every run of ``runs`` (name -> per-query values) with the first one, the baseline.

    Rows come run by run, metric by metric (``pick_metrics``). Each interval is
    ``paired_bootstrap`` over the shared queries with the same ``seed``.

    >>> rows = compare({"A": {"ndcg@10": {"q1": .2, "q2": .4}}, "B": {"ndcg@10": {"q1": .3, "q2": .5}}})
    >>> r = rows[0]
    >>> r.other, r.metric, round(r.baseline_mean, 4), round(r.other_mean, 4), r.delta.fmt(2), r.significant
    ('B', 'ndcg@10', 0.3, 0.4, '+0.10 [+0.10, +0.10]', True)
    """
    names = list(runs)
    if len(names) < 2:
        raise HardnegError(f"compare needs a baseline and at least one other run, got {len(names)}")
    if n_resamples < 1:
        raise HardnegError(f"the number of bootstrap resamples must be positive, got {n_resamples}")
    picked = pick_metrics(runs, metrics)
    base = runs[names[0]]
    rows: list[CompareRow] = []
    for name in names[1:]:
        rows += compare_pair(base, runs[name], picked, names=(names[0], name), n_resamples=n_resamples,
                             seed=seed, level=level, intersect=intersect)
    return rows


def _has(run: PerQuery, name: str) -> bool:
    try:
        metric_key(run, name)
    except KeyError:
        return False
    return True
