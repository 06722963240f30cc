"""``mine()``: teachers' candidate pools -> filtered, selected negatives, one row per (query, positive).

Flow per teacher: ``Candidates`` (Q, D) -> ``filters.mining_chain`` (padding, positives by id, the
method, optional floor; removals counted) -> per row ``select.selection_order`` -> ``ensemble.combine``.
Rows short of ``num_negatives`` are kept, dropped or re-mined deeper (``on_shortfall``), always counted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.testhooks import kill_point
from hardneg.data.negatives import NegRow
from hardneg.mining.candidates import Candidates, Teacher
from hardneg.mining.config import MineConfig
from hardneg.mining.ensemble import Queue, combine
from hardneg.mining.filters import aggregate_positive, mining_chain, zero_threshold
from hardneg.mining.judges import AgreementJudge, Judge
from hardneg.mining.judging import apply_judge
from hardneg.mining.select import row_rng, selection_order
from hardneg.mining.stats import build_stats, warning_messages

log = logging.getLogger(__name__)





@dataclass
class MineResult:
    rows: list[NegRow]
    stats: dict
    values: dict[str, np.ndarray]   # raw pos_score / neg_score / neg_minus_pos, for plots
    teachers: list[dict]            # [{"name", "fingerprint"}]
    data_fingerprint: str
    timings: dict[str, float] = field(default_factory=dict)
    search: list[dict] = field(default_factory=list)  # per teacher: how its pool was searched (Candidates.search)
    audit: list[dict] | None = None  # the judge's flagged candidates (None: no judge ran)


@dataclass
class _QueryOut:
    rows: list[NegRow]
    diffs: list[list[float]]        # per row: each negative minus its own teacher's positive score
    removed: Counter                # filter name -> count, summed over teachers
    seen: int
    audit: list[dict] = field(default_factory=list)  # the judge's flagged candidates of this query
    dropped: bool = False                            # left out by the drop-query action
    zero_threshold: list[str] = field(default_factory=list)  # teachers whose threshold is 0 here (p = 0)


def _known_positives(data, anchor_only: bool) -> tuple[list[str], dict[str, list[str]]]:
    """Query ids with relevant docs and their known positives (only the first with ``anchor_only``)."""
    index = data.corpus.index
    qids = data.query_ids()
    known: dict[str, list[str]] = {}
    for qid in qids:
        if qid not in data.queries:
            raise HardnegError(f"query {qid!r} is in the qrels but not in the queries; fix the qrels or queries file")
        pos = data.relevant(qid)
        for d in pos:
            if d not in index:
                raise HardnegError(f"positive {d!r} of query {qid!r} is not in the corpus; fix the qrels file")
        known[qid] = pos[:1] if anchor_only else pos
    return qids, known


def _fetch(source, data, qids: list[str], depth: int) -> Candidates:
    """The candidate pool for ``qids``: from a Teacher (at ``depth``) or a precomputed Candidates."""
    if isinstance(source, Candidates):
        cand = source
    else:
        cand = source.candidates(data, qids, depth)
        kill_point("mine.candidates", str(cand.teacher))
    try:
        cand = cand.subset(qids)
    except KeyError as e:
        raise HardnegError(f"teacher {cand.teacher!r} returned no candidates for query {e.args[0]!r}") from None
    n = len(data.corpus)
    if cand.doc_idx.size and (cand.doc_idx.max() >= n or cand.doc_idx.min() < -1):
        raise HardnegError(f"teacher {cand.teacher!r} returned corpus rows outside 0..{n - 1}: "
                           "its candidates were built for another corpus")
    return cand


def _positive_scores(cand: Candidates, r: int, qid: str, pos_ids: list[str], index: dict) -> dict[str, float]:
    """Teacher score of each known positive: from ``pos_scores``, else from the pool if retrieved."""
    given = cand.pos_scores.get(qid, {})
    out: dict[str, float] = {}
    for d in pos_ids:
        if d in given:
            out[d] = float(given[d])
            continue
        hit = np.flatnonzero(cand.doc_idx[r] == index[d])
        if hit.size:
            out[d] = float(cand.scores[r, hit[0]])
    return out


def _filter(cand: Candidates, data, known: dict[str, list[str]], config: MineConfig):
    """Run the filter chain on one teacher's pool; returns (alive, removed, pos score dicts)."""
    index = data.corpus.index
    pos_rows = [{index[d] for d in known[q]} for q in cand.qids]
    pos = [_positive_scores(cand, r, q, known[q], index) for r, q in enumerate(cand.qids)]
    p = np.array([aggregate_positive(list(ps.values()), config.positive_score) for ps in pos])
    if config.method in ("marginpos", "percpos") and np.isnan(p).any():
        q = cand.qids[int(np.flatnonzero(np.isnan(p))[0])]
        raise HardnegError(f"teacher {cand.teacher!r} gave no score for any positive of query {q!r}; "
                           f"{config.method} needs it (use a teacher that fills pos_scores)")
    alive, removed = mining_chain(cand.doc_idx, cand.scores, p, pos_rows, config.method,
                                  min_score=config.min_score, **config.filter_params())
    return alive, removed, pos, p


def _queues(survivors, config: MineConfig, qid: str, pos_id: str, tpos=None) -> list[Queue]:
    """Each teacher's survivors in its selection order (sampled ones seeded per row and teacher;
    ``tpos[t]`` is the row's positive score under teacher t, which ``simans`` centres on)."""
    queues = []
    for t, (docs, sc) in enumerate(survivors):
        rng = None if config.select == "top" else row_rng(config.seed, qid, pos_id, "select", t)
        p = None if tpos is None else (float("nan") if tpos[t] is None else tpos[t])
        order = selection_order(config.select, sc, rng, sample_from=config.sample_from,
                                temperature=config.sample_temperature, positive=p,
                                simans_a=config.simans_a, simans_b=config.simans_b)
        queues.append(Queue(docs[order], sc[order]))
    return queues


def _mine_queries(cands: list[Candidates], data, qids: list[str], known: dict[str, list[str]],
                  config: MineConfig, judge: Judge | None = None,
                  voters: list[Candidates] = ()) -> tuple[dict[str, _QueryOut], dict | None]:
    """Filter every teacher's pool (and judge it, with the ``voters``' pools), then select and combine
    negatives row by row. Returns the per-query results and the judge's held-out precision / recall."""
    from tqdm.auto import tqdm

    filtered = [_filter(c, data, known, config) for c in cands]
    step = None
    if judge is not None:
        vf = [_filter(v, data, known, config) for v in voters]
        step = apply_judge(judge, [*cands, *voters], [f[0] for f in filtered + vf], [f[3] for f in filtered + vf],
                           data, known, config.false_negatives, config.drop_query_over, config.anchor_only,
                           n_select=len(cands))
        filtered = [(a, {**rem, "judge": jr}, pos, p) for (_, rem, pos, p), a, jr
                    in zip(filtered, step.alive, step.removed)]
    ids, names = data.corpus.ids, [c.teacher for c in cands]
    cross = len(cands) > 1 and config.ensemble == "cross-sample"
    zero = [zero_threshold(f[3], config.method) for f in filtered]  # per teacher: (Q,) p = 0
    out: dict[str, _QueryOut] = {}
    for r, qid in enumerate(tqdm(qids, desc="mine", unit="q", disable=len(qids) < 5000, leave=False)):
        kill_point("mine.query", qid)
        removed: Counter = Counter()
        for _, rem, _, _ in filtered:
            removed.update({k: int(v[r]) for k, v in rem.items()})
        qo = _QueryOut([], [], removed, sum(int((c.doc_idx[r] >= 0).sum()) for c in cands),
                       zero_threshold=[n for n, z in zip(names, zero) if z[r]])
        if step is not None:
            qo.audit, qo.dropped = step.audit.get(qid, []), qid in step.dropped
        out[qid] = qo
        if qo.dropped:
            continue
        survivors = [(c.doc_idx[r][al[r]], c.scores[r][al[r]]) for c, (al, *_) in zip(cands, filtered)]
        shared = _queues(survivors, config, qid, "") if config.select == "top" else None
        for pos_id in known[qid]:
            tpos = [f[2][r].get(pos_id) for f in filtered]
            queues = shared if shared is not None else _queues(survivors, config, qid, pos_id, tpos)
            rng = row_rng(config.seed, qid, pos_id, "ensemble") if cross else None
            picks = combine(queues, config.num_negatives, config.ensemble, rng)
            lead = picks[0].teacher if picks and cross else 0
            qo.rows.append(NegRow(qid, pos_id, tpos[lead], [ids[k.doc] for k in picks],
                                  [k.score for k in picks], [names[k.teacher] for k in picks],
                                  list(step.relabeled.get(qid, [])) if step is not None else []))
            qo.diffs.append([k.score - tpos[k.teacher] for k in picks if tpos[k.teacher] is not None])
    return out, (step.quality if step is not None else None)


def _is_short(qo: _QueryOut, n: int) -> bool:
    return any(len(row.neg_ids) < n for row in qo.rows)


def _deepen(sources, data, results: dict[str, _QueryOut], known, config: MineConfig, shortfall: dict,
            judge: Judge | None = None, voters=()) -> None:
    """Re-mine short queries at doubling depth until they are full or the pool is the whole corpus."""
    n_corpus = len(data.corpus)
    short = [q for q, qo in results.items() if _is_short(qo, config.num_negatives)]
    if short and any(isinstance(s, Candidates) for s in sources):
        log.warning("on_shortfall=deepen: precomputed candidates cannot be re-searched; %d short queries kept",
                    len(short))
        return
    depth = min(config.depth, n_corpus)
    while short and depth < n_corpus:
        depth = min(2 * depth, n_corpus)
        log.info("deepening %d short queries to depth %d", len(short), depth)
        cands = [_fetch(s, data, short, depth) for s in sources]
        vc = [_fetch(v, data, short, depth) for v in voters] if judge is not None else []
        results.update(_mine_queries(cands, data, short, known, config, judge, vc)[0])
        short = [q for q in short if _is_short(results[q], config.num_negatives)]
    shortfall["max_depth"] = depth


def mine(data, teachers: list[Teacher] | list[Candidates], config: MineConfig | None = None, *,
         judge: Judge | None = None, voters: list[Teacher] | list[Candidates] = ()) -> MineResult:
    """Mine ``config.num_negatives`` negatives per (query, positive) of ``data``'s split.

    ``teachers``: Teacher objects (asked for ``config.depth`` candidates) or precomputed Candidates.
    Rows come in qrels order, positives in qrels order; with ``anchor_only`` only each query's
    first positive is known (others may be mined) and only its row is emitted. ``judge`` (or
    ``config.judge``) flags probable false negatives among the survivors; ``config.false_negatives``
    says what happens to them, ``MineResult.audit`` lists them (see ``mining.judging``).
    ``voters``: teachers that only vote in the judge (their pools supply no negatives).
    """
    config = config or MineConfig()
    judge = judge or make_judge(config, len(teachers) + len(voters))
    if voters and judge is None:
        raise HardnegError("judge-only teachers (voters) need a judge: set judge='agreement' (--judge agreement)")
    if not teachers:
        raise HardnegError("mine() needs at least one teacher")
    if config.num_negatives >= len(data.corpus):
        raise HardnegError(f"num_negatives {config.num_negatives} must be smaller than the corpus "
                           f"({len(data.corpus)} passages)")
    t0 = time.perf_counter()
    qids, known = _known_positives(data, config.anchor_only)
    if not qids:
        raise HardnegError(f"split {data.split!r} has no query with a relevant document (grade > 0)")
    depth = min(config.depth, len(data.corpus))
    cands = [_fetch(s, data, qids, depth) for s in teachers]
    vcands = [_fetch(v, data, qids, depth) for v in voters]
    t1 = time.perf_counter()
    results, quality = _mine_queries(cands, data, qids, known, config, judge, vcands)
    short0 = sum(len(r.neg_ids) < config.num_negatives for qo in results.values() for r in qo.rows)
    shortfall = {"handling": config.on_shortfall, "rows_short_initially": short0}
    if config.on_shortfall == "deepen":
        _deepen(teachers, data, results, known, config, shortfall, judge, voters)
    t2 = time.perf_counter()
    rows, diffs, dropped = [], [], 0
    for q in qids:
        for row, d in zip(results[q].rows, results[q].diffs):
            if config.on_shortfall == "drop" and len(row.neg_ids) < config.num_negatives:
                dropped += 1
                continue
            rows.append(row)
            diffs.append(d)
    shortfall["dropped"] = dropped
    stats, values = build_stats(rows, diffs, results.values(), config, shortfall, len(qids))
    for message in warning_messages(stats, config):
        log.warning(message)
    teacher_info = [{"name": c.teacher, "fingerprint": c.fingerprint} for c in cands]
    timings = {"candidates_s": round(t1 - t0, 3), "mining_s": round(t2 - t1, 3)}
    search = [c.search or {"backend": "n/a"} for c in cands]
    audit = None
    if judge is not None:
        audit = [e for q in qids for e in results[q].audit]
        stats["judge"] = {"judge": judge.name, "action": config.false_negatives, "flagged": len(audit),
                          "voters": [v.teacher for v in vcands],
                          "relabeled": sum(len({d for r in results[q].rows for d in r.relabeled}) for q in qids),
                          "removed": stats["removed"].get("judge", 0),
                          "queries_dropped": sum(results[q].dropped for q in qids), "held_out": quality}
    return MineResult(rows, stats, values, teacher_info, data.fingerprint(), timings, search, audit)


def make_judge(config: MineConfig, n_teachers: int) -> Judge | None:
    """The judge ``config.judge`` names, when it needs no model (``agreement``); None for ``none``.
    Model-based judges (``cross-encoder``) are built by ``mining.teachers`` and passed to ``mine``."""
    if config.judge == "none":
        return None
    if config.judge == "agreement":
        if config.judge_min_votes > n_teachers:
            raise HardnegError(f"the agreement judge needs at least --judge-min-votes ({config.judge_min_votes}) "
                               f"teachers, got {n_teachers}: add --teacher or lower --judge-min-votes")
        return AgreementJudge(config.judge_min_votes, config.judge_frac)
    raise HardnegError(f"judge {config.judge!r} needs a model: build it with "
                       "hardneg.mining.teachers.judge.load_judge and pass it to mine(..., judge=...)")
