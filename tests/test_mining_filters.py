"""Known-answer tests of every mining filter on hand-made score matrices (cosine, BM25, dot scales)."""

import numpy as np
import pytest

from hardneg.mining.filters import (
    absolute,
    aggregate_positive,
    floor,
    margin_pos,
    method_mask,
    mining_chain,
    naive,
    not_padding,
    not_positive,
    perc_pos,
    run_chain,
    shifted,
)

S = np.array([[0.90, 0.80, 0.76, 0.70, 0.50],
              [0.95, 0.60, 0.40, -np.inf, -np.inf]])
DOCS = np.array([[10, 11, 12, 13, 14],
                 [20, 21, 22, -1, -1]])


def test_padding_and_positives_by_id():
    assert not_padding(DOCS, S).tolist() == [[True] * 5, [True, True, True, False, False]]
    assert not_positive(DOCS, [{11, 99}, set()]).tolist() == [[True, False, True, True, True], [True] * 5]
    nan = np.array([[np.nan, 0.1]])
    assert not_padding(np.array([[1, 2]]), nan).tolist() == [[False, True]]


def test_naive_keeps_all():
    assert naive(S).all()


def test_shifted_counts_rank_among_eligible_only():
    eligible = np.array([[True, False, True, True, True]])  # column 1 is a positive
    assert shifted(eligible, 2).tolist() == [[False, True, False, True, True]]
    assert shifted(eligible, 0).all()
    assert not shifted(eligible, 10)[0, [0, 2, 3, 4]].any()


def test_abs_is_strict():
    assert absolute(S[:1], 0.76).tolist() == [[False, False, False, True, True]]


def test_marginpos_strict_and_per_query():
    p = np.array([0.81, 1.0])
    # q0 threshold 0.76 (0.76 itself is removed: strict); q1 threshold 0.95 (0.95 removed)
    assert margin_pos(S, p, 0.05)[0].tolist() == [False, False, False, True, True]
    assert margin_pos(S, p, 0.05)[1, :3].tolist() == [False, True, True]


def test_percpos_positive_scale():
    p = np.array([0.8, 1.0])
    # 0.8 * 0.95 = 0.76: 0.76 removed (strict), 0.70 kept
    assert perc_pos(S, p, 0.95)[0].tolist() == [False, False, False, True, True]


def test_percpos_sign_safe_on_negative_scores():
    s = np.array([[-1.0, -2.05, -2.2, -3.0]])
    p = np.array([-2.0])  # threshold -2.1, below the positive (not -1.9 as p * perc would give)
    assert perc_pos(s, p, 0.95).tolist() == [[False, False, True, True]]
    assert margin_pos(s, p, 0.5).tolist() == [[False, False, False, True]]


def test_percpos_on_bm25_scale_and_zero_positive():
    s = np.array([[25.0, 19.5, 18.9, 3.0]])
    assert perc_pos(s, np.array([20.0]), 0.95).tolist() == [[False, False, True, True]]  # threshold 19
    assert perc_pos(np.array([[0.0, -0.1]]), np.array([0.0]), 0.95).tolist() == [[False, True]]


def test_min_score_floor_is_inclusive():
    assert floor(S[:1], 0.7).tolist() == [[True, True, True, True, False]]


def test_aggregate_positive_min_mean_max():
    assert aggregate_positive([0.9, 0.6, 0.3], "min") == 0.3
    assert aggregate_positive([0.9, 0.6, 0.3], "max") == 0.9
    assert aggregate_positive([0.9, 0.6, 0.3], "mean") == pytest.approx(0.6)
    assert aggregate_positive([-4.0, -1.0], "min") == -4.0
    assert np.isnan(aggregate_positive([], "min"))
    with pytest.raises(ValueError):
        aggregate_positive([1.0], "median")


def test_several_positives_threshold_changes_survivors():
    s = np.array([[0.85, 0.7, 0.5]])
    pos = [0.9, 0.6]
    keep = {how: perc_pos(s, np.array([aggregate_positive(pos, how)]), 0.95)[0].tolist()
            for how in ("min", "mean", "max")}
    assert keep["min"] == [False, False, True]   # threshold 0.6 * 0.95 = 0.57
    assert keep["mean"] == [False, True, True]   # 0.75 * 0.95 = 0.7125
    assert keep["max"] == [True, True, True]     # 0.9 * 0.95 = 0.855


def test_chain_counts_each_filter_once():
    p = np.array([0.8, 0.9])
    alive, removed = mining_chain(DOCS, S, p, [{10}, {21}], "percpos", min_score=0.45)
    # q0: 10 positive; 0.80, 0.76 >= 0.76 removed by percpos; 0.70 kept; 0.50 kept
    # q1: padding 2; 21 positive; 0.95 removed (thr 0.855); 0.40 below the floor
    assert alive.tolist() == [[False, False, False, True, True], [False] * 5]
    assert {k: v.tolist() for k, v in removed.items()} == {
        "padding": [0, 2], "positive": [1, 1], "percpos": [2, 1], "min_score": [0, 1]}


def test_chain_shifted_uses_alive_mask():
    alive, removed = mining_chain(DOCS[:1], S[:1], np.array([0.9]), [{11}], "shifted", shift=2)
    assert alive.tolist() == [[False, False, False, True, True]]
    assert removed["shifted"].tolist() == [2]


def test_run_chain_and_method_dispatch():
    alive, removed = run_chain((1, 2), [("x", lambda m: np.array([[True, False]]))])
    assert alive.tolist() == [[True, False]] and removed["x"].tolist() == [1]
    with pytest.raises(ValueError):
        method_mask("bogus", S, np.zeros(2), np.ones_like(S, bool))
