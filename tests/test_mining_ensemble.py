"""Teacher ensembles on hand-made queues and through mine() with hand-made multi-teacher Candidates."""

import numpy as np
import pytest

from hardneg.data.types import Corpus, RetrievalData
from hardneg.mining.candidates import Candidates
from hardneg.mining.config import MineConfig
from hardneg.mining.ensemble import Queue, combine, cross_sample, intra
from hardneg.mining.mine import mine
from hardneg.mining.select import row_rng

A = Queue(np.array([1, 2, 3, 4]), np.array([0.9, 0.8, 0.7, 0.6]))
B = Queue(np.array([2, 1, 5]), np.array([20.0, 18.0, 11.0]))


def _docs(picks):
    return [(p.doc, p.teacher) for p in picks]


def test_intra_nodedup_round_robin_keeps_duplicates():
    assert _docs(intra([A, B], 4, dedup=False)) == [(1, 0), (2, 1), (2, 0), (1, 1)]


def test_intra_dedup_replaces_with_teachers_next():
    # A:1, B:2, A:2 taken -> 3, B:1 taken, 5
    assert _docs(intra([A, B], 4, dedup=True)) == [(1, 0), (2, 1), (3, 0), (5, 1)]


def test_intra_when_one_teacher_runs_out():
    short = Queue(np.array([7]), np.array([0.1]))
    assert _docs(intra([short, A], 4, dedup=False)) == [(7, 0), (1, 1), (2, 1), (3, 1)]
    assert len(intra([short, Queue(np.array([7]), np.array([1.0]))], 4, dedup=True)) == 1


def test_cross_sample_takes_all_from_one_teacher_and_is_seeded():
    seen = set()
    for i in range(30):
        picks = cross_sample([A, B], 3, row_rng(i, "q", "p"))
        assert len({p.teacher for p in picks}) == 1
        seen.add(picks[0].teacher)
        assert _docs(picks) == _docs(cross_sample([A, B], 3, row_rng(i, "q", "p")))
    assert seen == {0, 1}


def test_single_teacher_ignores_mode_and_bad_mode():
    assert _docs(combine([A], 2, "cross-sample")) == [(1, 0), (2, 0)]
    with pytest.raises(ValueError):
        combine([A, B], 2, "bogus")


def _data():
    ids = [f"d{i}" for i in range(8)]
    corpus = Corpus(ids, [""] * 8, [f"text {i}" for i in range(8)])
    return RetrievalData(corpus, {"q": "query"}, {"q": {"d0": 1}}, "train")


def _cand(name, rows, scores, pos):
    return Candidates(name, name + "-fp", ["q"], np.array([rows]), np.array([scores], np.float32), {"q": {"d0": pos}})


def test_mine_filters_each_teacher_with_its_own_positive_score():
    dense = _cand("dense", [0, 1, 2, 3, 4], [0.9, 0.88, 0.8, 0.7, 0.6], 0.9)   # thr 0.855: keeps 2, 3, 4
    bm25 = _cand("bm25", [5, 0, 6, 1, 7], [30.0, 20.0, 19.5, 18.0, 5.0], 20.0)  # thr 19: keeps 1, 7
    cfg = MineConfig(num_negatives=4, ensemble="intra-nodedup")
    row = mine(_data(), [dense, bm25], cfg).rows[0]
    assert row.neg_ids == ["d2", "d1", "d3", "d7"]
    assert row.neg_teachers == ["dense", "bm25", "dense", "bm25"]
    assert row.neg_scores == pytest.approx([0.8, 18.0, 0.7, 5.0])
    assert row.pos_score == pytest.approx(0.9)  # first teacher's score for intra ensembles


def test_mine_cross_sample_pos_score_from_chosen_teacher():
    dense = _cand("dense", [0, 1, 2, 3, 4], [0.9, 0.88, 0.8, 0.7, 0.6], 0.9)
    bm25 = _cand("bm25", [5, 0, 6, 1, 7], [30.0, 20.0, 19.5, 18.0, 5.0], 20.0)
    teachers = set()
    for seed in range(12):
        row = mine(_data(), [dense, bm25], MineConfig(num_negatives=2, ensemble="cross-sample", seed=seed)).rows[0]
        (t,) = set(row.neg_teachers)
        teachers.add(t)
        assert row.pos_score == pytest.approx(0.9 if t == "dense" else 20.0)
    assert teachers == {"dense", "bm25"}
