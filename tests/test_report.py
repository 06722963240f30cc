"""Known-answer tests for the statistics and the ablation report (synthetic cells, no models)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hardneg.analysis.negatives import false_negative_rate
from hardneg.analysis.significance import mean_per_query, mean_std, metric_key, paired_bootstrap
from hardneg.report.markdown import write_report
from hardneg.report.tables import method_table, summarize, teacher_table


def _scores(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0, 1, n))}


def test_bootstrap_identical_systems_is_zero():
    a = _scores()
    d = paired_bootstrap(a, dict(a))
    assert (d.mean, d.lo, d.hi, d.n) == (0.0, 0.0, 0.0, 50)
    assert not d.significant


def test_bootstrap_constant_shift_is_exact():
    a = _scores()
    d = paired_bootstrap(a, {q: v + 0.1 for q, v in a.items()})
    assert d.mean == pytest.approx(0.1) and d.lo == pytest.approx(0.1) and d.hi == pytest.approx(0.1)
    assert d.significant


def test_bootstrap_noise_interval_covers_mean_and_is_seeded():
    a, b = _scores(seed=1), _scores(seed=2)
    d1, d2 = paired_bootstrap(a, b, seed=3), paired_bootstrap(a, b, seed=3)
    assert d1 == d2
    assert d1.lo < d1.mean < d1.hi
    # two independent uniforms: the mean difference's std is ~sqrt(2/12/50) ≈ 0.058, CI width ≈ 0.23
    assert 0.15 < d1.hi - d1.lo < 0.32
    assert not d1.significant


def test_bootstrap_uses_shared_queries_only():
    d = paired_bootstrap({"a": 0.0, "b": 1.0}, {"a": 0.5, "c": 0.0})
    assert d.n == 1 and d.mean == 0.5
    with pytest.raises(ValueError):
        paired_bootstrap({"a": 0.0}, {"b": 0.0})


def test_mean_std_and_mean_per_query():
    assert mean_std([0.5]) == (0.5, 0.0)
    m, s = mean_std([1.0, 2.0, 3.0])
    assert m == 2.0 and s == pytest.approx(1.0)
    assert math.isnan(mean_std([])[0])
    assert mean_per_query([{"a": 1.0, "b": 1.0}, {"a": 0.0}]) == {"a": 0.5}


def test_false_negative_rate_counts_only_judged_relevant():
    rows = [{"qid": "q1", "neg_ids": ["a", "b", "c"]}, {"qid": "q2", "neg_ids": ["x"]},
            {"qid": "unjudged", "neg_ids": ["a"]}]
    fn = false_negative_rate(rows, {"q1": {"a": 1, "b": 0}, "q2": {"x": 3}})
    assert fn == {"rate": 0.5, "false_negatives": 2, "negatives": 4, "queries": 2, "by_grade": {"1": 1, "3": 1}}
    assert math.isnan(false_negative_rate([], {})["rate"])


def test_metric_key_spellings():
    assert metric_key({"NDCG@10": 1}, "ndcg@10") == "NDCG@10"
    assert metric_key({"recall_at_100": 1}, "recall@100") == "recall_at_100"
    with pytest.raises(KeyError):
        metric_key({"ndcg@1": 1}, "ndcg@10")


def _cell(kind, row, teacher, seed, pq, recall=0.9, **extra):
    return {"kind": kind, "row": row, "teacher": teacher, "seed": seed,
            "metrics": {"ndcg@10": float(np.mean(list(pq.values()))), "recall@100": recall},
            "per_query": {"ndcg@10": pq}, **extra}


def _synthetic_cells():
    base = _scores(40, seed=5)
    rng = np.random.default_rng(0)
    mining = {"pos_scores": list(rng.normal(0.7, 0.1, 60)), "neg_scores": list(rng.normal(0.5, 0.1, 240)),
              "summary": {"rows": 60, "mean_negatives": 4.0, "short_rows": 0}}
    cells = [_cell("base", "base", None, 0, base, seconds={"evaluate": 12.4})]
    for seed in (0, 1):
        cells.append(_cell("method", "naive", "minilm", seed, {q: v + 0.01 * seed for q, v in base.items()},
                           mining=mining))
        cells.append(_cell("method", "percpos:0.95", "minilm", seed, {q: v + 0.1 for q, v in base.items()},
                           mining=mining))
        cells.append(_cell("method", "naive", "bm25", seed, base, mining=mining))
    cells.append({"kind": "fn_probe", "row": "naive", "teacher": "minilm", "seed": 0, "data": "msmarco-nano",
                  "fn": {"rate": 0.4, "false_negatives": 40, "negatives": 100, "queries": 10,
                         "by_grade": {"1": 30, "2": 10}}})
    return cells


def test_summarize_rows_and_deltas():
    rows = summarize(_synthetic_cells())
    assert [(r.kind, r.label, r.teacher) for r in rows] == [
        ("base", "base", None), ("method", "naive", "minilm"), ("method", "percpos:0.95", "minilm"),
        ("method", "naive", "bm25")]
    base, naive, perc, bm25 = rows
    assert base.vs_base is None and base.vs_naive is None
    assert perc.seeds == [0, 1] and perc.vs_base.mean == pytest.approx(0.1)
    assert perc.vs_base.lo == pytest.approx(0.1) and perc.vs_base.hi == pytest.approx(0.1)
    assert perc.vs_naive.mean == pytest.approx(0.095)  # naive is +0.005 on average over its seeds
    assert bm25.vs_naive is None  # it is the naive row of its own teacher
    assert naive.primary[1] - naive.primary[0] == pytest.approx(0.01)


def test_tables_have_the_paper_shape():
    rows = summarize(_synthetic_cells())
    t3 = method_table(rows).splitlines()
    assert t3[0].startswith("| method | teacher | seeds | NDCG@10 | Recall@100 | Δ NDCG@10 vs base")
    assert len(t3) == 2 + 4
    assert "base (untrained)" in t3[2] and "+0.1000 [+0.1000, +0.1000] *" in t3[4]
    assert "± 0.0000" in t3[4]  # two seeds, identical values -> std shown
    t1 = teacher_table(rows).splitlines()
    assert t1[0] == "| teacher | naive | percpos:0.95 |"
    assert t1[3].startswith("| bm25 |") and t1[3].endswith("| – |")


def test_write_report_files(tmp_path):
    cells = _synthetic_cells()
    path, rows, pngs = write_report(cells, tmp_path, title="t", notes=["a note"])
    text = path.read_text()
    assert "## Methods" in text and "## Teachers" in text and "## False negatives" in text
    assert "| naive | minilm | msmarco-nano | 40 / 100 | 40.0% | 10.0% |" in text
    assert "| base | base | – | 0 | – | – | 12 |" in text
    assert {p.name for p in pngs} == {"methods.png", "score_hist.png", "fn_rate.png", "teachers.png"}
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({p.name})" in text


def test_peer_row_vs_peer_column_and_judge_table():
    from hardneg.report.tables import judge_table

    base = _scores(40, seed=5)
    judge = {"action": "relabel", "flagged": 12, "relabeled": 5,
             "held_out": {"flagged": 6, "precision": 0.5, "recall": 0.25}}
    train = {"examples": 30, "data": [{"relabeled_rows_added": 4}], "positives_mask": {"rows": 30, "rows_masked": 3}}
    cells = [_cell("base", "base", None, 0, base),
             _cell("peer", "st-mine relative_margin=0.05", "minilm", 0, {q: v + 0.02 for q, v in base.items()}),
             _cell("method", "percpos:0.95+relabel", "minilm", 0, {q: v + 0.05 for q, v in base.items()},
                   judge=judge, train=train)]
    rows = summarize(cells)
    assert [r.kind for r in rows] == ["base", "peer", "method"]
    assert rows[2].vs_peer.mean == pytest.approx(0.03) and rows[2].vs_peer.significant
    assert rows[1].vs_peer is None and rows[0].vs_peer is None
    table = method_table(rows)
    assert "vs peer" in table and "sentence-transformers mine_hard_negatives" in table
    jt = judge_table(cells)
    assert "| percpos:0.95+relabel | minilm | 0 | 6 | relabel | 5 | 0.500 | 0.250 | 30 | 4 | 3 / 30 |" in jt
    assert judge_table(cells[:2]) == ""
