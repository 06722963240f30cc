"""Selection: top order, softmax sampling without replacement, top-1 + sampled, per-row seeds."""

import numpy as np
import pytest

from hardneg.mining.select import row_rng, sampled_order, selection_order, top1_sampled_order, top_order


def test_top_descending_with_stable_ties_and_negative_scores():
    assert top_order(np.array([0.2, 0.9, 0.2, 0.5])).tolist() == [1, 3, 0, 2]
    assert top_order(np.array([-7.5, -1.25, -3.0])).tolist() == [1, 2, 0]
    assert selection_order("top", np.array([12.0, 30.0, 0.0])).tolist() == [1, 0, 2]


def test_sampled_distinct_and_within_top_k():
    scores = np.linspace(1.0, 0.0, 30)
    for i in range(50):
        order = sampled_order(scores, row_rng(i, "q", "d"), sample_from=10, temperature=0.1)
        assert len(order) == 10 and len(set(order.tolist())) == 10
        assert set(order.tolist()) <= set(range(10))


def test_sampled_is_softmax_weighted_not_uniform():
    scores = np.array([1.0, 0.0, 0.0, 0.0])
    # first draw: P(index 0) = e^(1/0.5) / (e^2 + 3) = 0.711
    rng = np.random.default_rng(0)
    first = [sampled_order(scores, rng, 4, 0.5)[0] for _ in range(4000)]
    share = np.mean(np.array(first) == 0)
    assert share == pytest.approx(np.e ** 2 / (np.e ** 2 + 3), abs=0.03)
    # a huge temperature is close to uniform
    first = [sampled_order(scores, rng, 4, 1e6)[0] for _ in range(4000)]
    assert np.mean(np.array(first) == 0) == pytest.approx(0.25, abs=0.03)


def test_sampled_handles_bm25_scale_without_overflow():
    scores = np.array([900.0, 850.0, 10.0])
    order = sampled_order(scores, row_rng(1, "q"), 3, 0.01)
    assert order.tolist() == [0, 1, 2]


def test_sampled_short_list():
    assert sampled_order(np.array([0.3, 0.2]), row_rng(0), 10, 0.1).tolist() in ([0, 1], [1, 0])
    assert sampled_order(np.array([]), row_rng(0), 10, 0.1).tolist() == []


def test_top1_sampled_starts_with_best():
    scores = np.array([0.1, 0.9, 0.5, 0.4, 0.3])
    for i in range(20):
        order = top1_sampled_order(scores, row_rng(i, "x"), sample_from=4, temperature=0.1)
        assert order[0] == 1 and sorted(order.tolist()) == [1, 2, 3, 4]
    assert top1_sampled_order(np.array([0.5]), row_rng(0), 4, 0.1).tolist() == [0]


def test_row_rng_depends_on_seed_and_ids_only():
    a = row_rng(42, "q1", "d1").random(3)
    assert np.array_equal(a, row_rng(42, "q1", "d1").random(3))
    assert not np.array_equal(a, row_rng(43, "q1", "d1").random(3))
    assert not np.array_equal(a, row_rng(42, "q1", "d2").random(3))


def test_selection_errors():
    with pytest.raises(ValueError):
        selection_order("sampled", np.array([1.0]))
    with pytest.raises(ValueError):
        selection_order("best", np.array([1.0]), row_rng(0))


def test_simans_prefers_candidates_near_the_positive():
    from hardneg.mining.select import simans_order

    scores = np.array([0.99, 0.80, 0.78, 0.20])
    firsts = [int(simans_order(scores, 0.8, np.random.default_rng(s), a=100.0)[0]) for s in range(300)]
    assert firsts.count(1) + firsts.count(2) > 250 and firsts.count(3) == 0
    order = simans_order(scores, 0.8, np.random.default_rng(1))
    assert sorted(order.tolist()) == [0, 1, 2, 3]  # a permutation: every survivor, no repeats
    assert simans_order(scores, float("nan"), np.random.default_rng(1)).tolist() == [0, 1, 2, 3]
    shifted = [int(simans_order(scores, 0.8, np.random.default_rng(s), a=100.0, b=0.19)[0]) for s in range(300)]
    assert shifted.count(0) > 250  # b shifts the peak above the positive


def test_simans_needs_the_positive():
    from hardneg.mining.select import selection_order

    with pytest.raises(ValueError, match="positive"):
        selection_order("simans", np.array([0.5]), np.random.default_rng(0))
