"""False-negative judges on hand-made score tables (known answers)."""

import math

import numpy as np
import pytest

from hardneg.core.errors import HardnegError
from hardneg.mining.judges import AgreementJudge, agreement_votes, held_out_quality, margin_flags


def pools():
    # two queries, two teachers; teacher 1 is on a BM25-like scale
    t0 = (np.array([[1, 2, 3, -1], [4, 5, 6, 7]]), np.array([[0.90, 0.70, 0.10, -np.inf], [0.5, 0.4, 0.3, 0.2]]))
    t1 = (np.array([[2, 1, 9, 3], [7, 4, 5, 6]]), np.array([[9.0, 6.0, 1.0, 0.5], [3.0, 2.5, 0.1, 0.0]]))
    p = [np.array([0.8, 0.45]), np.array([7.0, 2.0])]
    return [t0, t1], p


def test_votes_count_each_teacher_at_its_own_threshold():
    # thresholds at frac 1.0: teacher 0 (0.8, 0.45), teacher 1 (7.0, 2.0)
    v0, v1 = agreement_votes(*pools(), frac=1.0)
    assert v0.tolist() == [[1, 1, 0, 0], [2, 0, 0, 1]]  # doc 1: t0 only; doc 2: t1 only; doc 4: both; doc 7: t1
    assert v1.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0]]


def test_min_votes_and_padding_never_flag():
    out = AgreementJudge(min_votes=2, frac=1.0).judge(*pools())
    assert out[0].flags.tolist() == [[False, False, False, False], [True, False, False, False]]
    assert out[1].flags[1].tolist() == [False, True, False, False]
    lenient = AgreementJudge(min_votes=1, frac=0.5).judge(*pools())
    assert not lenient[0].flags[0, 3]  # padding cell


def test_unknown_positive_score_never_votes():
    ps, p = pools()
    p = [np.array([np.nan, 0.45]), p[1]]
    v0, _ = agreement_votes(ps, p, 1.0)
    assert v0[0].tolist() == [0, 1, 0, 0]  # only teacher 1's vote for doc 2 remains


def test_negative_scores_are_sign_safe():
    pool = [(np.array([[1, 2]]), np.array([[-1.9, -2.2]]))]
    v, = agreement_votes(pool, [np.array([-2.0])], 0.95)  # threshold -2.1: -1.9 is above, -2.2 below
    assert v.tolist() == [[1, 0]]


def test_margin_rule():
    assert margin_flags(np.array([[3.0, 2.0, np.nan]]), np.array([2.5]), 0.5).tolist() == [[True, True, False]]


def test_held_out_quality_counts_distinct_pairs():
    ps, _ = pools()
    flags = [np.array([[True, False, False, False], [True, False, False, False]]),
             np.array([[False, True, False, False], [False, True, False, False]])]
    eligible = [np.ones((2, 4), bool), np.ones((2, 4), bool)]
    q = held_out_quality(flags, ps, eligible, [{1, 9}, {4}])
    # flagged pairs: (0,1) (1,4) from pool 0; (0,1) (1,4) again from pool 1 -> 2 distinct, both hidden
    assert q == {"flagged": 2, "flagged_held_out": 2, "held_out_candidates": 3, "precision": 1.0,
                 "recall": pytest.approx(2 / 3)}
    assert math.isnan(held_out_quality([np.zeros((2, 4), bool)], ps[:1], eligible[:1], [set(), set()])["precision"])


def test_bad_settings_are_clear_errors():
    with pytest.raises(HardnegError, match="min_votes"):
        AgreementJudge(min_votes=0)
    with pytest.raises(HardnegError, match="fraction"):
        AgreementJudge(frac=0)
