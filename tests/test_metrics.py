"""Known-answer tests for hardneg.metrics: every expected number is computed by hand in a comment.

Conventions checked (pytrec_eval / trec_eval, as MTEB uses them): NDCG gain = the grade itself
(linear), discount 1/log2(rank + 1); MAP and recall count grade > 0 as relevant; P@k divides by k
even when fewer than k docs were retrieved.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardneg.core.errors import HardnegError
from hardneg.evaluation.metrics import (
    DEFAULT_METRICS,
    drop_identical_ids,
    judged_queries,
    mrr_at_k,
    parse_metric,
    score_run,
)

L2 = math.log2


def approx(x):
    return pytest.approx(x, abs=1e-12)


def test_binary_relevant_at_ranks_1_and_3():
    qrels = {"q": {"a": 1, "c": 1}}
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7}}
    s = score_run(qrels, run).means
    # DCG = 1/log2(2) + 1/log2(4) = 1.5 ; IDCG = 1/log2(2) + 1/log2(3) = 1.6309
    assert s["ndcg@10"] == approx((1 + 1 / L2(4)) / (1 + 1 / L2(3)))  # 0.9197
    assert s["ndcg@100"] == approx((1 + 1 / L2(4)) / (1 + 1 / L2(3)))
    assert s["map@100"] == approx((1 / 1 + 2 / 3) / 2)  # precision at each hit, over 2 relevant = 0.8333
    assert s["recall@10"] == approx(1.0) and s["recall@100"] == approx(1.0)
    assert s["p@10"] == approx(2 / 10)  # divides by 10 although only 3 were retrieved
    assert s["mrr@10"] == approx(1.0)
    assert list(s) == list(DEFAULT_METRICS)


def test_one_of_two_relevant_found_at_rank_2():
    qrels = {"q": {"a": 1, "z": 1}}  # z is never retrieved
    run = {"q": {"b": 0.9, "a": 0.8, "c": 0.7}}
    s = score_run(qrels, run).means
    assert s["ndcg@10"] == approx((1 / L2(3)) / (1 + 1 / L2(3)))  # 0.6309 / 1.6309 = 0.3869
    assert s["map@100"] == approx((1 / 2) / 2)  # 0.25
    assert s["recall@10"] == approx(0.5)
    assert s["p@10"] == approx(0.1)
    assert s["mrr@10"] == approx(0.5)


def test_graded_relevance_uses_linear_gain():
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"b": 0.9, "a": 0.8}}  # the less relevant doc first
    s = score_run(qrels, run).means
    # DCG = 1/log2(2) + 2/log2(3) = 2.2619 ; IDCG = 2/log2(2) + 1/log2(3) = 2.6309 -> 0.8597
    assert s["ndcg@10"] == approx((1 + 2 / L2(3)) / (2 + 1 / L2(3)))
    assert s["map@100"] == approx(1.0)  # both relevant (grade > 0) at ranks 1, 2
    assert s["recall@10"] == approx(1.0)
    assert s["mrr@10"] == approx(1.0)  # b (grade 1) counts as relevant


def test_grade_zero_is_judged_not_relevant():
    qrels = {"q": {"a": 0, "b": 1}}
    run = {"q": {"a": 0.9, "b": 0.8}}
    s = score_run(qrels, run).means
    assert s["ndcg@10"] == approx(1 / L2(3))  # relevant at rank 2: 0.6309 / 1
    assert s["map@100"] == approx(0.5)
    assert s["recall@10"] == approx(1.0)  # only b counts in the denominator
    assert s["p@10"] == approx(0.1)
    assert s["mrr@10"] == approx(0.5)


def test_query_judged_but_without_relevant_docs_scores_zero_and_counts():
    # MTEB only drops queries with EMPTY qrels; q2 (all grade 0) stays and scores 0 everywhere
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {}}
    run = {"q1": {"a": 0.9}, "q2": {"b": 0.9}, "q3": {"a": 0.1}}
    s = score_run(qrels, run)
    assert s.n_queries == 2 and judged_queries(qrels) == ["q1", "q2"]
    assert s.per_query["ndcg@10"] == {"q1": approx(1.0), "q2": approx(0.0)}
    assert s.per_query["mrr@10"] == {"q1": 1.0, "q2": 0.0}
    assert s.means["ndcg@10"] == approx(0.5) and s.means["recall@100"] == approx(0.5)


def test_identical_ids_dropped_by_default():
    qrels = {"q1": {"d1": 1}}
    run = {"q1": {"q1": 0.99, "d1": 0.5}}
    kept = score_run(qrels, run, ignore_identical_ids=False).means
    dropped = score_run(qrels, run).means
    assert dropped["ndcg@10"] == approx(1.0) and dropped["mrr@10"] == approx(1.0)
    assert kept["ndcg@10"] == approx(1 / L2(3)) and kept["mrr@10"] == approx(0.5)
    assert kept["p@10"] == dropped["p@10"] == approx(0.1)
    assert drop_identical_ids(run) == {"q1": {"d1": 0.5}}
    assert run == {"q1": {"q1": 0.99, "d1": 0.5}}  # input untouched


def test_cutoffs_at_10_and_100():
    qrels = {"q": {"d10": 1}}
    run = {"q": {f"d{i:02d}": 1.0 - i / 100 for i in range(20)}}  # d10 sits at rank 11
    s = score_run(qrels, run).means
    assert s["mrr@10"] == 0.0 and s["recall@10"] == 0.0 and s["ndcg@10"] == 0.0 and s["p@10"] == 0.0
    assert s["recall@100"] == approx(1.0)
    assert s["ndcg@100"] == approx(1 / L2(12))  # 0.2789
    assert s["map@100"] == approx(1 / 11)


def test_ties_break_by_doc_id_descending_in_every_metric():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 0.5, "b": 0.5}}
    s = score_run(qrels, run).means
    # pytrec_eval (and so MTEB's NDCG) ranks the tie b > a (doc id descending): relevant at rank 2
    assert s["ndcg@10"] == approx(1 / L2(3))
    # MTEB's MRR (mteb >= 2.26, its #5092) breaks ties the same way, whatever the run's order
    assert s["mrr@10"] == approx(0.5)
    assert mrr_at_k(qrels, {"q": {"b": 0.5, "a": 0.5}}, 10) == {"q": 0.5}
    assert mrr_at_k({"q": {"a": 1}}, {"q": {"a": 0.5, "b": 0.5, "c": 0.5}}, 10) == {"q": approx(1 / 3)}


def test_missing_run_query_scores_zero_and_unjudged_run_query_ignored():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 0.9}, "qX": {"b": 0.9}}
    s = score_run(qrels, run)
    assert s.n_queries == 2
    assert s.per_query["ndcg@10"] == {"q1": approx(1.0), "q2": approx(0.0)}
    assert s.per_query["mrr@10"] == {"q1": 1.0, "q2": 0.0}
    assert s.means["ndcg@10"] == approx(0.5)


def test_per_query_means_and_custom_metric_names():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 0.9, "b": 0.1}, "q2": {"a": 0.9, "b": 0.1}}
    s = score_run(qrels, run, ["NDCG@1", "mrr@1", "P@2", "recall@1", "map@2"])
    assert list(s.means) == ["ndcg@1", "mrr@1", "p@2", "recall@1", "map@2"]
    assert s.per_query["ndcg@1"] == {"q1": approx(1.0), "q2": approx(0.0)}
    assert s.means["mrr@1"] == approx(0.5)
    assert s.per_query["p@2"] == {"q1": approx(0.5), "q2": approx(0.5)}
    assert s.means["map@2"] == approx((1 + 0.5) / 2)  # q2's hit at rank 2 -> AP 1/2


def test_bad_inputs():
    with pytest.raises(HardnegError, match="unknown metric"):
        parse_metric("ndcg10")
    with pytest.raises(HardnegError, match="unknown metric"):
        score_run({"q": {"a": 1}}, {}, ["hits@10"])
    with pytest.raises(HardnegError, match="no judged queries"):
        score_run({}, {"q": {"a": 1.0}})
    assert parse_metric(" Recall@100 ") == ("recall", 100)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefghij"), st.integers(0, 2)), min_size=1, max_size=10),
       st.permutations(list("abcdefghijklmnop")), st.integers(1, 12))
def test_mrr_and_recall_against_a_direct_count(judged, order, k):
    """With distinct scores: MRR@k = 1/rank of the first grade>0 doc; recall@k = hits / #relevant."""
    qrels = {"q": dict(judged)}
    run = {"q": {d: float(len(order) - i) for i, d in enumerate(order)}}  # order = ranking
    rel = {d for d, g in qrels["q"].items() if g > 0}
    s = score_run(qrels, run, [f"mrr@{k}", f"recall@{k}", f"ndcg@{k}"]).means
    first = next((i + 1 for i, d in enumerate(order[:k]) if d in rel), None)
    assert s[f"mrr@{k}"] == approx(1 / first if first else 0.0)
    assert s[f"recall@{k}"] == approx(len(rel & set(order[:k])) / len(rel) if rel else 0.0)
    assert 0.0 <= s[f"ndcg@{k}"] <= 1.0 + 1e-12
