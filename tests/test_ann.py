import numpy as np
import pytest
from fakes import RowEncoder

from hardneg.core.errors import HardnegError
from hardneg.search.ann import AnnConfig, ann_search, recall_check
from hardneg.search.dispatch import search
from hardneg.search.exact import topk
from hardneg.search.rank import id_order, merge_topk


def _unit(rng, n, d):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def vecs():
    rng = np.random.default_rng(0)
    p, q = _unit(rng, 600, 16), _unit(rng, 40, 16)
    key = id_order([f"d{rng.integers(10**6)}-{i}" for i in range(600)])
    return q, p, key


def _exact_fn(p, key, k):
    return lambda sub, rows: topk(sub, p, k, key=key)


EXHAUSTIVE = {"ivf-flat": AnnConfig("ivf-flat", nlist=8, nprobe=8),
              "hnsw": AnnConfig("hnsw", m=16, ef_construction=200, ef_search=600)}


@pytest.mark.parametrize("backend", ["ivf-flat", "hnsw"])
def test_exhaustive_ann_equals_exact_and_recall_is_one(vecs, backend):
    q, p, key = vecs
    want = topk(q, p, 10, key=key)
    got = search(q, p, 10, backend=backend, key=key, ann=EXHAUSTIVE[backend])
    assert recall_check(q, got, _exact_fn(p, key, 10), n=40, seed=1) == 1.0
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert got[0].dtype == np.float32 and got[1].dtype == np.int64


def test_ivf_pq_recall_reported_below_one(vecs):
    q, p, key = vecs
    cfg = AnnConfig("ivf-pq", nlist=4, nprobe=1, pq_m=2, pq_bits=2)
    got = ann_search(q, p, 10, cfg, key=key)
    exact = topk(q, p, 10, key=key)
    by_hand = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got[1], exact[1])])
    r = recall_check(q, got, _exact_fn(p, key, 10), n=1000, seed=0)
    assert r < 1.0 and r == pytest.approx(by_hand)
    # rescored: returned scores are the exact dot products, ranked by the shared rule
    for row_s, row_i, qq in zip(got[0], got[1], q):
        np.testing.assert_allclose(row_s, p[row_i] @ qq, rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(row_s) <= 0)


def test_sharded_ann_merges_per_query(vecs):
    q, p, key = vecs
    shards = [(0, p[:250]), (250, p[250:500]), (500, p[500:])]
    cfg = AnnConfig("ivf-flat", nlist=4, nprobe=4)
    got = ann_search(q, shards, 7, cfg, key=key)
    want = topk(q, p, 7, key=key)
    np.testing.assert_array_equal(got[1], want[1])


def test_ties_and_exclude_follow_the_shared_rule():
    # integer vectors: exact float32 dot products, so rows 1, 2 and 3 tie exactly for query 0
    p = np.array([[0, 1], [1, 0], [1, 0], [1, 0], [-1, 0]], dtype=np.float32)
    q = np.array([[1, 0], [0, 1]], dtype=np.float32)
    key = id_order(["e", "c", "a", "b", "d"])  # row 2 ("a") < row 3 ("b") < row 1 ("c")
    cfg = AnnConfig("ivf-flat", nlist=1, nprobe=1)
    s, i = ann_search(q, p, 3, cfg, key=key, exclude=[{3}, set()])
    assert i[0].tolist() == [2, 1, 0]
    want = topk(q, p, 3, key=key, exclude=[{3}, set()])
    np.testing.assert_array_equal(i, want[1])


def test_padding_when_k_exceeds_candidates():
    p = np.eye(3, dtype=np.float32)
    s, i = ann_search(p[:1], p, 5, AnnConfig("ivf-flat", nlist=1), exclude=[{1}])
    assert i.shape == (1, 3) and i[0].tolist() == [0, 2, -1] and np.isneginf(s[0, 2])


def test_merge_topk_pads_and_breaks_ties():
    a = (np.array([[0.5, -np.inf]], np.float32), np.array([[4, -1]]))
    b = (np.array([[0.5]], np.float32), np.array([[1]]))
    s, i = merge_topk([a, b], np.array([4, 3, 2, 1, 0]), 4)
    assert i.tolist() == [[4, 1, -1, -1]] and np.isneginf(s[0, 2:]).all()


def test_config_validation_and_defaults():
    with pytest.raises(HardnegError, match="ANN backend"):
        AnnConfig("annoy")
    with pytest.raises(HardnegError, match="nprobe"):
        AnnConfig("ivf-flat", nprobe=0)
    r = AnnConfig("ivf-flat").resolved(1_000_000, 384, 100)
    assert (r["nlist"], r["nprobe"], r["train_size"]) == (1000, 100, 40_000)
    small = AnnConfig("ivf-pq").resolved(500, 32, 10)
    assert small["nlist"] == 12 and small["pq_m"] == 4 and small["pq_bits"] == 3


def test_cli_mine_with_faiss_backend_records_recall(tiny_beir, tiny_model, tmp_path, capsys):
    import json

    from hardneg.cli.main import main

    base = ["mine", "--teacher", str(tiny_model), "--data", str(tiny_beir), "--num-negatives", "2",
            "--method", "naive", "--cache-dir", str(tmp_path / "c")]
    assert main(base + ["--output", str(tmp_path / "exact.jsonl")]) == 0
    ann = tmp_path / "ivf.jsonl"
    assert main(base + ["--output", str(ann), "--search-backend", "ivf-flat", "--recall-check", "2"]) == 0
    assert "recall@6 vs exact = 1.0000" in capsys.readouterr().out  # 6 passages: one IVF cell, exhaustive
    meta = json.loads(ann.with_name(ann.name + ".meta.json").read_text())
    info = meta["search"][0]
    assert info["backend"] == "ivf-flat" and info["params"]["nlist"] == 1
    assert info["recall_check"] == {"queries": 2, "depth": 6, "recall": 1.0}
    assert ann.read_bytes() == (tmp_path / "exact.jsonl").read_bytes()  # recall 1.0 -> the exact output
    exact_meta = json.loads((tmp_path / "exact.jsonl.meta.json").read_text())
    assert [(x["backend"], x["engine"]["name"]) for x in exact_meta["search"]] == [("exact", "local")]
    assert exact_meta["teachers"][0]["fingerprint"] != meta["teachers"][0]["fingerprint"]


def test_dense_teacher_rejects_unknown_backend(tiny_model):
    from hardneg.mining.teachers.load import load_teacher

    with pytest.raises(HardnegError, match="unknown search_backend .annoy.; choose one of"):
        load_teacher(str(tiny_model), search_backend="annoy")


def test_scale_benchmark_smoke(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "scale_mining.py"
    spec = importlib.util.spec_from_file_location("scale_mining", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--passages", "300", "--queries", "20", "--dim", "16", "--k", "5", "--shard-size", "128",
                     "--backends", "exact,ivf-flat", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {r["backend"]: r for r in __import__("json").loads((tmp_path / "results.json").read_text())["rows"]}
    assert rows["exact"]["positive_at_k"] >= 0.9 and 0 < rows["ivf-flat"]["recall_at_k"] <= 1.0
    assert "| exact |" in out and "| ivf-flat |" in out


@pytest.mark.parametrize("backend", ["ivf-flat", "hnsw", "ivf-pq"])
def test_indexes_persist_beside_shards_and_are_reused(tmp_path, backend, caplog):
    """Per-shard indexes are saved under the shard folder; a second search loads them (no rebuild)
    and returns the same result; other build parameters make another index folder."""
    import logging

    from hardneg.scale.shards import encode_sharded

    rng = np.random.default_rng(3)
    p = rng.standard_normal((900, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)

    ss = encode_sharded(RowEncoder(p, fingerprint="rows-v1"), [str(i) for i in range(900)], tmp_path / "s", shard_size=300, progress=False)
    first = ann_search(q, ss, 10, AnnConfig(backend))
    saved = sorted((tmp_path / "s").glob(f"index-{backend}-*/shard-*.faiss"))
    assert [f.name for f in saved] == ["shard-00000.faiss", "shard-00001.faiss", "shard-00002.faiss"]
    with caplog.at_level(logging.INFO, logger="hardneg.search.ann"):
        again = ann_search(q, ss, 10, AnnConfig(backend))
    assert caplog.text.count("reusing") == 3 and "building" not in caplog.text
    assert again[1].tolist() == first[1].tolist()
    ann_search(q, ss, 10, AnnConfig(backend, m=8, nlist=5))
    assert len(list((tmp_path / "s").glob(f"index-{backend}-*"))) == 2
