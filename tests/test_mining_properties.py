"""Property tests (hypothesis): mining invariants on random score tables of every scale."""

import numpy as np
from fakes import TableTeacher
from hypothesis import given, settings
from hypothesis import strategies as st

from hardneg.data.types import Corpus, RetrievalData
from hardneg.mining.config import MineConfig
from hardneg.mining.filters import aggregate_positive
from hardneg.mining.mine import mine
from hardneg.search.rank import id_order, rank


def teacher(table):
    return TableTeacher([f"q{i}" for i in range(len(table))], table, name="t")


@st.composite
def problems(draw):
    n = draw(st.integers(6, 14))
    nq = draw(st.integers(1, 4))
    scale = draw(st.sampled_from([1.0, 30.0, -5.0]))  # cosine, BM25-like, negative dot products
    vals = draw(st.lists(st.integers(-5, 5), min_size=n * nq, max_size=n * nq))
    table = (np.array(vals, dtype=np.float32).reshape(nq, n) / 5.0) * scale  # few values: ties and s == threshold
    qrels = {}
    for q in range(nq):
        pos = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3, unique=True))
        qrels[f"q{q}"] = {f"d{i}": draw(st.integers(1, 2)) for i in pos}
    num_negatives = draw(st.integers(1, 4))
    on_shortfall = draw(st.sampled_from(["keep", "drop", "deepen"]))
    min_depth = 1 if on_shortfall == "deepen" else num_negatives  # depth < num_negatives is refused unless deepened
    cfg = MineConfig(method=draw(st.sampled_from(["naive", "shifted", "abs", "marginpos", "percpos"])),
                     shift=draw(st.integers(0, 4)), max_score=float(draw(st.sampled_from([0.0, 0.5, 10.0]))),
                     margin=draw(st.sampled_from([0.0, 0.05, 2.0])), perc=draw(st.sampled_from([0.5, 0.95, 1.0])),
                     min_score=draw(st.sampled_from([None, -1.0])),
                     positive_score=draw(st.sampled_from(["min", "mean", "max"])),
                     num_negatives=num_negatives, select=draw(st.sampled_from(["top", "sampled", "top1-sampled"])),
                     sample_from=draw(st.integers(4, 6)), sample_temperature=draw(st.sampled_from([0.1, 1.0, 30.0])),
                     depth=draw(st.integers(min_depth, n)), on_shortfall=on_shortfall,
                     seed=draw(st.integers(0, 3)), anchor_only=draw(st.booleans()))
    corpus = Corpus([f"d{i}" for i in range(n)], [""] * n, ["x"] * n)
    data = RetrievalData(corpus, {f"q{q}": "q" for q in range(nq)}, qrels, "train")
    return data, table, cfg


def _rule_holds(cfg, s, p, rank_among_nonpos):
    ok = {"naive": True, "shifted": rank_among_nonpos >= cfg.shift, "abs": s < cfg.max_score,
          "marginpos": s < p - cfg.margin, "percpos": s < p - abs(p) * (1 - cfg.perc)}[cfg.method]
    return ok and (cfg.min_score is None or s >= cfg.min_score)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_mining_invariants(problem):
    data, table, cfg = problem
    res = mine(data, [teacher(table)], cfg)
    index = data.corpus.index
    for row in res.rows:
        known = data.relevant(row.qid)[:1] if cfg.anchor_only else data.relevant(row.qid)
        q = int(row.qid[1:])
        assert not set(known) & set(row.neg_ids)                      # no positive is a negative
        assert len(row.neg_ids) <= cfg.num_negatives
        assert len(set(row.neg_ids)) == len(row.neg_ids)              # picks are distinct
        if cfg.on_shortfall == "drop":
            assert len(row.neg_ids) == cfg.num_negatives
        p = aggregate_positive([float(table[q, index[d]]) for d in known], cfg.positive_score)
        order = rank(table[q:q + 1], id_order(data.corpus.ids), len(index))[0]
        nonpos = [data.corpus.ids[j] for j in order if data.corpus.ids[j] not in known]
        for d, s in zip(row.neg_ids, row.neg_scores):
            assert s == table[q, index[d]]
            assert _rule_holds(cfg, s, p, nonpos.index(d)), (d, s, p)
        if cfg.select == "top":
            assert row.neg_scores == sorted(row.neg_scores, reverse=True)
    again = mine(data, [teacher(table)], cfg)
    assert again.rows == res.rows                                     # deterministic per seed


@settings(max_examples=60, deadline=None)
@given(problems())
def test_rows_do_not_depend_on_other_queries(problem):
    data, table, cfg = problem
    full = {(r.qid, r.pos_id): r for r in mine(data, [teacher(table)], cfg).rows}
    first = next(iter(data.qrels))
    alone = RetrievalData(data.corpus, data.queries, {first: data.qrels[first]}, "train")
    for r in mine(alone, [teacher(table)], cfg).rows:
        assert full.get((r.qid, r.pos_id), r) == r


@settings(max_examples=80, deadline=None)
@given(problems(), st.integers(0, 2 ** 16), st.sampled_from([0.5, 0.9, 1.0]))
def test_no_known_or_relabelled_positive_is_ever_a_negative(problem, seed, frac):
    """With the agreement judge relabelling (a second, voting teacher with other scores), no row's
    negatives contain a known or relabelled positive of its query, in the mined rows and in the
    training rows built from them (relabelled rows included)."""
    import dataclasses

    from hardneg.training.examples import known_positives, with_relabeled_rows

    data, table, cfg = problem
    other = np.random.default_rng(seed).permutation(table.ravel()).reshape(table.shape)
    cfg = dataclasses.replace(cfg, judge="agreement", judge_min_votes=1, judge_frac=frac,
                              false_negatives="relabel")
    res = mine(data, [teacher(table)], cfg, voters=[TableTeacher([f"q{i}" for i in range(len(other))], other, "v")])
    known = known_positives(res.rows)
    for row in res.rows:
        told = data.relevant(row.qid)[:1] if cfg.anchor_only else data.relevant(row.qid)
        assert not (set(told) | set(row.relabeled)) & set(row.neg_ids)
        assert not set(row.relabeled) & set(told)
    expanded, _ = with_relabeled_rows(res.rows)
    for row in expanded:
        assert not set(known[row.qid]) & set(row.neg_ids)
