import numpy as np

from hardneg.search import id_order, rank, topk


def test_rank_tie_break_by_id():
    scores = np.array([[0.5, 0.9, 0.9, 0.1]])
    key = id_order(["d3", "d2", "d1", "d0"])  # d1 < d2 as strings
    assert rank(scores, key, 2).tolist() == [[2, 1]]
    assert rank(scores, key, 4).tolist() == [[2, 1, 0, 3]]


def test_rank_keeps_all_boundary_ties_before_choosing():
    scores = np.array([[1.0, 0.5, 0.5, 0.5, 0.0]])
    key = np.array([0, 3, 1, 2, 4])
    assert rank(scores, key, 2).tolist() == [[0, 2]]


def test_topk_matches_bruteforce_across_chunks():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(7, 5)).astype(np.float32)
    p = rng.normal(size=(23, 5)).astype(np.float32)
    p[5] = p[6]  # an exact tie
    s, i = topk(q, p, 6, query_chunk=3, passage_chunk=4)
    full = q @ p.T
    ref = rank(full, id_order([str(j) for j in range(23)]), 6)
    assert i.tolist() == ref.tolist()
    np.testing.assert_allclose(s, np.take_along_axis(full, ref, 1), rtol=1e-6)


def test_topk_exclude_and_padding():
    q = np.eye(2, dtype=np.float32)
    p = np.eye(2, dtype=np.float32)
    s, i = topk(q, p, 3, exclude=[{0}, set()])
    assert i.tolist() == [[1, -1], [1, 0]]
    assert np.isneginf(s[0, 1])


def test_rank_equals_full_lexsort_with_many_ties_nan_and_inf():
    """The fast preselection path must give exactly the full sort's answer, ties included."""
    rng = np.random.default_rng(0)
    for t in range(200):
        b, n = int(rng.integers(1, 6)), int(rng.integers(2, 60))
        k = int(rng.integers(1, n))
        s = rng.integers(0, 5, size=(b, n)).astype(np.float64 if t % 2 else np.float32)
        s[rng.random((b, n)) < 0.15] = -np.inf
        s[rng.random((b, n)) < 0.1] = np.nan
        key = rng.permutation(n)
        ref = np.lexsort((np.broadcast_to(key, s.shape), -np.where(np.isnan(s), -np.inf, s)), axis=1)[:, :k]
        assert rank(s, key, k).tolist() == ref.tolist()
