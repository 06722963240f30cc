import numpy as np

from hardneg.search.exact import topk
from hardneg.search.rank import id_order, rank


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


def test_topk_equals_full_rank_with_ties_exclusions_and_small_chunks():
    """Block-local top-k + merge must equal ranking the whole matrix (integer vectors make ties)."""
    rng = np.random.default_rng(1)
    for _ in range(60):
        nq, n, k = int(rng.integers(1, 9)), int(rng.integers(1, 80)), int(rng.integers(1, 90))
        q = rng.integers(-2, 3, size=(nq, 3)).astype(np.float32)
        p = rng.integers(-2, 3, size=(n, 3)).astype(np.float32)
        key = id_order([f"d{j}" for j in rng.permutation(n)])
        ex = [set(rng.choice(n, size=min(n, 2), replace=False).tolist()) for _ in range(nq)]
        _, idx = topk(q, p, k, key=key, query_chunk=3, passage_chunk=7, exclude=ex)
        full = q @ p.T
        for r in range(nq):
            full[r, list(ex[r])] = -np.inf
        ref = rank(full, key, min(k, n))
        ref = np.where(np.isneginf(np.take_along_axis(full, ref, 1)), -1, ref)
        assert idx.tolist() == ref.tolist()


def test_faiss_blocks_equal_full_rank_with_ties_exclusions_and_nan():
    """Blocks larger than k go through FAISS (ties broken arbitrarily there): the exact re-ranking
    of straddling ties and excluded rows must still give the full sort's answer."""
    rng = np.random.default_rng(7)
    for t in range(40):
        nq, n, k = int(rng.integers(1, 40)), int(rng.integers(50, 400)), int(rng.integers(1, 40))
        q = rng.integers(-2, 3, size=(nq, 4)).astype(np.float32)
        p = rng.integers(-2, 3, size=(n, 4)).astype(np.float32)
        if t % 5 == 0:
            p[rng.integers(n)] = np.nan  # NaN scores rank last (torch path for the whole call)
        key = id_order([f"d{j}" for j in rng.permutation(n)])
        ex = [set(rng.choice(n, size=3, replace=False).tolist()) for _ in range(nq)]
        _, idx = topk(q, p, k, key=key, query_chunk=16, passage_chunk=int(rng.integers(k + 1, 200)), exclude=ex)
        full = q @ p.T
        for r in range(nq):
            full[r, list(ex[r])] = -np.inf
        ref = rank(full, key, min(k, n))
        ref = np.where(np.isneginf(np.take_along_axis(np.where(np.isnan(full), -np.inf, full), ref, 1)), -1, ref)
        assert idx.tolist() == ref.tolist()
